//! The composed libp2p behaviour: one field per protocol, built in one place.
//!
//! Infrastructure protocols (identify, ping, mDNS, AutoNAT, DCUtR, the relay
//! client) run with any peer; the relay server serves contacts only (its
//! gate is [`ContactGate`], see `spec/connections.md`); the
//! application protocols (`/hearth/pair/1`, `/hearth/contact/1`,
//! `/hearth/share/1`, `/hearth/bank/1`, `/hearth/blob/1`, `/hearth/backup/1`) are gated in
//! the event loop: pairing answers anyone but accepts only a valid invitation,
//! everything else answers contacts only.

use std::sync::Arc;
use std::time::Duration;

use hearth_protocol::backup::wire as backup;
use hearth_protocol::{bank, blob, contact, pairing, share};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{autonat, dcutr, identify, identity::Keypair, mdns, ping, relay, PeerId, StreamProtocol};

use super::codec::FrameCodec;

/// Codec of `/hearth/pair/1`.
pub type PairCodec = FrameCodec<pairing::PairRequest, pairing::PairResponse>;
/// Codec of `/hearth/contact/1`.
pub type ContactCodec = FrameCodec<contact::Hello, contact::HelloResponse>;

/// Codec of `/hearth/share/1`.
pub type ShareCodec = FrameCodec<share::ShareRequest, share::ShareResponse>;

/// Codec of `/hearth/bank/1`.
pub type BankCodec = FrameCodec<bank::BankRequest, bank::BankResponse>;

/// Codec of `/hearth/blob/1`.
pub type BlobCodec = FrameCodec<blob::Get, blob::Response>;

/// Codec of `/hearth/backup/1`.
pub type BackupCodec = FrameCodec<backup::BackupRequest, backup::BackupResponse>;

/// How often each connection is pinged. Pings keep NAT mappings warm and
/// find dead connections: one that misses two pings in a row is closed
/// (a TCP connection whose NAT mapping vanished would otherwise linger for
/// many minutes) and its contact redialled.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// Identify protocol version string; peers with another major are not Hearth.
pub const IDENTIFY_PROTOCOL: &str = "/hearth/id/1";

/// Whether a peer is a contact, asked by the relay server for every
/// reservation and circuit (a read of the contacts table).
pub type ContactGate = Arc<dyn Fn(&PeerId) -> bool + Send + Sync>;

/// The reach-related settings of [`Behaviour::new`].
pub struct ReachOptions {
    /// Relay for contacts (`None`: never relay).
    pub relay: Option<crate::config::RelayConfig>,
    /// Who is a contact.
    pub gate: ContactGate,
    /// AutoNAT also probes private addresses (test networks).
    pub autonat_private_addrs: bool,
}

impl ReachOptions {
    /// Relays for nobody (a short-lived swarm, e.g. a restore).
    pub fn client_only() -> Self {
        Self { relay: None, gate: Arc::new(|_| false), autonat_private_addrs: false }
    }
}

/// Everything the swarm runs.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Learns peers' listen addresses and agent versions.
    pub identify: identify::Behaviour,
    /// Liveness and round-trip times.
    pub ping: ping::Behaviour,
    /// LAN discovery (off in tests that must stay on loopback).
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Invitation redemption.
    pub pair: request_response::Behaviour<PairCodec>,
    /// Contact greeting.
    pub contact: request_response::Behaviour<ContactCodec>,
    /// Shared folders: invitations and document sync.
    pub share: request_response::Behaviour<ShareCodec>,
    /// Content-addressed chunks, served to share members.
    pub blob: request_response::Behaviour<BlobCodec>,
    /// Read-only bank views: the owner's signed log entries.
    pub bank: request_response::Behaviour<BankCodec>,
    /// Backups to friends: hosting agreements, shards, metadata, audits.
    pub backup: request_response::Behaviour<BackupCodec>,
    /// Reserving slots on relays and dialling through them.
    pub relay_client: relay::client::Behaviour,
    /// Relaying for contacts, once publicly reachable (off by configuration).
    pub relay: Toggle<relay::Behaviour>,
    /// Hole punching: upgrades a relayed connection to a direct one.
    pub dcutr: dcutr::Behaviour,
    /// Learns whether this node is publicly reachable (contacts dial back).
    pub autonat: autonat::Behaviour,
}

