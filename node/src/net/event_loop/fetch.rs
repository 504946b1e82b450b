//! Fetching share contents from other members (`/hearth/blob/1`), and
//! serving ours to them.
//!
//! Each missing file content is one download: first its manifest blob (its
//! length is in the share document), then the manifest's chunks, both driven
//! by the sans-IO `blob::Fetcher` (requests spread over the online members,
//! every chunk verified against its hash, a peer that sends bad bytes is
//! banned from the download, requests of a peer that goes away are asked
//! elsewhere, so a download interrupted by a disconnect resumes). Verified
//! chunks go into the blob store; when a download completes, the share is
//! written to disk again.
//!
//! Disk work stays off the event loop, which also drives every connection's
//! requests: verified chunks are written in batches by blocking tasks, and
//! each blob request is answered (read, verified, copied) by a blocking task
//! too. A download counts as complete only once its last batch is in the
//! store, since writing the share out reads the chunks back from there.
//! Each chunk of a file download is written twice, in parallel with the
//! transfer: into the blob store (which keeps every version and serves other
//! members) and at its offsets into the file's partial file, which writing
//! the share out then verifies and renames into place.

use std::collections::BTreeMap;
use std::sync::Arc;

use hearth_protocol::blob::{self, ChunkHash, FetchConfig, FetchEvent, Fetcher, Get, Response};
use libp2p::request_response::{self, ResponseChannel};
use libp2p::PeerId;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::{blocking, EventLoop};
use crate::blobs::packs::PackWriter;
use crate::blobs::{Assembly, BlobError, BlobStore};
use crate::net::codec::Wire;

/// Downloads running at once.
const MAX_DOWNLOADS: usize = 32;
/// Verified chunks are written in batches (one blocking task each, not one
/// per chunk); a batch is sent off at this many bytes, when a download
/// completes, and on every tick.
const WRITE_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most verified bytes handed to writers and not yet stored. Beyond this, no
/// new request is sent until the disk catches up (memory stays bounded when
/// the network is faster than the disk).
const MAX_WRITING_BYTES: usize = 64 * 1024 * 1024;

/// How long the downloads use a share's membership before reading it again.
const MEMBERS_TTL: std::time::Duration = std::time::Duration::from_millis(500);

/// Requests a download keeps outstanding at one member. Enough to keep a
/// direct connection busy while the member reads and verifies the next
/// batches (about 10 MiB of chunks); the swarm's request-response behaviour
/// queues what exceeds its own stream limit.
const IN_FLIGHT_PER_PEER: usize = 128;

fn fetch_config() -> FetchConfig {
    FetchConfig { max_in_flight_per_peer: IN_FLIGHT_PER_PEER, ..FetchConfig::default() }
}

/// One file content being fetched.
pub(super) struct Download {
    share: Vec<u8>,
    pub(super) fetcher: Fetcher,
    /// Peers handed to the fetcher (adding one again would reset its
    /// back-off and what it said it lacks).
    peers: std::collections::BTreeSet<Vec<u8>>,
    /// Fetching the manifest blob itself (then its chunks).
    manifest_stage: bool,
    /// Where a file's chunks go in its partial file (`None` while fetching
    /// the manifest).
    assembly: Option<Arc<Assembly>>,
    /// The pack a large content's chunks go to (see `blobs::packs`).
    pack: Option<Arc<PackWriter>>,
    /// Verified chunks of this download not yet sent to a writer.
    batch: Vec<(ChunkHash, Vec<u8>)>,
    /// Verified chunks of this download with a writer, not yet stored.
    writing: usize,
}

/// What a blocking task did for the event loop.
pub(super) enum BlobIoDone {
    /// A batch of verified chunks was written (or failed to be).
    Stored {
        /// Chunks of each download in the batch.
        downloads: Vec<(ChunkHash, usize)>,
        /// Bytes in the batch.
        bytes: usize,
        /// The outcome.
        result: Result<(), BlobError>,
    },
    /// The answer to a peer's blob request is ready to be sent.
    Served {
        /// Where it goes.
        channel: ResponseChannel<Response>,
        /// The answer.
        response: Response,
    },
}

/// The blocking tasks of the blob protocol under way, and the bytes their
/// writers hold.
#[derive(Default)]
pub(super) struct BlobIo {
    tasks: JoinSet<BlobIoDone>,
    writing_bytes: usize,
}

impl BlobIo {
    /// The next finished task; pending forever while there is none (for
    /// `select!`).
    pub(super) async fn next(&mut self) -> BlobIoDone {
        loop {
            match self.tasks.join_next().await {
                Some(Ok(done)) => return done,
                // A panicking task is a bug; the work it held is simply
                // redone (chunks are fetched again, the peer asks again).
                Some(Err(e)) => warn!("a blob task failed: {e}"),
                None => std::future::pending::<()>().await,
            }
        }
    }
}

