//! Hearth's wire formats and sans-IO protocol cores.
//!
//! This crate owns everything two Hearth nodes must agree on byte for byte:
//! the invitation token ([`token`]), the framing of application messages
//! ([`frame`]), and the state machines of the protocols that run over those
//! frames ([`pairing`], [`contact`], [`share`], [`bank`]). It performs no IO: no sockets, no
//! clock, no randomness of its own. Time arrives as Unix seconds and secrets
//! as bytes, so the node (real QUIC) and the simulator (virtual network) drive
//! exactly the same code. The normative description is `spec/` at the
//! repository root; its test vectors are loaded by this crate's tests.
//! Backups to friends are in [`backup`] (`/hearth/backup/1`).
//! File contents move as content-addressed chunks ([`blob`]: manifests,
//! `/hearth/blob/1`, the fetch planner). Reaching contacts behind NATs (relay
//! policy, direct or relayed links) is [`reach`].
#![deny(clippy::unwrap_used)]

pub mod backup;
pub mod bank;
pub mod blob;
pub mod contact;
pub mod frame;
pub mod mutant;
pub mod names;
pub mod pairing;
pub mod reach;
pub mod share;
pub mod token;

/// A peer identity on the wire: the bytes of a libp2p `PeerId` (an identity
/// multihash of the protobuf-encoded ed25519 public key, see
/// `spec/identity.md`). The protocol core treats it as opaque bytes and
/// compares it for equality only; the node converts it to `libp2p::PeerId`.
pub type PeerBytes = Vec<u8>;