/// The relay server's configuration: the limits of `[relay]`, and both gates
/// (reservations, circuit sources) asking [`ContactGate`]. A circuit's
/// destination holds a reservation, so it passed the gate when it reserved.
fn relay_config(limits: &crate::config::RelayConfig, gate: &ContactGate) -> relay::Config {
    let reserve_gate = gate.clone();
    let circuit_gate = gate.clone();
    relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: 2,
        reservation_duration: Duration::from_secs(3600),
        reservation_rate_limiters: vec![Box::new(move |peer: PeerId, _: &libp2p::Multiaddr, _| {
            hearth_protocol::reach::relay_decision(true, reserve_gate(&peer), None).is_ok()
        })],
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: Duration::from_secs(limits.max_circuit_secs),
        max_circuit_bytes: limits.max_circuit_bytes,
        circuit_src_rate_limiters: vec![Box::new(move |peer: PeerId, _: &libp2p::Multiaddr, _| {
            hearth_protocol::reach::relay_decision(true, circuit_gate(&peer), Some(true)).is_ok()
        })],
    }
}

impl Behaviour {
    /// Builds the behaviour for `key`.
    pub fn new(
        key: &Keypair,
        use_mdns: bool,
        relay_client: relay::client::Behaviour,
        reach: &ReachOptions,
    ) -> std::io::Result<Self> {
        let peer_id = key.public().to_peer_id();
        let relay =
            reach.relay.as_ref().map(|limits| relay::Behaviour::new(peer_id, relay_config(limits, &reach.gate)));
        let autonat = autonat::Behaviour::new(
            peer_id,
            autonat::Config {
                boot_delay: Duration::from_secs(3),
                retry_interval: Duration::from_secs(30),
                throttle_server_period: Duration::from_secs(15),
                only_global_ips: !reach.autonat_private_addrs,
                ..Default::default()
            },
        );
        let mdns = if use_mdns { Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?) } else { None };
        let rr_config = request_response::Config::default().with_request_timeout(Duration::from_secs(20));
        Ok(Self {
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(format!("hearth/{}", env!("CARGO_PKG_VERSION")))
                    .with_push_listen_addr_updates(true),
            ),
            ping: ping::Behaviour::new(
                ping::Config::new().with_interval(PING_INTERVAL).with_timeout(Duration::from_secs(10)),
            ),
            mdns: mdns.into(),
            pair: request_response::Behaviour::with_codec(
                PairCodec::new(pairing::MAX_MESSAGE),
                [(StreamProtocol::new(pairing::PROTOCOL), ProtocolSupport::Full)],
                rr_config.clone(),
            ),
            contact: request_response::Behaviour::with_codec(
                ContactCodec::new(contact::MAX_MESSAGE),
                [(StreamProtocol::new(contact::PROTOCOL), ProtocolSupport::Full)],
                rr_config.clone(),
            ),
            share: request_response::Behaviour::with_codec(
                ShareCodec::new(share::MAX_MESSAGE),
                [(StreamProtocol::new(share::PROTOCOL), ProtocolSupport::Full)],
                rr_config.clone(),
            ),
            bank: request_response::Behaviour::with_codec(
                BankCodec::new(bank::MAX_MESSAGE),
                [(StreamProtocol::new(bank::PROTOCOL), ProtocolSupport::Full)],
                rr_config.clone(),
            ),
            backup: request_response::Behaviour::with_codec(
                BackupCodec::new(backup::MAX_MESSAGE),
                [(StreamProtocol::new(backup::PROTOCOL), ProtocolSupport::Full)],
                rr_config.clone().with_request_timeout(Duration::from_secs(60)),
            ),
            blob: request_response::Behaviour::with_codec(
                BlobCodec::new(blob::MAX_MESSAGE),
                [(StreamProtocol::new(blob::PROTOCOL), ProtocolSupport::Full)],
                rr_config.with_max_concurrent_streams(256),
            ),
            relay_client,
            relay: relay.into(),
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat,
        })
    }
}
