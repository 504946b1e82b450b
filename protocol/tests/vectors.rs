//! The test vectors of `spec/` (`spec/vectors/*.json`), checked against the
//! code.
//!
//! Without `HEARTH_WRITE_VECTORS=1` this only compares: each vector's inputs
//! are run through the code in both directions (encode and decode, error
//! kinds, decisions) and any difference fails loudly, naming the vector.
//!
//! With `HEARTH_WRITE_VECTORS=1` the `generate_*` functions below rebuild
//! every file from its inputs, which are defined in those functions (fixed
//! secrets, names, clocks; the invalid inputs are derived from the valid ones
//! by the recipes written there), compute every output with the code, rewrite
//! the file, then check it like above. Peer ids and multiaddr bytes are read
//! from `identity.json`, which `node/tests/spec_identity.rs` generates (it
//! needs libp2p): run that one first.
//!
//! ```text
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-node --test spec_identity
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-protocol --test vectors
//! ```
//!
//! Nothing here reads a clock or a random source: regenerating on an
//! unchanged code base rewrites identical files.

use std::path::PathBuf;

use hearth_protocol::contact::{self, Hello, HelloResponse};
use hearth_protocol::frame::{self, Decoder, FrameError};
use hearth_protocol::pairing::{
    self, handle_request, proof, InvitationRecord, InviterDecision, JoinError, JoinState, Joiner, PairRequest,
    PairResponse, Redemption, RejectReason, Role,
};
use hearth_protocol::token::{self, Invitation, TokenError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

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

/// In write mode: generates, writes and returns the file. Otherwise: the
/// file as embedded at compile time.
fn load_or_generate<T: Serialize + DeserializeOwned>(name: &str, embedded: &str, generate: impl FnOnce() -> T) -> T {
    if !write_mode() {
        return parse(name, embedded);
    }
    let file = generate();
    let mut text = serde_json::to_string_pretty(&file).expect("vectors serialise");
    text.push('\n');
    std::fs::write(vector_path(name), &text).unwrap_or_else(|e| panic!("cannot write spec/vectors/{name}: {e}"));
    // Check what a reader of the file gets, not the in-memory value.
    parse(name, &text)
}

/// Fails with every mismatch of a section at once.
fn compare<T: PartialEq + Serialize>(file: &str, section: &str, label: impl Fn(&T) -> String, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{file}: section {section} has {} vectors, expected {}", got.len(), want.len());
    let mut failures = Vec::new();
    for (g, w) in got.iter().zip(want) {
        if g == w {
            continue;
        }
        let mut lines = vec![format!("  vector {:?}:", label(w))];
        match (serde_json::to_value(w), serde_json::to_value(g)) {
            (Ok(serde_json::Value::Object(wm)), Ok(serde_json::Value::Object(gm))) => {
                // Only the fields that differ.
                for (key, wv) in &wm {
                    let gv = gm.get(key).unwrap_or(&serde_json::Value::Null);
                    if gv != wv {
                        lines.push(format!("    {key}\n      file: {wv}\n      code: {gv}"));
                    }
                }
            }
            (wv, gv) => lines.push(format!("    file: {wv:?}\n    code: {gv:?}")),
        }
        failures.push(lines.join("\n"));
    }
    assert!(
        failures.is_empty(),
        "spec/vectors/{file}, section {section}: {} vector(s) disagree with the code \
         (if the change is intended, regenerate with HEARTH_WRITE_VECTORS=1 and review the diff):\n{}",
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

fn array<const N: usize>(s: &str) -> [u8; N] {
    unhex(s).try_into().unwrap_or_else(|v: Vec<u8>| panic!("expected {N} bytes, got {}", v.len()))
}

/// The snake_case name serde gives a unit enum variant (a reject reason).
fn snake<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("not a unit variant: {other:?}"),
    }
}

fn reason_from(name: &str) -> RejectReason {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .unwrap_or_else(|e| panic!("unknown reject reason {name:?}: {e}"))
}

// ----- identity.json (read only here) ---------------------------------------

#[derive(Debug, Clone, Deserialize)]
struct IdentityFile {
    identities: Vec<IdentityVector>,
    multiaddrs: Vec<Addr>,
}

#[derive(Debug, Clone, Deserialize)]
struct IdentityVector {
    peer_id_bytes: String,
}

const IDENTITY_JSON: &str = include_str!("../../spec/vectors/identity.json");

fn identities() -> IdentityFile {
    if write_mode() {
        let text = std::fs::read_to_string(vector_path("identity.json")).expect("read identity.json");
        parse("identity.json", &text)
    } else {
        parse("identity.json", IDENTITY_JSON)
    }
}

/// Peer id bytes of test identity `i` (0: alice, 1: bob, 2: carol).
fn peer(ids: &IdentityFile, i: usize) -> Vec<u8> {
    unhex(&ids.identities[i].peer_id_bytes)
}

fn known_peer(ids: &IdentityFile, peer: &str) -> bool {
    ids.identities.iter().any(|v| v.peer_id_bytes == peer)
}

fn addr(ids: &IdentityFile, text: &str) -> Addr {
    ids.multiaddrs.iter().find(|a| a.text == text).cloned().unwrap_or_else(|| {
        panic!("{text} is not in identity.json: add it to MULTIADDRS in node/tests/spec_identity.rs and regenerate")
    })
}

// ----- shared vector types ---------------------------------------------------

/// A multiaddr: text and binary form (checked by node/tests/spec_identity.rs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Addr {
    text: String,
    bytes: String,
}

