//! The wire vectors of spec/share.md and spec/blob.md: the `/hearth/share/1`
//! frames and batch bound in `spec/vectors/share.json`, and the chunk
//! hashes, manifests and `/hearth/blob/1` frames in `spec/vectors/blob.json`.
//!
//! Without `HEARTH_WRITE_VECTORS=1` this only compares: every vector's inputs
//! go through the code in both directions (encode and decode, error kinds,
//! the server's answer) and any difference fails, naming the vector. With
//! `HEARTH_WRITE_VECTORS=1` the sections owned here are regenerated from the
//! inputs defined in the `generate_*` functions and written back; the other
//! sections are kept as they are:
//!
//! - share.json `document` is owned by `crdt/tests/folder_vectors.rs`. The
//!   Sync frames here carry its signed changes, so regenerate it first.
//! - blob.json `chunking` (FastCDC cut points) is owned by
//!   `node/tests/blob_vectors.rs`, which has the chunker. This file checks
//!   what it can without one: the chunks tile the input, respect the size
//!   bounds, hash to their names and make the listed manifest id.
//!
//! ```text
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-crdt --test folder_vectors
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-protocol --test share_vectors
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-node --test blob_vectors
//! ```
//!
//! Files are written as JSON values with sorted keys, so the bytes do not
//! depend on which test wrote last. Nothing here reads a clock or a random
//! source.

use std::path::PathBuf;

use hearth_protocol::blob::{self, answer, batch, ChunkHash, ChunkRef, Get, Manifest, ManifestError, Response};
use hearth_protocol::contact::NOT_A_CONTACT;
use hearth_protocol::frame;
use hearth_protocol::share::{self, bounded, ShareRequest, ShareResponse, WireChange};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use serde_json::{Map, Value};

const SHARE_JSON: &str = include_str!("../../spec/vectors/share.json");
const BLOB_JSON: &str = include_str!("../../spec/vectors/blob.json");

// ----- plumbing ------------------------------------------------------------

fn write_mode() -> bool {
    std::env::var("HEARTH_WRITE_VECTORS").is_ok_and(|v| v == "1")
}

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors").join(name)
}

fn parse<T: DeserializeOwned>(name: &str, text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("spec/vectors/{name} does not parse: {e}"))
}

/// The file as on disk (write mode: other tests may have just rewritten it)
/// or as embedded at compile time.
fn current(name: &str, embedded: &str) -> Map<String, Value> {
    if write_mode() {
        match std::fs::read_to_string(vector_path(name)) {
            Ok(text) if !text.trim().is_empty() => parse(name, &text),
            _ => Map::new(),
        }
    } else {
        parse(name, embedded)
    }
}

/// In write mode: generates the sections owned here, writes them into the
/// file beside the others, and returns what a reader of the file gets.
/// Otherwise: the file as embedded.
fn load_or_generate<T: Serialize + DeserializeOwned>(
    name: &str,
    embedded: &str,
    generate: impl FnOnce(&Map<String, Value>) -> T,
) -> (T, Map<String, Value>) {
    let mut root = current(name, embedded);
    if write_mode() {
        let Value::Object(owned) = serde_json::to_value(generate(&root)).expect("serialises") else {
            panic!("a vector file is an object")
        };
        root.extend(owned);
        let mut text = serde_json::to_string_pretty(&Value::Object(root)).expect("serialises");
        text.push('\n');
        std::fs::write(vector_path(name), &text).unwrap_or_else(|e| panic!("cannot write spec/vectors/{name}: {e}"));
        root = parse(name, &text);
    }
    let file =
        serde_json::from_value(Value::Object(root.clone())).unwrap_or_else(|e| panic!("spec/vectors/{name}: {e}"));
    (file, root)
}

/// Fails with every mismatch of a section at once.
fn compare<T: PartialEq + Serialize>(file: &str, section: &str, label: impl Fn(&T) -> String, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{file}: section {section} has {} vectors, expected {}", got.len(), want.len());
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
        "spec/vectors/{file}, section {section}: {} vector(s) disagree with the code (if the change is intended, \
         regenerate with HEARTH_WRITE_VECTORS=1 and review the diff):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn hash_of(s: &str) -> ChunkHash {
    ChunkHash(unhex(s).try_into().unwrap_or_else(|v: Vec<u8>| panic!("expected 32 bytes, got {}", v.len())))
}

/// A CBOR map with the keys in the given order (to build frames the types
/// would not produce).
fn cbor_frame(entries: Vec<(&str, ciborium::Value)>, limit: usize) -> Vec<u8> {
    let map = ciborium::Value::Map(entries.into_iter().map(|(k, v)| (ciborium::Value::Text(k.into()), v)).collect());
    frame::encode(&map, limit).expect("encodes")
}

/// `ok` or the frame error kind, and the canonical re-encoding for `ok`.
fn typed_outcome<T: Serialize + DeserializeOwned>(bytes: &[u8], limit: usize) -> (String, Option<String>) {
    match frame::decode::<T>(bytes, limit) {
        Ok(msg) => ("ok".into(), Some(hex(frame::encode(&msg, limit).expect("re-encodes")))),
        Err(e) => (e.kind().into(), None),
    }
}

