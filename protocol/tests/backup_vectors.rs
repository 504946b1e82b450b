//! The test vectors of `spec/backup.md` (`spec/vectors/backup.json`).
//!
//! Without `HEARTH_WRITE_VECTORS=1` this compares the code with the file;
//! with it, the file is regenerated from the fixed inputs below:
//!
//! ```text
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-protocol --test backup_vectors
//! ```

use hearth_protocol::backup::chunk::{self, ChunkId};
use hearth_protocol::backup::erasure::{self, ShardHeader, ShardId};
use hearth_protocol::backup::keys::{KdfParams, RootSecret, WrappedRoot};
use hearth_protocol::backup::pack::{self, PackId};
use hearth_protocol::backup::{audit, sealed_share, wire};

/// RFC 8032 test 1: an ed25519 seed and its public key (the friend a share
/// is sealed to).
const FRIEND_SEED: [u8; 32] = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const FRIEND_PUBLIC: [u8; 32] = hex32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        let hi = (b[2 * i] as char).to_digit(16);
        let lo = (b[2 * i + 1] as char).to_digit(16);
        let (Some(hi), Some(lo)) = (hi, lo) else { panic!("hex") };
        out[i] = (hi * 16 + lo) as u8;
        i += 1;
    }
    out
}
use hearth_protocol::frame;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Vectors {
    description: String,
    root_hex: String,
    chunk_id_key: String,
    pack_key: String,
    meta_key: String,
    restore_identity_seed: String,
    recovery_key: String,
    /// Recovery keys that must be refused, with the error kind.
    bad_recovery_keys: Vec<(String, String)>,
    chunk_plain: String,
    chunk_id: String,
    buckets: Vec<(usize, usize)>,
    pack_hex: String,
    /// Shards of `pack_hex` coded 2-of-3: hex and id.
    shards: Vec<(String, String)>,
    audit_blocks_of_shard0: String,
    wrapped_root: WrappedRoot,
    wrapped_passphrase: String,
    put_shard_frame: String,
    derive_key: String,
    chunk_nonce: String,
    sealed_chunk: String,
    /// ed25519 seed of the friend, its public key, a share text sealed to
    /// it (ephemeral secret 05.., nonce 06..).
    share_friend_seed: String,
    share_friend_public: String,
    share_text: String,
    sealed_share: String,
    /// `/hearth/backup/2` first frame of a download.
    direct_get_frame: String,
}

fn generate() -> Vectors {
    let root = RootSecret(core::array::from_fn(|i| i as u8));
    let keys = root.keys();
    let key = root.recovery_key();
    let mut typo = key.clone().into_bytes();
    typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
    let plain = b"Hearth backup test vector: chunk".to_vec();
    let id = chunk::chunk_id(&keys, &plain);
    let pack: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    let pack_id = PackId(*blake3::hash(&pack).as_bytes());
    let shards = erasure::encode(&pack_id, &pack, 2, 3).expect("encode");
    let put = wire::BackupRequest::PutShard {
        shard: ShardId::of(&shards[0]),
        offset: 0,
        total: shards[0].len() as u64,
        data: shards[0][..16].to_vec(),
    };
    Vectors {
        description: "spec/backup.md: keys from root 00..1f, a chunk id, bucket sizes, 2-of-3 shards of a 1000-byte pack, a passphrase wrap (Argon2id m=64 KiB t=1 p=1), a PutShard frame".into(),
        root_hex: hex::encode(root.0),
        chunk_id_key: hex::encode(keys.chunk_id),
        pack_key: hex::encode(keys.pack),
        meta_key: hex::encode(keys.meta),
        restore_identity_seed: hex::encode(keys.restore_identity),
        recovery_key: key.clone(),
        bad_recovery_keys: vec![
            (String::from_utf8_lossy(&typo).into_owned(), "checksum".into()),
            (key[..20].to_owned(), "format".into()),
            ("not a key at all!".into(), "format".into()),
        ],
        chunk_plain: hex::encode(&plain),
        chunk_id: hex::encode(id.0),
        buckets: [1usize, 4096, 4097, 70_000, 1_000_000, 16_777_217].iter().map(|l| (*l, pack::bucket(*l))).collect(),
        pack_hex: hex::encode(&pack),
        shards: shards.iter().map(|s| (hex::encode(s), ShardId::of(s).hex())).collect(),
        audit_blocks_of_shard0: hex::encode(audit::block_hashes(&shards[0])),
        wrapped_root: WrappedRoot::wrap(&root, "correct horse battery staple", KdfParams { m_kib: 64, t: 1, p: 1 }, [7; 16], [9; 24])
            .expect("wrap"),
        wrapped_passphrase: "correct horse battery staple".into(),
        put_shard_frame: hex::encode(frame::encode(&put, wire::MAX_MESSAGE).expect("frame")),
        derive_key: hex::encode(keys.derive),
        chunk_nonce: hex::encode(chunk::nonce_for(&keys, &id)),
        sealed_chunk: hex::encode(chunk::seal(&keys, &id, &plain, chunk::nonce_for(&keys, &id))),
        share_friend_seed: hex::encode(FRIEND_SEED),
        share_friend_public: hex::encode(FRIEND_PUBLIC),
        share_text: "AEBA-GEAA".into(),
        sealed_share: hex::encode(sealed_share::seal(&FRIEND_PUBLIC, b"AEBA-GEAA", [5; 32], [6; 24]).expect("seal")),
        direct_get_frame: hex::encode(
            frame::encode(&wire::DirectRequest::GetShard { shard: ShardId::of(&shards[0]), offset: 0 }, wire::MAX_DIRECT_FRAME)
                .expect("frame"),
        ),
    }
}

