//! A small persistent pool of helper threads for the forward passes.
//!
//! Helpers look for work for a few milliseconds, then park: a decoded token runs ~150
//! parallel steps of a few µs, too short to wake threads for. The caller works too,
//! and tasks are claimed one by one, so a helper that is not running (the cores are
//! shared with other processes) is never waited for unless it holds a task. One job
//! at a time: a caller that finds the pool busy runs its job alone rather than wait.
//!
//! Why persistent threads and not `std::thread::scope` per step: besides the spawn
//! cost, a thread that starts and exits every few milliseconds holds the CPU it runs
//! on past the point where the kernel should preempt it. Measured on the 2-core VM
//! (Linux 6.18, `PREEMPT_NONE`): a normal-priority thread woken on a CPU where a
//! `SCHED_IDLE` thread computes waited over 1 ms 0 times in 3,000 wakeups; where
//! `SCHED_IDLE` threads were being spawned and joined, 9-19 times, up to 4.5 ms (one
//! tick). The embedder's per-step scoped threads did exactly that to the request
//! threads (issue 12's soak, bench/RESULTS-chaos.md).
//!
//! Helpers are started by the thread that creates the pool and inherit its
//! scheduling policy and nice value ([`crate::sched`]): the embedder's pool is created
//! on its `SCHED_IDLE` worker thread, so its helpers stay below the request threads.

// The job's lifetime is erased while helpers run it; `run` waits for every task.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Pool {
    name: String,
    shared: Arc<PoolShared>,
    helpers: Vec<std::thread::Thread>,
    busy: Mutex<()>,
}

/// `claim` packs the job's epoch (24 bits), task count and next unclaimed task (20
/// bits each) into one word, so a claim (a CAS) can never mix two jobs: whoever
/// holds a task of a job keeps that job, and so `job`, alive until the task is done.
struct PoolShared {
    claim: AtomicU64,
    job: AtomicPtr<Job<'static>>,
    completed: AtomicUsize,
    sleeping: Vec<AtomicBool>,
    panicked: AtomicBool,
    closed: AtomicBool,
}

struct Job<'a> {
    work: &'a (dyn Fn(usize) + Sync),
}

const TASK_BITS: u32 = 20;
const TASK_MASK: u64 = (1 << TASK_BITS) - 1;

impl PoolShared {
    /// Claims and runs tasks until none is left; true if it ran any.
    fn work(&self) -> bool {
        let mut ran = false;
        loop {
            let word = self.claim.load(Ordering::Acquire);
            let (tasks, next) = ((word >> TASK_BITS) & TASK_MASK, word & TASK_MASK);
            if next >= tasks {
                return ran;
            }
            if self
                .claim
                .compare_exchange_weak(word, word + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: task `next` of this job is ours and not yet counted in
            // `completed`, so `Pool::run` is still waiting and the job alive.
            let job = unsafe { &*self.job.load(Ordering::Acquire) };
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (job.work)(next as usize)
            }));
            if run.is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            self.completed.fetch_add(1, Ordering::AcqRel);
            ran = true;
        }
    }

    fn has_work(&self) -> bool {
        let word = self.claim.load(Ordering::SeqCst);
        word & TASK_MASK < (word >> TASK_BITS) & TASK_MASK
    }
}

fn helper(shared: &PoolShared, me: usize) {
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    while !shared.closed.load(Ordering::Acquire) {
        if shared.work() {
            idle_since = Instant::now();
            spins = 0;
            continue;
        }
        spins += 1;
        if spins < 4096 {
            std::hint::spin_loop();
        } else if idle_since.elapsed() < Duration::from_millis(3) {
            // Busy cores: let whoever else is runnable have this one.
            std::thread::yield_now();
        } else {
            shared.sleeping[me].store(true, Ordering::SeqCst);
            if !shared.has_work() && !shared.closed.load(Ordering::SeqCst) {
                std::thread::park();
            }
            shared.sleeping[me].store(false, Ordering::SeqCst);
            idle_since = Instant::now();
            spins = 0;
        }
    }
}

