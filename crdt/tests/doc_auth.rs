//! Authorisation of share-document changes with real ed25519 signatures:
//! what each role may do, forged and tampered changes from hostile members,
//! and convergence of honest replicas.

mod common;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ReadDoc, ScalarValue, ROOT};
use common::{Ed25519, Key};
use hearth_crdt::doc::{member_key, signing_message, Rejection, Role, ShareDoc, SignedChange, Signer};

struct World {
    owner: Key,
    rw: Key,
    ro: Key,
    a: ShareDoc,
    b: ShareDoc,
    c: ShareDoc,
}

/// Alice owns the share, Bob is read-write, Carol read-only; all in sync.
fn world() -> World {
    let (owner, rw, ro) = (Key::new(1), Key::new(2), Key::new(3));
    let (mut a, _) = ShareDoc::create(b"share-1", "Family", &owner, 1_800_000_000).expect("create");
    a.set_role(&rw.peer(), Some(Role::ReadWrite)).expect("role");
    a.set_role(&ro.peer(), Some(Role::ReadOnly)).expect("role");
    a.commit(&owner, 1_800_000_001).expect("commit");
    let mut b = ShareDoc::join(&owner.peer(), &rw.peer());
    let mut c = ShareDoc::join(&owner.peer(), &ro.peer());
    let all = a.changes_for(&[]);
    for doc in [&mut b, &mut c] {
        let report = doc.receive(all.clone(), &Ed25519);
        assert!(report.rejected.is_empty(), "{report:?}");
        assert_eq!(report.applied.len(), 2);
    }
    World { owner, rw, ro, a, b, c }
}

/// A change made outside `ShareDoc`, the way a tampered node would: apply
/// the share's history to a raw Automerge document, edit, sign.
fn forge(base: &mut ShareDoc, key: &Key, edit: impl FnOnce(&mut AutoCommit)) -> SignedChange {
    let mut raw = base.automerge().fork();
    raw.set_actor(ActorId::from(key.peer()));
    edit(&mut raw);
    let hash = raw.commit_with(CommitOptions::default().with_time(1_800_000_100)).expect("a change");
    let change = raw.get_change_by_hash(&hash).expect("change");
    SignedChange { change: change.raw_bytes().to_vec(), signature: key.sign(&signing_message(&hash)) }
}

fn entries(doc: &mut AutoCommit) -> automerge::ObjId {
    doc.get(ROOT, "entries").expect("get").expect("entries").1
}

fn members(doc: &mut AutoCommit) -> automerge::ObjId {
    doc.get(ROOT, "members").expect("get").expect("members").1
}

fn rejection(report: &hearth_crdt::doc::ReceiveReport) -> Rejection {
    assert!(report.applied.is_empty(), "{report:?}");
    report.rejected.first().expect("a rejection").2.clone()
}

#[test]
fn a_read_write_member_edits_and_everyone_accepts() {
    let mut w = world();
    w.b.put_entry_field(&[9; 16], "size", ScalarValue::Uint(42)).expect("edit");
    w.b.put_move(&format!("{:016x}-{}", 1, member_key(&w.rw.peer())), vec![1, 2, 3]).expect("move");
    let change = w.b.commit(&w.rw, 1_800_000_010).expect("commit").expect("a change");
    for doc in [&mut w.a, &mut w.c] {
        let report = doc.receive(vec![change.clone()], &Ed25519);
        assert_eq!(report.applied.len(), 1, "{report:?}");
        assert_eq!(doc.entry_field(&[9; 16], "size"), vec![ScalarValue::Uint(42)]);
        assert_eq!(doc.moves().len(), 1);
    }
    // Receiving it again changes nothing.
    assert_eq!(w.a.receive(vec![change], &Ed25519), Default::default());
}

