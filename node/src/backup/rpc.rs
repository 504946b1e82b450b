//! How the backup engine talks to friends: requests on `/hearth/backup/1`
//! handed to whoever owns the swarm (the node's event loop, or the
//! temporary swarm of a fresh restore) over a bounded channel, answered
//! through a oneshot. The engine is plain async code; the swarm's owner
//! stays the only one touching the swarm.
//!
//! Whole shards move over `/hearth/backup/2` (`net::direct::backup`) when a
//! direct connection to the friend can be made: the swarm's owner hands
//! out the endpoint and the friend's address, the connection is kept here
//! for the next shards. When there is none (no endpoint, not reachable,
//! failed: tried again after [`DIRECT_RETRY`]) shards go over
//! `/hearth/backup/1` in pieces, as before.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use hearth_protocol::backup::erasure::ShardId;
use hearth_protocol::backup::wire::{BackupRequest, BackupResponse, MAX_PIECE};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use crate::net::direct::backup::{self as direct, DirectFailure};
use crate::net::direct::Direct;

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
    /// The direct endpoint and where `peer`'s is, as far as known: its IP
    /// (from the swarm connection) and port (from its greeting; `None`:
    /// ask it with `direct_port`). `None` without an endpoint or an IP.
    DirectTarget {
        /// The friend.
        peer: PeerId,
        /// The answer.
        reply: oneshot::Sender<Option<(Direct, IpAddr, Option<u16>)>>,
    },
}

/// A friend's direct connection, as far as this handle knows.
enum Link {
    Up(quinn::Connection),
    /// Not to be tried again before then.
    Failed(Instant),
}

type PeerLink = Arc<tokio::sync::Mutex<Option<Link>>>;

/// Handle used by the engine.
#[derive(Clone)]
pub struct Rpc {
    tx: mpsc::Sender<RpcMsg>,
    /// Per friend; its lock is held while a connection is made, so that
    /// parallel shards to one friend share it (and a friend that is away
    /// holds up nobody else).
    links: Arc<std::sync::Mutex<BTreeMap<PeerId, PeerLink>>>,
}

/// Wait before a failed direct connection is tried again.
pub const DIRECT_RETRY: Duration = Duration::from_secs(30);

/// Longest wait for one answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl Rpc {
    /// A handle and the receiver the swarm's owner serves.
    pub fn channel() -> (Self, mpsc::Receiver<RpcMsg>) {
        let (tx, rx) = mpsc::channel(64);
        (Self { tx, links: Default::default() }, rx)
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

    /// A direct connection to `peer`, made now if there is none and one
    /// was not refused lately.
    async fn direct(&self, peer: PeerId, addrs: &[Multiaddr]) -> Option<quinn::Connection> {
        let link = self.link(peer);
        let mut link = link.lock().await;
        match &*link {
            Some(Link::Up(conn)) if conn.close_reason().is_none() => return Some(conn.clone()),
            Some(Link::Failed(until)) if *until > Instant::now() => return None,
            _ => {}
        }
        match self.connect_direct(peer, addrs).await {
            Ok(conn) => {
                info!(%peer, "shards go over a direct connection ({})", hearth_protocol::backup::wire::DIRECT_PROTOCOL);
                *link = Some(Link::Up(conn.clone()));
                Some(conn)
            }
            Err(e) => {
                info!(%peer, "no direct connection for shards ({e:#}); they go over the swarm");
                *link = Some(Link::Failed(Instant::now() + DIRECT_RETRY));
                None
            }
        }
    }

    fn link(&self, peer: PeerId) -> PeerLink {
        self.links.lock().unwrap_or_else(|e| e.into_inner()).entry(peer).or_default().clone()
    }

    async fn connect_direct(&self, peer: PeerId, addrs: &[Multiaddr]) -> Result<quinn::Connection> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(RpcMsg::DirectTarget { peer, reply }).await.map_err(|_| anyhow!("the node is shutting down"))?;
        let (endpoint, ip, port) = match rx.await.ok().flatten() {
            Some(t) => t,
            None => {
                // Not connected yet: a first request over the swarm
                // connects, and tells the port.
                self.call(peer, addrs.to_vec(), BackupRequest::DirectPort).await.ok();
                let (reply, rx) = oneshot::channel();
                self.tx
                    .send(RpcMsg::DirectTarget { peer, reply })
                    .await
                    .map_err(|_| anyhow!("the node is shutting down"))?;
                rx.await.ok().flatten().ok_or_else(|| anyhow!("no direct endpoint, or no address of the friend"))?
            }
        };
        let port = match port {
            Some(p) => p,
            None => match self.call(peer, addrs.to_vec(), BackupRequest::DirectPort).await? {
                BackupResponse::DirectPort { port: Some(p) } => p,
                BackupResponse::DirectPort { port: None } => bail!("the friend has no direct endpoint"),
                other => {
                    bail!("the friend does not know {} ({other:?})", hearth_protocol::backup::wire::DIRECT_PROTOCOL)
                }
            },
        };
        direct::connect(&endpoint, peer, SocketAddr::new(ip, port)).await
    }

    fn direct_failed(&self, peer: PeerId, e: &DirectFailure) {
        debug!(%peer, "a shard did not move over the direct connection ({e}); trying the swarm");
        if let Ok(mut link) = self.link(peer).try_lock() {
            *link = Some(Link::Failed(Instant::now() + DIRECT_RETRY));
        }
    }

    /// Uploads shard `id`; returns the bytes sent (fewer when the friend
    /// holds it, or its beginning, already).
    pub async fn put_shard(&self, peer: PeerId, id: ShardId, shard: &bytes::Bytes) -> Result<u64> {
        if let Some(conn) = self.direct(peer, &[]).await {
            match direct::put_shard(&conn, id, shard.clone()).await {
                Ok(sent) => return Ok(sent),
                Err(DirectFailure::Refused(message)) => bail!("{peer} refused: {message}"),
                Err(e) => self.direct_failed(peer, &e),
            }
        }
        self.upload(peer, shard, |offset, total, data| BackupRequest::PutShard { shard: id, offset, total, data })
            .await
            .map(|()| shard.len() as u64)
    }

    /// Downloads shard `id` of `len` bytes (not checked against its id).
    pub async fn get_shard(&self, peer: PeerId, addrs: &[Multiaddr], id: ShardId, len: u64) -> Result<Vec<u8>> {
        if let Some(conn) = self.direct(peer, addrs).await {
            match direct::get_shard(&conn, id, len).await {
                Ok(bytes) => return Ok(bytes),
                Err(DirectFailure::Refused(message)) => bail!("{peer} refused: {message}"),
                Err(e) => self.direct_failed(peer, &e),
            }
        }
        self.download(peer, addrs, len, |offset, l| BackupRequest::GetShard { shard: id, offset, len: l }).await
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
