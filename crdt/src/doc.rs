//! The share document: one Automerge document per shared folder, whose every
//! change is signed by its author and authorised against the membership
//! before it is applied or forwarded.
//!
//! Automerge alone trusts whatever it receives: a change names an actor id
//! that anyone could forge, and the stock sync protocol applies what arrives.
//! Here the actor id of a member *is* its peer id bytes, every change travels
//! as a [`SignedChange`] (an ed25519 signature over a domain-separated change
//! hash), and [`ShareDoc::receive`] accepts a change only if
//!
//! 1. its signature verifies against the key of its actor (the [`Verifier`]
//!    knows how to get a key from a peer id), and
//! 2. the author's role, read from the membership **as of the change's own
//!    dependencies**, allows every object the change touches:
//!    - root keys, `meta` and `members`: the owner only;
//!    - `moves` and `entries` (and anything created inside them): owner and
//!      read-write members; a move op's key must name its author as actor;
//!    - read-only members, removed members and strangers: nothing.
//!
//! Rejected changes are never applied and never forwarded; changes that
//! depend on a rejected (or not yet received) change wait in `pending` and
//! are reported. Because every replica evaluates the same rule on the same
//! causal history, every replica accepts the same set of changes.
//!
//! Schema (root map):
//!
//! | key | type | written by | content |
//! |---|---|---|---|
//! | `meta` | map of scalars | owner | `id` (bytes), `name` (text), `owner` (peer id bytes) |
//! | `members` | map text → text | owner | hex peer id → `owner` / `read-write` / `read-only` / `removed` |
//! | `moves` | map text → bytes | read-write | tree move ops, key `<lamport:016x>-<actor hex>` (see `tree`) |
//! | `entries` | map text → map | read-write | hex entry id → file metadata registers |
//!
//! Known limit: a member who has been removed can still author changes whose
//! dependencies predate the removal (backdating), which are then accepted as
//! concurrent with it. Closing that needs a causal "removal horizon" and is
//! left for the membership chapter of the share protocol.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjId as ExId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use serde::{Deserialize, Serialize};

pub use automerge::ChangeHash as Hash;

/// Domain separation for change signatures.
pub const SIGNATURE_CONTEXT: &[u8] = b"hearth share change v1\0";

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Reads only; none of its changes is accepted.
    ReadOnly,
    /// Edits files and directories.
    ReadWrite,
    /// Edits everything, including membership.
    Owner,
}

