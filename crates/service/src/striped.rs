//! Striped async locks. Work that checks a workspace's total and then writes (the
//! storage quotas) holds its workspace's stripe from the check to the write, so
//! parallel requests of one workspace cannot all pass the same check. This process
//! only: writes on other nodes can still overshoot by what they have in flight.

use std::hash::{DefaultHasher, Hash, Hasher};

use tokio::sync::{Mutex, MutexGuard};

/// Stripes: enough that workspaces rarely share one, few enough to keep.
const STRIPES: usize = 64;

pub(crate) struct Striped {
    stripes: Vec<Mutex<()>>,
}

impl Striped {
    pub(crate) fn new() -> Self {
        Striped {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for `key`'s stripe and holds it while the guard lives.
    pub(crate) async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        self.stripes[(h.finish() as usize) % STRIPES].lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_held_by_one_at_a_time_and_other_keys_pass() {
        let locks = Striped::new();
        let held = locks.lock("ws-a").await;
        let again = tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("ws-a"));
        assert!(again.await.is_err(), "the same key waits");
        // Some other key is on another stripe and passes at once.
        let other = (0..100)
            .map(|i| format!("ws-{i}"))
            .find(|k| {
                let mut h = DefaultHasher::new();
                k.hash(&mut h);
                let mut a = DefaultHasher::new();
                "ws-a".hash(&mut a);
                h.finish() as usize % STRIPES != a.finish() as usize % STRIPES
            })
            .unwrap();
        drop(locks.lock(&other).await);
        drop(held);
        drop(locks.lock("ws-a").await);
    }
}