impl Pool {
    /// A pool of `helpers` threads named `{name}-{i}`, started from (and so with the
    /// scheduling of) the calling thread. Helpers that cannot be started are left out.
    pub(crate) fn new(helpers: usize, name: &str) -> Self {
        let shared = Arc::new(PoolShared {
            claim: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            completed: AtomicUsize::new(0),
            sleeping: (0..helpers).map(|_| AtomicBool::new(false)).collect(),
            panicked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let helpers = (0..helpers)
            .filter_map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || helper(&shared, i))
                    .ok()
                    .map(|h| h.thread().clone())
            })
            .collect();
        Self {
            name: name.to_owned(),
            shared,
            helpers,
            busy: Mutex::new(()),
        }
    }

    /// Runs `work(0..tasks)` on the helpers and this thread; returns when all are
    /// done. A task's panic is raised again here once every task has finished.
    pub(crate) fn run(&self, tasks: usize, work: &(dyn Fn(usize) + Sync)) {
        let guard = if tasks > 1 && !self.helpers.is_empty() && (tasks as u64) <= TASK_MASK {
            self.busy.try_lock().ok()
        } else {
            None
        };
        let Some(_guard) = guard else {
            (0..tasks).for_each(work);
            return;
        };
        let job = Job { work };
        let shared = &*self.shared;
        shared.completed.store(0, Ordering::Relaxed);
        // SAFETY (for the helpers' dereference): this function does not return, nor
        // unwind, before every task has completed.
        let ptr = (&job as *const Job<'_>).cast_mut().cast::<Job<'static>>();
        shared.job.store(ptr, Ordering::Release);
        let epoch = (shared.claim.load(Ordering::Relaxed) >> (2 * TASK_BITS)) + 1;
        let word = ((epoch & 0xff_ffff) << (2 * TASK_BITS)) | ((tasks as u64) << TASK_BITS);
        shared.claim.store(word, Ordering::SeqCst);
        for (thread, sleeping) in self.helpers.iter().zip(&shared.sleeping) {
            if sleeping.load(Ordering::SeqCst) {
                thread.unpark();
            }
        }
        shared.work();
        let mut spins = 0u32;
        while shared.completed.load(Ordering::Acquire) < tasks {
            spins += 1;
            if spins < 4096 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if shared.panicked.swap(false, Ordering::Relaxed) {
            panic!("a task of the {} pool panicked", self.name);
        }
    }

    /// Runs each part once, in parallel (the last on this thread); returns when all
    /// are done.
    pub(crate) fn run_parts<F: FnOnce() + Send>(&self, parts: Vec<F>) {
        let parts: Vec<Mutex<Option<F>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
        let n = parts.len();
        // Helpers claim from the first task; the caller, claiming too, ends up with
        // whatever is left, as the scoped version ran the last part itself.
        self.run(n, &|i| {
            let part = parts[i].lock().ok().and_then(|mut p| p.take());
            if let Some(part) = part {
                part();
            }
        });
    }
}

impl Drop for Pool {
    /// Helpers end once they see the pool closed (a parked one is woken for it).
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        for thread in &self.helpers {
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_and_borrows_work() {
        let pool = Pool::new(2, "test-pool");
        for round in 0..200 {
            let mut data = vec![0usize; 1000];
            let parts: Vec<_> = data
                .chunks_mut(97)
                .enumerate()
                .map(|(i, c)| {
                    move || {
                        for v in c.iter_mut() {
                            *v += i + round;
                        }
                    }
                })
                .collect();
            pool.run_parts(parts);
            for (j, v) in data.iter().enumerate() {
                assert_eq!(*v, j / 97 + round);
            }
        }
    }

    #[test]
    fn a_panicking_task_is_raised_in_the_caller_after_the_others() {
        let pool = Pool::new(1, "test-pool");
        let done = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(8, &|i| {
                if i == 3 {
                    panic!("task 3");
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        }));
        assert!(caught.is_err());
        assert_eq!(done.load(Ordering::SeqCst), 7);
        // The pool still works afterwards.
        let sum = AtomicUsize::new(0);
        pool.run(10, &|i| {
            sum.fetch_add(i, Ordering::SeqCst);
        });
        assert_eq!(sum.load(Ordering::SeqCst), 45);
    }

    #[test]
    fn dropping_the_pool_ends_its_helpers() {
        let pool = Pool::new(2, "test-drop");
        let shared = Arc::downgrade(&pool.shared);
        pool.run(4, &|_| {});
        drop(pool);
        let start = Instant::now();
        while shared.strong_count() > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "helpers still running"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
