//! Reads and writes that bypass the page cache (Linux `O_DIRECT`), for
//! bytes this node stores for others and does not read back soon: the
//! shards it hosts for a friend's backup, written once and read once, by a
//! restore.
//!
//! A buffered write copies every byte into the page cache, which first has
//! to find (and zero, and account) a page for it, then evicts the node's
//! own warm data to make room for a friend's opaque bytes. On the 2-core
//! bench machine the friends' buffered shard writes were the largest single
//! cost of a backup (`perf`: 16 % of all samples in
//! `copy_folio_from_iter_atomic`); written uncached they cost a copy into an
//! aligned buffer of at most 1 MiB. The file is flushed (`fsync`) before the write
//! returns, exactly as a buffered write followed by `sync_all`.
//!
//! A shard read for a restore is read the same way: in one request as large
//! as the shard, where a buffered read of a cold file advances by the
//! kernel's readahead window (128 KiB by default) and copies every byte
//! out of the page cache again.
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

/// A zeroed buffer whose bytes `start..` (exactly `len` of them) begin at
/// an [`ALIGN`]ed address: an aligned window of an over-sized `Vec`, so no
/// unsafe allocation.
fn aligned(len: usize) -> (Vec<u8>, usize) {
    let mut raw = vec![0u8; len + ALIGN];
    let start = raw.as_ptr().align_offset(ALIGN);
    raw.truncate(start + len);
    (raw, start)
}

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
    let (mut raw, start) = aligned(BOUNCE.min(data.len().next_multiple_of(ALIGN)));
    let bounce = &mut raw[start..];
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

/// Reads `file` from `offset` to its end (`total` bytes long), uncached
/// where the file system allows. The bytes are returned as a window of an
/// aligned buffer, without a copy.
pub fn read_rest(file: &File, offset: u64, total: u64) -> io::Result<bytes::Bytes> {
    match read_direct(file, offset, total) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::debug!("uncached read refused ({e}); reading through the page cache");
            set_direct(file, false)?;
            let mut out = vec![0u8; total.saturating_sub(offset) as usize];
            file.read_exact_at(&mut out, offset)?;
            Ok(out.into())
        }
        Err(e) => Err(e),
    }
}

#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL / F_SETFL on a descriptor this `File` owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on { flags | libc::O_DIRECT } else { flags & !libc::O_DIRECT };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> io::Result<()> {
    if on {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    } else {
        Ok(())
    }
}

fn read_direct(file: &File, offset: u64, total: u64) -> io::Result<bytes::Bytes> {
    set_direct(file, true)?;
    let from = offset - offset % ALIGN as u64;
    let span = (total.saturating_sub(from) as usize).next_multiple_of(ALIGN);
    let (mut raw, start) = aligned(span);
    let window = &mut raw[start..];
    let mut got = 0usize;
    // Bounded: every round reads at least one byte or ends.
    while got < span {
        let n = file.read_at(&mut window[got..], from + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let want = (total - from) as usize;
    if got < want {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("the file ended {} bytes early", want - got)));
    }
    let skip = (offset - from) as usize;
    Ok(bytes::Bytes::from(raw).slice(start + skip..start + want))
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
            let file = File::open(&path).expect("open");
            for offset in [0, 1, 4096, len as u64 / 2, len as u64] {
                let offset = offset.min(len as u64);
                let rest = read_rest(&file, offset, len as u64).expect("read back");
                assert_eq!(&rest[..], &data[offset as usize..], "length {len} from {offset}");
            }
        }
    }

    /// The same through the `O_DIRECT` functions themselves, so that a
    /// silent fall-back to the page cache cannot hide a wrong offset or pad.
    #[test]
    fn the_uncached_path_itself_is_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..BOUNCE + 4097).map(|i| (i * 13 % 253) as u8).collect();
        let path = dir.path().join("direct");
        match write_direct(&path, &data) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("SKIPPED: {} has no O_DIRECT ({e})", dir.path().display());
                return;
            }
            other => other.expect("uncached write"),
        }
        assert_eq!(std::fs::read(&path).expect("read"), data);
        let file = File::open(&path).expect("open");
        let rest = read_direct(&file, 5000, data.len() as u64).expect("uncached read");
        assert_eq!(&rest[..], &data[5000..]);
        // A file shorter than its record says (a truncated shard): an error, not short bytes.
        let err = read_rest(&file, 0, data.len() as u64 + 10).expect_err("short file");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
