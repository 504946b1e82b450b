//! Messages of `/hearth/backup/1` (CBOR in frames, see `spec/framing.md`
//! and `spec/backup.md`).
//!
//! The owner asks a contact to host its shards (`Hosting`); the contact
//! answers later with `HostingAnswer` once its person decided. Shards and
//! metadata objects are uploaded in pieces of at most [`MAX_PIECE`] bytes
//! at increasing offsets (a resumed upload starts where the host's `have`
//! says) and fetched by range. A host serves an owner's objects only to
//! that owner, or to the owner's restore identity (the peer derived from
//! the recovery key) for reading.

use serde::{Deserialize, Serialize};

use super::erasure::ShardId;
use crate::PeerBytes;

/// Protocol name.
pub const PROTOCOL: &str = "/hearth/backup/1";
/// Largest frame body.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Largest data piece in one message.
pub const MAX_PIECE: usize = 2 * 1024 * 1024;
/// Name of the metadata object holding the passphrase-wrapped root.
pub const WRAPPED_ROOT: &str = "wrapped-root";
/// Longest metadata object name.
pub const MAX_NAME: usize = 64;

/// `/hearth/backup/2`: whole shards on a direct QUIC connection
/// (`spec/backup.md` §Direct connections).
pub const DIRECT_PROTOCOL: &str = "/hearth/backup/2";
/// ALPN of `/hearth/backup/2` connections.
pub const DIRECT_ALPN: &[u8] = b"hearth-backup/2";
/// Largest shard moved on `/hearth/backup/2` (a 1-of-n shard is a whole
/// pack: 16 MiB of sealed chunks, one more chunk of at most 4 MiB and
/// zstd's worst case, padded to its bucket).
pub const MAX_SHARD: u64 = 32 * 1024 * 1024;
/// Largest control frame on `/hearth/backup/2`.
pub const MAX_DIRECT_FRAME: usize = 64 * 1024;

/// The first frame of a `/hearth/backup/2` stream; the data moves raw
/// around the answers (see `spec/backup.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DirectRequest {
    /// Upload a shard: the host answers `stored {have}`, the owner then
    /// sends bytes `have..total` raw and finishes its side, and the host
    /// answers `stored {have: total}` (or a refusal) once it holds them.
    PutShard {
        /// The shard (BLAKE3 of its bytes).
        shard: ShardId,
        /// Its length (at most [`MAX_SHARD`]).
        total: u64,
    },
    /// Download a shard from `offset`: the host answers `data {total,
    /// data: []}` followed by bytes `offset..total` raw, or a refusal.
    GetShard {
        /// The shard.
        shard: ShardId,
        /// First byte wanted.
        offset: u64,
    },
}

/// A request on `/hearth/backup/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BackupRequest {
    /// Please host my shards; I offer you `offer` bytes in return.
    Hosting {
        /// Bytes offered to the host in return.
        offer: u64,
        /// The owner's restore identity (peer id bytes).
        #[serde(with = "serde_bytes")]
        restore_peer: PeerBytes,
        /// The owner's passphrase identity, if it set a passphrase: that
        /// peer may read the metadata object [`WRAPPED_ROOT`] only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase_peer: Option<serde_bytes::ByteBuf>,
    },
    /// The host's decision on an earlier `Hosting` request.
    HostingAnswer {
        /// Accepted?
        accepted: bool,
        /// Granted bytes.
        quota: u64,
    },
    /// A piece of a shard.
    PutShard {
        /// The shard (BLAKE3 of its bytes).
        shard: ShardId,
        /// Offset of `data`.
        offset: u64,
        /// Whole shard length.
        total: u64,
        /// Bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// A range of a shard.
    GetShard {
        /// The shard.
        shard: ShardId,
        /// Offset.
        offset: u64,
        /// Length (at most MAX_PIECE).
        len: u32,
    },
    /// The shards held for me.
    List,
    /// Prove you hold this range.
    Audit(super::audit::Challenge),
    /// Delete shards.
    Delete {
        /// Shards.
        shards: Vec<ShardId>,
    },
    /// A piece of a metadata object.
    MetaPut {
        /// Object name.
        name: String,
        /// Offset of `data`.
        offset: u64,
        /// Whole length.
        total: u64,
        /// Bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// A range of a metadata object.
    MetaGet {
        /// Object name.
        name: String,
        /// Offset.
        offset: u64,
        /// Length.
        len: u32,
    },
    /// Where is your `/hearth/backup/2` endpoint? (A restoring node has no
    /// contact greeting to learn it from.)
    DirectPort,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No hosting agreement with this peer.
    NotAFriend,
    /// The upload would exceed the quota.
    OverQuota,
    /// No such shard or object.
    NotFound,
    /// Malformed or inconsistent request.
    BadRequest,
    /// The uploaded bytes do not hash to the shard id.
    Corrupt,
    /// The host failed (disk).
    Internal,
}

/// A response on `/hearth/backup/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BackupResponse {
    /// State of the hosting agreement: `pending`, `accepted` or `declined`.
    Hosting {
        /// State.
        state: String,
        /// Granted bytes.
        quota: u64,
    },
    /// Done.
    Ok,
    /// Bytes of the object now held (== total when complete).
    Stored {
        /// Bytes held.
        have: u64,
    },
    /// A range.
    Data {
        /// Whole length.
        total: u64,
        /// Bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Shards held for the asker.
    Shards {
        /// Shard ids and lengths.
        shards: Vec<(ShardId, u64)>,
        /// Bytes used.
        used: u64,
        /// Quota.
        quota: u64,
    },
    /// Audit answer.
    Proof {
        /// The challenge's nonce.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
        /// The range's bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Deleted.
    Deleted {
        /// Shards removed.
        count: u32,
        /// Bytes freed.
        freed: u64,
    },
    /// The UDP port of the host's `/hearth/backup/2` endpoint, on the IP
    /// address the question came to (`None`: there is none).
    DirectPort {
        /// The port.
        port: Option<u16>,
    },
    /// Refused.
    Refused {
        /// Why.
        code: Refusal,
        /// Sentence for the person.
        message: String,
    },
}

impl BackupResponse {
    /// A refusal.
    pub fn refused(code: Refusal, message: impl Into<String>) -> Self {
        BackupResponse::Refused { code, message: message.into() }
    }
}

/// Whether `name` is an acceptable metadata object name (letters, digits,
/// `-`, `_`, `.`, not starting with a dot): it becomes a file name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    #[test]
    fn messages_round_trip() {
        let put = BackupRequest::PutShard { shard: ShardId([1; 32]), offset: 0, total: 3, data: vec![1, 2, 3] };
        let bytes = frame::encode(&put, MAX_MESSAGE).expect("encode");
        assert_eq!(frame::decode::<BackupRequest>(&bytes, MAX_MESSAGE).expect("decode"), put);
        let r = BackupResponse::refused(Refusal::OverQuota, "full");
        let bytes = frame::encode(&r, MAX_MESSAGE).expect("encode");
        assert_eq!(frame::decode::<BackupResponse>(&bytes, MAX_MESSAGE).expect("decode"), r);
        let get = DirectRequest::GetShard { shard: ShardId([2; 32]), offset: 5 };
        let bytes = frame::encode(&get, MAX_DIRECT_FRAME).expect("encode");
        assert_eq!(frame::decode::<DirectRequest>(&bytes, MAX_DIRECT_FRAME).expect("decode"), get);
        assert!(valid_name("catalog"));
        assert!(!valid_name("../x") && !valid_name(".x") && !valid_name(""));
    }
}
