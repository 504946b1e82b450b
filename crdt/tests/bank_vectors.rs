//! `spec/vectors/bank.json` (spec/bank.md §The view log): a complete view
//! log (genesis, operations, balance, revocation) with, per entry, the body's
//! CBOR, the hash, the signing message, the owner's ed25519 signature and
//! the whole entry's CBOR; and the rejection of altered entries.
//!
//! Without `HEARTH_WRITE_VECTORS=1` this only compares the file with what
//! the code computes and fails naming the first difference; with it, the
//! file is rewritten:
//!
//! ```text
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-crdt --test bank_vectors
//! ```

mod common;

use std::path::PathBuf;

use common::{Ed25519, Key};
use hearth_crdt::bank::{Body, Entry, ViewAccount, ViewLog, ViewOp};
use hearth_crdt::doc::Signer;
use serde_json::{json, Value};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("cbor");
    out
}

fn generate() -> Value {
    let (owner, viewer) = (Key::new(1), Key::new(2));
    let view = [9u8; 16];
    let mut log = ViewLog::create(
        &view,
        &owner,
        &viewer.peer(),
        ViewAccount {
            name: "Compte courant".into(),
            currency: "EUR".into(),
            kind: "Checkings".into(),
            since: Some("2024-01-01".into()),
        },
    );
    let op = |key: &str, date: &str, amount: &str, label: &str| ViewOp {
        key: key.into(),
        date: date.into(),
        amount: amount.into(),
        currency: "EUR".into(),
        label: label.into(),
        kind: "other".into(),
        original: None,
        category: None,
    };
    log.append_ops(
        &owner,
        vec![
            op("id:J1", "2024-01-03", "-23.60", "PHARMACIE"),
            ViewOp { original: Some(("USD".into(), "-10.00".into())), ..op("fp:00", "2024-01-04", "-9.25", "SHOP") },
        ],
    )
    .expect("ops");
    log.append(&owner, Body::Balance { amount: "1426.40".into(), date: "2024-01-31".into() }).expect("balance");
    log.append(&owner, Body::Revoked).expect("revoke");
    let entries: Vec<Value> = log
        .entries_from(0)
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "prev": hex(&e.prev),
                "body_cbor": hex(&cbor(&e.body)),
                "hash": hex(&Entry::hash(&view, e.seq, &e.prev, &e.body)),
                "signing_message": hex(&Entry::signing_message(&view, e.seq, &e.prev, &e.body)),
                "signature": hex(&e.signature),
                "entry_cbor": hex(&e.to_bytes()),
            })
        })
        .collect();
    // Rejections: a copy fed the log with one entry altered each way.
    let all = log.entries_from(0).to_vec();
    let mut cases = Vec::new();
    let mut case = |description: &str, mut entries: Vec<Entry>, alter: &dyn Fn(&mut Vec<Entry>)| {
        alter(&mut entries);
        let mut copy = ViewLog::empty(&view, &owner.peer(), &viewer.peer());
        let report = copy.receive(entries, &Ed25519);
        cases.push(json!({
            "description": description,
            "applied": report.applied,
            "rejected": report.rejected.iter().map(|(seq, r)| json!([seq, format!("{r:?}")])).collect::<Vec<_>>(),
        }));
    };
    case("the owner's log", all.clone(), &|_| {});
    case("an amount changed after signing", all.clone(), &|e| {
        if let Body::Operations { ops } = &mut e[1].body {
            ops[0].amount = "-2360.00".into();
        }
    });
    case("entry 2 signed by the viewer", all.clone(), &|e| {
        e[2].signature = viewer.sign(&Entry::signing_message(&[9; 16], 2, &e[2].prev, &e[2].body));
    });
    case("entry 1 missing", all.clone(), &|e| {
        e.remove(1);
    });
    json!({
        "description": "spec/bank.md: a view log by owner Key(1) for viewer Key(2) (ed25519 seeds [1;32] and [2;32], peer = raw public key)",
        "view": hex(&view),
        "owner": hex(&owner.peer()),
        "viewer": hex(&viewer.peer()),
        "entries": entries,
        "receive": cases,
    })
}

#[test]
fn bank_view_vectors() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/bank.json");
    let generated = generate();
    if std::env::var("HEARTH_WRITE_VECTORS").is_ok_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&generated).expect("json") + "\n";
        std::fs::write(&path, text).expect("write spec/vectors/bank.json");
        return;
    }
    let text = std::fs::read_to_string(&path).expect("spec/vectors/bank.json (regenerate with HEARTH_WRITE_VECTORS=1)");
    let stored: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(stored, generated, "spec/vectors/bank.json differs from the code");
    // And the stored entries decode and verify on their own.
    let entries: Vec<Entry> = stored["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let bytes: Vec<u8> = (0..e["entry_cbor"].as_str().expect("hex").len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&e["entry_cbor"].as_str().expect("hex")[i..i + 2], 16).expect("hex"))
                .collect();
            Entry::from_bytes(&bytes).expect("entry")
        })
        .collect();
    let (owner, viewer) = (Key::new(1), Key::new(2));
    let mut log = ViewLog::empty(&[9; 16], &owner.peer(), &viewer.peer());
    assert_eq!(log.receive(entries, &Ed25519).applied, 4);
    assert!(log.is_revoked());
}
