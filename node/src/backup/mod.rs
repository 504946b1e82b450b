//! Mutual encrypted backups, the node's side (format and messages in
//! `hearth_protocol::backup` and `spec/backup.md`).
//!
//! - [`store`]: the backup tables and meta values.
//! - [`host`]: answering `/hearth/backup/1` as a friend: agreements, opaque
//!   shards and metadata within quota.
//! - [`rpc`]: how the owner's engine sends requests through the swarm.
//! - [`engine`]: the owner: friends, `backup run` (chunk, seal, pack, code,
//!   upload, replicate the catalog), status, snapshots, forget and prune.
//! - [`restore`]: fetching shards from the fastest friends, decoding packs,
//!   writing files atomically; the fresh-install restore with its own
//!   temporary swarm under the restore identity.
//! - [`audit`]: challenges and repair onto another friend.
//! - [`social`]: the root split T-of-M among friends (Shamir).
//! - [`cli`]: `hearth backup ...`.

pub mod audit;
pub mod cli;
pub mod engine;
pub mod host;
pub mod restore;
pub mod rpc;
mod scan;
pub mod social;
pub mod store;

use serde::{Deserialize, Serialize};

pub use engine::Engine;

/// A backup operation of the API (`POST /v1/backup`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BackupOp {
    /// Ask a contact to host my shards.
    FriendsAdd {
        /// Contact name or peer id.
        contact: String,
        /// Bytes offered in return.
        offer: u64,
    },
    /// Friends and what they hold.
    Friends,
    /// Answer a contact's hosting request.
    HostingAnswer {
        /// Contact name or peer id.
        contact: String,
        /// Accept or decline.
        accept: bool,
        /// Bytes granted.
        quota: u64,
    },
    /// What this node hosts for whom.
    Hosting,
    /// Back up a path.
    Add {
        /// Absolute path.
        path: String,
    },
    /// Stop backing up a path.
    Remove {
        /// Path as added.
        path: String,
    },
    /// Run a backup now.
    Run,
    /// The current run's progress.
    Progress,
    /// Status.
    Status,
    /// Snapshots.
    Snapshots,
    /// The recovery key.
    RecoveryKey,
    /// Audit every friend now.
    Audit,
    /// Store the root, wrapped under a passphrase, with every friend.
    SetPassphrase {
        /// The passphrase.
        passphrase: String,
        /// Argon2id memory (KiB); default 64 MiB.
        #[serde(default)]
        m_kib: Option<u32>,
        /// Argon2id passes; default 3.
        #[serde(default)]
        t: Option<u32>,
    },
    /// Restore (part of) a snapshot into a directory.
    Restore {
        /// Snapshot id (default: the latest).
        snapshot: Option<String>,
        /// Only paths under this one.
        path: Option<String>,
        /// Target directory.
        to: String,
    },
    /// Split the root T-of-M and give one share to each of these friends.
    SplitKey {
        /// Shares needed.
        threshold: u8,
        /// Friends (contact names), one share each.
        contacts: Vec<String>,
    },
    /// The recovery share an owner gave this node, as text.
    HostedShare {
        /// The owner (contact name or peer id).
        owner: String,
    },
    /// Forget snapshots and prune.
    Forget(engine::KeepPolicy),
}

/// Parses a size like `10G`, `500M`, `1024` (bytes; K, M, G, T are powers
/// of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = t[i..].to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown size unit in {text:?}: use K, M, G or T")),
            };
            (&t[..i], m)
        }
        None => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("{text:?} is not a size (e.g. 10G, 500M)"))?;
    if n.is_nan() || n < 0.0 {
        return Err(format!("{text:?} is not a size"));
    }
    Ok((n * mult as f64) as u64)
}

/// Human size.
pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
        assert_eq!(human(1536), "1.5 KiB");
    }
}