impl Role {
    /// The text stored in the `members` map.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::ReadWrite => "read-write",
            Role::Owner => "owner",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "read-only" => Some(Role::ReadOnly),
            "read-write" => Some(Role::ReadWrite),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// Signs changes made by the local member.
pub trait Signer {
    /// The local member's peer id bytes (also its Automerge actor id).
    fn peer(&self) -> Vec<u8>;
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

/// Verifies signatures of remote members.
pub trait Verifier {
    /// Whether `signature` over `message` was made by the key of `peer`.
    fn verify(&self, peer: &[u8], message: &[u8], signature: &[u8]) -> bool;
}

/// An Automerge change with its author's signature, as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChange {
    /// The change in Automerge's binary change format.
    #[serde(with = "serde_bytes")]
    pub change: Vec<u8>,
    /// Signature by the change's actor over [`signing_message`].
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// The bytes a member signs for a change.
pub fn signing_message(hash: &ChangeHash) -> Vec<u8> {
    let mut message = SIGNATURE_CONTEXT.to_vec();
    message.extend_from_slice(&hash.0);
    message
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a valid Automerge change.
    #[error("not a valid change: {0}")]
    Malformed(String),
    /// The signature does not match the author's key.
    #[error("bad signature: the change was not made by the member it names")]
    BadSignature,
    /// The author is not a member (or was removed) at the change's point.
    #[error("the author is not a member of this share")]
    NotAMember,
    /// The author may only read.
    #[error("the author is a read-only member")]
    ReadOnly,
    /// A read-write member touched what only the owner may change.
    #[error("only the owner may change {0}")]
    OwnerOnly(&'static str),
    /// A move op keyed with another member's actor, or one that overwrites
    /// or deletes an existing move (moves are immutable).
    #[error("a move op claims another author or rewrites an existing move")]
    ForgedMove,
    /// The first change of a share, not made by the expected owner.
    #[error("the share's first change is not the owner's")]
    ForeignGenesis,
}

/// What [`ShareDoc::receive`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveReport {
    /// Changes applied, in order.
    pub applied: Vec<ChangeHash>,
    /// Changes refused, with the author's peer id and the reason.
    pub rejected: Vec<(ChangeHash, Vec<u8>, Rejection)>,
    /// Changes held back because a dependency is missing (or was rejected).
    pub pending: usize,
}

/// Errors of local operations.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Automerge refused the operation.
    #[error("document error: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// The saved document could not be loaded.
    #[error("the saved share document is corrupted: {0}")]
    Load(String),
    /// The local member may not make this change.
    #[error("you may not do this in this share: {0}")]
    NotAllowed(Rejection),
    /// The document has no such structure (not initialised).
    #[error("the share document is missing its {0}; it has not been received yet")]
    Missing(&'static str),
}

/// A share document and the signatures of its changes.
pub struct ShareDoc {
    doc: AutoCommit,
    /// Signature of every applied change, to forward changes to others.
    signatures: BTreeMap<ChangeHash, Vec<u8>>,
    /// Received changes waiting for their dependencies.
    pending: BTreeMap<ChangeHash, (Change, Vec<u8>)>,
    /// The owner this document must have been created by.
    owner: Vec<u8>,
    /// Heads as of the last [`ShareDoc::save`] or [`ShareDoc::save_incremental`].
    saved_heads: Vec<ChangeHash>,
    /// Changes applied since then, whose signatures are not saved yet.
    unsaved: Vec<ChangeHash>,
    /// What changed since [`ShareDoc::track_touched`], from which heads.
    touched: Option<(Vec<ChangeHash>, Touched)>,
}

/// The parts of the folder (move ops and entries) that changed since
/// [`ShareDoc::track_touched`]: see [`ShareDoc::take_touched`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Keys of the `moves` map written.
    pub moves: std::collections::BTreeSet<String>,
    /// Entries (ids) whose map in `entries` was created or written.
    pub entries: std::collections::BTreeSet<Vec<u8>>,
    /// Something the keys cannot describe changed (the document's structure,
    /// or an object that could not be placed): read the folder whole.
    pub whole: bool,
}

/// What to append to a stored document: see [`ShareDoc::save_incremental`].
#[derive(Debug, Clone, Default)]
pub struct Increment {
    /// Automerge change chunks; a saved document followed by any number of
    /// these loads as the whole document.
    pub bytes: Vec<u8>,
    /// The signatures of those changes.
    pub signatures: Vec<(ChangeHash, Vec<u8>)>,
}

/// Lower-case hex, as used in document keys.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of a member in the `members` map.
pub fn member_key(peer: &[u8]) -> String {
    hex(peer)
}

impl ShareDoc {
    /// Creates a new share owned by `signer`. `now` is Unix seconds (advisory
    /// timestamp of the change). Returns the document and its first change.
    pub fn create(id: &[u8], name: &str, signer: &dyn Signer, now: i64) -> Result<(Self, SignedChange), DocError> {
        let owner = signer.peer();
        let mut doc = AutoCommit::new().with_actor(ActorId::from(owner.clone()));
        let meta = doc.put_object(ROOT, "meta", ObjType::Map)?;
        doc.put(&meta, "id", ScalarValue::Bytes(id.to_vec()))?;
        doc.put(&meta, "name", name)?;
        doc.put(&meta, "owner", ScalarValue::Bytes(owner.clone()))?;
        let members = doc.put_object(ROOT, "members", ObjType::Map)?;
        doc.put(&members, member_key(&owner), Role::Owner.as_str())?;
        doc.put_object(ROOT, "moves", ObjType::Map)?;
        doc.put_object(ROOT, "entries", ObjType::Map)?;
        let mut share = Self {
            doc,
            signatures: BTreeMap::new(),
            pending: BTreeMap::new(),
            owner,
            saved_heads: Vec::new(),
            unsaved: Vec::new(),
            touched: None,
        };
        let change = share.commit(signer, now)?.ok_or(DocError::Missing("first change"))?;
        Ok((share, change))
    }

