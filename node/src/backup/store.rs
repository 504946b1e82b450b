//! The backup tables (`store/tables.rs`: `backup-friends-1`,
//! `backup-hosting-1`, `backup-files-1`, `backup-pending-deletes-1`) and the backup's `meta-1` values
//! (root secret, catalog, paths), each change one redb transaction.

use anyhow::{Context, Result};
use hearth_protocol::backup::catalog::Catalog;
use hearth_protocol::backup::chunk::ChunkId;
use hearth_protocol::backup::erasure::ShardId;
use hearth_protocol::backup::hosting::Agreement;
use hearth_protocol::backup::keys::{RootSecret, KEY_LEN};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::store::tables::{BACKUP_FILES, BACKUP_FRIENDS, BACKUP_HOSTING, BACKUP_PENDING_DELETES};
use crate::store::{decode, encode, Store};

const ROOT_KEY: &str = "backup_root";
const CATALOG_KEY: &str = "backup_catalog";
const PATHS_KEY: &str = "backup_paths";
const WRAPPED_KEY: &str = "backup_wrapped_root";
const PASSPHRASE_PEER_KEY: &str = "backup_passphrase_peer";

/// Result of the last audit of a friend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unix seconds.
    pub at: u64,
    /// Passed?
    pub ok: bool,
    /// What happened.
    pub message: String,
}

/// A friend asked to host this node's shards (owner side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRecord {
    /// Bytes offered to them in return.
    pub offer: u64,
    /// `asked`, `accepted` or `declined`.
    pub state: String,
    /// Bytes they granted.
    pub quota: u64,
    /// Bytes of shards placed on them.
    pub stored: u64,
    /// Unix seconds of the last exchange with them.
    pub last_contact: Option<u64>,
    /// Last audit.
    pub last_audit: Option<AuditRecord>,
    /// Set when the friend failed an audit or stayed away too long and its
    /// shards were moved: a note for status.
    pub repaired: Option<String>,
}

/// An owner this node hosts (or was asked to host) shards for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostingRecord {
    /// The agreement.
    pub agreement: Agreement,
    /// The owner's restore identity (may read, never write).
    pub restore_peer: Vec<u8>,
    /// The owner's passphrase identity (may read the wrapped root only).
    #[serde(default)]
    pub passphrase_peer: Option<Vec<u8>>,
    /// Bytes held for the owner (partial uploads included).
    pub used: u64,
    /// Unix seconds of the request.
    pub since: u64,
    /// Unix seconds of the last exchange.
    pub last_contact: Option<u64>,
}

/// A file as of the last backup run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFile {
    /// Size.
    pub size: u64,
    /// Modification time (ns).
    pub mtime_ns: i64,
    /// Inode number.
    pub inode: u64,
    /// Content.
    pub chunks: Vec<ChunkId>,
    /// Plaintext chunk lengths.
    pub sizes: Vec<u32>,
}

fn all<T: DeserializeOwned>(
    store: &Store,
    table: TableDefinition<&[u8], &[u8]>,
    what: &str,
) -> Result<Vec<(Vec<u8>, T)>> {
    let txn = store.db().begin_read()?;
    let t = txn.open_table(table)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        out.push((k.value().to_vec(), decode(v.value(), what)?));
    }
    Ok(out)
}

/// Read-modify-write of one record of a peer-keyed table.
fn update<T: Serialize + DeserializeOwned>(
    store: &Store,
    table: TableDefinition<&[u8], &[u8]>,
    key: &[u8],
    what: &str,
    durable: bool,
    change: impl FnOnce(Option<T>) -> Option<T>,
) -> Result<Option<T>> {
    let mut txn = store.db().begin_write()?;
    if !durable {
        txn.set_durability(redb::Durability::None)?;
    }
    let out = {
        let mut t = txn.open_table(table)?;
        let current: Option<T> = t.get(key)?.map(|v| decode(v.value(), what)).transpose()?;
        let new = change(current);
        match &new {
            Some(v) => {
                t.insert(key, encode(v)?.as_slice())?;
            }
            None => {
                t.remove(key)?;
            }
        }
        new
    };
    txn.commit()?;
    Ok(out)
}

/// Friends, by peer id bytes.
pub fn friends(store: &Store) -> Result<Vec<(Vec<u8>, FriendRecord)>> {
    all(store, BACKUP_FRIENDS, "backup friend")
}

/// Changes a friend record (`None` in, a new friend; `None` out, removed).
pub fn update_friend(
    store: &Store,
    peer: &[u8],
    change: impl FnOnce(Option<FriendRecord>) -> Option<FriendRecord>,
) -> Result<Option<FriendRecord>> {
    update(store, BACKUP_FRIENDS, peer, "backup friend", true, change)
}

/// Owners this node hosts, by peer id bytes.
pub fn hostings(store: &Store) -> Result<Vec<(Vec<u8>, HostingRecord)>> {
    all(store, BACKUP_HOSTING, "hosting agreement")
}

/// One hosting record.
pub fn hosting(store: &Store, owner: &[u8]) -> Result<Option<HostingRecord>> {
    let txn = store.db().begin_read()?;
    let t = txn.open_table(BACKUP_HOSTING)?;
    t.get(owner)?.map(|v| decode(v.value(), "hosting agreement")).transpose()
}

