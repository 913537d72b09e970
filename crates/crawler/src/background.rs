//! CPU work that no request waits on interactively (extracting crawled pages,
//! chunking and indexing for training) runs on a background runtime's blocking
//! threads, which the `agentbase` binary starts below normal priority and installs
//! here ([`install`]). The threads that answer requests then get the CPU as soon as
//! they want it, however much background work is queued: on two cores, a page
//! extraction or an index build at the same priority held an authenticated GET
//! behind it for a whole scheduler slice (issue 12's soak).
//!
//! Without [`install`] (library use, most tests) the work runs on the current
//! runtime's blocking pool, as `tokio::task::spawn_blocking` would.

use std::sync::OnceLock;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

static BACKGROUND: OnceLock<Handle> = OnceLock::new();

/// Makes [`spawn`] use `handle`'s blocking pool from now on. The first call wins;
/// false when a runtime was installed already.
pub fn install(handle: Handle) -> bool {
    BACKGROUND.set(handle).is_ok()
}

/// Builds the background runtime (one worker thread, a blocking pool as large as the
/// machine's cores, at least two), each of its threads started by `on_thread_start`
/// (which lowers its priority), and [`install`]s it. The `agentbase` binary and the
/// crawl benchmark both run it so.
pub fn start(on_thread_start: fn()) -> std::io::Result<tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)))
        .thread_name("agentbase-bg")
        .on_thread_start(on_thread_start)
        .build()?;
    install(runtime.handle().clone());
    Ok(runtime)
}

/// Drops `value` on a background thread: for values whose drop deletes files (a
/// temporary directory, an old index). Deleting blocks on the disk (ext4 with
/// `discard` waits for the device to trim each freed extent), and on a runtime
/// worker that held every request queued behind it (issue 12's soak). Outside any
/// runtime it is dropped here.
pub fn drop_later<T: Send + 'static>(value: T) {
    if BACKGROUND.get().is_none() && Handle::try_current().is_err() {
        drop(value);
        return;
    }
    drop(spawn(move || drop(value)));
}

/// Runs `work` on the background runtime's blocking pool (or the current one's).
pub fn spawn<F, R>(work: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match BACKGROUND.get() {
        Some(h) => h.spawn_blocking(work),
        None => tokio::task::spawn_blocking(work),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Flag(Arc<AtomicBool>);

    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn outside_a_runtime_the_value_is_dropped_at_once() {
        let dropped = Arc::new(AtomicBool::new(false));
        super::drop_later(Flag(dropped.clone()));
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn inside_a_runtime_it_is_dropped_on_a_blocking_thread() {
        let dropped = Arc::new(AtomicBool::new(false));
        super::drop_later(Flag(dropped.clone()));
        for _ in 0..200 {
            if dropped.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("never dropped");
    }
}