#[test]
fn a_read_only_member_cannot_write_even_by_tampering() {
    let mut w = world();
    // Through the API: refused locally and rolled back; nothing to send.
    let heads = w.c.heads();
    w.c.put_entry_field(&[9; 16], "size", ScalarValue::Uint(1)).expect("edit");
    let err = w.c.commit(&w.ro, 1_800_000_010).expect_err("read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(w.c.heads(), heads);
    assert!(w.c.entry_field(&[9; 16], "size").is_empty());

    // A tampered node signs its own change: the owner and the other members refuse it.
    let forged = forge(&mut w.c, &w.ro, |raw| {
        let e = entries(raw);
        raw.put(&e, "0909", "evil").expect("put");
    });
    for doc in [&mut w.a, &mut w.b] {
        let report = doc.receive(vec![forged.clone()], &Ed25519);
        assert_eq!(rejection(&report), Rejection::ReadOnly);
        assert!(doc.entry_field(&[9; 16], "size").is_empty());
    }
    // And the owner never forwards it.
    let b_heads = w.b.heads();
    assert!(w.a.changes_for(&b_heads).is_empty());
}

#[test]
fn only_the_owner_changes_membership_and_structure() {
    let mut w = world();
    let grab = forge(&mut w.b, &w.rw, |raw| {
        let m = members(raw);
        raw.put(&m, member_key(&Key::new(9).peer()), "owner").expect("put");
    });
    assert_eq!(rejection(&w.a.receive(vec![grab.clone()], &Ed25519)), Rejection::OwnerOnly("the membership"));
    assert_eq!(rejection(&w.c.receive(vec![grab], &Ed25519)), Rejection::OwnerOnly("the membership"));
    let rename = forge(&mut w.b, &w.rw, |raw| {
        raw.put(ROOT, "meta", "gone").expect("put");
    });
    assert_eq!(rejection(&w.a.receive(vec![rename], &Ed25519)), Rejection::OwnerOnly("the share's structure"));
    assert_eq!(w.a.role_of(&Key::new(9).peer()), None);

    // The owner may.
    w.a.set_role(&w.ro.peer(), Some(Role::ReadWrite)).expect("role");
    let change = w.a.commit(&w.owner, 1_800_000_020).expect("commit").expect("change");
    assert_eq!(w.b.receive(vec![change], &Ed25519).applied.len(), 1);
    assert_eq!(w.b.role_of(&w.ro.peer()), Some(Role::ReadWrite));
}

#[test]
fn forged_authors_bad_signatures_and_strangers_are_refused() {
    let mut w = world();
    // A move op keyed with the owner's actor, written by bob.
    let owner_hex = member_key(&w.owner.peer());
    let forged_move = forge(&mut w.b, &w.rw, |raw| {
        let moves = raw.get(ROOT, "moves").expect("get").expect("moves").1;
        raw.put(&moves, format!("{:016x}-{owner_hex}", 7), ScalarValue::Bytes(vec![1])).expect("put");
    });
    assert_eq!(rejection(&w.a.receive(vec![forged_move], &Ed25519)), Rejection::ForgedMove);

    // Bob's own move, then an overwrite and a deletion of it: moves are immutable.
    let own_key = format!("{:016x}-{}", 8, member_key(&w.rw.peer()));
    w.b.put_move(&own_key, vec![1]).expect("move");
    let own = w.b.commit(&w.rw, 1_800_000_060).expect("commit").expect("change");
    assert_eq!(w.a.receive(vec![own], &Ed25519).applied.len(), 1);
    let key = own_key.clone();
    let overwrite = forge(&mut w.b, &w.rw, move |raw| {
        let moves = raw.get(ROOT, "moves").expect("get").expect("moves").1;
        raw.put(&moves, key, ScalarValue::Bytes(vec![2])).expect("put");
    });
    assert_eq!(rejection(&w.a.receive(vec![overwrite], &Ed25519)), Rejection::ForgedMove);
    let key = own_key.clone();
    let erase = forge(&mut w.b, &w.rw, move |raw| {
        let moves = raw.get(ROOT, "moves").expect("get").expect("moves").1;
        raw.delete(&moves, key).expect("delete");
    });
    assert_eq!(rejection(&w.a.receive(vec![erase], &Ed25519)), Rejection::ForgedMove);

    // Bob's change signed by carol's key.
    let mut stolen = forge(&mut w.b, &w.rw, |raw| {
        let e = entries(raw);
        raw.put(&e, "0a0a", "x").expect("put");
    });
    let Ok(change) = automerge::Change::try_from(stolen.change.as_slice()) else { panic!("change") };
    stolen.signature = w.ro.sign(&signing_message(&change.hash()));
    assert_eq!(rejection(&w.a.receive(vec![stolen], &Ed25519)), Rejection::BadSignature);

    // A stranger who somehow has the document.
    let stranger = Key::new(7);
    let intrusion = forge(&mut w.b, &stranger, |raw| {
        let e = entries(raw);
        raw.put(&e, "0b0b", "x").expect("put");
    });
    assert_eq!(rejection(&w.a.receive(vec![intrusion], &Ed25519)), Rejection::NotAMember);

    // Garbage bytes.
    let junk = SignedChange { change: vec![1, 2, 3], signature: vec![0; 64] };
    assert!(matches!(rejection(&w.a.receive(vec![junk], &Ed25519)), Rejection::Malformed(_)));

    // A first change by someone else than the owner.
    let mut fresh = ShareDoc::join(&w.owner.peer(), &w.rw.peer());
    let (_, foreign) = ShareDoc::create(b"share-1", "Fake", &w.rw, 1).expect("create");
    assert_eq!(rejection(&fresh.receive(vec![foreign], &Ed25519)), Rejection::ForeignGenesis);
}

#[test]
fn concurrent_creation_of_one_entry_loses_no_value() {
    let mut w = world();
    w.a.put_entry_field(&[6; 16], "hash", ScalarValue::Bytes(vec![0xaa; 32])).expect("edit");
    let ca = w.a.commit(&w.owner, 1_800_000_050).expect("commit").expect("change");
    w.b.put_entry_field(&[6; 16], "hash", ScalarValue::Bytes(vec![0xbb; 32])).expect("edit");
    let cb = w.b.commit(&w.rw, 1_800_000_051).expect("commit").expect("change");
    w.a.receive(vec![cb], &Ed25519);
    w.b.receive(vec![ca], &Ed25519);
    let values = w.a.entry_field(&[6; 16], "hash");
    assert_eq!(values.len(), 2, "{values:?}");
    assert_eq!(values, w.b.entry_field(&[6; 16], "hash"));
}

#[test]
fn changes_built_on_a_rejected_change_wait_and_are_reported() {
    let mut w = world();
    let mut tampered = w.c.automerge().fork();
    tampered.set_actor(ActorId::from(w.ro.peer()));
    let e = entries(&mut tampered);
    tampered.put(&e, "01", "a").expect("put");
    let h1 = tampered.commit_with(CommitOptions::default().with_time(1)).expect("c1");
    tampered.put(&e, "02", "b").expect("put");
    let h2 = tampered.commit_with(CommitOptions::default().with_time(2)).expect("c2");
    let signed: Vec<SignedChange> = [h1, h2]
        .iter()
        .map(|h| {
            let c = tampered.get_change_by_hash(h).expect("change");
            SignedChange { change: c.raw_bytes().to_vec(), signature: w.ro.sign(&signing_message(h)) }
        })
        .collect();
    // Delivered in reverse order: the second waits for the first, which is refused.
    let report = w.a.receive(signed.into_iter().rev().collect(), &Ed25519);
    assert!(report.applied.is_empty());
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.pending, 1);
}

