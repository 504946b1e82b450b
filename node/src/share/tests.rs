//! Persistence of shares across restarts: documents stored as a full save
//! plus increments, compacted from time to time, load back whole.

use std::sync::Arc;

use libp2p::identity::Keypair;
use tempfile::TempDir;

use hearth_protocol::blob::ChunkHash;

use super::Shares;
use crate::blobs::BlobStore;
use crate::store::Store;

fn open(home: &TempDir, key: &Keypair) -> Shares {
    let store = Arc::new(Store::open(&home.path().join("db.redb")).expect("store"));
    let blobs = Arc::new(BlobStore::open(home.path().join("blobs")).expect("blobs"));
    Shares::load(store, key.clone(), blobs, "tester".into()).expect("load")
}

fn paths(shares: &mut Shares, id: &[u8]) -> Vec<(String, Vec<u8>)> {
    let folder = shares.folder(id).expect("folder");
    folder.items().into_iter().map(|i| (i.path.join("/"), i.version.content.clone())).collect()
}

#[test]
fn a_document_saved_in_increments_and_compacted_loads_whole() {
    let home = TempDir::new().expect("home");
    let dir = TempDir::new().expect("dir");
    let key = Keypair::generate_ed25519();
    let offline = |_: &libp2p::PeerId| false;
    let mut shares = open(&home, &key);
    std::fs::write(dir.path().join("first.txt"), b"first").expect("write");
    let view = shares.create(dir.path(), Some("docs"), 1_000).expect("create");
    let id = shares.resolve(&view.id).expect("id");
    // More edits than COMPACT_AFTER: appends, one compaction, appends again.
    let edits = super::COMPACT_AFTER + 10;
    for i in 0..edits {
        let file = dir.path().join(format!("f{}.txt", i % 7));
        std::fs::write(&file, format!("edit {i}")).expect("write");
        // Old enough not to count as being written (SETTLE_MS).
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(5 + i as u64);
        std::fs::File::options().write(true).open(&file).expect("open").set_modified(old).expect("mtime");
        let (report, _) = shares.scan(&id, 1_000 + i as u64, &offline).expect("scan");
        assert!(report.changed(), "edit {i} was recorded");
    }
    let stored = shares.store.share_doc(&id).expect("read").expect("doc");
    assert!(stored.increments < super::COMPACT_AFTER, "compacted: {} increments", stored.increments);
    let before = paths(&mut shares, &id);
    assert_eq!(before.len(), 8, "first.txt and f0..f6: {before:?}");
    let heads = shares.docs.get_mut(&id).expect("doc").heads();
    let signatures = shares.docs.get(&id).expect("doc").signatures().len();
    drop(shares);

    let mut again = open(&home, &key);
    assert_eq!(paths(&mut again, &id), before);
    let doc = again.docs.get_mut(&id).expect("doc");
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.signatures().len(), signatures, "every change keeps its signature");
}

/// Writes `bytes` to `path` with an mtime old enough for a scan to take it
/// (not still being written, see SETTLE_MS).
fn write_old(path: &std::path::Path, bytes: &[u8], age_secs: u64) {
    std::fs::write(path, bytes).expect("write");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
    std::fs::File::options().write(true).open(path).expect("open").set_modified(old).expect("mtime");
}

