//! The event loop's side of direct connections (`net::direct`): one link
//! per member, and the requests of the downloads sent over it in batches.
//!
//! A link is tried once the member's greeting announced a port and its
//! libp2p connection gave an IP address; while it is down (never made,
//! refused, failed, retried after a back-off) the same requests go over
//! `/hearth/blob/1`. The fetchers do not know which way a request went:
//! answers come back as the same [`Response`]s, and a failed batch is a
//! failed request like any other.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hearth_protocol::blob::batch;
use hearth_protocol::blob::{ChunkHash, Get, Response};
use hearth_protocol::PeerBytes;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::EventLoop;
use crate::net::codec::Wire;
use crate::net::direct::{self, BatchFailure, Direct, Readers};

/// Most ranges per batch: small enough that several batches are in flight
/// per download (the server answers one while the client reads another).
const BATCH_GETS: usize = 16;
/// First wait before trying a failed link again; doubles up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Most `/hearth/blob/1` requests outstanding at one peer; the rest wait
/// in a queue (the behaviour takes 256 streams per connection and drops
/// what exceeds them, which the fetchers would count as failures).
const SWARM_OUTSTANDING: usize = 128;

enum LinkState {
    Idle,
    Connecting,
    Up(quinn::Connection),
    Failed { until: Instant },
}

struct Link {
    ip: Option<IpAddr>,
    port: Option<u16>,
    state: LinkState,
    /// The wait after the last failure (`None` once a connection worked).
    backoff: Option<Duration>,
}

impl Link {
    fn new() -> Self {
        Self { ip: None, port: None, state: LinkState::Idle, backoff: None }
    }

    fn fail(&mut self) {
        let delay = self.backoff.map_or(RETRY_FIRST, |d| (d * 2).min(RETRY_MAX));
        self.backoff = Some(delay);
        self.state = LinkState::Failed { until: Instant::now() + delay };
    }
}

/// What a direct-connection task reports.
pub(super) enum DirectDone {
    Connected { peer: PeerId, addr: SocketAddr, result: Result<quinn::Connection, String> },
    Batch { peer: PeerId, items: Vec<(ChunkHash, Get)>, answers: Vec<Response>, failure: Option<BatchFailure> },
}

/// Links and their tasks, and the requests waiting to go over the swarm.
pub(super) struct DirectLinks {
    endpoint: Option<Direct>,
    readers: Readers,
    links: BTreeMap<PeerId, Link>,
    tasks: JoinSet<DirectDone>,
    /// Requests for the swarm beyond [`SWARM_OUTSTANDING`], per peer.
    swarm_queue: BTreeMap<PeerId, VecDeque<(ChunkHash, Get)>>,
    /// `/hearth/blob/1` requests outstanding, per peer.
    swarm_outstanding: BTreeMap<PeerId, usize>,
}

impl DirectLinks {
    pub(super) fn new(endpoint: Option<(Direct, Readers)>) -> Self {
        let (endpoint, readers) = match endpoint {
            Some((d, r)) => (Some(d), r),
            None => (None, Readers::default()),
        };
        Self {
            endpoint,
            readers,
            links: BTreeMap::new(),
            tasks: JoinSet::new(),
            swarm_queue: BTreeMap::new(),
            swarm_outstanding: BTreeMap::new(),
        }
    }

    /// The port to announce in greetings.
    pub(super) fn port(&self) -> Option<u16> {
        self.endpoint.as_ref().and_then(Direct::port)
    }

