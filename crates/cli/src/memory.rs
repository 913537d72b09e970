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