#[test]
fn a_removed_member_is_refused_from_then_on() {
    let mut w = world();
    w.a.set_role(&w.rw.peer(), None).expect("remove");
    let removal = w.a.commit(&w.owner, 1_800_000_030).expect("commit").expect("change");
    assert_eq!(w.b.receive(vec![removal], &Ed25519).applied.len(), 1);
    assert_eq!(w.b.role_of(&w.rw.peer()), None);
    let late = forge(&mut w.b, &w.rw, |raw| {
        let e = entries(raw);
        raw.put(&e, "0c0c", "x").expect("put");
    });
    assert_eq!(rejection(&w.a.receive(vec![late], &Ed25519)), Rejection::NotAMember);
}

#[test]
fn honest_replicas_converge_and_keep_both_concurrent_values() {
    let mut w = world();
    // Alice creates the file; everyone has it.
    w.a.put_entry_field(&[5; 16], "hash", ScalarValue::Bytes(vec![0x11; 32])).expect("edit");
    let created = w.a.commit(&w.owner, 1_800_000_039).expect("commit").expect("change");
    w.b.receive(vec![created.clone()], &Ed25519);
    w.c.receive(vec![created], &Ed25519);
    // Then alice and bob edit it at the same time.
    w.a.put_entry_field(&[5; 16], "hash", ScalarValue::Bytes(vec![0xaa; 32])).expect("edit");
    let ca = w.a.commit(&w.owner, 1_800_000_040).expect("commit").expect("change");
    w.b.put_entry_field(&[5; 16], "hash", ScalarValue::Bytes(vec![0xbb; 32])).expect("edit");
    let cb = w.b.commit(&w.rw, 1_800_000_041).expect("commit").expect("change");
    // Exchange in different orders and through a third replica.
    assert_eq!(w.c.receive(vec![cb.clone(), ca.clone()], &Ed25519).applied.len(), 2);
    let c_heads = w.c.heads();
    let to_a = w.b.changes_for(&w.a.heads());
    let to_b = w.a.changes_for(&w.b.heads());
    w.a.receive(to_a, &Ed25519);
    w.b.receive(to_b, &Ed25519);
    assert_eq!(w.a.heads(), c_heads);
    assert_eq!(w.b.heads(), c_heads);
    let values = w.a.entry_field(&[5; 16], "hash");
    assert_eq!(values.len(), 2, "both concurrent versions are kept");
    assert_eq!(values, w.b.entry_field(&[5; 16], "hash"));
    assert_eq!(values, w.c.entry_field(&[5; 16], "hash"));

    // Saved and loaded, a replica can still forward signed changes.
    let sigs = w.c.signatures().clone();
    let bytes = w.c.save();
    let mut reloaded = ShareDoc::load(&bytes, sigs, &w.owner.peer(), &w.ro.peer()).expect("load");
    let mut newcomer = ShareDoc::join(&w.owner.peer(), &Key::new(8).peer());
    let report = newcomer.receive(reloaded.changes_for(&[]), &Ed25519);
    assert_eq!(newcomer.entry_field(&[5; 16], "hash"), values);
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(newcomer.heads(), c_heads);
    assert_eq!(newcomer.members().len(), 3);
}

/// A member that just accepted holds an empty document, in which nobody has
/// a role: it must still take the owner's sync (found by the simulator,
/// seed 0 of `--scenario share --nodes 5`: the member's first sync was lost
/// while the owner was down, and it refused the owner's ever after).
#[test]
fn an_empty_document_syncs_with_its_owner_only() {
    let w = world();
    let fresh = ShareDoc::join(&w.owner.peer(), &Key::new(9).peer());
    assert!(fresh.may_sync(&w.owner.peer()));
    assert!(!fresh.may_sync(&w.rw.peer()));
    assert!(!fresh.may_sync(&Key::new(8).peer()));
    // Once the membership arrived, the roles decide.
    assert!(w.b.may_sync(&w.owner.peer()) && w.b.may_sync(&w.ro.peer()));
    assert!(!w.b.may_sync(&Key::new(8).peer()));
}
