//! The one short-lived cache type behind every record the hot path rereads (key
//! rows, agent rows, workspace spend, key-use stamps).
//!
//! Entries expire `ttl` after they were read from the record; the map is cleared
//! when it reaches `max` entries, so a flood of distinct ids costs one reread
//! each, never unbounded memory. Writers call [`TtlCache::forget`]; a read that
//! started before a forget and finishes after it does not put its (possibly old)
//! row back, because inserts carry the [`Ticket`] taken before the read.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use agentbase_core::Millis;

pub(crate) struct TtlCache<V> {
    inner: Mutex<Inner<V>>,
    ttl: Millis,
    max: usize,
}

struct Inner<V> {
    map: HashMap<String, (V, Millis)>,
    /// Raised by every forget; an insert whose ticket predates it is dropped.
    epoch: u64,
}

/// Taken before reading the record that [`TtlCache::insert`] will store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(ttl: Millis, max: usize) -> Self {
        TtlCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                epoch: 0,
            }),
            ttl,
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry, if it was read from the record less than `ttl` ago.
    pub(crate) fn get(&self, key: &str, now: Millis) -> Option<V> {
        let inner = self.lock();
        let (value, at) = inner.map.get(key)?;
        (now - at < self.ttl).then(|| value.clone())
    }

    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.lock().epoch)
    }

    /// Stores a value read at `now`, unless something was forgotten since
    /// `ticket` was taken (the value may predate that write).
    pub(crate) fn insert(&self, key: &str, value: V, now: Millis, ticket: Ticket) {
        let mut inner = self.lock();
        if inner.epoch != ticket.0 {
            return;
        }
        if inner.map.len() >= self.max && !inner.map.contains_key(key) {
            inner.map.clear();
        }
        inner.map.insert(key.to_owned(), (value, now));
    }

    /// Stores `value` unless an entry younger than `ttl` is there; true when
    /// stored. (For stamps: the first caller in each interval does the work.)
    pub(crate) fn insert_if_stale(&self, key: &str, value: V, now: Millis) -> bool {
        let mut inner = self.lock();
        if let Some((_, at)) = inner.map.get(key)
            && now - at < self.ttl
        {
            return false;
        }
        if inner.map.len() >= self.max && !inner.map.contains_key(key) {
            inner.map.clear();
        }
        inner.map.insert(key.to_owned(), (value, now));
        true
    }

    /// Changes a cached entry in place (keeping its age), if there is one.
    pub(crate) fn update(&self, key: &str, change: impl FnOnce(&mut V)) {
        if let Some((value, _)) = self.lock().map.get_mut(key) {
            change(value);
        }
    }

    pub(crate) fn forget(&self, key: &str) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.map.remove(key);
    }

    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::TtlCache;

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = TtlCache::new(1_000, 10);
        cache.insert("a", 1, 5_000, cache.ticket());
        assert_eq!(cache.get("a", 5_999), Some(1));
        assert_eq!(cache.get("a", 6_000), None);
    }

    #[test]
    fn a_read_that_raced_a_forget_is_not_cached() {
        let cache = TtlCache::new(1_000, 10);
        cache.insert("a", "old", 0, cache.ticket());
        // A reader takes its ticket and reads the record (the old row)...
        let ticket = cache.ticket();
        // ...a writer changes the record and forgets the entry...
        cache.forget("a");
        // ...and the reader's late insert is dropped, not served for a whole ttl.
        cache.insert("a", "old", 10, ticket);
        assert_eq!(cache.get("a", 20), None);
        cache.insert("a", "new", 30, cache.ticket());
        assert_eq!(cache.get("a", 40), Some("new"));
    }

    #[test]
    fn the_map_never_grows_past_its_bound() {
        let cache = TtlCache::new(1_000, 3);
        for i in 0..10 {
            cache.insert(&i.to_string(), i, 0, cache.ticket());
            assert!(cache.lock().map.len() <= 3);
        }
        assert_eq!(cache.get("9", 0), Some(9));
    }

    #[test]
    fn stamps_are_taken_once_per_interval() {
        let cache = TtlCache::new(60_000, 10);
        assert!(cache.insert_if_stale("k", (), 0));
        assert!(!cache.insert_if_stale("k", (), 59_999));
        assert!(cache.insert_if_stale("k", (), 60_000));
    }
}
