//! Metadata at scale: how long the document operations take for a share of
//! N files (`cargo run --release -p hearth-crdt --example scale -- 100000`),
//! and with a saved document (`/tmp/scale-N.am`, written by a run) how much
//! memory loading it and reading the folder take.

// A measurement tool, not the sans-IO core: it reads the clock.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use hearth_crdt::doc::{ShareDoc, Signer, Verifier};
use hearth_crdt::folder::{Editor, Folder, Kind, Version};
use hearth_crdt::tree::EntryId;

struct Key(SigningKey);
impl Signer for Key {
    fn peer(&self) -> Vec<u8> {
        self.0.verifying_key().to_bytes().to_vec()
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }
}
struct Ed;
impl Verifier for Ed {
    fn verify(&self, peer: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let (Ok(peer), Ok(sig)) = (<[u8; 32]>::try_from(peer), <[u8; 64]>::try_from(signature)) else {
            return false;
        };
        VerifyingKey::from_bytes(&peer)
            .is_ok_and(|k| k.verify(message, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok())
    }
}

fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn main() {
    if let Some(path) = std::env::args().nth(1).filter(|a| a.ends_with(".am")) {
        let bytes = std::fs::read(&path).expect("read");
        println!("start: rss {} MB", rss_mb());
        let doc = ShareDoc::load(&bytes, Default::default(), &[1; 32], &[2; 32]).expect("load");
        drop(bytes);
        println!("loaded: rss {} MB", rss_mb());
        let folder = Folder::from_doc(&doc);
        println!("folder {} entries: rss {} MB", folder.tree().len(), rss_mb());
        let items = folder.items();
        println!("items {}: rss {} MB", items.len(), rss_mb());
        return;
    }
    if let Some(path) = std::env::args().nth(1).filter(|a| a.ends_with(".changes")) {
        // What a new member goes through: every change received at once.
        let bytes = std::fs::read(&path).expect("read");
        let changes: Vec<hearth_crdt::doc::SignedChange> = ciborium::from_reader(bytes.as_slice()).expect("decode");
        drop(bytes);
        println!("start, {} changes read: rss {} MB", changes.len(), rss_mb());
        let (owner, member) = (Key(SigningKey::from_bytes(&[1; 32])), Key(SigningKey::from_bytes(&[2; 32])));
        let mut doc = ShareDoc::join(&owner.peer(), &member.peer());
        doc.track_touched();
        let report = doc.receive(changes, &Ed);
        println!("received {} changes: rss {} MB", report.applied.len(), rss_mb());
        drop(doc.take_touched());
        let folder = Folder::from_doc(&doc);
        println!("folder {} entries: rss {} MB", folder.tree().len(), rss_mb());
        let t = Instant::now();
        let split = hearth_crdt::retention::expiry(&mut doc, &folder, 1 << 40, 30 * 86_400);
        println!(
            "retention pass: {:.2} s, {} kept, {} expired: rss {} MB",
            t.elapsed().as_secs_f64(),
            split.kept.len(),
            split.expired.len(),
            rss_mb()
        );
        let saved = doc.save();
        println!("saved {} bytes: rss {} MB", saved.len(), rss_mb());
        return;
    }
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let batch: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let owner = Key(SigningKey::from_bytes(&[1; 32]));
    let t = Instant::now();
    let (mut doc, _) = ShareDoc::create(&[7; 16], "scale", &owner, 0).expect("create");
    let mut dirs = Vec::new();
    let mut made = 0;
    let mut from_doc_total = 0.0;
    while made < n {
        let t2 = Instant::now();
        let folder = Folder::from_doc(&doc);
        from_doc_total += t2.elapsed().as_secs_f64();
        let mut editor = Editor::new(&mut doc, &folder, &owner.peer());
        for _ in 0..batch.min(n - made) {
            if made % 100 == 0 {
                let dir = EntryId::from_bytes(rand::random());
                let v = Version {
                    kind: Kind::Dir,
                    content: vec![],
                    size: 0,
                    mtime_ms: 0,
                    exec: false,
                    author: owner.peer(),
                    author_name: "owner".into(),
                    at: 0,
                    manifest_len: 0,
                    conflict_of: vec![],
                };
                editor.create(dir, EntryId::ROOT, &format!("d{:05}", made / 100), &v).expect("dir");
                dirs.push(dir);
            }
            let v = Version {
                kind: Kind::File,
                content: rand::random::<[u8; 32]>().to_vec(),
                size: 1000,
                mtime_ms: 1_700_000_000_000,
                exec: false,
                author: owner.peer(),
                author_name: "owner".into(),
                at: 1_700_000_000,
                manifest_len: 40,
                conflict_of: vec![],
            };
            let dir = *dirs.last().expect("dir");
            editor.create(EntryId::from_bytes(rand::random()), dir, &format!("f{made:06}.txt"), &v).expect("file");
            made += 1;
        }
        doc.commit(&owner, 0).expect("commit");
    }
    println!(
        "create {n} files in batches of {batch}: {:.2} s (of which from_doc {:.2} s)",
        t.elapsed().as_secs_f64(),
        from_doc_total
    );
    let t = Instant::now();
    let saved = doc.save();
    std::fs::write(format!("/tmp/scale-{n}.am"), &saved).expect("write");
    println!("save: {:.2} s, {} bytes", t.elapsed().as_secs_f64(), saved.len());
    let t = Instant::now();
    let changes = doc.changes_for(&[]);
    let bytes: usize = changes.iter().map(|c| c.change.len()).sum();
    let mut file = Vec::new();
    ciborium::into_writer(&changes, &mut file).expect("encode");
    std::fs::write(format!("/tmp/scale-{n}.changes"), file).expect("write");
    println!("changes_for: {:.2} s, {} changes, {} bytes", t.elapsed().as_secs_f64(), changes.len(), bytes);
    let member = Key(SigningKey::from_bytes(&[2; 32]));
    let mut other = ShareDoc::join(&owner.peer(), &member.peer());
    let t = Instant::now();
    let report = other.receive(changes.clone(), &Ed);
    println!(
        "receive: {:.2} s, applied {}, rejected {}",
        t.elapsed().as_secs_f64(),
        report.applied.len(),
        report.rejected.len()
    );
    // The same while recording what changed (as a node does).
    let mut tracked = ShareDoc::join(&owner.peer(), &member.peer());
    tracked.track_touched();
    let t = Instant::now();
    tracked.receive(changes, &Ed);
    let touched = tracked.take_touched().map(|(_, t)| t.entries.len() + t.moves.len()).unwrap_or(0);
    println!(
        "receive while tracking: {:.2} s, {touched} keys touched, rss {} MB (two received documents held)",
        t.elapsed().as_secs_f64(),
        rss_mb()
    );
    drop(tracked);
    let t = Instant::now();
    let folder = Folder::from_doc(&other);
    println!("from_doc: {:.2} s, {} entries", t.elapsed().as_secs_f64(), folder.tree().len());
    let t = Instant::now();
    let items = folder.items();
    println!("items: {:.2} s, {} items", t.elapsed().as_secs_f64(), items.len());
    drop(items);
    drop(folder);
    drop(other);
    drop(doc);
    println!("rss after drops: {} MB", rss_mb());
    let t = Instant::now();
    let loaded = ShareDoc::load(&saved, Default::default(), &owner.peer(), &member.peer()).expect("load");
    println!("load: {:.2} s, rss {} MB", t.elapsed().as_secs_f64(), rss_mb());
    let folder = Folder::from_doc(&loaded);
    println!("folder: rss {} MB", rss_mb());
    let items = folder.items();
    println!("items {}: rss {} MB", items.len(), rss_mb());
}
