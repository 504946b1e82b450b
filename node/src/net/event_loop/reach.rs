//! Reaching contacts across NATs (`spec/connections.md`): reservations on
//! contacts that relay, the relay server's decisions, hole punching, AutoNAT,
//! and how each contact is reached right now (direct or relayed), driven
//! through the sans-IO [`hearth_protocol::reach`] bookkeeping.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hearth_protocol::reach::{self, AddrKind, Link, Links};
use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{autonat, dcutr, identify, relay, Multiaddr, PeerId};
use tracing::{debug, info, warn};

use super::EventLoop;
use crate::now_unix;
use crate::views::{RelayServiceView, RelayView};

/// Seconds a relayed connection stays open beside a direct one to the same
/// contact (requests in flight on it finish) before it is closed.
const RELAYED_LINGER_SECS: u64 = 10;
/// Ping failures reported in a row after which a connection is taken for
/// dead. libp2p reports a failure from the second missed ping on (the first
/// is "free"), and each waits 10 s for its answer, far more than a live
/// connection takes even when a transfer saturates a home uplink: a dead
/// connection is found within about 30 s.
const MAX_MISSED_PINGS: u8 = 1;
/// How often reservations that failed or were lost are tried again.
const RESERVE_RETRY: Duration = Duration::from_secs(15);

/// A reservation on a relay, from the request to its end.
#[derive(Debug)]
struct Reservation {
    listener: ListenerId,
    /// `true` once the relay accepted (a relayed listen address exists).
    active: bool,
}

/// What the relay server did, for status.
#[derive(Debug, Default)]
struct RelayStats {
    /// Reservations held per contact (one per connection to it).
    reservations: BTreeMap<PeerId, usize>,
    circuits: BTreeMap<(PeerId, PeerId), Instant>,
    refused_reservations: u64,
    refused_circuits: u64,
    circuits_ended: u64,
}

/// See the module documentation.
pub(super) struct Reach {
    links: Links<PeerId, ConnectionId>,
    /// Reservations by relay (contacts that offer to relay, and configured relays).
    reservations: BTreeMap<PeerId, Reservation>,
    /// Relays of reservations that ended, and why (kept for status).
    ended: BTreeMap<PeerId, String>,
    /// Contacts whose identify lists the relay protocol.
    offers: BTreeSet<PeerId>,
    /// Relays from the configuration: peer id and the address to listen on.
    configured: Vec<(PeerId, Multiaddr)>,
    /// The address each direct connection was dialled at, or the remote's
    /// listen addresses from identify (where to reach a relay).
    relay_addrs: HashMap<PeerId, Multiaddr>,
    nat: autonat::NatStatus,
    /// Whether the relay server is offered right now.
    offered: bool,
    /// Pings missed in a row, per connection.
    missed_pings: HashMap<ConnectionId, u8>,
    stats: RelayStats,
    last_retry: Option<Instant>,
}

impl Reach {
    pub(super) fn new(configured_relays: &[String]) -> Self {
        let configured = configured_relays
            .iter()
            .filter_map(|t| t.parse().ok())
            .filter_map(|a| super::super::relay_target(&a))
            .collect();
        Self {
            links: Links::new(RELAYED_LINGER_SECS),
            reservations: BTreeMap::new(),
            ended: BTreeMap::new(),
            offers: BTreeSet::new(),
            configured,
            relay_addrs: HashMap::new(),
            nat: autonat::NatStatus::Unknown,
            offered: false,
            missed_pings: HashMap::new(),
            stats: RelayStats::default(),
            last_retry: None,
        }
    }

    /// The best open link to `peer`.
    pub(super) fn link(&self, peer: &PeerId) -> Option<Link> {
        self.links.link(peer)
    }

    /// What is known of `peer`'s connections.
    pub(super) fn of(&self, peer: &PeerId) -> Option<&reach::Reach<ConnectionId>> {
        self.links.get(peer)
    }

