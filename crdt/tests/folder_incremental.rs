//! The folder kept up to date from what changed (`Folder::apply_touched`)
//! equals the folder read again from the whole document, for every member
//! after every step of seeded random runs: creates, edits, concurrent edits,
//! moves (including crossed ones), deletes, restores, and syncs in pieces.

mod common;

use common::{Ed25519, Key};
use ed25519_dalek::SigningKey;
use hearth_crdt::doc::{Role, ShareDoc, Signer};
use hearth_crdt::folder::{Editor, Folder, Kind, Version};
use hearth_crdt::tree::EntryId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Member {
    key: Key,
    doc: ShareDoc,
    /// Kept up to date from what was touched (rebuilt only if that cannot say).
    folder: Folder,
    clock: i64,
    rebuilds: usize,
}

impl Member {
    fn new(key: Key, doc: ShareDoc) -> Self {
        let mut doc = doc;
        let folder = Folder::from_doc(&doc);
        doc.track_touched();
        Member { key, doc, folder, clock: 1_800_000_000, rebuilds: 0 }
    }

    /// Applies the patches since the last refresh and checks the result.
    fn refresh(&mut self, what: &str) {
        let (_, touched) = self.doc.take_touched().expect("tracking");
        if !self.folder.apply_touched(&self.doc, &touched) {
            self.rebuilds += 1;
            self.folder = Folder::from_doc(&self.doc);
            self.doc.track_touched();
        }
        let fresh = Folder::from_doc(&self.doc);
        assert_eq!(self.folder.items(), fresh.items(), "{what}: items of {}", self.key.1);
        assert_eq!(self.folder.trash(), fresh.trash(), "{what}: trash of {}", self.key.1);
        assert_eq!(self.folder.skipped_values(), fresh.skipped_values(), "{what}");
        assert_eq!(self.folder.next_lamport(), fresh.next_lamport(), "{what}");
        let entries: Vec<EntryId> = fresh.tree().entries().collect();
        assert_eq!(self.folder.tree().entries().collect::<Vec<_>>(), entries, "{what}");
        for e in entries {
            assert_eq!(self.folder.versions(e), fresh.versions(e), "{what}: versions of {e:?}");
            assert_eq!(self.folder.tree().display_path(e), fresh.tree().display_path(e), "{what}");
        }
    }

    fn version(&self, kind: Kind, content: u8) -> Version {
        Version {
            kind,
            content: if kind == Kind::File { vec![content; 32] } else { vec![] },
            size: u64::from(content),
            mtime_ms: self.clock * 1000,
            exec: false,
            author: self.key.peer(),
            author_name: self.key.1.into(),
            at: self.clock,
            manifest_len: 0,
            conflict_of: vec![],
        }
    }

    /// One random local edit, committed.
    fn edit(&mut self, rng: &mut ChaCha8Rng) {
        self.clock += 60;
        let folder = self.folder.clone();
        let entries: Vec<EntryId> = folder.tree().entries().filter(|e| !e.is_reserved()).collect();
        let dirs: Vec<EntryId> = std::iter::once(EntryId::ROOT)
            .chain(entries.iter().copied().filter(|e| folder.versions(*e).first().is_some_and(|v| v.kind == Kind::Dir)))
            .collect();
        let pick_dir = |rng: &mut ChaCha8Rng| dirs[rng.gen_range(0..dirs.len())];
        let actor = self.key.peer();
        let new_file = self.version(Kind::File, rng.gen());
        let new_dir = self.version(Kind::Dir, 0);
        let mut editor = Editor::new(&mut self.doc, &folder, &actor);
        let name = format!("n{}", rng.gen_range(0..6));
        let choice = if entries.is_empty() { 0 } else { rng.gen_range(0..6) };
        let target = entries.get(rng.gen_range(0..entries.len().max(1))).copied();
        let result = match (choice, target) {
            (0, _) | (_, None) => editor.create(EntryId::from_bytes(rng.gen()), pick_dir(rng), &name, &new_file),
            (1, _) => editor.create(EntryId::from_bytes(rng.gen()), pick_dir(rng), &name, &new_dir),
            (2, Some(e)) => editor.set_version(e, &new_file),
            (3, Some(e)) => editor.move_to(e, pick_dir(rng), &name),
            (4, Some(e)) => editor.delete(e, &name),
            (_, Some(e)) => editor.move_to(e, EntryId::ROOT, &name), // a restore from the trash
        };
        result.expect("edit");
        self.doc.commit(&self.key, self.clock).expect("commit");
    }
}

