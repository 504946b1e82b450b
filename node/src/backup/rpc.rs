//! How the backup engine talks to friends: requests on `/hearth/backup/1`
//! handed to whoever owns the swarm (the node's event loop, or the
//! temporary swarm of a fresh restore) over a bounded channel, answered
//! through a oneshot. The engine is plain async code; the swarm's owner
//! stays the only one touching the swarm.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use hearth_protocol::backup::wire::{BackupRequest, BackupResponse, MAX_PIECE};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

/// A message to the swarm's owner.
pub enum RpcMsg {
    /// Send a request to `peer` (dialling `addrs` if not connected).
    Call {
        /// The friend.
        peer: PeerId,
        /// Addresses to try if not connected.
        addrs: Vec<Multiaddr>,
        /// The request.
        request: BackupRequest,
        /// The answer, or why there is none.
        reply: oneshot::Sender<Result<BackupResponse, String>>,
    },
    /// The contacts connected now.
    Online(oneshot::Sender<BTreeSet<PeerId>>),
}

/// Handle used by the engine.
#[derive(Clone)]
pub struct Rpc {
    tx: mpsc::Sender<RpcMsg>,
}

/// Longest wait for one answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl Rpc {
    /// A handle and the receiver the swarm's owner serves.
    pub fn channel() -> (Self, mpsc::Receiver<RpcMsg>) {
        let (tx, rx) = mpsc::channel(64);
        (Self { tx }, rx)
    }

    /// Sends `request` to `peer` and waits for the answer.
    pub async fn call(&self, peer: PeerId, addrs: Vec<Multiaddr>, request: BackupRequest) -> Result<BackupResponse> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(RpcMsg::Call { peer, addrs, request, reply })
            .await
            .map_err(|_| anyhow!("the node is shutting down"))?;
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(e))) => Err(anyhow!("{peer} could not be reached: {e}")),
            Ok(Err(_)) => Err(anyhow!("the node is shutting down")),
            Err(_) => Err(anyhow!("{peer} did not answer within {} s", CALL_TIMEOUT.as_secs())),
        }
    }

    /// The peers connected now.
    pub async fn online(&self) -> BTreeSet<PeerId> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(RpcMsg::Online(reply)).await.is_err() {
            return BTreeSet::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Uploads a whole object (shard or metadata) in pieces; `make` builds
    /// the request of a piece from (offset, total, data).
    pub async fn upload(
        &self,
        peer: PeerId,
        bytes: &[u8],
        make: impl Fn(u64, u64, Vec<u8>) -> BackupRequest,
    ) -> Result<()> {
        let total = bytes.len() as u64;
        let mut offset = 0usize;
        // Bounded: each round either advances or fails.
        for _ in 0..=bytes.len() / MAX_PIECE + 2 {
            let end = (offset + MAX_PIECE).min(bytes.len());
            let piece = bytes[offset..end].to_vec();
            match self.call(peer, vec![], make(offset as u64, total, piece)).await? {
                BackupResponse::Stored { have } if have >= total => return Ok(()),
                BackupResponse::Stored { have } if have as usize > offset => offset = have as usize,
                BackupResponse::Refused { message, .. } => bail!("{peer} refused: {message}"),
                other => bail!("{peer} answered an upload with {other:?}"),
            }
        }
        bail!("{peer} did not take the upload")
    }

    /// Downloads a whole object; `make` builds the request of a range.
    pub async fn download(
        &self,
        peer: PeerId,
        addrs: &[Multiaddr],
        limit: u64,
        make: impl Fn(u64, u32) -> BackupRequest,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for _ in 0..=limit / MAX_PIECE as u64 + 2 {
            match self.call(peer, addrs.to_vec(), make(out.len() as u64, MAX_PIECE as u32)).await? {
                BackupResponse::Data { total, data } => {
                    if total > limit {
                        bail!("{peer} offers an object of {total} bytes, more than the {limit} expected");
                    }
                    if data.is_empty() && (out.len() as u64) < total {
                        bail!("{peer} sent an empty piece");
                    }
                    out.extend_from_slice(&data);
                    if out.len() as u64 >= total {
                        out.truncate(total as usize);
                        return Ok(out);
                    }
                }
                BackupResponse::Refused { message, .. } => bail!("{peer} refused: {message}"),
                other => bail!("{peer} answered a download with {other:?}"),
            }
        }
        bail!("{peer} did not complete the download")
    }
}
