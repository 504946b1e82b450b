//! The `document` section of `spec/vectors/share.json` (spec/share.md):
//! signing messages, a signed share history, the authorisation of remote
//! changes, the storage of moves and versions in the document, the folder
//! read from it (display names, conflict copies), the tree's skip rules and
//! the names Hearth makes up.
//!
//! Without `HEARTH_WRITE_VECTORS=1` this only compares: every vector's inputs
//! go through the code in both directions and any difference fails, naming
//! the vector. With `HEARTH_WRITE_VECTORS=1` the section is regenerated from
//! the inputs defined in `generate` below and written into share.json, whose
//! other sections (the `/hearth/share/1` frames, owned by
//! `protocol/tests/share_vectors.rs`) are kept as they are. The frames carry
//! changes of this section, so regenerate this one first:
//!
//! ```text
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-crdt --test folder_vectors
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-protocol --test share_vectors
//! ```
//!
//! Members are identity.json's alice (owner), bob (read-write) and carol
//! (read-only), plus dave (seed `04…04`, never a member). Their peer ids are
//! ed25519 identity-multihash peer ids; signatures are plain ed25519 over the
//! signing message, verified with the key embedded in the author's peer id,
//! exactly as `node/src/share/keys.rs` does. Nothing here reads a clock or a
//! random source.

use std::path::PathBuf;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjType, ReadDoc, ScalarValue, ROOT};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use hearth_crdt::doc::{member_key, signing_message, Rejection, Role, ShareDoc, SignedChange, Signer, Verifier};
use hearth_crdt::folder::{date, Editor, Folder, Kind, Version};
use hearth_crdt::names::{conflict_name, numbered_name};
use hearth_crdt::tree::{Effect, EntryId, MoveOp, OpId, SkipReason, Tree};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const SHARE_JSON: &str = include_str!("../../spec/vectors/share.json");
const IDENTITY_JSON: &str = include_str!("../../spec/vectors/identity.json");
/// The section of share.json this file owns.
const SECTION: &str = "document";

/// 2026-11-22 01:11:21 UTC: the clock of the scenario.
const T0: i64 = 1_795_309_881;
const SHARE_ID: [u8; 16] =
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
const SHARE_NAME: &str = "Family";

// ----- plumbing ------------------------------------------------------------

fn write_mode() -> bool {
    std::env::var("HEARTH_WRITE_VECTORS").is_ok_and(|v| v == "1")
}

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors").join(name)
}

fn parse<T: DeserializeOwned>(what: &str, text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} does not parse: {e}"))
}

/// Writes `section` into share.json, keeping the other sections. The file is
/// written as a JSON value (keys sorted), so whichever test writes last, the
/// bytes are the same.
fn write_section(value: serde_json::Value) -> String {
    let path = vector_path("share.json");
    let mut root: serde_json::Map<String, serde_json::Value> = match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => parse("spec/vectors/share.json", &text),
        _ => serde_json::Map::new(),
    };
    root.insert(SECTION.to_owned(), value);
    let mut text = serde_json::to_string_pretty(&serde_json::Value::Object(root)).expect("serialises");
    text.push('\n');
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    text
}

/// In write mode: generates the section, writes it and returns it as a
/// reader of the file gets it. Otherwise: the section as embedded.
fn load_or_generate() -> DocumentSection {
    let text = if write_mode() {
        write_section(serde_json::to_value(generate()).expect("serialises"))
    } else {
        SHARE_JSON.to_owned()
    };
    let mut root: serde_json::Map<String, serde_json::Value> = parse("spec/vectors/share.json", &text);
    let section = root.remove(SECTION).unwrap_or_else(|| {
        panic!("spec/vectors/share.json has no {SECTION:?} section: regenerate with HEARTH_WRITE_VECTORS=1")
    });
    serde_json::from_value(section).unwrap_or_else(|e| panic!("share.json section {SECTION}: {e}"))
}

