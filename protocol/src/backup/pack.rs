//! Packs: sealed chunks gathered into one object, in random order, padded
//! to a size bucket.
//!
//! A pack has no header: its layout lives only in the owner's encrypted
//! index (chunk id -> pack, offset, length). The chunks are shuffled and the
//! tail is filled with pseudo-random bytes up to the next bucket, so a host
//! that sees a pack (or its shards) learns neither how many chunks it holds
//! nor their sizes (the chunk-size fingerprinting attack). Buckets are the
//! multiples of 1/16 of the largest power of two not above the size (at
//! least 4 KiB), which costs at most 6.25 % of padding. Randomness comes from a caller seed expanded
//! with BLAKE3's XOF, so the builder is deterministic.

use serde::{Deserialize, Serialize};

use super::chunk::ChunkId;

/// A pack is closed once it holds this many bytes.
pub const TARGET_PACK: usize = 16 * 1024 * 1024;
/// Smallest bucket step.
pub const MIN_STEP: usize = 4096;

/// A pack id: BLAKE3 of the padded pack bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PackId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl PackId {
    /// Hex form.
    pub fn hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }
}

/// Where a chunk lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The pack.
    pub pack: PackId,
    /// Offset of the sealed chunk in the pack.
    pub offset: u64,
    /// Length of the sealed chunk.
    pub len: u32,
}

/// A finished pack.
#[derive(Debug, Clone)]
pub struct Pack {
    /// Its id.
    pub id: PackId,
    /// Padded bytes.
    pub bytes: Vec<u8>,
    /// Where each chunk landed.
    pub entries: Vec<(ChunkId, Location)>,
}

/// The padded size of a pack of `len` bytes.
pub fn bucket(len: usize) -> usize {
    let len = len.max(1);
    let floor = if len.is_power_of_two() { len } else { len.next_power_of_two() / 2 };
    let step = (floor / 16).max(MIN_STEP);
    len.div_ceil(step).max(1) * step
}

/// Collects sealed chunks for one pack, in one buffer that is kept from
/// pack to pack ([`Self::finish_reuse`]): a backup run then faults in its
/// sealed chunks' memory once, not once per chunk.
#[derive(Debug, Default)]
pub struct PackBuilder {
    /// The sealed chunks, end to end, in the order added.
    arena: Vec<u8>,
    /// Each chunk's id and its span of `arena`.
    chunks: Vec<(ChunkId, usize, usize)>,
}

impl PackBuilder {
    /// Adds a sealed chunk.
    pub fn add(&mut self, id: ChunkId, sealed: Vec<u8>) {
        self.add_slice(id, &sealed);
    }

    /// Adds a sealed chunk by copying it.
    pub fn add_slice(&mut self, id: ChunkId, sealed: &[u8]) {
        self.chunks.push((id, self.arena.len(), sealed.len()));
        self.arena.extend_from_slice(sealed);
    }

    /// Bytes of sealed chunks held.
    pub fn size(&self) -> usize {
        self.arena.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Whether the pack should be closed.
    pub fn full(&self) -> bool {
        self.size() >= TARGET_PACK
    }

    /// The order seed of the chunks held, derived from their ids:
    /// `BLAKE3-keyed(derive_key, "pack" || id...)`, ids in the order added.
    /// The same chunks added in the same order give the same pack.
    pub fn content_seed(&self, derive_key: &[u8; 32]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(derive_key);
        h.update(b"pack");
        for (id, _, _) in &self.chunks {
            h.update(&id.0);
        }
        *h.finalize().as_bytes()
    }

    /// Shuffles, pads and closes the pack; `seed` is 32 bytes (random, or
    /// [`Self::content_seed`]).
    pub fn finish(mut self, seed: [u8; 32]) -> Pack {
        self.finish_reuse(seed)
    }

    /// [`Self::finish`], leaving the builder empty with its buffer kept for
    /// the next pack.
    pub fn finish_reuse(&mut self, seed: [u8; 32]) -> Pack {
        let chunks = &mut self.chunks;
        let mut rng = blake3::Hasher::new_keyed(&seed).finalize_xof();
        for i in (1..chunks.len()).rev() {
            let mut b = [0u8; 8];
            rng.fill(&mut b);
            let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
            chunks.swap(i, j);
        }
        let size = self.arena.len();
        let mut bytes = Vec::with_capacity(bucket(size));
        let mut placed = Vec::with_capacity(chunks.len());
        for (id, start, len) in chunks.drain(..) {
            placed.push((id, bytes.len() as u64, len as u32));
            bytes.extend_from_slice(&self.arena[start..start + len]);
        }
        self.arena.clear();
        let start = bytes.len();
        bytes.resize(bucket(start), 0);
        rng.fill(&mut bytes[start..]);
        let pack = PackId(*blake3::hash(&bytes).as_bytes());
        let entries = placed.into_iter().map(|(id, offset, len)| (id, Location { pack, offset, len })).collect();
        Pack { id: pack, bytes, entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hide_sizes_with_little_padding() {
        assert_eq!(bucket(1), 4096);
        assert_eq!(bucket(4096), 4096);
        assert_eq!(bucket(4097), 8192);
        for len in [70_000usize, 1_000_000, 16_777_217, 20_000_000] {
            let b = bucket(len);
            assert!(b >= len && (b - len) * 16 <= b, "{len} -> {b}");
        }
    }

    #[test]
    fn packs_shuffle_and_pad() {
        let mut b = PackBuilder::default();
        for i in 0..20u8 {
            b.add(ChunkId([i; 32]), vec![i; 100 + i as usize]);
        }
        let pack = b.finish([1; 32]);
        assert_eq!(pack.bytes.len(), bucket(pack.bytes.len()));
        let order: Vec<u8> = pack.entries.iter().map(|(id, _)| id.0[0]).collect();
        assert_ne!(order, (0..20).collect::<Vec<_>>(), "random order");
        for (id, loc) in &pack.entries {
            let at = loc.offset as usize;
            assert!(pack.bytes[at..at + loc.len as usize].iter().all(|b| *b == id.0[0]));
            assert_eq!(loc.pack, pack.id);
        }
    }
}
