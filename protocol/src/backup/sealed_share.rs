//! Recovery shares sealed to the friend that keeps them.
//!
//! A Shamir share of the root (social recovery) is stored with a friend
//! as the metadata object `recovery-share`. Sealed, a host that does not
//! know the friend's secret key (a disk thief, a backup of the friend's
//! server) cannot read it, so gathering T such files gives nothing.
//!
//! The friend's key is its node identity: the X25519 key of its ed25519
//! key (public: the Edwards point mapped to Montgomery form; secret: the
//! first 32 bytes of SHA-512 of the ed25519 seed, clamped, as libsodium's
//! `crypto_sign_ed25519_sk_to_curve25519`). Sealed:
//!
//! ```text
//! "HSS1" | ephemeral X25519 public (32) | nonce (24) | XChaCha20-Poly1305(key, nonce, share text, aad)
//! key = BLAKE3-derive_key("hearth backup v1 sealed share", dh || ephemeral public || friend X25519 public)
//! aad = friend's ed25519 public key
//! ```
//!
//! The ephemeral secret and the nonce are arguments (sans-IO).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::Digest;

/// Magic of a sealed share.
pub const MAGIC: &[u8; 4] = b"HSS1";
/// Context of the sealing key.
pub const CONTEXT: &str = "hearth backup v1 sealed share";
const HEADER: usize = 4 + 32 + 24;

/// Why a share did not seal or open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The friend's public key is not a valid ed25519 point.
    #[error("the friend's identity is not a usable ed25519 key")]
    BadKey,
    /// Not a sealed share (old clear shares are text).
    #[error("not a sealed recovery share")]
    Format,
    /// Authentication failed: sealed to another node, or corrupted.
    #[error("this recovery share was not sealed to this node, or it is corrupted")]
    Open,
}

fn x25519_public_of(ed25519_public: &[u8; 32]) -> Result<[u8; 32], SealError> {
    let point = curve25519_dalek::edwards::CompressedEdwardsY(*ed25519_public).decompress().ok_or(SealError::BadKey)?;
    Ok(point.to_montgomery().to_bytes())
}

fn x25519_secret_of(ed25519_seed: &[u8; 32]) -> x25519_dalek::StaticSecret {
    let h = sha2::Sha512::digest(ed25519_seed);
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&h[..32]);
    x25519_dalek::StaticSecret::from(scalar)
}

fn key(dh: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> [u8; 32] {
    let mut material = Vec::with_capacity(96);
    material.extend_from_slice(dh);
    material.extend_from_slice(ephemeral);
    material.extend_from_slice(recipient);
    blake3::derive_key(CONTEXT, &material)
}

/// Seals `text` to the node whose ed25519 public key is `friend`.
pub fn seal(friend: &[u8; 32], text: &[u8], ephemeral_secret: [u8; 32], nonce: [u8; 24]) -> Result<Vec<u8>, SealError> {
    let recipient = x25519_public_of(friend)?;
    let eph = x25519_dalek::StaticSecret::from(ephemeral_secret);
    let eph_public = x25519_dalek::PublicKey::from(&eph).to_bytes();
    let dh = eph.diffie_hellman(&x25519_dalek::PublicKey::from(recipient)).to_bytes();
    let sealed = XChaCha20Poly1305::new(&key(&dh, &eph_public, &recipient).into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: text, aad: friend })
        .map_err(|_| SealError::Open)?;
    let mut out = Vec::with_capacity(HEADER + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&eph_public);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a share sealed to the node with ed25519 `seed` (and public key
/// `public`).
pub fn open(seed: &[u8; 32], public: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < HEADER + 16 || &sealed[..4] != MAGIC {
        return Err(SealError::Format);
    }
    let mut eph_public = [0u8; 32];
    eph_public.copy_from_slice(&sealed[4..36]);
    let secret = x25519_secret_of(seed);
    let own = x25519_dalek::PublicKey::from(&secret).to_bytes();
    let dh = secret.diffie_hellman(&x25519_dalek::PublicKey::from(eph_public)).to_bytes();
    XChaCha20Poly1305::new(&key(&dh, &eph_public, &own).into())
        .decrypt(XNonce::from_slice(&sealed[36..HEADER]), Payload { msg: &sealed[HEADER..], aad: public })
        .map_err(|_| SealError::Open)
}

/// Whether `bytes` are a sealed share (else: an older share in clear text).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ed25519 public key from its seed (RFC 8032: SHA-512, clamp, times the base point).
    fn public_of(seed: &[u8; 32]) -> [u8; 32] {
        let h = sha2::Sha512::digest(seed);
        let mut scalar = [0u8; 32];
        scalar.copy_from_slice(&h[..32]);
        curve25519_dalek::EdwardsPoint::mul_base_clamped(scalar).compress().to_bytes()
    }

    #[test]
    fn only_the_friend_opens_its_share() {
        let (seed, other) = ([7u8; 32], [8u8; 32]);
        let public = public_of(&seed);
        let sealed = seal(&public, b"ABCD-EFGH", [1; 32], [2; 24]).expect("seal");
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(9).any(|w| w == b"ABCD-EFGH"), "no clear text");
        assert_eq!(open(&seed, &public, &sealed).expect("open"), b"ABCD-EFGH");
        assert_eq!(open(&other, &public_of(&other), &sealed), Err(SealError::Open));
        let mut bad = sealed.clone();
        bad[70] ^= 1;
        assert_eq!(open(&seed, &public, &bad), Err(SealError::Open));
        assert_eq!(open(&seed, &public, b"AAAQ-clear"), Err(SealError::Format));
    }
}