    /// An empty document for a share created by `owner`, to be filled by
    /// [`ShareDoc::receive`]; `local` is the local member's peer id.
    pub fn join(owner: &[u8], local: &[u8]) -> Self {
        Self {
            doc: AutoCommit::new().with_actor(ActorId::from(local.to_vec())),
            signatures: BTreeMap::new(),
            pending: BTreeMap::new(),
            owner: owner.to_vec(),
            saved_heads: Vec::new(),
            unsaved: Vec::new(),
            touched: None,
        }
    }

    /// Saves the whole document (Automerge format) for [`ShareDoc::load`].
    /// Its signatures are [`ShareDoc::signatures`].
    pub fn save(&mut self) -> Vec<u8> {
        let bytes = self.doc.save();
        self.saved_heads = self.doc.get_heads();
        self.unsaved.clear();
        bytes
    }

    /// The changes applied since the last save, as bytes to append to the
    /// stored document (loading the concatenation gives the whole
    /// document), with their signatures. Costs the size of those changes,
    /// not of the document. Empty when nothing changed.
    pub fn save_incremental(&mut self) -> Increment {
        let bytes = self.doc.save_after(&self.saved_heads);
        self.saved_heads = self.doc.get_heads();
        let signatures = std::mem::take(&mut self.unsaved)
            .into_iter()
            .filter_map(|h| Some((h, self.signatures.get(&h)?.clone())))
            .collect();
        Increment { bytes, signatures }
    }

    /// Signatures of the applied changes, to persist beside the document.
    pub fn signatures(&self) -> &BTreeMap<ChangeHash, Vec<u8>> {
        &self.signatures
    }

    /// Loads a saved document; `local` is the local member's peer id.
    pub fn load(
        bytes: &[u8],
        signatures: BTreeMap<ChangeHash, Vec<u8>>,
        owner: &[u8],
        local: &[u8],
    ) -> Result<Self, DocError> {
        let mut doc = AutoCommit::load(bytes).map_err(|e| DocError::Load(e.to_string()))?;
        let saved_heads = doc.get_heads();
        Ok(Self {
            doc: doc.with_actor(ActorId::from(local.to_vec())),
            signatures,
            pending: BTreeMap::new(),
            owner: owner.to_vec(),
            saved_heads,
            unsaved: Vec::new(),
            touched: None,
        })
    }

    /// The underlying Automerge document (read access, e.g. for `share doc`).
    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    /// Starts (or restarts) recording which move ops and entries change from
    /// the current heads on, for [`ShareDoc::take_touched`].
    pub fn track_touched(&mut self) {
        let heads = self.doc.get_heads();
        self.touched = Some((heads, Touched::default()));
    }

    /// What changed since [`ShareDoc::track_touched`] or the last call, with
    /// the heads it starts from; tracking goes on from the current heads.
    /// `None` if nothing was tracked. Costs a few keys per edit, unlike
    /// Automerge's patches, which for a first sync of 100,000 files took
    /// hundreds of megabytes.
    pub fn take_touched(&mut self) -> Option<(Vec<ChangeHash>, Touched)> {
        let taken = self.touched.take()?;
        self.track_touched();
        Some(taken)
    }

    fn touch(&mut self, note: impl FnOnce(&mut Touched)) {
        if let Some((_, touched)) = &mut self.touched {
            note(touched);
        }
    }

