//! Networking: the libp2p swarm and the event loop that owns it, plus the
//! direct QUIC connections that carry file contents ([`direct`]). Contacts
//! behind NAT are reached through relays that are contacts too, and
//! upgraded to direct connections by hole punching (`spec/connections.md`).
//!
//! The API talks to the event loop through bounded [`Command`]s with oneshot
//! replies (the rust-libp2p "client / event loop" pattern); the event loop is
//! the only owner of the swarm, so there is no locking around network state.

pub mod behaviour;
pub mod codec;
pub mod direct;
mod event_loop;

use std::time::Duration;

use anyhow::{Context, Result};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm};
use tokio::sync::oneshot;

use crate::api::ApiError;
use crate::views::{ContactView, InvitationView, InviteView, JoinRequest, StatusView};
pub use behaviour::{Behaviour, ContactGate, ReachOptions};
pub use event_loop::{Backup, EventLoop};

/// Most addresses kept per contact.
pub const MAX_CONTACT_ADDRS: usize = 16;

/// A request from the API to the event loop.
pub enum Command {
    /// Node status.
    Status(oneshot::Sender<StatusView>),
    /// Create an invitation.
    Invite {
        /// Validity; default 24 h.
        ttl_secs: Option<u64>,
        /// Answer.
        reply: oneshot::Sender<Result<InviteView, ApiError>>,
    },
    /// List invitations.
    Invitations(oneshot::Sender<Result<Vec<InvitationView>, ApiError>>),
    /// Redeem a token.
    Join {
        /// Token and alias.
        request: JoinRequest,
        /// Answer, once paired or failed.
        reply: oneshot::Sender<Result<ContactView, ApiError>>,
    },
    /// List contacts.
    Contacts(oneshot::Sender<Result<Vec<ContactView>, ApiError>>),
    /// A shared-folder operation.
    Share {
        /// What to do.
        op: ShareOp,
        /// Answer.
        reply: oneshot::Sender<Result<ShareReply, ApiError>>,
    },
    /// A bank operation.
    Bank {
        /// What to do.
        op: BankOp,
        /// Answer.
        reply: oneshot::Sender<Result<BankReply, ApiError>>,
    },
    /// A backup operation.
    Backup {
        /// What to do.
        op: crate::backup::BackupOp,
        /// Answer.
        reply: oneshot::Sender<Result<serde_json::Value, ApiError>>,
    },
    /// Remove a contact by name or peer id.
    RemoveContact {
        /// Name or peer id.
        name: String,
        /// Answer.
        reply: oneshot::Sender<Result<ContactView, ApiError>>,
    },
}

/// Shared-folder operations of the API (`SHARE` is a name or an id).
#[derive(Debug)]
pub enum ShareOp {
    /// Start sharing a directory.
    Create { path: std::path::PathBuf, name: Option<String> },
    /// All shares.
    List,
    /// One share's status.
    Status(String),
    /// Invite a contact.
    Invite { share: String, contact: String, read_only: bool },
    /// Accept an invitation into a directory.
    Accept { share: String, path: std::path::PathBuf },
    /// Decline an invitation.
    Decline(String),
    /// Stop taking part; files stay.
    Leave(String),
    /// Change a member's role (`None` removes the member).
    SetRole { share: String, contact: String, role: Option<String> },
    /// The Automerge document.
    Doc(String),
    /// Scan the directory now (normally done on a timer).
    Scan(String),
    /// Deleted entries.
    Trash(String),
    /// The entries (at most `limit`) and conflicts, for the web interface.
    Files { share: String, limit: usize },
    /// Versions of one file.
    Versions { share: String, path: String },
    /// Restore a deleted entry and/or an older version.
    Restore { share: String, path: String, version: Option<usize> },
}

