//! Reed-Solomon k-of-n erasure coding of a pack into shards, and the shard
//! format.
//!
//! A pack is split into `k` equal pieces (zero-padded, a multiple of 64
//! bytes) and `n - k` recovery pieces are computed with `reed-solomon-simd`
//! (Leopard-RS, GF(2^16)); any `k` of the `n` shards give the pack back.
//! Each shard is self-describing so a restore needs nothing but the shards:
//!
//! ```text
//! "HBS1" | k u8 | n u8 | index u8 | 0 u8 | pack_len u64 BE | pack id [32] | piece
//! ```
//!
//! A shard's id is the BLAKE3 hash of all its bytes; hosts check it on
//! upload, owners on download, so a corrupted shard is dropped before
//! decoding. The decoded pack is checked against its id as well.

use serde::{Deserialize, Serialize};

use super::pack::PackId;

/// Shard magic.
pub const MAGIC: &[u8; 4] = b"HBS1";
/// Length of the shard header.
pub const HEADER_LEN: usize = 48;
/// Most shards of one pack (one per friend).
pub const MAX_SHARDS: usize = 64;

/// A shard id: BLAKE3 of the whole shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl ShardId {
    /// The id of `shard`.
    pub fn of(shard: &[u8]) -> Self {
        ShardId(*blake3::hash(shard).as_bytes())
    }

    /// Hex form (also the host's file name).
    pub fn hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }
}

/// Why shards could not be made or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// `k` and `n` are not 1 <= k <= n <= MAX_SHARDS.
    #[error("cannot code {k}-of-{n}: need 1 <= k <= n <= {MAX_SHARDS}")]
    Params {
        /// Needed shards.
        k: usize,
        /// Total shards.
        n: usize,
    },
    /// A shard is not in the shard format.
    #[error("malformed shard: {0}")]
    Malformed(String),
    /// Shards of different packs or codings were mixed.
    #[error("shards disagree about their pack: {0}")]
    Inconsistent(String),
    /// Fewer than k distinct good shards.
    #[error("only {have} good shards of this pack, {need} needed")]
    NotEnough {
        /// Distinct good shards.
        have: usize,
        /// k.
        need: usize,
    },
    /// Decoding gave bytes that do not hash to the pack id.
    #[error("the decoded pack {0} does not match its id: a shard was corrupted")]
    Corrupt(String),
    /// The Reed-Solomon library refused.
    #[error("erasure coding failed: {0}")]
    Coding(String),
}

/// The parsed header of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHeader {
    /// Needed shards.
    pub k: u8,
    /// Total shards.
    pub n: u8,
    /// This shard's index (`< k`: original piece).
    pub index: u8,
    /// Unpadded pack length.
    pub pack_len: u64,
    /// The pack.
    pub pack: PackId,
}

impl ShardHeader {
    /// Parses the header of `shard`.
    pub fn parse(shard: &[u8]) -> Result<Self, ShardError> {
        if shard.len() < HEADER_LEN {
            return Err(ShardError::Malformed(format!("{} bytes, shorter than a header", shard.len())));
        }
        if &shard[..4] != MAGIC {
            return Err(ShardError::Malformed("bad magic".into()));
        }
        let (k, n, index) = (shard[4], shard[5], shard[6]);
        if k == 0 || k > n || n as usize > MAX_SHARDS || index >= n {
            return Err(ShardError::Malformed(format!("bad coding {k}-of-{n}, index {index}")));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&shard[8..16]);
        let mut pack = [0u8; 32];
        pack.copy_from_slice(&shard[16..48]);
        Ok(Self { k, n, index, pack_len: u64::from_be_bytes(len), pack: PackId(pack) })
    }
}

/// Length of each piece for a pack of `len` bytes cut in `k`.
fn piece_len(len: usize, k: usize) -> usize {
    len.div_ceil(k).max(1).div_ceil(64) * 64
}

/// Encodes `pack` (whose id is `id`) into `n` shards, any `k` of which
/// rebuild it. Shard `i` is at position `i`.
pub fn encode(id: &PackId, pack: &[u8], k: usize, n: usize) -> Result<Vec<Vec<u8>>, ShardError> {
    if k == 0 || k > n || n > MAX_SHARDS {
        return Err(ShardError::Params { k, n });
    }
    let s = piece_len(pack.len(), k);
    let header = |i: usize| {
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&[k as u8, n as u8, i as u8, 0]);
        h.extend_from_slice(&(pack.len() as u64).to_be_bytes());
        h.extend_from_slice(&id.0);
        h
    };
    // The original shards are cut straight from the pack (the last one
    // zero-padded in place); the recovery pieces are computed from them.
    let mut shards: Vec<Vec<u8>> = (0..k)
        .map(|i| {
            let mut shard = header(i);
            shard.reserve_exact(s);
            let start = (i * s).min(pack.len());
            let end = ((i + 1) * s).min(pack.len());
            shard.extend_from_slice(&pack[start..end]);
            shard.resize(HEADER_LEN + s, 0);
            shard
        })
        .collect();
    if n > k {
        let originals: Vec<&[u8]> = shards.iter().map(|sh| &sh[HEADER_LEN..]).collect();
        let recovery =
            reed_solomon_simd::encode(k, n - k, &originals).map_err(|e| ShardError::Coding(e.to_string()))?;
        for (j, piece) in recovery.into_iter().enumerate() {
            let mut shard = header(k + j);
            shard.extend_from_slice(&piece);
            shards.push(shard);
        }
    }
    Ok(shards)
}

