//! The process's memory: jemalloc's options, the C library's malloc (one arena), and
//! the gauges `/metrics` reports (jemalloc's live heap, active, resident and retained
//! bytes; SQLite's bytes, which it allocates with the C library's malloc, outside
//! jemalloc). The crate's only unsafe code: a symbol jemalloc reads, a `mallopt`
//! call, and reads of jemalloc's and SQLite's counters.

#![allow(unsafe_code)]

/// jemalloc's options, read before `main` (`_RJEM_MALLOC_CONF` still overrides): freed
/// pages go back to the system within a second instead of ten. Under the soak's mix
/// the live heap stayed flat (84 → 88 MiB over 15 minutes) while the allocator's
/// resident memory grew 143 → 173 MiB: all of it pages freed in the last few seconds
/// and not yet returned (resident minus active; the fragmentation, active minus
/// allocated, stayed at 4-6 MiB). bench/RESULTS-chaos.md has the curves.
#[cfg(target_os = "linux")]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: Option<&'static std::ffi::c_char> =
    // SAFETY: a C string literal is NUL-terminated and lives for the whole program;
    // jemalloc only reads it. The symbol is the one jemalloc declares weak for this.
    Some(unsafe { &*c"dirty_decay_ms:1000".as_ptr() });

/// Bytes SQLite holds in this process, all connections together: page caches,
/// schemas, prepared statements. Its page caches fill as the database outgrows them
/// (up to `cache_size`, 2 MiB by default, per connection), so this grows with the
/// data until that bound.
fn sqlite_memory_used() -> i64 {
    // SAFETY: sqlite3_memory_used takes no arguments and reads SQLite's own counter;
    // it is thread-safe in the modes sqlx builds SQLite in.
    unsafe { libsqlite3_sys::sqlite3_memory_used() }
}

/// Gives the C library's malloc one arena. Rust code allocates with jemalloc; glibc's
/// malloc serves only the C code the process links (SQLite, the tokenizer's regex
/// engine), so one arena is enough, and glibc keeps pages of the per-thread arenas it
/// would otherwise make: in the soak, 20-30 MiB of anonymous memory outside jemalloc
/// and SQLite appeared in minutes 6-8 and stayed; with one arena it did not
/// (bench/RESULTS-chaos.md). Call before other threads start. False when glibc
/// refused.
#[cfg(target_env = "gnu")]
pub fn one_c_malloc_arena() -> bool {
    // SAFETY: mallopt takes two integers and changes only malloc's own parameters.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
}

/// How often [`trim_c_malloc`] gives the C library's free pages back.
#[cfg(target_env = "gnu")]
const C_MALLOC_TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts a thread that gives the C library's free pages back to the system every
/// [`C_MALLOC_TRIM_EVERY`]. glibc returns memory by itself only from the top of its
/// heap; pages freed in the middle stay resident. In the soak the C code's transient
/// allocations (SQLite's buffers for large rows, the tokenizer's regex engine) left
/// 2.4 MiB free in the heap at first and 7.4 MiB from minute 6 on, with 5 MiB in use
/// throughout (bench/RESULTS-chaos.md).
#[cfg(target_env = "gnu")]
pub fn trim_c_malloc() {
    let spawned = std::thread::Builder::new()
        .name("c-malloc-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(C_MALLOC_TRIM_EVERY);
                return_free_c_pages();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the C malloc trimmer");
    }
}

/// `malloc_trim(0)`: every whole free page in the C library's arenas goes back to the
/// system. It walks the free chunks under each arena's lock. The chunks stay free in
/// the arena, so `agentbase_c_malloc_free_bytes` does not fall; the resident memory
/// does.
#[cfg(target_env = "gnu")]
fn return_free_c_pages() {
    // SAFETY: malloc_trim takes the arenas' locks itself and changes nothing a
    // caller holds.
    unsafe { libc::malloc_trim(0) };
}

/// The C library's malloc as `mallinfo2` sees it: what the C code holds (SQLite,
/// the tokenizer's regex engine), and what glibc keeps of what it freed (free
/// chunks inside its heap, which only `malloc_trim` or a free at the heap's top give
/// back). Resident memory outside jemalloc and SQLite shows up in the second.
#[cfg(target_env = "gnu")]
fn c_malloc_gauges() -> [agentbase_server::metrics::Gauge; 2] {
    use agentbase_server::metrics::Gauge;
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct of counters.
    let m = unsafe { libc::mallinfo2() };
    [
        Gauge {
            name: "agentbase_c_malloc_in_use_bytes",
            help: "Bytes the C library's malloc has handed out and not had back.",
            value: (m.uordblks + m.hblkhd) as f64,
        },
        Gauge {
            name: "agentbase_c_malloc_free_bytes",
            help: "Bytes free inside the C library's malloc heap (their whole pages are given back every 10 s; the bytes stay counted).",
            value: m.fordblks as f64,
        },
    ]
}

