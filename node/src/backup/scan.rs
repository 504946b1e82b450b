//! The reading side of a backup run: walking the backed-up paths, cutting
//! new content with FastCDC, sealing chunks and closing packs coded into
//! shards, which the engine's uploader takes from a bounded channel.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use hearth_protocol::backup::catalog::{FileEntry, SnapshotStats};
use hearth_protocol::backup::chunk::{self, ChunkId};
use hearth_protocol::backup::erasure;
use hearth_protocol::backup::keys::Keys;
use hearth_protocol::backup::pack::{Pack, PackBuilder};
use tracing::warn;

use super::engine::{Progress, STATE_FILES};
use super::store::{self as bstore, CachedFile};
use crate::home::Home;
use crate::store::Store;

/// A walked file.
pub(super) struct Walked {
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
    inode: u64,
    mode: u32,
}

pub(super) fn walk(root: &Path, out: &mut Vec<Walked>, depth: usize) {
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) => {
            warn!(path = %root.display(), "backup skips a path it cannot read: {e}");
            return;
        }
    };
    if meta.is_file() {
        out.push(Walked {
            path: root.to_path_buf(),
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            inode: meta.ino(),
            mode: meta.mode(),
        });
    } else if meta.is_dir() && depth < 256 {
        let Ok(entries) = std::fs::read_dir(root) else {
            warn!(path = %root.display(), "backup skips a directory it cannot list");
            return;
        };
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names {
            walk(&p, out, depth + 1);
        }
    }
}

/// A pack ready to upload.
pub(super) struct ReadyPack {
    pub(super) pack: Pack,
    /// Shared, so that uploads hand them to QUIC without a copy.
    pub(super) shards: Vec<bytes::Bytes>,
}

/// Output of the reading side of a run.
pub(super) struct Scanned {
    pub(super) files: Vec<FileEntry>,
    pub(super) state: Vec<FileEntry>,
    pub(super) stats: SnapshotStats,
    pub(super) cache: Vec<(String, CachedFile)>,
}

/// The chunking, sealing and packing side of a run (blocking).
struct Packer<'a> {
    keys: &'a Keys,
    known: BTreeSet<ChunkId>,
    builder: PackBuilder,
    /// The two threads' sealing state, kept from window to window.
    sealers: [Sealer; 2],
    k: usize,
    n: usize,
    tx: &'a tokio::sync::mpsc::Sender<ReadyPack>,
    stats: SnapshotStats,
    /// The read buffer, reused.
    window: Vec<u8>,
}

/// One thread's sealing state: its zstd context and the buffer its sealed
/// chunks go to, both kept from window to window (new ones per window were
/// megabytes of memory to fault in each time).
#[derive(Default)]
struct Sealer {
    compressor: Option<chunk::Compressor>,
    /// The sealed chunks of the last call, end to end.
    out: Vec<u8>,
    /// Their spans of `out`.
    spans: Vec<(usize, usize)>,
}

impl Sealer {
    /// Seals the chunks `part` (indexes into `cuts`, with their ids) of `data`.
    fn seal(&mut self, keys: &Keys, data: &[u8], cuts: &[(usize, usize)], part: &[(usize, ChunkId)]) {
        self.out.clear();
        self.spans.clear();
        for (i, id) in part {
            let (o, l) = cuts[*i];
            let start = self.out.len();
            chunk::seal_into(
                keys,
                id,
                &data[o..o + l],
                chunk::nonce_for(keys, id),
                &mut self.compressor,
                &mut self.out,
            );
            self.spans.push((start, self.out.len() - start));
        }
    }
}

/// Reads into `buf` until it holds `window` bytes or the file ends
/// (returns whether it ended).
fn fill(file: &mut std::fs::File, buf: &mut Vec<u8>, window: usize) -> std::io::Result<bool> {
    use std::io::Read;
    let want = window.saturating_sub(buf.len());
    // `read_to_end` of a `take` reads until the window is full or the file
    // ends, growing into the buffer's kept capacity without zeroing ahead.
    file.take(want as u64).read_to_end(buf)?;
    Ok(buf.len() < window)
}

