//! Retention: old versions and deleted files are kept for the period, then
//! only their contents expire; whatever is shown (or shares a content with
//! something kept) never does. Dates come from the changes, also on a member
//! that received them.

mod common;

use common::{Ed25519, Key};
use hearth_crdt::doc::ShareDoc;
use hearth_crdt::folder::{Editor, Folder, Kind, Version};
use hearth_crdt::retention::{deletion_times, expiry};
use hearth_crdt::tree::EntryId;

const DAY: i64 = 86_400;
const T0: i64 = 1_800_000_000;
const KEEP: i64 = 30 * DAY;

fn version(key: &Key, content: u8, at: i64) -> Version {
    Version {
        kind: Kind::File,
        content: vec![content; 32],
        size: 1,
        mtime_ms: at * 1000,
        exec: false,
        author: hearth_crdt::doc::Signer::peer(key),
        author_name: key.1.into(),
        at,
        manifest_len: 0,
        conflict_of: vec![],
    }
}

/// One edit by `key` at `at`, committed with that time.
fn edit(doc: &mut ShareDoc, key: &Key, at: i64, f: impl FnOnce(&mut Editor)) {
    let folder = Folder::from_doc(doc);
    let mut editor = Editor::new(doc, &folder, &hearth_crdt::doc::Signer::peer(key));
    f(&mut editor);
    doc.commit(key, at).expect("commit");
}

#[test]
fn old_versions_and_deleted_files_expire_after_the_period_and_shown_contents_never() {
    let alice = Key::named(1, "alice");
    let (mut doc, _) = ShareDoc::create(b"s", "Family", &alice, T0).expect("create");
    let (report, edited, deleted, same) = (
        EntryId::from_bytes([1; 16]),
        EntryId::from_bytes([2; 16]),
        EntryId::from_bytes([3; 16]),
        EntryId::from_bytes([4; 16]),
    );
    edit(&mut doc, &alice, T0, |e| {
        e.create(report, EntryId::ROOT, "report.odt", &version(&alice, 0xa1, T0)).expect("create");
        e.create(deleted, EntryId::ROOT, "old.txt", &version(&alice, 0xc1, T0)).expect("create");
        // Same content as the first version of report.odt, still shown.
        e.create(same, EntryId::ROOT, "copy.odt", &version(&alice, 0xa1, T0)).expect("create");
        e.create(edited, EntryId::ROOT, "notes.txt", &version(&alice, 0xb1, T0)).expect("create");
    });
    edit(&mut doc, &alice, T0 + DAY, |e| e.delete(deleted, "old.txt").expect("delete"));
    edit(&mut doc, &alice, T0 + 10 * DAY, |e| {
        e.set_version(edited, &version(&alice, 0xb2, T0 + 10 * DAY)).expect("edit");
        e.set_version(report, &version(&alice, 0xa2, T0 + 10 * DAY)).expect("edit");
    });

    // A member who received everything dates things the same way.
    let bob = Key::named(2, "bob");
    let mut other = ShareDoc::join(&hearth_crdt::doc::Signer::peer(&alice), &hearth_crdt::doc::Signer::peer(&bob));
    let report_in = other.receive(doc.changes_for(&[]), &Ed25519);
    assert!(report_in.rejected.is_empty());

    for d in [&mut doc, &mut other] {
        let folder = Folder::from_doc(d);
        assert_eq!(deletion_times(d, &folder).get(&deleted), Some(&(T0 + DAY)));

        // Within the period: everything is kept.
        let early = expiry(d, &folder, T0 + 20 * DAY, KEEP);
        assert!(early.expired.is_empty(), "{early:?}");
        assert!(early.kept.contains(&vec![0xc1; 32]) && early.kept.contains(&vec![0xb1; 32]));

        // 31 days after the deletion, 21 after the edits: only the trash item.
        let middle = expiry(d, &folder, T0 + 32 * DAY, KEEP);
        assert_eq!(middle.expired.into_iter().collect::<Vec<_>>(), vec![vec![0xc1; 32]]);

        // Past the period for the edits too: the old notes go, but the old
        // report's content is also copy.odt's, which is shown: kept.
        let late = expiry(d, &folder, T0 + 45 * DAY, KEEP);
        assert_eq!(late.expired.iter().cloned().collect::<Vec<_>>(), vec![vec![0xb1; 32], vec![0xc1; 32]]);
        for shown in [0xa1, 0xa2, 0xb2] {
            assert!(late.kept.contains(&vec![shown; 32]), "{shown:x} is shown");
        }
    }
}
