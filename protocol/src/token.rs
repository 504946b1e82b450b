//! Invitation tokens: how one node tells another where it is and proves, once,
//! that the bearer was invited.
//!
//! A token is text-safe (letters and digits only, so a double click selects all
//! of it and it survives e-mail and chat): `hearth1` followed by the base58
//! (Bitcoin alphabet) encoding of the binary layout in `spec/invitation.md`.
//! It carries the inviter's peer id and name, the addresses it can be reached
//! at, a 32-byte single-use secret, an expiry, and a 4-byte checksum so that a
//! mistyped or cut token is reported as such instead of failing later.
//!
//! The secret never travels on the wire: the joiner sends [`Invitation::token_id`]
//! (derived from it) and a proof computed with it (see [`crate::pairing`]).

use crate::PeerBytes;

/// Text prefix of every token; the trailing digit is the token format version.
pub const TOKEN_PREFIX: &str = "hearth1";
/// Binary format version carried in the first byte.
pub const TOKEN_VERSION: u8 = 1;
/// Length of the single-use secret.
pub const SECRET_LEN: usize = 32;
/// Length of the public token id derived from the secret.
pub const TOKEN_ID_LEN: usize = 16;
/// Most addresses a token may carry.
pub const MAX_ADDRS: usize = 16;
/// Longest token text accepted before decoding (guards against pasted files).
pub const MAX_TOKEN_CHARS: usize = 4096;
const CHECKSUM_LEN: usize = 4;
const ID_CONTEXT: &str = "hearth 2026-11 invitation token id v1";

/// Identifies an invitation without revealing its secret.
pub type TokenId = [u8; TOKEN_ID_LEN];

/// A decoded invitation token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The inviter's peer id bytes.
    pub inviter: PeerBytes,
    /// The inviter's display name, as it chose it.
    pub inviter_name: String,
    /// Multiaddresses (binary form) where the inviter listens.
    pub addrs: Vec<Vec<u8>>,
    /// The single-use secret.
    pub secret: [u8; SECRET_LEN],
    /// Unix time (seconds) after which the inviter refuses the token.
    pub expires_at: u64,
}

/// Why a token could not be used. Each message tells the person what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The text does not start with `hearth1`.
    #[error("this is not a Hearth invitation (it should start with \"hearth1\"); copy the whole token printed by `hearth invite`")]
    NotAToken,
    /// The text is longer than any token.
    #[error("the invitation is {0} characters long, far more than any token; copy only the token printed by `hearth invite`")]
    TooLong(usize),
    /// A character outside the base58 alphabet.
    #[error("the invitation contains an invalid character at position {0}; it was probably mistyped: copy it again")]
    BadCharacter(usize),
    /// The bytes end before the layout does.
    #[error("the invitation is truncated (it ends inside the {0}); copy the whole token again")]
    Truncated(&'static str),
    /// The checksum does not match: a character was changed, added or cut.
    #[error("the invitation is garbled: incomplete or mistyped (its checksum does not match); copy the whole token again exactly as printed")]
    Garbled,
    /// Written by a newer Hearth.
    #[error("the invitation uses format version {0}, which this Hearth does not know; update Hearth")]
    UnsupportedVersion(u8),
    /// A field holds a value the layout forbids.
    #[error("the invitation is malformed: {0}")]
    Malformed(&'static str),
    /// The token's expiry has passed.
    #[error("the invitation expired {0} seconds ago; ask for a new one with `hearth invite`")]
    Expired(u64),
}

impl TokenError {
    /// The stable snake_case name of the error, as used by the test vectors
    /// of `spec/invitation.md`: `not_a_token`, `too_long`, `bad_character`,
    /// `truncated`, `garbled`, `unsupported_version`, `malformed`, `expired`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotAToken => "not_a_token",
            Self::TooLong(_) => "too_long",
            Self::BadCharacter(_) => "bad_character",
            Self::Truncated(_) => "truncated",
            Self::Garbled => "garbled",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::Malformed(_) => "malformed",
            Self::Expired(_) => "expired",
        }
    }
}