/// Fails with every mismatch of a list at once.
fn compare<T: PartialEq + Serialize>(section: &str, label: impl Fn(&T) -> String, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "share.json {section}: {} vectors, expected {}", got.len(), want.len());
    let failures: Vec<String> = got
        .iter()
        .zip(want)
        .filter(|(g, w)| g != w)
        .map(|(g, w)| {
            format!(
                "  vector {:?}:\n    file: {}\n    code: {}",
                label(w),
                serde_json::to_string(w).unwrap_or_default(),
                serde_json::to_string(g).unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "spec/vectors/share.json, {section}: {} vector(s) disagree with the code (if the change is intended, \
         regenerate with HEARTH_WRITE_VECTORS=1 and review the diff):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn entry(s: &str) -> EntryId {
    EntryId::from_bytes(unhex(s).try_into().expect("16-byte entry id"))
}

fn change_hash(s: &str) -> ChangeHash {
    ChangeHash::try_from(unhex(s).as_slice()).expect("32-byte change hash")
}

fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("encodes");
    out
}

fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> T {
    ciborium::from_reader(bytes).expect("decodes")
}

// ----- members ---------------------------------------------------------------

/// The protobuf-encoded ed25519 public key inside an identity multihash:
/// `00 24` (identity, 36 bytes) `08 01` (key type Ed25519) `12 20` (32 bytes).
const PEER_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

struct Key {
    name: &'static str,
    signing: SigningKey,
}

impl Key {
    fn new(name: &'static str, seed: u8) -> Key {
        Key { name, signing: SigningKey::from_bytes(&[seed; 32]) }
    }
}

impl Signer for Key {
    fn peer(&self) -> Vec<u8> {
        let mut peer = PEER_PREFIX.to_vec();
        peer.extend_from_slice(self.signing.verifying_key().as_bytes());
        peer
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signing.sign(message).to_bytes().to_vec()
    }
}

/// Verifies with the key embedded in the author's peer id.
struct PeerIds;

impl Verifier for PeerIds {
    fn verify(&self, peer: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let Some(key) = peer.strip_prefix(PEER_PREFIX.as_slice()) else { return false };
        let (Ok(key), Ok(sig)) = (<[u8; 32]>::try_from(key), <[u8; 64]>::try_from(signature)) else { return false };
        let Ok(key) = VerifyingKey::from_bytes(&key) else { return false };
        key.verify(message, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
    }
}

struct Cast {
    alice: Key,
    bob: Key,
    carol: Key,
    dave: Key,
}

#[derive(Deserialize)]
struct IdentityFile {
    identities: Vec<IdentityVector>,
}

#[derive(Deserialize)]
struct IdentityVector {
    seed: String,
    peer_id_bytes: String,
}

fn cast() -> Cast {
    let cast = Cast {
        alice: Key::new("alice", 1),
        bob: Key::new("bob", 2),
        carol: Key::new("carol", 3),
        dave: Key::new("dave", 4),
    };
    // The peer ids are identity.json's (its first three identities).
    let ids: IdentityFile = parse("spec/vectors/identity.json", IDENTITY_JSON);
    for (i, key) in [&cast.alice, &cast.bob, &cast.carol].into_iter().enumerate() {
        assert_eq!(ids.identities[i].seed, hex(key.signing.to_bytes()), "identity.json order");
        assert_eq!(ids.identities[i].peer_id_bytes, hex(key.peer()), "{}'s peer id", key.name);
    }
    cast
}

// ----- the section -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DocumentSection {
    description: String,
    /// `SIGNATURE_CONTEXT`, hex (it ends with a NUL byte).
    signature_context: String,
    signing: Vec<SigningVector>,
    members: Vec<MemberVector>,
    history: Vec<SignedVector>,
    authorisation: Vec<AuthCase>,
    folder: FolderScenario,
    tree: TreeScenario,
    dates: Vec<DateVector>,
    conflict_names: Vec<ConflictNameVector>,
    numbered_names: Vec<NumberedNameVector>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SigningVector {
    change_hash: String,
    message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MemberVector {
    name: String,
    seed: String,
    peer: String,
    /// Key in the `members` map.
    key: String,
}

/// A signed change as it travels, with what a receiver derives from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SignedVector {
    description: String,
    /// Peer id of the change's actor.
    author: String,
    /// The change's dependencies (change hashes).
    deps: Vec<String>,
    /// Automerge's change hash.
    hash: String,
    signing_message: String,
    /// Automerge binary change.
    change: String,
    signature: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AuthCase {
    description: String,
    /// How many changes of `history` the receiver holds before this one.
    base: usize,
    author: String,
    deps: Vec<String>,
    change: String,
    signature: String,
    /// `applied`, `pending`, or the rejection: `malformed`, `bad_signature`,
    /// `not_a_member`, `read_only`, `owner_only`, `forged_move`,
    /// `foreign_genesis`.
    result: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FolderScenario {
    description: String,
    /// Applied after `history[..2]`, in this order.
    changes: Vec<SignedVector>,
    /// `moves` of the resulting document, by key.
    moves: Vec<MoveVector>,
    /// Every value of `entries[<entry>].version`, winner first.
    versions: Vec<VersionVector>,
    /// What a member shows (and writes to disk), in path order.
    items: Vec<ItemVector>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MoveVector {
    key: String,
    lamport: u64,
    actor: String,
    entry: String,
    parent: String,
    name: String,
    cbor: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct VersionVector {
    entry: String,
    /// 0 for the winning value, then the losing ones in order.
    rank: usize,
    kind: String,
    content: String,
    size: u64,
    mtime_ms: i64,
    exec: bool,
    author: String,
    author_name: String,
    at: i64,
    manifest_len: u32,
    /// For a conflict copy kept as an entry of its own: the entry it
    /// conflicts with (hex), else empty.
    conflict_of: String,
    cbor: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ItemVector {
    path: String,
    entry: String,
    kind: String,
    /// `null` for an entry's winning version, else the loser's rank - 1.
    conflict: Option<usize>,
    author_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TreeScenario {
    description: String,
    ops: Vec<OpVector>,
    entries: Vec<PathVector>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpVector {
    lamport: u64,
    actor: String,
    entry: String,
    parent: String,
    name: String,
    /// `moved` or the skip reason: `reserved_entry`, `invalid_name`,
    /// `unknown_parent`, `cycle`.
    effect: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PathVector {
    entry: String,
    /// Display path below ROOT (or TRASH), `/`-joined.
    path: String,
    in_trash: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DateVector {
    unix: i64,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ConflictNameVector {
    name: String,
    member: String,
    date: String,
    expected: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NumberedNameVector {
    name: String,
    n: u64,
    expected: String,
}

// ----- computing outputs -----------------------------------------------------

fn rejection_kind(r: &Rejection) -> &'static str {
    match r {
        Rejection::Malformed(_) => "malformed",
        Rejection::BadSignature => "bad_signature",
        Rejection::NotAMember => "not_a_member",
        Rejection::ReadOnly => "read_only",
        Rejection::OwnerOnly(_) => "owner_only",
        Rejection::ForgedMove => "forged_move",
        Rejection::ForeignGenesis => "foreign_genesis",
    }
}

fn skip_kind(r: &SkipReason) -> &'static str {
    match r {
        SkipReason::ReservedEntry => "reserved_entry",
        SkipReason::InvalidName(_) => "invalid_name",
        SkipReason::UnknownParent => "unknown_parent",
        SkipReason::Cycle => "cycle",
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "file",
        Kind::Dir => "dir",
    }
}

fn signed_vector(description: &str, signed: &SignedChange) -> SignedVector {
    let (author, deps, hash) = match Change::try_from(signed.change.as_slice()) {
        Ok(c) => (hex(c.actor_id().to_bytes()), c.deps().iter().map(hex).collect(), c.hash()),
        Err(_) => (String::new(), Vec::new(), ChangeHash([0; 32])),
    };
    SignedVector {
        description: description.to_owned(),
        author,
        deps,
        hash: hex(hash.0),
        signing_message: hex(signing_message(&hash)),
        change: hex(&signed.change),
        signature: hex(&signed.signature),
    }
}

fn signed_of(v: &SignedVector) -> SignedChange {
    SignedChange { change: unhex(&v.change), signature: unhex(&v.signature) }
}

/// A replica of `local` holding the first `base` changes of `history`.
fn replica(cast: &Cast, local: &Key, history: &[SignedVector], base: usize) -> ShareDoc {
    let mut doc = ShareDoc::join(&cast.alice.peer(), &local.peer());
    let report = doc.receive(history[..base].iter().map(signed_of).collect(), &PeerIds);
    assert_eq!(report.applied.len(), base, "history[..{base}] applies: {report:?}");
    doc
}

/// What a receiver holding `history[..base]` does with one change.
fn auth_result(cast: &Cast, history: &[SignedVector], base: usize, change: &SignedChange) -> String {
    let mut doc = replica(cast, &cast.carol, history, base);
    let report = doc.receive(vec![change.clone()], &PeerIds);
    match (report.applied.as_slice(), report.rejected.as_slice(), report.pending) {
        ([_], [], 0) => "applied".into(),
        ([], [(_, _, rejection)], 0) => rejection_kind(rejection).into(),
        ([], [], 1) => "pending".into(),
        _ => panic!("unexpected report {report:?}"),
    }
}

fn folder_outputs(doc: &ShareDoc) -> (Vec<MoveVector>, Vec<VersionVector>, Vec<ItemVector>) {
    let folder = Folder::from_doc(doc);
    assert_eq!(folder.skipped_values(), 0);
    let moves = doc
        .moves()
        .into_iter()
        .map(|(key, bytes)| {
            let op: MoveOp = from_cbor(&bytes);
            MoveVector {
                key,
                lamport: op.id.lamport,
                actor: hex(&op.id.actor),
                entry: hex(op.entry.as_bytes()),
                parent: hex(op.parent.as_bytes()),
                name: op.name,
                cbor: hex(&bytes),
            }
        })
        .collect();
    let mut versions = Vec::new();
    for e in folder.tree().entries() {
        for (rank, value) in doc.entry_field(e.as_bytes(), "version").into_iter().enumerate() {
            let ScalarValue::Bytes(bytes) = value else { panic!("a version is bytes") };
            let v: Version = from_cbor(&bytes);
            versions.push(VersionVector {
                entry: hex(e.as_bytes()),
                rank,
                kind: kind_name(v.kind).into(),
                content: hex(&v.content),
                size: v.size,
                mtime_ms: v.mtime_ms,
                exec: v.exec,
                author: hex(&v.author),
                author_name: v.author_name,
                at: v.at,
                manifest_len: v.manifest_len,
                conflict_of: hex(&v.conflict_of),
                cbor: hex(&bytes),
            });
        }
    }
    let items = folder
        .items()
        .into_iter()
        .map(|i| ItemVector {
            path: i.path.join("/"),
            entry: hex(i.entry.as_bytes()),
            kind: kind_name(i.version.kind).into(),
            conflict: i.conflict,
            author_name: i.version.author_name.clone(),
        })
        .collect();
    (moves, versions, items)
}

fn tree_effects(ops: &[OpVector]) -> (Vec<String>, Vec<PathVector>) {
    let ops: Vec<MoveOp> = ops.iter().map(op_of).collect();
    let tree = Tree::from_ops(ops.clone());
    tree.check_invariants().expect("tree invariants");
    let effects = ops
        .iter()
        .map(|op| match tree.effect_of(&op.id).expect("logged") {
            Effect::Moved => "moved".to_owned(),
            Effect::Skipped(reason) => skip_kind(&reason).to_owned(),
        })
        .collect();
    let paths = tree
        .entries()
        .map(|e| PathVector {
            entry: hex(e.as_bytes()),
            path: tree.display_path(e).expect("entry has a path").join("/"),
            in_trash: tree.is_in_trash(e),
        })
        .collect();
    (effects, paths)
}

fn op_of(v: &OpVector) -> MoveOp {
    MoveOp {
        id: OpId::new(v.lamport, unhex(&v.actor)),
        entry: entry(&v.entry),
        parent: entry(&v.parent),
        name: v.name.clone(),
    }
}

// ----- generation ----------------------------------------------------------------

/// A change made outside `ShareDoc` (as a modified node would), on top of
/// `heads` of `base`, signed by `signer`.
fn forge(
    base: &mut ShareDoc,
    heads: &[ChangeHash],
    author: &Key,
    signer: &Key,
    time: i64,
    edit: impl FnOnce(&mut AutoCommit),
) -> SignedChange {
    let mut raw = base.automerge().fork_at(heads).expect("fork");
    raw.set_actor(ActorId::from(author.peer()));
    edit(&mut raw);
    let hash = raw.commit_with(CommitOptions::default().with_time(time)).expect("a change");
    let change = raw.get_change_by_hash(&hash).expect("change");
    SignedChange { change: change.raw_bytes().to_vec(), signature: signer.sign(&signing_message(&hash)) }
}

fn root_map(doc: &AutoCommit, key: &str) -> automerge::ObjId {
    match doc.get(ROOT, key).expect("get") {
        Some((automerge::Value::Object(ObjType::Map), id)) => id,
        other => panic!("no {key} map: {other:?}"),
    }
}

fn file_version(key: &Key, content: u8, size: u64, at: i64) -> Version {
    Version {
        kind: Kind::File,
        content: vec![content; 32],
        size,
        mtime_ms: at * 1000 + 250,
        exec: false,
        author: key.peer(),
        author_name: key.name.to_owned(),
        at,
        manifest_len: 49,
        conflict_of: Vec::new(),
    }
}

fn dir_version(key: &Key, at: i64) -> Version {
    Version {
        kind: Kind::Dir,
        content: Vec::new(),
        size: 0,
        mtime_ms: 0,
        exec: false,
        author: key.peer(),
        author_name: key.name.to_owned(),
        at,
        manifest_len: 0,
        conflict_of: Vec::new(),
    }
}

const PHOTOS: [u8; 16] = [0x11; 16];
const BEACH: [u8; 16] = [0x22; 16];
const NOTES: [u8; 16] = [0x33; 16];
const NOTES_UPPER: [u8; 16] = [0x44; 16];
const NOTES_COPY: [u8; 16] = [0x55; 16];

/// Edits `doc` as `key` through the folder editor, commits, and records the
/// signed change in `changes`.
fn step(
    changes: &mut Vec<SignedVector>,
    description: &str,
    doc: &mut ShareDoc,
    key: &Key,
    at: i64,
    edit: impl FnOnce(&mut Editor),
) -> SignedChange {
    let folder = Folder::from_doc(doc);
    let mut editor = Editor::new(doc, &folder, &key.peer());
    edit(&mut editor);
    let signed = doc.commit(key, at).expect("allowed").expect("a change");
    changes.push(signed_vector(description, &signed));
    signed
}

fn generate() -> DocumentSection {
    let c = cast();
    let members = [&c.alice, &c.bob, &c.carol, &c.dave]
        .into_iter()
        .map(|k| MemberVector {
            name: k.name.into(),
            seed: hex(k.signing.to_bytes()),
            peer: hex(k.peer()),
            key: member_key(&k.peer()),
        })
        .collect();

    // History: alice creates the share, makes bob read-write and carol
    // read-only, later removes bob.
    let (mut a, genesis) = ShareDoc::create(&SHARE_ID, SHARE_NAME, &c.alice, T0).expect("create");
    a.set_role(&c.bob.peer(), Some(Role::ReadWrite)).expect("role");
    a.set_role(&c.carol.peer(), Some(Role::ReadOnly)).expect("role");
    let roles = a.commit(&c.alice, T0 + 60).expect("commit").expect("a change");
    let after_roles = a.heads();
    a.set_role(&c.bob.peer(), None).expect("remove");
    let removal = a.commit(&c.alice, T0 + 3600).expect("commit").expect("a change");
    let after_removal = a.heads();
    let history = vec![
        signed_vector(
            "alice creates the share: meta {id, name, owner}, members {alice: owner}, moves {}, entries {}",
            &genesis,
        ),
        signed_vector("alice makes bob read-write and carol read-only", &roles),
        signed_vector("alice removes bob (members[bob] = \"removed\")", &removal),
    ];

    // Authorisation cases.
    let mut cases = Vec::new();
    let mut case = |description: &str, base: usize, signed: SignedChange, history: &[SignedVector]| {
        let v = signed_vector(description, &signed);
        cases.push(AuthCase {
            description: description.into(),
            base,
            result: auth_result(&c, history, base, &signed),
            author: v.author,
            deps: v.deps,
            change: v.change,
            signature: v.signature,
        });
    };
    let entry_edit = |doc: &mut AutoCommit| {
        let entries = root_map(doc, "entries");
        let obj = doc.put_object(&entries, hex(NOTES), ObjType::Map).expect("put");
        doc.put(&obj, "version", ScalarValue::Bytes(vec![0xa0])).expect("put");
    };
    let bob_edit = forge(&mut a, &after_roles, &c.bob, &c.bob, T0 + 120, entry_edit);
    case("bob (read-write) writes an entry: accepted", 2, bob_edit.clone(), &history);
    case(
        "bob's same change, received before the change that made him a member: held back",
        1,
        bob_edit.clone(),
        &history,
    );
    case(
        "bob's same change, concurrent with his removal (its dependencies predate it): accepted",
        3,
        bob_edit,
        &history,
    );
    case(
        "bob writes an entry after his removal (its dependencies include it): not a member",
        3,
        forge(&mut a, &after_removal, &c.bob, &c.bob, T0 + 4000, entry_edit),
        &history,
    );
    case(
        "carol (read-only) writes an entry: read-only",
        2,
        forge(&mut a, &after_roles, &c.carol, &c.carol, T0 + 130, entry_edit),
        &history,
    );
    case(
        "dave (never a member) writes an entry: not a member",
        2,
        forge(&mut a, &after_roles, &c.dave, &c.dave, T0 + 140, entry_edit),
        &history,
    );
    case(
        "bob's change signed by carol: bad signature",
        2,
        forge(&mut a, &after_roles, &c.bob, &c.carol, T0 + 150, entry_edit),
        &history,
    );
    case(
        "bob makes himself owner in members: owner only",
        2,
        forge(&mut a, &after_roles, &c.bob, &c.bob, T0 + 160, |doc| {
            let members = root_map(doc, "members");
            doc.put(&members, member_key(&c.bob.peer()), "owner").expect("put");
        }),
        &history,
    );
    case(
        "bob renames the share in meta: owner only",
        2,
        forge(&mut a, &after_roles, &c.bob, &c.bob, T0 + 170, |doc| {
            let meta = root_map(doc, "meta");
            doc.put(&meta, "name", "Mine").expect("put");
        }),
        &history,
    );
    case(
        "bob adds a root key: owner only",
        2,
        forge(&mut a, &after_roles, &c.bob, &c.bob, T0 + 180, |doc| {
            doc.put(ROOT, "extra", "x").expect("put");
        }),
        &history,
    );
    case(
        "bob writes a move op under a key naming alice as its actor: forged move",
        2,
        forge(&mut a, &after_roles, &c.bob, &c.bob, T0 + 190, |doc| {
            let moves = root_map(doc, "moves");
            let op = MoveOp {
                id: OpId::new(1, c.alice.peer()),
                entry: EntryId::from_bytes(NOTES),
                parent: EntryId::ROOT,
                name: "notes.txt".into(),
            };
            doc.put(&moves, format!("{:016x}-{}", 1, hex(c.alice.peer())), ScalarValue::Bytes(cbor(&op))).expect("put");
        }),
        &history,
    );
    case(
        "bob writes a move op under his own key: accepted",
        2,
        forge(&mut a, &after_roles, &c.bob, &c.bob, T0 + 200, |doc| {
            let moves = root_map(doc, "moves");
            let op = MoveOp {
                id: OpId::new(1, c.bob.peer()),
                entry: EntryId::from_bytes(NOTES),
                parent: EntryId::ROOT,
                name: "notes.txt".into(),
            };
            doc.put(&moves, format!("{:016x}-{}", 1, hex(c.bob.peer())), ScalarValue::Bytes(cbor(&op))).expect("put");
        }),
        &history,
    );
    case(
        "a first change (no dependencies) made by bob instead of the owner: foreign genesis",
        0,
        {
            let mut raw = AutoCommit::new().with_actor(ActorId::from(c.bob.peer()));
            let meta = raw.put_object(ROOT, "meta", ObjType::Map).expect("put");
            raw.put(&meta, "id", ScalarValue::Bytes(SHARE_ID.to_vec())).expect("put");
            raw.put(&meta, "owner", ScalarValue::Bytes(c.bob.peer())).expect("put");
            let hash = raw.commit_with(CommitOptions::default().with_time(T0)).expect("a change");
            let change = raw.get_change_by_hash(&hash).expect("change");
            SignedChange { change: change.raw_bytes().to_vec(), signature: c.bob.sign(&signing_message(&hash)) }
        },
        &history,
    );
    case(
        "bytes that are not an Automerge change: malformed",
        2,
        SignedChange { change: b"not a change".to_vec(), signature: vec![0; 64] },
        &history,
    );

    // The folder scenario, on top of history[..2].
    let mut bob = replica(&c, &c.bob, &history, 2);
    let mut changes = Vec::new();
    let t = T0 + 600;
    let created = step(&mut changes, "bob creates Photos/, Photos/beach.jpg and notes.txt", &mut bob, &c.bob, t, |e| {
        e.create(EntryId::from_bytes(PHOTOS), EntryId::ROOT, "Photos", &dir_version(&c.bob, t)).expect("create");
        e.create(
            EntryId::from_bytes(BEACH),
            EntryId::from_bytes(PHOTOS),
            "beach.jpg",
            &file_version(&c.bob, 0xb1, 200_000, t),
        )
        .expect("create");
        e.create(EntryId::from_bytes(NOTES), EntryId::ROOT, "notes.txt", &file_version(&c.bob, 0xc1, 1_000, t))
            .expect("create");
    });
    let mut alice = replica(&c, &c.alice, &history, 2);
    assert_eq!(alice.receive(vec![created], &PeerIds).applied.len(), 1);
    let t1 = T0 + 1200;
    let alice_edit = step(&mut changes, "alice edits notes.txt", &mut alice, &c.alice, t1, |e| {
        e.set_version(EntryId::from_bytes(NOTES), &file_version(&c.alice, 0xc2, 1_100, t1)).expect("edit");
    });
    let t2 = T0 + 1260;
    let bob_edit = step(
        &mut changes,
        "bob edits notes.txt concurrently (he has not seen alice's edit)",
        &mut bob,
        &c.bob,
        t2,
        |e| {
            e.set_version(EntryId::from_bytes(NOTES), &file_version(&c.bob, 0xc3, 1_200, t2)).expect("edit");
        },
    );
    assert_eq!(alice.receive(vec![bob_edit], &PeerIds).applied.len(), 1);
    assert_eq!(bob.receive(vec![alice_edit], &PeerIds).applied.len(), 1);
    let t3 = T0 + 1800;
    step(&mut changes, "alice creates Notes.TXT, whose name collides with notes.txt", &mut alice, &c.alice, t3, |e| {
        e.create(EntryId::from_bytes(NOTES_UPPER), EntryId::ROOT, "Notes.TXT", &file_version(&c.alice, 0xd1, 10, t3))
            .expect("create");
    });
    let t4 = T0 + 1900;
    step(&mut changes, "alice deletes Photos/beach.jpg (moves it to the trash)", &mut alice, &c.alice, t4, |e| {
        e.delete(EntryId::from_bytes(BEACH), "beach.jpg").expect("delete");
    });
    let t5 = T0 + 2400;
    let copy = step(
        &mut changes,
        "bob's node finds notes.txt edited on its disk after alice's edit arrived: the local version is kept as a \
         new entry beside it, named as a conflict copy and marked conflict_of notes.txt",
        &mut bob,
        &c.bob,
        t5,
        |e| {
            let mut v = file_version(&c.bob, 0xc4, 1_300, t5);
            v.conflict_of = NOTES.to_vec();
            e.create(EntryId::from_bytes(NOTES_COPY), EntryId::ROOT, &conflict_name("notes.txt", "bob", &date(t5)), &v)
                .expect("create");
        },
    );
    assert_eq!(alice.receive(vec![copy], &PeerIds).applied.len(), 1);
    let (moves, versions, items) = folder_outputs(&alice);
    let folder = FolderScenario {
        description: "bob and alice edit the share after history[..2]; receiving `changes` in order gives these \
                      moves, versions (winner first) and items (paths to show and write)"
            .into(),
        changes,
        moves,
        versions,
        items,
    };

    // The tree's rules on bare ops.
    let (x, y) = (hex(c.bob.peer()), hex(c.alice.peer()));
    let op = |lamport: u64, actor: &str, entry: &str, parent: &str, name: &str| OpVector {
        lamport,
        actor: actor.to_owned(),
        entry: entry.to_owned(),
        parent: parent.to_owned(),
        name: name.to_owned(),
        effect: String::new(),
    };
    let (root, trash) = (hex(EntryId::ROOT.as_bytes()), hex(EntryId::TRASH.as_bytes()));
    let (e1, e2, e3, e4, e5, e6) =
        (hex([0x01; 16]), hex([0x02; 16]), hex([0x03; 16]), hex([0x04; 16]), hex([0x05; 16]), hex([0x06; 16]));
    let mut ops = vec![
        op(1, &x, &e1, &root, "A"),
        op(2, &x, &e2, &e1, "B"),
        op(3, &y, &e1, &e2, "A"),
        op(4, &x, &e3, &e6, "orphan.txt"),
        op(5, &x, &root, &e1, "root"),
        op(6, &x, &e4, &root, "nul.txt"),
        op(7, &x, &e4, &root, "photo.jpg"),
        op(8, &y, &e5, &root, "Photo.JPG"),
        op(9, &x, &e6, &root, "photo (2).jpg"),
        op(10, &y, &e2, &trash, "B"),
        op(10, &x, &e3, &e2, "late.txt"),
    ];
    let (effects, entries) = tree_effects(&ops);
    for (o, effect) in ops.iter_mut().zip(effects) {
        o.effect = effect;
    }
    let tree = TreeScenario {
        description: "ops folded in (lamport, actor) order from the empty tree: effect of each op and the display \
                      path of every entry"
            .into(),
        ops,
        entries,
    };

    let dates =
        [0, T0, 951_782_400, 1_709_251_199, -1, 4_102_444_800].map(|unix| DateVector { unix, text: date(unix) });
    let long = "x".repeat(250);
    let conflict_inputs: Vec<(String, &str, String)> = vec![
        ("notes.txt".into(), "bob", date(T0 + 1260)),
        (".bashrc".into(), "bob", date(T0)),
        ("archive.tar.gz".into(), "Grand-père", date(T0)),
        ("Makefile".into(), "bob", date(T0)),
        ("Mr. Smith".into(), "bob", date(T0)),
        ("notes.txt".into(), " a/b\\c\n. ", date(T0)),
        ("notes.txt".into(), "", String::new()),
        (format!("{long}.txt"), "bob", date(T0)),
    ];
    let conflict_names = conflict_inputs
        .into_iter()
        .map(|(name, member, d)| ConflictNameVector {
            expected: conflict_name(&name, member, &d),
            name,
            member: member.into(),
            date: d,
        })
        .collect();
    let numbered_names = [("photo.jpg", 2), (".bashrc", 3), ("a.tar.gz", 2), ("Makefile", 10), ("Mr. Smith", 2)]
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .chain([(format!("{long}.txt"), 2)])
        .map(|(name, n)| NumberedNameVector { expected: numbered_name(&name, n), name, n })
        .collect();

    DocumentSection {
        description: "spec/share.md: the share document. Members are identity.json's alice (owner), bob and \
                      carol, and dave (seed 04..04, never a member); peer ids are ed25519 identity multihashes and \
                      a change's signature is ed25519 over its signing message, verified with the key inside the \
                      author's peer id. Generated by crdt/tests/folder_vectors.rs."
            .into(),
        signature_context: hex(hearth_crdt::doc::SIGNATURE_CONTEXT),
        signing: [[0u8; 32], std::array::from_fn(|i| i as u8)]
            .into_iter()
            .map(|h| SigningVector { change_hash: hex(h), message: hex(signing_message(&ChangeHash(h))) })
            .collect(),
        members,
        history,
        authorisation: cases,
        folder,
        tree,
        dates: dates.to_vec(),
        conflict_names,
        numbered_names,
    }
}

// ----- the test ------------------------------------------------------------------

#[test]
fn document_vectors() {
    let file = load_or_generate();
    let c = cast();

    // Signing messages.
    assert_eq!(unhex(&file.signature_context), b"hearth share change v1\0");
    let fresh: Vec<SigningVector> = file
        .signing
        .iter()
        .map(|v| SigningVector { message: hex(signing_message(&change_hash(&v.change_hash))), ..v.clone() })
        .collect();
    compare("signing", |v| v.change_hash.clone(), &fresh, &file.signing);

    // Members.
    let fresh: Vec<MemberVector> = [&c.alice, &c.bob, &c.carol, &c.dave]
        .into_iter()
        .map(|k| MemberVector {
            name: k.name.into(),
            seed: hex(k.signing.to_bytes()),
            peer: hex(k.peer()),
            key: member_key(&k.peer()),
        })
        .collect();
    compare("members", |v| v.name.clone(), &fresh, &file.members);

    // History: decode direction (hash, deps, author, signature) and the
    // document it builds.
    let fresh: Vec<SignedVector> = file.history.iter().map(|v| signed_vector(&v.description, &signed_of(v))).collect();
    compare("history", |v| v.description.clone(), &fresh, &file.history);
    for v in &file.history {
        assert!(PeerIds.verify(&unhex(&v.author), &unhex(&v.signing_message), &unhex(&v.signature)));
        assert_eq!(v.signing_message, hex(signing_message(&change_hash(&v.hash))));
    }
    let mut doc = replica(&c, &c.carol, &file.history, file.history.len());
    assert_eq!(doc.role_of(&c.alice.peer()), Some(Role::Owner));
    assert_eq!(doc.role_of(&c.bob.peer()), None, "removed");
    assert_eq!(doc.role_of(&c.carol.peer()), Some(Role::ReadOnly));
    let raw = doc.automerge();
    let keys: Vec<String> = raw.keys(ROOT).collect();
    assert_eq!(keys, ["entries", "members", "meta", "moves"]);
    let meta = root_map(raw, "meta");
    for (key, value) in [
        ("id", ScalarValue::Bytes(SHARE_ID.to_vec())),
        ("name", ScalarValue::Str(SHARE_NAME.into())),
        ("owner", ScalarValue::Bytes(c.alice.peer())),
    ] {
        match raw.get(&meta, key).expect("get") {
            Some((automerge::Value::Scalar(s), _)) => assert_eq!(s.into_owned(), value, "meta.{key}"),
            other => panic!("meta.{key} is {other:?}"),
        }
    }
    // Encode direction: the owner's node makes the same first change.
    let (_, genesis) = ShareDoc::create(&SHARE_ID, SHARE_NAME, &c.alice, T0).expect("create");
    assert_eq!(hex(&genesis.change), file.history[0].change, "history[0] is ShareDoc::create's first change");
    assert_eq!(hex(&genesis.signature), file.history[0].signature);

    // Authorisation.
    let fresh: Vec<AuthCase> = file
        .authorisation
        .iter()
        .map(|v| {
            let signed = SignedChange { change: unhex(&v.change), signature: unhex(&v.signature) };
            AuthCase { result: auth_result(&c, &file.history, v.base, &signed), ..v.clone() }
        })
        .collect();
    compare("authorisation", |v| v.description.clone(), &fresh, &file.authorisation);
    for result in [
        "applied",
        "pending",
        "bad_signature",
        "not_a_member",
        "read_only",
        "owner_only",
        "forged_move",
        "foreign_genesis",
        "malformed",
    ] {
        assert!(file.authorisation.iter().any(|v| v.result == result), "no authorisation case with result {result}");
    }

    // Folder: apply the changes, read moves, versions and items back.
    let mut doc = replica(&c, &c.carol, &file.history, 2);
    let report = doc.receive(file.folder.changes.iter().map(signed_of).collect(), &PeerIds);
    assert_eq!(report.applied.len(), file.folder.changes.len(), "{report:?}");
    let (moves, versions, items) = folder_outputs(&doc);
    compare("folder.moves", |v| v.key.clone(), &moves, &file.folder.moves);
    compare("folder.versions", |v| format!("{} #{}", v.entry, v.rank), &versions, &file.folder.versions);
    compare("folder.items", |v| v.path.clone(), &items, &file.folder.items);
    // Encode direction of the stored values, and the key rule.
    for m in &file.folder.moves {
        let op = MoveOp {
            id: OpId::new(m.lamport, unhex(&m.actor)),
            entry: entry(&m.entry),
            parent: entry(&m.parent),
            name: m.name.clone(),
        };
        assert_eq!(hex(cbor(&op)), m.cbor, "move {}", m.key);
        assert_eq!(m.key, format!("{:016x}-{}", m.lamport, m.actor), "move key rule");
    }
    for v in &file.folder.versions {
        let version = Version {
            kind: if v.kind == "file" { Kind::File } else { Kind::Dir },
            content: unhex(&v.content),
            size: v.size,
            mtime_ms: v.mtime_ms,
            exec: v.exec,
            author: unhex(&v.author),
            author_name: v.author_name.clone(),
            at: v.at,
            manifest_len: v.manifest_len,
            conflict_of: unhex(&v.conflict_of),
        };
        assert_eq!(hex(cbor(&version)), v.cbor, "version of {}", v.entry);
    }
    // A version written before `manifest_len` and `conflict_of` existed still
    // decodes (as 0 and empty).
    #[derive(Serialize)]
    struct OldVersion<'a> {
        kind: &'a str,
        #[serde(with = "serde_bytes")]
        content: &'a [u8],
        size: u64,
        mtime_ms: i64,
        exec: bool,
        #[serde(with = "serde_bytes")]
        author: &'a [u8],
        author_name: &'a str,
        at: i64,
    }
    let old: Version = from_cbor(&cbor(&OldVersion {
        kind: "file",
        content: &[1; 32],
        size: 1,
        mtime_ms: 2,
        exec: true,
        author: b"x",
        author_name: "x",
        at: 3,
    }));
    assert_eq!((old.manifest_len, old.conflict_of.as_slice()), (0, &[][..]));
    // Conflict copies are named from the loser's data.
    for item in file.folder.items.iter().filter(|i| i.conflict.is_some()) {
        let loser = file
            .folder
            .versions
            .iter()
            .find(|v| v.entry == item.entry && Some(v.rank) == item.conflict.map(|c| c + 1))
            .expect("the loser of a conflict copy");
        let winner_path =
            &file.folder.items.iter().find(|i| i.entry == item.entry && i.conflict.is_none()).expect("winner").path;
        let (dir, name) = winner_path.rsplit_once('/').map_or(("", winner_path.as_str()), |(d, n)| (d, n));
        let expected = conflict_name(name, &loser.author_name, &date(loser.at));
        let expected = if dir.is_empty() { expected } else { format!("{dir}/{expected}") };
        assert_eq!(item.path, expected);
    }

    // Tree.
    let (effects, entries) = tree_effects(&file.tree.ops);
    let fresh: Vec<OpVector> =
        file.tree.ops.iter().zip(effects).map(|(o, effect)| OpVector { effect, ..o.clone() }).collect();
    compare("tree.ops", |o| format!("{}-{}", o.lamport, o.actor), &fresh, &file.tree.ops);
    compare("tree.entries", |p| p.entry.clone(), &entries, &file.tree.entries);

    // Names.
    let fresh: Vec<DateVector> = file.dates.iter().map(|d| DateVector { text: date(d.unix), ..d.clone() }).collect();
    compare("dates", |d| d.unix.to_string(), &fresh, &file.dates);
    let fresh: Vec<ConflictNameVector> = file
        .conflict_names
        .iter()
        .map(|v| ConflictNameVector { expected: conflict_name(&v.name, &v.member, &v.date), ..v.clone() })
        .collect();
    compare("conflict_names", |v| v.name.clone(), &fresh, &file.conflict_names);
    let fresh: Vec<NumberedNameVector> = file
        .numbered_names
        .iter()
        .map(|v| NumberedNameVector { expected: numbered_name(&v.name, v.n), ..v.clone() })
        .collect();
    compare("numbered_names", |v| v.name.clone(), &fresh, &file.numbered_names);
}