    /// Records what a remote change just applied touched: its `ops`, the
    /// first of which has the id `start_op@author`.
    fn touch_remote(&mut self, start_op: u64, author: &ActorId, ops: Vec<automerge::legacy::Op>) {
        if self.touched.is_none() {
            return;
        }
        // Entry maps created by this change, by their op counter: the
        // fields written into them resolve without a lookup in the document.
        let mut made: std::collections::HashMap<u64, Vec<u8>> = std::collections::HashMap::new();
        let (moves, entries) = (self.root_obj("moves"), self.root_obj("entries"));
        let (meta, members) = (self.root_obj("meta"), self.root_obj("members"));
        let is = |id: &Option<ExId>, counter: u64, actor: &ActorId| matches!(id, Some(ExId::Id(c, a, _)) if *c == counter && a == actor);
        let mut found = Touched::default();
        for (i, op) in ops.into_iter().enumerate() {
            let key = match &op.key {
                automerge::legacy::Key::Map(k) => Some(k.to_string()),
                automerge::legacy::Key::Seq(_) => None,
            };
            let (counter, actor) = match &op.obj {
                automerge::legacy::ObjectId::Root => {
                    found.whole = true;
                    continue;
                }
                automerge::legacy::ObjectId::Id(automerge::legacy::OpId(counter, actor)) => (*counter, actor),
            };
            if is(&moves, counter, actor) {
                match key {
                    Some(k) => found.moves.insert(k),
                    None => std::mem::replace(&mut found.whole, true),
                };
            } else if is(&entries, counter, actor) {
                match key.as_deref().and_then(unhex) {
                    Some(entry) => {
                        if matches!(op.action, automerge::legacy::OpType::Make(_)) {
                            made.insert(start_op + i as u64, entry.clone());
                        }
                        found.entries.insert(entry)
                    }
                    None => std::mem::replace(&mut found.whole, true),
                };
            } else if is(&meta, counter, actor) || is(&members, counter, actor) {
                // Not part of the folder.
            } else {
                // A field of an entry's map: the entry is that map's key.
                let here = if actor == author { made.get(&counter).cloned() } else { None };
                match here.or_else(|| self.entry_of_object(counter, actor)) {
                    Some(entry) => found.entries.insert(entry),
                    None => std::mem::replace(&mut found.whole, true),
                };
            }
        }
        self.touch(|t| {
            t.moves.append(&mut found.moves);
            t.entries.append(&mut found.entries);
            t.whole |= found.whole;
        });
    }

    /// The entry whose map in `entries` is the object `counter@actor`.
    fn entry_of_object(&self, counter: u64, actor: &ActorId) -> Option<Vec<u8>> {
        let entries = self.root_obj("entries")?;
        let obj = self.doc.import_obj(&format!("{counter}@{actor}")).ok()?;
        let parent = self.doc.parents(&obj).ok()?.next()?;
        match (parent.obj == entries, parent.prop) {
            (true, automerge::Prop::Map(key)) => unhex(&key),
            _ => None,
        }
    }

    /// Current heads.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    fn root_obj(&self, key: &'static str) -> Option<ExId> {
        match self.doc.get(ROOT, key) {
            Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
            _ => None,
        }
    }

    /// The role of `peer` now, `None` if not (or no longer) a member.
    pub fn role_of(&self, peer: &[u8]) -> Option<Role> {
        let members = self.root_obj("members")?;
        match self.doc.get(&members, member_key(peer)) {
            Ok(Some((Value::Scalar(s), _))) => s.as_str().and_then(Role::parse),
            _ => None,
        }
    }

    /// Whether `peer` may sync this document with us: a member, or the
    /// share's owner while our document has not received its first change
    /// yet (a member that just accepted holds an empty document, in which
    /// nobody, not even the owner, has a role; refusing the owner there left
    /// it empty for good when its own first sync was lost).
    pub fn may_sync(&self, peer: &[u8]) -> bool {
        self.role_of(peer).is_some() || (peer == self.owner.as_slice() && self.root_obj("members").is_none())
    }

    /// Whether the owner removed `peer` (as opposed to `peer` not having
    /// been added yet, e.g. in a document still arriving in parts).
    pub fn was_removed(&self, peer: &[u8]) -> bool {
        let Some(members) = self.root_obj("members") else { return false };
        matches!(self.doc.get(&members, member_key(peer)), Ok(Some((Value::Scalar(s), _))) if s.as_str() == Some("removed"))
    }

    /// All members with a role, ordered by peer id.
    pub fn members(&self) -> Vec<(Vec<u8>, Role)> {
        let Some(members) = self.root_obj("members") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for key in self.doc.keys(&members) {
            if let (Some(peer), Some(role)) = (unhex(&key), self.role_of_key(&members, &key)) {
                out.push((peer, role));
            }
        }
        out
    }

    fn role_of_key(&self, members: &ExId, key: &str) -> Option<Role> {
        match self.doc.get(members, key) {
            Ok(Some((Value::Scalar(s), _))) => s.as_str().and_then(Role::parse),
            _ => None,
        }
    }

