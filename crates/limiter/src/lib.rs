//! Sliding-window rate limiting with two backends of the same semantics: an
//! in-process log (the default) and Redis (several nodes share one window).
//!
//! The window is a log of accepted request times per key: a request passes when
//! fewer than `limit` accepted requests lie in `(now - window, now]`. Rejected
//! requests are not logged, so a client that backs off recovers on schedule. The
//! caller passes `now`, which keeps both backends testable with a manual clock.

#![forbid(unsafe_code)]

mod memory;
mod redis;

use agentbase_core::{Millis, RateDecision};

pub use memory::MemoryLimiter;
pub use redis::RedisLimiter;

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    #[error("rate limiter backend unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub window_ms: i64,
}

pub enum Limiter {
    Memory(MemoryLimiter),
    Redis(RedisLimiter),
}

impl Limiter {
    pub async fn check(
        &self,
        key: &str,
        window: Window,
        now: Millis,
    ) -> Result<RateDecision, LimiterError> {
        match self {
            Limiter::Memory(m) => Ok(m.check(key, window, now)),
            Limiter::Redis(r) => r.check(key, window, now).await,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Limiter::Memory(_) => "memory",
            Limiter::Redis(_) => "redis",
        }
    }
}

/// The decision for a window holding `count` accepted requests (after this one, if
/// accepted) whose oldest entry is `oldest`.
pub(crate) fn decision(
    allowed: bool,
    count: u32,
    oldest: Option<Millis>,
    window: Window,
    now: Millis,
) -> RateDecision {
    RateDecision {
        allowed,
        limit: window.limit,
        remaining: window.limit.saturating_sub(count),
        reset_ms: oldest.unwrap_or(now) + window.window_ms,
    }
}
