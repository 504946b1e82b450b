//! The Hearth node: the runtime that drives the sans-IO cores of
//! `hearth-protocol` with real IO.
//!
//! - [`home`], [`config`]: the node's home directory and configuration.
//! - [`store`]: the redb database (schema in `store/tables.rs`).
//! - [`net`]: the libp2p swarm (QUIC + TCP/Noise/Yamux, identify, ping, mDNS,
//!   AutoNAT, relay client and relay-for-contacts, DCUtR) and the event loop
//!   that owns it, gates strangers, runs pairing and keeps contacts reached,
//!   directly or through a relay (`spec/connections.md`).
//! - [`blobs`]: file contents as verified, content-addressed chunks on disk.
//! - [`share`]: shared folders: share records, signed documents, sync.
//! - [`bank`]: bank statement importers, accounts and operations.
//! - [`backup`]: mutual encrypted backups: owner engine, host, restore.
//! - [`api`]: the axum HTTP API on 127.0.0.1, bearer-token protected.
//! - [`ui`]: the web interface served from the API address: pages, login
//!   links and session cookies, live updates.
//! - [`client`], [`cli`]: the `hearth` command line, a client of the API.
//! - [`node`]: start and stop a node (used by `hearth up` and by tests).
//! - [`demo`]: `hearth demo`, several local nodes showing the use cases.

pub mod api;
pub mod backup;
pub mod bank;
pub mod blobs;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod home;
pub mod net;
pub mod node;
pub mod share;
pub mod store;
pub mod ui;
pub mod views;

/// Current Unix time in seconds (the node's clock; protocol cores get it as
/// an argument).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Current Unix time in milliseconds.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
