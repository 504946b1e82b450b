//! The key hierarchy of a backup, all derived from one 32-byte root secret,
//! and the printable recovery key that carries that secret.
//!
//! Every key is `BLAKE3::derive_key(context, root)` with a fixed context
//! string (see `spec/backup.md`), so the recovery key alone rebuilds them
//! all. Keys are independent: knowing the chunk-id key says nothing about
//! the pack key. The restore identity seed is the ed25519 secret with which
//! a fresh install proves to the friends that it owns the backup.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// Length of the root secret and of every derived key.
pub const KEY_LEN: usize = 32;

/// Context of the chunk-id key (keyed BLAKE3 of plaintext chunks).
pub const CHUNK_ID_CONTEXT: &str = "hearth backup v1 chunk id";
/// Context of the key that seals chunks.
pub const PACK_CONTEXT: &str = "hearth backup v1 pack encryption";
/// Context of the key that seals metadata (catalog, head).
pub const META_CONTEXT: &str = "hearth backup v1 metadata";
/// Context of the ed25519 seed of the restore identity.
pub const RESTORE_IDENTITY_CONTEXT: &str = "hearth backup v1 restore identity";
/// Context of the key that derives chunk nonces and pack orders from
/// content (so that a re-run rebuilds the same packs, see `spec/backup.md`).
pub const DERIVE_CONTEXT: &str = "hearth backup v1 content derivation";
/// Argon2id salt of the passphrase identity. It must be computable from
/// the passphrase alone (a person who lost everything has nothing else), so
/// it is fixed; the Argon2id cost is what slows guessing down, and the
/// identity only lets a peer read the wrapped root, itself sealed under a
/// key from a random salt.
pub const PASSPHRASE_IDENTITY_SALT: &[u8] = b"hearth backup v1 passphrase identity";
/// Context of the checksum of a recovery share's text.
pub const SHARE_CHECKSUM_CONTEXT: &str = "hearth backup v1 recovery share checksum";
/// Context of the recovery-key checksum.
pub const CHECKSUM_CONTEXT: &str = "hearth backup v1 recovery key checksum";

/// Why a recovery key or a wrapped root was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base32, or not the right length.
    #[error("this is not a recovery key: {0}; a recovery key is 56 letters and digits in groups of four")]
    Format(String),
    /// The checksum does not match: a typo.
    #[error("the recovery key has a typo: its checksum does not match; check every group of four")]
    Checksum,
    /// The passphrase does not open the wrapped root.
    #[error("wrong passphrase")]
    Passphrase,
    /// Argon2 refused its parameters.
    #[error("cannot derive a key from the passphrase: {0}")]
    Kdf(String),
}

/// The root secret of one owner's backups. Never leaves the owner except
/// as the recovery key.
#[derive(Clone, PartialEq, Eq)]
pub struct RootSecret(pub [u8; KEY_LEN]);

impl std::fmt::Debug for RootSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootSecret(..)")
    }
}

/// The keys derived from a root secret.
#[derive(Clone)]
pub struct Keys {
    /// Keyed BLAKE3 of plaintext chunks: their ids.
    pub chunk_id: [u8; KEY_LEN],
    /// Seals chunks (XChaCha20-Poly1305).
    pub pack: [u8; KEY_LEN],
    /// Seals the catalog and the head record.
    pub meta: [u8; KEY_LEN],
    /// ed25519 seed of the restore identity.
    pub restore_identity: [u8; KEY_LEN],
    /// Keyed BLAKE3 of chunk ids: chunk nonces and pack orders.
    pub derive: [u8; KEY_LEN],
}

impl RootSecret {
    /// Derives every key.
    pub fn keys(&self) -> Keys {
        Keys {
            chunk_id: blake3::derive_key(CHUNK_ID_CONTEXT, &self.0),
            pack: blake3::derive_key(PACK_CONTEXT, &self.0),
            meta: blake3::derive_key(META_CONTEXT, &self.0),
            restore_identity: blake3::derive_key(RESTORE_IDENTITY_CONTEXT, &self.0),
            derive: blake3::derive_key(DERIVE_CONTEXT, &self.0),
        }
    }