/// The process's memory for `/metrics`: SQLite's (it allocates with the C library's
/// malloc, outside jemalloc) and the allocator's figures: what the program holds
/// (`allocated`), the pages that holds spans (`active`), what is in memory
/// (`resident`: also the allocator's own metadata and dirty pages not yet returned)
/// and what is mapped but returned (`retained`). A figure jemalloc cannot give is
/// left out.
pub fn gauges() -> Vec<agentbase_server::metrics::Gauge> {
    use agentbase_server::metrics::Gauge;
    use tikv_jemalloc_ctl::{epoch, stats};
    let mut gauges = vec![Gauge {
        name: "agentbase_sqlite_memory_bytes",
        help: "Bytes SQLite holds (page caches, schemas, statements).",
        value: sqlite_memory_used() as f64,
    }];
    #[cfg(target_env = "gnu")]
    gauges.extend(c_malloc_gauges());
    // The counters are cached; advancing the epoch refreshes them.
    if epoch::advance().is_err() {
        return gauges;
    }
    let figures = [
        (
            "agentbase_allocator_allocated_bytes",
            "Bytes the program has allocated and not freed.",
            stats::allocated::read(),
        ),
        (
            "agentbase_allocator_active_bytes",
            "Bytes in the allocator's pages that hold live allocations.",
            stats::active::read(),
        ),
        (
            "agentbase_allocator_resident_bytes",
            "Bytes of the allocator's memory that are resident (data, metadata, dirty pages).",
            stats::resident::read(),
        ),
        (
            "agentbase_allocator_retained_bytes",
            "Bytes the allocator keeps mapped but has returned to the system.",
            stats::retained::read(),
        ),
    ];
    gauges.extend(figures.into_iter().filter_map(|(name, help, value)| {
        value.ok().map(|v| Gauge {
            name,
            help,
            value: v as f64,
        })
    }));
    gauges
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[cfg(target_env = "gnu")]
    #[test]
    fn the_c_librarys_malloc_accepts_one_arena() {
        assert!(super::one_c_malloc_arena());
    }

    /// Anonymous resident KiB of this process.
    #[cfg(target_env = "gnu")]
    fn rss_anon_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[cfg(target_env = "gnu")]
    #[test]
    fn trimming_gives_pages_freed_inside_the_c_heap_back() {
        // 48 MiB in 64 KiB blocks (below glibc's mmap threshold, so inside its heap),
        // then all but the last freed: the free space is below a live block, where
        // glibc does not return it by itself.
        const BLOCK: usize = 64 << 10;
        // SAFETY: plain malloc/free of blocks this test owns; each is written so
        // its pages are resident, and freed once.
        let blocks: Vec<*mut u8> = (0..768)
            .map(|_| unsafe {
                let p = libc::malloc(BLOCK).cast::<u8>();
                assert!(!p.is_null());
                std::ptr::write_bytes(p, 1, BLOCK);
                p
            })
            .collect();
        let (last, freed) = blocks.split_last().unwrap();
        for &p in freed {
            // SAFETY: allocated above, freed once.
            unsafe { libc::free(p.cast()) };
        }
        let before = rss_anon_kib();
        super::return_free_c_pages();
        let after = rss_anon_kib();
        // SAFETY: allocated above, freed once.
        unsafe { libc::free(last.cast()) };
        assert!(
            before.saturating_sub(after) > 24 << 10,
            "RssAnon {before} KiB before the trim, {after} KiB after"
        );
    }

    #[test]
    fn the_allocator_returns_freed_pages_within_a_second() {
        // `opt.*` is what jemalloc read at start: our `malloc_conf`, unless the
        // environment overrode it.
        if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
            return;
        }
        // SAFETY: `opt.dirty_decay_ms` is an ssize_t, read into an isize.
        let decay: isize =
            unsafe { tikv_jemalloc_ctl::raw::read(b"opt.dirty_decay_ms\0") }.unwrap();
        assert_eq!(decay, 1000);
        // SAFETY: `opt.background_thread` is a bool.
        let background: bool =
            unsafe { tikv_jemalloc_ctl::raw::read(b"opt.background_thread\0") }.unwrap();
        assert!(background, "the build's own option still applies");
    }
}
