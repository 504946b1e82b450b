//! What the API returns and the CLI prints (`--json` prints these as is).

use serde::{Deserialize, Serialize};

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    /// This node's peer id.
    pub peer_id: String,
    /// This node's name.
    pub name: String,
    /// Hearth version.
    pub version: String,
    /// Seconds since `hearth up`.
    pub uptime_secs: u64,
    /// Multiaddresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Contacts with a connection open right now.
    pub connected_contacts: Vec<ContactBrief>,
    /// Number of contacts.
    pub contacts_total: usize,
    /// Where the API listens.
    pub api_addr: String,
    /// UDP port of the direct-connection endpoint for file contents
    /// (`/hearth/blob/2`), if it is open.
    #[serde(default)]
    pub direct_port: Option<u16>,
    /// Contacts with a direct connection up right now (names).
    #[serde(default)]
    pub direct_links: Vec<String>,
    /// Whether this node is reachable from the internet, as AutoNAT found
    /// (or `external_addrs` says): `public`, `private` or `unknown`.
    #[serde(default)]
    pub reachability: String,
    /// Public addresses: configured, or confirmed by AutoNAT.
    #[serde(default)]
    pub external_addrs: Vec<String>,
    /// Reservations on relays (contacts that relay for this node).
    #[serde(default)]
    pub relays: Vec<RelayView>,
    /// What this node relays for its contacts.
    #[serde(default)]
    pub relay_service: Option<RelayServiceView>,
}

/// A reservation on a relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayView {
    /// The relay's contact name (its peer id if it is not a contact).
    pub relay: String,
    /// Its peer id.
    pub peer_id: String,
    /// `asking`, `reserved` or `ended`.
    pub state: String,
    /// Why it ended.
    pub error: Option<String>,
    /// The relayed addresses this node is reachable at through it.
    pub addresses: Vec<String>,
}

/// The relay this node runs for its contacts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayServiceView {
    /// `[relay] enabled`.
    pub enabled: bool,
    /// Offered right now (enabled, and this node is publicly reachable).
    pub offered: bool,
    /// Contacts holding a reservation.
    pub reservations: Vec<String>,
    /// Open relayed connections, `from -> to`.
    pub circuits: Vec<String>,
    /// Relayed connections that ended (closed, or cut at a limit).
    pub circuits_ended: u64,
    /// Reservations refused (strangers, limits).
    pub refused_reservations: u64,
    /// Relayed connections refused (strangers, limits).
    pub refused_circuits: u64,
    /// Limit: seconds per relayed connection.
    pub max_circuit_secs: u64,
    /// Limit: bytes per relayed connection.
    pub max_circuit_bytes: u64,
    /// Limit: relayed connections at once.
    pub max_circuits: usize,
    /// Limit: reservations at once.
    pub max_reservations: usize,
}

/// A contact in a status line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactBrief {
    /// Local name.
    pub name: String,
    /// Peer id.
    pub peer_id: String,
    /// `direct` or `relayed`.
    #[serde(default)]
    pub link: Option<String>,
}

/// `GET /v1/contacts` items.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactView {
    /// Local, unique name.
    pub name: String,
    /// Peer id.
    pub peer_id: String,
    /// A connection is open and they greeted us back as a contact.
    pub online: bool,
    /// Last time a connection was open, RFC 3339 (UTC); `null` if never.
    pub last_seen: Option<String>,
    /// `last_seen` as Unix seconds.
    pub last_seen_unix: Option<u64>,
    /// The name they gave themselves.
    pub their_name: String,
    /// `invited` (they used our invitation) or `joined` (we used theirs).
    pub origin: String,
    /// When the pairing happened, RFC 3339.
    pub added_at: String,
    /// Last known addresses.
    pub addresses: Vec<String>,
    /// They answered that we are not (or no longer) their contact.
    pub refused_by_them: bool,
    /// How they are reached right now: `direct` or `relayed` (`null` offline).
    #[serde(default)]
    pub link: Option<String>,
    /// How they were reached the last time a connection was open.
    #[serde(default)]
    pub last_link: Option<String>,
    /// Last hole punching attempt: `succeeded` or `failed`, with its time
    /// (RFC 3339).
    #[serde(default)]
    pub hole_punch: Option<String>,
    /// When a direct connection last replaced a relayed one (RFC 3339).
    #[serde(default)]
    pub upgraded_at: Option<String>,
}

/// `POST /v1/invitations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteView {
    /// The token to hand to the other person.
    pub token: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
    /// Expiry, Unix seconds.
    pub expires_at_unix: u64,
    /// Addresses carried in the token.
    pub addresses: Vec<String>,
}

/// `GET /v1/invitations` items (never includes the secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvitationView {
    /// Token id, hex.
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// `open`, `used` or `expired`.
    pub state: String,
    /// Name of the node that used it.
    pub used_by: Option<String>,
}

/// `POST /v1/join` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The invitation token.
    pub token: String,
    /// Local name for the inviter (default: the name it gave itself).
    pub name: Option<String>,
}

/// `POST /v1/invitations` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InviteRequest {
    /// Validity in seconds (default 24 h).
    pub ttl_secs: Option<u64>,
}

/// `POST /v1/shares` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareCreateRequest {
    /// The directory to share (on the node's machine).
    pub path: String,
    /// The share's name (default: the directory's name).
    pub name: Option<String>,
}

/// `POST /v1/shares/{share}/invite` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareInviteRequest {
    /// The contact's name.
    pub contact: String,
    /// Invite as read-only (default read-write).
    #[serde(default)]
    pub read_only: bool,
}

/// `POST /v1/shares/{share}/accept` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharePathRequest {
    /// Where the folder goes: a new or empty directory.
    pub path: String,
}

/// `POST /v1/shares/{share}/role` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareRoleRequest {
    /// The member's contact name.
    pub contact: String,
    /// `read-write`, `read-only`, or `null` to remove the member.
    pub role: Option<String>,
}

/// `POST /v1/shares/{share}/restore` body and `versions` query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareRestoreRequest {
    /// Path in the share (where the file is, or was before deletion).
    pub path: String,
    /// Version number from `versions`; none to just undelete.
    pub version: Option<usize>,
}

/// Body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}

/// Unix seconds as RFC 3339 (UTC, seconds precision).
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix)).to_string()
}
