//! Seeded property test of the bank view log: whatever a network does to the
//! owner's entries (batches from any position, duplicates, reordering, loss)
//! and whatever a tampered viewer or a stranger injects (its own signatures,
//! altered amounts, replays at other positions), a holder's log is always a
//! prefix of the owner's, and once everything is delivered it equals it.

mod common;

use common::{Ed25519, Key};
use hearth_crdt::bank::{Body, Entry, ViewAccount, ViewLog, ViewOp};
use hearth_crdt::doc::Signer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn account() -> ViewAccount {
    ViewAccount { name: "Compte".into(), currency: "EUR".into(), kind: "Checkings".into(), since: None }
}

fn random_body(rng: &mut ChaCha8Rng, n: usize) -> Body {
    if rng.gen_bool(0.2) {
        return Body::Balance {
            amount: format!("{}.{:02}", rng.gen_range(0..5000), rng.gen_range(0..100)),
            date: "2024-01-31".into(),
        };
    }
    let ops = (0..rng.gen_range(1..5))
        .map(|i| ViewOp {
            key: format!("id:{n}-{i}"),
            date: format!("2024-01-{:02}", rng.gen_range(1..29)),
            amount: format!("-{}.{:02}", rng.gen_range(0..900), rng.gen_range(0..100)),
            currency: "EUR".into(),
            label: format!("SHOP {}", rng.gen_range(0..20)),
            kind: "debit".into(),
            original: None,
            category: None,
        })
        .collect();
    Body::Operations { ops }
}

#[test]
fn holders_only_ever_hold_a_prefix_of_the_owners_log() {
    let (owner, viewer, stranger) = (Key::new(1), Key::new(2), Key::new(3));
    let view = [5u8; 16];
    for seed in 0..200u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut log = ViewLog::create(&view, &owner, &viewer.peer(), account());
        let total = rng.gen_range(1..25);
        for n in 0..total {
            let body = random_body(&mut rng, n);
            log.append(&owner, body).expect("append");
        }
        if rng.gen_bool(0.3) {
            log.append(&owner, Body::Revoked).expect("revoke");
        }
        let all = log.entries_from(0).to_vec();
        let mut holder = ViewLog::empty(&view, &owner.peer(), &viewer.peer());
        for _step in 0..60 {
            let from = rng.gen_range(0..all.len());
            let len = rng.gen_range(1..=(all.len() - from).min(6));
            let mut batch: Vec<Entry> = all[from..from + len].to_vec();
            match rng.gen_range(0..6) {
                0 => batch.reverse(),
                1 => {
                    // The tampered viewer (or a stranger) writes the next entry.
                    let signer: &Key = if rng.gen_bool(0.5) { &viewer } else { &stranger };
                    let seq = holder.len();
                    let prev = if seq == 0 {
                        vec![0; 32]
                    } else {
                        let last = &all[(seq - 1) as usize];
                        Entry::hash(&view, last.seq, &last.prev, &last.body).to_vec()
                    };
                    let body = random_body(&mut rng, 999);
                    let signature = signer.sign(&Entry::signing_message(&view, seq, &prev, &body));
                    batch.insert(0, Entry { seq, prev, body, signature });
                }
                2 => {
                    // An owner entry altered in transit.
                    if let Some(Body::Operations { ops }) = batch.first_mut().map(|e| &mut e.body) {
                        ops[0].amount = "-99999.00".into();
                    }
                }
                3 => {
                    // A replay at another position.
                    if let Some(e) = batch.first_mut() {
                        e.seq += 1;
                    }
                }
                _ => {}
            }
            holder.receive(batch, &Ed25519);
            let held = holder.entries_from(0);
            assert_eq!(held, &all[..held.len()], "seed {seed}: the holder's log is not a prefix of the owner's");
        }
        // Then the network delivers everything once, in order.
        holder.receive(all.clone(), &Ed25519);
        assert_eq!(holder.entries_from(0), &all[..], "seed {seed}: not converged");
        assert_eq!(holder.state(), log.state(), "seed {seed}");
    }
}
