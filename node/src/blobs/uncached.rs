//! Writes that bypass the page cache (Linux `O_DIRECT`), for bytes this
//! node stores but will not read back soon: the shards it hosts for a
//! friend's backup.
//!
//! A buffered write copies every byte into the page cache, which first has
//! to find (and zero, and account) a page for it, then evicts the node's
//! own warm data to make room for a friend's opaque bytes. On the 2-core
//! bench machine the friends' buffered shard writes were the largest single
//! cost of a backup (`perf`: 16 % of all samples in
//! `copy_folio_from_iter_atomic`); written uncached they cost a copy into a
//! reused aligned buffer. The file is flushed (`fsync`) before the write
//! returns, exactly as a buffered write followed by `sync_all`.
//!
//! Where the file system refuses `O_DIRECT` (tmpfs, some FUSE and network
//! file systems) or its alignment rules, the write falls back to a buffered
//! one: the result on disk is the same.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Alignment of offsets, lengths and memory for `O_DIRECT`: 4 KiB covers
/// the logical block sizes of current disks (512 B or 4 KiB).
const ALIGN: usize = 4096;
/// Bytes written per system call (a multiple of [`ALIGN`]).
const BOUNCE: usize = 1 << 20;

/// Creates (or truncates) `path` with exactly `data`, flushed to disk.
pub fn write_whole(path: &Path, data: &[u8]) -> io::Result<()> {
    match write_direct(path, data) {
        Ok(()) => Ok(()),
        // EINVAL: no O_DIRECT here, or other alignment rules.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::debug!(path = %path.display(), "uncached write refused ({e}); writing through the page cache");
            write_buffered(path, data)
        }
        Err(e) => Err(e),
    }
}

fn write_buffered(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(target_os = "linux")]
fn write_direct(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(path)?;
    // An aligned window of an over-sized buffer: no unsafe allocation.
    let mut raw = vec![0u8; BOUNCE.min(data.len().next_multiple_of(ALIGN)) + ALIGN];
    let start = raw.as_ptr().align_offset(ALIGN);
    let bounce = &mut raw[start..start + BOUNCE.min(data.len().next_multiple_of(ALIGN))];
    let mut at = 0usize;
    while at < data.len() {
        let piece = &data[at..(at + bounce.len()).min(data.len())];
        // The last piece is zero-padded to a whole block, then cut off.
        let padded = piece.len().next_multiple_of(ALIGN);
        bounce[..piece.len()].copy_from_slice(piece);
        bounce[piece.len()..padded].fill(0);
        file.write_all_at(&bounce[..padded], at as u64)?;
        at += piece.len();
    }
    file.set_len(data.len() as u64)?;
    file.sync_all()
}

#[cfg(not(target_os = "linux"))]
fn write_direct(path: &Path, data: &[u8]) -> io::Result<()> {
    write_buffered(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_files_of_any_length_are_written_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        for len in [0usize, 1, 4095, 4096, 4097, BOUNCE - 1, BOUNCE, BOUNCE + 5000, 3 * BOUNCE + 1] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, b"an older, longer content that must go away entirely").expect("old");
            write_whole(&path, &data).expect("write");
            assert_eq!(std::fs::read(&path).expect("read"), data, "length {len}");
        }
    }
}
