//! The outcome of a rate-limit check, shared by both limiter backends and rendered
//! by the HTTP layer as `X-RateLimit-*` and `Retry-After`.

use crate::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// When the oldest request in the window leaves it (Unix ms): the earliest
    /// moment a slot frees up.
    pub reset_ms: Millis,
}

impl RateDecision {
    /// Whole seconds until a request can pass again, at least 1.
    pub fn retry_after_secs(&self, now: Millis) -> u64 {
        let wait = (self.reset_ms - now).max(0) as u64;
        wait.div_ceil(1000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let d = RateDecision {
            allowed: false,
            limit: 1,
            remaining: 0,
            reset_ms: 10_001,
        };
        assert_eq!(d.retry_after_secs(0), 11);
        assert_eq!(d.retry_after_secs(10_001), 1);
    }
}
