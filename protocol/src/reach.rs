//! Reaching contacts across the internet (`spec/connections.md`): the relay
//! policy, which addresses go where, and the per-contact bookkeeping of how
//! each one is reached (direct or through a relay, hole punching).
//!
//! Pure: the node classifies its multiaddrs into [`AddrKind`]s and feeds
//! connection events with the time (Unix seconds) and its own connection
//! ids; nothing here reads a clock or touches a socket.

use std::collections::BTreeMap;

/// How a connection reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Link {
    /// A direct connection (possibly through NATs, after hole punching).
    Direct,
    /// A circuit through a relay (a contact of both ends).
    Relayed,
}

impl Link {
    /// The word status shows: `direct` or `relayed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Direct => "direct",
            Link::Relayed => "relayed",
        }
    }
}

/// Why a relay refuses a request (the relay answers `PERMISSION_DENIED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayRefusal {
    /// This node does not relay at all (`[relay] enabled = false`).
    RelayOff,
    /// The requesting peer is not a contact of the relay.
    NotAContact,
    /// The destination of a circuit is not a contact of the relay.
    DestinationNotAContact,
}

impl RelayRefusal {
    /// A sentence for the relay's log.
    pub fn message(self) -> &'static str {
        match self {
            RelayRefusal::RelayOff => "this node does not relay",
            RelayRefusal::NotAContact => "the requesting node is not a contact",
            RelayRefusal::DestinationNotAContact => "the destination is not a contact",
        }
    }
}

/// A relay's decision on a reservation (`destination_is_contact: None`) or
/// a circuit (`Some(whether the destination is a contact)`): a node relays
/// for its own contacts only, never as an open relay.
pub fn relay_decision(
    relay_on: bool,
    source_is_contact: bool,
    destination_is_contact: Option<bool>,
) -> Result<(), RelayRefusal> {
    if !relay_on {
        return Err(RelayRefusal::RelayOff);
    }
    if !source_is_contact {
        return Err(RelayRefusal::NotAContact);
    }
    if destination_is_contact == Some(false) {
        return Err(RelayRefusal::DestinationNotAContact);
    }
    Ok(())
}

/// Whether to reserve a slot on a contact: only while this node has no
/// confirmed public address, and only on a contact that offers to relay
/// (it advertises the relay protocol once it knows it is publicly reachable).
pub fn should_reserve(we_are_public: bool, contact_offers_relay: bool, already_reserved: bool) -> bool {
    !we_are_public && contact_offers_relay && !already_reserved
}

/// What kind of address a multiaddr is, for ordering what is advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddrKind {
    /// A confirmed or configured external (public) address.
    External,
    /// A circuit through a relay that holds a reservation for this node.
    Relayed,
    /// Any other listen address (LAN, private ranges).
    Local,
    /// Loopback: useful on the same machine only.
    Loopback,
}

/// Which addresses an invitation carries, in order, at most `max`:
/// external ones first, relayed ones only when there is no external one
/// (a publicly reachable inviter needs no relay), then local ones, loopback
/// last. The joiner dials them all at once; the order decides which survive
/// the bound.
pub fn invitation_addrs<A: Clone>(addrs: &[(A, AddrKind)], max: usize) -> Vec<A> {
    let public = addrs.iter().any(|(_, k)| *k == AddrKind::External);
    let mut kept: Vec<&(A, AddrKind)> = addrs.iter().filter(|(_, k)| !(public && *k == AddrKind::Relayed)).collect();
    kept.sort_by_key(|(_, k)| *k);
    kept.into_iter().take(max).map(|(a, _)| a.clone()).collect()
}

/// How hole punching went for a contact reached through a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolePunch {
    /// A direct connection replaced the relayed one.
    Succeeded,
    /// The attempt failed (e.g. a NAT that changes ports per destination).
    Failed,
}

/// What is known of one contact's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach<C> {
    /// Open connections and how each reaches the contact.
    pub open: BTreeMap<C, (Link, u64)>,
    /// Last time a connection was open (Unix seconds) and how.
    pub last: Option<(u64, Link)>,
    /// Outcome of the last hole punching attempt, and when.
    pub hole_punch: Option<(HolePunch, u64)>,
    /// When a direct connection last followed a relayed one.
    pub upgraded_at: Option<u64>,
}

impl<C> Default for Reach<C> {
    fn default() -> Self {
        Self { open: BTreeMap::new(), last: None, hole_punch: None, upgraded_at: None }
    }
}

impl<C> Reach<C> {
    /// The best open link: direct if any, else relayed; `None` if offline.
    pub fn link(&self) -> Option<Link> {
        self.open.values().map(|(l, _)| *l).min()
    }
}

/// The connections of every contact (keyed by `P`, a peer id), fed with
/// connection events. `C` is the driver's connection id.
#[derive(Debug, Clone)]
pub struct Links<P, C> {
    peers: BTreeMap<P, Reach<C>>,
    /// Seconds a relayed connection stays open beside a direct one, so that
    /// requests in flight on it finish.
    linger_secs: u64,
}

impl<P: Ord + Clone, C: Ord + Copy> Links<P, C> {
    /// No connections; relayed ones close `linger_secs` after a direct one
    /// to the same contact opened (see [`Links::superseded`]).
    pub fn new(linger_secs: u64) -> Self {
        Self { peers: BTreeMap::new(), linger_secs }
    }

