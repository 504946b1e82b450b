//! The catalog: everything an owner needs to find and rebuild its data,
//! sealed with the metadata key and replicated in full to every friend.
//!
//! It holds the snapshots (each a list of files with their chunk ids, plus
//! the node's own state files), the index (chunk id -> pack, offset,
//! length) and, per pack, where its shards are and the block hashes that
//! audits check. Sealed form: `nonce (24) || XChaCha20-Poly1305(meta_key,
//! nonce, zstd(CBOR(catalog)), aad = "hearth backup catalog v1")`. A wrong
//! recovery key fails to open it, which is how a restore knows the key is
//! wrong before writing anything.

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use super::chunk::{ChunkId, NONCE_LEN};
use super::erasure::ShardId;
use super::keys::Keys;
use super::pack::{Location, PackId};
use crate::PeerBytes;

/// Catalog format version.
pub const CATALOG_VERSION: u32 = 1;
const AAD: &[u8] = b"hearth backup catalog v1";

/// One backed-up file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Absolute path at backup time (for node state: the name in the home).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Unix mode bits.
    pub mode: u32,
    /// Content, in order.
    pub chunks: Vec<ChunkId>,
    /// Plaintext length of each chunk, so a restore knows every chunk's
    /// offset before fetching it.
    #[serde(default)]
    pub sizes: Vec<u32>,
}

/// Figures of one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    /// Files.
    pub files: u64,
    /// Plaintext bytes of all files and of the node's state.
    pub bytes: u64,
    /// Plaintext bytes of chunks not seen before.
    pub new_bytes: u64,
    /// Sealed bytes of the new chunks (after compression).
    pub stored_bytes: u64,
}

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Short random id (hex).
    pub id: String,
    /// Unix seconds.
    pub time: u64,
    /// The roots that were backed up.
    pub paths: Vec<String>,
    /// Files under the roots.
    pub files: Vec<FileEntry>,
    /// The node's state: files of its home (identity, config, database).
    pub state: Vec<FileEntry>,
    /// Figures.
    pub stats: SnapshotStats,
}

/// Where one shard of a pack is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlace {
    /// Shard index in the coding.
    pub index: u8,
    /// The friend holding it.
    #[serde(with = "serde_bytes")]
    pub host: PeerBytes,
    /// Its id.
    pub id: ShardId,
    /// Its length.
    pub len: u64,
    /// BLAKE3 of each audit block, concatenated (see `audit`).
    #[serde(with = "serde_bytes")]
    pub blocks: Vec<u8>,
}

/// A pack and its shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRecord {
    /// Padded pack length.
    pub len: u64,
    /// Shards needed.
    pub k: u8,
    /// Shards made.
    pub n: u8,
    /// Where they are.
    pub shards: Vec<ShardPlace>,
}

/// The owner's whole backup metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Format version.
    pub version: u32,
    /// Bumped at every change; friends keep the newest.
    pub generation: u64,
    /// Snapshots, oldest first.
    pub snapshots: Vec<Snapshot>,
    /// Chunk id -> location.
    pub index: BTreeMap<ChunkId, Location>,
    /// Packs.
    pub packs: BTreeMap<PackId, PackRecord>,
    /// The friends and their last known addresses, so that a restore that
    /// starts from one friend finds the others.
    #[serde(default)]
    pub hosts: Vec<HostAddrs>,
}

/// A friend's peer id and multiaddresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAddrs {
    /// Peer id bytes.
    #[serde(with = "serde_bytes")]
    pub peer: PeerBytes,
    /// Multiaddresses (text).
    pub addrs: Vec<String>,
}

/// Why a sealed catalog did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Authentication failed.
    #[error("the backup metadata does not open with this recovery key: the key is wrong (or the copy is corrupted)")]
    WrongKey,
    /// Opened but not a catalog.
    #[error("the backup metadata is malformed: {0}")]
    Malformed(String),
    /// A newer format.
    #[error("the backup metadata has format {0}, this version of hearth reads {CATALOG_VERSION}: upgrade hearth")]
    Version(u32),
}

