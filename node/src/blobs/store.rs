//! The on-disk content store: blobs (chunks and encoded manifests) kept by
//! BLAKE3 hash under one directory, typically `HOME/blobs`.
//!
//! Layout: the blob named by hex `abcdef…` (64 digits) is the file
//! `ROOT/ab/cdef…` (62 digits), holding exactly the blob's bytes; `ROOT/tmp/`
//! holds files being written and is emptied on open. 256 fan-out directories
//! keep directories small for stores of millions of chunks. `ROOT/partial/`
//! holds files being assembled by downloads ([`Assembly`]), named by content
//! id: each fetched chunk is also written at its offsets there, so that once
//! the download completes the file is already in place and writing it out
//! costs a verification pass and a rename instead of a second copy of every
//! byte (see [`BlobStore::stage`]).
//!
//! `ROOT/packs/` holds the chunks of large contents, many to a file
//! ([`super::packs`]); every method here finds a chunk in either place.
//!
//! Invariants:
//! - A blob file appears under its final name only complete (write to
//!   `tmp/`, rename). Blobs imported from local files are also fsynced
//!   before the rename and the directory after it, so a crash leaves either
//!   no file or the whole blob, plus temporary files removed at the next
//!   open. Blobs received from peers are not fsynced (below).
//! - Nothing is returned without being hashed first: a blob file whose bytes
//!   no longer match its name (disk corruption, someone editing the store) is
//!   reported, deleted and treated as missing, never served or written out.
//! - Files materialised from a manifest appear atomically: a temporary file in
//!   the destination's directory, fsynced, renamed over the destination only
//!   once every chunk was written; on any error nothing is left behind.
//! - Blobs received from peers are not fsynced ([`BlobStore::put_many`]) and
//!   partial files are trusted for nothing: every chunk is verified when it
//!   is read back, and a torn one is fetched again.
//!
//! All methods take `&self` and may run on several threads at once (two
//! writers of one blob both rename identical bytes into place). One process
//! should own a store directory, since opening it clears `tmp/`. The methods
//! block: call them from `spawn_blocking` in async code.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use hearth_protocol::blob::{self, ChunkHash, ChunkRef, Get, Manifest, Response};
use tempfile::NamedTempFile;

use super::chunker::Chunker;
use super::packs::{PackWriter, Packs, PACK_MIN};
use super::BlobError;

const TMP_DIR: &str = "tmp";
const PACKS_DIR: &str = "packs";
const PARTIAL_DIR: &str = "partial";
/// A partial file untouched for this long belongs to a download that will
/// not finish (the content was superseded): removed when the store opens.
const PARTIAL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Partial files of at least this size are flushed to disk batch by batch
/// while they download (smaller ones only when staged: one fsync per file).
const SYNC_AHEAD_MIN: u64 = 8 * 1024 * 1024;

/// Threads writing blobs during an import ([`BlobStore::import_file`]).
///
/// Each imported blob is fsynced before its rename (a manifest will name it,
/// and nothing else holds its bytes: unlike a fetched chunk it cannot be
/// fetched again). One thread doing that pays one
/// journal commit per chunk (about 2.4 ms on the development VM's ext4: 30
/// MB/s); concurrent fsyncs share commits, so a few writers bring storing
/// close to chunking speed. The threads mostly wait on the disk, so more
/// writers than cores is the point.
pub const WRITERS: usize = 8;

/// Whether [`BlobStore::flush`] makes the whole file system durable (Linux:
/// `syncfs`), so that imports can defer their fsyncs to it.
const FLUSH_WHOLE_FS: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another writer panicked; the data (an error
    // slot, a set of paths) is still meaningful.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handle on a store directory. Cheap to clone-by-path; share it behind an
/// `Arc` for convenience.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    packs: std::sync::Arc<Packs>,
    /// Per partial file (by content id), the chunks this process wrote
    /// into it after they were verified: staging trusts those ranges
    /// without reading them back (nothing else writes partial files, and a
    /// restart forgets this, so after a crash every range is hashed).
    written: std::sync::Arc<Mutex<std::collections::HashMap<ChunkHash, std::collections::HashSet<ChunkHash>>>>,
}