    /// The next finished task; pending forever while there is none.
    pub(super) async fn next(&mut self) -> DirectDone {
        loop {
            match self.tasks.join_next().await {
                Some(Ok(done)) => return done,
                Some(Err(e)) => warn!("a direct-connection task failed: {e}"),
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn link(&mut self, peer: PeerId) -> &mut Link {
        self.links.entry(peer).or_insert_with(Link::new)
    }

    /// The peer's IP, from the address of a libp2p connection to it.
    pub(super) fn learn_addr(&mut self, peer: PeerId, remote: &Multiaddr) {
        let ip = remote.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        });
        if let Some(ip) = ip {
            self.link(peer).ip = Some(ip);
        }
    }

    /// The port the peer announced in its greeting.
    pub(super) fn learn_port(&mut self, peer: PeerId, port: Option<u16>) {
        let link = self.link(peer);
        if link.port != port {
            link.port = port;
            link.state = LinkState::Idle;
        }
    }

    /// The peer's last libp2p connection closed: so does the link.
    pub(super) fn peer_gone(&mut self, peer: &PeerId) {
        // The fetchers take their requests back (`remove_peer`).
        self.swarm_queue.remove(peer);
        self.swarm_outstanding.remove(peer);
        if let Some(link) = self.links.get_mut(peer) {
            if let LinkState::Up(conn) = &link.state {
                conn.close(quinn::VarInt::from_u32(0), b"bye");
            }
            link.state = LinkState::Idle;
        }
    }

    /// Whether a direct connection to `peer` is up.
    pub(super) fn is_up(&self, peer: &PeerId) -> bool {
        self.links.get(peer).is_some_and(|l| matches!(&l.state, LinkState::Up(c) if c.close_reason().is_none()))
    }

    /// The endpoint and `peer`'s direct address as far as known, for
    /// `/hearth/backup/2` (which keeps its own connections).
    pub(super) fn backup_target(&self, peer: &PeerId) -> Option<(Direct, IpAddr, Option<u16>)> {
        let endpoint = self.endpoint.as_ref()?;
        let link = self.links.get(peer)?;
        Some((endpoint.clone(), link.ip?, link.port))
    }

    /// Who may read contents here.
    pub(super) fn set_readers(&self, readers: impl IntoIterator<Item = PeerId>) {
        let new: std::collections::HashSet<PeerId> = readers.into_iter().collect();
        let mut current = self.readers.write().unwrap_or_else(|e| e.into_inner());
        if *current != new {
            *current = new;
        }
    }

    /// A working connection to `peer`, if there is one; otherwise starts
    /// making one when that is possible and due.
    fn connection(&mut self, peer: PeerId) -> Option<quinn::Connection> {
        let endpoint = self.endpoint.as_ref()?;
        let link = self.links.entry(peer).or_insert_with(Link::new);
        match &link.state {
            LinkState::Up(conn) if conn.close_reason().is_none() => return Some(conn.clone()),
            LinkState::Up(conn) => {
                debug!(%peer, "direct connection lost: {:?}", conn.close_reason());
                link.fail();
                return None;
            }
            LinkState::Connecting => return None,
            LinkState::Failed { until } if *until > Instant::now() => return None,
            LinkState::Idle | LinkState::Failed { .. } => {}
        }
        let (Some(ip), Some(port)) = (link.ip, link.port) else { return None };
        let addr = SocketAddr::new(ip, port);
        link.state = LinkState::Connecting;
        let connecting = endpoint.connect(peer, addr);
        self.tasks.spawn(async move { DirectDone::Connected { peer, addr, result: connecting.await } });
        None
    }

    fn connected(&mut self, peer: PeerId, addr: SocketAddr, result: Result<quinn::Connection, String>) {
        let link = self.link(peer);
        if !matches!(link.state, LinkState::Connecting) {
            // The peer left (or changed its port) meanwhile.
            if let Ok(conn) = result {
                conn.close(quinn::VarInt::from_u32(0), b"no longer needed");
            }
            return;
        }
        direct::log_connected(&peer, addr, &result);
        match result {
            Ok(conn) => {
                link.backoff = None;
                link.state = LinkState::Up(conn);
            }
            Err(_) => link.fail(),
        }
    }

    /// A batch failed on the link: it is dropped, retried after a back-off.
    fn failed(&mut self, peer: PeerId) {
        let link = self.link(peer);
        if let LinkState::Up(conn) = &link.state {
            conn.close(quinn::VarInt::from_u32(0), b"batch failed");
        }
        link.fail();
    }

    /// Closes every link (at shutdown).
    pub(super) fn close(&mut self) {
        if let Some(endpoint) = &self.endpoint {
            endpoint.close();
        }
        self.links.clear();
    }
}

impl EventLoop {
    /// Sends the requests the fetchers produced: over a direct link in
    /// batches where there is one, as `/hearth/blob/1` requests otherwise.
    pub(super) fn send_gets(&mut self, requests: Vec<(ChunkHash, PeerBytes, Get)>) {
        let mut by_peer: BTreeMap<PeerId, Vec<(ChunkHash, Get)>> = BTreeMap::new();
        for (download, peer, get) in requests {
            let Ok(peer) = PeerId::from_bytes(&peer) else { continue };
            by_peer.entry(peer).or_default().push((download, get));
        }
        for (peer, items) in by_peer {
            match self.direct.connection(peer) {
                Some(conn) => {
                    let mut batch: Vec<(ChunkHash, Get)> = Vec::new();
                    let mut bytes = 0u64;
                    for item in items {
                        if !batch.is_empty()
                            && (batch.len() >= BATCH_GETS || bytes + u64::from(item.1.len) > batch::MAX_BATCH_BYTES)
                        {
                            self.spawn_batch(peer, conn.clone(), std::mem::take(&mut batch));
                            bytes = 0;
                        }
                        bytes += u64::from(item.1.len);
                        batch.push(item);
                    }
                    if !batch.is_empty() {
                        self.spawn_batch(peer, conn, batch);
                    }
                }
                None => {
                    self.direct.swarm_queue.entry(peer).or_default().extend(items);
                    self.pump_swarm(peer);
                }
            }
        }
    }

