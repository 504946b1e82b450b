//! Who may use the web interface: one-time login links and session cookies.
//!
//! `hearth ui` (authenticated with the API token) asks for a login link;
//! opening it once sets a session cookie. The link's secret is random,
//! single use and short-lived, and only its hash is kept (in memory: a node
//! restart voids open links, which only costs another `hearth ui`).
//!
//! A session cookie is `EXPIRES.NONCE.MAC`, where MAC is a keyed BLAKE3 of
//! `EXPIRES.NONCE` under a key derived from the node's API token. So a
//! session is bound to the token: it survives node restarts, and replacing
//! `HOME/api-token` ends every session at once. Logging out records the
//! nonce as revoked (in memory, until the cookie would have expired anyway;
//! the browser drops the cookie at the same time).
//!
//! Cookies are scoped by host, not by port, so two nodes on one machine
//! would overwrite each other's cookie under a shared name: the cookie name
//! carries a short tag derived from the token, different for every node.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// How long a login link stays valid.
pub const LINK_TTL_SECS: u64 = 300;
/// How long a session lasts before `hearth ui` is needed again.
pub const SESSION_TTL_SECS: u64 = 7 * 24 * 3600;
/// Most login links open at once; making one more drops the oldest.
pub const MAX_OPEN_LINKS: usize = 32;
/// Most revoked sessions remembered; past that the oldest are forgotten
/// (each one is also dropped by the browser that logged out).
const MAX_REVOKED: usize = 4096;

/// Why a login link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown, already used, or voided by a restart of the node.
    #[error("this login link was already used (each link works once) or the node restarted since: run `hearth ui` again for a new one")]
    Unknown,
    /// Known but past its expiry.
    #[error("this login link has expired (links last {} minutes): run `hearth ui` again for a new one", LINK_TTL_SECS / 60)]
    Expired,
    /// Not a link secret at all.
    #[error("this login link is garbled: copy the whole line `hearth ui` printed")]
    Garbled,
}

/// Login links and sessions of one node.
pub struct UiAuth {
    key: [u8; 32],
    cookie_name: String,
    /// BLAKE3 of an open link's secret -> its expiry (Unix seconds).
    links: Mutex<BTreeMap<[u8; 32], u64>>,
    /// Nonce of a logged-out session -> when its cookie expires.
    revoked: Mutex<BTreeMap<[u8; 16], u64>>,
}

impl UiAuth {
    /// The authority of the node whose API token is `token`.
    pub fn new(token: &str) -> Self {
        let key = blake3::derive_key("hearth 2024 web interface session cookie", token.as_bytes());
        let tag = blake3::derive_key("hearth 2024 web interface cookie name", token.as_bytes());
        Self {
            key,
            cookie_name: format!("hearth_{}", hex::encode(&tag[..4])),
            links: Mutex::new(BTreeMap::new()),
            revoked: Mutex::new(BTreeMap::new()),
        }
    }

    /// The session cookie's name on this node.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// A new login link secret (hex) and its expiry.
    pub fn create_link(&self, now: u64) -> (String, u64) {
        let secret: [u8; 32] = rand::random();
        let expires = now + LINK_TTL_SECS;
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        make_room(&mut links, now, MAX_OPEN_LINKS);
        links.insert(*blake3::hash(&secret).as_bytes(), expires);
        (hex::encode(secret), expires)
    }

    /// Spends a login link: on success, the value of a new session cookie.
    /// A link works once, even if the first use fails later on.
    pub fn redeem(&self, secret: &str, now: u64) -> Result<String, LoginError> {
        let bytes: [u8; 32] =
            hex::decode(secret.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(LoginError::Garbled)?;
        let hash = *blake3::hash(&bytes).as_bytes();
        let expires = self.links.lock().unwrap_or_else(|e| e.into_inner()).remove(&hash).ok_or(LoginError::Unknown)?;
        if expires <= now {
            return Err(LoginError::Expired);
        }
        Ok(self.session(now + SESSION_TTL_SECS, rand::random()))
    }

    fn mac(&self, expires: u64, nonce: &[u8; 16]) -> [u8; 32] {
        *blake3::keyed_hash(&self.key, format!("{expires}.{}", hex::encode(nonce)).as_bytes()).as_bytes()
    }

    fn session(&self, expires: u64, nonce: [u8; 16]) -> String {
        format!("{expires}.{}.{}", hex::encode(nonce), hex::encode(self.mac(expires, &nonce)))
    }

    /// The nonce of a valid, unexpired, not revoked session cookie value.
    fn verify(&self, value: &str, now: u64) -> Option<([u8; 16], u64)> {
        let mut parts = value.split('.');
        let (expires, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expires: u64 = expires.parse().ok()?;
        let nonce: [u8; 16] = hex::decode(nonce).ok()?.try_into().ok()?;
        let mac: [u8; 32] = hex::decode(mac).ok()?.try_into().ok()?;
        // blake3::Hash compares in constant time.
        let valid = blake3::Hash::from(self.mac(expires, &nonce)) == blake3::Hash::from(mac);
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&nonce);
        (valid && expires > now && !revoked).then_some((nonce, expires))
    }

    /// Whether the request's `Cookie` header carries a valid session.
    pub fn has_session(&self, cookie_header: Option<&str>, now: u64) -> bool {
        self.session_cookie(cookie_header).is_some_and(|v| self.verify(v, now).is_some())
    }

    /// Ends the session in the `Cookie` header, if it is a valid one.
    pub fn revoke(&self, cookie_header: Option<&str>, now: u64) {
        let Some((nonce, expires)) = self.session_cookie(cookie_header).and_then(|v| self.verify(v, now)) else {
            return;
        };
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        make_room(&mut revoked, now, MAX_REVOKED);
        revoked.insert(nonce, expires);
    }

    /// This node's cookie value in a `Cookie` header.
    fn session_cookie<'a>(&self, cookie_header: Option<&'a str>) -> Option<&'a str> {
        cookie_header?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find_map(|(name, value)| (name == self.cookie_name).then_some(value.trim_matches('"')))
    }

    /// `Set-Cookie` for a new session: sent only to this host, never to
    /// scripts (HttpOnly), never on requests started by another site
    /// (SameSite=Strict).
    pub fn set_cookie(&self, value: &str) -> String {
        format!("{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_TTL_SECS}", self.cookie_name)
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", self.cookie_name)
    }
}

