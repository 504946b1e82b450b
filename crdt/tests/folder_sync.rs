//! The shared folder between members who sync their signed documents: file
//! and folder operations, moves as moves, concurrent edits as conflict copies
//! named the same everywhere, crossed moves without cycles, hostile names.

mod common;

use common::{Ed25519, Key};
use ed25519_dalek::SigningKey;
use hearth_crdt::doc::{Role, ShareDoc, Signer};
use hearth_crdt::folder::{Editor, Folder, Kind, Version};
use hearth_crdt::tree::EntryId;

struct Member {
    key: Key,
    doc: ShareDoc,
    clock: i64,
}

impl Member {
    fn folder(&self) -> Folder {
        Folder::from_doc(&self.doc)
    }

    fn edit(&mut self, f: impl FnOnce(&mut Editor, &Key, i64)) {
        let folder = self.folder();
        self.clock += 60;
        let actor = self.key.peer();
        let mut editor = Editor::new(&mut self.doc, &folder, &actor);
        f(&mut editor, &self.key, self.clock);
        self.doc.commit(&self.key, self.clock).expect("commit");
    }

    fn paths(&self) -> Vec<String> {
        self.folder().items().iter().map(|i| i.path.join("/")).collect()
    }
}

fn sync(a: &mut Member, b: &mut Member) {
    for _ in 0..3 {
        let to_b = a.doc.changes_for(&b.doc.heads());
        let rb = b.doc.receive(to_b, &Ed25519);
        assert!(rb.rejected.is_empty(), "{rb:?}");
        let to_a = b.doc.changes_for(&a.doc.heads());
        let ra = a.doc.receive(to_a, &Ed25519);
        assert!(ra.rejected.is_empty(), "{ra:?}");
    }
    assert_eq!(a.doc.heads(), b.doc.heads());
}

fn file(key: &Key, content: u8, at: i64) -> Version {
    Version {
        kind: Kind::File,
        content: vec![content; 32],
        size: 10,
        mtime_ms: at * 1000,
        exec: false,
        author: key.peer(),
        author_name: key.1.into(),
        at,
        manifest_len: 0,
        conflict_of: vec![],
    }
}

fn dir(key: &Key, at: i64) -> Version {
    Version { kind: Kind::Dir, content: vec![], size: 0, ..file(key, 0, at) }
}

fn id(n: u8) -> EntryId {
    EntryId::from_bytes([n; 16])
}

fn two_members() -> (Member, Member) {
    let alice = Key(SigningKey::from_bytes(&[1; 32]), "alice");
    let bob = Key(SigningKey::from_bytes(&[2; 32]), "bob");
    let (mut doc, _) = ShareDoc::create(b"s", "Family", &alice, 1_800_000_000).expect("create");
    doc.set_role(&bob.peer(), Some(Role::ReadWrite)).expect("role");
    doc.commit(&alice, 1_800_000_000).expect("commit");
    let bob_doc = ShareDoc::join(&alice.peer(), &bob.peer());
    let mut a = Member { key: alice, doc, clock: 1_800_000_000 };
    let mut b = Member { key: bob, doc: bob_doc, clock: 1_800_000_030 };
    sync(&mut a, &mut b);
    (a, b)
}

#[test]
fn files_and_folders_propagate_and_moves_stay_moves() {
    let (mut a, mut b) = two_members();
    a.edit(|e, k, t| {
        e.create(id(10), EntryId::ROOT, "Photos", &dir(k, t)).expect("dir");
        e.create(id(11), id(10), "beach.jpg", &file(k, 1, t)).expect("file");
        e.create(id(12), EntryId::ROOT, "notes.txt", &file(k, 2, t)).expect("file");
    });
    sync(&mut a, &mut b);
    assert_eq!(b.paths(), ["Photos", "Photos/beach.jpg", "notes.txt"]);

    // Bob renames the folder and moves the notes into it: two moves, and the
    // content ids are unchanged (nothing to transfer again).
    b.edit(|e, _, _| {
        e.move_to(id(10), EntryId::ROOT, "Holidays 2026").expect("rename");
        e.move_to(id(12), id(10), "notes.txt").expect("move");
    });
    sync(&mut a, &mut b);
    assert_eq!(a.paths(), ["Holidays 2026", "Holidays 2026/beach.jpg", "Holidays 2026/notes.txt"]);
    assert_eq!(a.folder().versions(id(11))[0].content, vec![1; 32]);

    // Delete: gone from the tree, its version kept in the trash.
    a.edit(|e, _, _| e.delete(id(11), "beach.jpg").expect("delete"));
    sync(&mut a, &mut b);
    assert_eq!(b.paths(), ["Holidays 2026", "Holidays 2026/notes.txt"]);
    assert!(b.folder().tree().is_in_trash(id(11)));
    assert_eq!(b.folder().versions(id(11)).len(), 1);
    let trash = b.folder().trash();
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0].original_path, ["Holidays 2026", "beach.jpg"]);

    // Restoring is a move back; the content id never changed.
    let (parent, name) = trash[0].original_place.clone();
    b.edit(|e, _, _| e.move_to(id(11), parent, &name).expect("restore"));
    sync(&mut a, &mut b);
    assert!(a.paths().contains(&"Holidays 2026/beach.jpg".to_owned()));

    // Every version stays in the history.
    a.edit(|e, k, t| e.set_version(id(12), &file(k, 9, t)).expect("edit"));
    let history = Folder::history(&mut a.doc, id(12));
    assert_eq!(history.iter().map(|v| v.content[0]).collect::<Vec<_>>(), [2, 9]);
}

