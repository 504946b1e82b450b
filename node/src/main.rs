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
/// A whole-instance restore (`hearth restore`, `hearth backup restore
/// --key`) is a one-shot process that moves the backup through 8-32 MiB
/// buffers: there, every mmapped buffer costs a page fault per 4 KiB, a
/// fifth of the restore's time on the bench data (bench/README.md), and
/// the memory given back matters little, so blocks up to 32 MiB (glibc's
/// largest mmap threshold) come from the heap.
///
/// Set before any thread starts; the `MALLOC_*` variables of the
/// environment still win, as glibc documents.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let secret = ["--recovery-key", "--key", "--passphrase", "--share"];
        let restoring = args.iter().any(|a| a == "restore") && args.iter().any(|a| secret.iter().any(|s| a == s));
        let (mmap, trim) = if restoring { (32 << 20, 256 << 20) } else { (128 * 1024, 1024 * 1024) };
        for (variable, parameter, value) in [
            ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
            ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, mmap),
            ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, trim),
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
}