    /// The printable recovery key: base32 (RFC 4648, no padding) of the
    /// secret followed by a 3-byte checksum, in dash-separated groups of 4.
    pub fn recovery_key(&self) -> String {
        let mut bytes = self.0.to_vec();
        bytes.extend_from_slice(&checksum(&self.0));
        let text = data_encoding::BASE32_NOPAD.encode(&bytes);
        text.as_bytes().chunks(4).map(|g| String::from_utf8_lossy(g).into_owned()).collect::<Vec<_>>().join("-")
    }

    /// Parses a recovery key; case, spaces and dashes do not matter, and
    /// the letters O and I/L typed for 0 and 1 are not base32 so they fail
    /// the format check rather than silently decoding.
    pub fn from_recovery_key(text: &str) -> Result<Self, KeyError> {
        let clean: String =
            text.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
        let bytes =
            data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).map_err(|e| KeyError::Format(e.to_string()))?;
        if bytes.len() != KEY_LEN + 3 {
            return Err(KeyError::Format(format!("{} bytes instead of {}", bytes.len(), KEY_LEN + 3)));
        }
        let mut secret = [0u8; KEY_LEN];
        secret.copy_from_slice(&bytes[..KEY_LEN]);
        if bytes[KEY_LEN..] != checksum(&secret) {
            return Err(KeyError::Checksum);
        }
        Ok(Self(secret))
    }
}

fn checksum(secret: &[u8; KEY_LEN]) -> [u8; 3] {
    let h = blake3::derive_key(CHECKSUM_CONTEXT, secret);
    [h[0], h[1], h[2]]
}

/// The printable form of a social-recovery share (any bytes, here the
/// threshold and a Shamir share): base32 with a 3-byte checksum, in groups
/// of four, like the recovery key.
pub fn share_text(share: &[u8]) -> String {
    let mut bytes = share.to_vec();
    bytes.extend_from_slice(&blake3::derive_key(SHARE_CHECKSUM_CONTEXT, share)[..3]);
    let text = data_encoding::BASE32_NOPAD.encode(&bytes);
    text.as_bytes().chunks(4).map(|g| String::from_utf8_lossy(g).into_owned()).collect::<Vec<_>>().join("-")
}

/// Parses [`share_text`].
pub fn parse_share_text(text: &str) -> Result<Vec<u8>, KeyError> {
    let clean: String =
        text.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    let bytes = data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).map_err(|e| KeyError::Format(e.to_string()))?;
    if bytes.len() < 4 {
        return Err(KeyError::Format("too short for a recovery share".into()));
    }
    let (share, sum) = bytes.split_at(bytes.len() - 3);
    if sum != &blake3::derive_key(SHARE_CHECKSUM_CONTEXT, share)[..3] {
        return Err(KeyError::Checksum);
    }
    Ok(share.to_vec())
}

/// Argon2id cost of a passphrase wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The default: 64 MiB, 3 passes, 1 lane (OWASP's second Argon2id set).
    pub const DEFAULT: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 1 };
}

/// The root secret sealed under a passphrase, stored with every friend so
/// that a person who lost the paper key but remembers the passphrase can
/// still restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedRoot {
    /// Argon2id cost.
    pub params: KdfParams,
    /// Argon2id salt.
    #[serde(with = "serde_bytes")]
    pub salt: Vec<u8>,
    /// XChaCha20-Poly1305 nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The sealed root secret.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

fn passphrase_key(passphrase: &str, salt: &[u8], params: KdfParams) -> Result<[u8; KEY_LEN], KeyError> {
    let p = Params::new(params.m_kib, params.t, params.p, Some(KEY_LEN)).map_err(|e| KeyError::Kdf(e.to_string()))?;
    let mut out = [0u8; KEY_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| KeyError::Kdf(e.to_string()))?;
    Ok(out)
}

