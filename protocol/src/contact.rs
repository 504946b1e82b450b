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
    /// The advertised addresses, at most [`MAX_ADDRS`] of them.
    pub fn bounded_addrs(&self) -> impl Iterator<Item = &[u8]> {
        self.addrs.iter().take(MAX_ADDRS).map(|a| a.as_slice())
    }
}