#[test]
fn old_versions_and_deleted_files_stay_restorable_for_the_period_then_their_contents_go() {
    const DAY: u64 = 86_400;
    let t0 = 1_800_000_000;
    let home = TempDir::new().expect("home");
    let dir = TempDir::new().expect("dir");
    let key = Keypair::generate_ed25519();
    let offline = |_: &libp2p::PeerId| false;
    let mut shares = open(&home, &key);
    write_old(&dir.path().join("notes.txt"), b"first draft of the notes", 100);
    write_old(&dir.path().join("old.txt"), b"a file that will be deleted", 100);
    let view = shares.create(dir.path(), Some("docs"), t0).expect("create");
    let id = shares.resolve(&view.id).expect("id");
    shares.scan(&id, t0, &offline).expect("scan");
    write_old(&dir.path().join("notes.txt"), b"second draft of the notes, longer", 50);
    shares.scan(&id, t0 + DAY, &offline).expect("scan");
    std::fs::remove_file(dir.path().join("old.txt")).expect("delete");
    let (report, _) = shares.scan(&id, t0 + 2 * DAY, &offline).expect("scan");
    assert_eq!(report.deleted, 1);
    let versions = shares.versions(&id, "notes.txt", t0 + 5 * DAY).expect("versions");
    assert_eq!(versions.len(), 2, "{versions:?}");
    let (old, new) = (versions[0].clone(), versions[1].clone());
    assert!(new.current && new.expires.is_empty());
    assert_eq!(old.expires, crate::views::rfc3339(t0 + DAY + 30 * DAY));
    let trash = shares.trash(&id, t0 + 5 * DAY).expect("trash");
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0].expires, crate::views::rfc3339(t0 + 2 * DAY + 30 * DAY));

    // Within the period nothing goes.
    assert_eq!(shares.expire(t0 + 5 * DAY).contents, 0);
    let hash = |hex_id: &str| ChunkHash(hex::decode(hex_id).expect("hex").try_into().expect("32 bytes"));
    assert!(shares.blobs.has(&hash(&old.content)) && shares.blobs.has(&hash(&trash[0].content)));

    // After it, both are gone from the listings and from the store; the
    // current version is whole.
    let late = t0 + 40 * DAY;
    assert!(shares.trash(&id, late).expect("trash").is_empty());
    assert_eq!(shares.versions(&id, "notes.txt", late).expect("versions").len(), 1);
    let refused = shares.restore(&id, "old.txt", None, late, &offline).expect_err("expired");
    assert!(refused.message.contains("longer ago than this node keeps deleted files (30 days)"), "{}", refused.message);
    let refused = shares.restore(&id, "notes.txt", Some(0), late, &offline).expect_err("expired");
    assert!(refused.message.contains("replaced longer ago"), "{}", refused.message);
    let report = shares.expire(late);
    assert_eq!(report.contents, 2, "{report:?}");
    assert!(report.bytes > 0);
    assert!(!shares.blobs.has(&hash(&old.content)) && !shares.blobs.has(&hash(&trash[0].content)));
    let current = shares.blobs.manifest(&hash(&new.content)).expect("read").expect("current manifest");
    assert!(shares.blobs.missing(&current).is_empty(), "the current version keeps all its chunks");
    assert_eq!(shares.expire(late).contents, 0, "nothing left to drop");

    // Kept forever: nothing expires, however late.
    shares.set_retention(None);
    write_old(&dir.path().join("notes.txt"), b"third draft", 10);
    shares.scan(&id, late, &offline).expect("scan");
    assert_eq!(shares.expire(late + 1000 * DAY).contents, 0);
    assert!(shares.blobs.has(&hash(&new.content)), "the replaced second draft stays");
}

/// A share "docs" of a folder holding notes.txt, created by a fresh node:
/// its home, the folder, the node's shares and the share's id.
fn notes_share() -> (TempDir, TempDir, Shares, Vec<u8>) {
    let home = TempDir::new().expect("home");
    let dir = TempDir::new().expect("dir");
    let mut shares = open(&home, &Keypair::generate_ed25519());
    write_old(&dir.path().join("notes.txt"), b"notes", 100);
    let view = shares.create(dir.path(), Some("docs"), 1_000).expect("create");
    let id = shares.resolve(&view.id).expect("id");
    (home, dir, shares, id)
}

#[test]
fn a_read_only_member_records_nothing_but_removes_staging_leftovers() {
    let (_home, dir, mut shares, id) = notes_share();
    let offline = |_: &libp2p::PeerId| false;
    shares.scan(&id, 1_000, &offline).expect("scan");
    shares.records.get_mut(&id).expect("record").role = "read-only".into();
    // What a write-out killed between staging and rename leaves behind.
    let leftover = dir.path().join(".hearth-notes.txt.1234.tmp");
    std::fs::write(&leftover, b"half a file").expect("write");
    write_old(&dir.path().join("mine.txt"), b"a local file", 100);
    let (report, out) = shares.scan(&id, 2_000, &offline).expect("scan");
    assert!(!report.changed() && out.is_empty(), "a read-only member's edits stay local");
    assert!(!leftover.exists(), "the staging leftover is removed");
    assert!(dir.path().join("mine.txt").exists(), "local files are left alone");
}

/// Bug 2 of the simulator (seed 16 of `--scenario share`): heads that
/// include a change we refused (a read-only member's forgery) look as if
/// the peer lacked our whole history. The answer to each sync "owed" it
/// everything again, so the member was sent it all round after round. Now
/// another round follows only when the peer's heads moved.
#[test]
fn a_peer_whose_heads_do_not_move_is_not_sent_everything_again() {
    use hearth_protocol::share::ShareResponse;
    let (_home, _dir, mut shares, id) = notes_share();
    let offline = |_: &libp2p::PeerId| false;
    let forger = libp2p::PeerId::random();
    // The forger's heads: a change of its own that nobody accepted.
    let answer = || ShareResponse::Sync {
        heads: vec![serde_bytes::ByteBuf::from(vec![7u8; 32])],
        changes: Vec::new(),
        more: false,
        rejected: 0,
    };
    let first = shares.on_sync_response(&forger, &id, answer(), &offline);
    assert_eq!(first.len(), 1, "heads we do not know: one more round, with our changes");
    for round in 0..3 {
        let again = shares.on_sync_response(&forger, &id, answer(), &offline);
        assert!(again.is_empty(), "round {round}: the same heads again, yet we sent {} message(s)", again.len());
    }
}