// ===== share.json ===========================================================

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ShareFile {
    description: String,
    protocol: ShareProtocol,
    requests: Vec<RequestVector>,
    responses: Vec<ResponseVector>,
    malformed: Vec<MalformedVector>,
    batches: Vec<BatchVector>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ShareProtocol {
    name: String,
    max_message: usize,
    max_change_bytes: usize,
    share_id_len: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ChangeVector {
    change: String,
    signature: String,
}

/// A `ShareRequest`: `type` and the variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RequestVector {
    description: String,
    #[serde(rename = "type")]
    kind: String,
    share: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accept: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    heads: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<ChangeVector>>,
    frame: String,
}

/// A `ShareResponse`: `type` and the variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ResponseVector {
    description: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    heads: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<ChangeVector>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    more: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rejected: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    frame: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MalformedVector {
    description: String,
    /// `request` or `response`.
    message: String,
    frame: String,
    /// `ok` or a frame error kind.
    result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canonical: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BatchVector {
    description: String,
    /// `[change length, signature length]` of each change, in order.
    changes: Vec<[usize; 2]>,
    /// How many changes the first message carries.
    batch: usize,
    more: bool,
}

/// What share.json's `document` section provides to the frames.
#[derive(Debug, Clone, Deserialize)]
struct DocumentHistory {
    history: Vec<HistoryChange>,
}

#[derive(Debug, Clone, Deserialize)]
struct HistoryChange {
    hash: String,
    change: String,
    signature: String,
}

const SHARE_ID: &str = "00112233445566778899aabbccddeeff";

fn history(root: &Map<String, Value>) -> Vec<HistoryChange> {
    let document = root.get("document").cloned().unwrap_or_else(|| {
        panic!("share.json has no document section: run HEARTH_WRITE_VECTORS=1 cargo test -p hearth-crdt --test folder_vectors first")
    });
    let document: DocumentHistory =
        serde_json::from_value(document).unwrap_or_else(|e| panic!("share.json document section: {e}"));
    assert!(document.history.len() >= 2, "share.json document.history has the genesis and the roles change");
    document.history
}

fn wire_change(v: &ChangeVector) -> WireChange {
    WireChange { change: unhex(&v.change), signature: unhex(&v.signature) }
}

fn change_vector(h: &HistoryChange) -> ChangeVector {
    ChangeVector { change: h.change.clone(), signature: h.signature.clone() }
}

fn heads_of(heads: &[String]) -> Vec<ByteBuf> {
    heads.iter().map(|h| ByteBuf::from(unhex(h))).collect()
}

fn request_of(v: &RequestVector) -> ShareRequest {
    let share = unhex(&v.share);
    match v.kind.as_str() {
        "invite" => {
            ShareRequest::Invite { share, name: v.name.clone().expect("name"), role: v.role.clone().expect("role") }
        }
        "answer" => ShareRequest::Answer { share, accept: v.accept.expect("accept") },
        "sync" => ShareRequest::Sync {
            share,
            heads: heads_of(v.heads.as_deref().expect("heads")),
            changes: v.changes.as_deref().expect("changes").iter().map(wire_change).collect(),
        },
        other => panic!("unknown request type {other:?}"),
    }
}

fn response_of(v: &ResponseVector) -> ShareResponse {
    match v.kind.as_str() {
        "ok" => ShareResponse::Ok,
        "sync" => ShareResponse::Sync {
            heads: heads_of(v.heads.as_deref().expect("heads")),
            changes: v.changes.as_deref().expect("changes").iter().map(wire_change).collect(),
            more: v.more.expect("more"),
            rejected: v.rejected.expect("rejected"),
        },
        "refused" => ShareResponse::Refused { message: v.message.clone().expect("message") },
        other => panic!("unknown response type {other:?}"),
    }
}

fn share_frame<T: Serialize>(msg: &T) -> String {
    hex(frame::encode(msg, share::MAX_MESSAGE).expect("share message encodes"))
}

fn request_vector(description: &str, fill: impl FnOnce(&mut RequestVector)) -> RequestVector {
    let mut v = RequestVector {
        description: description.into(),
        kind: String::new(),
        share: SHARE_ID.into(),
        name: None,
        role: None,
        accept: None,
        heads: None,
        changes: None,
        frame: String::new(),
    };
    fill(&mut v);
    v.frame = share_frame(&request_of(&v));
    v
}

fn response_vector(description: &str, fill: impl FnOnce(&mut ResponseVector)) -> ResponseVector {
    let mut v = ResponseVector {
        description: description.into(),
        kind: String::new(),
        heads: None,
        changes: None,
        more: None,
        rejected: None,
        message: None,
        frame: String::new(),
    };
    fill(&mut v);
    v.frame = share_frame(&response_of(&v));
    v
}

fn malformed_vector(description: &str, message: &str, bytes: Vec<u8>) -> MalformedVector {
    let (result, canonical) = match message {
        "request" => typed_outcome::<ShareRequest>(&bytes, share::MAX_MESSAGE),
        _ => typed_outcome::<ShareResponse>(&bytes, share::MAX_MESSAGE),
    };
    MalformedVector { description: description.into(), message: message.into(), frame: hex(bytes), result, canonical }
}

fn batch_of(changes: &[[usize; 2]]) -> (usize, bool) {
    let wire: Vec<WireChange> =
        changes.iter().map(|[c, s]| WireChange { change: vec![0; *c], signature: vec![0; *s] }).collect();
    let (batch, more) = bounded(wire);
    (batch.len(), more)
}

fn batch_vector(description: &str, changes: Vec<[usize; 2]>) -> BatchVector {
    let (batch, more) = batch_of(&changes);
    BatchVector { description: description.into(), changes, batch, more }
}

fn generate_share(root: &Map<String, Value>) -> ShareFile {
    use ciborium::Value as C;
    let history = history(root);
    let (genesis, roles) = (&history[0], &history[1]);
    let requests = vec![
        request_vector("alice (owner) invites bob to share \"Family\" as a read-write member", |v| {
            v.kind = "invite".into();
            v.name = Some("Family".into());
            v.role = Some("read-write".into());
        }),
        request_vector("alice invites carol as a read-only member", |v| {
            v.kind = "invite".into();
            v.name = Some("Family".into());
            v.role = Some("read-only".into());
        }),
        request_vector("bob accepts", |v| {
            v.kind = "answer".into();
            v.accept = Some(true);
        }),
        request_vector("carol declines", |v| {
            v.kind = "answer".into();
            v.accept = Some(false);
        }),
        request_vector("bob's first sync after accepting: no document yet, so no heads and no changes", |v| {
            v.kind = "sync".into();
            v.heads = Some(Vec::new());
            v.changes = Some(Vec::new());
        }),
        request_vector(
            "alice pushes the roles change (document.history[1]) to a member whose last known heads are the genesis",
            |v| {
                v.kind = "sync".into();
                v.heads = Some(vec![roles.hash.clone()]);
                v.changes = Some(vec![change_vector(roles)]);
            },
        ),
    ];
    let responses = vec![
        response_vector("invitation or answer recorded", |v| v.kind = "ok".into()),
        response_vector("alice answers bob's first sync: her heads and every change (he had no heads)", |v| {
            v.kind = "sync".into();
            v.heads = Some(vec![roles.hash.clone()]);
            v.changes = Some(vec![change_vector(genesis), change_vector(roles)]);
            v.more = Some(false);
            v.rejected = Some(0);
        }),
        response_vector("a bounded answer: more changes remain, and one change of the request was refused", |v| {
            v.kind = "sync".into();
            v.heads = Some(vec![roles.hash.clone()]);
            v.changes = Some(vec![change_vector(genesis)]);
            v.more = Some(true);
            v.rejected = Some(1);
        }),
        response_vector("a sync from a node that the membership does not list", |v| {
            v.kind = "refused".into();
            v.message = Some("you are not a member of this share".into());
        }),
        response_vector("any share request from a node that is not a contact", |v| {
            v.kind = "refused".into();
            v.message = Some(NOT_A_CONTACT.into());
        }),
    ];
    let share = || C::Bytes(unhex(SHARE_ID));
    let limit = share::MAX_MESSAGE;
    let malformed = vec![
        malformed_vector(
            "keys in another order: accepted, re-encoded with `type` first",
            "request",
            cbor_frame(vec![("accept", C::Bool(true)), ("share", share()), ("type", C::Text("answer".into()))], limit),
        ),
        malformed_vector(
            "an unknown key: ignored",
            "request",
            cbor_frame(
                vec![
                    ("type", C::Text("answer".into())),
                    ("share", share()),
                    ("accept", C::Bool(false)),
                    ("note", C::Text("later".into())),
                ],
                limit,
            ),
        ),
        malformed_vector(
            "an unknown type",
            "request",
            cbor_frame(vec![("type", C::Text("leave".into())), ("share", share())], limit),
        ),
        malformed_vector("no type", "request", cbor_frame(vec![("share", share()), ("accept", C::Bool(true))], limit)),
        malformed_vector(
            "a sync without its changes",
            "request",
            cbor_frame(
                vec![("type", C::Text("sync".into())), ("share", share()), ("heads", C::Array(Vec::new()))],
                limit,
            ),
        ),
        malformed_vector(
            "accept as an integer instead of a boolean",
            "request",
            cbor_frame(
                vec![("type", C::Text("answer".into())), ("share", share()), ("accept", C::Integer(1.into()))],
                limit,
            ),
        ),
        malformed_vector(
            "a response type that is not a response (`invite`)",
            "response",
            cbor_frame(
                vec![
                    ("type", C::Text("invite".into())),
                    ("share", share()),
                    ("name", C::Text("x".into())),
                    ("role", C::Text("read-only".into())),
                ],
                limit,
            ),
        ),
        malformed_vector(
            "a sync answer without `rejected`",
            "response",
            cbor_frame(
                vec![
                    ("type", C::Text("sync".into())),
                    ("heads", C::Array(Vec::new())),
                    ("changes", C::Array(Vec::new())),
                    ("more", C::Bool(false)),
                ],
                limit,
            ),
        ),
    ];
    let max = share::MAX_CHANGE_BYTES;
    let batches = vec![
        batch_vector("nothing to send", Vec::new()),
        batch_vector("small changes all fit", vec![[300, 64], [200, 64], [1000, 64]]),
        batch_vector("a change larger than the bound still goes, alone", vec![[2 * max, 64], [10, 64]]),
        batch_vector("two changes fill the bound exactly (length + signature + 16 each)", vec![[max / 2 - 80, 64]; 3]),
        batch_vector("one byte more and only the first fits", vec![[max / 2 - 79, 64]; 2]),
    ];
    ShareFile {
        description: "spec/share.md: /hearth/share/1 frames (share id 00112233...ff; the changes and heads are \
                      those of the `document` section's history), frames decoded as requests or responses, and \
                      the bound on the changes of one message. Generated by protocol/tests/share_vectors.rs; the \
                      `document` section by crdt/tests/folder_vectors.rs."
            .into(),
        protocol: ShareProtocol {
            name: share::PROTOCOL.into(),
            max_message: share::MAX_MESSAGE,
            max_change_bytes: share::MAX_CHANGE_BYTES,
            share_id_len: share::SHARE_ID_LEN,
        },
        requests,
        responses,
        malformed,
        batches,
    }
}

#[test]
fn share_vectors() {
    let (file, root) = load_or_generate("share.json", SHARE_JSON, generate_share);
    assert_eq!(file.protocol.name, share::PROTOCOL);
    assert_eq!(file.protocol.max_message, share::MAX_MESSAGE);
    assert_eq!(file.protocol.max_change_bytes, share::MAX_CHANGE_BYTES);
    assert_eq!(file.protocol.share_id_len, share::SHARE_ID_LEN);
    const { assert!(share::MAX_MESSAGE <= frame::MAX_FRAME) };

    // Encode direction.
    let fresh: Vec<RequestVector> =
        file.requests.iter().map(|v| RequestVector { frame: share_frame(&request_of(v)), ..v.clone() }).collect();
    compare("share.json", "requests", |v| v.description.clone(), &fresh, &file.requests);
    let fresh: Vec<ResponseVector> =
        file.responses.iter().map(|v| ResponseVector { frame: share_frame(&response_of(v)), ..v.clone() }).collect();
    compare("share.json", "responses", |v| v.description.clone(), &fresh, &file.responses);
    // Decode direction.
    for v in &file.requests {
        let got: ShareRequest = frame::decode(&unhex(&v.frame), share::MAX_MESSAGE).expect("decodes");
        assert_eq!(got, request_of(v), "{}", v.description);
        assert_eq!(got.share(), unhex(SHARE_ID).as_slice());
    }
    for v in &file.responses {
        let got: ShareResponse = frame::decode(&unhex(&v.frame), share::MAX_MESSAGE).expect("decodes");
        assert_eq!(got, response_of(v), "{}", v.description);
    }
    for kind in ["invite", "answer", "sync"] {
        assert!(file.requests.iter().any(|v| v.kind == kind), "no {kind} request");
    }
    for kind in ["ok", "sync", "refused"] {
        assert!(file.responses.iter().any(|v| v.kind == kind), "no {kind} response");
    }
    // The sync frames carry the document section's real changes.
    let history = history(&root);
    let known: Vec<(String, String)> = history.iter().map(|h| (h.change.clone(), h.signature.clone())).collect();
    let heads: Vec<&String> = history.iter().map(|h| &h.hash).collect();
    for v in &file.requests {
        for c in v.changes.iter().flatten() {
            assert!(
                known.contains(&(c.change.clone(), c.signature.clone())),
                "{}: a change of document.history",
                v.description
            );
        }
        for h in v.heads.iter().flatten() {
            assert!(heads.contains(&h), "{}: a head of document.history", v.description);
        }
    }

    let fresh: Vec<MalformedVector> =
        file.malformed.iter().map(|v| malformed_vector(&v.description, &v.message, unhex(&v.frame))).collect();
    compare("share.json", "malformed", |v| v.description.clone(), &fresh, &file.malformed);
    assert!(file.malformed.iter().any(|v| v.result == "ok") && file.malformed.iter().any(|v| v.result == "malformed"));

    let fresh: Vec<BatchVector> = file
        .batches
        .iter()
        .map(|v| {
            let (batch, more) = batch_of(&v.changes);
            BatchVector { batch, more, ..v.clone() }
        })
        .collect();
    compare("share.json", "batches", |v| v.description.clone(), &fresh, &file.batches);
}

// ===== blob.json ============================================================

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BlobFile {
    description: String,
    protocol: BlobProtocol,
    hashes: Vec<HashVector>,
    manifests: Vec<ManifestVector>,
    invalid_manifests: Vec<InvalidManifest>,
    gets: Vec<GetVector>,
    responses: Vec<BlobResponseVector>,
    answers: Vec<AnswerVector>,
    malformed: Vec<MalformedVector>,
    /// `/hearth/blob/2`: batch requests and the bytes of their answers.
    batches: Vec<BlobBatchVector>,
}

/// A batch of ranges, its request frame, what the server answers and the
/// answer's bytes on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BlobBatchVector {
    description: String,
    gets: Vec<BatchGet>,
    /// The request frame, or `null` for a request refused before it is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frame: Option<String>,
    /// Each range's answer in order (`result` and, for `data`, `bytes`;
    /// for `refused`, `message`); empty when the batch is refused.
    answers: Vec<BatchAnswer>,
    /// The whole batch refused: the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
    /// What the server writes on the stream.
    stream: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BatchGet {
    hash: String,
    offset: u32,
    len: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BatchAnswer {
    result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BlobProtocol {
    name: String,
    max_part: u32,
    max_message: usize,
    max_refusal: usize,
    chunk_min: u32,
    chunk_avg: u32,
    chunk_max: u32,
    max_manifest_chunks: u32,
    manifest_version: u8,
    manifest_header_len: usize,
    manifest_entry_len: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HashVector {
    description: String,
    input: String,
    hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ChunkVector {
    hash: String,
    len: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ManifestVector {
    description: String,
    chunks: Vec<ChunkVector>,
    size: u64,
    encoding: String,
    id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct InvalidManifest {
    description: String,
    bytes: String,
    /// `truncated`, `trailing_bytes`, `unknown_version`, `too_many_chunks`,
    /// `empty_chunk`, `chunk_too_large` or `size_mismatch`.
    error: String,
    /// For `truncated`: `null`, or the full length the header announces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    announced_len: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GetVector {
    description: String,
    hash: String,
    offset: u32,
    len: u32,
    frame: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BlobResponseVector {
    description: String,
    result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    frame: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AnswerVector {
    description: String,
    /// The blob the server holds (verified), or `null` if it holds none.
    blob: Option<String>,
    offset: u32,
    len: u32,
    /// `data`, `missing` or `refused`.
    result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
}

fn manifest_error_kind(e: &ManifestError) -> &'static str {
    match e {
        ManifestError::Truncated { .. } => "truncated",
        ManifestError::TrailingBytes { .. } => "trailing_bytes",
        ManifestError::UnknownVersion(_) => "unknown_version",
        ManifestError::TooManyChunks { .. } => "too_many_chunks",
        ManifestError::EmptyChunk { .. } => "empty_chunk",
        ManifestError::ChunkTooLarge { .. } => "chunk_too_large",
        ManifestError::SizeMismatch { .. } => "size_mismatch",
    }
}

/// A pattern of `len` bytes: `i mod 251`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn hash_vector(description: &str, input: &[u8]) -> HashVector {
    HashVector { description: description.into(), input: hex(input), hash: ChunkHash::of(input).to_string() }
}

fn manifest_vector(description: &str, blobs: &[Vec<u8>]) -> ManifestVector {
    let refs = blobs.iter().map(|b| ChunkRef { hash: ChunkHash::of(b), len: b.len() as u32 }).collect();
    let m = Manifest::from_chunks(refs).expect("valid manifest");
    ManifestVector {
        description: description.into(),
        chunks: m.chunks().iter().map(|c| ChunkVector { hash: c.hash.to_string(), len: c.len }).collect(),
        size: m.size(),
        encoding: hex(m.encode()),
        id: m.id().to_string(),
    }
}

fn manifest_of(v: &ManifestVector) -> Result<Manifest, ManifestError> {
    Manifest::from_chunks(v.chunks.iter().map(|c| ChunkRef { hash: hash_of(&c.hash), len: c.len }).collect())
}

fn invalid_manifest(description: &str, bytes: Vec<u8>) -> InvalidManifest {
    let error = Manifest::decode(&bytes).expect_err("invalid");
    let announced_len = match error {
        ManifestError::Truncated { .. } => Manifest::encoded_len_from_header(&bytes).ok(),
        _ => None,
    };
    InvalidManifest {
        description: description.into(),
        bytes: hex(bytes),
        error: manifest_error_kind(&error).into(),
        announced_len,
    }
}

fn blob_frame<T: Serialize>(msg: &T) -> String {
    hex(frame::encode(msg, blob::MAX_MESSAGE).expect("blob message encodes"))
}

fn get_vector(description: &str, hash: ChunkHash, offset: u32, len: u32) -> GetVector {
    GetVector {
        description: description.into(),
        hash: hash.to_string(),
        offset,
        len,
        frame: blob_frame(&Get { hash, offset, len }),
    }
}

fn response_result(r: &Response) -> (String, Option<String>, Option<String>) {
    match r {
        Response::Data { bytes } => ("data".into(), Some(hex(bytes)), None),
        Response::Missing => ("missing".into(), None, None),
        Response::Refused { message } => ("refused".into(), None, Some(message.clone())),
    }
}

fn blob_response_vector(description: &str, r: &Response) -> BlobResponseVector {
    let (result, bytes, message) = response_result(r);
    BlobResponseVector { description: description.into(), result, bytes, message, frame: blob_frame(r) }
}

fn blob_response_of(v: &BlobResponseVector) -> Response {
    match v.result.as_str() {
        "data" => Response::Data { bytes: unhex(v.bytes.as_deref().expect("bytes")) },
        "missing" => Response::Missing,
        "refused" => Response::Refused { message: v.message.clone().expect("message") },
        other => panic!("unknown result {other:?}"),
    }
}

/// The batch `gets` as a server holding `blobs` answers it.
fn blob_batch_vector(description: &str, blobs: &[Vec<u8>], gets: Vec<BatchGet>) -> BlobBatchVector {
    let parsed: Vec<Get> = gets.iter().map(|g| Get { hash: hash_of(&g.hash), offset: g.offset, len: g.len }).collect();
    let request = batch::Batch { gets: parsed };
    // Encoded without the client-side check, so that the vector shows what
    // a server does with a frame a careless or hostile client sends.
    let frame = frame::encode(&request, batch::MAX_REQUEST).expect("a batch frame encodes");
    let refusal = batch::Batch::decode(&frame[frame::LEN_PREFIX..]).err().map(|e| e.to_string());
    let frame = Some(hex(&frame));
    let mut stream = Vec::new();
    let mut answers = Vec::new();
    match &refusal {
        Some(message) => stream = batch::encode_batch_refusal(message),
        None => {
            for get in &request.gets {
                let blob = blobs.iter().find(|b| ChunkHash::of(b) == get.hash);
                let response = answer(get, blob.map(Vec::as_slice));
                batch::encode_header(&response, &mut stream);
                if let Response::Data { bytes } = &response {
                    stream.extend_from_slice(bytes);
                }
                let (result, bytes, message) = response_result(&response);
                answers.push(BatchAnswer { result, bytes, message });
            }
        }
    }
    BlobBatchVector { description: description.into(), gets, frame, answers, refused: refusal, stream: hex(stream) }
}

fn batch_get(blob: &[u8], offset: u32, len: u32) -> BatchGet {
    BatchGet { hash: ChunkHash::of(blob).to_string(), offset, len }
}

fn answer_vector(description: &str, blob: Option<&[u8]>, offset: u32, len: u32) -> AnswerVector {
    let hash = blob.map_or(ChunkHash::of(b"absent"), ChunkHash::of);
    let (result, bytes, _) = response_result(&answer(&Get { hash, offset, len }, blob));
    AnswerVector { description: description.into(), blob: blob.map(hex), offset, len, result, bytes }
}

fn generate_blob(_: &Map<String, Value>) -> BlobFile {
    use ciborium::Value as C;
    let hello = b"hello".to_vec();
    let hashes = vec![
        hash_vector("the empty input", b""),
        hash_vector("ASCII \"hello\"", &hello),
        hash_vector("one zero byte", &[0]),
        hash_vector("1024 bytes i mod 251 (one BLAKE3 chunk)", &pattern(1024)),
        hash_vector("1025 bytes i mod 251 (two BLAKE3 chunks)", &pattern(1025)),
    ];
    let manifests = vec![
        manifest_vector("the empty file: no chunks", &[]),
        manifest_vector("a 5-byte file, one chunk", std::slice::from_ref(&hello)),
        manifest_vector(
            "three chunks, the first repeated at the end",
            &[pattern(1000), b"world".to_vec(), pattern(1000)],
        ),
    ];
    let two = Manifest::from_chunks(vec![
        ChunkRef { hash: ChunkHash::of(&pattern(10)), len: 10 },
        ChunkRef { hash: ChunkHash::of(&pattern(20)), len: 20 },
    ])
    .expect("valid")
    .encode();
    let patched = |at: usize, bytes: &[u8]| {
        let mut v = two.clone();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    };
    let invalid_manifests = vec![
        invalid_manifest("header cut short (5 of 13 bytes)", two[..5].to_vec()),
        invalid_manifest("last entry cut short by one byte", two[..two.len() - 1].to_vec()),
        invalid_manifest("a byte after the last entry", [two.as_slice(), &[0]].concat()),
        invalid_manifest("version 2", patched(0, &[2])),
        invalid_manifest("size 31 where the chunks add up to 30", patched(1, &31u64.to_be_bytes())),
        invalid_manifest("count 2^22 + 1", patched(9, &((1u32 << 22) + 1).to_be_bytes())),
        invalid_manifest("a zero-length chunk", patched(45, &0u32.to_be_bytes())),
        invalid_manifest("a chunk of 256 KiB + 1", patched(81, &(blob::CHUNK_MAX + 1).to_be_bytes())),
    ];
    let id = Manifest::from_chunks(vec![ChunkRef { hash: ChunkHash::of(&hello), len: 5 }]).expect("valid").id();
    let gets = vec![
        get_vector("a whole 5-byte chunk", ChunkHash::of(&hello), 0, 5),
        get_vector("the 13-byte header of a manifest", id, 0, 13),
        get_vector(
            "the second 1 MiB part of a large blob",
            ChunkHash::of(&pattern(1025)),
            blob::MAX_PART,
            blob::MAX_PART,
        ),
    ];
    let responses = vec![
        blob_response_vector("data: bytes 1..4 of \"hello\"", &Response::Data { bytes: b"ell".to_vec() }),
        blob_response_vector("missing", &Response::Missing),
        blob_response_vector("refused", &Response::refused("you are not a member of a share on this node")),
    ];
    let blob = pattern(100);
    let answers = vec![
        answer_vector("the whole blob", Some(&blob), 0, 100),
        answer_vector("a range inside", Some(&blob), 10, 5),
        answer_vector("the last byte", Some(&blob), 99, 1),
        answer_vector("one byte past the end", Some(&blob), 99, 2),
        answer_vector("starting at the end", Some(&blob), 100, 1),
        answer_vector("an empty range", Some(&blob), 0, 0),
        answer_vector("more than MAX_PART", Some(&blob), 0, blob::MAX_PART + 1),
        answer_vector("a blob the server does not hold", None, 0, 5),
        answer_vector(
            "more than MAX_PART of a blob the server does not hold: refused first",
            None,
            0,
            blob::MAX_PART + 1,
        ),
    ];
    let limit = blob::MAX_MESSAGE;
    let hash = C::Bytes(ChunkHash::of(&hello).0.to_vec());
    let malformed = vec![
        malformed_vector_blob(
            "a get with a 31-byte hash",
            "get",
            cbor_frame(
                vec![("hash", C::Bytes(vec![1; 31])), ("offset", C::Integer(0.into())), ("len", C::Integer(1.into()))],
                limit,
            ),
        ),
        malformed_vector_blob(
            "a get whose offset does not fit in 32 bits",
            "get",
            cbor_frame(
                vec![
                    ("hash", hash.clone()),
                    ("offset", C::Integer((1u64 << 32).into())),
                    ("len", C::Integer(1.into())),
                ],
                limit,
            ),
        ),
        malformed_vector_blob(
            "a get with its keys in another order and an unknown key",
            "get",
            cbor_frame(
                vec![
                    ("len", C::Integer(5.into())),
                    ("priority", C::Integer(1.into())),
                    ("offset", C::Integer(0.into())),
                    ("hash", hash),
                ],
                limit,
            ),
        ),
        malformed_vector_blob(
            "an unknown result",
            "response",
            cbor_frame(vec![("result", C::Text("later".into()))], limit),
        ),
        malformed_vector_blob(
            "data without bytes",
            "response",
            cbor_frame(vec![("result", C::Text("data".into()))], limit),
        ),
    ];
    BlobFile {
        description: "spec/blob.md: BLAKE3 chunk hashes, manifest encodings and ids, invalid manifests, \
                      /hearth/blob/1 frames and the server's answer to a range. Generated by \
                      protocol/tests/share_vectors.rs; the `chunking` section by node/tests/blob_vectors.rs."
            .into(),
        protocol: BlobProtocol {
            name: blob::PROTOCOL.into(),
            max_part: blob::MAX_PART,
            max_message: blob::MAX_MESSAGE,
            max_refusal: blob::MAX_REFUSAL,
            chunk_min: blob::CHUNK_MIN,
            chunk_avg: blob::CHUNK_AVG,
            chunk_max: blob::CHUNK_MAX,
            max_manifest_chunks: blob::MAX_MANIFEST_CHUNKS,
            manifest_version: blob::MANIFEST_VERSION,
            manifest_header_len: blob::MANIFEST_HEADER_LEN,
            manifest_entry_len: blob::MANIFEST_ENTRY_LEN,
        },
        hashes,
        manifests,
        invalid_manifests,
        gets,
        responses,
        answers,
        malformed,
        batches: blob_batch_vectors(),
    }
}

/// The blobs the batch vectors' server holds.
fn batch_blobs() -> Vec<Vec<u8>> {
    vec![b"hello".to_vec(), pattern(300)]
}

fn blob_batch_vectors() -> Vec<BlobBatchVector> {
    let blobs = batch_blobs();
    let (hello, long) = (&blobs[0], &blobs[1]);
    vec![
        blob_batch_vector(
            "three ranges: data, a part of a longer blob, missing",
            &blobs,
            vec![batch_get(hello, 0, 5), batch_get(long, 256, 44), batch_get(b"absent", 0, 10)],
        ),
        blob_batch_vector(
            "a range past the end is refused, the next still answered",
            &blobs,
            vec![batch_get(hello, 3, 5), batch_get(hello, 1, 2)],
        ),
        blob_batch_vector("an empty batch is refused as a whole", &blobs, vec![]),
        blob_batch_vector("a zero-length range refuses the batch", &blobs, vec![batch_get(hello, 0, 0)]),
    ]
}

fn malformed_vector_blob(description: &str, message: &str, bytes: Vec<u8>) -> MalformedVector {
    let (result, canonical) = match message {
        "get" => typed_outcome::<Get>(&bytes, blob::MAX_MESSAGE),
        _ => typed_outcome::<Response>(&bytes, blob::MAX_MESSAGE),
    };
    MalformedVector { description: description.into(), message: message.into(), frame: hex(bytes), result, canonical }
}

/// What blob.json's `chunking` section (node/tests/blob_vectors.rs) says.
#[derive(Debug, Clone, Deserialize)]
struct Chunking {
    min: u32,
    avg: u32,
    max: u32,
    inputs: Vec<ChunkingInput>,
}

#[derive(Debug, Clone, Deserialize)]
struct ChunkingInput {
    description: String,
    generator: String,
    seed: String,
    len: usize,
    flip: Option<usize>,
    cuts: Vec<CutVector>,
    manifest_id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct CutVector {
    offset: u64,
    len: u32,
    hash: String,
}

/// The deterministic inputs of the `chunking` section (spec/blob.md).
fn chunking_input(generator: &str, seed: &str, len: usize, flip: Option<usize>) -> Vec<u8> {
    let mut data = match generator {
        "zeros" => vec![0; len],
        "xorshift64" => {
            let mut state = u64::from_str_radix(seed, 16).expect("hex seed");
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        }
        other => panic!("unknown generator {other:?}"),
    };
    if let Some(at) = flip {
        data[at] ^= 0xff;
    }
    data
}

#[test]
fn blob_vectors() {
    let (file, root) = load_or_generate("blob.json", BLOB_JSON, generate_blob);
    let p = &file.protocol;
    assert_eq!(p.name, blob::PROTOCOL);
    assert_eq!(
        (p.max_part, p.max_message, p.max_refusal, p.chunk_min, p.chunk_avg, p.chunk_max),
        (blob::MAX_PART, blob::MAX_MESSAGE, blob::MAX_REFUSAL, blob::CHUNK_MIN, blob::CHUNK_AVG, blob::CHUNK_MAX)
    );
    assert_eq!(
        (p.max_manifest_chunks, p.manifest_version, p.manifest_header_len, p.manifest_entry_len),
        (blob::MAX_MANIFEST_CHUNKS, blob::MANIFEST_VERSION, blob::MANIFEST_HEADER_LEN, blob::MANIFEST_ENTRY_LEN)
    );
    const { assert!(blob::MAX_MESSAGE <= frame::MAX_FRAME) };

    // Hashes, both ways (the text form parses back).
    let fresh: Vec<HashVector> = file.hashes.iter().map(|v| hash_vector(&v.description, &unhex(&v.input))).collect();
    compare("blob.json", "hashes", |v| v.description.clone(), &fresh, &file.hashes);
    for v in &file.hashes {
        assert_eq!(v.hash.parse::<ChunkHash>().map(|h| hex(h.0)), Ok(v.hash.clone()));
    }

    // Manifests: chunks -> encoding and id; encoding -> chunks.
    let fresh: Vec<ManifestVector> = file
        .manifests
        .iter()
        .map(|v| {
            let m = manifest_of(v).expect("valid manifest");
            ManifestVector { size: m.size(), encoding: hex(m.encode()), id: m.id().to_string(), ..v.clone() }
        })
        .collect();
    compare("blob.json", "manifests", |v| v.description.clone(), &fresh, &file.manifests);
    for v in &file.manifests {
        let decoded = Manifest::decode(&unhex(&v.encoding)).expect("decodes");
        assert_eq!(Ok(decoded.clone()), manifest_of(v), "{}", v.description);
        assert_eq!(Manifest::encoded_len_from_header(&unhex(&v.encoding)[..13]), Ok(decoded.encoded_len()));
        assert_eq!(ChunkHash::of(&unhex(&v.encoding)).to_string(), v.id);
    }
    let fresh: Vec<InvalidManifest> =
        file.invalid_manifests.iter().map(|v| invalid_manifest(&v.description, unhex(&v.bytes))).collect();
    compare("blob.json", "invalid_manifests", |v| v.description.clone(), &fresh, &file.invalid_manifests);

    // Frames, both ways.
    let fresh: Vec<GetVector> =
        file.gets.iter().map(|v| get_vector(&v.description, hash_of(&v.hash), v.offset, v.len)).collect();
    compare("blob.json", "gets", |v| v.description.clone(), &fresh, &file.gets);
    for v in &file.gets {
        let got: Get = frame::decode(&unhex(&v.frame), blob::MAX_MESSAGE).expect("decodes");
        assert_eq!(got, Get { hash: hash_of(&v.hash), offset: v.offset, len: v.len });
    }
    let fresh: Vec<BlobResponseVector> =
        file.responses.iter().map(|v| blob_response_vector(&v.description, &blob_response_of(v))).collect();
    compare("blob.json", "responses", |v| v.description.clone(), &fresh, &file.responses);
    for v in &file.responses {
        let got: Response = frame::decode(&unhex(&v.frame), blob::MAX_MESSAGE).expect("decodes");
        assert_eq!(got, blob_response_of(v));
    }
    // A full part fits one frame.
    let full = Response::Data { bytes: vec![0; blob::MAX_PART as usize] };
    assert!(frame::encode(&full, blob::MAX_MESSAGE).is_ok());

    // The server's answer.
    let fresh: Vec<AnswerVector> = file
        .answers
        .iter()
        .map(|v| answer_vector(&v.description, v.blob.as_deref().map(unhex).as_deref(), v.offset, v.len))
        .collect();
    compare("blob.json", "answers", |v| v.description.clone(), &fresh, &file.answers);

    let fresh: Vec<MalformedVector> =
        file.malformed.iter().map(|v| malformed_vector_blob(&v.description, &v.message, unhex(&v.frame))).collect();
    compare("blob.json", "malformed", |v| v.description.clone(), &fresh, &file.malformed);

    // Batches: the request frame decodes to the ranges (or is refused with
    // the message), and the stream is what the server writes.
    let blobs = batch_blobs();
    let fresh: Vec<BlobBatchVector> =
        file.batches.iter().map(|v| blob_batch_vector(&v.description, &blobs, v.gets.clone())).collect();
    compare("blob.json", "batches", |v| v.description.clone(), &fresh, &file.batches);
    assert!(file.batches.len() >= 4, "blob.json has the batch vectors");

    // The chunking section, as far as it can be checked without a chunker.
    if let Some(section) = root.get("chunking") {
        let chunking: Chunking =
            serde_json::from_value(section.clone()).unwrap_or_else(|e| panic!("blob.json chunking: {e}"));
        assert_eq!((chunking.min, chunking.avg, chunking.max), (blob::CHUNK_MIN, blob::CHUNK_AVG, blob::CHUNK_MAX));
        for input in &chunking.inputs {
            let data = chunking_input(&input.generator, &input.seed, input.len, input.flip);
            let mut offset = 0u64;
            let mut refs = Vec::new();
            for (i, cut) in input.cuts.iter().enumerate() {
                assert_eq!(cut.offset, offset, "{}: chunks tile the input", input.description);
                assert!(cut.len <= blob::CHUNK_MAX, "{}: chunk {i} too long", input.description);
                if i + 1 < input.cuts.len() {
                    assert!(cut.len >= blob::CHUNK_MIN, "{}: chunk {i} too short", input.description);
                }
                let bytes = &data[offset as usize..offset as usize + cut.len as usize];
                assert_eq!(ChunkHash::of(bytes).to_string(), cut.hash, "{}: chunk {i}", input.description);
                refs.push(ChunkRef { hash: hash_of(&cut.hash), len: cut.len });
                offset += u64::from(cut.len);
            }
            assert_eq!(offset, data.len() as u64, "{}: chunks cover the input", input.description);
            let id = Manifest::from_chunks(refs).expect("valid").id();
            assert_eq!(id.to_string(), input.manifest_id, "{}", input.description);
        }
    } else {
        assert!(write_mode(), "blob.json has no chunking section: run node/tests/blob_vectors.rs in write mode");
    }
}
