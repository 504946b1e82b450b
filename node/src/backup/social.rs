//! Social recovery: the root secret split T-of-M with Shamir's scheme
//! (`blahaj`, the maintained fork of `sharks` without RUSTSEC-2024-0398),
//! one share stored with each of M friends as the metadata object
//! `recovery-share`, sealed to that friend's own key
//! (`hearth_protocol::backup::sealed_share`: X25519 of its ed25519
//! identity, ChaCha20-Poly1305), so the file alone reveals nothing. A
//! friend opens and prints it on request
//! (`hearth backup hosting recovery-share OWNER`) and hands it over; any T
//! of them give the root back (`hearth backup restore --share TEXT ...`).
//!
//! A share's bytes are `T || x || y[32]`; its text carries a checksum (see
//! `hearth_protocol::backup::keys::share_text`). Fewer than T shares reveal
//! nothing about the root.

use anyhow::{anyhow, bail, Result};
use hearth_protocol::backup::keys::{parse_share_text, share_text, RootSecret, KEY_LEN};

/// Name of the metadata object holding a friend's share.
pub const SHARE_OBJECT: &str = "recovery-share";

/// The ed25519 public key of a peer id (Hearth identities are ed25519).
pub fn ed25519_of(peer: &libp2p::PeerId) -> Result<[u8; 32]> {
    let key = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest())
        .map_err(|_| anyhow!("{peer} carries no public key"))?;
    Ok(key.try_into_ed25519().map_err(|_| anyhow!("{peer} is not an ed25519 identity"))?.to_bytes())
}

/// Splits `root` into `m` share texts, any `t` of which recover it.
pub fn split(root: &RootSecret, t: u8, m: u8) -> Result<Vec<String>> {
    if t == 0 || t > m {
        bail!("a split needs 1 <= T <= M (got {t}-of-{m})");
    }
    let sharks = blahaj::Sharks(t);
    Ok(sharks
        .dealer(&root.0)
        .take(m as usize)
        .map(|s| {
            let mut bytes = vec![t];
            bytes.extend(Vec::<u8>::from(&s));
            share_text(&bytes)
        })
        .collect())
}

/// Recovers the root from share texts.
pub fn combine(texts: &[String]) -> Result<RootSecret> {
    let mut shares = Vec::new();
    let mut threshold = 0u8;
    for t in texts {
        let bytes = parse_share_text(t).map_err(|e| anyhow!("recovery share {t:?}: {e}"))?;
        let (&need, rest) = bytes.split_first().ok_or_else(|| anyhow!("empty recovery share"))?;
        threshold = threshold.max(need);
        shares.push(blahaj::Share::try_from(rest).map_err(|e| anyhow!("malformed recovery share: {e}"))?);
    }
    if shares.len() < threshold as usize {
        bail!("{} recovery share(s) given, {threshold} needed", shares.len());
    }
    let secret = blahaj::Sharks(threshold.max(1))
        .recover(shares.as_slice())
        .map_err(|e| anyhow!("the recovery shares do not combine: {e}"))?;
    let secret: [u8; KEY_LEN] = secret.try_into().map_err(|_| anyhow!("the recovery shares give no key"))?;
    Ok(RootSecret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_t_shares_recover_the_root() {
        let root = RootSecret([5; KEY_LEN]);
        let shares = split(&root, 2, 3).expect("split");
        assert_eq!(combine(&shares[1..]).expect("combine"), root);
        assert_eq!(combine(&[shares[2].clone(), shares[0].clone()]).expect("combine"), root);
        assert!(combine(&shares[..1]).is_err(), "one share is not enough");
        assert!(split(&root, 3, 2).is_err());
    }

    #[test]
    fn a_share_sealed_to_a_peer_id_opens_with_its_key() {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let public = ed25519_of(&key.public().to_peer_id()).expect("ed25519");
        let sealed = hearth_protocol::backup::sealed_share::seal(&public, b"share", [3; 32], [4; 24]).expect("seal");
        let ed = key.try_into_ed25519().expect("ed25519");
        let seed: [u8; 32] = ed.secret().as_ref().try_into().expect("32 bytes");
        assert_eq!(hearth_protocol::backup::sealed_share::open(&seed, &public, &sealed).expect("open"), b"share");
    }
}
