//! The event loop: sole owner of the swarm. It answers API commands, runs
//! the pairing and greeting protocols, gates strangers and keeps contacts
//! connected (dialling their last known addresses with backoff, directly or
//! through a relay, see [`reach`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hearth_protocol::contact::{self, Hello, HelloResponse};
use hearth_protocol::pairing::{self, InvitationRecord, InviterDecision, JoinError, Joiner, PairRequest, PairResponse};
use hearth_protocol::token::{self, Invitation};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, mdns, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::behaviour::BehaviourEvent;
pub use backup::Backup;
mod backup;
mod bank;
mod direct;
mod fetch;
mod reach;
mod share;
mod watch;

use super::codec::Wire;
use super::{merge_addrs, transport_port, Behaviour, Command};
use crate::api::ApiError;
use crate::config::Config;
use crate::now_unix;
use crate::share::Shares;
use crate::store::{ContactRecord, ListenPorts, Origin, Store};
use crate::views::{rfc3339, ContactBrief, ContactView, InvitationView, InviteView, JoinRequest, StatusView};

/// How often timers (stranger grace, redial) are checked.
const TICK: Duration = Duration::from_secs(1);
/// First wait before redialling a contact; doubles up to the configured max.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait for connections to close at shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often contents past the retention period are dropped (see
/// `Shares::expire`); the first time one interval after the start.
const EXPIRY_EVERY: Duration = Duration::from_secs(3600);

struct PendingJoin {
    joiner: Joiner,
    alias: Option<String>,
    addrs: Vec<Multiaddr>,
    reply: oneshot::Sender<Result<ContactView, ApiError>>,
}

struct Redial {
    due: Instant,
    delay: Duration,
}

/// Runs disk-heavy work (scanning, hashing, writing files) on the event
/// loop's thread without starving the runtime: other tasks (the API, the
/// connections' own tasks) move to other workers meanwhile.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// See the module documentation.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    store: Arc<Store>,
    config: Config,
    local: PeerId,
    api_addr: String,
    started: Instant,
    commands: mpsc::Receiver<Command>,
    listen_addrs: Vec<Multiaddr>,
    /// Non-contacts with an open connection, and since when.
    strangers: HashMap<PeerId, Instant>,
    /// Contacts that answered our greeting with "not a contact".
    refused_by: HashSet<PeerId>,
    joins: HashMap<OutboundRequestId, PendingJoin>,
    redial: BTreeMap<PeerId, Redial>,
    shares: Shares,
    /// Share requests in flight, with the share they are about.
    share_requests: HashMap<OutboundRequestId, Vec<u8>>,
    downloads: fetch::Downloads,
    /// Blob requests being answered and fetched chunks being written, off
    /// the event loop.
    blob_io: fetch::BlobIo,
    /// Blob requests in flight: the download and the range asked.
    blob_requests: HashMap<OutboundRequestId, (hearth_protocol::blob::ChunkHash, hearth_protocol::blob::Get)>,
    /// When the shares were last scanned.
    last_scan: Instant,
    /// When contents past the retention period were last dropped.
    last_expiry: Instant,
    /// Bytes of verified chunks waiting to be handed to a writer.
    chunk_batch_bytes: usize,
    watch: watch::Watch,
    /// Shares with completed downloads not yet written to disk.
    pending_writes: std::collections::BTreeSet<Vec<u8>>,
    /// Bank views, written and received.
    bank_views: crate::bank::views::Views,
    /// Bank requests in flight, with the view they are about.
    bank_requests: HashMap<OutboundRequestId, Vec<u8>>,
    /// Backups: the owner's engine and the host's side.
    backup: Backup,
    /// Direct connections to members, for file contents.
    direct: direct::DirectLinks,
    /// Members of each share with downloads, and when they were read.
    member_cache: HashMap<Vec<u8>, (Instant, Vec<Vec<u8>>)>,
    /// Relays, reservations, hole punching, direct or relayed links.
    reach: reach::Reach,
}