impl EventLoop {
    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Starts downloads for missing content and keeps all of them going.
    pub(super) fn drive_fetches(&mut self) {
        let now = self.now_ms();
        let starting = match MAX_DOWNLOADS.checked_sub(self.downloads.len()) {
            // A few more than the free slots: some may turn out complete.
            Some(free) if free > 0 => self.shares.wanted(free + 16, &|id| self.downloads.contains_key(id)),
            _ => Vec::new(),
        };
        for (share, wanted) in starting {
            for (id, manifest_len) in wanted {
                if self.downloads.len() >= MAX_DOWNLOADS {
                    break;
                }
                if self.downloads.contains_key(&id) {
                    continue;
                }
                let blobs = self.shares.blobs().clone();
                let (fetcher, assembly, pack) = match blobs.manifest(&id) {
                    Ok(Some(m)) => (
                        Fetcher::new(&m, |c| blobs.has_chunk(c), fetch_config()),
                        Some(Arc::new(Assembly::new(&m))),
                        pack_for(&blobs, &m),
                    ),
                    _ if manifest_len == 0 => continue,
                    _ => (Fetcher::for_blob(id, manifest_len, fetch_config()), None, None),
                };
                let manifest_stage = assembly.is_none();
                if fetcher.is_done() {
                    // Already complete (fetched since the share was last
                    // written out): only the write-out is missing.
                    self.shares.fetched(&share, &id);
                    self.pending_writes.insert(share.clone());
                    continue;
                }
                self.downloads.insert(
                    id,
                    Download {
                        share: share.clone(),
                        fetcher,
                        manifest_stage,
                        peers: Default::default(),
                        assembly,
                        pack,
                        batch: Vec::new(),
                        writing: 0,
                    },
                );
                debug!(content = %id, "fetching content");
            }
        }
        // Every online member of the download's share may serve it.
        let mut online_by_share: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        let ids: Vec<ChunkHash> = self.downloads.keys().copied().collect();
        // While the writers are behind, no new request: answers would only
        // pile up in memory.
        let disk_busy = self.blob_io.writing_bytes >= MAX_WRITING_BYTES;
        let mut requests = Vec::new();
        for id in ids {
            let share = self.downloads[&id].share.clone();
            if !online_by_share.contains_key(&share) {
                let members = self.members_cached(&share);
                let swarm = &self.swarm;
                let online =
                    members.into_iter().filter(|p| PeerId::from_bytes(p).is_ok_and(|peer| swarm.is_connected(&peer)));
                online_by_share.insert(share.clone(), online.collect());
            }
            let online = online_by_share.get(&share).cloned().unwrap_or_default();
            let Some(download) = self.downloads.get_mut(&id) else { continue };
            let gone: Vec<Vec<u8>> = download.peers.iter().filter(|p| !online.contains(p)).cloned().collect();
            for peer in gone {
                download.fetcher.remove_peer(&peer);
                download.peers.remove(&peer);
            }
            for peer in online {
                if download.peers.insert(peer.clone()) {
                    download.fetcher.add_peer(peer);
                }
            }
            download.fetcher.handle_timeout(now);
            if disk_busy {
                continue;
            }
            while let Some((peer, get)) = download.fetcher.poll_request(now) {
                requests.push((id, peer, get));
            }
        }
        self.send_gets(requests);
    }

    /// The members of `share`, read from its document at most every
    /// [`MEMBERS_TTL`] (reading the membership costs an Automerge lookup,
    /// and downloads are driven after every answer); a member added or
    /// removed is seen that much later by the downloads.
    fn members_cached(&mut self, share: &[u8]) -> Vec<Vec<u8>> {
        let now = std::time::Instant::now();
        if let Some((at, members)) = self.member_cache.get(share) {
            if now.duration_since(*at) < MEMBERS_TTL {
                return members.clone();
            }
        }
        let members = self.shares.members_of(share);
        self.member_cache.insert(share.to_vec(), (now, members.clone()));
        members
    }

    /// File bytes already received and verified (or found in the blob store)
    /// by the downloads of `share` under way: progress inside pending files.
    pub(super) fn bytes_stored_pending(&self, share: &[u8]) -> u64 {
        self.downloads.values().filter(|d| d.share == share && !d.manifest_stage).map(|d| d.fetcher.bytes_done()).sum()
    }

