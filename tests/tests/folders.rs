//! Files in a shared folder between three real nodes on 127.0.0.1: the
//! directory on disk is the interface. Existing files reach new members,
//! edits, renames and deletions propagate, a read-only member's edit never
//! leaves its node, and edits made while a member was offline merge, with
//! both versions kept when they touched the same file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use hearth_tests::{eventually, TestNode};

const SYNC: Duration = Duration::from_secs(30);

/// Relative path -> content of every file below `root` (node files excluded).
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(".hearth") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let rel = path.strip_prefix(root).map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
                out.insert(rel, bytes);
            }
        }
    }
    out
}

async fn same_tree(a: &Path, b: &Path, what: &str) -> Result<()> {
    eventually(SYNC, what, || async { Ok(tree(a) == tree(b)) }).await
}

fn big_file(len: usize, seed: u8) -> Vec<u8> {
    hearth_tests::noise_bytes(len, u64::from(seed))
}

struct Family {
    alice: TestNode,
    bob: TestNode,
    carol: TestNode,
    dirs: (PathBuf, PathBuf, PathBuf),
    _tmp: tempfile::TempDir,
}

/// Alice shares a folder with files; bob joins read-write, carol read-only.
async fn family() -> Result<Family> {
    let alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    let carol = TestNode::start_new("carol").await?;
    alice.pair_with(&bob).await?;
    alice.pair_with(&carol).await?;
    alice.wait_online("bob", SYNC).await?;
    alice.wait_online("carol", SYNC).await?;
    let tmp = tempfile::tempdir()?;
    let a = tmp.path().join("alice");
    std::fs::create_dir_all(a.join("Photos/2026"))?;
    std::fs::write(a.join("notes.txt"), b"milk, eggs")?;
    std::fs::write(a.join("Photos/2026/beach.raw"), big_file(3 * 1024 * 1024 + 17, 1))?;
    std::fs::write(a.join("Photos/cat.jpg"), big_file(70_000, 2))?;
    std::fs::write(a.join("empty.txt"), b"")?;
    alice.client()?.share_create(&a.to_string_lossy(), Some("Family")).await?;
    alice.client()?.share_invite("Family", "bob", false).await?;
    alice.client()?.share_invite("Family", "carol", true).await?;
    let (b, c) = (tmp.path().join("bob"), tmp.path().join("carol"));
    for (node, dir) in [(&bob, &b), (&carol, &c)] {
        eventually(SYNC, "the invitation", || async { Ok(!node.client()?.shares().await?.is_empty()) }).await?;
        node.client()?.share_accept("Family", &dir.to_string_lossy()).await?;
    }
    Ok(Family { alice, bob, carol, dirs: (a, b, c), _tmp: tmp })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_renames_and_deletions_reach_every_member() -> Result<()> {
    let f = family().await?;
    let (a, b, c) = &f.dirs;
    same_tree(a, b, "bob to receive the folder").await?;
    same_tree(a, c, "carol to receive the folder").await?;
    assert_eq!(tree(b).len(), 4);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(b.join("notes.txt"))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "received files are readable like local ones");
    }

    // Bob edits a file: it reaches alice and carol.
    std::fs::write(b.join("notes.txt"), b"milk, eggs, bread")?;
    same_tree(b, a, "bob's edit to reach alice").await?;
    same_tree(b, c, "bob's edit to reach carol").await?;
    assert_eq!(std::fs::read(a.join("notes.txt"))?, b"milk, eggs, bread");

    // Alice renames a folder with its content: a move, the files follow.
    std::fs::rename(a.join("Photos"), a.join("Pictures"))?;
    same_tree(a, b, "the rename to reach bob").await?;
    assert!(b.join("Pictures/2026/beach.raw").is_file());
    assert!(!b.join("Photos").exists());

    // Alice deletes a file: gone everywhere.
    std::fs::remove_file(a.join("Pictures/cat.jpg"))?;
    same_tree(a, b, "the deletion to reach bob").await?;
    same_tree(a, c, "the deletion to reach carol").await?;

    let status = f.bob.client()?.share_status("Family").await?;
    assert_eq!((status.files, status.folders, status.in_trash), (3, 2, 1), "{status:?}");

    // Deleted and overwritten versions are kept and restorable.
    let trash = f.bob.client()?.share_trash("Family").await?;
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0].path, "Pictures/cat.jpg");
    let versions = f.alice.client()?.share_versions("Family", "notes.txt").await?;
    // Alice's original, bob's edit (current). Rarely an intermediate state of
    // bob's write is recorded as well: an extra version, nothing lost.
    assert!(versions.len() >= 2, "{versions:?}");
    assert!(versions.last().is_some_and(|v| v.current) && !versions[0].current, "{versions:?}");
    assert_eq!((versions[0].author.as_str(), versions[0].size), ("alice", 10), "{versions:?}");
    f.bob.client()?.share_restore("Family", "Pictures/cat.jpg", None).await?;
    f.alice.client()?.share_restore("Family", "notes.txt", Some(0)).await?;
    same_tree(a, b, "the restores to reach bob").await?;
    assert_eq!(std::fs::read(a.join("notes.txt"))?, b"milk, eggs");
    assert_eq!(std::fs::read(b.join("Pictures/cat.jpg"))?, big_file(70_000, 2));
    std::fs::write(a.join("notes.txt"), b"milk, eggs, bread")?;
    std::fs::remove_file(a.join("Pictures/cat.jpg"))?;
    same_tree(a, b, "the state before the restores").await?;
    assert_eq!(status.bytes, tree(b).values().map(|v| v.len() as u64).sum::<u64>());

    // Carol is read-only: her edit stays on her disk and reaches nobody.
    std::fs::write(c.join("notes.txt"), b"carol was here")?;
    std::fs::write(c.join("carol.txt"), b"mine")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(std::fs::read(a.join("notes.txt"))?, b"milk, eggs, bread");
    assert!(!a.join("carol.txt").exists() && !b.join("carol.txt").exists());
    assert_eq!(std::fs::read(c.join("notes.txt"))?, b"carol was here", "her local file is not overwritten");
    let carol_status = f.carol.client()?.share_status("Family").await?;
    assert_eq!(carol_status.not_shared, ["carol.txt", "notes.txt"], "{carol_status:?}");

    // `.hearthignore` is shared, and every member skips what it names.
    std::fs::write(a.join(".hearthignore"), "*.log\nbuild/\n")?;
    eventually(SYNC, "the ignore file to reach bob", || async { Ok(b.join(".hearthignore").is_file()) }).await?;
    std::fs::write(b.join("debug.log"), b"noise")?;
    std::fs::create_dir(b.join("build"))?;
    std::fs::write(b.join("build/out.bin"), b"artefact")?;
    std::fs::write(b.join("kept.txt"), b"shared")?;
    eventually(SYNC, "bob's shared file to reach alice", || async { Ok(a.join("kept.txt").is_file()) }).await?;
    assert!(!a.join("debug.log").exists() && !a.join("build").exists());
    let report = f.bob.client()?.share_scan("Family").await?;
    assert_eq!(report["recorded"]["ignored"], 2, "{report}");

    // Hostile or odd names on disk are not shared, and say so.
    std::fs::write(a.join("con.txt"), b"reserved on Windows")?;
    let report = f.alice.client()?.share_scan("Family").await?;
    assert!(report.to_string().contains("con.txt"), "{report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_merge_and_concurrent_edits_keep_both_versions() -> Result<()> {
    let mut f = family().await?;
    let (a, b, _) = f.dirs.clone();
    same_tree(&a, &b, "bob to receive the folder").await?;

    f.bob.stop().await?;
    // While bob is away: alice edits notes.txt and adds a file; bob edits
    // notes.txt too and adds his own file.
    std::fs::write(a.join("notes.txt"), b"alice's list")?;
    std::fs::write(a.join("from-alice.txt"), b"hello bob")?;
    f.alice.client()?.share_scan("Family").await?;
    std::fs::write(b.join("notes.txt"), b"bob's list")?;
    std::fs::write(b.join("from-bob.txt"), b"hello alice")?;
    f.bob.start().await?;

    same_tree(&a, &b, "the offline edits to merge").await?;
    let merged = tree(&a);
    assert_eq!(merged.get("from-alice.txt").map(Vec::as_slice), Some(&b"hello bob"[..]));
    assert_eq!(merged.get("from-bob.txt").map(Vec::as_slice), Some(&b"hello alice"[..]));
    let notes: Vec<(&String, &Vec<u8>)> = merged.iter().filter(|(p, _)| p.starts_with("notes")).collect();
    assert_eq!(notes.len(), 2, "both versions kept: {:?}", merged.keys().collect::<Vec<_>>());
    let versions: Vec<&[u8]> = notes.iter().map(|(_, v)| v.as_slice()).collect();
    assert!(versions.contains(&&b"alice's list"[..]) && versions.contains(&&b"bob's list"[..]));
    assert!(notes.iter().any(|(p, _)| p.contains("(conflict from ")), "{notes:?}");
    // Status lists the conflict, on both sides.
    for node in [&f.alice, &f.bob] {
        let status = node.client()?.share_status("Family").await?;
        assert_eq!(status.conflicts.len(), 1, "{status:?}");
        assert_eq!(status.files_pending_down, 0);
        assert_eq!(status.files, merged.len());
        // The listing the web interface shows: both versions, side by side.
        let listing = node.client()?.share_files("Family", None).await?;
        assert_eq!(listing.conflicts.len(), 1, "{listing:?}");
        let (kept, copy) = (&listing.conflicts[0].kept, &listing.conflicts[0].copy);
        assert_eq!(kept.path, "notes.txt");
        assert!(copy.path.contains("(conflict from ") && copy.conflict_of.as_deref() == Some("notes.txt"), "{copy:?}");
        assert_ne!(kept.author, copy.author, "one version each");
        assert_eq!(listing.total, merged.len() + listing.files.iter().filter(|f| f.kind == "dir").count());
    }
    let err = f.alice.client()?.share_files("Family", Some(0)).await.expect_err("limit 0");
    assert!(err.to_string().contains("limit must be between 1 and"), "{err}");
    same_tree(&a, &f.dirs.2, "carol to see both versions too").await?;

    // Alice resolves it the usual way: she merges both lists into
    // notes.txt. Her edit stays there (it does not become another conflict
    // copy), and bob's version stays beside it as a file of its own.
    let copy_name = notes.iter().map(|(p, _)| p.as_str()).find(|p| p.contains("(conflict from ")).unwrap_or_default();
    let copy_name = copy_name.to_owned();
    let copy_bytes = merged[&copy_name].clone();
    std::fs::write(a.join("notes.txt"), b"alice's and bob's lists")?;
    f.alice.client()?.share_scan("Family").await?;
    eventually(SYNC, "alice's merge to reach bob", || async {
        Ok(std::fs::read(b.join("notes.txt")).ok().as_deref() == Some(&b"alice's and bob's lists"[..]))
    })
    .await?;
    same_tree(&a, &b, "the resolution to settle").await?;
    let resolved = tree(&a);
    let notes: Vec<&String> = resolved.keys().filter(|p| p.starts_with("notes")).collect();
    assert_eq!(notes.len(), 2, "the merge and bob's version, nothing more: {notes:?}");
    assert_eq!(resolved.get(&copy_name), Some(&copy_bytes), "bob's version kept under its name");
    // The copy is still listed, to be looked at, until someone deletes it.
    for node in [&f.alice, &f.bob] {
        let status = node.client()?.share_status("Family").await?;
        assert_eq!(status.conflicts, vec![copy_name.clone()], "{status:?}");
    }
    std::fs::remove_file(a.join(&copy_name))?;
    f.alice.client()?.share_scan("Family").await?;
    eventually(SYNC, "the copy's deletion to reach bob", || async { Ok(!b.join(&copy_name).exists()) }).await?;
    for node in [&f.alice, &f.bob] {
        let status = node.client()?.share_status("Family").await?;
        assert!(status.conflicts.is_empty() && status.in_trash == 1, "resolved: {status:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_sends_an_edit_without_waiting_for_a_rescan() -> Result<()> {
    let mut alice = TestNode::start_new("alice").await?;
    let mut bob = TestNode::start_new("bob").await?;
    // Periodic rescans out of the way: only the watcher can notice edits.
    for node in [&mut alice, &mut bob] {
        node.stop().await?;
        node.configure(|c| c.rescan_secs = 3600)?;
        node.start().await?;
    }
    alice.pair_with(&bob).await?;
    alice.wait_online("bob", SYNC).await?;
    let tmp = tempfile::tempdir()?;
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a)?;
    alice.client()?.share_create(&a.to_string_lossy(), Some("Quick")).await?;
    alice.client()?.share_invite("Quick", "bob", false).await?;
    eventually(SYNC, "the invitation", || async { Ok(!bob.client()?.shares().await?.is_empty()) }).await?;
    bob.client()?.share_accept("Quick", &b.to_string_lossy()).await?;
    eventually(SYNC, "bob to be a member", || async {
        Ok(alice.client()?.share_status("Quick").await?.pending_invitations.is_empty())
    })
    .await?;
    let mut latencies = Vec::new();
    for i in 0..5u32 {
        let body = format!("edit {i}");
        let started = std::time::Instant::now();
        std::fs::write(a.join("note.txt"), &body)?;
        eventually(Duration::from_secs(10), "the edit to reach bob through the watcher", || async {
            Ok(std::fs::read(b.join("note.txt")).ok().as_deref() == Some(body.as_bytes()))
        })
        .await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    eprintln!("edit-to-peer latencies (debug build, loopback): {latencies:?}");
    assert!(latencies[2] < Duration::from_secs(5), "{latencies:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_mid_transfer_resumes_and_finishes() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let mut bob = TestNode::start_new("bob").await?;
    alice.pair_with(&bob).await?;
    alice.wait_online("bob", SYNC).await?;
    let tmp = tempfile::tempdir()?;
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a)?;
    for i in 0..4u8 {
        std::fs::write(a.join(format!("video{i}.mkv")), big_file(12 * 1024 * 1024, 10 + i))?;
    }
    alice.client()?.share_create(&a.to_string_lossy(), Some("Videos")).await?;
    alice.client()?.share_invite("Videos", "bob", false).await?;
    eventually(SYNC, "the invitation", || async { Ok(!bob.client()?.shares().await?.is_empty()) }).await?;
    bob.client()?.share_accept("Videos", &b.to_string_lossy()).await?;
    // Stop bob as soon as part of the content is there (in packs: the
    // files are large).
    let packs = bob.root().join("blobs/packs");
    let packed = || -> u64 {
        std::fs::read_dir(&packs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    eventually(SYNC, "some chunks to arrive", || async { Ok(packed() > 4 * 1024 * 1024) }).await?;
    bob.stop().await?;
    let partial = tree(&b).len();
    bob.start().await?;
    same_tree(&a, &b, "the transfer to finish after the restart").await?;
    eprintln!("files complete before the restart: {partial} of 4");
    assert_eq!(bob.client()?.share_status("Videos").await?.files_pending_down, 0);
    Ok(())
}
