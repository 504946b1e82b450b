//! The redb schema, in one place. Every table name carries its version; a
//! change of key or value layout gets a new name and a numbered migration in
//! `store/mod.rs` (`SCHEMA_VERSION`). Values are CBOR (RFC 8949) of the
//! record types below, so fields can be added without a migration.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

/// Schema version stored under `meta-1["schema_version"]`.
pub const SCHEMA_VERSION: u64 = 3;

/// Small node-wide values. Key: a name. Value: CBOR.
/// - `schema_version`: u64
/// - `listen_ports`: [`ListenPorts`], the ports bound at the last start.
/// - `backup_root`: the 32-byte backup root secret (see `spec/backup.md`).
/// - `backup_catalog`: CBOR of the owner's `hearth_protocol::backup::catalog::Catalog`.
/// - `backup_paths`: the paths `hearth backup add` named (`Vec<String>`).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta-1");

/// Contacts. Key: the contact's peer id bytes. Value: [`ContactRecord`].
pub const CONTACTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("contacts-1");

/// Invitations this node issued, used or not (kept as an audit trail).
/// Key: the 16-byte token id. Value: `hearth_protocol::pairing::InvitationRecord`.
pub const INVITATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("invitations-1");

/// Shares this node knows: its own, joined, pending invitations, left ones.
/// Key: the 16-byte share id. Value: [`ShareRecord`].
pub const SHARES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("shares-1");

/// Each share's Automerge document (saved format), as of its last compaction.
/// Key: share id. Value: bytes.
pub const SHARE_DOCS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("share-docs-1");

/// Changes appended to a share's document since its last compaction
/// (Automerge change chunks: `SHARE_DOCS` followed by these, in key order,
/// loads as the whole document). Key: share id (16) + sequence number (u64
/// big-endian). Value: bytes. Schema 2.
pub const SHARE_DOC_INCREMENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("share-doc-increments-1");

/// Signatures of the share documents' changes, needed to forward them.
/// Key: share id (16) + change hash (32). Value: the 64-byte signature.
pub const SHARE_SIGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("share-sigs-1");

/// Each share's local index (what is on disk, as last scanned or written).
/// Key: share id. Value: CBOR of `share::fs::Index`.
pub const SHARE_INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("share-index-1");

/// Bank accounts owned by this node (schema 2). Key: account id (16 hex
/// digits). Value: CBOR of `bank::model::Account`.
pub const BANK_ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("bank-accounts-1");

/// Bank operations (schema 2). Key: `account id \0 dedup key`, so that a
/// re-imported operation is found with one lookup and one account's
/// operations are a range (sorted by date when read). Value: CBOR of
/// `bank::model::Operation`.
pub const BANK_OPS: TableDefinition<&str, &[u8]> = TableDefinition::new("bank-ops-1");

/// Bank views this node writes (owner) or receives (viewer) (schema 2).
/// Key: the 16-byte view id. Value: CBOR of `bank::views::ViewRecord`.
pub const BANK_VIEWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bank-views-1");

/// The entries of each view's signed log (schema 2). Key: view id (16) +
/// sequence number (8, big-endian). Value: CBOR of `hearth_crdt::bank::Entry`.
pub const BANK_VIEW_LOG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bank-view-log-1");

/// Alert rules on accounts and views (schema 2). Key: rule id. Value: CBOR
/// of `bank::alerts::Rule`.
pub const BANK_ALERT_RULES: TableDefinition<u64, &[u8]> = TableDefinition::new("bank-alert-rules-1");

/// Triggered alerts, each recorded once (schema 2). Key: the notification
/// id (rule id + what triggered it). Value: CBOR of `bank::alerts::Notification`.
pub const BANK_NOTIFICATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("bank-notifications-1");

/// Backup friends: contacts asked to host this node's shards (owner side).
/// Key: the friend's peer id bytes. Value: CBOR of `backup::store::FriendRecord`.
/// Schema 3 (a schema-2 Hearth would ignore the backup tables and answer
/// friends as if it hosted nothing: it must refuse such a database).
pub const BACKUP_FRIENDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("backup-friends-1");

/// Hosting agreements: owners whose shards this node holds or was asked to
/// (host side). Key: the owner's peer id bytes. Value: CBOR of
/// `backup::store::HostingRecord`.
pub const BACKUP_HOSTING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("backup-hosting-1");

/// The backup's file cache: files unchanged since the last run (same size,
/// mtime and inode) are not read again. Key: absolute path. Value: CBOR of
/// `backup::store::CachedFile`.
pub const BACKUP_FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("backup-files-1");

/// Shards `forget` deleted from the catalog while their host was away,
/// still to be deleted from it when it is back (schema 3). Key: the host's
/// peer id bytes. Value: CBOR `Vec<ShardId>`.
pub const BACKUP_PENDING_DELETES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("backup-pending-deletes-1");

/// How a contact came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// They redeemed one of our invitations.
    Invited,
    /// We redeemed one of theirs.
    Joined,
}

/// A contact: a peer the user accepted through an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    /// The local, unique name (an alias, or the name they gave).
    pub name: String,
    /// The name they call themselves, as last heard.
    pub their_name: String,
    /// How the pairing went.
    pub origin: Origin,
    /// Unix seconds of the pairing.
    pub added_at: u64,
    /// Unix seconds of the last time a connection to them was open.
    pub last_seen: Option<u64>,
    /// Last known multiaddresses, most recent first (direct ones and
    /// relayed ones, `.../p2p/<relay>/p2p-circuit`).
    pub addrs: Vec<String>,
    /// How they were reached when last seen: `direct` or `relayed`.
    #[serde(default)]
    pub last_link: Option<String>,
}

/// Ports bound at the last start, reused when the config asks for port 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenPorts {
    /// UDP port of the QUIC listener.
    pub quic: Option<u16>,
    /// TCP port of the TCP listener.
    pub tcp: Option<u16>,
}

/// A share as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRecord {
    /// The share's name.
    pub name: String,
    /// The owner's peer id.
    pub owner: Vec<u8>,
    /// This node's role: `owner`, `read-write` or `read-only`.
    pub role: String,
    /// `active`, `pending` (invited, not answered), `declined`, `left` or `removed`.
    pub state: String,
    /// The local directory, once active.
    pub path: Option<String>,
    /// Unix seconds when this node learned of the share.
    pub since: u64,
    /// Changes from other members refused by this node (read-only members,
    /// strangers, forged), counted for `share status`.
    pub rejected: u64,
    /// On the owner: invitations sent and their answers (peer id bytes ->
    /// `pending`, `accepted`, `declined`).
    pub invitations: Vec<(Vec<u8>, String)>,
}