impl Invitation {
    /// The public id under which the inviter stored this invitation.
    pub fn token_id(&self) -> TokenId {
        token_id(&self.secret)
    }

    /// Fails with [`TokenError::Expired`] if `now` (Unix seconds) is past the expiry.
    pub fn check_fresh(&self, now: u64) -> Result<(), TokenError> {
        if now > self.expires_at {
            return Err(TokenError::Expired(now - self.expires_at));
        }
        Ok(())
    }

    /// The binary layout of `spec/invitation.md`, checksum included.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TokenError> {
        let mut out = Vec::with_capacity(128);
        out.push(TOKEN_VERSION);
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        put_u8_len(&mut out, &self.inviter, "peer id longer than 255 bytes")?;
        put_u8_len(&mut out, self.inviter_name.as_bytes(), "name longer than 255 bytes")?;
        if self.addrs.len() > MAX_ADDRS {
            return Err(TokenError::Malformed("more than 16 addresses"));
        }
        out.push(self.addrs.len() as u8);
        for addr in &self.addrs {
            let len =
                u16::try_from(addr.len()).map_err(|_| TokenError::Malformed("address longer than 65535 bytes"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(addr);
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        Ok(out)
    }

    /// The text form: `hearth1` + base58(bytes).
    pub fn encode(&self) -> Result<String, TokenError> {
        Ok(format!("{TOKEN_PREFIX}{}", bs58::encode(self.to_bytes()?).into_string()))
    }

    /// Parses the text form. Surrounding white space (and white space inside,
    /// as left by line-wrapping mail clients) is ignored. Expiry is not
    /// checked here: see [`Invitation::check_fresh`].
    pub fn decode(text: &str) -> Result<Self, TokenError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::TooLong(compact.len()));
        }
        let body = compact.strip_prefix(TOKEN_PREFIX).ok_or(TokenError::NotAToken)?;
        let bytes = bs58::decode(body).into_vec().map_err(|e| match e {
            bs58::decode::Error::InvalidCharacter { index, .. } => TokenError::BadCharacter(index + TOKEN_PREFIX.len()),
            _ => TokenError::Malformed("not base58"),
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses the binary layout, verifying the checksum first.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
        // Smallest token: version, secret, expiry, two empty strings, zero
        // addresses and the checksum. Shorter input cannot even be checked.
        let min = 1 + SECRET_LEN + 8 + 1 + 1 + 1 + CHECKSUM_LEN;
        if bytes.len() < min {
            return Err(TokenError::Truncated(field_at(bytes.len())));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            // Base58 encodes one big number: a cut or changed character alters
            // every byte, so a failed checksum cannot tell a truncated token
            // from a mistyped one, and the message says both.
            return Err(TokenError::Garbled);
        }
        let mut reader = Reader::new(body);
        let invitation = reader.read_layout()?;
        if !reader.rest().is_empty() {
            return Err(TokenError::Malformed("unexpected bytes after the addresses"));
        }
        Ok(invitation)
    }
}

/// Derives the public token id from a secret.
pub fn token_id(secret: &[u8; SECRET_LEN]) -> TokenId {
    let key = blake3::derive_key(ID_CONTEXT, secret);
    let mut id = [0u8; TOKEN_ID_LEN];
    id.copy_from_slice(&key[..TOKEN_ID_LEN]);
    id
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let hash = blake3::hash(body);
    let mut sum = [0u8; CHECKSUM_LEN];
    sum.copy_from_slice(&hash.as_bytes()[..CHECKSUM_LEN]);
    sum
}

fn field_at(len: usize) -> &'static str {
    match len {
        0 => "version",
        n if n < 1 + SECRET_LEN => "secret",
        n if n < 1 + SECRET_LEN + 8 => "expiry",
        _ => "peer id",
    }
}

