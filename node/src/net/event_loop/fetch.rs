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

use std::collections::BTreeMap;

use hearth_protocol::blob::{self, ChunkHash, FetchConfig, FetchEvent, Fetcher, Get, Response};
use libp2p::request_response::{self, ResponseChannel};
use libp2p::PeerId;
use tracing::{debug, warn};

use super::{blocking, EventLoop};
use crate::net::codec::Wire;

/// Downloads running at once.
const MAX_DOWNLOADS: usize = 32;
/// Verified chunks are written in batches (parallel writers, one fsync each,
/// but not one round of the event loop each); flushed at this many bytes,
/// when a download completes, and on every tick.
const WRITE_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// One file content being fetched.
pub(super) struct Download {
    share: Vec<u8>,
    fetcher: Fetcher,
    /// Peers handed to the fetcher (adding one again would reset its
    /// back-off and what it said it lacks).
    peers: std::collections::BTreeSet<Vec<u8>>,
    /// Fetching the manifest blob itself (then its chunks).
    manifest_stage: bool,
}

impl EventLoop {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Starts downloads for missing content and keeps all of them going.
    pub(super) fn drive_fetches(&mut self) {
        let now = self.now_ms();
        let starting = if self.downloads.len() < MAX_DOWNLOADS { self.shares.wanted() } else { Vec::new() };
        for (share, wanted) in starting {
            for (id, manifest_len) in wanted {
                if self.downloads.len() >= MAX_DOWNLOADS {
                    break;
                }
                if self.downloads.contains_key(&id) {
                    continue;
                }
                let blobs = self.shares.blobs().clone();
                let (fetcher, manifest_stage) = match blobs.manifest(&id) {
                    Ok(Some(m)) => (Fetcher::new(&m, |h| blobs.has(h), FetchConfig::default()), false),
                    _ if manifest_len == 0 => continue,
                    _ => (Fetcher::for_blob(id, manifest_len, FetchConfig::default()), true),
                };
                if fetcher.is_done() {
                    // Already complete (fetched since the share was last
                    // written out): only the write-out is missing.
                    self.pending_writes.insert(share.clone());
                    continue;
                }
                self.downloads
                    .insert(id, Download { share: share.clone(), fetcher, manifest_stage, peers: Default::default() });
                debug!(content = %id, "fetching content");
            }
        }
        // Every online member of the download's share may serve it.
        let mut online_by_share: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        let ids: Vec<ChunkHash> = self.downloads.keys().copied().collect();
        for id in ids {
            let share = self.downloads[&id].share.clone();
            let online = online_by_share
                .entry(share.clone())
                .or_insert_with(|| {
                    let swarm = &self.swarm;
                    self.shares
                        .members_of(&share)
                        .into_iter()
                        .filter(|p| PeerId::from_bytes(p).is_ok_and(|peer| swarm.is_connected(&peer)))
                        .collect()
                })
                .clone();
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
            while let Some((peer, get)) = download.fetcher.poll_request(now) {
                let Ok(peer_id) = PeerId::from_bytes(&peer) else { continue };
                let request = self.swarm.behaviour_mut().blob.send_request(&peer_id, Wire::Msg(get));
                self.blob_requests.insert(request, (id, get));
            }
        }
    }

    /// Writes the verified chunks received so far.
    pub(super) fn flush_chunks(&mut self) {
        if self.chunk_batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.chunk_batch);
        self.chunk_batch_bytes = 0;
        if let Err(e) = blocking(|| self.shares.blobs().put_many(batch)) {
            warn!("cannot store fetched chunks: {e}");
        }
    }

    /// Writes the shares whose downloads completed since the last write.
    pub(super) fn write_pending(&mut self) {
        self.flush_chunks();
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

    fn on_fetch_progress(&mut self, id: ChunkHash) {
        let Some(download) = self.downloads.get_mut(&id) else { return };
        let blobs = self.shares.blobs().clone();
        while let Some(event) = download.fetcher.poll_event() {
            match event {
                FetchEvent::Verified { hash, bytes } => {
                    self.chunk_batch_bytes += bytes.len();
                    self.chunk_batch.push((hash, bytes));
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
                self.flush_chunks();
            }
            return;
        }
        self.flush_chunks();
        let Some(download) = self.downloads.get_mut(&id) else { return };
        if download.manifest_stage {
            match blobs.manifest(&id) {
                Ok(Some(manifest)) => {
                    download.fetcher = Fetcher::new(&manifest, |h| blobs.has(h), FetchConfig::default());
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

    pub(super) fn on_blob_event(&mut self, event: request_response::Event<Wire<Get>, Response>) {
        use request_response::{Event, Message};
        let now = self.now_ms();
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.serve_blob(peer, request, channel)
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                let Some((id, get)) = self.blob_requests.remove(&request_id) else { return };
                if let Some(download) = self.downloads.get_mut(&id) {
                    download.fetcher.on_response(now, &peer.to_bytes(), &get, response);
                }
                self.on_fetch_progress(id);
                self.drive_fetches();
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if let Some((id, _)) = self.blob_requests.remove(&request_id) {
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
            Wire::Msg(get) => self.shares.blobs().answer(&get),
        };
        let _ = self.swarm.behaviour_mut().blob.send_response(channel, response);
    }
}

/// Downloads keyed by content id.
pub(super) type Downloads = BTreeMap<ChunkHash, Download>;