    /// Whether `listener` is a reservation's.
    pub(super) fn is_reservation(&self, listener: ListenerId) -> bool {
        self.reservations.values().any(|r| r.listener == listener)
    }
}

impl EventLoop {
    /// Whether this node knows a public address of its own (configured, or
    /// confirmed by AutoNAT). A relayed address is "external" to libp2p
    /// (the relay client confirms it) but does not make a node public.
    pub(super) fn is_public(&self) -> bool {
        self.public_addrs().next().is_some()
    }

    /// The confirmed external addresses that are not relayed.
    pub(super) fn public_addrs(&self) -> impl Iterator<Item = &Multiaddr> {
        self.swarm.external_addresses().filter(|a| !super::super::is_relayed(a))
    }

    /// Addresses to advertise, each with its kind.
    pub(super) fn own_addrs(&self) -> Vec<(Multiaddr, AddrKind)> {
        let external = self.public_addrs().map(|a| (a.clone(), AddrKind::External));
        let listen = self.listen_addrs.iter().map(|a| {
            let kind = if super::super::is_relayed(a) {
                AddrKind::Relayed
            } else if a.iter().any(|p| matches!(p, Protocol::Ip4(ip) if ip.is_loopback())) {
                AddrKind::Loopback
            } else {
                AddrKind::Local
            };
            (a.clone(), kind)
        });
        let mut out: Vec<(Multiaddr, AddrKind)> = Vec::new();
        for (addr, kind) in external.chain(listen) {
            if !out.iter().any(|(a, _)| a == &addr) {
                out.push((addr, kind));
            }
        }
        out
    }

    pub(super) fn reach_connection_opened(&mut self, peer: PeerId, conn: ConnectionId, endpoint: &ConnectedPoint) {
        let link = if endpoint.is_relayed() { Link::Relayed } else { Link::Direct };
        if let ConnectedPoint::Dialer { address, .. } = endpoint {
            if link == Link::Direct {
                if let Some(addr) = super::super::dialable(address) {
                    self.reach.relay_addrs.insert(peer, addr);
                }
            }
        }
        let upgraded = self.reach.links.opened(now_unix(), &peer, conn, link);
        if let Some(c) = self.contact(&peer) {
            if upgraded {
                info!(%peer, "contact {} is now reached directly (the relayed connection closes in {RELAYED_LINGER_SECS} s)", c.name);
            } else {
                info!(%peer, "connected to contact {} ({}) via {}", c.name, link.as_str(), endpoint.get_remote_address());
            }
        }
    }

    pub(super) fn reach_connection_closed(&mut self, peer: PeerId, conn: ConnectionId) {
        self.reach.links.closed(now_unix(), &peer, conn);
        self.reach.missed_pings.remove(&conn);
    }

    /// Offers the relay exactly while this node is public. libp2p's own rule
    /// (offer once any external address is confirmed) would also count a
    /// relayed address, making a node behind NAT offer to relay.
    pub(super) fn update_relay_offer(&mut self) {
        let offer = self.config.relay.enabled && self.is_public();
        if let Some(server) = self.swarm.behaviour_mut().relay.as_mut() {
            server.set_status(Some(if offer { relay::Status::Enable } else { relay::Status::Disable }));
        }
        if offer != self.reach.offered {
            self.reach.offered = offer;
            info!(
                "relay for contacts: {}",
                if offer { "offered (this node is publicly reachable)" } else { "not offered" }
            );
        }
    }

    /// A ping's outcome: a connection that misses [`MAX_MISSED_PINGS`] in a
    /// row is closed (the contact is then redialled).
    pub(super) fn on_ping(&mut self, event: libp2p::ping::Event) {
        match event.result {
            Ok(_) => {
                self.reach.missed_pings.remove(&event.connection);
            }
            // A peer without ping (not a Hearth node) is no dead connection.
            Err(libp2p::ping::Failure::Unsupported) => {}
            Err(err) => {
                let missed = self.reach.missed_pings.entry(event.connection).or_default();
                *missed += 1;
                if *missed >= MAX_MISSED_PINGS {
                    debug!(peer = %event.peer, "closing a connection that missed {missed} pings: {err}");
                    self.swarm.close_connection(event.connection);
                }
            }
        }
    }

