//! Signing and verifying share-document changes with libp2p identities.
//!
//! A member's Automerge actor id is its peer id bytes. An ed25519 peer id is
//! an identity multihash that embeds the public key, so a signature can be
//! verified from the actor id alone, with no key directory.

use hearth_crdt::doc::{Signer, Verifier};
use libp2p::identity::{Keypair, PublicKey};
use libp2p::PeerId;

/// Signs with the node's own key.
pub struct NodeSigner<'a>(pub &'a Keypair);

impl Signer for NodeSigner<'_> {
    fn peer(&self) -> Vec<u8> {
        self.0.public().to_peer_id().to_bytes()
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        // Signing with an ed25519 key cannot fail; an empty signature would
        // simply be refused by every receiver.
        self.0.sign(message).unwrap_or_default()
    }
}

/// The public key inside an identity-multihash peer id.
pub fn public_key(peer: &[u8]) -> Option<PublicKey> {
    let id = PeerId::from_bytes(peer).ok()?;
    let multihash = id.as_ref();
    // 0x00 is the identity multihash: the digest is the protobuf public key.
    if multihash.code() != 0 {
        return None;
    }
    PublicKey::try_decode_protobuf(multihash.digest()).ok()
}

/// Verifies signatures by the key embedded in the author's peer id.
pub struct PeerVerifier;

impl Verifier for PeerVerifier {
    fn verify(&self, peer: &[u8], message: &[u8], signature: &[u8]) -> bool {
        public_key(peer).is_some_and(|key| key.verify(message, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_from_the_peer_id_alone() {
        let key = Keypair::generate_ed25519();
        let signer = NodeSigner(&key);
        let sig = signer.sign(b"hello");
        assert!(PeerVerifier.verify(&signer.peer(), b"hello", &sig));
        assert!(!PeerVerifier.verify(&signer.peer(), b"hellO", &sig));
        let other = Keypair::generate_ed25519().public().to_peer_id().to_bytes();
        assert!(!PeerVerifier.verify(&other, b"hello", &sig));
        assert!(!PeerVerifier.verify(b"garbage", b"hello", &sig));
    }
}
