//! The `hearth` binary; everything lives in the `hearth_node` library.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    hearth_node::cli::main()
}

/// glibc gives each thread that allocates its own heap arena (up to 8 per
/// core) and rarely returns their free memory: with the blocking threads of
/// scans and transfers, a node syncing 20,000 files peaked at 419 MB RSS,
/// against 156 MB with two arenas, for the same work (bench/metadata.py).
/// Set before any thread starts; `MALLOC_ARENA_MAX` in the environment
/// still wins, as glibc documents.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called while the
        // process has a single thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