    /// The role of `peer` in the document as of `heads`.
    fn role_at(&self, peer: &[u8], heads: &[ChangeHash]) -> Option<Role> {
        let members = match self.doc.get_at(ROOT, "members", heads) {
            Ok(Some((Value::Object(ObjType::Map), id))) => id,
            _ => return None,
        };
        match self.doc.get_at(&members, member_key(peer), heads) {
            Ok(Some((Value::Scalar(s), _))) => s.as_str().and_then(Role::parse),
            _ => None,
        }
    }

    /// Sets (or, with `None`, removes) a member's role. Owner only.
    pub fn set_role(&mut self, peer: &[u8], role: Option<Role>) -> Result<(), DocError> {
        let members = self.root_obj("members").ok_or(DocError::Missing("member list"))?;
        let value = role.map(Role::as_str).unwrap_or("removed");
        self.doc.put(&members, member_key(peer), value)?;
        Ok(())
    }

    /// Records a tree move op under `key` (see `tree`), as raw bytes.
    pub fn put_move(&mut self, key: &str, op: Vec<u8>) -> Result<(), DocError> {
        let moves = self.root_obj("moves").ok_or(DocError::Missing("moves"))?;
        self.doc.put(&moves, key, ScalarValue::Bytes(op))?;
        self.touch(|t| {
            t.moves.insert(key.to_owned());
        });
        Ok(())
    }

    /// The move op stored under `key`, as raw bytes.
    pub fn move_at(&self, key: &str) -> Option<Vec<u8>> {
        let moves = self.root_obj("moves")?;
        match self.doc.get(&moves, key) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Bytes(b) => Some(b.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// All move ops, by key.
    pub fn moves(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        self.for_each_move(|key, bytes| out.push((key.to_owned(), bytes.to_vec())));
        out
    }

    /// Calls `f` with every move op (key, raw bytes), without copying them
    /// all first (100,000 of them are about 30 MB).
    pub fn for_each_move(&self, mut f: impl FnMut(&str, &[u8])) {
        let Some(moves) = self.root_obj("moves") else { return };
        for item in self.doc.map_range(&moves, ..) {
            if let automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(b)) = item.value {
                f(&item.key, &b);
            }
        }
    }

    /// Sets a metadata field of an entry (creating the entry's map if needed).
    pub fn put_entry_field(&mut self, entry: &[u8], field: &str, value: ScalarValue) -> Result<(), DocError> {
        let entries = self.root_obj("entries").ok_or(DocError::Missing("entries"))?;
        let key = hex(entry);
        let obj = match self.doc.get(&entries, &key)? {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => self.doc.put_object(&entries, &key, ObjType::Map)?,
        };
        self.doc.put(&obj, field, value)?;
        self.touch(|t| {
            t.entries.insert(entry.to_vec());
        });
        Ok(())
    }

    /// Every value of an entry's field: one when settled, several when members
    /// wrote it concurrently (a conflict), winner first, in an order every
    /// replica agrees on. If two members created the same entry concurrently
    /// (two maps under one key), the values of both maps are included.
    pub fn entry_field(&self, entry: &[u8], field: &str) -> Vec<ScalarValue> {
        let Some(entries) = self.root_obj("entries") else {
            return Vec::new();
        };
        let mut values = Vec::new();
        // get_all lists conflicting values with Automerge's winner last.
        for (value, obj) in self.doc.get_all(&entries, hex(entry)).unwrap_or_default().into_iter().rev() {
            if !matches!(value, Value::Object(ObjType::Map)) {
                continue;
            }
            for (v, _) in self.doc.get_all(&obj, field).unwrap_or_default().into_iter().rev() {
                if let Value::Scalar(s) = v {
                    values.push(s.into_owned());
                }
            }
        }
        values
    }

    /// Every value ever written to an entry's field, oldest first (the
    /// document's history, including values since superseded).
    pub fn field_history(&mut self, entry: &[u8], field: &str) -> Vec<ScalarValue> {
        let Some(entries) = self.root_obj("entries") else {
            return Vec::new();
        };
        let objects: Vec<ExId> = self
            .doc
            .get_all(&entries, hex(entry))
            .unwrap_or_default()
            .into_iter()
            .filter(|(v, _)| matches!(v, Value::Object(ObjType::Map)))
            .map(|(_, id)| id)
            .collect();
        let mut out = Vec::new();
        for change in self.doc.get_changes(&[]) {
            for op in change.decode().operations {
                let automerge::legacy::ObjectId::Id(automerge::legacy::OpId(counter, actor)) = &op.obj else {
                    continue;
                };
                let on_entry = objects.iter().any(|o| matches!(o, ExId::Id(c, a, _) if c == counter && a == actor));
                let on_field = matches!(&op.key, automerge::legacy::Key::Map(k) if k.as_str() == field);
                if let (true, true, automerge::legacy::OpType::Put(value)) = (on_entry, on_field, op.action) {
                    out.push(value);
                }
            }
        }
        out
    }

    /// When each of the move ops under `keys` was made: the timestamp (Unix
    /// seconds, as given to [`ShareDoc::commit`] by its author) of the
    /// change that holds it. Keys without a move op are left out. One pass
    /// over the changes' headers (no decoding), whatever the number of keys.
    pub fn move_times<'k>(&mut self, keys: impl IntoIterator<Item = &'k String>) -> BTreeMap<String, i64> {
        let mut by_actor: BTreeMap<Vec<u8>, Vec<(u64, u64, i64)>> = BTreeMap::new();
        for change in self.doc.get_changes(&[]) {
            let start = change.start_op().get();
            by_actor.entry(change.actor_id().to_bytes().to_vec()).or_default().push((
                start,
                start + change.len() as u64,
                change.timestamp(),
            ));
        }
        for ranges in by_actor.values_mut() {
            ranges.sort_unstable();
        }
        let Some(moves) = self.root_obj("moves") else { return BTreeMap::new() };
        let mut out = BTreeMap::new();
        for key in keys {
            let Ok(Some((_, ExId::Id(counter, actor, _)))) = self.doc.get(&moves, key.as_str()) else { continue };
            let Some(ranges) = by_actor.get(actor.to_bytes()) else { continue };
            let at = ranges.partition_point(|(start, _, _)| *start <= counter);
            if let Some((_, end, time)) = at.checked_sub(1).and_then(|i| ranges.get(i)) {
                if counter < *end {
                    out.insert(key.clone(), *time);
                }
            }
        }
        out
    }

