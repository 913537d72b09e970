//! Bounds on what one key (a client address, a workspace) holds at once: a count
//! per key, taken by [`PerKey::try_enter`] and given back when the returned
//! [`Entered`] is dropped, however its holder ends. Nothing waits: past the bound
//! the caller refuses at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// How many of something each key holds now; keys holding none are not kept.
#[derive(Debug)]
pub struct PerKey<K: Hash + Eq + Clone> {
    max: usize,
    open: Mutex<HashMap<K, usize>>,
}

/// One of a key's places, held until dropped.
#[derive(Debug)]
pub struct Entered<K: Hash + Eq + Clone> {
    table: Arc<PerKey<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> PerKey<K> {
    /// At most `max` places per key.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerKey {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one of `key`'s places; `None` when it holds `max` already.
    pub fn try_enter(self: &Arc<Self>, key: K) -> Option<Entered<K>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key.clone()).or_default();
        if *n >= self.max {
            if *n == 0 {
                open.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(Entered {
            table: self.clone(),
            key,
        })
    }

    /// Keys holding at least one place.
    pub fn keys(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl<K: Hash + Eq + Clone> Drop for Entered<K> {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_max_and_gets_places_back_when_they_drop() {
        let table = PerKey::new(2);
        let a = table.try_enter("a").unwrap();
        let b = table.try_enter("a").unwrap();
        assert!(table.try_enter("a").is_none());
        let other = table.try_enter("b").unwrap();
        drop(a);
        let c = table.try_enter("a").unwrap();
        assert_eq!(table.keys(), 2);
        drop((b, c, other));
        assert_eq!(table.keys(), 0, "nothing kept for keys holding nothing");
        assert!(PerKey::new(0).try_enter("a").is_none());
        assert_eq!(PerKey::<&str>::new(0).keys(), 0);
    }
}
