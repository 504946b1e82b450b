//! The node's configuration file (`config.toml` in the home).
//!
//! Written once by `hearth init` with defaults that need no port planning:
//! every listen address uses port 0 (the node then reuses the ports it got
//! last time, see `net::listen`), and the API binds 127.0.0.1 on a free port
//! recorded in `api.json` while the node runs.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Contents of `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's display name, shown to contacts.
    pub name: String,
    /// libp2p listen multiaddresses (QUIC first, TCP as fallback).
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Socket address of the HTTP API; must be a loopback address.
    #[serde(default = "default_api_addr")]
    pub api_addr: String,
    /// Discover contacts on the local network with mDNS.
    #[serde(default = "yes")]
    pub mdns: bool,
    /// Seconds a peer that is not a contact may stay connected (time to pair).
    #[serde(default = "default_stranger_grace")]
    pub stranger_grace_secs: u64,
    /// Longest wait between two attempts to reach an offline contact.
    #[serde(default = "default_max_backoff")]
    pub reconnect_max_backoff_secs: u64,
    /// Seconds between two scans of the shared folders for local edits. The
    /// file-system watcher reports edits at once; this periodic rescan is
    /// the safety net for what a watcher can miss (Syncthing: an hour).
    #[serde(default = "default_rescan")]
    pub rescan_secs: u64,
    /// Days deleted files and replaced versions of shared files stay
    /// restorable (`hearth share trash`, `versions`, `restore`) before their
    /// contents are dropped from this node; 0 keeps them forever.
    #[serde(default = "default_keep_versions_days")]
    pub keep_versions_days: u64,
    /// Backups: shards needed to restore a pack (`k`); default from the
    /// number of friends (see `spec/backup.md`).
    #[serde(default)]
    pub backup_k: Option<usize>,
    /// Backups: shards made per pack (`n`, at most the friends online).
    #[serde(default)]
    pub backup_n: Option<usize>,
    /// Backups: seconds between two automatic runs (none by default; e.g.
    /// 21600 for every 6 h).
    #[serde(default)]
    pub backup_every_secs: Option<u64>,
    /// Backups: seconds between two audit rounds of the friends.
    #[serde(default = "default_audit")]
    pub backup_audit_secs: u64,
    /// Backups: how long a friend may stay away before its shards are
    /// re-created on another friend.
    #[serde(default = "default_grace")]
    pub backup_grace_secs: u64,
    /// File contents move over a direct QUIC connection to each member
    /// (`/hearth/blob/2`, a UDP port of its own on the IP of the first
    /// listen address) when the member can be reached there, over the swarm
    /// otherwise. `false`: always over the swarm.
    #[serde(default = "yes")]
    pub direct_connections: bool,
    /// Addresses at which this node is reachable from the internet (e.g. a
    /// hoster's public IP with the listen port, or a port forwarded by a home
    /// router). Empty: AutoNAT finds out by asking contacts to dial back.
    #[serde(default)]
    pub external_addrs: Vec<String>,
    /// AutoNAT also probes private addresses (10/8, 192.168/16, ...): for a
    /// test network whose "internet" is on private ranges. Off on the real
    /// internet, where a private address is never publicly reachable.
    #[serde(default)]
    pub autonat_private_addrs: bool,
    /// Relays to reserve a slot on, besides the contacts that offer it
    /// (multiaddrs ending in `/p2p/<relay peer id>`; the relay must have this
    /// node as a contact).
    #[serde(default)]
    pub relays: Vec<String>,
    /// Relaying for contacts (`spec/connections.md`).
    #[serde(default)]
    pub relay: RelayConfig,
}

/// The `[relay]` table: this node relays for its own contacts only, and only
/// while it is publicly reachable; these bound what it gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Relay for contacts at all.
    pub enabled: bool,
    /// Most contacts holding a reservation at once.
    pub max_reservations: usize,
    /// Most relayed connections at once.
    pub max_circuits: usize,
    /// Most relayed connections per contact at once.
    pub max_circuits_per_peer: usize,
    /// Seconds a relayed connection may last (it is then re-established;
    /// contacts that can hole-punch move to a direct connection long before).
    pub max_circuit_secs: u64,
    /// Bytes a relayed connection may carry (each direction). Enough for
    /// the sync of a family folder between two homes that cannot
    /// hole-punch; file contents move direct once hole punching succeeds.
    pub max_circuit_bytes: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_reservations: 64,
            max_circuits: 16,
            max_circuits_per_peer: 4,
            max_circuit_secs: 3600,
            max_circuit_bytes: 256 << 20,
        }
    }
}

fn default_keep_versions_days() -> u64 {
    30
}

fn default_audit() -> u64 {
    3600
}

fn default_grace() -> u64 {
    72 * 3600
}

fn default_rescan() -> u64 {
    60
}

fn default_listen() -> Vec<String> {
    vec!["/ip4/0.0.0.0/udp/0/quic-v1".into(), "/ip4/0.0.0.0/tcp/0".into()]
}

fn default_api_addr() -> String {
    "127.0.0.1:0".into()
}

fn yes() -> bool {
    true
}

fn default_stranger_grace() -> u64 {
    30
}

fn default_max_backoff() -> u64 {
    60
}

impl Config {
    /// Defaults for a node called `name`.
    pub fn new(name: String) -> Self {
        Self {
            name,
            listen: default_listen(),
            api_addr: default_api_addr(),
            mdns: true,
            stranger_grace_secs: default_stranger_grace(),
            reconnect_max_backoff_secs: default_max_backoff(),
            rescan_secs: default_rescan(),
            keep_versions_days: default_keep_versions_days(),
            backup_k: None,
            backup_n: None,
            backup_every_secs: None,
            backup_audit_secs: default_audit(),
            backup_grace_secs: default_grace(),
            direct_connections: true,
            external_addrs: Vec::new(),
            autonat_private_addrs: false,
            relays: Vec::new(),
            relay: RelayConfig::default(),
        }
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("the configuration {} is invalid", path.display()))?;
        hearth_protocol::names::validate_name(&config.name)
            .with_context(|| format!("invalid `name` in {}", path.display()))?;
        let api: std::net::SocketAddr =
            config.api_addr.parse().with_context(|| format!("invalid `api_addr` in {}", path.display()))?;
        anyhow::ensure!(
            api.ip().is_loopback(),
            "`api_addr` in {} must be a loopback address (127.0.0.1): the API is for this machine only",
            path.display()
        );
        Ok(config)
    }

    /// [`Config::keep_versions_days`] in seconds; `None` for forever.
    pub fn keep_versions_secs(&self) -> Option<i64> {
        (self.keep_versions_days > 0)
            .then(|| i64::try_from(self.keep_versions_days.saturating_mul(86_400)).unwrap_or(i64::MAX))
    }

    /// Writes the configuration as TOML.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).context("cannot serialise the configuration")?;
        crate::home::write_atomic(path, text.as_bytes(), false)
    }
}