    /// [`ShareDoc::field_history`] of every entry at once, in one pass over
    /// the history: entry id -> every value written to its `field`, oldest
    /// first.
    pub fn field_histories(&mut self, field: &str) -> BTreeMap<Vec<u8>, Vec<ScalarValue>> {
        let mut out: BTreeMap<Vec<u8>, Vec<ScalarValue>> = BTreeMap::new();
        self.for_each_field_value(field, |entry, value| out.entry(entry.to_vec()).or_default().push(value));
        out
    }

    /// Calls `f(entry id, value)` for every value ever written to an
    /// entry's `field`, oldest first, in one pass over the history, holding
    /// no more than a small map of the entries' objects (a retention pass
    /// over 100,000 files must not hold them all twice).
    pub fn for_each_field_value(&mut self, field: &str, mut f: impl FnMut(&[u8], ScalarValue)) {
        let Some(entries) = self.root_obj("entries") else { return };
        // Each entry's map(s), by object id (counter, actor number).
        let mut actors: Vec<Vec<u8>> = Vec::new();
        let mut objects: std::collections::HashMap<(u64, usize), [u8; 16]> = std::collections::HashMap::new();
        let keys: Vec<String> = self.doc.keys(&entries).collect();
        for key in keys {
            let Some(entry) = unhex(&key).and_then(|e| <[u8; 16]>::try_from(e).ok()) else { continue };
            for (value, id) in self.doc.get_all(&entries, key.as_str()).unwrap_or_default() {
                if let (Value::Object(ObjType::Map), ExId::Id(counter, actor, _)) = (value, id) {
                    let bytes = actor.to_bytes();
                    let n = match actors.iter().position(|a| a.as_slice() == bytes) {
                        Some(n) => n,
                        None => {
                            actors.push(bytes.to_vec());
                            actors.len() - 1
                        }
                    };
                    objects.insert((counter, n), entry);
                }
            }
        }
        for change in self.doc.get_changes(&[]) {
            for op in change.decode().operations {
                let automerge::legacy::ObjectId::Id(automerge::legacy::OpId(counter, actor)) = &op.obj else {
                    continue;
                };
                let on_field = matches!(&op.key, automerge::legacy::Key::Map(k) if k.as_str() == field);
                let (true, automerge::legacy::OpType::Put(value)) = (on_field, op.action) else { continue };
                let Some(n) = actors.iter().position(|a| a.as_slice() == actor.to_bytes()) else { continue };
                if let Some(entry) = objects.get(&(*counter, n)) {
                    f(entry, value);
                }
            }
        }
    }