    /// Takes the verified chunks not yet handed to a writer, per download.
    fn take_batches(&mut self) -> Vec<Batch> {
        self.chunk_batch_bytes = 0;
        self.downloads
            .iter_mut()
            .filter(|(_, d)| !d.batch.is_empty())
            .map(|(id, d)| {
                d.writing += d.batch.len();
                Batch {
                    id: *id,
                    assembly: d.assembly.clone(),
                    pack: d.pack.clone(),
                    chunks: std::mem::take(&mut d.batch),
                }
            })
            .collect()
    }

    /// Writes the verified chunks received so far, now, on this thread (at
    /// shutdown; running writers finish on their own).
    pub(super) fn flush_chunks(&mut self) {
        let batches = self.take_batches();
        let blobs = self.shares.blobs().clone();
        if let Err(e) = blocking(|| write_batches(&blobs, &batches)) {
            warn!("cannot store fetched chunks: {e}");
        }
    }

    /// Hands the verified chunks received so far to a writer task.
    fn send_batch(&mut self) {
        let bytes = self.chunk_batch_bytes;
        let batches = self.take_batches();
        if batches.is_empty() {
            return;
        }
        let blobs = self.shares.blobs().clone();
        self.blob_io.writing_bytes += bytes;
        self.blob_io.tasks.spawn_blocking(move || BlobIoDone::Stored {
            downloads: batches.iter().map(|b| (b.id, b.chunks.len())).collect(),
            bytes,
            result: write_batches(&blobs, &batches),
        });
    }

    /// Writes the shares whose downloads completed since the last write.
    pub(super) fn write_pending(&mut self) {
        self.send_batch();
        for share in std::mem::take(&mut self.pending_writes) {
            blocking(|| self.shares.write_out(&share));
        }
    }

    /// Once per tick: peers that lacked a chunk may have it now (they were
    /// fetching it themselves), so downloads stuck on unavailable chunks ask
    /// their peers again. Bounded to once a second, unlike a retry on every
    /// answer.
    pub(super) fn retry_unavailable(&mut self) {
        for download in self.downloads.values_mut() {
            if !download.fetcher.unavailable().is_empty() {
                for peer in download.peers.iter().cloned().collect::<Vec<_>>() {
                    download.fetcher.add_peer(peer);
                }
            }
        }
    }

    pub(super) fn on_fetch_progress(&mut self, id: ChunkHash) {
        let Some(download) = self.downloads.get_mut(&id) else { return };
        while let Some(event) = download.fetcher.poll_event() {
            match event {
                FetchEvent::Verified { hash, bytes } => {
                    self.shares.received(&download.share, bytes.len() as u64);
                    self.chunk_batch_bytes += bytes.len();
                    download.batch.push((hash, bytes));
                }
                FetchEvent::Corrupt { peer, .. } => {
                    let who = PeerId::from_bytes(&peer).map(|p| p.to_string()).unwrap_or_default();
                    warn!(peer = %who, content = %id, "a member sent corrupted data; it is no longer asked for this file");
                }
                other => debug!(content = %id, "fetch: {other:?}"),
            }
        }
        if !download.fetcher.is_done() {
            if self.chunk_batch_bytes >= WRITE_BATCH_BYTES {
                self.send_batch();
            }
            return;
        }
        self.send_batch();
        self.try_finish(id);
    }

    /// Completes the download `id` if every chunk is verified and stored:
    /// a fetched manifest turns into the download of its chunks, a fetched
    /// file is handed to the share for writing out.
    fn try_finish(&mut self, id: ChunkHash) {
        let Some(download) = self.downloads.get_mut(&id) else { return };
        if !download.fetcher.is_done() || !download.batch.is_empty() || download.writing > 0 {
            return;
        }
        if download.manifest_stage {
            let blobs = self.shares.blobs().clone();
            match blobs.manifest(&id) {
                Ok(Some(manifest)) => {
                    download.fetcher = Fetcher::new(&manifest, |c| blobs.has_chunk(c), fetch_config());
                    download.assembly = Some(Arc::new(Assembly::new(&manifest)));
                    download.pack = pack_for(&blobs, &manifest);
                    download.manifest_stage = false;
                    download.peers.clear();
                    if !download.fetcher.is_done() {
                        self.drive_fetches();
                        return;
                    }
                }
                _ => {
                    warn!(content = %id, "the fetched manifest is unreadable; dropping the download");
                    self.downloads.remove(&id);
                    return;
                }
            }
        }
        if let Some(done) = self.downloads.remove(&id) {
            debug!(content = %id, bytes = done.fetcher.bytes_total(), "content fetched");
            // Writing the share out walks all its entries: do it once the
            // share has no download left (or at the next tick), not per file.
            self.shares.fetched(&done.share, &id);
            self.pending_writes.insert(done.share.clone());
            if !self.downloads.values().any(|d| d.share == done.share) {
                self.write_pending();
            }
            self.drive_fetches();
        }
    }