    /// Sends queued `/hearth/blob/1` requests to `peer` while it has room.
    fn pump_swarm(&mut self, peer: PeerId) {
        loop {
            let outstanding = self.direct.swarm_outstanding.get(&peer).copied().unwrap_or(0);
            if outstanding >= SWARM_OUTSTANDING {
                return;
            }
            let Some((download, get)) = self.direct.swarm_queue.get_mut(&peer).and_then(VecDeque::pop_front) else {
                self.direct.swarm_queue.remove(&peer);
                return;
            };
            let request = self.swarm.behaviour_mut().blob.send_request(&peer, Wire::Msg(get));
            self.blob_requests.insert(request, (download, get));
            *self.direct.swarm_outstanding.entry(peer).or_default() += 1;
        }
    }

    /// A `/hearth/blob/1` request to `peer` was answered or failed.
    pub(super) fn swarm_request_done(&mut self, peer: PeerId) {
        if let Some(n) = self.direct.swarm_outstanding.get_mut(&peer) {
            *n = n.saturating_sub(1);
        }
        self.pump_swarm(peer);
    }

    fn spawn_batch(&mut self, peer: PeerId, conn: quinn::Connection, items: Vec<(ChunkHash, Get)>) {
        let gets: Vec<Get> = items.iter().map(|(_, g)| *g).collect();
        self.direct.tasks.spawn(async move {
            let (answers, failure) = direct::fetch(conn, gets).await;
            DirectDone::Batch { peer, items, answers, failure }
        });
    }

    /// A direct-connection task finished.
    pub(super) fn on_direct(&mut self, done: DirectDone) {
        match done {
            DirectDone::Connected { peer, addr, result } => {
                self.direct.connected(peer, addr, result);
                // What still waits for the swarm takes the link instead.
                if self.direct.is_up(&peer) {
                    if let Some(queued) = self.direct.swarm_queue.remove(&peer) {
                        let requests = queued.into_iter().map(|(d, g)| (d, peer.to_bytes(), g)).collect();
                        self.send_gets(requests);
                    }
                }
                self.drive_fetches();
            }
            DirectDone::Batch { peer, items, answers, failure } => {
                let now = self.now_ms();
                let peer_bytes = peer.to_bytes();
                let mut touched: Vec<ChunkHash> = Vec::new();
                let answered = answers.len();
                for ((download, get), answer) in items.iter().zip(answers) {
                    if let Some(d) = self.downloads.get_mut(download) {
                        d.fetcher.on_response(now, &peer_bytes, get, answer);
                    }
                    touched.push(*download);
                }
                if let Some(failure) = failure {
                    let rest = &items[answered..];
                    match &failure {
                        BatchFailure::Refused(message) => {
                            warn!(%peer, "a member refused a batch of contents: {message}");
                            for (download, get) in rest {
                                if let Some(d) = self.downloads.get_mut(download) {
                                    d.fetcher.on_refused(now, &peer_bytes, get.hash, message.clone());
                                }
                            }
                        }
                        BatchFailure::Transport(e) | BatchFailure::Malformed(e) => {
                            if matches!(failure, BatchFailure::Malformed(_)) {
                                warn!(%peer, "a member broke the {} format ({e}); using the swarm", batch::PROTOCOL);
                            } else {
                                debug!(%peer, "a batch failed: {e}");
                            }
                            self.direct.failed(peer);
                            let mut failed: Vec<ChunkHash> = rest.iter().map(|(d, _)| *d).collect();
                            failed.dedup();
                            for download in failed {
                                if let Some(d) = self.downloads.get_mut(&download) {
                                    d.fetcher.on_failure(now, &peer_bytes);
                                }
                            }
                        }
                    }
                    touched.extend(rest.iter().map(|(d, _)| *d));
                }
                touched.sort();
                touched.dedup();
                for download in touched {
                    self.on_fetch_progress(download);
                }
                self.drive_fetches();
            }
        }
    }

    /// Members of a share here may read contents over direct connections;
    /// called on every tick and after share events and commands, so that a
    /// member who just accepted is served at its first connection (one role
    /// lookup per connected peer and share: not measurable next to a sync
    /// round).
    pub(super) fn refresh_readers(&self) {
        let readers: Vec<PeerId> =
            self.swarm.connected_peers().filter(|p| self.shares.is_member_anywhere(&p.to_bytes())).copied().collect();
        self.direct.set_readers(readers);
    }
}
