//! Real ed25519 signing for the crdt tests: a member key and a verifier that
//! reads the key from the peer id (here the raw 32-byte public key).

#![allow(dead_code)] // each test file uses a different part

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use hearth_crdt::doc::{Signer, Verifier};

/// A member: its signing key and its display name.
pub struct Key(pub SigningKey, pub &'static str);

impl Key {
    /// A fixed key from `seed`, named `name`.
    pub fn named(seed: u8, name: &'static str) -> Self {
        Key(SigningKey::from_bytes(&[seed; 32]), name)
    }

    /// A fixed key from `seed`.
    pub fn new(seed: u8) -> Self {
        Self::named(seed, "member")
    }
}

impl Signer for Key {
    fn peer(&self) -> Vec<u8> {
        self.0.verifying_key().to_bytes().to_vec()
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }
}

/// Verifies with the public key that the peer id is.
pub struct Ed25519;

impl Verifier for Ed25519 {
    fn verify(&self, peer: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let (Ok(peer), Ok(sig)) = (<[u8; 32]>::try_from(peer), <[u8; 64]>::try_from(signature)) else {
            return false;
        };
        VerifyingKey::from_bytes(&peer)
            .is_ok_and(|k| k.verify(message, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok())
    }
}