    /// A blocking task of the blob protocol finished.
    pub(super) fn on_blob_io(&mut self, done: BlobIoDone) {
        match done {
            BlobIoDone::Served { channel, response } => {
                let _ = self.swarm.behaviour_mut().blob.send_response(channel, response);
            }
            BlobIoDone::Stored { downloads, bytes, result } => {
                self.blob_io.writing_bytes = self.blob_io.writing_bytes.saturating_sub(bytes);
                if let Err(e) = result {
                    // The download completes anyway; writing the share out
                    // finds the chunks missing, and they are fetched again.
                    warn!("cannot store fetched chunks: {e}");
                }
                for (id, n) in downloads {
                    if let Some(d) = self.downloads.get_mut(&id) {
                        d.writing = d.writing.saturating_sub(n);
                    }
                    self.try_finish(id);
                }
                self.drive_fetches();
            }
        }
    }

    pub(super) fn on_blob_event(&mut self, event: request_response::Event<Wire<Get>, Response>) {
        use request_response::{Event, Message};
        let now = self.now_ms();
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.serve_blob(peer, request, channel)
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                let Some((id, get)) = self.blob_requests.remove(&request_id) else { return };
                self.swarm_request_done(peer);
                if let Some(download) = self.downloads.get_mut(&id) {
                    download.fetcher.on_response(now, &peer.to_bytes(), &get, response);
                }
                self.on_fetch_progress(id);
                self.drive_fetches();
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if let Some((id, _)) = self.blob_requests.remove(&request_id) {
                    self.swarm_request_done(peer);
                    debug!(%peer, "blob request failed: {error}");
                    if let Some(download) = self.downloads.get_mut(&id) {
                        download.fetcher.on_failure(now, &peer.to_bytes());
                    }
                }
            }
            Event::InboundFailure { peer, error, .. } => debug!(%peer, "blob request failed: {error}"),
            Event::ResponseSent { .. } => {}
        }
    }

    fn serve_blob(&mut self, peer: PeerId, request: Wire<Get>, channel: ResponseChannel<Response>) {
        let response = match request {
            Wire::Bad(err) => {
                warn!(%peer, "refused a blob request: malformed frame: {err}");
                Response::refused(format!("malformed request: {err}"))
            }
            // Contents go to members of a share we hold, never to strangers.
            Wire::Msg(_) if !self.shares.is_member_anywhere(&peer.to_bytes()) => {
                warn!(%peer, "refused {} from a node that is not a member of any share here", blob::PROTOCOL);
                Response::refused("you are not a member of a share on this node")
            }
            Wire::Msg(get) => {
                // Reading and hashing the blob is disk and CPU work: done by a
                // blocking task, answered when it is back (`on_blob_io`).
                let blobs = self.shares.blobs().clone();
                self.blob_io.tasks.spawn_blocking(move || BlobIoDone::Served { channel, response: blobs.answer(&get) });
                return;
            }
        };
        let _ = self.swarm.behaviour_mut().blob.send_response(channel, response);
    }
}

/// Verified chunks of one download, on their way to the disk.
struct Batch {
    id: ChunkHash,
    assembly: Option<Arc<Assembly>>,
    pack: Option<Arc<PackWriter>>,
    chunks: Vec<(ChunkHash, Vec<u8>)>,
}

/// Writes batches of verified chunks: into the download's partial file
/// first (best effort: a chunk missing there is copied from the store when
/// the file is staged), then into the store, so that a chunk the store has
/// is in the partial file too.
fn write_batches(blobs: &BlobStore, batches: &[Batch]) -> Result<(), BlobError> {
    for batch in batches {
        if let Some(assembly) = &batch.assembly {
            if let Err(e) = blobs.write_partial(assembly, &batch.chunks) {
                debug!(content = %assembly.id(), "cannot write the partial file: {e}");
            }
        }
        match &batch.pack {
            Some(pack) => blobs.put_many_in(pack, &batch.chunks)?,
            None => blobs.put_many_verified(&batch.chunks)?,
        }
    }
    Ok(())
}

/// A pack for the chunks of `manifest` if it is large enough to want one;
/// without one (it cannot be created) the chunks go to files as for small
/// contents.
fn pack_for(blobs: &BlobStore, manifest: &hearth_protocol::blob::Manifest) -> Option<Arc<PackWriter>> {
    if !BlobStore::packs_content(manifest.size()) {
        return None;
    }
    match blobs.pack_writer() {
        Ok(pack) => Some(Arc::new(pack)),
        Err(e) => {
            warn!("{e}; storing the chunks one file each");
            None
        }
    }
}

/// Downloads keyed by content id.
pub(super) type Downloads = BTreeMap<ChunkHash, Download>;
