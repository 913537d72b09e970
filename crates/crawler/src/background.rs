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