// ----- invitation.json -------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InvitationFile {
    description: String,
    valid: Vec<ValidToken>,
    whitespace: Vec<Whitespace>,
    invalid: Vec<InvalidToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ValidToken {
    description: String,
    // inputs
    inviter: String,
    inviter_name: String,
    addrs: Vec<Addr>,
    secret: String,
    expires_at: u64,
    // outputs
    token_id: String,
    token_bytes: String,
    token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Whitespace {
    description: String,
    /// Index into `valid` of the token this text must decode to.
    same_as: usize,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InvalidToken {
    description: String,
    text: String,
    /// When present, the token decodes and `now` (Unix seconds) is past its expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    now: Option<u64>,
    /// `TokenError::kind()`.
    error: String,
}

const INVITATION_JSON: &str = include_str!("../../spec/vectors/invitation.json");

fn invitation_of(v: &ValidToken) -> Invitation {
    Invitation {
        inviter: unhex(&v.inviter),
        inviter_name: v.inviter_name.clone(),
        addrs: v.addrs.iter().map(|a| unhex(&a.bytes)).collect(),
        secret: array(&v.secret),
        expires_at: v.expires_at,
    }
}

fn valid_token(
    description: &str,
    inviter: Vec<u8>,
    name: &str,
    addrs: Vec<Addr>,
    secret: [u8; 32],
    expires_at: u64,
) -> ValidToken {
    let mut v = ValidToken {
        description: description.into(),
        inviter: hex(inviter),
        inviter_name: name.into(),
        addrs,
        secret: hex(secret),
        expires_at,
        token_id: String::new(),
        token_bytes: String::new(),
        token: String::new(),
    };
    let inv = invitation_of(&v);
    v.token_id = hex(inv.token_id());
    v.token_bytes = hex(inv.to_bytes().expect("valid token encodes"));
    v.token = inv.encode().expect("valid token encodes");
    v
}

/// Outcome of reading a token text (and checking it at `now`).
fn token_outcome(text: &str, now: Option<u64>) -> Result<Invitation, TokenError> {
    let inv = Invitation::decode(text)?;
    if let Some(now) = now {
        inv.check_fresh(now)?;
    }
    Ok(inv)
}

fn invalid_token(description: &str, text: String, now: Option<u64>) -> InvalidToken {
    let error = match token_outcome(&text, now) {
        Err(e) => e.kind().to_owned(),
        Ok(_) => panic!("generator bug: invalid token {description:?} decodes"),
    };
    InvalidToken { description: description.into(), text, now, error }
}

/// Test-side helpers to build deliberately broken layouts (the outputs, the
/// error kinds, still come from the code).
fn checksum(body: &[u8]) -> [u8; 4] {
    let mut sum = [0u8; 4];
    sum.copy_from_slice(&blake3::hash(body).as_bytes()[..4]);
    sum
}

fn seal(mut body: Vec<u8>) -> String {
    let sum = checksum(&body);
    body.extend_from_slice(&sum);
    format!("hearth1{}", bs58::encode(body).into_string())
}

fn base58_text(bytes: &[u8]) -> String {
    format!("hearth1{}", bs58::encode(bytes).into_string())
}

fn generate_invitation() -> InvitationFile {
    let ids = identities();
    let seq: [u8; 32] = std::array::from_fn(|i| i as u8);
    let valid = vec![
        valid_token(
            "alice, three addresses (LAN QUIC, LAN TCP, loopback QUIC last)",
            peer(&ids, 0),
            "alice",
            vec![
                addr(&ids, "/ip4/192.168.1.20/udp/4001/quic-v1"),
                addr(&ids, "/ip4/192.168.1.20/tcp/4001"),
                addr(&ids, "/ip4/127.0.0.1/udp/4001/quic-v1"),
            ],
            seq,
            1_800_000_000,
        ),
        valid_token(
            "non-ASCII name (UTF-8, 18 bytes), IPv6 and DNS addresses",
            peer(&ids, 1),
            "Grand-mère Élise",
            vec![addr(&ids, "/ip6/2001:db8::7/udp/4001/quic-v1"), addr(&ids, "/dns4/home.example.org/tcp/4001")],
            [0xa5; 32],
            1_767_312_000,
        ),
        valid_token("zero addresses", peer(&ids, 2), "carol", Vec::new(), [0xff; 32], 4_102_444_800),
    ];
    let t0 = valid[0].token.clone();
    let b0 = unhex(&valid[0].token_bytes);
    let e0 = valid[0].expires_at;
    let wrapped = {
        let mut s = String::from("  ");
        for (i, c) in t0.chars().enumerate() {
            if i > 0 && i % 32 == 0 {
                s.push_str(if i % 64 == 0 { "\r\n" } else { "\n\t" });
            }
            s.push(c);
        }
        s.push_str(" \n");
        s
    };
    let whitespace = vec![Whitespace {
        description: "valid[0] line-wrapped, indented and padded: white space anywhere is ignored".into(),
        same_as: 0,
        text: wrapped,
    }];

    // Body fields of valid[0], to rebuild broken variants with a correct checksum.
    let body0 = b0[..b0.len() - 4].to_vec();
    let with_version = |v: u8| {
        let mut b = body0.clone();
        b[0] = v;
        seal(b)
    };
    // Version 1, valid[0]'s secret and expiry, then `tail`, then a valid checksum.
    let raw = |tail: &[u8]| {
        let mut b = vec![token::TOKEN_VERSION];
        b.extend_from_slice(&seq);
        b.extend_from_slice(&e0.to_be_bytes());
        b.extend_from_slice(tail);
        seal(b)
    };
    let layout = |peer: &[u8], name: &[u8], addrs: &[&[u8]], extra: &[u8]| {
        let mut b = vec![token::TOKEN_VERSION];
        b.extend_from_slice(&seq);
        b.extend_from_slice(&e0.to_be_bytes());
        b.push(peer.len() as u8);
        b.extend_from_slice(peer);
        b.push(name.len() as u8);
        b.extend_from_slice(name);
        b.push(addrs.len() as u8);
        for a in addrs {
            b.extend_from_slice(&(a.len() as u16).to_be_bytes());
            b.extend_from_slice(a);
        }
        b.extend_from_slice(extra);
        seal(b)
    };
    let p0 = peer(&ids, 0);
    let a0 = unhex(&valid[0].addrs[0].bytes);
    let replace_at = |i: usize, c: char| {
        let mut chars: Vec<char> = t0.chars().collect();
        chars[i] = c;
        chars.into_iter().collect::<String>()
    };
    let mid = t0.len() / 2;
    let next_char = {
        let alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let c = t0.as_bytes()[mid] as char;
        let i = alphabet.find(c).expect("base58 char");
        alphabet.as_bytes()[(i + 1) % alphabet.len()] as char
    };
    let invalid = vec![
        invalid_token("not a token at all", "hello".into(), None),
        invalid_token("only white space", " \n\t ".into(), None),
        invalid_token(
            "prefix in the wrong case (the prefix is case-sensitive)",
            t0.replacen("hearth1", "HEARTH1", 1),
            None,
        ),
        invalid_token(
            "4097 characters after white space removal (limit 4096)",
            format!("hearth1{}", "2".repeat(4090)),
            None,
        ),
        invalid_token("valid[0] with '0' (not in the base58 alphabet) at position 20", replace_at(20, '0'), None),
        invalid_token("valid[0] with 'l' (not in the base58 alphabet) at position 7", replace_at(7, 'l'), None),
        invalid_token(
            "a non-ASCII character is reported as malformed, not as a bad character",
            replace_at(20, 'é'),
            None,
        ),
        invalid_token("nothing after the prefix", "hearth1".into(), None),
        invalid_token("the first 40 characters of valid[0]: fewer than 48 bytes", t0[..40].to_owned(), None),
        invalid_token("the first 40 bytes of valid[0], re-encoded", base58_text(&b0[..40]), None),
        invalid_token(
            "a length field runs past the end (peer id length 255, 20 bytes follow, checksum valid)",
            raw(&[&[255], &[7; 20][..]].concat()),
            None,
        ),
        invalid_token(
            &format!("valid[0] with one character changed at position {mid}"),
            replace_at(mid, next_char),
            None,
        ),
        invalid_token("valid[0] with its last 5 characters cut", t0[..t0.len() - 5].to_owned(), None),
        invalid_token(
            "valid[0] without its last byte, re-encoded (a cut checksum is garbled, not truncated)",
            base58_text(&b0[..b0.len() - 1]),
            None,
        ),
        invalid_token("valid[0] with version byte 2, checksum recomputed", with_version(2), None),
        invalid_token("valid[0] with version byte 0, checksum recomputed", with_version(0), None),
        invalid_token("empty peer id, checksum valid", layout(&[], b"alice", &[&a0], &[]), None),
        invalid_token("name is not UTF-8 (0xff), checksum valid", layout(&p0, &[0x61, 0xff], &[&a0], &[]), None),
        invalid_token("17 addresses, checksum valid", layout(&p0, b"alice", &[a0.as_slice(); 17], &[]), None),
        invalid_token("one byte after the addresses, checksum valid", layout(&p0, b"alice", &[&a0], &[0]), None),
        invalid_token("valid[0] one second after its expiry", t0.clone(), Some(e0 + 1)),
    ];
    InvitationFile {
        description: "spec/invitation.md: valid tokens (inputs: inviter peer id bytes, name, addresses, secret, \
                      expires_at; outputs: token id, binary layout, text), white-space variants, and invalid texts \
                      with the error kind they must produce. Generated by protocol/tests/vectors.rs."
            .into(),
        valid,
        whitespace,
        invalid,
    }
}

fn file_invitation() -> InvitationFile {
    load_or_generate("invitation.json", INVITATION_JSON, generate_invitation)
}

#[test]
fn invitation_vectors() {
    let file = file_invitation();
    let ids = identities();
    // Encode direction: recompute every output from the inputs.
    let fresh: Vec<ValidToken> = file
        .valid
        .iter()
        .map(|v| {
            valid_token(
                &v.description,
                unhex(&v.inviter),
                &v.inviter_name,
                v.addrs.clone(),
                array(&v.secret),
                v.expires_at,
            )
        })
        .collect();
    compare("invitation.json", "valid", |v| v.description.clone(), &fresh, &file.valid);
    for v in &file.valid {
        assert!(known_peer(&ids, &v.inviter), "{}: inviter is not an identity.json peer id", v.description);
        // Decode direction.
        let inv = invitation_of(v);
        assert_eq!(Invitation::decode(&v.token).as_ref(), Ok(&inv), "{}: text decodes to the inputs", v.description);
        assert_eq!(
            Invitation::from_bytes(&unhex(&v.token_bytes)).as_ref(),
            Ok(&inv),
            "{}: bytes decode to the inputs",
            v.description
        );
        assert_eq!(token::token_id(&inv.secret), array::<16>(&v.token_id));
        assert_eq!(v.token, base58_text(&unhex(&v.token_bytes)), "text is hearth1 + base58(bytes)");
        // Expiry is inclusive: valid at expires_at, expired one second later.
        assert_eq!(inv.check_fresh(v.expires_at), Ok(()));
        assert_eq!(inv.check_fresh(v.expires_at + 1).map_err(|e| e.kind()), Err("expired"));
    }
    assert!(file.valid.iter().any(|v| !v.inviter_name.is_ascii()), "a token with a non-ASCII name");
    assert!(file.valid.iter().any(|v| v.addrs.is_empty()), "a token without addresses");

    for w in &file.whitespace {
        let want = invitation_of(&file.valid[w.same_as]);
        assert_eq!(Invitation::decode(&w.text), Ok(want), "{}", w.description);
    }

    let fresh: Vec<InvalidToken> = file
        .invalid
        .iter()
        .map(|v| InvalidToken {
            error: match token_outcome(&v.text, v.now) {
                Err(e) => e.kind().to_owned(),
                Ok(_) => "ok".to_owned(),
            },
            ..v.clone()
        })
        .collect();
    compare("invitation.json", "invalid", |v| v.description.clone(), &fresh, &file.invalid);
    for kind in [
        "not_a_token",
        "too_long",
        "bad_character",
        "truncated",
        "garbled",
        "unsupported_version",
        "malformed",
        "expired",
    ] {
        assert!(file.invalid.iter().any(|v| v.error == kind), "invitation.json has no {kind} vector");
    }
}

// ----- framing.json ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FramingFile {
    description: String,
    valid: Vec<ValidFrame>,
    invalid: Vec<InvalidFrame>,
    messages: Vec<MessageFrame>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ValidFrame {
    description: String,
    limit: usize,
    body: String,
    frame: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InvalidFrame {
    description: String,
    limit: usize,
    /// Everything the stream delivered before it ended.
    bytes: String,
    /// `FrameError::kind()`.
    error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MessageFrame {
    description: String,
    /// `pair_request`, `pair_response`, `hello` or `hello_response`; the
    /// limit is that of the message's protocol.
    message: String,
    frame: String,
    /// `ok`, or `FrameError::kind()`.
    result: String,
    /// When `ok`: the frame the decoded message re-encodes to (unknown
    /// fields dropped, keys in declaration order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canonical: Option<String>,
}

const FRAMING_JSON: &str = include_str!("../../spec/vectors/framing.json");

fn valid_frame(description: &str, limit: usize, body: Vec<u8>) -> ValidFrame {
    let value: ciborium::Value = frame::from_cbor(&body).expect("body is CBOR");
    let encoded = frame::encode(&value, limit).expect("body fits");
    ValidFrame { description: description.into(), limit, body: hex(&body), frame: hex(encoded) }
}

/// What a receiver makes of `bytes` (a whole stream) as one frame of any CBOR.
fn frame_outcome(bytes: &[u8], limit: usize) -> Result<ciborium::Value, FrameError> {
    frame::decode::<ciborium::Value>(bytes, limit)
}

fn invalid_frame(description: &str, limit: usize, bytes: Vec<u8>) -> InvalidFrame {
    let error = match frame_outcome(&bytes, limit) {
        Err(e) => e.kind().to_owned(),
        Ok(_) => panic!("generator bug: invalid frame {description:?} decodes"),
    };
    InvalidFrame { description: description.into(), limit, bytes: hex(bytes), error }
}

fn typed_outcome<T: Serialize + DeserializeOwned>(bytes: &[u8], limit: usize) -> (String, Option<String>) {
    match frame::decode::<T>(bytes, limit) {
        Ok(msg) => ("ok".into(), Some(hex(frame::encode(&msg, limit).expect("re-encodes")))),
        Err(e) => (e.kind().into(), None),
    }
}

fn message_outcome(message: &str, bytes: &[u8]) -> (String, Option<String>) {
    match message {
        "pair_request" => typed_outcome::<PairRequest>(bytes, pairing::MAX_MESSAGE),
        "pair_response" => typed_outcome::<PairResponse>(bytes, pairing::MAX_MESSAGE),
        "hello" => typed_outcome::<Hello>(bytes, contact::MAX_MESSAGE),
        "hello_response" => typed_outcome::<HelloResponse>(bytes, contact::MAX_MESSAGE),
        other => panic!("unknown message type {other:?}"),
    }
}

fn message_frame(description: &str, message: &str, entries: Vec<(&str, ciborium::Value)>) -> MessageFrame {
    use ciborium::Value;
    let map = Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect());
    let bytes = frame::encode(&map, frame::MAX_FRAME).expect("encodes");
    let (result, canonical) = message_outcome(message, &bytes);
    MessageFrame { description: description.into(), message: message.into(), frame: hex(bytes), result, canonical }
}

fn prefix(len: u32) -> Vec<u8> {
    len.to_be_bytes().to_vec()
}

fn generate_framing() -> FramingFile {
    use ciborium::Value;
    let ids = identities();
    let main = main_pairing(&ids);
    let request_body = frame::to_cbor(&main.request).expect("encodes");
    let hello_body = frame::to_cbor(&alice_hello(&ids)).expect("encodes");
    let valid = vec![
        valid_frame(
            "smallest frame: a one-byte body (CBOR unsigned 0)",
            pairing::MAX_MESSAGE,
            frame::to_cbor(&0u8).expect("cbor"),
        ),
        valid_frame("a text string", pairing::MAX_MESSAGE, frame::to_cbor(&"hello").expect("cbor")),
        valid_frame(
            "a body exactly at the limit (16 bytes: a 15-byte byte string)",
            16,
            frame::to_cbor(&ByteBuf::from(vec![0x2a; 15])).expect("cbor"),
        ),
        valid_frame("the PairRequest of pairing.json", pairing::MAX_MESSAGE, request_body),
        valid_frame("the Hello of contact.json", contact::MAX_MESSAGE, hello_body),
    ];
    let pair = pairing::MAX_MESSAGE;
    let one = |mut p: Vec<u8>, body: &[u8]| {
        p.extend_from_slice(body);
        p
    };
    let invalid = vec![
        invalid_frame("pair limit + 1 announced: refused from the prefix alone", pair, prefix(16 * 1024 + 1)),
        invalid_frame("contact limit + 1 announced", contact::MAX_MESSAGE, prefix(64 * 1024 + 1)),
        invalid_frame(
            "a protocol limit above 4 MiB is capped at the absolute 4 MiB",
            8 * 1024 * 1024,
            prefix(4 * 1024 * 1024 + 1),
        ),
        invalid_frame("largest announced length", pair, prefix(u32::MAX)),
        invalid_frame("zero-length frame", pair, prefix(0)),
        invalid_frame("a stream that ends before any byte (no frame at all)", pair, Vec::new()),
        invalid_frame("the stream ends inside the length prefix", pair, vec![0, 0]),
        invalid_frame("the stream ends inside the body (2 of 9 bytes)", pair, one(prefix(9), &[1, 2])),
        invalid_frame("the body is not CBOR (0xff is a lone break)", pair, one(prefix(3), &[0xff, 0xff, 0xff])),
        invalid_frame("bytes after the frame", pair, one(prefix(1), &[0x00, 0x00])),
        invalid_frame("two CBOR items in one body (bytes after the message)", pair, one(prefix(2), &[0x00, 0x00])),
    ];
    let b = |v: Vec<u8>| Value::Bytes(v);
    let t = |s: &str| Value::Text(s.into());
    let req = &main.request;
    let addrs = alice_hello(&ids).addrs;
    let messages = vec![
        message_frame(
            "PairRequest with keys in another order and an unknown key: accepted, the unknown key ignored",
            "pair_request",
            vec![
                ("proof", b(req.proof.clone())),
                ("comment", t("added by a later minor version")),
                ("name", t(&req.name)),
                ("token_id", b(req.token_id.clone())),
            ],
        ),
        message_frame(
            "Accepted with an unknown key: accepted, the unknown key ignored",
            "pair_response",
            vec![
                ("result", t("accepted")),
                ("name", t("alice")),
                ("proof", b(main.inviter_proof.to_vec())),
                ("features", Value::Array(vec![t("share")])),
            ],
        ),
        message_frame(
            "PairRequest without its proof",
            "pair_request",
            vec![("token_id", b(req.token_id.clone())), ("name", t(&req.name))],
        ),
        message_frame(
            "PairRequest whose token_id is a text string instead of a byte string",
            "pair_request",
            vec![
                ("token_id", t("00112233445566778899aabbccddeeff")),
                ("name", t(&req.name)),
                ("proof", b(req.proof.clone())),
            ],
        ),
        message_frame(
            "PairRequest with a duplicated key",
            "pair_request",
            vec![
                ("token_id", b(req.token_id.clone())),
                ("name", t(&req.name)),
                ("name", t("mallory")),
                ("proof", b(req.proof.clone())),
            ],
        ),
        message_frame(
            "Rejected with a reason this version does not know",
            "pair_response",
            vec![("result", t("rejected")), ("reason", t("rate_limited")), ("message", t("try later"))],
        ),
        message_frame(
            "PairResponse with an unknown result",
            "pair_response",
            vec![("result", t("deferred")), ("message", t("later"))],
        ),
        message_frame(
            "PairResponse without a result key",
            "pair_response",
            vec![("name", t("alice")), ("proof", b(main.inviter_proof.to_vec()))],
        ),
        message_frame(
            "Hello with an unknown key: accepted, the unknown key ignored",
            "hello",
            vec![
                ("name", t("alice")),
                ("addrs", Value::Array(addrs.iter().map(|a| b(a.to_vec())).collect())),
                ("agent", t("hearth/0.1.0")),
                ("capabilities", Value::Array(vec![t("share/1")])),
            ],
        ),
        message_frame("Refused without its message", "hello_response", vec![("result", t("refused"))]),
    ];
    FramingFile {
        description: "spec/framing.md: valid frames (body and limit -> frame), invalid streams with the error kind \
                      a receiver reports, and typed messages (tolerance to unknown keys, refusal of malformed \
                      messages). Generated by protocol/tests/vectors.rs."
            .into(),
        valid,
        invalid,
        messages,
    }
}

#[test]
fn framing_vectors() {
    let file = load_or_generate("framing.json", FRAMING_JSON, generate_framing);
    let fresh: Vec<ValidFrame> =
        file.valid.iter().map(|v| valid_frame(&v.description, v.limit, unhex(&v.body))).collect();
    compare("framing.json", "valid", |v| v.description.clone(), &fresh, &file.valid);
    for v in &file.valid {
        let body = unhex(&v.body);
        let bytes = unhex(&v.frame);
        assert_eq!(bytes[..4], (body.len() as u32).to_be_bytes(), "{}: 4-byte big-endian length", v.description);
        assert_eq!(bytes[4..], body[..], "{}", v.description);
        // Decode direction, fed one byte at a time.
        let mut d = Decoder::new(v.limit);
        let mut got = Vec::new();
        for byte in &bytes {
            d.push(&[*byte]);
            while let Some(b) = d.next_frame().expect("valid frame") {
                got.push(b);
            }
        }
        assert_eq!(got, vec![body], "{}", v.description);
        assert_eq!(d.finish(), Ok(()));
        assert!(frame_outcome(&bytes, v.limit).is_ok(), "{}", v.description);
    }
    let fresh: Vec<InvalidFrame> = file
        .invalid
        .iter()
        .map(|v| InvalidFrame {
            error: match frame_outcome(&unhex(&v.bytes), v.limit) {
                Err(e) => e.kind().to_owned(),
                Ok(_) => "ok".to_owned(),
            },
            ..v.clone()
        })
        .collect();
    compare("framing.json", "invalid", |v| v.description.clone(), &fresh, &file.invalid);
    for v in file.invalid.iter().filter(|v| v.error == "too_large") {
        // Refused from the 4-byte prefix alone, before any body byte.
        let mut d = Decoder::new(v.limit);
        d.push(&unhex(&v.bytes)[..4]);
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { .. })), "{}", v.description);
    }
    for kind in ["too_large", "empty", "truncated", "malformed"] {
        assert!(file.invalid.iter().any(|v| v.error == kind), "framing.json has no {kind} vector");
    }
    let fresh: Vec<MessageFrame> = file
        .messages
        .iter()
        .map(|v| {
            let (result, canonical) = message_outcome(&v.message, &unhex(&v.frame));
            MessageFrame { result, canonical, ..v.clone() }
        })
        .collect();
    compare("framing.json", "messages", |v| v.description.clone(), &fresh, &file.messages);
}