/// Changes a hosting record.
pub fn update_hosting(
    store: &Store,
    owner: &[u8],
    change: impl FnOnce(Option<HostingRecord>) -> Option<HostingRecord>,
) -> Result<Option<HostingRecord>> {
    update(store, BACKUP_HOSTING, owner, "hosting agreement", true, change)
}

/// Changes a hosting record's bookkeeping (bytes used, last contact)
/// without an fsync: it is done for every upload piece, and made durable
/// by the next durable commit of the database. A crash may lose the last
/// counts; the shards themselves are files, fsynced when complete.
pub fn touch_hosting(
    store: &Store,
    owner: &[u8],
    change: impl FnOnce(Option<HostingRecord>) -> Option<HostingRecord>,
) -> Result<Option<HostingRecord>> {
    update(store, BACKUP_HOSTING, owner, "hosting agreement", false, change)
}

/// The backup root secret, created on first use.
pub fn root(store: &Store) -> Result<RootSecret> {
    if let Some(bytes) = store.meta::<serde_bytes::ByteBuf>(ROOT_KEY)? {
        let secret: [u8; KEY_LEN] =
            bytes.into_vec().try_into().map_err(|_| anyhow::anyhow!("the stored backup root secret is corrupted"))?;
        return Ok(RootSecret(secret));
    }
    let secret: [u8; KEY_LEN] = rand::random();
    store.set_meta(ROOT_KEY, &serde_bytes::ByteBuf::from(secret.to_vec()))?;
    Ok(RootSecret(secret))
}

/// The catalog (empty before the first run).
pub fn catalog(store: &Store) -> Result<Catalog> {
    Ok(store.meta::<Catalog>(CATALOG_KEY).context("cannot read the backup catalog")?.unwrap_or_else(|| Catalog {
        version: hearth_protocol::backup::catalog::CATALOG_VERSION,
        ..Default::default()
    }))
}

/// Saves the catalog.
pub fn set_catalog(store: &Store, catalog: &Catalog) -> Result<()> {
    store.set_meta(CATALOG_KEY, catalog)
}

/// The backed-up paths.
pub fn paths(store: &Store) -> Result<Vec<String>> {
    Ok(store.meta::<Vec<String>>(PATHS_KEY)?.unwrap_or_default())
}

/// Sets the backed-up paths.
pub fn set_paths(store: &Store, paths: &[String]) -> Result<()> {
    store.set_meta(PATHS_KEY, &paths)
}

/// The cached state of `path`.
pub fn cached_file(store: &Store, path: &str) -> Result<Option<CachedFile>> {
    let txn = store.db().begin_read()?;
    let t = txn.open_table(BACKUP_FILES)?;
    t.get(path)?.map(|v| decode(v.value(), "backup file cache")).transpose()
}

/// Replaces the whole file cache with `files`.
pub fn set_file_cache(store: &Store, files: &[(String, CachedFile)]) -> Result<()> {
    let txn = store.db().begin_write()?;
    {
        let mut t = txn.open_table(BACKUP_FILES)?;
        t.retain(|_, _| false)?;
        for (path, f) in files {
            t.insert(path.as_str(), encode(f)?.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// The passphrase-wrapped root and the passphrase identity, if set.
pub fn wrapped(store: &Store) -> Result<Option<(hearth_protocol::backup::keys::WrappedRoot, Vec<u8>)>> {
    let w = store.meta::<hearth_protocol::backup::keys::WrappedRoot>(WRAPPED_KEY)?;
    let p = store.meta::<serde_bytes::ByteBuf>(PASSPHRASE_PEER_KEY)?;
    Ok(w.zip(p.map(|b| b.into_vec())))
}

/// Records the passphrase-wrapped root and the passphrase identity.
pub fn set_wrapped(store: &Store, wrapped: &hearth_protocol::backup::keys::WrappedRoot, peer: &[u8]) -> Result<()> {
    store.set_meta(WRAPPED_KEY, wrapped)?;
    store.set_meta(PASSPHRASE_PEER_KEY, &serde_bytes::ByteBuf::from(peer.to_vec()))
}

/// Shards still to be deleted from their hosts, by host.
pub fn pending_deletes(store: &Store) -> Result<Vec<(Vec<u8>, Vec<ShardId>)>> {
    all(store, BACKUP_PENDING_DELETES, "pending shard deletes")
}

/// Adds `shards` to what is still to be deleted from `host` (kept sorted,
/// without duplicates); an empty result removes the row.
pub fn add_pending_deletes(store: &Store, host: &[u8], shards: &[ShardId]) -> Result<()> {
    update(store, BACKUP_PENDING_DELETES, host, "pending shard deletes", true, |old: Option<Vec<ShardId>>| {
        let mut all: std::collections::BTreeSet<ShardId> = old.unwrap_or_default().into_iter().collect();
        all.extend(shards.iter().copied());
        (!all.is_empty()).then(|| all.into_iter().collect())
    })?;
    Ok(())
}

/// Removes `shards` from what is still to be deleted from `host`.
pub fn clear_pending_deletes(store: &Store, host: &[u8], shards: &[ShardId]) -> Result<()> {
    update(store, BACKUP_PENDING_DELETES, host, "pending shard deletes", true, |old: Option<Vec<ShardId>>| {
        let left: Vec<ShardId> = old.unwrap_or_default().into_iter().filter(|s| !shards.contains(s)).collect();
        (!left.is_empty()).then_some(left)
    })?;
    Ok(())
}