#[test]
fn concurrent_edits_keep_both_versions_with_the_same_names_everywhere() {
    let (mut a, mut b) = two_members();
    a.edit(|e, k, t| e.create(id(20), EntryId::ROOT, "budget.ods", &file(k, 1, t)).expect("file"));
    sync(&mut a, &mut b);
    a.edit(|e, k, t| e.set_version(id(20), &file(k, 2, t)).expect("edit"));
    b.edit(|e, k, t| e.set_version(id(20), &file(k, 3, t)).expect("edit"));
    sync(&mut a, &mut b);
    let (pa, pb) = (a.paths(), b.paths());
    assert_eq!(pa, pb);
    assert_eq!(pa.len(), 2, "{pa:?}");
    assert!(pa.contains(&"budget.ods".to_owned()));
    let copy = pa.iter().find(|p| p.contains("(conflict from ")).expect("conflict copy");
    assert!(copy.ends_with(".ods"), "{copy}");
    let contents: Vec<Vec<u8>> = a.folder().items().iter().map(|i| i.version.content.clone()).collect();
    assert!(contents.contains(&vec![2; 32]) && contents.contains(&vec![3; 32]), "nothing lost");

    // Writing a new version resolves the conflict.
    b.edit(|e, k, t| e.set_version(id(20), &file(k, 4, t)).expect("resolve"));
    sync(&mut a, &mut b);
    assert_eq!(a.paths(), ["budget.ods"]);
}

#[test]
fn crossed_moves_and_same_names_converge_without_losing_entries() {
    let (mut a, mut b) = two_members();
    a.edit(|e, k, t| {
        e.create(id(30), EntryId::ROOT, "A", &dir(k, t)).expect("dir");
        e.create(id(31), EntryId::ROOT, "B", &dir(k, t)).expect("dir");
    });
    sync(&mut a, &mut b);
    // A into B on one side, B into A on the other: one of them must lose.
    a.edit(|e, _, _| e.move_to(id(30), id(31), "A").expect("move"));
    b.edit(|e, _, _| e.move_to(id(31), id(30), "B").expect("move"));
    // Both create "Report.pdf" at the root concurrently.
    a.edit(|e, k, t| e.create(id(32), EntryId::ROOT, "Report.pdf", &file(k, 5, t)).expect("file"));
    b.edit(|e, k, t| e.create(id(33), EntryId::ROOT, "report.PDF", &file(k, 6, t)).expect("file"));
    sync(&mut a, &mut b);
    assert_eq!(a.paths(), b.paths());
    a.folder().tree().check_invariants().expect("no cycle, all reachable");
    let paths = a.paths();
    assert_eq!(paths.len(), 4, "{paths:?}");
    assert!(paths.iter().any(|p| p.contains("(2)")), "colliding names are numbered: {paths:?}");
}

#[test]
fn hostile_names_from_a_member_are_skipped_everywhere() {
    let (mut a, mut b) = two_members();
    b.edit(|e, k, t| {
        e.create(id(40), EntryId::ROOT, "../../etc/passwd", &file(k, 7, t)).expect("written");
        e.create(id(41), EntryId::ROOT, "CON.txt", &file(k, 7, t)).expect("written");
        e.create(id(42), EntryId::ROOT, "ok.txt", &file(k, 8, t)).expect("written");
    });
    sync(&mut a, &mut b);
    assert_eq!(a.paths(), ["ok.txt"]);
    assert_eq!(b.paths(), ["ok.txt"]);
}