// ----- pairing.json ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PairingFile {
    description: String,
    // inputs
    secret: String,
    inviter: String,
    inviter_name: String,
    joiner: String,
    joiner_name: String,
    // outputs
    token_id: String,
    joiner_proof: String,
    inviter_proof: String,
    request_frame: String,
    accepted_frame: String,
    rejected_frames: Vec<RejectedFrame>,
    decisions: Vec<DecisionCase>,
    joiner_cases: Vec<JoinerCase>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RejectedFrame {
    reason: String,
    message: String,
    frame: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    secret: String,
    created_at: u64,
    expires_at: u64,
    used_by: Option<Used>,
    #[serde(default)]
    revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Used {
    peer: String,
    name: String,
    at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RequestFields {
    token_id: String,
    name: String,
    proof: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DecisionCase {
    description: String,
    // inputs (the inviter is the file's `inviter`, named `inviter_name`)
    now: u64,
    remote: String,
    record: Option<Record>,
    request: RequestFields,
    // output
    expected: Decision,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Decision {
    /// `accept` or `reject`.
    decision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_time: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    joiner_name: Option<String>,
    /// The record to store (accept only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    response_frame: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct JoinerCase {
    description: String,
    // inputs (the joiner is the file's `joiner`, named `joiner_name`, holding
    // the invitation made of `secret` by `inviter`, valid[0] of invitation.json)
    remote: String,
    response_frame: String,
    // outputs
    /// `paired`, `rejected`, `wrong_peer`, `bad_inviter_proof`, `bad_inviter_name`.
    outcome: String,
    /// The joiner's state afterwards: `paired`, `failed` or `waiting`.
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

const PAIRING_JSON: &str = include_str!("../../spec/vectors/pairing.json");

/// The main pairing scenario: alice invited with valid[0], bob joins.
struct Main {
    invitation: Invitation,
    inviter: Vec<u8>,
    joiner: Vec<u8>,
    other: Vec<u8>,
    request: PairRequest,
    inviter_proof: [u8; 32],
}

const INVITER_NAME: &str = "alice";
const JOINER_NAME: &str = "bob";

fn main_invitation(ids: &IdentityFile) -> Invitation {
    // In write mode invitation.json is being rewritten by another test: use
    // the (deterministic) generator instead of reading the file.
    let file: InvitationFile =
        if write_mode() { generate_invitation() } else { parse("invitation.json", INVITATION_JSON) };
    let inv = invitation_of(&file.valid[0]);
    assert_eq!(inv.inviter, peer(ids, 0), "invitation.json valid[0] is alice's");
    inv
}

fn main_pairing(ids: &IdentityFile) -> Main {
    let invitation = main_invitation(ids);
    let joiner = peer(ids, 1);
    let request = PairRequest {
        token_id: invitation.token_id().to_vec(),
        name: JOINER_NAME.into(),
        proof: proof(&invitation.secret, Role::Joiner, &invitation.inviter, &joiner).to_vec(),
    };
    let inviter_proof = proof(&invitation.secret, Role::Inviter, &invitation.inviter, &joiner);
    Main { inviter: invitation.inviter.clone(), joiner, other: peer(ids, 2), request, inviter_proof, invitation }
}

fn record_of(r: &Record) -> InvitationRecord {
    InvitationRecord {
        secret: unhex(&r.secret),
        created_at: r.created_at,
        expires_at: r.expires_at,
        used_by: r.used_by.as_ref().map(|u| Redemption { peer: unhex(&u.peer), name: u.name.clone(), at: u.at }),
        revoked: r.revoked,
    }
}

fn record_to(r: &InvitationRecord) -> Record {
    Record {
        secret: hex(&r.secret),
        created_at: r.created_at,
        expires_at: r.expires_at,
        used_by: r.used_by.as_ref().map(|u| Used { peer: hex(&u.peer), name: u.name.clone(), at: u.at }),
        revoked: r.revoked,
    }
}

fn request_of(r: &RequestFields) -> PairRequest {
    PairRequest { token_id: unhex(&r.token_id), name: r.name.clone(), proof: unhex(&r.proof) }
}

fn request_to(r: &PairRequest) -> RequestFields {
    RequestFields { token_id: hex(&r.token_id), name: r.name.clone(), proof: hex(&r.proof) }
}

fn pair_frame<T: Serialize>(msg: &T) -> String {
    hex(frame::encode(msg, pairing::MAX_MESSAGE).expect("pairing message encodes"))
}

fn decide(file_inviter: &[u8], case: &DecisionCase) -> Decision {
    let record = case.record.as_ref().map(record_of);
    let decision = handle_request(
        case.now,
        file_inviter,
        INVITER_NAME,
        &unhex(&case.remote),
        record.as_ref(),
        &request_of(&case.request),
    );
    match decision {
        InviterDecision::Accept { response, joiner, joiner_name, record, first_time } => {
            assert_eq!(hex(&joiner), case.remote, "{}: the contact is the authenticated peer", case.description);
            Decision {
                decision: "accept".into(),
                first_time: Some(first_time),
                joiner_name: Some(joiner_name),
                record: Some(record_to(&record)),
                reason: None,
                response_frame: pair_frame(&response),
            }
        }
        InviterDecision::Reject { response, reason } => {
            assert_eq!(
                response,
                PairResponse::Rejected { reason, message: reason.message().into() },
                "{}",
                case.description
            );
            Decision {
                decision: "reject".into(),
                first_time: None,
                joiner_name: None,
                record: None,
                reason: Some(snake(&reason)),
                response_frame: pair_frame(&response),
            }
        }
    }
}

fn decision_case(
    main: &Main,
    description: &str,
    now: u64,
    remote: &[u8],
    record: Option<InvitationRecord>,
    request: PairRequest,
) -> DecisionCase {
    let mut case = DecisionCase {
        description: description.into(),
        now,
        remote: hex(remote),
        record: record.as_ref().map(record_to),
        request: request_to(&request),
        expected: Decision {
            decision: String::new(),
            first_time: None,
            joiner_name: None,
            record: None,
            reason: None,
            response_frame: String::new(),
        },
    };
    case.expected = decide(&main.inviter, &case);
    case
}

fn joiner_for(main: &Main) -> Joiner {
    let now = main.invitation.expires_at - 3600;
    Joiner::new(now, main.invitation.clone(), &main.joiner, JOINER_NAME).expect("joiner starts")
}

fn joiner_outcome(
    main: &Main,
    remote: &[u8],
    response_frame: &[u8],
) -> (String, String, Option<String>, Option<String>) {
    let response: PairResponse =
        frame::decode(response_frame, pairing::MAX_MESSAGE).expect("joiner case response decodes");
    let mut joiner = joiner_for(main);
    let request = joiner.poll_request().expect("a request");
    assert_eq!(request, main.request, "the joiner sends the main request");
    let result = joiner.handle_response(remote, response);
    let state = match joiner.state() {
        JoinState::Paired(_) => "paired",
        JoinState::Failed(_) => "failed",
        JoinState::Waiting { .. } => "waiting",
        JoinState::Ready => "ready",
    };
    let (outcome, name, reason) = match result {
        Ok(paired) => {
            assert_eq!(paired.peer, remote);
            ("paired", Some(paired.name), None)
        }
        Err(JoinError::Rejected { reason, .. }) => ("rejected", None, Some(snake(&reason))),
        Err(JoinError::WrongPeer) => ("wrong_peer", None, None),
        Err(JoinError::BadInviterProof) => ("bad_inviter_proof", None, None),
        Err(JoinError::BadInviterName) => ("bad_inviter_name", None, None),
        Err(other) => panic!("unexpected joiner error {other:?}"),
    };
    (outcome.into(), state.into(), name, reason)
}

fn joiner_case(main: &Main, description: &str, remote: &[u8], response: PairResponse) -> JoinerCase {
    let bytes = frame::encode(&response, pairing::MAX_MESSAGE).expect("encodes");
    let (outcome, state, name, reason) = joiner_outcome(main, remote, &bytes);
    JoinerCase {
        description: description.into(),
        remote: hex(remote),
        response_frame: hex(bytes),
        outcome,
        state,
        name,
        reason,
    }
}

const ALL_REASONS: [RejectReason; 6] = [
    RejectReason::UnknownInvitation,
    RejectReason::AlreadyUsed,
    RejectReason::Expired,
    RejectReason::BadProof,
    RejectReason::BadRequest,
    RejectReason::OwnInvitation,
];

fn pairing_outputs(file: &mut PairingFile) {
    let secret: [u8; 32] = array(&file.secret);
    let (inviter, joiner) = (unhex(&file.inviter), unhex(&file.joiner));
    let joiner_proof = proof(&secret, Role::Joiner, &inviter, &joiner);
    let inviter_proof = proof(&secret, Role::Inviter, &inviter, &joiner);
    file.token_id = hex(token::token_id(&secret));
    file.joiner_proof = hex(joiner_proof);
    file.inviter_proof = hex(inviter_proof);
    file.request_frame = pair_frame(&PairRequest {
        token_id: token::token_id(&secret).to_vec(),
        name: file.joiner_name.clone(),
        proof: joiner_proof.to_vec(),
    });
    file.accepted_frame =
        pair_frame(&PairResponse::Accepted { name: file.inviter_name.clone(), proof: inviter_proof.to_vec() });
    file.rejected_frames = ALL_REASONS
        .iter()
        .map(|&reason| {
            let message = reason.message().to_owned();
            RejectedFrame {
                reason: snake(&reason),
                frame: pair_frame(&PairResponse::Rejected { reason, message: message.clone() }),
                message,
            }
        })
        .collect();
}

fn generate_pairing() -> PairingFile {
    let ids = identities();
    let m = main_pairing(&ids);
    let inv = &m.invitation;
    let e = inv.expires_at;
    let open = InvitationRecord {
        secret: inv.secret.to_vec(),
        created_at: e - 86_400,
        expires_at: e,
        used_by: None,
        revoked: false,
    };
    let used_by = |peer: &[u8], name: &str| InvitationRecord {
        used_by: Some(Redemption { peer: peer.to_vec(), name: name.into(), at: e - 7200 }),
        ..open.clone()
    };
    let req = m.request.clone();
    let with_name = |name: &str| PairRequest { name: name.into(), ..req.clone() };
    let with_proof = |p: Vec<u8>| PairRequest { proof: p, ..req.clone() };
    let wrong_secret = proof(&[0x55; 32], Role::Joiner, &m.inviter, &m.joiner).to_vec();
    let before = e - 3600;
    let decisions = vec![
        decision_case(&m, "first redemption", before, &m.joiner, Some(open.clone()), req.clone()),
        decision_case(
            &m,
            "first redemption at the expiry second (expiry is inclusive)",
            e,
            &m.joiner,
            Some(open.clone()),
            req.clone(),
        ),
        decision_case(&m, "the name is trimmed", before, &m.joiner, Some(open.clone()), with_name("  bob\t")),
        decision_case(
            &m,
            "retry by the same joiner (its response was lost): accepted again, record unchanged",
            before,
            &m.joiner,
            Some(used_by(&m.joiner, "bob")),
            req.clone(),
        ),
        decision_case(
            &m,
            "retry by the same joiner after the expiry: still accepted",
            e + 3600,
            &m.joiner,
            Some(used_by(&m.joiner, "bob")),
            req.clone(),
        ),
        decision_case(
            &m,
            "replay by the same joiner after the contact was removed (revoked): already used",
            before,
            &m.joiner,
            Some(InvitationRecord { revoked: true, ..used_by(&m.joiner, "bob") }),
            req.clone(),
        ),
        decision_case(
            &m,
            "retry by the same joiner under another name: accepted, the record keeps the first name",
            before,
            &m.joiner,
            Some(used_by(&m.joiner, "bob")),
            with_name("Bobby"),
        ),
        decision_case(
            &m,
            "already redeemed by another node",
            before,
            &m.joiner,
            Some(used_by(&m.other, "carol")),
            req.clone(),
        ),
        decision_case(&m, "one second after the expiry", e + 1, &m.joiner, Some(open.clone()), req.clone()),
        decision_case(&m, "no stored invitation under this token id", before, &m.joiner, None, req.clone()),
        decision_case(
            &m,
            "unknown is decided before the proof is looked at",
            before,
            &m.joiner,
            None,
            with_proof(vec![0; 32]),
        ),
        decision_case(
            &m,
            "proof made with another secret",
            before,
            &m.joiner,
            Some(open.clone()),
            with_proof(wrong_secret.clone()),
        ),
        decision_case(
            &m,
            "the inviter's proof sent back as the joiner's (reflection)",
            before,
            &m.joiner,
            Some(open.clone()),
            with_proof(m.inviter_proof.to_vec()),
        ),
        decision_case(
            &m,
            "bob's request replayed by carol (the proof binds the joiner's peer id)",
            before,
            &m.other,
            Some(open.clone()),
            req.clone(),
        ),
        decision_case(
            &m,
            "the proof is checked before the expiry",
            e + 1,
            &m.joiner,
            Some(open.clone()),
            with_proof(wrong_secret.clone()),
        ),
        decision_case(
            &m,
            "the proof is checked before the redemption",
            before,
            &m.joiner,
            Some(used_by(&m.other, "carol")),
            with_proof(wrong_secret),
        ),
        decision_case(
            &m,
            "token id of 15 bytes",
            before,
            &m.joiner,
            Some(open.clone()),
            PairRequest { token_id: req.token_id[..15].to_vec(), ..req.clone() },
        ),
        decision_case(
            &m,
            "proof of 31 bytes",
            before,
            &m.joiner,
            Some(open.clone()),
            with_proof(req.proof[..31].to_vec()),
        ),
        decision_case(&m, "name empty after trimming", before, &m.joiner, Some(open.clone()), with_name(" \t ")),
        decision_case(&m, "name of 65 bytes", before, &m.joiner, Some(open.clone()), with_name(&"b".repeat(65))),
        decision_case(&m, "name with a control character", before, &m.joiner, Some(open.clone()), with_name("bo\nb")),
        decision_case(
            &m,
            "malformed requests are refused before the store is consulted",
            before,
            &m.joiner,
            None,
            with_name(""),
        ),
        decision_case(
            &m,
            "the inviter redeeming its own invitation",
            before,
            &m.inviter,
            Some(open.clone()),
            with_proof(proof(&inv.secret, Role::Joiner, &m.inviter, &m.inviter).to_vec()),
        ),
    ];
    let accepted = |name: &str, p: Vec<u8>| PairResponse::Accepted { name: name.into(), proof: p };
    let joiner_cases = vec![
        joiner_case(&m, "accepted by the inviter", &m.inviter, accepted("alice", m.inviter_proof.to_vec())),
        joiner_case(&m, "the inviter's name is trimmed", &m.inviter, accepted("  alice ", m.inviter_proof.to_vec())),
        joiner_case(
            &m,
            "an answer from a node other than the inviter is ignored (not final)",
            &m.other,
            accepted("alice", m.inviter_proof.to_vec()),
        ),
        joiner_case(
            &m,
            "the joiner's own proof reflected back",
            &m.inviter,
            accepted("alice", m.request.proof.clone()),
        ),
        joiner_case(
            &m,
            "an inviter proof for another joiner",
            &m.inviter,
            accepted("alice", proof(&inv.secret, Role::Inviter, &m.inviter, &m.other).to_vec()),
        ),
        joiner_case(&m, "an empty inviter name", &m.inviter, accepted(" ", m.inviter_proof.to_vec())),
        joiner_case(
            &m,
            "rejected by the inviter",
            &m.inviter,
            PairResponse::Rejected {
                reason: RejectReason::AlreadyUsed,
                message: RejectReason::AlreadyUsed.message().into(),
            },
        ),
    ];
    let mut file = PairingFile {
        description: "spec/pairing.md: proofs and frames of alice (inviter, invitation.json valid[0]) and bob \
                      (joiner); the inviter's decisions (stored record, request, clock -> decision); the joiner's \
                      handling of responses. Peer ids are identity.json's. Generated by protocol/tests/vectors.rs."
            .into(),
        secret: hex(inv.secret),
        inviter: hex(&m.inviter),
        inviter_name: INVITER_NAME.into(),
        joiner: hex(&m.joiner),
        joiner_name: JOINER_NAME.into(),
        token_id: String::new(),
        joiner_proof: String::new(),
        inviter_proof: String::new(),
        request_frame: String::new(),
        accepted_frame: String::new(),
        rejected_frames: Vec::new(),
        decisions,
        joiner_cases,
    };
    pairing_outputs(&mut file);
    file
}

#[test]
fn pairing_vectors() {
    let file = load_or_generate("pairing.json", PAIRING_JSON, generate_pairing);
    let ids = identities();
    for p in [&file.inviter, &file.joiner] {
        assert!(known_peer(&ids, p), "{p} is not an identity.json peer id");
    }
    assert_eq!(file.inviter_name, INVITER_NAME);
    assert_eq!(file.joiner_name, JOINER_NAME);
    let main = main_pairing(&ids);
    assert_eq!(file.secret, hex(main.invitation.secret), "pairing.json uses invitation.json valid[0]");
    assert_eq!(file.inviter, hex(&main.inviter));
    assert_eq!(file.joiner, hex(&main.joiner));

    // Encode direction.
    let mut fresh = file.clone();
    pairing_outputs(&mut fresh);
    let reasons = std::mem::take(&mut fresh.rejected_frames);
    compare("pairing.json", "rejected_frames", |r| r.reason.clone(), &reasons, &file.rejected_frames);
    fresh.rejected_frames = file.rejected_frames.clone();
    compare("pairing.json", "top level", |_| "proofs and frames".to_owned(), &[fresh], std::slice::from_ref(&file));

    // Decode direction.
    let request: PairRequest = frame::decode(&unhex(&file.request_frame), pairing::MAX_MESSAGE).expect("decodes");
    assert_eq!(request, main.request);
    let accepted: PairResponse = frame::decode(&unhex(&file.accepted_frame), pairing::MAX_MESSAGE).expect("decodes");
    assert_eq!(accepted, PairResponse::Accepted { name: INVITER_NAME.into(), proof: unhex(&file.inviter_proof) });
    assert_eq!(file.rejected_frames.len(), ALL_REASONS.len());
    for r in &file.rejected_frames {
        let got: PairResponse = frame::decode(&unhex(&r.frame), pairing::MAX_MESSAGE).expect("decodes");
        assert_eq!(got, PairResponse::Rejected { reason: reason_from(&r.reason), message: r.message.clone() });
    }

    // Decisions.
    let fresh: Vec<DecisionCase> =
        file.decisions.iter().map(|c| DecisionCase { expected: decide(&main.inviter, c), ..c.clone() }).collect();
    compare("pairing.json", "decisions", |c| c.description.clone(), &fresh, &file.decisions);
    for c in &file.decisions {
        let got: PairResponse =
            frame::decode(&unhex(&c.expected.response_frame), pairing::MAX_MESSAGE).expect("decodes");
        match (&got, c.expected.decision.as_str()) {
            (PairResponse::Accepted { .. }, "accept") | (PairResponse::Rejected { .. }, "reject") => {}
            _ => panic!("{}: response does not match the decision", c.description),
        }
    }
    for (decision, extra) in [("accept", Some(true)), ("accept", Some(false)), ("reject", None)] {
        assert!(
            file.decisions.iter().any(|c| c.expected.decision == decision && c.expected.first_time == extra),
            "pairing.json has no {decision} {extra:?} case"
        );
    }
    for reason in ALL_REASONS {
        let name = snake(&reason);
        assert!(
            file.decisions.iter().any(|c| c.expected.reason.as_deref() == Some(name.as_str())),
            "pairing.json has no decision rejecting with {name}"
        );
    }

    // Joiner.
    let fresh: Vec<JoinerCase> = file
        .joiner_cases
        .iter()
        .map(|c| {
            let (outcome, state, name, reason) = joiner_outcome(&main, &unhex(&c.remote), &unhex(&c.response_frame));
            JoinerCase { outcome, state, name, reason, ..c.clone() }
        })
        .collect();
    compare("pairing.json", "joiner_cases", |c| c.description.clone(), &fresh, &file.joiner_cases);

    // A retried request is the same request (what makes retries idempotent).
    let mut joiner = joiner_for(&main);
    let first = joiner.poll_request();
    assert_eq!(first.as_ref(), Some(&main.request));
    assert_eq!(joiner.poll_request(), first);
    assert_eq!(joiner.state(), &JoinState::Waiting { attempts: 2 });
}

// ----- contact.json ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ContactFile {
    description: String,
    hello: HelloVector,
    welcome: HelloVector,
    refused: RefusedVector,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HelloVector {
    /// Inputs: the greeting.
    name: String,
    addrs: Vec<Addr>,
    agent: String,
    /// Output: the `Hello` frame (`hello`) or the `Welcome` frame carrying it (`welcome`).
    frame: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RefusedVector {
    message: String,
    frame: String,
}

const CONTACT_JSON: &str = include_str!("../../spec/vectors/contact.json");

fn alice_hello(ids: &IdentityFile) -> Hello {
    hello_of(&hello_vector(
        "alice",
        vec![addr(ids, "/ip4/192.168.1.20/udp/4001/quic-v1"), addr(ids, "/ip4/192.168.1.20/tcp/4001")],
        false,
    ))
}

fn hello_of(v: &HelloVector) -> Hello {
    Hello::new(v.name.clone(), v.addrs.iter().map(|a| ByteBuf::from(unhex(&a.bytes))).collect(), v.agent.clone(), None)
}

fn contact_frame<T: Serialize>(msg: &T) -> String {
    hex(frame::encode(msg, contact::MAX_MESSAGE).expect("contact message encodes"))
}

fn hello_vector(name: &str, addrs: Vec<Addr>, welcome: bool) -> HelloVector {
    let mut v = HelloVector { name: name.into(), addrs, agent: "hearth/0.1.0".into(), frame: String::new() };
    let hello = hello_of(&v);
    v.frame = if welcome { contact_frame(&contact::answer(true, hello)) } else { contact_frame(&hello) };
    v
}

fn refused_vector() -> RefusedVector {
    let answer = contact::answer(false, Hello::new("bob".into(), Vec::new(), "hearth/0.1.0".into(), None));
    let HelloResponse::Refused { message } = &answer else { panic!("a stranger is refused") };
    RefusedVector { message: message.clone(), frame: contact_frame(&answer) }
}

fn generate_contact() -> ContactFile {
    let ids = identities();
    let hello = alice_hello(&ids);
    ContactFile {
        description: "spec/contact.md: alice's Hello (dialer), bob's Welcome (listener, alice is its contact), and \
                      the Refused answer to a node that is not a contact. Generated by protocol/tests/vectors.rs."
            .into(),
        hello: hello_vector(
            &hello.name,
            vec![addr(&ids, "/ip4/192.168.1.20/udp/4001/quic-v1"), addr(&ids, "/ip4/192.168.1.20/tcp/4001")],
            false,
        ),
        welcome: hello_vector("bob", vec![addr(&ids, "/ip4/10.0.0.5/tcp/4002")], true),
        refused: refused_vector(),
    }
}

#[test]
fn contact_vectors() {
    let file = load_or_generate("contact.json", CONTACT_JSON, generate_contact);
    // Encode direction.
    let fresh = ContactFile {
        hello: hello_vector(&file.hello.name, file.hello.addrs.clone(), false),
        welcome: hello_vector(&file.welcome.name, file.welcome.addrs.clone(), true),
        refused: refused_vector(),
        ..file.clone()
    };
    compare("contact.json", "all", |_| "hello, welcome, refused".to_owned(), &[fresh], std::slice::from_ref(&file));
    assert_eq!(file.refused.message, contact::NOT_A_CONTACT);
    // Decode direction.
    let hello: Hello = frame::decode(&unhex(&file.hello.frame), contact::MAX_MESSAGE).expect("decodes");
    assert_eq!(hello, hello_of(&file.hello));
    let welcome: HelloResponse = frame::decode(&unhex(&file.welcome.frame), contact::MAX_MESSAGE).expect("decodes");
    assert_eq!(welcome, HelloResponse::Welcome { hello: hello_of(&file.welcome) });
    let refused: HelloResponse = frame::decode(&unhex(&file.refused.frame), contact::MAX_MESSAGE).expect("decodes");
    assert_eq!(refused, HelloResponse::Refused { message: file.refused.message.clone() });
    // At most 32 advertised addresses are looked at.
    let many = Hello { addrs: vec![ByteBuf::from(unhex(&file.hello.addrs[0].bytes)); 40], ..hello };
    assert_eq!(many.bounded_addrs().count(), contact::MAX_ADDRS);
}

#[test]
fn error_kinds_are_stable() {
    let token_kinds = [
        TokenError::NotAToken,
        TokenError::TooLong(0),
        TokenError::BadCharacter(0),
        TokenError::Truncated("x"),
        TokenError::Garbled,
        TokenError::UnsupportedVersion(0),
        TokenError::Malformed("x"),
        TokenError::Expired(0),
    ]
    .map(|e| e.kind());
    assert_eq!(
        token_kinds,
        [
            "not_a_token",
            "too_long",
            "bad_character",
            "truncated",
            "garbled",
            "unsupported_version",
            "malformed",
            "expired"
        ]
    );
    let frame_kinds = [
        FrameError::TooLarge { len: 0, limit: 0 },
        FrameError::Empty,
        FrameError::Truncated { got: 0, want: 0 },
        FrameError::Malformed(String::new()),
        FrameError::Encode(String::new()),
    ]
    .map(|e| e.kind());
    assert_eq!(frame_kinds, ["too_large", "empty", "truncated", "malformed", "encode"]);
}