/// Bytes of a file read at once: FastCDC cuts within this window, whose
/// buffer is kept from file to file.
const WINDOW: usize = 16 * 1024 * 1024;

impl Packer<'_> {
    /// Ids of `cuts` of `data`; the new chunks are sealed, two at a time
    /// (zstd and the cipher are most of a run's CPU), and packed in order,
    /// so that packs are the same as if sealed one by one.
    fn chunks(&mut self, data: &[u8], cuts: &[(usize, usize)]) -> Result<Vec<(ChunkId, u32)>> {
        let ids: Vec<(ChunkId, u32)> =
            cuts.iter().map(|(o, l)| (chunk::chunk_id(self.keys, &data[*o..o + l]), *l as u32)).collect();
        let fresh: Vec<(usize, ChunkId)> =
            ids.iter().enumerate().filter(|(_, (id, _))| self.known.insert(*id)).map(|(i, (id, _))| (i, *id)).collect();
        let keys = self.keys;
        let (a, b) = fresh.split_at(fresh.len() / 2);
        // Taken out while used, so that closing a pack may borrow `self`.
        let [mut first, mut second] = std::mem::take(&mut self.sealers);
        let sealing = if a.is_empty() {
            // Both cleared: `first` must not hand on the last window's chunks.
            first.seal(keys, data, cuts, a);
            second.seal(keys, data, cuts, b);
            Ok(())
        } else {
            std::thread::scope(|scope| {
                let other = scope.spawn(|| second.seal(keys, data, cuts, b));
                first.seal(keys, data, cuts, a);
                other.join().map_err(|_| anyhow!("sealing chunks failed"))
            })
        };
        let sealed = first.spans.iter().map(|s| (&first.out, s)).chain(second.spans.iter().map(|s| (&second.out, s)));
        let result = sealing.and_then(|()| {
            for ((i, id), (out, (start, len))) in fresh.iter().zip(sealed) {
                let bytes = &out[*start..start + len];
                self.stats.new_bytes += cuts[*i].1 as u64;
                self.stats.stored_bytes += bytes.len() as u64;
                self.builder.add_slice(*id, bytes);
                if self.builder.full() {
                    self.flush()?;
                }
            }
            Ok(())
        });
        self.sealers = [first, second];
        result?;
        Ok(ids)
    }

    fn flush(&mut self) -> Result<()> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let seed = self.builder.content_seed(&self.keys.derive);
        let pack = self.builder.finish_reuse(seed);
        let shards = erasure::encode(&pack.id, &pack.bytes, self.k, self.n)?;
        let shards = shards.into_iter().map(bytes::Bytes::from).collect();
        self.tx.blocking_send(ReadyPack { pack, shards }).map_err(|_| anyhow!("the upload stopped"))?;
        Ok(())
    }

    /// Cuts a file as FastCDC's streaming form would (a cut is made only
    /// with `MAX_CHUNK` bytes ahead of its chunk's start, or at the end of
    /// the file), reading it a window at a time into a reused buffer.
    fn file(&mut self, path: &Path) -> Result<Vec<(ChunkId, u32)>> {
        let mut file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut ids = Vec::new();
        let mut buf = std::mem::take(&mut self.window);
        buf.clear();
        let mut eof = false;
        let result = loop {
            if !eof {
                match fill(&mut file, &mut buf, WINDOW) {
                    Ok(end) => eof = end,
                    Err(e) => break Err(anyhow!("cannot read {}: {e}", path.display())),
                }
            }
            if buf.is_empty() {
                break Ok(());
            }
            let cuts: Vec<(usize, usize)> =
                fastcdc::v2020::FastCDC::new(&buf, chunk::MIN_CHUNK, chunk::AVG_CHUNK, chunk::MAX_CHUNK)
                    .map(|c| (c.offset, c.length))
                    .take_while(|(o, _)| eof || o + chunk::MAX_CHUNK <= buf.len())
                    .collect();
            if cuts.is_empty() {
                break Err(anyhow!("cannot read {}: the file changed while read", path.display()));
            }
            let consumed = cuts.last().map(|(o, l)| o + l).unwrap_or(0);
            match self.chunks(&buf, &cuts) {
                Ok(mut got) => ids.append(&mut got),
                Err(e) => break Err(e),
            }
            buf.drain(..consumed);
            if eof && buf.is_empty() {
                break Ok(());
            }
        };
        self.window = buf;
        result.map(|()| ids)
    }

    fn bytes(&mut self, data: &[u8]) -> Result<Vec<(ChunkId, u32)>> {
        let cuts = chunk::cut(data);
        self.chunks(data, &cuts)
    }
}