/// Drops the entries of `map` (key -> expiry) that expired by `now`, then
/// the ones closest to expiry until one more fits under `max`.
fn make_room<K: Copy + Ord>(map: &mut BTreeMap<K, u64>, now: u64, max: usize) {
    map.retain(|_, expires| *expires > now);
    while map.len() >= max {
        match map.iter().min_by_key(|(_, expires)| **expires).map(|(k, _)| *k) {
            Some(k) => map.remove(&k),
            None => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(auth: &UiAuth, value: &str) -> String {
        format!("other=1; {}={value}; theme=dark", auth.cookie_name())
    }

    #[test]
    fn a_link_works_once_and_gives_a_session() {
        let auth = UiAuth::new("token-a");
        let (secret, expires) = auth.create_link(1000);
        assert_eq!(expires, 1000 + LINK_TTL_SECS);
        let value = auth.redeem(&secret, 1001).expect("first use");
        assert!(auth.has_session(Some(&cookie(&auth, &value)), 1002));
        assert_eq!(auth.redeem(&secret, 1002), Err(LoginError::Unknown));
        assert_eq!(auth.redeem("zz", 1002), Err(LoginError::Garbled));
        assert_eq!(auth.redeem(&"ab".repeat(32), 1002), Err(LoginError::Unknown));
    }

    #[test]
    fn links_and_sessions_expire() {
        let auth = UiAuth::new("token-a");
        let (secret, expires) = auth.create_link(1000);
        assert_eq!(auth.redeem(&secret, expires), Err(LoginError::Expired));
        let (secret, _) = auth.create_link(1000);
        let value = auth.redeem(&secret, 1000).expect("in time");
        assert!(auth.has_session(Some(&cookie(&auth, &value)), 1000 + SESSION_TTL_SECS - 1));
        assert!(!auth.has_session(Some(&cookie(&auth, &value)), 1000 + SESSION_TTL_SECS));
    }

    #[test]
    fn sessions_are_bound_to_the_token_and_cannot_be_forged() {
        let a = UiAuth::new("token-a");
        let (secret, _) = a.create_link(0);
        let value = a.redeem(&secret, 0).expect("login");
        // The same token (a restarted node) accepts it; another does not,
        // even under the right cookie name.
        assert!(UiAuth::new("token-a").has_session(Some(&cookie(&a, &value)), 1));
        let b = UiAuth::new("token-b");
        assert_ne!(a.cookie_name(), b.cookie_name());
        assert!(!b.has_session(Some(&format!("{}={value}", b.cookie_name())), 1));
        // A later expiry or another nonce breaks the MAC.
        let (expires, rest) = value.split_once('.').expect("parts");
        let later = format!("{}.{rest}", expires.parse::<u64>().expect("n") + 1);
        assert!(!a.has_session(Some(&cookie(&a, &later)), 1));
        let flipped = format!("{expires}.{}{}", "0".repeat(32), &rest[32..]);
        assert!(!a.has_session(Some(&cookie(&a, &flipped)), 1));
        assert!(!a.has_session(Some("nothing"), 1));
        assert!(!a.has_session(None, 1));
    }

    #[test]
    fn logging_out_revokes_the_session() {
        let auth = UiAuth::new("token-a");
        let (s1, _) = auth.create_link(0);
        let (s2, _) = auth.create_link(0);
        let one = auth.redeem(&s1, 0).expect("login");
        let two = auth.redeem(&s2, 0).expect("login");
        auth.revoke(Some(&cookie(&auth, &one)), 1);
        assert!(!auth.has_session(Some(&cookie(&auth, &one)), 2));
        assert!(auth.has_session(Some(&cookie(&auth, &two)), 2), "other sessions stay");
    }

    #[test]
    fn open_links_are_bounded() {
        let auth = UiAuth::new("token-a");
        let first = auth.create_link(0).0;
        for _ in 0..MAX_OPEN_LINKS {
            auth.create_link(1);
        }
        assert_eq!(auth.redeem(&first, 2), Err(LoginError::Unknown), "the oldest link was dropped");
    }
}
