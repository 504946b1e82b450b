//! Packs (`blobs::packs`) on real files: a large content's chunks go to one
//! pack instead of a file each, are found, served and verified like any
//! chunk, survive a reopen, are not stored twice, are dropped when corrupted
//! or cut by a crash, and removing them frees the pack.

use std::fs;
use std::path::{Path, PathBuf};

use hearth_node::blobs::packs::{PACK_MIN, RECORD_LEN};
use hearth_node::blobs::{BlobError, BlobStore};
use hearth_protocol::blob::{ChunkHash, Get, Response};

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Chunk files in the store's fan-out directories.
fn chunk_files(root: &Path) -> usize {
    fs::read_dir(root)
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().len() == 2 && e.path().is_dir())
        .map(|e| fs::read_dir(e.path()).expect("list").count())
        .sum()
}

fn packs_in(root: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(root.join("packs"))
        .expect("list packs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    big: PathBuf,
    bytes: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("blobs");
    let big = dir.path().join("big.bin");
    let bytes = noise(PACK_MIN as usize + 3 * 1024 * 1024 + 7, 5);
    fs::write(&big, &bytes).expect("write");
    Fixture { root, big, bytes, _dir: dir }
}

#[test]
fn a_large_import_goes_to_one_pack_and_reads_back_verified() {
    let f = fixture();
    let store = BlobStore::open(&f.root).expect("open");
    let manifest = store.import_file(&f.big).expect("import");
    assert!(manifest.chunks().len() > 100, "{} chunks", manifest.chunks().len());
    assert_eq!(packs_in(&f.root, "pack").len(), 1, "one pack");
    assert_eq!(chunk_files(&f.root), 1, "only the manifest is a file of its own");
    assert!(store.missing(&manifest).is_empty());
    let idx = fs::metadata(&packs_in(&f.root, "idx")[0]).expect("idx").len();
    let distinct = manifest.chunks().iter().map(|c| c.hash).collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(idx, (distinct * RECORD_LEN) as u64);

    // Served like any chunk, ranges included.
    let c = manifest.chunks()[3];
    assert!(
        matches!(store.answer(&Get { hash: c.hash, offset: 0, len: c.len }), Response::Data { bytes } if ChunkHash::of(&bytes) == c.hash)
    );
    assert!(
        matches!(store.answer(&Get { hash: c.hash, offset: 1, len: 10 }), Response::Data { bytes } if bytes.len() == 10)
    );

    // Written out from the pack, and found again after a reopen.
    let out = f.root.parent().expect("parent").join("out.bin");
    store.materialise(&manifest, &out).expect("materialise");
    assert_eq!(fs::read(&out).expect("read"), f.bytes);
    drop(store);
    let store = BlobStore::open(&f.root).expect("reopen");
    assert!(store.missing(&manifest).is_empty(), "the index is rebuilt from the pack's records");
    assert_eq!(store.get(&c.hash).expect("get").map(|b| ChunkHash::of(&b)), Some(c.hash));

    // Importing the same file again stores nothing new (the empty pack goes).
    store.import_file(&f.big).expect("import again");
    assert_eq!(packs_in(&f.root, "pack").len(), 1, "{:?}", packs_in(&f.root, "pack"));
}

#[test]
fn small_contents_keep_a_file_per_chunk() {
    let f = fixture();
    let store = BlobStore::open(&f.root).expect("open");
    let small = f.root.parent().expect("parent").join("small.bin");
    fs::write(&small, noise(1024 * 1024, 9)).expect("write");
    let manifest = store.import_file(&small).expect("import");
    assert!(packs_in(&f.root, "pack").is_empty());
    assert_eq!(chunk_files(&f.root), manifest.chunks().len() + 1);
}

#[test]
fn corrupted_or_torn_packed_chunks_are_dropped_and_reported() {
    let f = fixture();
    let store = BlobStore::open(&f.root).expect("open");
    let manifest = store.import_file(&f.big).expect("import");
    let pack = packs_in(&f.root, "pack").remove(0);
    // Flip a byte of the first chunk written (offset 0 of the pack).
    let mut data = fs::read(&pack).expect("read pack");
    data[10] ^= 0xff;
    fs::write(&pack, &data).expect("damage");
    let first = manifest.chunks()[0];
    match store.get(&first.hash) {
        Err(BlobError::Corrupt { hash, .. }) => assert_eq!(hash, first.hash),
        other => panic!("expected the corruption to be reported, got {other:?}"),
    }
    assert!(!store.has_chunk(&first), "a corrupted chunk is missing from then on");
    assert_eq!(store.missing(&manifest).len(), 1);
    assert_eq!(store.answer(&Get { hash: first.hash, offset: 0, len: first.len }), Response::Missing);
    // The removal is recorded: still missing after a reopen.
    drop(store);
    let store = BlobStore::open(&f.root).expect("reopen");
    assert_eq!(store.missing(&manifest).len(), 1);

    // A crash that loses the end of the pack but keeps its records: the
    // chunks past the end are not claimed.
    drop(store);
    let cut = data.len() as u64 / 2;
    fs::OpenOptions::new().write(true).open(&pack).expect("open").set_len(cut).expect("cut");
    let store = BlobStore::open(&f.root).expect("reopen after the cut");
    let missing = store.missing(&manifest);
    assert!(missing.len() > manifest.chunks().len() / 3, "{} missing", missing.len());
    for c in manifest.chunks().iter().filter(|c| !missing.contains(c)) {
        assert!(store.get(&c.hash).expect("readable").is_some());
    }
}

#[test]
fn removing_every_chunk_of_a_pack_deletes_it() {
    let f = fixture();
    let store = BlobStore::open(&f.root).expect("open");
    let manifest = store.import_file(&f.big).expect("import");
    let (first, rest) = manifest.chunks().split_first().expect("chunks");
    assert!(store.remove(&first.hash).expect("remove"));
    assert!(!store.remove(&first.hash).expect("remove twice"), "already gone");
    assert_eq!(packs_in(&f.root, "pack").len(), 1, "the pack stays while it holds chunks");
    for c in rest {
        store.remove(&c.hash).expect("remove");
    }
    assert!(packs_in(&f.root, "pack").is_empty() && packs_in(&f.root, "idx").is_empty(), "the pack is deleted");
    assert_eq!(
        store.missing(&manifest).len(),
        manifest.chunks().iter().map(|c| c.hash).collect::<std::collections::BTreeSet<_>>().len()
    );
}

#[test]
fn a_download_writer_appends_verified_chunks_and_shares_the_index() {
    let f = fixture();
    let sender = BlobStore::open(&f.root).expect("open");
    let manifest = sender.import_file(&f.big).expect("import");
    let receiver = BlobStore::open(f.root.parent().expect("parent").join("bob")).expect("bob");
    let pack = receiver.pack_writer().expect("writer");
    let chunks: Vec<(ChunkHash, Vec<u8>)> =
        manifest.chunks().iter().map(|c| (c.hash, sender.get(&c.hash).expect("get").expect("present"))).collect();
    let (a, b) = chunks.split_at(chunks.len() / 2);
    // Two writer threads at once, as the node's batches do.
    std::thread::scope(|s| {
        s.spawn(|| receiver.put_many_in(&pack, a).expect("append a"));
        s.spawn(|| receiver.put_many_in(&pack, b).expect("append b"));
    });
    // A chunk handed twice is stored once.
    receiver.put_many_in(&pack, &chunks[..3]).expect("again");
    drop(pack);
    assert!(receiver.missing(&manifest).is_empty());
    let out = f.root.parent().expect("parent").join("bob.bin");
    receiver.materialise(&manifest, &out).expect("materialise");
    assert_eq!(fs::read(&out).expect("read"), f.bytes);
    let distinct = manifest.chunks().iter().map(|c| c.hash).collect::<std::collections::BTreeSet<_>>().len();
    let bob_root = f.root.parent().expect("parent").join("bob");
    assert_eq!(fs::metadata(&packs_in(&bob_root, "idx")[0]).expect("idx").len(), (distinct * RECORD_LEN) as u64);
    assert!(receiver.pack_bytes() >= f.bytes.len() as u64 - 4 * 256 * 1024);
}