/// Copies the database while holding a write transaction, so no commit
/// lands in the middle of the copy (redb commits are durable, so the file
/// on disk is then a consistent database).
fn copy_database(store: &Store, path: &Path) -> Result<Vec<u8>> {
    let txn = store.db().begin_write()?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    txn.abort()?;
    Ok(bytes)
}

/// The reading side of a run (blocking): walks `paths`, skips files the
/// cache shows unchanged, cuts and seals new content into packs handed to
/// `tx`, and adds the node's own state files.
#[allow(clippy::too_many_arguments)]
pub(super) fn read_and_pack(
    store: &Store,
    home: &Home,
    progress: &Mutex<Progress>,
    paths: &[String],
    keys: &Keys,
    known: BTreeSet<ChunkId>,
    (k, n): (usize, usize),
    tx: &tokio::sync::mpsc::Sender<ReadyPack>,
) -> Result<Scanned> {
    let mut walked = Vec::new();
    for p in paths {
        walk(Path::new(p), &mut walked, 0);
    }
    if let Ok(mut pr) = progress.lock() {
        pr.phase = "backing up".into();
        pr.files_total = walked.len() as u64;
        pr.bytes_total = walked.iter().map(|w| w.size).sum();
    }
    let mut packer = Packer {
        keys,
        known,
        builder: PackBuilder::default(),
        sealers: Default::default(),
        k,
        n,
        tx,
        stats: SnapshotStats::default(),
        window: Vec::with_capacity(WINDOW),
    };
    let mut files = Vec::new();
    let mut cache = Vec::new();
    for w in walked {
        let path = w.path.to_string_lossy().into_owned();
        let cached = bstore::cached_file(store, &path)?;
        let (chunks, sizes) = match cached {
            Some(c)
                if c.size == w.size
                    && c.mtime_ns == w.mtime_ns
                    && c.inode == w.inode
                    && c.sizes.len() == c.chunks.len()
                    && c.chunks.iter().all(|id| packer.known.contains(id)) =>
            {
                (c.chunks, c.sizes)
            }
            _ => match packer.file(&w.path) {
                Ok(ids) => ids.into_iter().unzip(),
                Err(e) => {
                    warn!("backup skips a file: {e:#}");
                    continue;
                }
            },
        };
        packer.stats.files += 1;
        packer.stats.bytes += w.size;
        if let Ok(mut pr) = progress.lock() {
            pr.files_done += 1;
            pr.bytes_done += w.size;
        }
        cache.push((
            path.clone(),
            CachedFile {
                size: w.size,
                mtime_ns: w.mtime_ns,
                inode: w.inode,
                chunks: chunks.clone(),
                sizes: sizes.clone(),
            },
        ));
        files.push(FileEntry { path, size: w.size, mtime_ns: w.mtime_ns, mode: w.mode, chunks, sizes });
    }
    let mut state = Vec::new();
    for name in STATE_FILES {
        let path = home.path(name);
        let bytes = if *name == "hearth.redb" {
            copy_database(store, &path)?
        } else {
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?
        };
        let (chunks, sizes) = packer.bytes(&bytes)?.into_iter().unzip();
        packer.stats.bytes += bytes.len() as u64;
        state.push(FileEntry {
            path: (*name).into(),
            size: bytes.len() as u64,
            mtime_ns: 0,
            mode: 0o600,
            chunks,
            sizes,
        });
    }
    packer.flush()?;
    Ok(Scanned { files, state, stats: packer.stats, cache })
}