/// The ed25519 seed of the passphrase identity: the peer to which friends
/// hand the wrapped root (and nothing else).
pub fn passphrase_identity_seed(passphrase: &str, params: KdfParams) -> Result<[u8; KEY_LEN], KeyError> {
    passphrase_key(passphrase, PASSPHRASE_IDENTITY_SALT, params)
}

impl WrappedRoot {
    /// Wraps `root` under `passphrase`; `salt` (16 bytes) and `nonce` (24)
    /// are random bytes from the caller.
    pub fn wrap(
        root: &RootSecret,
        passphrase: &str,
        params: KdfParams,
        salt: [u8; 16],
        nonce: [u8; 24],
    ) -> Result<Self, KeyError> {
        let key = passphrase_key(passphrase, &salt, params)?;
        let sealed = XChaCha20Poly1305::new(&key.into())
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &root.0, aad: b"hearth wrapped root" })
            .map_err(|_| KeyError::Passphrase)?;
        Ok(Self { params, salt: salt.to_vec(), nonce: nonce.to_vec(), sealed })
    }

    /// Opens the wrap with `passphrase`.
    pub fn unwrap_root(&self, passphrase: &str) -> Result<RootSecret, KeyError> {
        if self.nonce.len() != 24 {
            return Err(KeyError::Format("the wrapped root has a bad nonce".into()));
        }
        let key = passphrase_key(passphrase, &self.salt, self.params)?;
        let plain = XChaCha20Poly1305::new(&key.into())
            .decrypt(XNonce::from_slice(&self.nonce), Payload { msg: &self.sealed, aad: b"hearth wrapped root" })
            .map_err(|_| KeyError::Passphrase)?;
        let secret: [u8; KEY_LEN] = plain.try_into().map_err(|_| KeyError::Passphrase)?;
        Ok(RootSecret(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_keys_round_trip_and_catch_typos() {
        let root = RootSecret([7; KEY_LEN]);
        let text = root.recovery_key();
        assert_eq!(RootSecret::from_recovery_key(&text), Ok(root.clone()));
        assert_eq!(RootSecret::from_recovery_key(&text.to_lowercase().replace('-', " ")), Ok(root));
        let mut typo = text.into_bytes();
        typo[5] = if typo[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(RootSecret::from_recovery_key(&String::from_utf8_lossy(&typo)), Err(KeyError::Checksum));
        assert!(matches!(RootSecret::from_recovery_key("hello"), Err(KeyError::Format(_))));
    }

    #[test]
    fn share_texts_round_trip_and_catch_typos() {
        let text = share_text(&[2, 1, 9, 9, 9]);
        assert_eq!(parse_share_text(&text), Ok(vec![2, 1, 9, 9, 9]));
        let mut typo = text.into_bytes();
        typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(parse_share_text(&String::from_utf8_lossy(&typo)), Err(KeyError::Checksum));
    }

    #[test]
    fn derived_keys_differ() {
        let k = RootSecret([1; KEY_LEN]).keys();
        assert_ne!(k.chunk_id, k.pack);
        assert_ne!(k.pack, k.meta);
        assert_ne!(k.meta, k.restore_identity);
    }

    #[test]
    fn passphrase_wraps_open_with_the_right_passphrase_only() {
        let root = RootSecret([9; KEY_LEN]);
        let params = KdfParams { m_kib: 64, t: 1, p: 1 };
        let wrapped = WrappedRoot::wrap(&root, "correct horse", params, [1; 16], [2; 24]).expect("wrap");
        assert_eq!(wrapped.unwrap_root("correct horse"), Ok(root));
        assert_eq!(wrapped.unwrap_root("wrong"), Err(KeyError::Passphrase));
        let a = passphrase_identity_seed("correct horse", params).expect("seed");
        assert_eq!(a, passphrase_identity_seed("correct horse", params).expect("seed"));
        assert_ne!(a, passphrase_identity_seed("correct horsf", params).expect("seed"));
    }
}