impl Catalog {
    /// Seals the catalog with a random `nonce`.
    pub fn seal(&self, keys: &Keys, nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        let mut cbor = Vec::new();
        // Serialising plain data into a Vec cannot fail.
        let _ = ciborium::into_writer(self, &mut cbor);
        let body = zstd::bulk::compress(&cbor, 3).unwrap_or(cbor);
        let sealed = XChaCha20Poly1305::new(&keys.meta.into())
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &body, aad: AAD })
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a sealed catalog.
    pub fn open(keys: &Keys, sealed: &[u8]) -> Result<Self, CatalogError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(CatalogError::Malformed(format!("{} bytes", sealed.len())));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let body = XChaCha20Poly1305::new(&keys.meta.into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: AAD })
            .map_err(|_| CatalogError::WrongKey)?;
        let cbor = zstd::stream::decode_all(&body[..]).map_err(|e| CatalogError::Malformed(e.to_string()))?;
        let catalog: Catalog = ciborium::from_reader(&cbor[..]).map_err(|e| CatalogError::Malformed(e.to_string()))?;
        if catalog.version > CATALOG_VERSION {
            return Err(CatalogError::Version(catalog.version));
        }
        Ok(catalog)
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.snapshots.last()
    }

    /// Chunks referenced by any snapshot.
    pub fn referenced(&self) -> std::collections::BTreeSet<ChunkId> {
        self.snapshots
            .iter()
            .flat_map(|s| s.files.iter().chain(&s.state))
            .flat_map(|f| f.chunks.iter().copied())
            .collect()
    }

    /// Packs none of whose chunks is referenced any more, and drops them
    /// (and their index entries) from the catalog. A pack with some live
    /// chunks is kept whole.
    pub fn prune(&mut self) -> Vec<(PackId, PackRecord)> {
        let live = self.referenced();
        let live_packs: std::collections::BTreeSet<PackId> =
            self.index.iter().filter(|(id, _)| live.contains(id)).map(|(_, l)| l.pack).collect();
        let dead: Vec<PackId> = self.packs.keys().filter(|p| !live_packs.contains(p)).copied().collect();
        self.index.retain(|_, l| live_packs.contains(&l.pack));
        dead.into_iter().filter_map(|p| self.packs.remove(&p).map(|r| (p, r))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::keys::RootSecret;

    #[test]
    fn catalogs_open_with_their_key_only() {
        let keys = RootSecret([1; 32]).keys();
        let mut c = Catalog { version: CATALOG_VERSION, generation: 3, ..Default::default() };
        c.snapshots.push(Snapshot {
            id: "ab".into(),
            time: 10,
            paths: vec!["/d".into()],
            files: vec![FileEntry {
                path: "/d/x".into(),
                size: 1,
                mtime_ns: 2,
                mode: 0o644,
                chunks: vec![ChunkId([2; 32])],
                sizes: vec![1],
            }],
            state: vec![],
            stats: SnapshotStats::default(),
        });
        let sealed = c.seal(&keys, [0; NONCE_LEN]);
        assert_eq!(Catalog::open(&keys, &sealed), Ok(c));
        assert_eq!(Catalog::open(&RootSecret([2; 32]).keys(), &sealed), Err(CatalogError::WrongKey));
        assert!(!String::from_utf8_lossy(&sealed).contains("/d/x"));
    }

    #[test]
    fn prune_drops_packs_without_live_chunks() {
        let mut c = Catalog::default();
        let (p1, p2) = (PackId([1; 32]), PackId([2; 32]));
        let rec = PackRecord { len: 1, k: 1, n: 1, shards: vec![] };
        c.packs.insert(p1, rec.clone());
        c.packs.insert(p2, rec);
        c.index.insert(ChunkId([1; 32]), Location { pack: p1, offset: 0, len: 1 });
        c.index.insert(ChunkId([2; 32]), Location { pack: p2, offset: 0, len: 1 });
        c.snapshots.push(Snapshot {
            id: "a".into(),
            time: 1,
            paths: vec![],
            files: vec![FileEntry {
                path: "x".into(),
                size: 1,
                mtime_ns: 0,
                mode: 0,
                chunks: vec![ChunkId([1; 32])],
                sizes: vec![1],
            }],
            state: vec![],
            stats: SnapshotStats::default(),
        });
        let dead = c.prune();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].0, p2);
        assert_eq!(c.index.len(), 1);
    }
}
