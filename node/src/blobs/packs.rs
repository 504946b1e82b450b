//! Packs: the chunks of large contents, many to a file.
//!
//! One file per chunk costs a create, a rename and an inode per 64 KiB:
//! writing 1 GiB as 16 384 chunk files took 2.1 s of CPU on the development
//! VM, against 0.33 s as one file, and on two cores that decided how fast a
//! large file could arrive. So the chunks of a content of at least
//! [`PACK_MIN`] bytes (imported by a scan or fetched from a member) are
//! appended to a pack of their own instead; small contents keep a file per
//! chunk (they are one chunk, or a few).
//!
//! Layout, under `ROOT/packs/`:
//! - `<id>.pack`: chunk bytes back to back, append-only;
//! - `<id>.idx`: append-only records of [`RECORD_LEN`] bytes: a kind byte
//!   (1: the chunk `hash` is at `offset`, `len` bytes; 0: that chunk was
//!   removed), the 32-byte hash, `offset` (u64) and `len` (u32), big-endian.
//!
//! The in-memory index (hash to pack, offset and length: about 60 bytes per
//! chunk, 0.8 MB per GiB of large contents) is rebuilt at open by replaying
//! the records. A record whose range ends past its pack's length (data lost
//! to a crash before it reached the disk) is dropped. Records are written
//! after their data, but neither is fsynced for fetched chunks (like chunk
//! files), so the store's rule stands: every read is hashed, and a chunk
//! that does not match is removed and fetched again.
//!
//! Removing a chunk appends a removal record and, on Linux, punches a hole
//! over its bytes, so retention frees space without rewriting packs; a pack
//! with no live chunk left (and no writer) is deleted.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use hearth_protocol::blob::ChunkHash;

/// Contents of at least this many bytes keep their chunks in a pack.
pub const PACK_MIN: u64 = 8 * 1024 * 1024;
/// Size of one index record.
pub const RECORD_LEN: usize = 1 + 32 + 8 + 4;
const KIND_REMOVED: u8 = 0;
const KIND_CHUNK: u8 = 1;

/// Where a chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    pack: u32,
    offset: u64,
    len: u32,
}

#[derive(Debug)]
struct PackInfo {
    id: String,
    /// Chunks of this pack in the index.
    live: u64,
    /// A writer is appending to it: not deleted even when `live` is 0.
    writing: bool,
}

#[derive(Debug, Default)]
struct State {
    /// By pack number; `None` once deleted.
    packs: Vec<Option<PackInfo>>,
    chunks: HashMap<ChunkHash, Loc>,
}

/// The packs of one store and their index. Shared by the store's clones.
#[derive(Debug)]
pub struct Packs {
    dir: PathBuf,
    state: RwLock<State>,
}

fn record(kind: u8, hash: &ChunkHash, offset: u64, len: u32) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    r[0] = kind;
    r[1..33].copy_from_slice(&hash.0);
    r[33..41].copy_from_slice(&offset.to_be_bytes());
    r[41..45].copy_from_slice(&len.to_be_bytes());
    r
}

fn parse(r: &[u8]) -> (u8, ChunkHash, u64, u32) {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&r[1..33]);
    let offset = u64::from_be_bytes(r[33..41].try_into().unwrap_or_default());
    let len = u32::from_be_bytes(r[41..45].try_into().unwrap_or_default());
    (r[0], ChunkHash(hash), offset, len)
}