/// Bank operations of the API (`ACCOUNT` is a name or an id).
#[derive(Debug)]
pub enum BankOp {
    /// Import a statement file (its bytes).
    Import { bytes: Vec<u8>, options: crate::bank::ImportOptions },
    /// Accounts.
    Accounts,
    /// One account's operations, from a day on.
    Operations { account: String, since: Option<String> },
    /// One account in the Cozy Banks shape.
    Export { account: String },
    /// Show an account read-only to a contact.
    Share { account: String, contact: String, since: Option<String> },
    /// Stop showing an account to a contact.
    Unshare { account: String, contact: String },
    /// Views received from others and written for others.
    Views,
    /// Set the owner's note / category of an operation.
    Annotate { account: String, key: String, note: Option<String>, category: Option<String>, private: Option<bool> },
    /// Add an alert rule.
    AlertAdd(crate::bank::AlertAddRequest),
    /// Alert rules.
    AlertList,
    /// Remove an alert rule.
    AlertRemove(u64),
    /// Set (or remove) the hook.
    SetHook(Option<crate::bank::alerts::Hook>),
    /// Triggered alerts.
    Notifications,
}

/// The answer to a [`BankOp`].
#[derive(Debug)]
pub enum BankReply {
    /// A JSON view.
    Json(serde_json::Value),
    /// JSON text to send as is (exports: their amounts are exact decimal
    /// numbers, which a `serde_json::Value` would turn into floats).
    JsonText(String),
}

/// The answer to a [`ShareOp`].
#[derive(Debug)]
pub enum ShareReply {
    /// A JSON view.
    Json(serde_json::Value),
    /// Raw bytes (the document).
    Bytes(Vec<u8>),
}