/// A file written from a manifest into a temporary file next to its future
/// place, complete and fsynced, not yet visible. Dropping it deletes it; see
/// [`BlobStore::stage`].
#[derive(Debug)]
pub struct Staged {
    file: NamedTempFile,
}

/// Where the chunks of one file go in its partial file: for each distinct
/// chunk, the offsets at which the manifest lists it. Built once per
/// download, shared with the writer tasks.
#[derive(Debug)]
pub struct Assembly {
    id: ChunkHash,
    size: u64,
    offsets: std::collections::BTreeMap<ChunkHash, Vec<u64>>,
}

impl Assembly {
    /// The assembly plan of `manifest`.
    pub fn new(manifest: &Manifest) -> Self {
        let mut offsets: std::collections::BTreeMap<ChunkHash, Vec<u64>> = Default::default();
        let mut at = 0u64;
        for c in manifest.chunks() {
            offsets.entry(c.hash).or_default().push(at);
            at += u64::from(c.len);
        }
        Self { id: manifest.id(), size: manifest.size(), offsets }
    }

    /// The content id of the file.
    pub fn id(&self) -> ChunkHash {
        self.id
    }
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root`, and deletes
    /// temporary files left by a crash.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&tmp).map_err(BlobError::io("create the blob directory", &tmp))?;
        for entry in fs::read_dir(&tmp).map_err(BlobError::io("list", &tmp))? {
            let path = entry.map_err(BlobError::io("list", &tmp))?.path();
            // Best effort: a leftover that cannot be removed is harmless.
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover temporary blob file");
            }
        }
        let partial = root.join(PARTIAL_DIR);
        fs::create_dir_all(&partial).map_err(BlobError::io("create the blob directory", &partial))?;
        for entry in fs::read_dir(&partial).map_err(BlobError::io("list", &partial))? {
            let entry = entry.map_err(BlobError::io("list", &partial))?;
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > PARTIAL_MAX_AGE));
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
        let packs_dir = root.join(PACKS_DIR);
        let packs = Packs::open(packs_dir.clone()).map_err(BlobError::io("open the packs in", &packs_dir))?;
        Ok(Self { root, tmp, packs: std::sync::Arc::new(packs), written: Default::default() })
    }

    /// A new pack for the chunks of one large content (a download or an
    /// import of at least [`PACK_MIN`] bytes).
    pub fn pack_writer(&self) -> Result<PackWriter, BlobError> {
        let dir = self.root.join(PACKS_DIR);
        self.packs.writer().map_err(BlobError::io("create a pack in", &dir))
    }

    /// Whether contents of `size` bytes keep their chunks in a pack.
    pub fn packs_content(size: u64) -> bool {
        size >= PACK_MIN
    }

    /// Bytes held in packs.
    pub fn pack_bytes(&self) -> u64 {
        self.packs.bytes()
    }

    /// Stores verified chunks (each `hash == H(bytes)`, the caller's duty)
    /// in `pack`, unsynced like [`Self::put_many_verified`].
    pub fn put_many_in(&self, pack: &PackWriter, blobs: &[(ChunkHash, Vec<u8>)]) -> Result<(), BlobError> {
        let dir = self.root.join(PACKS_DIR);
        pack.append(blobs.iter().map(|(h, b)| (h, b.as_slice()))).map_err(BlobError::io("write to a pack in", &dir))
    }

    /// Where the file of content `id` is assembled while it downloads.
    pub fn partial_path(&self, id: &ChunkHash) -> PathBuf {
        self.root.join(PARTIAL_DIR).join(id.to_string())
    }

    /// Writes verified chunks of the download `assembly` at each of their
    /// offsets in its partial file. For a large file they are also flushed
    /// to disk now, so that the disk works during the transfer rather than
    /// in the final fsync when the file is staged. `chunks` must be verified
    /// (each hashes to its name); a chunk the manifest does not list is
    /// skipped.
    pub fn write_partial(&self, assembly: &Assembly, chunks: &[(ChunkHash, Vec<u8>)]) -> Result<(), BlobError> {
        use std::os::unix::fs::FileExt;
        let path = self.partial_path(&assembly.id);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(BlobError::io("open", &path))?;
        for (hash, bytes) in chunks {
            for &offset in assembly.offsets.get(hash).map(Vec::as_slice).unwrap_or_default() {
                file.write_all_at(bytes, offset).map_err(BlobError::io("write", &path))?;
            }
        }
        if assembly.size >= SYNC_AHEAD_MIN {
            file.sync_data().map_err(BlobError::io("flush to disk", &path))?;
        }
        lock(&self.written).entry(assembly.id).or_default().extend(chunks.iter().map(|(h, _)| *h));
        Ok(())
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `hash` lives (whether or not it is there).
    pub fn path_of(&self, hash: &ChunkHash) -> PathBuf {
        let hex = hash.to_string();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// Whether a file for `hash` exists. Not verified: [`Self::get`] may still
    /// find it corrupted.
    pub fn has(&self, hash: &ChunkHash) -> bool {
        self.path_of(hash).is_file() || self.packs.contains(hash, None)
    }

    /// Stores `bytes` under their hash, durably; returns the hash. Idempotent.
    pub fn put(&self, bytes: &[u8]) -> Result<ChunkHash, BlobError> {
        let hash = ChunkHash::of(bytes);
        self.put_unsynced(&hash, bytes)?.map(|dir| sync_dir(&dir)).transpose()?;
        Ok(hash)
    }

    /// Stores `bytes` under `hash` (bytes received from a peer), refusing
    /// them if they do not hash to it.
    pub fn put_verified(&self, hash: &ChunkHash, bytes: &[u8]) -> Result<(), BlobError> {
        let actual = ChunkHash::of(bytes);
        if actual != *hash {
            return Err(BlobError::HashMismatch { expected: *hash, actual });
        }
        self.put_unsynced(hash, bytes)?.map(|dir| sync_dir(&dir)).transpose()?;
        Ok(())
    }

    /// Writes the blob file durably but leaves the fsync of its directory to
    /// the caller, returning that directory if a file was renamed into it
    /// (`None`: it was already there). The caller owns `hash == H(bytes)`.
    fn put_unsynced(&self, hash: &ChunkHash, bytes: &[u8]) -> Result<Option<PathBuf>, BlobError> {
        self.write_blob(hash, bytes, true)
    }

    /// Writes the blob file (through `tmp/` and a rename, so readers never
    /// see it half-written), fsyncing it first if `durable`. Returns the
    /// directory it was renamed into, `None` if it was already there.
    fn write_blob(&self, hash: &ChunkHash, bytes: &[u8], durable: bool) -> Result<Option<PathBuf>, BlobError> {
        let path = self.path_of(hash);
        // Same length means same blob, unless the disk rotted: reads verify.
        if fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64) {
            return Ok(None);
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(BlobError::io("create", &dir))?;
            sync_dir(&self.root)?;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".put-")
            .tempfile_in(&self.tmp)
            .map_err(BlobError::io("create a temporary file in", &self.tmp))?;
        tmp.write_all(bytes).map_err(BlobError::io("write", tmp.path()))?;
        if durable {
            tmp.as_file().sync_all().map_err(BlobError::io("flush to disk", tmp.path()))?;
        }
        tmp.persist(&path).map_err(|e| BlobError::Io {
            action: "move into place",
            path: path.clone(),
            source: e.error,
        })?;
        Ok(Some(dir))
    }

    /// The blob's bytes, verified; `None` if absent. A corrupted blob is
    /// deleted and reported as [`BlobError::Corrupt`] (it is missing from then
    /// on).
    pub fn get(&self, hash: &ChunkHash) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.path_of(hash);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.get_packed(hash),
            Err(e) => return Err(BlobError::Io { action: "read blob", path, source: e }),
        };
        if ChunkHash::of(&bytes) != *hash {
            tracing::warn!(%hash, path = %path.display(), "corrupted blob removed from the store");
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlobError::Io { action: "remove corrupted blob", path, source: e }),
            }
            return Err(BlobError::Corrupt { hash: *hash, path });
        }
        Ok(Some(bytes))
    }

    /// [`Self::get`] for a chunk kept in a pack.
    fn get_packed(&self, hash: &ChunkHash) -> Result<Option<Vec<u8>>, BlobError> {
        let dir = self.root.join(PACKS_DIR);
        let Some((bytes, path)) = self.packs.read(hash).map_err(BlobError::io("read a pack in", &dir))? else {
            return Ok(None);
        };
        if ChunkHash::of(&bytes) == *hash {
            return Ok(Some(bytes));
        }
        tracing::warn!(%hash, path = %path.display(), "corrupted chunk removed from the store");
        self.packs.remove(hash).map_err(BlobError::io("remove a corrupted chunk from", &path))?;
        Err(BlobError::Corrupt { hash: *hash, path })
    }

    /// Bytes `offset..offset + len` of the blob, verified like [`Self::get`]
    /// (the whole blob is read and hashed: cheap for chunks, at most
    /// [`blob::CHUNK_MAX`]).
    pub fn get_range(&self, hash: &ChunkHash, offset: u64, len: u64) -> Result<Option<Vec<u8>>, BlobError> {
        let Some(bytes) = self.get(hash)? else { return Ok(None) };
        let end = offset.saturating_add(len);
        if end > bytes.len() as u64 {
            return Err(BlobError::OutOfRange { hash: *hash, offset, end, len: bytes.len() as u64 });
        }
        Ok(Some(bytes[offset as usize..end as usize].to_vec()))
    }

    /// Deletes the blob; returns whether it was there.
    pub fn remove(&self, hash: &ChunkHash) -> Result<bool, BlobError> {
        let path = self.path_of(hash);
        let in_file = match fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(BlobError::Io { action: "remove blob", path, source: e }),
        };
        let dir = self.root.join(PACKS_DIR);
        let in_pack = self.packs.remove(hash).map_err(BlobError::io("remove a chunk from a pack in", &dir))?;
        Ok(in_file || in_pack)
    }

    /// The server side of `/hearth/blob/1`: the answer to `get` from this
    /// store. The caller has already decided the requester may read it. A
    /// corrupted blob is answered [`Response::Missing`] (and removed).
    pub fn answer(&self, get: &Get) -> Response {
        if get.len == 0 || get.len > blob::MAX_PART {
            return blob::answer(get, None);
        }
        match self.get(&get.hash) {
            // The usual request is a whole chunk: hand over the bytes read
            // rather than copying them.
            Ok(Some(bytes)) if get.offset == 0 && get.len as usize == bytes.len() => Response::Data { bytes },
            Ok(found) => blob::answer(get, found.as_deref()),
            Err(BlobError::Corrupt { .. }) => Response::Missing,
            Err(e) => {
                tracing::warn!(error = %e, "cannot serve a blob");
                Response::refused("this node cannot read that blob right now; ask another member")
            }
        }
    }

    // ----- files -----------------------------------------------------------

    /// Chunks and stores the file at `path`, then stores its encoded manifest
    /// under its id. Streams: memory use is one chunk, whatever the file size.
    pub fn import_file(&self, path: &Path) -> Result<Manifest, BlobError> {
        let file = File::open(path).map_err(BlobError::io("open", path))?;
        let size = file.metadata().map_err(BlobError::io("read the size of", path))?.len();
        self.import(file, path, true, size)
    }

    /// Like [`Self::import_file`] for any reader; `name` is used in errors.
    pub fn import_reader(&self, reader: impl Read, name: &Path) -> Result<Manifest, BlobError> {
        self.import(reader, name, true, 0)
    }

    /// Like [`Self::import_file`], but the blobs are durable only after the
    /// next [`Self::flush`]: for a batch of files (a scan), where one flush
    /// of the file system costs one journal commit instead of two fsyncs per
    /// file. The caller must call [`Self::flush`] before anything durable
    /// (a document change) names these contents. Where no such flush exists
    /// (not Linux), this is [`Self::import_file`].
    pub fn import_file_deferred(&self, path: &Path) -> Result<Manifest, BlobError> {
        let file = File::open(path).map_err(BlobError::io("open", path))?;
        let size = file.metadata().map_err(BlobError::io("read the size of", path))?.len();
        self.import(file, path, !FLUSH_WHOLE_FS, size)
    }

    /// Chunks `reader` (about `size` bytes: a pack takes the chunks from
    /// [`PACK_MIN`] on, files below) and stores what the store lacks.
    fn import(&self, reader: impl Read, name: &Path, durable: bool, size: u64) -> Result<Manifest, BlobError> {
        let mut refs = Vec::new();
        let chunks = Chunker::new(reader).map(|chunk| {
            let chunk = chunk.map_err(BlobError::io("read", name))?;
            refs.push(chunk.chunk_ref());
            Ok((chunk.hash, chunk.bytes))
        });
        if Self::packs_content(size) {
            self.import_packed(chunks, durable)?;
        } else {
            self.write_all(chunks, durable)?;
        }
        let manifest =
            Manifest::from_chunks(refs).map_err(|source| BlobError::TooLarge { path: name.to_owned(), source })?;
        let encoded = manifest.encode();
        if durable {
            self.put(&encoded)?;
        } else {
            self.write_blob(&ChunkHash::of(&encoded), &encoded, false)?;
        }
        Ok(manifest)
    }

    /// Appends `chunks` to a new pack, a few at a time (one chunk in memory
    /// per chunk of the batch), syncing at the end if `durable`.
    fn import_packed(
        &self,
        chunks: impl Iterator<Item = Result<(ChunkHash, Vec<u8>), BlobError>>,
        durable: bool,
    ) -> Result<(), BlobError> {
        const BATCH: usize = 32;
        let pack = self.pack_writer()?;
        let mut batch = Vec::with_capacity(BATCH);
        for chunk in chunks {
            let (hash, bytes) = chunk?;
            if self.has_chunk(&ChunkRef { hash, len: bytes.len() as u32 }) {
                continue;
            }
            batch.push((hash, bytes));
            if batch.len() == BATCH {
                self.put_many_in(&pack, &batch)?;
                batch.clear();
            }
        }
        self.put_many_in(&pack, &batch)?;
        if durable {
            let dir = self.root.join(PACKS_DIR);
            pack.sync().map_err(BlobError::io("flush to disk a pack in", &dir))?;
        }
        Ok(())
    }

    /// Makes every blob written so far durable (their bytes and their
    /// renames): one `syncfs` of the store's file system. See
    /// [`Self::import_file_deferred`].
    pub fn flush(&self) -> Result<(), BlobError> {
        sync_fs_of(&self.root)
    }

    /// Stores blobs received from peers (e.g. the
    /// [`FetchEvent::Verified`](hearth_protocol::blob::FetchEvent) chunks of a
    /// download, in batches), refusing any that does not hash to its name.
    ///
    /// Not durable, on purpose: nothing is fsynced. A fetched blob can always
    /// be fetched again, and every read verifies, so a blob torn or emptied
    /// by a crash is found (by [`Self::missing`] from its length, or by the
    /// hash check of [`Self::get`]), dropped and fetched again; what makes a
    /// received file durable is the fsync of the file itself
    /// ([`Self::stage`]). Paying a journal commit per chunk here capped a
    /// download at the disk's commit rate.
    pub fn put_many(&self, blobs: impl IntoIterator<Item = (ChunkHash, Vec<u8>)>) -> Result<(), BlobError> {
        for (hash, bytes) in blobs {
            let actual = ChunkHash::of(&bytes);
            if actual != hash {
                return Err(BlobError::HashMismatch { expected: hash, actual });
            }
            self.write_blob(&hash, &bytes, false)?;
        }
        Ok(())
    }

    /// Like [`Self::put_many`] for blobs the caller has already verified
    /// (the fetcher hashed every chunk it emits): no second hash.
    pub fn put_many_verified(&self, blobs: &[(ChunkHash, Vec<u8>)]) -> Result<(), BlobError> {
        for (hash, bytes) in blobs {
            self.write_blob(hash, bytes, false)?;
        }
        Ok(())
    }

    /// Writes every blob of `items` (each `hash == H(bytes)`, checked by the
    /// producer) durably, then makes the renames durable, before returning.
    /// The first error stops the producer and is returned; blobs already
    /// written stay (they are valid).
    /// Without `durable`, nothing is fsynced (the caller flushes later).
    fn write_all(
        &self,
        items: impl Iterator<Item = Result<(ChunkHash, Vec<u8>), BlobError>>,
        durable: bool,
    ) -> Result<(), BlobError> {
        let mut items = items.peekable();
        let Some(first) = items.next() else { return Ok(()) };
        if items.peek().is_none() {
            // One blob: no threads.
            let (hash, bytes) = first?;
            let dir = self.write_blob(&hash, &bytes, durable)?;
            return dir.filter(|_| durable).map(|dir| sync_dir(&dir)).transpose().map(|_| ());
        }
        let (tx, rx) = mpsc::sync_channel::<(ChunkHash, Vec<u8>)>(WRITERS * 2);
        let rx = Mutex::new(rx);
        let failed: Mutex<Option<BlobError>> = Mutex::new(None);
        let dirs: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
        std::thread::scope(|scope| {
            for _ in 0..WRITERS {
                // After a failure, writers keep draining the channel without
                // writing, so the producer can never block on a full channel
                // with nobody reading it.
                scope.spawn(|| loop {
                    let Ok((hash, bytes)) = lock(&rx).recv() else { break };
                    if lock(&failed).is_some() {
                        continue;
                    }
                    match self.write_blob(&hash, &bytes, durable) {
                        Ok(Some(dir)) if durable => {
                            lock(&dirs).insert(dir);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            lock(&failed).get_or_insert(e);
                        }
                    }
                });
            }
            for item in std::iter::once(first).chain(items) {
                let sent = match item {
                    Ok(blob) => tx.send(blob).is_ok(),
                    Err(e) => {
                        lock(&failed).get_or_insert(e);
                        false
                    }
                };
                if !sent || lock(&failed).is_some() {
                    break;
                }
            }
            drop(tx);
        });
        if let Some(e) = lock(&failed).take() {
            return Err(e);
        }
        // Each blob file is fsynced; their renames become durable here, once
        // per directory, before anything (a manifest) names them.
        let dirs: Vec<PathBuf> = std::mem::take(&mut *lock(&dirs)).into_iter().collect();
        let per_thread = dirs.len().div_ceil(WRITERS).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = dirs
                .chunks(per_thread)
                .map(|group| scope.spawn(move || group.iter().try_for_each(|d| sync_dir(d))))
                .collect();
            handles.into_iter().try_for_each(|h| h.join().unwrap_or(Ok(())))
        })
    }

    /// Stores the encoded manifest under its id; returns the id.
    pub fn put_manifest(&self, manifest: &Manifest) -> Result<ChunkHash, BlobError> {
        self.put(&manifest.encode())
    }

    /// The manifest stored under `id`, verified and decoded; `None` if absent.
    pub fn manifest(&self, id: &ChunkHash) -> Result<Option<Manifest>, BlobError> {
        let Some(bytes) = self.get(id)? else { return Ok(None) };
        Manifest::decode(&bytes).map(Some).map_err(|source| BlobError::BadManifest { id: *id, source })
    }

    /// The distinct chunks of `manifest` not in the store, in file order. A
    /// chunk file of the wrong length (torn by a crash: fetched chunks are
    /// not fsynced) counts as missing.
    pub fn missing(&self, manifest: &Manifest) -> Vec<ChunkRef> {
        let mut seen = BTreeSet::new();
        manifest.chunks().iter().filter(|c| seen.insert(c.hash) && !self.has_chunk(c)).copied().collect()
    }

    /// Whether the store has a file of the right length for `chunk`
    /// (unverified, like [`Self::has`]). A file of another length is torn (or
    /// the manifest lies about the length): it is not removed here, a fetch
    /// of the chunk replaces it.
    pub fn has_chunk(&self, chunk: &ChunkRef) -> bool {
        self.packs.contains(&chunk.hash, Some(chunk.len))
            || fs::metadata(self.path_of(&chunk.hash)).is_ok_and(|m| m.is_file() && m.len() == u64::from(chunk.len))
    }

    /// Writes the file described by `manifest` to `dest`, atomically:
    /// [`Self::stage`] then [`Staged::persist`]. Refuses, leaving `dest` and
    /// its directory untouched, if a chunk is missing or corrupted.
    pub fn materialise(&self, manifest: &Manifest, dest: &Path) -> Result<(), BlobError> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        self.stage(manifest, dir, dest)?.persist(dest)
    }

    /// Writes the file described by `manifest` into a hidden temporary file in
    /// `dir` (which must be the directory of its final place, so the rename
    /// is atomic), verifies every chunk on the way and fsyncs it. The caller
    /// may then check that the destination is still what it expects before
    /// [`Staged::persist`]. `dest` is only used in error messages.
    pub fn stage(&self, manifest: &Manifest, dir: &Path, dest: &Path) -> Result<Staged, BlobError> {
        self.stage_with(manifest, dir, dest, true)
    }

    /// [`Self::stage`] without the fsync, for a batch of files made durable
    /// together by one [`sync_fs_of`] before any is persisted. Where no
    /// such flush exists (not Linux), this is [`Self::stage`].
    pub fn stage_unsynced(&self, manifest: &Manifest, dir: &Path, dest: &Path) -> Result<Staged, BlobError> {
        self.stage_with(manifest, dir, dest, !FLUSH_WHOLE_FS)
    }

    fn stage_with(&self, manifest: &Manifest, dir: &Path, dest: &Path, durable: bool) -> Result<Staged, BlobError> {
        if let Some(staged) = self.stage_partial(manifest, dir, dest, durable)? {
            return Ok(staged);
        }
        let missing = self.missing(manifest);
        if let Some(first) = missing.first() {
            let total = manifest.chunks().iter().map(|c| c.hash).collect::<BTreeSet<_>>().len();
            return Err(BlobError::MissingChunks {
                dest: dest.to_owned(),
                missing: missing.len(),
                total,
                first: first.hash,
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix(".hearth-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(BlobError::io("create a temporary file in", dir))?;
        let mut out = BufWriter::with_capacity(blob::CHUNK_MAX as usize, tmp);
        let mut written = 0u64;
        for c in manifest.chunks() {
            let Some(bytes) = self.get(&c.hash)? else {
                // Removed between the check above and now.
                return Err(BlobError::MissingChunks { dest: dest.to_owned(), missing: 1, total: 1, first: c.hash });
            };
            out.write_all(&bytes).map_err(BlobError::io("write", dest))?;
            written += bytes.len() as u64;
        }
        let tmp = out.into_inner().map_err(|e| BlobError::Io {
            action: "write",
            path: dest.to_owned(),
            source: io::Error::new(e.error().kind(), e.error().to_string()),
        })?;
        if written != manifest.size() {
            return Err(BlobError::SizeMismatch { path: dest.to_owned(), expected: manifest.size(), written });
        }
        if durable {
            tmp.as_file().sync_all().map_err(BlobError::io("flush to disk", tmp.path()))?;
        }
        Ok(Staged { file: tmp })
    }

    /// [`Self::stage`] from the partial file a download assembled, if there
    /// is one and it can be moved into `dir` (same file system): it is
    /// linked into `dir` under a temporary name, every chunk range is
    /// verified (a range that does not hash to its chunk, such as a hole, is
    /// written again from the store), the file is fsynced, and only then
    /// removed from the store. `None`: no usable partial file (or a chunk
    /// neither in it nor in the store: the partial file then stays for the
    /// download that fetches the chunk), copy instead.
    fn stage_partial(
        &self,
        manifest: &Manifest,
        dir: &Path,
        dest: &Path,
        durable: bool,
    ) -> Result<Option<Staged>, BlobError> {
        use std::os::unix::fs::FileExt;
        if manifest.size() == 0 {
            return Ok(None);
        }
        let partial = self.partial_path(&manifest.id());
        if !partial.is_file() {
            return Ok(None);
        }
        let linked = tempfile::Builder::new().prefix(".hearth-").suffix(".tmp").make_in(dir, |path| {
            fs::hard_link(&partial, path)?;
            fs::OpenOptions::new().read(true).write(true).open(path)
        });
        let tmp = match linked {
            Ok(tmp) => tmp,
            // Another file system (or no hard links): copy from the chunks.
            Err(e) => {
                tracing::debug!(dest = %dest.display(), "cannot move the assembled file into place ({e}); copying it");
                return Ok(None);
            }
        };
        let file = tmp.as_file();
        // Every range this process did not write itself is hashed, a few
        // threads at once (this is the part of writing a large download out
        // that the user waits for).
        let written = lock(&self.written).remove(&manifest.id()).unwrap_or_default();
        let mut ranges = Vec::with_capacity(manifest.chunks().len());
        let mut offset = 0u64;
        for c in manifest.chunks() {
            if !written.contains(&c.hash) {
                ranges.push((offset, *c));
            }
            offset += u64::from(c.len);
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        let per_thread = ranges.len().div_ceil(threads).max(1);
        let damaged: Vec<(u64, ChunkRef)> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .chunks(per_thread)
                .map(|group| {
                    scope.spawn(move || {
                        let mut buf = vec![0u8; blob::CHUNK_MAX as usize];
                        group
                            .iter()
                            .filter(|(offset, c)| {
                                let buf = &mut buf[..c.len as usize];
                                !(file.read_exact_at(buf, *offset).is_ok() && ChunkHash::of(buf) == c.hash)
                            })
                            .copied()
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            // A verifier cannot panic short of a bug; treat its share as damaged.
            handles
                .into_iter()
                .zip(ranges.chunks(per_thread))
                .flat_map(|(h, g)| h.join().unwrap_or(g.to_vec()))
                .collect()
        });
        for (offset, c) in damaged {
            // Not in the store either: the copy path reports what is
            // missing; the partial file stays.
            let Some(bytes) = self.get(&c.hash)? else { return Ok(None) };
            file.write_all_at(&bytes, offset).map_err(BlobError::io("write", dest))?;
        }
        file.set_len(manifest.size()).map_err(BlobError::io("write", dest))?;
        if durable {
            file.sync_all().map_err(BlobError::io("flush to disk", tmp.path()))?;
        }
        let _ = fs::remove_file(&partial);
        Ok(Some(Staged { file: tmp }))
    }
}

impl Staged {
    /// Where the staged file is.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Makes the staged file's bytes durable (for a file staged with
    /// [`BlobStore::stage_unsynced`] that is persisted alone).
    pub fn sync(&self) -> Result<(), BlobError> {
        self.file.as_file().sync_all().map_err(BlobError::io("flush to disk", self.file.path()))
    }

    /// Renames the staged file to `dest` (replacing any file there), leaving
    /// the rename's durability to a [`sync_fs_of`] of the batch (where there
    /// is none, this is [`Self::persist`]).
    pub fn persist_unsynced(self, dest: &Path) -> Result<(), BlobError> {
        if !FLUSH_WHOLE_FS {
            return self.persist(dest);
        }
        self.file.persist(dest).map(|_| ()).map_err(|e| BlobError::Io {
            action: "move into place",
            path: dest.to_owned(),
            source: e.error,
        })
    }

    /// Renames the staged file to `dest` (replacing any file there) and makes
    /// the rename durable. `dest` must be in the directory it was staged in.
    pub fn persist(self, dest: &Path) -> Result<(), BlobError> {
        self.file.persist(dest).map_err(|e| BlobError::Io {
            action: "move into place",
            path: dest.to_owned(),
            source: e.error,
        })?;
        match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
            _ => sync_dir(Path::new(".")),
        }
    }
}

/// Makes everything written on the file system that holds `path` durable
/// (Linux: one `syncfs`, which costs one journal commit for a whole batch of
/// files instead of two fsyncs each). Elsewhere a no-op: there, the
/// `*_unsynced` methods are durable by themselves.
pub fn sync_fs_of(path: &Path) -> Result<(), BlobError> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::fd::AsRawFd;
        let dir = File::open(path).map_err(BlobError::io("open", path))?;
        // SAFETY: `dir` is an open descriptor for the duration of the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(BlobError::Io {
                action: "flush to disk the file system of",
                path: path.to_owned(),
                source: io::Error::last_os_error(),
            });
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = path;
    Ok(())
}

/// Makes renames and creations inside `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(BlobError::io("flush to disk the directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