    /// A contact's identify: does it offer to relay? Then reserve a slot on it
    /// if this node is not publicly reachable.
    pub(super) fn reach_identify(&mut self, peer: PeerId, info: &identify::Info) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.reach.relay_addrs.entry(peer) {
            let usable = info.listen_addrs.iter().filter_map(super::super::dialable).find(|a| {
                !super::super::is_relayed(a)
                    && !a.iter().any(|p| matches!(p, Protocol::Ip4(ip) if ip.is_loopback() || ip.is_unspecified()))
            });
            if let Some(addr) = usable {
                slot.insert(addr);
            }
        }
        if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
            if self.reach.offers.insert(peer) {
                debug!(%peer, "contact offers to relay");
            }
            self.maybe_reserve(peer);
        } else {
            self.reach.offers.remove(&peer);
        }
    }

    fn maybe_reserve(&mut self, relay: PeerId) {
        let configured = self.reach.configured.iter().find(|(p, _)| *p == relay).map(|(_, a)| a.clone());
        let reserved = self.reach.reservations.contains_key(&relay);
        let wanted = configured.is_some()
            || reach::should_reserve(self.is_public(), self.reach.offers.contains(&relay), reserved);
        if !wanted || reserved {
            return;
        }
        let target = match configured {
            Some(addr) => addr,
            None => {
                let Some(addr) = self.reach.relay_addrs.get(&relay) else {
                    debug!(%relay, "no address to reserve a slot at");
                    return;
                };
                addr.clone().with(Protocol::P2p(relay)).with(Protocol::P2pCircuit)
            }
        };
        match self.swarm.listen_on(target.clone()) {
            Ok(listener) => {
                debug!(%relay, "asking for a reservation at {target}");
                self.reach.reservations.insert(relay, Reservation { listener, active: false });
            }
            Err(err) => warn!(%relay, "cannot ask {target} for a reservation: {err}"),
        }
    }

    /// A relayed listen address appeared: the relay accepted. Tell contacts.
    pub(super) fn reach_reserved(&mut self, listener: ListenerId, address: &Multiaddr) {
        let Some((relay, r)) = self.reach.reservations.iter_mut().find(|(_, r)| r.listener == listener) else {
            return;
        };
        r.active = true;
        let relay = *relay;
        self.reach.ended.remove(&relay);
        let name = self.contact(&relay).map(|c| c.name).unwrap_or_else(|| relay.to_string());
        info!(%relay, "reserved a slot on relay {name}: reachable at {address}");
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            if peer != relay && self.contact(&peer).is_some() {
                self.greet(peer);
            }
        }
    }

    /// A listener closed: if it was a reservation, it ended (refused, or the
    /// connection to the relay was lost); it is asked again later.
    pub(super) fn reach_listener_closed(&mut self, listener: ListenerId, reason: Result<(), std::io::Error>) {
        let Some(relay) = self.reach.reservations.iter().find(|(_, r)| r.listener == listener).map(|(p, _)| *p) else {
            return;
        };
        let why = match reason {
            Ok(()) => "closed".to_string(),
            Err(err) => error_chain(&err),
        };
        let name = self.contact(&relay).map(|c| c.name).unwrap_or_else(|| relay.to_string());
        warn!(%relay, "reservation on relay {name} ended: {why}");
        self.reach.reservations.remove(&relay);
        self.reach.ended.insert(relay, why);
    }

    pub(super) fn on_relay_server_event(&mut self, event: relay::Event) {
        use relay::Event;
        let name =
            |el: &Self, peer: &PeerId| el.contact(peer).map(|c| c.name).unwrap_or_else(|| format!("stranger {peer}"));
        match event {
            Event::ReservationReqAccepted { src_peer_id, renewed } => {
                if !renewed {
                    info!(peer = %src_peer_id, "relaying for contact {}: reservation accepted", name(self, &src_peer_id));
                    *self.reach.stats.reservations.entry(src_peer_id).or_default() += 1;
                }
            }
            Event::ReservationReqDenied { src_peer_id, status } => {
                self.reach.stats.refused_reservations += 1;
                let why = if self.contact(&src_peer_id).is_none() {
                    reach::RelayRefusal::NotAContact.message().to_string()
                } else {
                    format!("{status:?} (a limit of [relay] is reached)")
                };
                warn!(peer = %src_peer_id, "refused a relay reservation from {}: {why}", name(self, &src_peer_id));
            }
            Event::ReservationClosed { src_peer_id } | Event::ReservationTimedOut { src_peer_id } => {
                if let std::collections::btree_map::Entry::Occupied(mut held) =
                    self.reach.stats.reservations.entry(src_peer_id)
                {
                    *held.get_mut() -= 1;
                    if *held.get() == 0 {
                        held.remove();
                    }
                }
            }
            Event::CircuitReqAccepted { src_peer_id, dst_peer_id } => {
                info!("relaying a connection from {} to {}", name(self, &src_peer_id), name(self, &dst_peer_id));
                self.reach.stats.circuits.insert((src_peer_id, dst_peer_id), Instant::now());
            }
            Event::CircuitReqDenied { src_peer_id, dst_peer_id, status } => {
                self.reach.stats.refused_circuits += 1;
                let why = if self.contact(&src_peer_id).is_none() {
                    reach::RelayRefusal::NotAContact.message().to_string()
                } else {
                    format!("{status:?}")
                };
                warn!(
                    peer = %src_peer_id,
                    "refused to relay a connection from {} to {}: {why}",
                    name(self, &src_peer_id),
                    name(self, &dst_peer_id)
                );
            }
            Event::CircuitClosed { src_peer_id, dst_peer_id, error } => {
                let lasted = self.reach.stats.circuits.remove(&(src_peer_id, dst_peer_id)).map(|t| t.elapsed());
                self.reach.stats.circuits_ended += 1;
                info!(
                    "relayed connection from {} to {} closed after {:?}{}",
                    name(self, &src_peer_id),
                    name(self, &dst_peer_id),
                    lasted.unwrap_or_default(),
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                );
            }
            #[allow(deprecated)]
            other => debug!("relay: {other:?}"),
        }
    }

    pub(super) fn on_relay_client_event(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal, limit } => {
                if !renewal {
                    debug!(relay = %relay_peer_id, "reservation accepted, limits {limit:?}");
                }
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, limit } => {
                debug!(relay = %relay_peer_id, "relayed connection out, limits {limit:?}");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, limit } => {
                debug!(peer = %src_peer_id, "relayed connection in, limits {limit:?}");
            }
        }
    }

    pub(super) fn on_dcutr_event(&mut self, event: dcutr::Event) {
        let peer = event.remote_peer_id;
        let ok = event.result.is_ok();
        self.reach.links.hole_punched(now_unix(), &peer, ok);
        let name = self.contact(&peer).map(|c| c.name).unwrap_or_else(|| peer.to_string());
        match event.result {
            Ok(_) => info!(%peer, "hole punching with {name} succeeded"),
            Err(err) => info!(%peer, "hole punching with {name} failed, staying relayed: {}", error_chain(&err)),
        }
    }

    pub(super) fn on_autonat_event(&mut self, event: autonat::Event) {
        if let autonat::Event::StatusChanged { old, new } = event {
            info!("reachability from the internet: {} (was {})", nat_word(&new), nat_word(&old));
            self.reach.nat = new;
        }
    }

    /// Every tick: close relayed connections a direct one replaced, and ask
    /// again for reservations that ended.
    pub(super) fn reach_tick(&mut self) {
        for (peer, conn) in self.reach.links.superseded(now_unix()) {
            debug!(%peer, "closing a relayed connection: a direct one is up");
            self.swarm.close_connection(conn);
        }
        if self.reach.last_retry.is_some_and(|t| t.elapsed() < RESERVE_RETRY) {
            return;
        }
        self.reach.last_retry = Some(Instant::now());
        let relays: BTreeSet<PeerId> =
            self.reach.offers.iter().copied().chain(self.reach.configured.iter().map(|(p, _)| *p)).collect();
        for relay in relays {
            let contact_gone =
                !self.reach.configured.iter().any(|(p, _)| *p == relay) && !self.swarm.is_connected(&relay);
            if contact_gone {
                continue; // asked again when it reconnects and identifies
            }
            self.maybe_reserve(relay);
        }
    }

    pub(super) fn reach_contact_removed(&mut self, peer: &PeerId) {
        self.reach.links.forget(peer);
        self.reach.offers.remove(peer);
    }

    /// The reservations, for status.
    pub(super) fn relay_views(&self) -> Vec<RelayView> {
        let name = |peer: &PeerId| self.contact(peer).map(|c| c.name).unwrap_or_else(|| peer.to_string());
        let mut out: Vec<RelayView> = self
            .reach
            .reservations
            .iter()
            .map(|(peer, r)| RelayView {
                relay: name(peer),
                peer_id: peer.to_string(),
                state: if r.active { "reserved".into() } else { "asking".into() },
                error: None,
                addresses: if r.active {
                    self.listen_addrs
                        .iter()
                        .filter(|a| super::super::relay_of(a) == Some(*peer))
                        .map(|a| a.to_string())
                        .collect()
                } else {
                    Vec::new()
                },
            })
            .collect();
        out.extend(self.reach.ended.iter().filter(|(p, _)| !self.reach.reservations.contains_key(p)).map(
            |(peer, why)| RelayView {
                relay: name(peer),
                peer_id: peer.to_string(),
                state: "ended".into(),
                error: Some(why.clone()),
                addresses: Vec::new(),
            },
        ));
        out
    }

    /// The relay service, for status.
    pub(super) fn relay_service_view(&self) -> RelayServiceView {
        let name = |peer: &PeerId| self.contact(peer).map(|c| c.name).unwrap_or_else(|| peer.to_string());
        let limits = &self.config.relay;
        RelayServiceView {
            enabled: limits.enabled,
            offered: self.reach.offered,
            reservations: self.reach.stats.reservations.keys().map(name).collect(),
            circuits: self.reach.stats.circuits.keys().map(|(s, d)| format!("{} -> {}", name(s), name(d))).collect(),
            circuits_ended: self.reach.stats.circuits_ended,
            refused_reservations: self.reach.stats.refused_reservations,
            refused_circuits: self.reach.stats.refused_circuits,
            max_circuit_secs: limits.max_circuit_secs,
            max_circuit_bytes: limits.max_circuit_bytes,
            max_circuits: limits.max_circuits,
            max_reservations: limits.max_reservations,
        }
    }

    /// AutoNAT's view, for status: `public`, `private` or `unknown`; a
    /// configured external address makes it `public`.
    pub(super) fn reachability(&self) -> String {
        match &self.reach.nat {
            autonat::NatStatus::Unknown if !self.config.external_addrs.is_empty() => "public".into(),
            status => nat_word(status).into(),
        }
    }
}

fn nat_word(status: &autonat::NatStatus) -> &'static str {
    match status {
        autonat::NatStatus::Public(_) => "public",
        autonat::NatStatus::Private => "private",
        autonat::NatStatus::Unknown => "unknown",
    }
}

/// An error with its sources, on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
