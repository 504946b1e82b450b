//! The bank view log: only the owner's entries are ever accepted, in order,
//! by every holder; revocation ends the log.

mod common;

use common::{Ed25519, Key};
use hearth_crdt::bank::{Body, Entry, Rejection, ViewAccount, ViewError, ViewLog, ViewOp, MAX_OPS_PER_ENTRY};
use hearth_crdt::doc::Signer;

fn account() -> ViewAccount {
    ViewAccount { name: "Compte de maman".into(), currency: "EUR".into(), kind: "Checkings".into(), since: None }
}

fn op(key: &str, amount: &str) -> ViewOp {
    ViewOp {
        key: key.into(),
        date: "2024-01-05".into(),
        amount: amount.into(),
        currency: "EUR".into(),
        label: "PHARMACIE".into(),
        kind: "debit".into(),
        original: None,
        category: None,
    }
}

#[test]
fn viewers_accept_the_owners_log_and_nothing_else() {
    let (owner, viewer, other) = (Key::named(1, "parent"), Key::named(2, "child"), Key::named(3, "child 2"));
    let mut log = ViewLog::create(&[9; 16], &owner, &viewer.peer(), account());
    log.append_ops(&owner, vec![op("id:1", "-12.00"), op("id:2", "-3.50")]).expect("ops");
    log.append(&owner, Body::Balance { amount: "984.50".into(), date: "2024-01-31".into() }).expect("balance");

    let mut copy = ViewLog::empty(&[9; 16], &owner.peer(), &viewer.peer());
    let report = copy.receive(log.entries_from(0).to_vec(), &Ed25519);
    assert_eq!((report.applied, report.rejected.len()), (3, 0));
    assert_eq!(copy.state(), log.state());
    assert_eq!(copy.state().ops.len(), 2);
    assert_eq!(copy.summary(), (Some(&account()), 2, Some(("984.50", "2024-01-31"))));
    // The same entries again are duplicates, not errors.
    assert_eq!(copy.receive(log.entries_from(1).to_vec(), &Ed25519).duplicates, 2);

    // A viewer cannot write: locally refused...
    let mut viewer_side = copy.clone();
    assert_eq!(viewer_side.append(&viewer, Body::Revoked).map(|_| ()), Err(ViewError::NotOwner));
    // ... and a forged entry signed with the viewer's key is refused by the
    // owner and by any other holder.
    let body = Body::Operations { ops: vec![op("id:666", "-5000.00")] };
    let prev = Entry::hash(&[9; 16], 2, &log.entries_from(2)[0].prev, &log.entries_from(2)[0].body).to_vec();
    let forged = Entry {
        seq: 3,
        prev: prev.clone(),
        signature: viewer.sign(&Entry::signing_message(&[9; 16], 3, &prev, &body)),
        body: body.clone(),
    };
    for holder in [&mut log, &mut copy] {
        let before = holder.state();
        let report = holder.receive(vec![forged.clone()], &Ed25519);
        assert_eq!(report.rejected, vec![(3, Rejection::BadSignature)]);
        assert_eq!(holder.state(), before);
    }
    // A real owner entry whose content was altered in transit is refused too.
    let mut altered = log.entries_from(1)[0].clone();
    if let Body::Operations { ops } = &mut altered.body {
        ops[0].amount = "-1200.00".into();
    }
    let mut fresh = ViewLog::empty(&[9; 16], &owner.peer(), &viewer.peer());
    fresh.receive(log.entries_from(0)[..1].to_vec(), &Ed25519);
    assert_eq!(fresh.receive(vec![altered], &Ed25519).rejected[0].1, Rejection::BadSignature);

    // A view addressed to someone else is not accepted by a third node.
    let mut third = ViewLog::empty(&[9; 16], &owner.peer(), &other.peer());
    assert_eq!(third.receive(log.entries_from(0).to_vec(), &Ed25519).rejected[0].1, Rejection::BadGenesis);
    // Nor a log whose genesis a viewer made up, claiming the owner.
    let fake = ViewLog::create(&[9; 16], &viewer, &other.peer(), account());
    let mut third = ViewLog::empty(&[9; 16], &owner.peer(), &other.peer());
    assert_eq!(third.receive(fake.entries_from(0).to_vec(), &Ed25519).rejected[0].1, Rejection::BadSignature);
}

#[test]
fn order_is_enforced_and_revocation_is_final() {
    let (owner, viewer) = (Key::new(1), Key::new(2));
    let mut log = ViewLog::create(&[1; 16], &owner, &viewer.peer(), account());
    let ops: Vec<ViewOp> = (0..MAX_OPS_PER_ENTRY + 1).map(|i| op(&format!("id:{i}"), "-1.00")).collect();
    assert_eq!(log.append_ops(&owner, ops).expect("ops"), 2, "split in entries of bounded size");
    let mut copy = ViewLog::empty(&[1; 16], &owner.peer(), &viewer.peer());
    // A gap is refused; the missing entry then the rest are accepted.
    let report = copy.receive(log.entries_from(1).to_vec(), &Ed25519);
    assert_eq!(report.rejected[0].1, Rejection::OutOfOrder { got: 1, have: 0 });
    assert_eq!(copy.receive(log.entries_from(0).to_vec(), &Ed25519).applied, 3);
    assert_eq!(copy.state().ops.len(), MAX_OPS_PER_ENTRY + 1);

    log.append(&owner, Body::Revoked).expect("revoke");
    assert_eq!(log.append(&owner, Body::Revoked).map(|_| ()), Err(ViewError::Revoked));
    assert_eq!(copy.receive(log.entries_from(3).to_vec(), &Ed25519).applied, 1);
    assert!(copy.is_revoked() && copy.state().revoked);
    // Bytes round trip.
    let e = &log.entries_from(0)[0];
    assert_eq!(&Entry::from_bytes(&e.to_bytes()).expect("decode"), e);
    assert!(matches!(Entry::from_bytes(b"\xff\x00"), Err(Rejection::Malformed(_))));
}