    /// A connection opened. Returns true when it upgrades a contact that
    /// was reached through a relay only to a direct connection.
    pub fn opened(&mut self, now: u64, peer: &P, conn: C, link: Link) -> bool {
        let reach = self.peers.entry(peer.clone()).or_default();
        let upgrade = link == Link::Direct && reach.link() == Some(Link::Relayed);
        reach.open.insert(conn, (link, now));
        reach.last = Some((now, reach.link().unwrap_or(link)));
        if upgrade {
            reach.upgraded_at = Some(now);
        }
        upgrade
    }

    /// A connection closed.
    pub fn closed(&mut self, now: u64, peer: &P, conn: C) {
        if let Some(reach) = self.peers.get_mut(peer) {
            if let Some((link, _)) = reach.open.remove(&conn) {
                reach.last = Some((now, reach.link().unwrap_or(link)));
            }
        }
    }

    /// A hole punching attempt with `peer` ended.
    pub fn hole_punched(&mut self, now: u64, peer: &P, succeeded: bool) {
        let outcome = if succeeded { HolePunch::Succeeded } else { HolePunch::Failed };
        self.peers.entry(peer.clone()).or_default().hole_punch = Some((outcome, now));
    }

    /// What is known of `peer`.
    pub fn get(&self, peer: &P) -> Option<&Reach<C>> {
        self.peers.get(peer)
    }

    /// The best open link to `peer`.
    pub fn link(&self, peer: &P) -> Option<Link> {
        self.peers.get(peer).and_then(Reach::link)
    }

    /// Relayed connections that a direct connection to the same contact
    /// has replaced for at least the linger time: the driver closes them,
    /// so that contents stop flowing through (and counting against) the relay.
    pub fn superseded(&self, now: u64) -> Vec<(P, C)> {
        let mut out = Vec::new();
        for (peer, reach) in &self.peers {
            let direct_since = reach.open.values().filter(|(l, _)| *l == Link::Direct).map(|(_, since)| *since).min();
            let Some(since) = direct_since else { continue };
            if now.saturating_sub(since) < self.linger_secs {
                continue;
            }
            out.extend(reach.open.iter().filter(|(_, (l, _))| *l == Link::Relayed).map(|(c, _)| (peer.clone(), *c)));
        }
        out
    }

    /// Forgets a removed contact.
    pub fn forget(&mut self, peer: &P) {
        self.peers.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_contacts_may_reserve_or_open_circuits_to_contacts() {
        assert_eq!(relay_decision(true, true, None), Ok(()));
        assert_eq!(relay_decision(true, true, Some(true)), Ok(()));
        assert_eq!(relay_decision(true, false, None), Err(RelayRefusal::NotAContact));
        assert_eq!(relay_decision(true, false, Some(true)), Err(RelayRefusal::NotAContact));
        assert_eq!(relay_decision(true, true, Some(false)), Err(RelayRefusal::DestinationNotAContact));
        assert_eq!(relay_decision(false, true, Some(true)), Err(RelayRefusal::RelayOff));
    }

    #[test]
    fn a_public_node_reserves_nowhere() {
        assert!(should_reserve(false, true, false));
        assert!(!should_reserve(true, true, false));
        assert!(!should_reserve(false, false, false));
        assert!(!should_reserve(false, true, true));
    }

    #[test]
    fn invitations_carry_relayed_addresses_only_without_a_public_one() {
        use AddrKind::*;
        let home = [("lo", Loopback), ("lan", Local), ("relay", Relayed)];
        assert_eq!(invitation_addrs(&home, 16), vec!["relay", "lan", "lo"]);
        assert_eq!(invitation_addrs(&home, 2), vec!["relay", "lan"]);
        let hosted = [("lan", Local), ("relay", Relayed), ("public", External)];
        assert_eq!(invitation_addrs(&hosted, 16), vec!["public", "lan"]);
    }

    #[test]
    fn a_relayed_contact_upgrades_to_direct_and_the_circuit_is_closed_after_the_linger() {
        let mut links: Links<&str, u32> = Links::new(10);
        assert!(!links.opened(100, &"bob", 1, Link::Relayed));
        assert_eq!(links.link(&"bob"), Some(Link::Relayed));
        assert!(links.superseded(105).is_empty());
        links.hole_punched(101, &"bob", true);
        assert!(links.opened(101, &"bob", 2, Link::Direct));
        assert_eq!(links.link(&"bob"), Some(Link::Direct));
        assert_eq!(links.get(&"bob").and_then(|r| r.upgraded_at), Some(101));
        assert!(links.superseded(110).is_empty());
        assert_eq!(links.superseded(111), vec![("bob", 1)]);
        links.closed(111, &"bob", 1);
        assert!(links.superseded(200).is_empty());
        links.closed(120, &"bob", 2);
        let reach = links.get(&"bob").expect("known");
        assert_eq!((reach.link(), reach.last), (None, Some((120, Link::Direct))));
        assert_eq!(reach.hole_punch, Some((HolePunch::Succeeded, 101)));
    }

    #[test]
    fn a_second_direct_connection_is_no_upgrade() {
        let mut links: Links<&str, u32> = Links::new(10);
        assert!(!links.opened(1, &"a", 1, Link::Direct));
        assert!(!links.opened(2, &"a", 2, Link::Direct));
        assert!(!links.opened(3, &"a", 3, Link::Relayed));
        assert_eq!(links.link(&"a"), Some(Link::Direct));
    }
}
