//! Audits: proving that a friend still holds a shard.
//!
//! When it places a shard, the owner keeps the BLAKE3 hash of every
//! [`AUDIT_BLOCK`]-byte block of it (32 bytes per 64 KiB: 0.05 %). A
//! challenge names a shard, a block picked at random and a fresh nonce; the
//! friend answers with the nonce and the block's bytes, which the owner
//! hashes and compares. A host that dropped or altered the shard fails any
//! block it lost with the probability of that block being drawn; repeated
//! audits drive the chance of a lie going unseen to zero. The nonce binds
//! the answer to the challenge so an old answer cannot be replayed.

use serde::{Deserialize, Serialize};

use super::erasure::ShardId;

/// Audit block size.
pub const AUDIT_BLOCK: usize = 64 * 1024;

/// The concatenated BLAKE3 hashes of the blocks of `shard`.
pub fn block_hashes(shard: &[u8]) -> Vec<u8> {
    shard.chunks(AUDIT_BLOCK).flat_map(|b| *blake3::hash(b).as_bytes()).collect()
}

/// A challenge for one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The shard.
    pub shard: ShardId,
    /// Block offset.
    pub offset: u64,
    /// Block length.
    pub len: u32,
    /// Fresh random bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
}

/// Why an audit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// Bytes do not hash to the block's hash.
    #[error("the friend answered with wrong bytes for shard {0}: the shard is lost or corrupted")]
    WrongData(String),
    /// The nonce is not the challenge's.
    #[error("the friend answered another challenge")]
    WrongNonce,
}

/// A challenge of block `pick % blocks` of a shard of `len` bytes.
pub fn challenge(shard: ShardId, len: u64, pick: u64, nonce: [u8; 16]) -> Challenge {
    let blocks = len.div_ceil(AUDIT_BLOCK as u64).max(1);
    let b = pick % blocks;
    let offset = b * AUDIT_BLOCK as u64;
    let block_len = (len - offset.min(len)).min(AUDIT_BLOCK as u64) as u32;
    Challenge { shard, offset, len: block_len, nonce }
}

/// Checks an answer against the hashes the owner kept.
pub fn verify(hashes: &[u8], c: &Challenge, nonce: &[u8], data: &[u8]) -> Result<(), AuditError> {
    if nonce != c.nonce {
        return Err(AuditError::WrongNonce);
    }
    if crate::mutant::active(crate::mutant::Mutant::UnverifiedAudits) {
        return Ok(());
    }
    let b = (c.offset / AUDIT_BLOCK as u64) as usize;
    let want = hashes.get(b * 32..b * 32 + 32);
    if data.len() != c.len as usize || want != Some(blake3::hash(data).as_bytes().as_slice()) {
        return Err(AuditError::WrongData(c.shard.hex()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audits_pass_with_the_shard_and_fail_without() {
        let shard: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let id = ShardId::of(&shard);
        let hashes = block_hashes(&shard);
        assert_eq!(hashes.len(), 4 * 32);
        for pick in 0..8 {
            let c = challenge(id, shard.len() as u64, pick, [pick as u8; 16]);
            let range = &shard[c.offset as usize..c.offset as usize + c.len as usize];
            assert_eq!(verify(&hashes, &c, &c.nonce, range), Ok(()));
            let mut bad = range.to_vec();
            bad[0] ^= 1;
            assert!(verify(&hashes, &c, &c.nonce, &bad).is_err());
            assert_eq!(verify(&hashes, &c, &[9; 16], range), Err(AuditError::WrongNonce));
        }
    }
}