impl Packs {
    /// Opens (creating) `dir` and rebuilds the index from its `.idx` files.
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        let mut state = State::default();
        let mut names: Vec<String> = fs::read_dir(&dir)?
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".idx")).map(str::to_owned))
            .collect();
        names.sort();
        for id in names {
            let data_len = fs::metadata(dir.join(format!("{id}.pack"))).map(|m| m.len()).unwrap_or(0);
            let mut bytes = Vec::new();
            File::open(dir.join(format!("{id}.idx")))?.read_to_end(&mut bytes)?;
            let number = state.packs.len() as u32;
            let mut live: HashMap<ChunkHash, Loc> = HashMap::new();
            // A torn last record (cut by a crash) is ignored.
            for r in bytes.chunks_exact(RECORD_LEN) {
                let (kind, hash, offset, len) = parse(r);
                match kind {
                    KIND_CHUNK if offset.saturating_add(u64::from(len)) <= data_len => {
                        live.insert(hash, Loc { pack: number, offset, len });
                    }
                    KIND_REMOVED => {
                        live.remove(&hash);
                    }
                    _ => {}
                }
            }
            if live.is_empty() {
                let _ = fs::remove_file(dir.join(format!("{id}.pack")));
                let _ = fs::remove_file(dir.join(format!("{id}.idx")));
                continue;
            }
            state.packs.push(Some(PackInfo { id, live: 0, writing: false }));
            // Two packs may hold the same chunk (two downloads at once): one
            // is enough to find it; the other copy is dead weight until its
            // pack goes.
            for (hash, loc) in live {
                state.chunks.entry(hash).or_insert(loc);
            }
        }
        let mut counts = vec![0u64; state.packs.len()];
        for loc in state.chunks.values() {
            counts[loc.pack as usize] += 1;
        }
        for (slot, n) in state.packs.iter_mut().zip(counts) {
            if let Some(info) = slot {
                info.live = n;
                if n == 0 {
                    // Every chunk it holds is indexed in another pack.
                    let _ = fs::remove_file(dir.join(format!("{}.pack", info.id)));
                    let _ = fs::remove_file(dir.join(format!("{}.idx", info.id)));
                    *slot = None;
                }
            }
        }
        Ok(Self { dir, state: RwLock::new(state) })
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    /// Whether a pack holds `hash` (with length `len`, if given).
    pub fn contains(&self, hash: &ChunkHash, len: Option<u32>) -> bool {
        self.read_state().chunks.get(hash).is_some_and(|loc| len.is_none_or(|l| l == loc.len))
    }

    /// The chunk's bytes as stored, unverified (the store hashes them), and
    /// the pack file they came from; `None` if no pack holds it.
    pub fn read(&self, hash: &ChunkHash) -> io::Result<Option<(Vec<u8>, PathBuf)>> {
        let (loc, id) = {
            let state = self.read_state();
            let Some(loc) = state.chunks.get(hash).copied() else { return Ok(None) };
            let Some(Some(info)) = state.packs.get(loc.pack as usize) else { return Ok(None) };
            (loc, info.id.clone())
        };
        let path = self.path(&id, "pack");
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = vec![0u8; loc.len as usize];
        match file.read_exact_at(&mut bytes, loc.offset) {
            Ok(()) => Ok(Some((bytes, path))),
            // Shorter than the index says: the bytes never reached the disk.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some((Vec::new(), path))),
            Err(e) => Err(e),
        }
    }

    /// Forgets `hash` (a removal record; its bytes are punched out where the
    /// system can); returns whether a pack held it.
    pub fn remove(&self, hash: &ChunkHash) -> io::Result<bool> {
        let mut state = self.write_state();
        let Some(loc) = state.chunks.remove(hash) else { return Ok(false) };
        let Some(Some(info)) = state.packs.get_mut(loc.pack as usize) else { return Ok(true) };
        info.live = info.live.saturating_sub(1);
        let id = info.id.clone();
        if info.live == 0 && !info.writing {
            state.packs[loc.pack as usize] = None;
            drop(state);
            fs::remove_file(self.path(&id, "pack"))?;
            fs::remove_file(self.path(&id, "idx"))?;
            return Ok(true);
        }
        drop(state);
        let mut idx = OpenOptions::new().append(true).open(self.path(&id, "idx"))?;
        idx.write_all(&record(KIND_REMOVED, hash, loc.offset, loc.len))?;
        punch_hole(&self.path(&id, "pack"), loc.offset, u64::from(loc.len));
        Ok(true)
    }

    /// A new pack to append chunks to.
    pub fn writer(self: &Arc<Self>) -> io::Result<PackWriter> {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let data = OpenOptions::new().create_new(true).append(true).read(true).open(self.path(&id, "pack"))?;
        let idx = OpenOptions::new().create_new(true).append(true).open(self.path(&id, "idx"))?;
        let number = {
            let mut state = self.write_state();
            state.packs.push(Some(PackInfo { id: id.clone(), live: 0, writing: true }));
            (state.packs.len() - 1) as u32
        };
        Ok(PackWriter { packs: self.clone(), number, id, files: Mutex::new(Files { data, idx, end: 0 }) })
    }

    /// Bytes in pack files (for status and tests): their lengths on disk,
    /// holes punched by removals included.
    pub fn bytes(&self) -> u64 {
        let state = self.read_state();
        state.packs.iter().flatten().filter_map(|p| fs::metadata(self.path(&p.id, "pack")).ok()).map(|m| m.len()).sum()
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn punch_hole(path: &Path, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let Ok(file) = OpenOptions::new().write(true).open(path) else { return };
    // SAFETY: `file` is open for the duration of the call; a failure (a file
    // system without holes) only means the space is freed with the pack.
    unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        );
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn punch_hole(_: &Path, _: u64, _: u64) {}

#[derive(Debug)]
struct Files {
    data: File,
    idx: File,
    end: u64,
}

/// Appends chunks to one pack; the chunks are found by the store as soon as
/// [`Self::append`] returns. Used by one download or one import; several
/// threads may append at once.
#[derive(Debug)]
pub struct PackWriter {
    packs: Arc<Packs>,
    number: u32,
    id: String,
    files: Mutex<Files>,
}

impl PackWriter {
    /// Appends the chunks no pack holds yet (each `hash == H(bytes)`, the
    /// caller's duty), then indexes them.
    pub fn append<'a>(&self, chunks: impl IntoIterator<Item = (&'a ChunkHash, &'a [u8])>) -> io::Result<()> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let mut added: Vec<(ChunkHash, Loc)> = Vec::new();
        let mut records = Vec::new();
        for (hash, bytes) in chunks {
            if self.packs.contains(hash, Some(bytes.len() as u32)) || added.iter().any(|(h, _)| h == hash) {
                continue;
            }
            let loc = Loc { pack: self.number, offset: files.end, len: bytes.len() as u32 };
            files.data.write_all(bytes)?;
            files.end += bytes.len() as u64;
            records.extend_from_slice(&record(KIND_CHUNK, hash, loc.offset, loc.len));
            added.push((*hash, loc));
        }
        if added.is_empty() {
            return Ok(());
        }
        files.idx.write_all(&records)?;
        drop(files);
        let mut state = self.packs.write_state();
        let mut indexed = 0;
        for (hash, loc) in added {
            if let std::collections::hash_map::Entry::Vacant(e) = state.chunks.entry(hash) {
                e.insert(loc);
                indexed += 1;
            }
        }
        if let Some(Some(info)) = state.packs.get_mut(self.number as usize) {
            info.live += indexed;
        }
        Ok(())
    }

    /// Makes what was appended durable (data, index, and the files' names).
    pub fn sync(&self) -> io::Result<()> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.data.sync_data()?;
        files.idx.sync_data()?;
        File::open(&self.packs.dir)?.sync_all()
    }

    /// The pack's id (its file names).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        let mut state = self.packs.write_state();
        let Some(Some(info)) = state.packs.get_mut(self.number as usize) else { return };
        info.writing = false;
        if info.live == 0 {
            let id = info.id.clone();
            state.packs[self.number as usize] = None;
            drop(state);
            let _ = fs::remove_file(self.packs.path(&id, "pack"));
            let _ = fs::remove_file(self.packs.path(&id, "idx"));
        }
    }
}
