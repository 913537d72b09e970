//! The in-process backend: a sharded map of per-key logs. Idle keys are swept
//! now and then so memory stays bounded by the number of active clients.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use agentbase_core::{Millis, RateDecision};

use crate::{Window, decision};

const SHARDS: usize = 32;
const SWEEP_EVERY: u64 = 4096;

pub struct MemoryLimiter {
    shards: Vec<Mutex<HashMap<String, VecDeque<Millis>>>>,
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
        let floor = now - window.window_ms;
        while log.front().is_some_and(|&t| t <= floor) {
            log.pop_front();
        }
        let allowed = (log.len() as u64) < u64::from(window.limit);
        if allowed {
            log.push_back(now);
        }
        let d = decision(allowed, log.len() as u32, log.front().copied(), window, now);
        drop(map);
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(floor);
        }
        d
    }

    /// Drops logs whose every entry has left the window.
    fn sweep(&self, floor: Millis) {
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, log| log.back().is_some_and(|&t| t > floor));
        }
    }

    pub fn tracked_keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}