/// Rebuilds a pack from any `k` good shards (more are ignored). Shards
/// with a malformed header or of another pack are errors; duplicates of
/// an index are ignored.
pub fn decode(shards: &[Vec<u8>]) -> Result<(PackId, Vec<u8>), ShardError> {
    let first = ShardHeader::parse(shards.first().ok_or(ShardError::NotEnough { have: 0, need: 1 })?)?;
    let (k, n) = (first.k as usize, first.n as usize);
    let s = piece_len(first.pack_len as usize, k);
    let mut originals: Vec<(usize, &[u8])> = Vec::new();
    let mut recovery: Vec<(usize, &[u8])> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for shard in shards {
        let h = ShardHeader::parse(shard)?;
        if (h.k, h.n, h.pack_len, h.pack) != (first.k, first.n, first.pack_len, first.pack) {
            return Err(ShardError::Inconsistent(format!("{} vs {}", h.pack.hex(), first.pack.hex())));
        }
        if shard.len() != HEADER_LEN + s {
            return Err(ShardError::Malformed(format!(
                "shard {} is {} bytes, {} expected",
                h.index,
                shard.len(),
                HEADER_LEN + s
            )));
        }
        if !seen.insert(h.index) || seen.len() > k {
            continue;
        }
        let piece = &shard[HEADER_LEN..];
        if (h.index as usize) < k {
            originals.push((h.index as usize, piece));
        } else {
            recovery.push((h.index as usize - k, piece));
        }
    }
    if seen.len() < k {
        return Err(ShardError::NotEnough { have: seen.len(), need: k });
    }
    // The pack is copied once, straight from the shards held and the
    // pieces restored.
    let mut pieces: Vec<Option<&[u8]>> = vec![None; k];
    for (i, p) in &originals {
        pieces[*i] = Some(p);
    }
    let restored = if originals.len() < k {
        reed_solomon_simd::decode(k, n - k, originals.iter().copied(), recovery.iter().copied())
            .map_err(|e| ShardError::Coding(e.to_string()))?
    } else {
        Default::default()
    };
    for (i, p) in &restored {
        if *i < k {
            pieces[*i] = Some(p);
        }
    }
    let mut pack = Vec::with_capacity(s * k);
    for p in pieces {
        pack.extend_from_slice(p.ok_or(ShardError::NotEnough { have: seen.len(), need: k })?);
    }
    pack.truncate(first.pack_len as usize);
    if blake3::hash(&pack).as_bytes() != &first.pack.0 {
        return Err(ShardError::Corrupt(first.pack.hex()));
    }
    Ok((first.pack, pack))
}

/// The default coding for `friends` friends: k-of-n with n the number of
/// friends (at most 5), and k leaving one shard of slack from 3 friends on
/// (1-of-1, 1-of-2, 2-of-3, 3-of-4, 3-of-5).
pub fn default_coding(friends: usize) -> (usize, usize) {
    match friends.min(5) {
        0 | 1 => (1, 1),
        2 => (1, 2),
        3 => (2, 3),
        4 => (3, 4),
        _ => (3, 5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(len: usize) -> (PackId, Vec<u8>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        (PackId(*blake3::hash(&bytes).as_bytes()), bytes)
    }

    #[test]
    fn any_k_shards_rebuild_the_pack() {
        let (id, bytes) = pack(100_001);
        let shards = encode(&id, &bytes, 2, 3).expect("encode");
        assert_eq!(shards.len(), 3);
        for pair in [[0, 1], [0, 2], [1, 2], [2, 0]] {
            let some: Vec<Vec<u8>> = pair.iter().map(|i| shards[*i].clone()).collect();
            assert_eq!(decode(&some).expect("decode"), (id, bytes.clone()), "{pair:?}");
        }
        assert_eq!(decode(&shards[..1]), Err(ShardError::NotEnough { have: 1, need: 2 }));
    }

    #[test]
    fn replication_and_single_shards_work() {
        let (id, bytes) = pack(5000);
        let one = encode(&id, &bytes, 1, 1).expect("1-of-1");
        assert_eq!(decode(&one).expect("decode").1, bytes);
        let two = encode(&id, &bytes, 1, 2).expect("1-of-2");
        assert_eq!(decode(&two[1..]).expect("decode").1, bytes);
        assert_eq!(encode(&id, &bytes, 3, 2), Err(ShardError::Params { k: 3, n: 2 }));
    }

    #[test]
    fn corrupted_and_mixed_shards_are_refused() {
        let (id, bytes) = pack(10_000);
        let mut shards = encode(&id, &bytes, 2, 3).expect("encode");
        shards[0][HEADER_LEN + 5] ^= 1;
        assert!(matches!(decode(&shards[..2]), Err(ShardError::Corrupt(_))));
        assert!(matches!(decode(&[b"nope".to_vec()]), Err(ShardError::Malformed(_))));
        let (id2, other) = pack(20_000);
        let others = encode(&id2, &other, 2, 3).expect("encode");
        assert!(matches!(decode(&[shards[1].clone(), others[2].clone()]), Err(ShardError::Inconsistent(_))));
        let mut cut = shards[1].clone();
        cut.truncate(100);
        assert!(matches!(decode(&[shards[2].clone(), cut]), Err(ShardError::Malformed(_))));
    }
}