#[test]
fn conflict_copies_never_share_a_name() {
    // Bob and a second member who also calls herself "bob" edit the same
    // file in the same minute as alice: two losing versions whose conflict
    // names would be identical, next to a file that already bears that name.
    let (mut a, mut b) = two_members();
    let twin = Key(SigningKey::from_bytes(&[3; 32]), "bob");
    a.doc.set_role(&twin.peer(), Some(Role::ReadWrite)).expect("role");
    a.doc.commit(&a.key, a.clock).expect("commit");
    let twin_peer = twin.peer();
    let mut c = Member { key: twin, doc: ShareDoc::join(&a.key.peer(), &twin_peer), clock: a.clock };
    a.edit(|e, k, t| e.create(id(20), EntryId::ROOT, "list.txt", &file(k, 1, t)).expect("file"));
    sync(&mut a, &mut b);
    sync(&mut a, &mut c);
    let at = a.clock + 600;
    let taken_name = format!("list (conflict from bob {}).txt", hearth_crdt::folder::date(at));
    a.edit(|e, k, t| e.create(id(21), EntryId::ROOT, &taken_name, &file(k, 7, t)).expect("file"));
    sync(&mut a, &mut b);
    sync(&mut a, &mut c);
    for (m, content) in [(&mut a, 2u8), (&mut b, 3), (&mut c, 4)] {
        let key_peer = m.key.peer();
        let version = Version { at, author: key_peer, ..file(&m.key, content, at) };
        let folder = m.folder();
        let actor = m.key.peer();
        let mut editor = Editor::new(&mut m.doc, &folder, &actor);
        editor.set_version(id(20), &version).expect("edit");
        m.doc.commit(&m.key, at).expect("commit");
    }
    sync(&mut a, &mut b);
    sync(&mut a, &mut c);
    sync(&mut a, &mut b);
    let paths = a.paths();
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(paths.len(), unique.len(), "two items at one path: {paths:?}");
    assert_eq!(paths.len(), 4, "list.txt, the file named like a conflict copy and two copies: {paths:?}");
    assert_eq!(b.paths(), paths, "the same names on every member");
    assert_eq!(c.paths(), paths);
}

/// Found by the simulator (seed 49 of `--scenario share`, 5 nodes): after
/// two members' edits raced, the losing version is shown as a conflict copy
/// that may not be on a member's disk yet. An edit there of the winning
/// version superseded both versions: the other member's edit was gone
/// unseen. Now the edit keeps the shown conflict copies as files of their
/// own first, and the person's edit stays where they made it.
#[test]
fn an_edit_of_the_winner_keeps_the_losing_version_as_a_file_of_its_own() {
    let (mut a, mut b) = two_members();
    a.edit(|e, k, t| e.create(id(30), EntryId::ROOT, "list.txt", &file(k, 1, t)).expect("file"));
    sync(&mut a, &mut b);
    assert!(!a.folder().edit_is_concurrent(id(30), &[1; 32]), "a single version, the one edited");
    assert!(a.folder().conflict_copies(id(30)).is_empty());
    a.edit(|e, k, t| e.set_version(id(30), &file(k, 2, t)).expect("edit"));
    b.edit(|e, k, t| e.set_version(id(30), &file(k, 3, t)).expect("edit"));
    sync(&mut a, &mut b);
    let folder = b.folder();
    let versions: Vec<u8> = folder.versions(id(30)).iter().map(|v| v.content[0]).collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let (winner, loser) = (versions[0], versions[1]);
    // An edit of a version that lost (a disk not yet written out) is
    // concurrent: it becomes a conflict copy. One of the winner is not.
    assert!(folder.edit_is_concurrent(id(30), &[loser; 32]));
    assert!(!folder.edit_is_concurrent(id(30), &[winner; 32]));
    let copies = folder.conflict_copies(id(30));
    assert_eq!(copies.len(), 1, "{copies:?}");
    let shown = copies[0].0.clone();
    assert!(shown.starts_with("list (conflict from "), "{shown}");
    // Bob edits the winner: the loser is kept under the name it had.
    b.edit(|e, k, t| {
        let kept = e.keep_conflict_copies(id(30), EntryId::ROOT, &copies, || id(31)).expect("keep");
        assert_eq!(kept, vec![(id(31), shown.clone())]);
        e.set_version(id(30), &file(k, 4, t)).expect("edit");
    });
    sync(&mut a, &mut b);
    for m in [&a, &b] {
        let folder = m.folder();
        let mut items: Vec<(String, u8)> =
            folder.items().iter().map(|i| (i.path.join("/"), i.version.content[0])).collect();
        items.sort();
        let mut want = vec![("list.txt".to_owned(), 4), (shown.clone(), loser)];
        want.sort();
        assert_eq!(items, want);
        assert!(folder.conflict_copies(id(30)).is_empty(), "the conflict is resolved");
    }
}
