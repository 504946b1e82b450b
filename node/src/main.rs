//! The `hearth` binary; everything lives in the `hearth_node` library.

fn main() -> std::process::ExitCode {
    tune_malloc();
    hearth_node::cli::main()
}

/// glibc's defaults suit short programs, not a node that holds a large
/// document and moves many buffers between threads:
/// - each thread that allocates gets its own heap arena (up to 8 per core),
///   and their free memory is rarely returned: with the blocking threads of
///   scans and transfers, a node syncing 20,000 files peaked at 419 MB RSS,
///   against 156 MB with two arenas;
/// - blocks above a threshold that glibc raises as large blocks are freed
///   (up to 32 MB) come from the heap, where the holes they leave stay
///   mapped: with blocks of 128 KiB and more always mmapped (the Automerge
///   document's columns, messages of changes, chunks), and free heap memory
///   above 1 MiB given back, a 100,000-file first sync peaked at 290 / 342
///   MB (owner / new member) instead of 305 / 393 (bench/metadata.py).
///
/// Set before any thread starts; the `MALLOC_*` variables of the
/// environment still win, as glibc documents.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 * 1024),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 1024 * 1024),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt only sets an allocator parameter; called while
            // the process has a single thread.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}
