//! The contact greeting (`/hearth/contact/1`): the first application protocol
//! two paired nodes run on every connection.
//!
//! On the first connection between two contacts each side sends its
//! [`Hello`] (display name, listen addresses, software version); the receiver
//! answers with its own if the sender is one of its contacts and with
//! [`HelloResponse::Refused`] otherwise. This is how a node
//! learns a contact's current addresses (persisted as its last known ones) and
//! whether the contact still has it as a contact. Strangers get nothing.

use serde::{Deserialize, Serialize};

/// Protocol name negotiated by multistream-select.
pub const PROTOCOL: &str = "/hearth/contact/1";
/// Largest greeting frame body either side accepts.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most addresses accepted in one greeting; extra ones are ignored.
pub const MAX_ADDRS: usize = 32;

/// One side's greeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's display name.
    pub name: String,
    /// Multiaddresses (binary form) the sender listens on.
    pub addrs: Vec<serde_bytes::ByteBuf>,
    /// Software and version, e.g. `hearth/0.1.0`.
    pub agent: String,
    /// UDP port of the sender's direct-connection endpoint
    /// (`/hearth/blob/2`, spec/blob.md), if it has one; reached at the IP
    /// address of the connection this greeting came over. Absent in
    /// greetings of nodes without one (and omitted from the encoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_port: Option<u16>,
    /// Peer ids of the sender's contacts that it cannot reach right now: it
    /// asks the receiver, a contact too, whether it knows where they are
    /// (spec/connections.md §Finding contacts). Optional, at most
    /// [`MAX_ASKS`] are answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ask: Vec<serde_bytes::ByteBuf>,
    /// The answer to the other side's `ask`: for each asked peer that is a
    /// contact of the sender, its last known addresses. Optional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<Known>,
}

/// Where a contact of the sender can be reached, as far as it knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// The contact's peer id.
    pub peer: serde_bytes::ByteBuf,
    /// Its last known multiaddrs (binary form), at most [`MAX_ADDRS`].
    pub addrs: Vec<serde_bytes::ByteBuf>,
}

/// Most asked peers answered in one greeting.
pub const MAX_ASKS: usize = 16;

/// The answer to `asks`: an entry for each asked peer that `lookup` knows
/// (it returns the addresses of the receiver's own contacts only, and
/// `None` for anyone else, who is therefore never revealed), bounded.
pub fn answer_asks(asks: &[serde_bytes::ByteBuf], lookup: impl Fn(&[u8]) -> Option<Vec<Vec<u8>>>) -> Vec<Known> {
    asks.iter()
        .take(MAX_ASKS)
        .filter_map(|peer| {
            let addrs = lookup(peer).filter(|a| !a.is_empty())?;
            Some(Known {
                peer: peer.clone(),
                addrs: addrs.into_iter().take(MAX_ADDRS).map(serde_bytes::ByteBuf::from).collect(),
            })
        })
        .collect()
}

/// The listener's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HelloResponse {
    /// The dialer is a contact; here is the listener's greeting.
    Welcome {
        /// The listener's greeting.
        hello: Hello,
    },
    /// The dialer is not (or no longer) a contact.
    Refused {
        /// Sentence for the log of the refused node.
        message: String,
    },
}

/// The sentence sent to a peer that is not a contact.
pub const NOT_A_CONTACT: &str = "you are not a contact of this node; pair first with `hearth join`";

/// The listener's answer: only contacts are welcomed.
pub fn answer(sender_is_contact: bool, local: Hello) -> HelloResponse {
    if sender_is_contact {
        HelloResponse::Welcome { hello: local }
    } else {
        HelloResponse::Refused { message: NOT_A_CONTACT.to_owned() }
    }
}

impl Hello {
    /// A greeting with no `ask` and no `known`.
    pub fn new(name: String, addrs: Vec<serde_bytes::ByteBuf>, agent: String, direct_port: Option<u16>) -> Self {
        Self { name, addrs, agent, direct_port, ask: Vec::new(), known: Vec::new() }
    }

    /// The advertised addresses, at most [`MAX_ADDRS`] of them.
    pub fn bounded_addrs(&self) -> impl Iterator<Item = &[u8]> {
        self.addrs.iter().take(MAX_ADDRS).map(|a| a.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_bytes::ByteBuf;

    #[test]
    fn only_known_contacts_are_answered_and_the_answer_is_bounded() {
        let asks: Vec<ByteBuf> = (0..40u8).map(|i| ByteBuf::from(vec![i])).collect();
        let known = answer_asks(&asks, |peer| (peer[0] % 2 == 0).then(|| vec![vec![peer[0]]; 40]));
        assert_eq!(known.len(), MAX_ASKS / 2, "only the first MAX_ASKS asks, of which half are contacts");
        assert!(known.iter().all(|k| k.peer[0] % 2 == 0 && k.addrs.len() == MAX_ADDRS));
        assert!(answer_asks(&asks, |_| Some(Vec::new())).is_empty(), "no addresses, no entry");
    }

    #[test]
    fn a_greeting_without_asks_encodes_as_before() {
        let hello = Hello::new("a".into(), Vec::new(), "hearth/0".into(), None);
        let bytes = crate::frame::encode(&hello, MAX_MESSAGE).expect("encodes");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("ask") && !text.contains("known"), "optional fields are omitted");
    }
}