#[test]
fn backup_vectors_match_the_code() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/backup.json");
    if std::env::var("HEARTH_WRITE_VECTORS").is_ok_and(|v| v == "1") {
        let mut text = serde_json::to_string_pretty(&generate()).expect("serialise");
        text.push('\n');
        std::fs::write(&path, text).expect("write spec/vectors/backup.json");
    }
    let text = std::fs::read_to_string(&path).expect("spec/vectors/backup.json");
    let v: Vectors = serde_json::from_str(&text).expect("parse");
    let root = RootSecret(hex::decode(&v.root_hex).expect("hex").try_into().expect("32 bytes"));
    let keys = root.keys();
    assert_eq!(hex::encode(keys.chunk_id), v.chunk_id_key);
    assert_eq!(hex::encode(keys.pack), v.pack_key);
    assert_eq!(hex::encode(keys.meta), v.meta_key);
    assert_eq!(hex::encode(keys.restore_identity), v.restore_identity_seed);
    assert_eq!(root.recovery_key(), v.recovery_key);
    assert_eq!(RootSecret::from_recovery_key(&v.recovery_key).expect("parse"), root);
    for (text, kind) in &v.bad_recovery_keys {
        let err = RootSecret::from_recovery_key(text).expect_err(text);
        let got = match err {
            hearth_protocol::backup::keys::KeyError::Checksum => "checksum",
            hearth_protocol::backup::keys::KeyError::Format(_) => "format",
            _ => "other",
        };
        assert_eq!(got, kind, "{text}");
    }
    let plain = hex::decode(&v.chunk_plain).expect("hex");
    assert_eq!(chunk::chunk_id(&keys, &plain), ChunkId(hex::decode(&v.chunk_id).expect("hex").try_into().expect("32")));
    for (len, b) in &v.buckets {
        assert_eq!(pack::bucket(*len), *b, "bucket of {len}");
    }
    let pack = hex::decode(&v.pack_hex).expect("hex");
    let pack_id = PackId(*blake3::hash(&pack).as_bytes());
    let shards = erasure::encode(&pack_id, &pack, 2, 3).expect("encode");
    for (i, (hex_shard, id)) in v.shards.iter().enumerate() {
        assert_eq!(&hex::encode(&shards[i]), hex_shard, "shard {i}");
        assert_eq!(&ShardId::of(&shards[i]).hex(), id);
        let h = ShardHeader::parse(&shards[i]).expect("header");
        assert_eq!((h.k, h.n, h.index as usize, h.pack_len), (2, 3, i, 1000));
    }
    let from_files: Vec<Vec<u8>> = v.shards.iter().skip(1).map(|(s, _)| hex::decode(s).expect("hex")).collect();
    assert_eq!(erasure::decode(&from_files).expect("decode").1, pack);
    assert_eq!(hex::encode(audit::block_hashes(&shards[0])), v.audit_blocks_of_shard0);
    assert_eq!(v.wrapped_root.unwrap_root(&v.wrapped_passphrase).expect("unwrap"), root);
    assert!(v.wrapped_root.unwrap_root("wrong").is_err());
    let frame_bytes = hex::decode(&v.put_shard_frame).expect("hex");
    let put: wire::BackupRequest = frame::decode(&frame_bytes, wire::MAX_MESSAGE).expect("decode");
    assert!(matches!(put, wire::BackupRequest::PutShard { offset: 0, .. }));
    assert_eq!(hex::encode(keys.derive), v.derive_key);
    let id = chunk::chunk_id(&keys, &plain);
    assert_eq!(hex::encode(chunk::nonce_for(&keys, &id)), v.chunk_nonce);
    let sealed = chunk::seal(&keys, &id, &plain, chunk::nonce_for(&keys, &id));
    assert_eq!(hex::encode(&sealed), v.sealed_chunk, "sealing is deterministic");
    assert_eq!(chunk::open(&keys, &id, &sealed).expect("open"), plain);
    let seed: [u8; 32] = hex::decode(&v.share_friend_seed).expect("hex").try_into().expect("32");
    let public: [u8; 32] = hex::decode(&v.share_friend_public).expect("hex").try_into().expect("32");
    let sealed = hex::decode(&v.sealed_share).expect("hex");
    assert_eq!(sealed_share::open(&seed, &public, &sealed).expect("open"), v.share_text.as_bytes());
    assert_eq!(sealed_share::seal(&public, v.share_text.as_bytes(), [5; 32], [6; 24]).expect("seal"), sealed);
    let get: wire::DirectRequest =
        frame::decode(&hex::decode(&v.direct_get_frame).expect("hex"), wire::MAX_DIRECT_FRAME).expect("decode");
    assert!(matches!(get, wire::DirectRequest::GetShard { offset: 0, .. }));
}
