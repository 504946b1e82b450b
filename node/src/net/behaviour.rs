//! The composed libp2p behaviour: one field per protocol, built in one place.
//!
//! Infrastructure protocols (identify, ping, mDNS) run with any peer; the
//! application protocols (`/hearth/pair/1`, `/hearth/contact/1`,
//! `/hearth/share/1`, `/hearth/bank/1`, `/hearth/blob/1`, `/hearth/backup/1`) are gated in
//! the event loop: pairing answers anyone but accepts only a valid invitation,
//! everything else answers contacts only.

use std::time::Duration;

use hearth_protocol::backup::wire as backup;
use hearth_protocol::{bank, blob, contact, pairing, share};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, identity::Keypair, mdns, ping, StreamProtocol};

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

/// Identify protocol version string; peers with another major are not Hearth.
pub const IDENTIFY_PROTOCOL: &str = "/hearth/id/1";

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
}

impl Behaviour {
    /// Builds the behaviour for `key`.
    pub fn new(key: &Keypair, use_mdns: bool) -> std::io::Result<Self> {
        let peer_id = key.public().to_peer_id();
        let mdns = if use_mdns { Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?) } else { None };
        let rr_config = request_response::Config::default().with_request_timeout(Duration::from_secs(20));
        Ok(Self {
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(format!("hearth/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
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
        })
    }
}