fn put_u8_len(out: &mut Vec<u8>, field: &[u8], err: &'static str) -> Result<(), TokenError> {
    let len = u8::try_from(field.len()).map_err(|_| TokenError::Malformed(err))?;
    out.push(len);
    out.extend_from_slice(field);
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], TokenError> {
        if self.bytes.len() < n {
            return Err(TokenError::Truncated(field));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, TokenError> {
        Ok(self.take(1, field)?[0])
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn read_layout(&mut self) -> Result<Invitation, TokenError> {
        let version = self.u8("version")?;
        if version != TOKEN_VERSION {
            return Err(TokenError::UnsupportedVersion(version));
        }
        let mut secret = [0u8; SECRET_LEN];
        secret.copy_from_slice(self.take(SECRET_LEN, "secret")?);
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(self.take(8, "expiry")?);
        let peer_len = self.u8("peer id")? as usize;
        let inviter = self.take(peer_len, "peer id")?.to_vec();
        if inviter.is_empty() {
            return Err(TokenError::Malformed("the inviter's peer id is empty"));
        }
        let name_len = self.u8("name")? as usize;
        let name = self.take(name_len, "name")?;
        let inviter_name =
            std::str::from_utf8(name).map_err(|_| TokenError::Malformed("the inviter's name is not UTF-8"))?.to_owned();
        let count = self.u8("address count")? as usize;
        if count > MAX_ADDRS {
            return Err(TokenError::Malformed("more than 16 addresses"));
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = self.take(2, "address length")?;
            let len = u16::from_be_bytes([len[0], len[1]]) as usize;
            addrs.push(self.take(len, "address")?.to_vec());
        }
        Ok(Invitation { inviter, inviter_name, addrs, secret, expires_at: u64::from_be_bytes(expiry) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invitation {
        Invitation {
            inviter: vec![0, 36, 8, 1, 18, 32, 7, 7, 7],
            inviter_name: "alice".into(),
            addrs: vec![vec![4, 127, 0, 0, 1, 6, 0x1f, 0x90]],
            secret: [9; SECRET_LEN],
            expires_at: 1_800_000_000,
        }
    }

    #[test]
    fn round_trip() {
        let text = sample().encode().expect("encode");
        assert!(text.starts_with(TOKEN_PREFIX));
        assert!(text.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(Invitation::decode(&text), Ok(sample()));
        let wrapped = format!("  {}\n{}  ", &text[..20], &text[20..]);
        assert_eq!(Invitation::decode(&wrapped), Ok(sample()));
    }

    #[test]
    fn every_truncation_is_reported_as_truncated() {
        let bytes = sample().to_bytes().expect("encode");
        for cut in 0..bytes.len() {
            match Invitation::from_bytes(&bytes[..cut]) {
                Err(TokenError::Truncated(_)) | Err(TokenError::Garbled) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let text = sample().encode().expect("encode");
        let err = Invitation::decode(&text[..text.len() - 10]).expect_err("cut text");
        assert!(matches!(err, TokenError::Truncated(_) | TokenError::Garbled), "{err:?}");
    }

    #[test]
    fn every_single_byte_change_is_detected() {
        let bytes = sample().to_bytes().expect("encode");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(Invitation::from_bytes(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn bad_text_gets_a_clear_error() {
        assert_eq!(Invitation::decode("hello"), Err(TokenError::NotAToken));
        assert_eq!(Invitation::decode("hearth1abc0def"), Err(TokenError::BadCharacter(10)));
        let huge = format!("hearth1{}", "a".repeat(5000));
        assert_eq!(Invitation::decode(&huge), Err(TokenError::TooLong(5007)));
    }

    #[test]
    fn expiry_is_checked_against_the_given_clock() {
        let inv = sample();
        assert_eq!(inv.check_fresh(inv.expires_at), Ok(()));
        assert_eq!(inv.check_fresh(inv.expires_at + 5), Err(TokenError::Expired(5)));
    }
}