impl EventLoop {
    /// Wraps a swarm that is already listening.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        swarm: Swarm<Behaviour>,
        store: Arc<Store>,
        config: Config,
        api_addr: String,
        commands: mpsc::Receiver<Command>,
        shares: Shares,
        bank_views: crate::bank::views::Views,
        backup: Backup,
    ) -> Self {
        let local = *swarm.local_peer_id();
        let reach = reach::Reach::new(&config.relays);
        Self {
            swarm,
            store,
            config,
            local,
            api_addr,
            started: Instant::now(),
            commands,
            listen_addrs: Vec::new(),
            strangers: HashMap::new(),
            refused_by: HashSet::new(),
            joins: HashMap::new(),
            redial: BTreeMap::new(),
            shares,
            share_requests: HashMap::new(),
            downloads: Default::default(),
            blob_io: Default::default(),
            blob_requests: HashMap::new(),
            last_scan: Instant::now(),
            last_expiry: Instant::now(),
            chunk_batch_bytes: 0,
            watch: watch::Watch::new(),
            pending_writes: Default::default(),
            bank_views,
            bank_requests: HashMap::new(),
            backup,
            direct: direct::DirectLinks::new(None),
            member_cache: HashMap::new(),
            reach,
        }
    }

    /// Uses the direct-connection endpoint `direct` (with the set of readers
    /// its server consults) for file contents.
    pub fn with_direct(mut self, direct: Option<(crate::net::direct::Direct, crate::net::direct::Readers)>) -> Self {
        self.direct = direct::DirectLinks::new(direct);
        self
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(mut self, mut shutdown: oneshot::Receiver<()>) {
        match self.store.contacts() {
            Ok(contacts) => {
                let now = Instant::now();
                for (peer, _) in contacts {
                    if let Ok(peer) = PeerId::from_bytes(&peer) {
                        self.redial.insert(peer, Redial { due: now, delay: FIRST_BACKOFF });
                    }
                }
            }
            Err(err) => error!("cannot read contacts: {err:#}"),
        }
        // What each share still lacks is known only once its folder was
        // written out: do it now, not at the first periodic rescan, so that
        // downloads interrupted by a crash resume at once and status does
        // not report an incomplete share as complete meanwhile.
        self.scan_all();
        self.update_relay_offer();
        let mut tick = tokio::time::interval(TICK);
        let mut debounce = tokio::time::interval(watch::DEBOUNCE);
        debounce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(command) = self.commands.recv() => self.on_command(command),
                Some(share) = self.watch.changed() => self.watch.mark_dirty(share),
                _ = debounce.tick(), if self.watch.has_dirty() => self.scan_settled(),
                _ = tick.tick() => self.on_tick(),
                done = self.blob_io.next() => self.on_blob_io(done),
                done = self.direct.next() => self.on_direct(done),
                Some(msg) = self.backup.rpc.recv() => self.on_backup_rpc(msg),
                done = backup::next_answer(&mut self.backup.answering) => self.on_backup_answered(done),
            }
        }
        self.flush_chunks();
        self.direct.close();
        self.close_connections().await;
        info!("network stopped");
    }

    /// Closes every connection and drives the swarm until they are gone (at
    /// most [`CLOSE_TIMEOUT`]), so contacts learn at once that we left and the
    /// QUIC socket is released promptly for a restart.
    async fn close_connections(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while self.swarm.network_info().num_peers() > 0 {
                let event = self.swarm.select_next_some().await;
                debug!("while stopping: {event:?}");
            }
        })
        .await;
    }

    fn contact(&self, peer: &PeerId) -> Option<ContactRecord> {
        match self.store.contact(&peer.to_bytes()) {
            Ok(c) => c,
            Err(err) => {
                error!("cannot read contact {peer}: {err:#}");
                None
            }
        }
    }

    fn online(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer) && !self.refused_by.contains(peer)
    }

    fn view(&self, peer: &[u8], c: &ContactRecord) -> ContactView {
        let id = PeerId::from_bytes(peer).ok();
        let online = id.is_some_and(|p| self.online(&p));
        // While connected, "last seen" is now.
        let last_seen = if online { Some(now_unix()) } else { c.last_seen };
        ContactView {
            name: c.name.clone(),
            peer_id: id.map(|p| p.to_string()).unwrap_or_else(|| hex::encode(peer)),
            online,
            last_seen: last_seen.map(rfc3339),
            last_seen_unix: last_seen,
            their_name: c.their_name.clone(),
            origin: match c.origin {
                Origin::Invited => "invited".into(),
                Origin::Joined => "joined".into(),
            },
            added_at: rfc3339(c.added_at),
            addresses: c.addrs.clone(),
            refused_by_them: id.is_some_and(|p| self.refused_by.contains(&p)),
            link: id.filter(|p| self.online(p)).and_then(|p| self.reach.link(&p)).map(|l| l.as_str().into()),
            last_link: id
                .and_then(|p| self.reach.of(&p))
                .and_then(|r| r.last)
                .map(|(_, l)| l.as_str().into())
                .or_else(|| c.last_link.clone()),
            hole_punch: id.and_then(|p| self.reach.of(&p)).and_then(|r| r.hole_punch).map(|(outcome, at)| {
                let word = match outcome {
                    hearth_protocol::reach::HolePunch::Succeeded => "succeeded",
                    hearth_protocol::reach::HolePunch::Failed => "failed",
                };
                format!("{word} at {}", rfc3339(at))
            }),
            upgraded_at: id.and_then(|p| self.reach.of(&p)).and_then(|r| r.upgraded_at).map(rfc3339),
        }
    }

    fn local_hello(&self) -> Hello {
        let mut hello = Hello::new(
            self.config.name.clone(),
            self.own_addrs().iter().map(|(a, _)| serde_bytes::ByteBuf::from(a.to_vec())).collect(),
            format!("hearth/{}", env!("CARGO_PKG_VERSION")),
            self.direct.port(),
        );
        // Contacts being redialled: a mutual contact may know where they are.
        hello.ask =
            self.redial.keys().take(contact::MAX_ASKS).map(|p| serde_bytes::ByteBuf::from(p.to_bytes())).collect();
        hello
    }

    /// What this node knows of the contacts `asks` names (its own contacts
    /// only: anyone else is never revealed).
    fn known_for(&self, asks: &[serde_bytes::ByteBuf]) -> Vec<contact::Known> {
        contact::answer_asks(asks, |peer| {
            let record = self.store.contact(peer).ok().flatten()?;
            Some(record.addrs.iter().filter_map(|a| a.parse::<Multiaddr>().ok()).map(|a| a.to_vec()).collect())
        })
    }

    fn greet(&mut self, peer: PeerId) {
        let hello = self.local_hello();
        self.swarm.behaviour_mut().contact.send_request(&peer, Wire::Msg(hello));
    }

    fn dial_contact(&mut self, peer: PeerId, record: &ContactRecord) {
        let addrs: Vec<Multiaddr> = record.addrs.iter().filter_map(|a| a.parse().ok()).collect();
        if addrs.is_empty() {
            return;
        }
        let opts = DialOpts::peer_id(peer).addresses(addrs).condition(PeerCondition::DisconnectedAndNotDialing).build();
        if let Err(err) = self.swarm.dial(opts) {
            debug!(%peer, "not dialling {}: {err}", record.name);
        }
    }

    /// Persists "seen now" and, if given, addresses learned from the peer.
    fn touch_contact(&mut self, peer: &PeerId, addrs: Vec<Multiaddr>, their_name: Option<String>) {
        let now = now_unix();
        let last_link = self.reach.of(peer).and_then(|r| r.last).map(|(_, l)| l.as_str().to_owned());
        let result = self.store.update_contact(&peer.to_bytes(), |c| {
            c.last_seen = Some(now);
            if last_link.is_some() {
                c.last_link = last_link;
            }
            if !addrs.is_empty() {
                c.addrs = merge_addrs(&c.addrs, addrs);
            }
            if let Some(name) = their_name {
                c.their_name = name;
            }
        });
        if let Err(err) = result {
            error!("cannot update contact {peer}: {err:#}");
        }
    }

    // ----- commands -------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Invite { ttl_secs, reply } => {
                let _ = reply.send(self.invite(ttl_secs));
            }
            Command::Invitations(reply) => {
                let _ = reply.send(self.invitations());
            }
            Command::Join { request, reply } => self.join(request, reply),
            Command::Contacts(reply) => {
                let result = self
                    .store
                    .contacts()
                    .map(|all| all.iter().map(|(p, c)| self.view(p, c)).collect())
                    .map_err(ApiError::internal);
                let _ = reply.send(result);
            }
            Command::Share { op, reply } => {
                self.on_share_command(op, reply);
                self.refresh_readers();
            }
            Command::Bank { op, reply } => self.on_bank_command(op, reply),
            Command::Backup { op, reply } => self.on_backup_command(op, reply),
            Command::RemoveContact { name, reply } => {
                let _ = reply.send(self.remove_contact(&name));
            }
        }
    }

    fn status(&self) -> StatusView {
        let contacts = self.store.contacts().unwrap_or_default();
        let connected_contacts = contacts
            .iter()
            .filter_map(|(p, c)| {
                let id = PeerId::from_bytes(p).ok()?;
                self.online(&id).then(|| ContactBrief {
                    name: c.name.clone(),
                    peer_id: id.to_string(),
                    link: self.reach.link(&id).map(|l| l.as_str().into()),
                })
            })
            .collect();
        StatusView {
            peer_id: self.local.to_string(),
            name: self.config.name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.started.elapsed().as_secs(),
            listen_addrs: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
            connected_contacts,
            contacts_total: contacts.len(),
            api_addr: self.api_addr.clone(),
            direct_port: self.direct.port(),
            direct_links: contacts
                .iter()
                .filter(|(p, _)| PeerId::from_bytes(p).is_ok_and(|id| self.direct.is_up(&id)))
                .map(|(_, c)| c.name.clone())
                .collect(),
            reachability: self.reachability(),
            external_addrs: self.public_addrs().map(|a| a.to_string()).collect(),
            relays: self.relay_views(),
            relay_service: Some(self.relay_service_view()),
        }
    }

    fn invite(&mut self, ttl_secs: Option<u64>) -> Result<InviteView, ApiError> {
        let ttl = ttl_secs.unwrap_or(pairing::DEFAULT_TTL_SECS);
        if ttl == 0 || ttl > 30 * 24 * 3600 {
            return Err(ApiError::bad_request("an invitation lasts between 1 second and 30 days"));
        }
        // Public addresses first, else relayed ones; loopback last (same machine).
        let addrs: Vec<Multiaddr> = hearth_protocol::reach::invitation_addrs(&self.own_addrs(), token::MAX_ADDRS);
        if addrs.is_empty() {
            return Err(ApiError::unavailable("the node has no listen address yet; try again in a second"));
        }
        let now = now_unix();
        let secret: [u8; token::SECRET_LEN] = rand::random();
        let invitation = Invitation {
            inviter: self.local.to_bytes(),
            inviter_name: self.config.name.clone(),
            addrs: addrs.iter().map(|a| a.to_vec()).collect(),
            secret,
            expires_at: now + ttl,
        };
        let text = invitation.encode().map_err(|e| ApiError::internal(e.to_string()))?;
        let record = InvitationRecord {
            secret: secret.to_vec(),
            created_at: now,
            expires_at: now + ttl,
            used_by: None,
            revoked: false,
        };
        self.store.add_invitation(&invitation.token_id(), &record).map_err(ApiError::internal)?;
        info!(id = %hex::encode(invitation.token_id()), "created an invitation valid until {}", rfc3339(now + ttl));
        Ok(InviteView {
            token: text,
            expires_at: rfc3339(now + ttl),
            expires_at_unix: now + ttl,
            addresses: addrs.iter().map(|a| a.to_string()).collect(),
        })
    }

    fn invitations(&self) -> Result<Vec<InvitationView>, ApiError> {
        let now = now_unix();
        let all = self.store.invitations().map_err(ApiError::internal)?;
        let mut views: Vec<InvitationView> = all
            .into_iter()
            .map(|(id, r)| InvitationView {
                id: hex::encode(id),
                created_at: rfc3339(r.created_at),
                expires_at: rfc3339(r.expires_at),
                state: match (&r.used_by, now > r.expires_at) {
                    (Some(_), _) => "used".into(),
                    (None, true) => "expired".into(),
                    (None, false) => "open".into(),
                },
                used_by: r.used_by.map(|u| u.name),
            })
            .collect();
        views.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(views)
    }

    fn join(&mut self, request: JoinRequest, reply: oneshot::Sender<Result<ContactView, ApiError>>) {
        let result = (|| {
            let invitation = Invitation::decode(&request.token).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let inviter = PeerId::from_bytes(&invitation.inviter)
                .map_err(|_| ApiError::bad_request("the invitation names an invalid peer id; ask for a new one"))?;
            if let Some(alias) = &request.name {
                hearth_protocol::names::validate_name(alias).map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            if let Some(existing) = self.contact(&inviter) {
                return Err(ApiError::conflict(format!(
                    "{inviter} is already your contact \"{}\"; nothing to do",
                    existing.name
                )));
            }
            let joiner = Joiner::new(now_unix(), invitation, &self.local.to_bytes(), &self.config.name)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let addrs: Vec<Multiaddr> =
                joiner.invitation().addrs.iter().filter_map(|a| Multiaddr::try_from(a.clone()).ok()).collect();
            if addrs.is_empty() && !self.swarm.is_connected(&inviter) {
                return Err(ApiError::bad_request("the invitation carries no usable address of the inviter"));
            }
            Ok((inviter, joiner, addrs))
        })();
        let (inviter, mut joiner, addrs) = match result {
            Ok(ok) => ok,
            Err(err) => {
                warn!("join refused locally: {}", err.message);
                let _ = reply.send(Err(err));
                return;
            }
        };
        let Some(request_msg) = joiner.poll_request() else {
            let _ = reply.send(Err(ApiError::internal("pairing state machine produced no request")));
            return;
        };
        info!(%inviter, "joining {} at {} address(es)", joiner.invitation().inviter_name, addrs.len());
        let id = self.swarm.behaviour_mut().pair.send_request_with_addresses(
            &inviter,
            Wire::Msg(request_msg),
            addrs.clone(),
        );
        self.joins.insert(id, PendingJoin { joiner, alias: request.name, addrs, reply });
    }

    fn remove_contact(&mut self, name: &str) -> Result<ContactView, ApiError> {
        let contacts = self.store.contacts().map_err(ApiError::internal)?;
        let found = contacts
            .iter()
            .find(|(p, c)| c.name == name || PeerId::from_bytes(p).map(|id| id.to_string() == name).unwrap_or(false));
        let Some((peer, record)) = found else {
            return Err(ApiError::not_found(format!("no contact named \"{name}\"; see `hearth contacts`")));
        };
        let view = self.view(peer, record);
        self.store.remove_contact(peer).map_err(ApiError::internal)?;
        if let Ok(id) = PeerId::from_bytes(peer) {
            self.redial.remove(&id);
            self.refused_by.remove(&id);
            self.reach_contact_removed(&id);
            let _ = self.swarm.disconnect_peer_id(id);
        }
        info!("removed contact {} ({})", record.name, view.peer_id);
        Ok(ContactView { online: false, ..view })
    }

    // ----- swarm events ---------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, listener_id } => {
                // A relayed address arrives with our own id at its end.
                let address =
                    if super::is_relayed(&address) { super::dialable(&address).unwrap_or(address) } else { address };
                info!("listening on {address}/p2p/{}", self.local);
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address.clone());
                }
                if self.reach.is_reservation(listener_id) {
                    self.reach_reserved(listener_id, &address);
                } else {
                    self.remember_ports();
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let address =
                    if super::is_relayed(&address) { super::dialable(&address).unwrap_or(address) } else { address };
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed { listener_id, addresses, reason } => {
                for address in addresses {
                    let address = if super::is_relayed(&address) {
                        super::dialable(&address).unwrap_or(address)
                    } else {
                        address
                    };
                    self.listen_addrs.retain(|a| a != &address);
                }
                self.reach_listener_closed(listener_id, reason);
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                if !super::is_relayed(&address) {
                    info!("reachable from the internet at {address}");
                }
                self.update_relay_offer();
            }
            SwarmEvent::ExternalAddrExpired { .. } => self.update_relay_offer(),
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                // Kept for anyone: a stranger becomes a contact over this
                // very connection when it pairs. A relayed connection's IP
                // is the relay's: no direct link from it.
                if !endpoint.is_relayed() {
                    self.direct.learn_addr(peer_id, endpoint.get_remote_address());
                }
                self.reach_connection_opened(peer_id, connection_id, &endpoint);
                if self.contact(&peer_id).is_some() {
                    self.redial.remove(&peer_id);
                    if num_established.get() == 1 {
                        self.touch_contact(&peer_id, Vec::new(), None);
                        self.greet(peer_id);
                    }
                } else if !self.strangers.contains_key(&peer_id) {
                    let pairing = self.joins.values().any(|j| j.joiner.invitation().inviter == peer_id.to_bytes());
                    if !pairing {
                        info!(
                            peer = %peer_id,
                            "connection from a node that is not a contact ({}); it has {} s to present an invitation",
                            endpoint.get_remote_address(),
                            self.config.stranger_grace_secs
                        );
                    }
                    self.strangers.insert(peer_id, Instant::now());
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } if num_established > 0 => {
                self.reach_connection_closed(peer_id, connection_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, .. } => {
                self.reach_connection_closed(peer_id, connection_id);
                self.strangers.remove(&peer_id);
                self.direct.peer_gone(&peer_id);
                self.refused_by.remove(&peer_id);
                if let Some(c) = self.contact(&peer_id) {
                    info!(peer = %peer_id, "contact {} went offline", c.name);
                    self.touch_contact(&peer_id, Vec::new(), None);
                    self.redial.insert(peer_id, Redial { due: Instant::now() + FIRST_BACKOFF, delay: FIRST_BACKOFF });
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                debug!(%peer, "dial failed: {error}");
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                debug!("incoming connection from {send_back_addr} failed: {error}");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn remember_ports(&self) {
        let mut ports = ListenPorts::default();
        for addr in &self.listen_addrs {
            match transport_port(addr) {
                Some(("quic", p)) => ports.quic = Some(p),
                Some(("tcp", p)) => ports.tcp = Some(p),
                _ => {}
            }
        }
        if let Err(err) = self.store.set_meta("listen_ports", &ports) {
            warn!("cannot remember the listen ports: {err:#}");
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Pair(event) => self.on_pair_event(event),
            BehaviourEvent::Contact(event) => self.on_contact_event(event),
            BehaviourEvent::Share(event) => {
                self.on_share_event(event);
                self.refresh_readers();
            }
            BehaviourEvent::Blob(event) => self.on_blob_event(event),
            BehaviourEvent::Bank(event) => self.on_bank_event(event),
            BehaviourEvent::Backup(event) => self.on_backup_event(event),
            BehaviourEvent::Identify(
                identify::Event::Received { peer_id, info, .. } | identify::Event::Pushed { peer_id, info, .. },
            ) if self.contact(&peer_id).is_some() => {
                self.reach_identify(peer_id, &info);
                self.touch_contact(&peer_id, info.listen_addrs, None);
            }
            BehaviourEvent::Relay(event) => self.on_relay_server_event(event),
            BehaviourEvent::RelayClient(event) => self.on_relay_client_event(event),
            BehaviourEvent::Dcutr(event) => self.on_dcutr_event(event),
            BehaviourEvent::Autonat(event) => self.on_autonat_event(event),
            BehaviourEvent::Ping(event) => self.on_ping(event),
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if self.swarm.is_connected(&peer) || self.contact(&peer).is_none() {
                        continue;
                    }
                    info!(%peer, "found contact on the local network at {addr}");
                    let result = self.store.update_contact(&peer.to_bytes(), |c| {
                        c.addrs = merge_addrs(&c.addrs, [addr.clone()]);
                    });
                    if let Ok(Some(record)) = result {
                        self.dial_contact(peer, &record);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_pair_event(&mut self, event: request_response::Event<Wire<PairRequest>, PairResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request: Wire::Msg(request), channel, .. }, .. } => {
                self.answer_pairing(peer, request, channel)
            }
            Event::Message { peer, message: Message::Request { request: Wire::Bad(err), channel, .. }, .. } => {
                warn!(%peer, "refused a pairing request: malformed frame: {err}");
                let response = PairResponse::Rejected {
                    reason: pairing::RejectReason::BadRequest,
                    message: format!("malformed request: {err}"),
                };
                let _ = self.swarm.behaviour_mut().pair.send_response(channel, response);
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                self.finish_join(peer, request_id, response)
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if let Some(join) = self.joins.remove(&request_id) {
                    let addrs: Vec<String> = join.addrs.iter().map(|a| a.to_string()).collect();
                    let message = match error {
                        OutboundFailure::DialFailure if join.joiner.expired() => format!(
                            "this invitation has expired, and {} could not be reached to confirm an earlier \
                             pairing; ask for a new one with `hearth invite`",
                            join.joiner.invitation().inviter_name
                        ),
                        OutboundFailure::DialFailure => format!(
                            "could not reach {} at {}: is their node running and reachable from here?",
                            join.joiner.invitation().inviter_name,
                            addrs.join(", ")
                        ),
                        OutboundFailure::Timeout => "the inviter did not answer in time; try again".to_string(),
                        other => format!("pairing with {peer} failed: {other}"),
                    };
                    warn!(%peer, "join failed: {message}");
                    let _ = join.reply.send(Err(ApiError::remote(message)));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                warn!(%peer, "refused a pairing request: {error}");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn answer_pairing(&mut self, peer: PeerId, request: PairRequest, channel: ResponseChannel<PairResponse>) {
        let record = if request.token_id.len() == token::TOKEN_ID_LEN {
            match self.store.invitation(&request.token_id) {
                Ok(r) => r,
                Err(err) => {
                    error!("cannot read invitations: {err:#}");
                    return; // dropping the channel tells the joiner it failed
                }
            }
        } else {
            None
        };
        let now = now_unix();
        let decision = pairing::handle_request(
            now,
            &self.local.to_bytes(),
            &self.config.name,
            &peer.to_bytes(),
            record.as_ref(),
            &request,
        );
        let response = match decision {
            InviterDecision::Reject { response, reason } => {
                warn!(%peer, ?reason, "refused a pairing request: {}", reason.message());
                response
            }
            InviterDecision::Accept { response, joiner_name, record, first_time, .. } => {
                let contact = ContactRecord {
                    name: joiner_name.clone(),
                    their_name: joiner_name,
                    origin: Origin::Invited,
                    added_at: now,
                    last_seen: Some(now),
                    addrs: Vec::new(),
                    last_link: None,
                };
                match self.store.commit_pairing(&request.token_id, &record, &peer.to_bytes(), contact) {
                    Ok(stored) => {
                        info!(%peer, retry = !first_time, "paired with {} (they used our invitation)", stored.name);
                        self.strangers.remove(&peer);
                        self.redial.remove(&peer);
                        response
                    }
                    Err(err) => {
                        error!("cannot store the pairing with {peer}: {err:#}");
                        return;
                    }
                }
            }
        };
        if self.swarm.behaviour_mut().pair.send_response(channel, response).is_err() {
            warn!(%peer, "the joiner left before the pairing answer was sent");
        }
    }

    fn finish_join(&mut self, peer: PeerId, request_id: OutboundRequestId, response: PairResponse) {
        let Some(mut join) = self.joins.remove(&request_id) else {
            return;
        };
        let outcome = join.joiner.handle_response(&peer.to_bytes(), response);
        let result = match outcome {
            Ok(paired) => {
                let now = now_unix();
                let record = ContactRecord {
                    name: join.alias.clone().unwrap_or_else(|| paired.name.clone()),
                    their_name: paired.name,
                    origin: Origin::Joined,
                    added_at: now,
                    last_seen: Some(now),
                    addrs: merge_addrs(&[], join.addrs.clone()),
                    last_link: self.reach.link(&peer).map(|l| l.as_str().into()),
                };
                match self.store.add_contact(&peer.to_bytes(), record) {
                    Ok(stored) => {
                        info!(%peer, "paired with {} (we used their invitation)", stored.name);
                        self.strangers.remove(&peer);
                        self.greet(peer);
                        Ok(self.view(&peer.to_bytes(), &stored))
                    }
                    Err(err) => Err(ApiError::internal(err)),
                }
            }
            Err(err @ JoinError::Rejected { .. }) => Err(ApiError::remote(err.to_string())),
            Err(err) => Err(ApiError::remote(err.to_string())),
        };
        if let Err(err) = &result {
            warn!(%peer, "join failed: {}", err.message);
        }
        let _ = join.reply.send(result);
    }

    fn on_contact_event(&mut self, event: request_response::Event<Wire<Hello>, HelloResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request: Wire::Bad(err), channel, .. }, .. } => {
                warn!(%peer, "refused a greeting: malformed frame: {err}");
                let refusal = HelloResponse::Refused { message: format!("malformed greeting: {err}") };
                let _ = self.swarm.behaviour_mut().contact.send_response(channel, refusal);
            }
            Event::Message { peer, message: Message::Request { request: Wire::Msg(request), channel, .. }, .. } => {
                let is_contact = self.contact(&peer).is_some();
                let mut local = self.local_hello();
                if is_contact {
                    local.known = self.known_for(&request.ask);
                    self.learn_hello(&peer, request);
                } else {
                    warn!(%peer, "refused {} from a node that is not a contact", contact::PROTOCOL);
                }
                let answer = contact::answer(is_contact, local);
                let _ = self.swarm.behaviour_mut().contact.send_response(channel, answer);
                if is_contact {
                    // Either side's greeting is enough to catch up on shares
                    // (one of the two may be lost when both dial at once).
                    let out = self.shares.on_contact_online(&peer);
                    self.send_share(out);
                    self.bank_contact_online(&peer);
                }
            }
            Event::Message { peer, message: Message::Response { response, .. }, .. } => match response {
                HelloResponse::Welcome { hello } => {
                    self.refused_by.remove(&peer);
                    self.learn_hello(&peer, hello);
                    // Mutual contacts now: catch up on shares.
                    let out = self.shares.on_contact_online(&peer);
                    self.send_share(out);
                    self.bank_contact_online(&peer);
                }
                HelloResponse::Refused { message } => {
                    let name = self.contact(&peer).map(|c| c.name).unwrap_or_default();
                    warn!(%peer, "contact {name} does not accept us: {message}");
                    self.refused_by.insert(peer);
                }
            },
            Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, "greeting failed: {error}");
                if self.swarm.is_connected(&peer) && self.contact(&peer).is_some() {
                    self.greet(peer);
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                warn!(%peer, "refused a malformed greeting: {error}");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn learn_hello(&mut self, peer: &PeerId, hello: Hello) {
        let addrs = hello.bounded_addrs().filter_map(|a| Multiaddr::try_from(a.to_vec()).ok()).collect();
        let name = hearth_protocol::names::validate_name(&hello.name).ok();
        self.direct.learn_port(*peer, hello.direct_port);
        self.touch_contact(peer, addrs, name);
        // Where mutual contacts we cannot reach are, as this contact knows.
        for known in hello.known.iter().take(contact::MAX_ASKS) {
            let Ok(other) = PeerId::from_bytes(&known.peer) else { continue };
            if other == *peer || other == self.local || self.swarm.is_connected(&other) {
                continue;
            }
            let addrs: Vec<Multiaddr> = known
                .addrs
                .iter()
                .take(contact::MAX_ADDRS)
                .filter_map(|a| Multiaddr::try_from(a.to_vec()).ok())
                .collect();
            let result =
                self.store.update_contact(&other.to_bytes(), |c| c.addrs = merge_addrs(&c.addrs, addrs.clone()));
            if let Ok(Some(record)) = result {
                debug!(%other, "learned {} address(es) of {} from a mutual contact", addrs.len(), record.name);
                self.dial_contact(other, &record);
            }
        }
    }

    // ----- timers ---------------------------------------------------------

    fn on_tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_scan) >= Duration::from_secs(self.config.rescan_secs.max(1)) {
            self.last_scan = now;
            self.scan_all();
        }
        if now.duration_since(self.last_expiry) >= EXPIRY_EVERY {
            self.last_expiry = now;
            blocking(|| self.shares.expire(now_unix()));
        }
        self.refresh_readers();
        self.write_pending();
        self.retry_unavailable();
        self.drive_fetches();
        self.push_bank_views();
        self.backup_timers();
        self.reach_tick();
        let grace = Duration::from_secs(self.config.stranger_grace_secs);
        let expired: Vec<PeerId> =
            self.strangers.iter().filter(|(_, since)| now.duration_since(**since) > grace).map(|(p, _)| *p).collect();
        for peer in expired {
            self.strangers.remove(&peer);
            if self.contact(&peer).is_none() && !self.is_restore_peer(&peer) {
                info!(%peer, "closing the connection of a node that is not a contact (no pairing within {} s)", grace.as_secs());
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
        let due: Vec<PeerId> = self.redial.iter().filter(|(_, r)| r.due <= now).map(|(p, _)| *p).collect();
        let max = Duration::from_secs(self.config.reconnect_max_backoff_secs.max(1));
        for peer in due {
            if self.swarm.is_connected(&peer) {
                self.redial.remove(&peer);
                continue;
            }
            let Some(record) = self.contact(&peer) else {
                self.redial.remove(&peer);
                continue;
            };
            self.dial_contact(peer, &record);
            if let Some(r) = self.redial.get_mut(&peer) {
                r.due = now + r.delay;
                r.delay = (r.delay * 2).min(max);
            }
        }
    }
}
