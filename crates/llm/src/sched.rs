//! Scheduling priority for background model work: the embedding worker runs below the
//! threads that answer requests, so a burst of trainings slows itself, not every
//! tenant's API calls (issue 12's soak measured authenticated GETs at 7.6x their
//! unloaded p99 while 178 trainings embedded at the same priority).

/// Raises the calling thread's nice value to `nice` (0 = normal, 19 = lowest) and
/// moves it to the `SCHED_IDLE` policy. Threads it starts afterwards inherit both, so
/// the encoder's scoped worker threads run so too. Linux keeps both per thread;
/// elsewhere this does nothing. It never raises priority: a thread already nicer
/// than `nice` keeps its value.
///
/// Why `SCHED_IDLE` and not only the nice value: the kernel's fair scheduler (EEVDF)
/// lets a running thread finish its slice before a woken one of better nice gets
/// the CPU, so on two cores an API request that woke behind background work waited
/// up to a slice (milliseconds; issue 12's soak, bench/RESULTS-chaos.md). A thread of a normal
/// policy preempts a `SCHED_IDLE` one at once. Among themselves, background threads
/// still share by their nice values.
#[cfg(target_os = "linux")]
pub fn lower_thread_priority(nice: i32) -> std::io::Result<()> {
    if nice <= 0 {
        return Ok(());
    }
    let nice = nice.min(19);
    #[allow(unsafe_code)]
    // SAFETY: `param` is a valid sched_param that lives across the call; pid 0 names
    // the calling thread.
    let idle = unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param)
    };
    if idle != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // On Linux `who = 0` with PRIO_PROCESS names the calling thread (see setpriority(2),
    // NOTES: the nice value is a per-thread attribute under NPTL). getpriority returns
    // the nice value itself, so -1 is only an error when errno says so.
    #[allow(unsafe_code)]
    // SAFETY: errno is this thread's own variable; getpriority takes plain integers.
    let current = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    };
    let error = std::io::Error::last_os_error();
    if current == -1 && error.raw_os_error().is_some_and(|e| e != 0) {
        return Err(error);
    }
    // Never raise priority: a thread already nicer (a server started under `nice -n
    // 15`) keeps its value. (Root could lower it; nobody else can.)
    if current >= nice {
        return Ok(());
    }
    #[allow(unsafe_code)]
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    match unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// See the Linux version: elsewhere the thread keeps its priority.
#[cfg(not(target_os = "linux"))]
pub fn lower_thread_priority(_nice: i32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's nice value, from /proc (field 19 of stat, after the
    /// parenthesised command name).
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn lowers_only_the_calling_thread_and_what_it_starts() {
        let before = own_nice();
        let (mine, child) = std::thread::spawn(|| {
            lower_thread_priority(7).unwrap();
            let child = std::thread::spawn(own_nice).join().unwrap();
            (own_nice(), child)
        })
        .join()
        .unwrap();
        assert_eq!(mine, before.max(7));
        assert_eq!(child, mine, "a thread started after inherits the value");
        assert_eq!(own_nice(), before, "other threads keep theirs");
    }

    #[test]
    fn zero_and_negative_leave_the_thread_alone() {
        let before = own_nice();
        let after = std::thread::spawn(|| {
            lower_thread_priority(0).unwrap();
            lower_thread_priority(-5).unwrap();
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(after, before);
    }

    /// The calling thread's scheduling policy, from /proc (field 41 of stat).
    fn own_policy() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(38).unwrap().parse().unwrap()
    }

    #[test]
    fn background_threads_take_the_idle_policy() {
        let before = own_policy();
        let (mine, child) = std::thread::spawn(|| {
            lower_thread_priority(10).unwrap();
            let child = std::thread::spawn(own_policy).join().unwrap();
            (own_policy(), child)
        })
        .join()
        .unwrap();
        assert_eq!(mine, libc::SCHED_IDLE);
        assert_eq!(child, libc::SCHED_IDLE, "inherited");
        assert_eq!(own_policy(), before);
    }

    #[test]
    fn never_raises_priority_back() {
        let after = std::thread::spawn(|| {
            lower_thread_priority(12).unwrap();
            lower_thread_priority(3).unwrap();
            own_nice()
        })
        .join()
        .unwrap();
        assert!(after >= 12, "nice {after}");
    }
}