/// Sends `from` some (or all) of the changes `to` lacks, in one piece.
fn send(from: &mut Member, to: &mut Member, rng: &mut ChaCha8Rng) {
    let mut changes = from.doc.changes_for(&to.doc.heads());
    if changes.len() > 1 && rng.gen_bool(0.5) {
        changes.truncate(rng.gen_range(1..changes.len()));
    }
    let report = to.doc.receive(changes, &Ed25519);
    assert!(report.rejected.is_empty(), "{report:?}");
}

#[test]
fn a_folder_kept_up_to_date_from_what_changed_equals_the_document_read_again() {
    for seed in 0..40u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let keys = [(1u8, "alice"), (2, "bob"), (3, "carol")].map(|(s, n)| Key(SigningKey::from_bytes(&[s; 32]), n));
        let [alice, bob, carol] = keys;
        let (mut doc, _) = ShareDoc::create(b"s", "Family", &alice, 1_800_000_000).expect("create");
        for k in [&bob, &carol] {
            doc.set_role(&k.peer(), Some(Role::ReadWrite)).expect("role");
        }
        doc.commit(&alice, 1_800_000_000).expect("commit");
        let owner = alice.peer();
        let (bob_peer, carol_peer) = (bob.peer(), carol.peer());
        let mut members = [
            Member::new(alice, doc),
            Member::new(bob, ShareDoc::join(&owner, &bob_peer)),
            Member::new(carol, ShareDoc::join(&owner, &carol_peer)),
        ];
        for step in 0..60 {
            let a = rng.gen_range(0..3);
            // A member edits once it knows it is one.
            let peer = members[a].key.peer();
            if members[a].doc.role_of(&peer).is_some() && rng.gen_bool(0.5) {
                members[a].edit(&mut rng);
                members[a].refresh(&format!("seed {seed} step {step}: edit"));
                continue;
            }
            let b = (a + rng.gen_range(1..3)) % 3;
            let (x, y) = if a < b { members.split_at_mut(b) } else { members.split_at_mut(a) };
            let (from, to) = if a < b { (&mut x[a], &mut y[0]) } else { (&mut y[0], &mut x[b]) };
            send(from, to, &mut rng);
            to.refresh(&format!("seed {seed} step {step}: sync"));
        }
        // Everyone gets everything: the same folder everywhere.
        for _ in 0..2 {
            for (a, b) in [(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)] {
                let (x, y) = if a < b { members.split_at_mut(b) } else { members.split_at_mut(a) };
                let (from, to) = if a < b { (&mut x[a], &mut y[0]) } else { (&mut y[0], &mut x[b]) };
                let changes = from.doc.changes_for(&to.doc.heads());
                to.doc.receive(changes, &Ed25519);
                to.refresh(&format!("seed {seed}: final sync"));
            }
        }
        let items = members[0].folder.items();
        assert!(!items.is_empty(), "seed {seed}: the run made files");
        assert!(members.iter().all(|m| m.folder.items() == items), "seed {seed}: converged");
        let rebuilds: usize = members.iter().map(|m| m.rebuilds).sum();
        // Only the first sync of a joining member (the document's structure
        // arrives) may need a rebuild.
        assert!(rebuilds <= 2, "seed {seed}: {rebuilds} rebuilds");
    }
}