    /// Commits pending local edits as one signed change. The local member must
    /// be allowed to make it (checked with the same rule as remote changes,
    /// so a read-only member's edit never leaves its node); a refused edit is
    /// rolled back.
    pub fn commit(&mut self, signer: &dyn Signer, now: i64) -> Result<Option<SignedChange>, DocError> {
        // (Reading the heads here would close the open transaction itself.)
        let Some(hash) = self.doc.commit_with(CommitOptions::default().with_time(now)) else {
            return Ok(None);
        };
        let change = self.doc.get_change_by_hash(&hash).ok_or(DocError::Missing("committed change"))?;
        if let Err(rejection) = self.authorise(&change) {
            // Roll back: rebuild the document at the heads before the edit,
            // which are the refused change's dependencies.
            let mut restored = self.doc.fork_at(change.deps())?;
            restored.set_actor(ActorId::from(signer.peer()));
            self.doc = restored;
            return Err(DocError::NotAllowed(rejection));
        }
        self.drop_patch_log();
        let signature = signer.sign(&signing_message(&hash));
        self.signatures.insert(hash, signature.clone());
        self.unsaved.push(hash);
        Ok(Some(SignedChange { change: change.raw_bytes().to_vec(), signature }))
    }

    /// Applies the remote changes that pass verification and authorisation
    /// (see the module documentation), in causal order, including changes
    /// held back earlier whose dependencies have now arrived.
    pub fn receive(&mut self, incoming: Vec<SignedChange>, verifier: &dyn Verifier) -> ReceiveReport {
        let mut report = ReceiveReport::default();
        for signed in incoming {
            let change = match Change::try_from(signed.change.as_slice()) {
                Ok(c) => c,
                Err(e) => {
                    report.rejected.push((ChangeHash([0; 32]), Vec::new(), Rejection::Malformed(e.to_string())));
                    continue;
                }
            };
            let hash = change.hash();
            if self.signatures.contains_key(&hash) || self.pending.contains_key(&hash) {
                continue; // already have it: duplicates are harmless
            }
            let author = change.actor_id().to_bytes().to_vec();
            if !verifier.verify(&author, &signing_message(&hash), &signed.signature) {
                report.rejected.push((hash, author, Rejection::BadSignature));
                continue;
            }
            self.pending.insert(hash, (change, signed.signature));
        }
        // Apply whatever has all its dependencies, until nothing moves.
        loop {
            let ready: Vec<ChangeHash> = self
                .pending
                .iter()
                .filter(|(_, (c, _))| c.deps().iter().all(|d| self.signatures.contains_key(d)))
                .map(|(h, _)| *h)
                .collect();
            if ready.is_empty() {
                break;
            }
            for hash in ready {
                let Some((change, signature)) = self.pending.remove(&hash) else { continue };
                let author = change.actor_id().to_bytes().to_vec();
                if let Err(rejection) = self.authorise(&change) {
                    report.rejected.push((hash, author, rejection));
                    continue;
                }
                // What it touches, read before Automerge takes the change.
                let ops = self
                    .touched
                    .is_some()
                    .then(|| (change.start_op().get(), change.actor_id().clone(), change.decode().operations));
                match self.doc.apply_changes([change]) {
                    Ok(()) => {
                        if let Some((start_op, actor, ops)) = ops {
                            self.touch_remote(start_op, &actor, ops);
                        }
                        self.signatures.insert(hash, signature);
                        self.unsaved.push(hash);
                        report.applied.push(hash);
                    }
                    Err(e) => report.rejected.push((hash, author, Rejection::Malformed(e.to_string()))),
                }
            }
        }
        report.pending = self.pending.len();
        self.drop_patch_log();
        report
    }

    /// Empties Automerge's patch log. Automerge 0.12 records an event per
    /// op applied or committed even while no one asked for patches (the log
    /// is inactive), and keeps them for the document's lifetime: 84 MB for
    /// a 100,000-file share received. Call only with no open transaction.
    fn drop_patch_log(&mut self) {
        self.doc.reset_diff_cursor();
    }

