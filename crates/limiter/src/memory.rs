//! The in-process backend: a sharded map of per-key logs. Idle keys are swept
//! now and then so memory stays bounded by the number of active clients; each log
//! remembers its own window, so a sweep started by a short window (the API's 10 s)
//! never drops a longer one (the widget's minutes, sign-in's minute) early.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use agentbase_core::{Millis, RateDecision};

use crate::{Window, decision};

const SHARDS: usize = 32;
const SWEEP_EVERY: u64 = 4096;

#[derive(Default)]
struct Log {
    window_ms: i64,
    accepted: VecDeque<Millis>,
}

pub struct MemoryLimiter {
    shards: Vec<Mutex<HashMap<String, Log>>>,
    hasher: RandomState,
    calls: AtomicU64,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            calls: AtomicU64::new(0),
        }
    }
}

impl MemoryLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&self, key: &str, window: Window, now: Millis) -> RateDecision {
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let log = map.entry(key.to_owned()).or_default();
        log.window_ms = window.window_ms;
        let floor = now - window.window_ms;
        while log.accepted.front().is_some_and(|&t| t <= floor) {
            log.accepted.pop_front();
        }
        let allowed = (log.accepted.len() as u64) < u64::from(window.limit);
        if allowed {
            log.accepted.push_back(now);
        }
        let d = decision(
            allowed,
            log.accepted.len() as u32,
            log.accepted.front().copied(),
            window,
            now,
        );
        drop(map);
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(now);
        }
        d
    }

    /// Drops logs whose every entry has left that log's own window.
    fn sweep(&self, now: Millis) {
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, log| {
                log.accepted
                    .back()
                    .is_some_and(|&t| t > now - log.window_ms)
            });
        }
    }

    pub fn tracked_keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}
