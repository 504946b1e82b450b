//! Persistence of shares across restarts: documents stored as a full save
//! plus increments, compacted from time to time, load back whole.

use std::sync::Arc;

use libp2p::identity::Keypair;
use tempfile::TempDir;

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
    folder.items().into_iter().map(|i| (i.path.join("/"), i.version.content)).collect()
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