    /// The signed changes a peer whose heads are `their_heads` lacks. Heads we
    /// do not know are ignored (the peer has changes we lack; it will send
    /// them), which may resend a few changes the peer already has.
    pub fn changes_for(&mut self, their_heads: &[ChangeHash]) -> Vec<SignedChange> {
        self.changes_for_except(their_heads, &|_| false)
    }

    /// [`ShareDoc::changes_for`] without the changes for which `has` says
    /// the peer has them (e.g. it sent them to us), which their heads alone
    /// cannot tell while we lack some of their changes.
    pub fn changes_for_except(
        &mut self,
        their_heads: &[ChangeHash],
        has: &dyn Fn(&ChangeHash) -> bool,
    ) -> Vec<SignedChange> {
        self.missing_changes(their_heads, has).collect()
    }

    /// [`ShareDoc::changes_for_except`] one change at a time: a change's
    /// bytes are copied only when the iterator reaches it, so that a caller
    /// taking a bounded batch does not copy the whole history.
    pub fn missing_changes<'a>(
        &'a mut self,
        their_heads: &[ChangeHash],
        has: &'a dyn Fn(&ChangeHash) -> bool,
    ) -> impl Iterator<Item = SignedChange> + 'a {
        let known: Vec<ChangeHash> = their_heads.iter().filter(|h| self.signatures.contains_key(h)).copied().collect();
        let signatures = &self.signatures;
        self.doc.get_changes(&known).into_iter().filter(move |c| !has(&c.hash())).filter_map(move |c| {
            let signature = signatures.get(&c.hash())?.clone();
            Some(SignedChange { change: c.raw_bytes().to_vec(), signature })
        })
    }

    /// The authorisation rule of the module documentation, for one change
    /// whose dependencies are all applied.
    fn authorise(&self, change: &Change) -> Result<(), Rejection> {
        if crate::mutant::active(crate::mutant::Mutant::NoAuth) {
            return Ok(());
        }
        let author = change.actor_id().to_bytes().to_vec();
        if change.deps().is_empty() {
            // The first change of the share: only its owner makes it.
            return if author == self.owner { Ok(()) } else { Err(Rejection::ForeignGenesis) };
        }
        let role = self.role_at(&author, change.deps()).ok_or(Rejection::NotAMember)?;
        match role {
            Role::Owner => Ok(()),
            Role::ReadOnly => Err(Rejection::ReadOnly),
            Role::ReadWrite => {
                let deps = change.deps();
                let protected: Vec<(ExId, &'static str)> = ["meta", "members", "moves"]
                    .into_iter()
                    .filter_map(|k| match self.doc.get_at(ROOT, k, deps) {
                        Ok(Some((Value::Object(_), id))) => Some((id, k)),
                        _ => None,
                    })
                    .collect();
                let own_prefix = format!("-{}", hex(&author));
                for op in change.decode().operations {
                    let obj = match &op.obj {
                        automerge::legacy::ObjectId::Root => return Err(Rejection::OwnerOnly("the share's structure")),
                        automerge::legacy::ObjectId::Id(automerge::legacy::OpId(counter, actor)) => (*counter, actor),
                    };
                    let hit =
                        protected.iter().find(|(id, _)| matches!(id, ExId::Id(c, a, _) if *c == obj.0 && a == obj.1));
                    match hit {
                        Some((_, "meta")) => return Err(Rejection::OwnerOnly("the share's name and identity")),
                        Some((_, "members")) => return Err(Rejection::OwnerOnly("the membership")),
                        Some((_, _moves)) => {
                            // Move ops are immutable and keyed by their author:
                            // a new key of its own, never an overwrite or delete.
                            let key_ok = match &op.key {
                                automerge::legacy::Key::Map(k) => k.ends_with(&own_prefix),
                                automerge::legacy::Key::Seq(_) => false,
                            };
                            let insert_only =
                                op.pred.is_empty() && matches!(op.action, automerge::legacy::OpType::Put(_));
                            if !key_ok || !insert_only {
                                return Err(Rejection::ForgedMove);
                            }
                        }
                        None => {}
                    }
                }
                Ok(())
            }
        }
    }
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}