/// Builds the swarm: QUIC (quinn) and TCP with Noise and Yamux.
///
/// Dialling is not ordered to make QUIC win over TCP when a contact has
/// both: measured on loopback (1 GiB, `bench/folder_sync.py
/// --hearth-listen quic|tcp`), bulk transfer over libp2p's QUIC costs the
/// receiver about twice the CPU of TCP + Noise + Yamux, mostly because
/// libp2p-tls 0.7 puts ChaCha20-Poly1305 first (packets and per-packet
/// header protection in software) and offers no way to change the order,
/// where raw quinn negotiates AES-GCM.
///
/// The relay client transport sits beside them: dialling or listening on a
/// `.../p2p/<relay>/p2p-circuit` address goes through that relay
/// (`spec/connections.md`).
pub fn build_swarm(key: Keypair, use_mdns: bool, reach: ReachOptions) -> Result<Swarm<Behaviour>> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .context("cannot set up the TCP transport")?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .context("cannot set up the relay client")?
        .with_behaviour(|key, relay_client| {
            Behaviour::new(key, use_mdns, relay_client, &reach)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .context("cannot set up the network protocols")?
        // Connections to contacts stay open (ping keeps NAT mappings warm);
        // strangers are closed by the event loop after their grace period.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
        .build();
    Ok(swarm)
}

/// Which transport a listen address is for, to reuse its last port.
pub fn transport_port(addr: &Multiaddr) -> Option<(&'static str, u16)> {
    let mut udp = None;
    for p in addr.iter() {
        match p {
            Protocol::Tcp(port) => return Some(("tcp", port)),
            Protocol::Udp(port) => udp = Some(port),
            Protocol::QuicV1 => return udp.map(|port| ("quic", port)),
            _ => {}
        }
    }
    None
}

/// `addr` with its port replaced (for the single port of TCP or UDP).
pub fn with_port(addr: &Multiaddr, port: u16) -> Multiaddr {
    addr.iter()
        .map(|p| match p {
            Protocol::Tcp(_) => Protocol::Tcp(port),
            Protocol::Udp(_) => Protocol::Udp(port),
            other => other,
        })
        .collect()
}

/// The address without the peer's own trailing `/p2p/<id>`; `None` for
/// addresses that are useless to store (unspecified IP, a circuit that does
/// not name its relay). A relayed address keeps its relay:
/// `<relay address>/p2p/<relay>/p2p-circuit`.
pub fn dialable(addr: &Multiaddr) -> Option<Multiaddr> {
    let mut out = Multiaddr::empty();
    let circuit = is_relayed(addr);
    let mut relay_named = false;
    for p in addr.iter() {
        match p {
            Protocol::P2p(_) if !circuit => break,
            // The relay's id, after the relay's own address.
            Protocol::P2p(id) if !relay_named && !out.is_empty() => {
                relay_named = true;
                out.push(Protocol::P2p(id));
            }
            Protocol::P2pCircuit if relay_named => {
                out.push(Protocol::P2pCircuit);
                break;
            }
            Protocol::P2p(_) | Protocol::P2pCircuit => return None,
            Protocol::Ip4(ip) if ip.is_unspecified() => return None,
            Protocol::Ip6(ip) if ip.is_unspecified() => return None,
            other => out.push(other),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A configured relay (`/ip4/.../p2p/<relay>`): its peer id and the address
/// to listen on through it (`.../p2p/<relay>/p2p-circuit`).
pub fn relay_target(addr: &Multiaddr) -> Option<(libp2p::PeerId, Multiaddr)> {
    match addr.iter().last() {
        Some(Protocol::P2p(relay)) if !is_relayed(addr) && addr.len() > 1 => {
            Some((relay, addr.clone().with(Protocol::P2pCircuit)))
        }
        _ => None,
    }
}

/// Whether `addr` goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// The relay's peer id in a relayed address.
pub fn relay_of(addr: &Multiaddr) -> Option<libp2p::PeerId> {
    let mut relay = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(id) => relay = Some(id),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

/// Merges `new` addresses in front of `known`, without duplicates, bounded.
pub fn merge_addrs(known: &[String], new: impl IntoIterator<Item = Multiaddr>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for addr in new.into_iter().filter_map(|a| dialable(&a)).map(|a| a.to_string()).chain(known.iter().cloned()) {
        if !out.contains(&addr) && out.len() < MAX_CONTACT_ADDRS {
            out.push(addr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().expect("multiaddr")
    }

    #[test]
    fn addresses_are_cleaned_and_merged() {
        let p = "/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        assert_eq!(dialable(&ma(&format!("/ip4/127.0.0.1/tcp/5{p}"))), Some(ma("/ip4/127.0.0.1/tcp/5")));
        assert_eq!(dialable(&ma("/ip4/0.0.0.0/tcp/5")), None);
        let relay = "/p2p/12D3KooWLV3w42LqUb9MWE7oTzG7vwaFjPw9GvDqmsuDif5chTn9";
        let circuit = ma(&format!("/ip4/10.9.0.1/udp/4001/quic-v1{relay}/p2p-circuit{p}"));
        assert_eq!(dialable(&circuit), Some(ma(&format!("/ip4/10.9.0.1/udp/4001/quic-v1{relay}/p2p-circuit"))));
        assert_eq!(relay_of(&circuit).map(|r| format!("/p2p/{r}")).as_deref(), Some(relay));
        assert_eq!(dialable(&ma(&format!("/p2p-circuit{p}"))), None, "no relay");
        assert_eq!(dialable(&ma(&format!("{relay}/p2p-circuit{p}"))), None, "no relay address");
        let merged = merge_addrs(
            &["/ip4/10.0.0.1/tcp/1".into(), "/ip4/127.0.0.1/tcp/5".into()],
            [ma("/ip4/127.0.0.1/tcp/5"), ma("/ip4/127.0.0.1/udp/6/quic-v1")],
        );
        assert_eq!(merged, vec!["/ip4/127.0.0.1/tcp/5", "/ip4/127.0.0.1/udp/6/quic-v1", "/ip4/10.0.0.1/tcp/1"]);
    }

    #[test]
    fn ports_are_found_and_replaced() {
        let quic = ma("/ip4/0.0.0.0/udp/0/quic-v1");
        assert_eq!(transport_port(&quic), Some(("quic", 0)));
        assert_eq!(with_port(&quic, 4001), ma("/ip4/0.0.0.0/udp/4001/quic-v1"));
        assert_eq!(transport_port(&ma("/ip4/1.2.3.4/tcp/9")), Some(("tcp", 9)));
    }
}
