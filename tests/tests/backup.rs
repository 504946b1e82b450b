//! Mutual encrypted backups between real nodes on loopback: an owner and
//! three friends. The friends host the owner's shards within the quotas
//! they granted (an over-quota upload is refused), hold no plaintext (file
//! contents and names are searched for in every byte they store), and
//! after the owner's home and files are deleted, a fresh home with only the
//! recovery key and one friend's address rebuilds everything (files byte
//! for byte, contacts, shares, bank data) while one friend is offline. A
//! wrong or mistyped key writes nothing. A friend that drops its shards is
//! caught by an audit and its shards are re-created on another friend; a
//! friend returning corrupted shards is worked around.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Result};
use hearth_node::backup::restore::{restore_fresh, restore_fresh_with_progress, Secret};
use hearth_node::backup::BackupOp;
use hearth_node::bank::ImportQuery;
use hearth_node::home::Home;
use hearth_protocol::backup::keys::RootSecret;
use hearth_tests::{eventually, TestNode};

const ONLINE: Duration = Duration::from_secs(20);
const CONTENT_MARKER: &[u8] = b"PLAINTEXT-MARKER-7f3a9c-the-family-recipe-book";
const NAME_MARKER: &str = "secret-name-marker-b41d";

const ACCOUNT: &str = r#"{
  "io.cozy.bank.accounts": [{"_id": "a1", "label": "Compte Joint", "number": "FR760001", "institutionLabel": "X", "type": "Checkings",
                             "currency": "EUR", "balance": 120.00, "balanceDate": "2024-01-31"}],
  "io.cozy.bank.operations": [
    {"account": "a1", "label": "BOULANGERIE", "amount": -3.20, "currency": "EUR", "date": "2024-01-04T00:00:00Z"}
  ]
}"#;

/// Writes the owner's files; returns (relative path, bytes).
fn write_data(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut recipe = CONTENT_MARKER.to_vec();
    recipe.extend_from_slice(b"\nflour, butter, eggs\n");
    let files = vec![
        (PathBuf::from("recipes.txt"), recipe),
        (PathBuf::from("photos/holiday.raw"), hearth_tests::noise_bytes(3_000_000, 7)),
        (PathBuf::from(format!("papers/{NAME_MARKER}.txt")), b"tax return 2024".to_vec()),
        (PathBuf::from("papers/empty"), Vec::new()),
    ];
    for (rel, bytes) in &files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().ok_or_else(|| anyhow!("no parent"))?)?;
        std::fs::write(&p, bytes)?;
    }
    Ok(files)
}

fn all_bytes(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            all_bytes(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn backup(node: &TestNode, op: BackupOp) -> Result<serde_json::Value> {
    node.client()?.backup(&op).await
}

/// An owner paired with `friends`, each hosting with `quota`.
async fn setup(owner: &TestNode, friends: &[&TestNode], quota: u64) -> Result<()> {
    for f in friends {
        owner.pair_with(f).await?;
        owner.wait_online(&f.name, ONLINE).await?;
        f.wait_online(&owner.name, ONLINE).await?;
        let asked = backup(owner, BackupOp::FriendsAdd { contact: f.name.clone(), offer: 1 << 30 }).await?;
        assert_eq!(asked["state"], "asked", "{asked}");
        let hosting = backup(f, BackupOp::Hosting).await?;
        assert_eq!(hosting[0]["state"], "pending", "{hosting}");
        let answer = backup(f, BackupOp::HostingAnswer { contact: owner.name.clone(), accept: true, quota }).await?;
        assert_eq!(answer["told"], true, "{answer}");
    }
    Ok(())
}

async fn friend_addr(f: &TestNode) -> Result<String> {
    let (peer, addr) = f.quic_addr().await?;
    Ok(format!("{addr}/p2p/{peer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_friends_bring_a_lost_instance_back() -> Result<()> {
    let mut owner = TestNode::start_new("owner").await?;
    let f1 = TestNode::start_new("ann").await?;
    let f2 = TestNode::start_new("ben").await?;
    let mut f3 = TestNode::start_new("cat").await?;
    setup(&owner, &[&f1, &f2], 100 << 20).await?;
    // The third friend first grants too little: the upload is refused.
    setup(&owner, &[&f3], 1000).await?;

    let data_dir = tempfile::tempdir()?;
    let data = data_dir.path().join("data");
    let files = write_data(&data)?;
    let shared = data_dir.path().join("shared");
    std::fs::create_dir_all(&shared)?;
    std::fs::write(shared.join("note.txt"), b"shared note")?;
    let share = owner.client()?.share_create(&shared.to_string_lossy(), Some("Family")).await?;
    let q = ImportQuery { format: Some("cozy-json".into()), ..Default::default() };
    owner.client()?.bank_import(ACCOUNT.as_bytes().to_vec(), &q).await?;
    backup(&owner, BackupOp::Add { path: data.to_string_lossy().into_owned() }).await?;

    let before = backup(&owner, BackupOp::Status).await?;
    assert_eq!(before["restorable"], false, "nothing to restore before the first backup: {before}");
    assert_eq!(before["restorable_line"], "restorable now: no (no backup yet)", "{before}");
    let refused = backup(&owner, BackupOp::Run).await.expect_err("cat's quota is too small");
    assert!(refused.to_string().contains("over quota"), "{refused:#}");
    backup(&f3, BackupOp::HostingAnswer { contact: "owner".into(), accept: true, quota: 100 << 20 }).await?;

    let first = backup(&owner, BackupOp::Run).await?;
    assert_eq!((first["k"].as_u64(), first["n"].as_u64()), (Some(2), Some(3)), "{first}");
    assert_eq!(first["stats"]["files"], 4, "{first}");
    assert_eq!(first["catalog_on"].as_array().map(|a| a.len()), Some(3), "{first}");
    let second = backup(&owner, BackupOp::Run).await?;
    let new1 = first["stats"]["new_bytes"].as_u64().unwrap_or(0);
    let new2 = second["stats"]["new_bytes"].as_u64().unwrap_or(u64::MAX);
    assert!(new2 < new1 && new2 < 3_000_000, "unchanged files are not sent again: {new1} then {new2}");

    let status = backup(&owner, BackupOp::Status).await?;
    assert_eq!(status["restorable_line"], "restorable now: yes (3 of 3 friends reachable, 2 needed)", "{status}");
    let friends = backup(&owner, BackupOp::Friends).await?;
    for f in friends.as_array().ok_or_else(|| anyhow!("friends"))? {
        assert!(f["holds_for_me_shards"].as_u64() > Some(0), "{f}");
    }
    let snapshots = backup(&owner, BackupOp::Snapshots).await?;
    assert_eq!(snapshots.as_array().map(|a| a.len()), Some(2));

    // Hosts hold ciphertext only.
    for f in [&f1, &f2, &f3] {
        let mut stored = Vec::new();
        all_bytes(&f.root(), &mut stored);
        let hosted: usize = stored.iter().filter(|(p, _)| p.to_string_lossy().contains("hosted")).count();
        assert!(hosted > 0, "{} stores shards", f.name);
        for (path, bytes) in &stored {
            assert!(!contains(bytes, CONTENT_MARKER), "{} holds file contents in {}", f.name, path.display());
            assert!(!contains(bytes, NAME_MARKER.as_bytes()), "{} holds a file name in {}", f.name, path.display());
            assert!(!contains(bytes, b"BOULANGERIE"), "{} holds bank data in {}", f.name, path.display());
        }
    }

    let key = backup(&owner, BackupOp::RecoveryKey).await?["recovery_key"].as_str().unwrap_or_default().to_owned();
    let split =
        backup(&owner, BackupOp::SplitKey { threshold: 2, contacts: vec!["ann".into(), "ben".into(), "cat".into()] })
            .await?;
    assert_eq!(split["given_to"].as_array().map(|a| a.len()), Some(3), "{split}");
    let owner_peer = owner.peer_id()?;
    let from = vec![friend_addr(&f1).await?];
    // The issue's form: a friend's invitation token instead of its address.
    let token_of_ann = [f1.client()?.invite(None).await?.token];

    // Disaster: the owner's home and files are gone, one friend is away.
    owner.stop().await?;
    std::fs::remove_dir_all(owner.root())?;
    std::fs::remove_dir_all(&data)?;
    std::fs::remove_dir_all(&shared)?;
    f3.stop().await?;

    // A fresh machine: `hearth init`, then the restore replaces that new,
    // unknown identity with the old one.
    let fresh_dir = tempfile::tempdir()?;
    let fresh = Home::new(fresh_dir.path().join("home"));
    fresh.init(Some("owner"))?;
    let new_identity = std::fs::read(fresh.path("identity.key"))?;
    let listing = |home: &Home| -> Result<Vec<String>> {
        let mut names: Vec<String> =
            std::fs::read_dir(home.root())?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        Ok(names)
    };
    let before = listing(&fresh)?;
    let wrong = RootSecret([9; 32]).recovery_key();
    let err = restore_fresh(&fresh, Secret::Key(wrong), &token_of_ann, None).await.expect_err("wrong key");
    assert!(err.to_string().contains("recovery key"), "{err:#}");
    assert_eq!(listing(&fresh)?, before, "a wrong key writes nothing");
    assert_eq!(std::fs::read(fresh.path("identity.key"))?, new_identity, "a wrong key writes nothing");
    assert!(!data.exists(), "a wrong key writes nothing");
    let mut typo = key.clone().into_bytes();
    typo[3] = if typo[3] == b'A' { b'B' } else { b'A' };
    let err = restore_fresh(&fresh, Secret::Key(String::from_utf8_lossy(&typo).into_owned()), &from, None)
        .await
        .expect_err("typo");
    assert!(err.to_string().contains("typo"), "{err:#}");

    // What the progress bar is fed: from 0 to every byte, never backwards.
    let seen = std::sync::Mutex::new(Vec::new());
    let report = restore_fresh_with_progress(&fresh, Secret::Key(key.clone()), &token_of_ann, None, &|done, total| {
        seen.lock().expect("lock").push((done, total));
    })
    .await?;
    assert_eq!(report.files, 4 + 3, "files and node state: {report:?}");
    let seen = seen.into_inner().expect("lock");
    assert_eq!(seen.first(), Some(&(0, report.bytes)), "{seen:?}");
    assert_eq!(seen.last(), Some(&(report.bytes, report.bytes)), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    for (rel, bytes) in &files {
        assert!(&std::fs::read(data.join(rel))? == bytes, "{} restored byte for byte", rel.display());
    }
    assert_ne!(std::fs::read(fresh.path("identity.key"))?, new_identity, "the old identity replaced the new one");
    let err = restore_fresh(&fresh, Secret::Key(key.clone()), &from, None).await.expect_err("a home in use");
    assert!(err.to_string().contains("already holds a node in use"), "{err:#}");
    // Social recovery: two of the three friends hand their shares back.
    let mut shares = Vec::new();
    for f in [&f1, &f2] {
        let v = backup(f, BackupOp::HostedShare { owner: "owner".into() }).await?;
        let text = v["share"].as_str().unwrap_or_default().to_owned();
        // Kept sealed to the friend's key: the file alone reveals nothing.
        let mut held = Vec::new();
        all_bytes(&f.root(), &mut held);
        let stored: Vec<&Vec<u8>> =
            held.iter().filter(|(p, _)| p.ends_with("recovery-share")).map(|(_, b)| b).collect();
        assert_eq!(stored.len(), 1, "{} keeps one share", f.name);
        assert!(!contains(stored[0], text.as_bytes()) && !contains(stored[0], &text.as_bytes()[..8]), "sealed");
        shares.push(text);
    }
    let err =
        restore_fresh(&Home::new(fresh_dir.path().join("one")), Secret::Shares(shares[..1].to_vec()), &from, None)
            .await
            .expect_err("one share is not enough");
    assert!(err.to_string().contains("2 needed"), "{err:#}");
    let social = Home::new(fresh_dir.path().join("social"));
    let report = restore_fresh(&social, Secret::Shares(shares), &from, None).await?;
    assert_eq!(report.files, 4 + 3, "{report:?}");
    assert!(social.path("identity.key").exists());

    let restored = TestNode::start_existing("owner", fresh_dir, fresh).await?;
    assert_eq!(restored.peer_id()?, owner_peer, "the identity came back");
    let contacts: Vec<String> = restored.client()?.contacts().await?.into_iter().map(|c| c.name).collect();
    assert_eq!(contacts.len(), 3, "{contacts:?}");
    let shares = restored.client()?.shares().await?;
    assert!(shares.iter().any(|s| s.id == share.id && s.name == "Family"), "{shares:?}");
    let accounts = restored.client()?.bank_accounts().await?;
    assert!(accounts.iter().any(|a| a.name == "Compte Joint"), "{accounts:?}");
    restored.wait_online("ann", ONLINE).await?;
    let status = backup(&restored, BackupOp::Status).await?;
    assert_eq!(status["snapshots"], 2, "the restored node knows every snapshot: {status}");
    Ok(())
}

type SpareSetup = (TestNode, [TestNode; 3], tempfile::TempDir, PathBuf, Vec<(PathBuf, Vec<u8>)>);

/// An owner backing up 1-of-2 over three friends (one spare to repair
/// onto), after one run; `grace` overrides the grace period.
async fn spare_friend_setup(grace: Option<u64>) -> Result<SpareSetup> {
    let mut owner = TestNode::start_new("owner").await?;
    let f1 = TestNode::start_new("ann").await?;
    let f2 = TestNode::start_new("ben").await?;
    let f3 = TestNode::start_new("cat").await?;
    owner.stop().await?;
    owner.configure(|c| {
        c.backup_k = Some(1);
        c.backup_n = Some(2);
        if let Some(g) = grace {
            c.backup_grace_secs = g;
        }
    })?;
    owner.start().await?;
    setup(&owner, &[&f1, &f2, &f3], 100 << 20).await?;
    let data_dir = tempfile::tempdir()?;
    let data = data_dir.path().join("data");
    let files = write_data(&data)?;
    backup(&owner, BackupOp::Add { path: data.to_string_lossy().into_owned() }).await?;
    backup(&owner, BackupOp::Run).await?;
    Ok((owner, [f1, f2, f3], data_dir, data, files))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_that_drops_shards_is_caught_and_repaired() -> Result<()> {
    // 1-of-2 over three friends: one spare friend to repair onto.
    let (owner, [f1, f2, f3], data_dir, data, files) = spare_friend_setup(None).await?;

    let friends = backup(&owner, BackupOp::Friends).await?;
    let list = friends.as_array().cloned().unwrap_or_default();
    let holders: Vec<String> = list
        .iter()
        .filter(|f| f["holds_for_me_shards"].as_u64() > Some(0))
        .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(holders.len(), 2, "{friends}");
    let nodes = [&f1, &f2, &f3];
    let dropper = nodes.iter().find(|n| n.name == holders[0]).ok_or_else(|| anyhow!("holder"))?;
    let spare = nodes.iter().find(|n| !holders.contains(&n.name)).ok_or_else(|| anyhow!("spare"))?;

    // The dropper loses every shard.
    let mut held = Vec::new();
    all_bytes(&dropper.root().join("blobs/hosted"), &mut held);
    let shards: Vec<&PathBuf> =
        held.iter().map(|(p, _)| p).filter(|p| p.to_string_lossy().contains("/shards/")).collect();
    assert!(!shards.is_empty());
    for p in shards {
        std::fs::remove_file(p)?;
    }
    let audit = backup(&owner, BackupOp::Audit).await?;
    let repairs = audit["repairs"].as_array().cloned().unwrap_or_default();
    assert_eq!(repairs.len(), 1, "{audit}");
    assert!(repairs[0]["moved"].as_u64() > Some(0), "{audit}");
    assert!(repairs[0]["reason"].as_str().unwrap_or_default().contains("failed an audit"), "{audit}");
    let friends = backup(&owner, BackupOp::Friends).await?;
    let view = |name: &str| friends.as_array().and_then(|a| a.iter().find(|f| f["name"] == name).cloned());
    let spare_view = view(&spare.name).ok_or_else(|| anyhow!("spare view"))?;
    assert!(spare_view["holds_for_me_shards"].as_u64() > Some(0), "repaired onto the spare: {friends}");
    let dropper_view = view(&dropper.name).ok_or_else(|| anyhow!("dropper view"))?;
    assert_eq!(dropper_view["last_audit"]["ok"], false, "{friends}");
    assert!(dropper_view["repaired"].is_string(), "{friends}");

    // A full restore from the repaired placement, byte for byte.
    let target = data_dir.path().join("restored");
    let restore = |to: &Path| BackupOp::Restore { snapshot: None, path: None, to: to.to_string_lossy().into_owned() };
    backup(&owner, restore(&target)).await?;
    for (rel, bytes) in &files {
        let at = target.join(data.strip_prefix("/")?).join(rel);
        assert!(&std::fs::read(&at)? == bytes, "{} differs from what was backed up", at.display());
    }
    // Every remaining holder now returns corrupted shards: they are
    // refused with a clear error and nothing is written.
    for n in nodes.iter().filter(|n| n.name != dropper.name) {
        let mut held = Vec::new();
        all_bytes(&n.root().join("blobs/hosted"), &mut held);
        for (p, mut bytes) in held.into_iter().filter(|(p, _)| p.to_string_lossy().contains("/shards/")) {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&p, &bytes)?;
        }
    }
    let second = data_dir.path().join("second");
    let err = backup(&owner, restore(&second)).await.expect_err("every shard is corrupted");
    assert!(err.to_string().contains("corrupted shard") && err.to_string().contains("cannot be rebuilt"), "{err:#}");
    let mut written = Vec::new();
    all_bytes(&second, &mut written);
    assert!(
        written.is_empty(),
        "a failed restore leaves no file: {:?}",
        written.iter().map(|w| &w.0).collect::<Vec<_>>()
    );
    eventually(Duration::from_secs(5), "status to show the repair", || async {
        let s = backup(&owner, BackupOp::Status).await?;
        Ok(s["friends"].to_string().contains("re-created"))
    })
    .await?;
    Ok(())
}

/// Shard files an owner's friend holds for it.
fn shard_files(friend: &TestNode) -> Vec<PathBuf> {
    let mut held = Vec::new();
    all_bytes(&friend.root().join("blobs/hosted"), &mut held);
    held.into_iter().map(|(p, _)| p).filter(|p| p.to_string_lossy().contains("/shards/")).collect()
}

/// Bug 4 of the simulator: a repair stopped at the first pack it could not
/// rebuild, so the other packs of the lost friend stayed unrepaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_that_cannot_be_rebuilt_does_not_stop_the_repair_of_the_others() -> Result<()> {
    // Run 1: pack P1 on two friends. Run 2 (new content): pack P2 on the
    // friend that held nothing and on one of the first two.
    let (owner, [f1, f2, f3], data_dir, data, _files) = spare_friend_setup(None).await?;
    let first: Vec<&TestNode> = [&f1, &f2, &f3].into_iter().filter(|f| !shard_files(f).is_empty()).collect();
    assert_eq!(first.len(), 2, "run 1 placed its pack on two friends");
    std::fs::write(data.join("photos/second.raw"), hearth_tests::noise_bytes(2_000_000, 11))?;
    backup(&owner, BackupOp::Run).await?;
    let nodes = [&f1, &f2, &f3];
    let lost =
        nodes.iter().find(|f| shard_files(f).len() == 2).ok_or_else(|| anyhow!("a friend holding both packs"))?;
    let spare = nodes.iter().find(|f| !first.iter().any(|h| h.name == f.name)).ok_or_else(|| anyhow!("the spare"))?;
    assert_eq!(shard_files(spare).len(), 1, "run 2 placed its pack on the spare");
    // `lost` loses both shards, the spare its shard of P2: P2 has no good
    // shard left, P1 still has one (on the third friend).
    for p in shard_files(lost).into_iter().chain(shard_files(spare)) {
        std::fs::remove_file(p)?;
    }
    let audit = backup(&owner, BackupOp::Audit).await?;
    let repairs = audit["repairs"].as_array().cloned().unwrap_or_default();
    let of_lost = repairs
        .iter()
        .find(|r| r["note"].as_str().is_some_and(|n| n.contains("re-created")) && r["moved"].as_u64() > Some(0))
        .ok_or_else(|| anyhow!("no repair re-created a shard: {audit}"))?;
    assert!(repairs.iter().all(|r| r.get("error").is_none()), "a repair ended in an error: {audit}");
    assert_eq!(of_lost["unrepaired_packs"], 1, "P2 is reported as not repairable: {audit}");
    assert!(of_lost["note"].as_str().unwrap_or_default().contains("could not be repaired"), "{audit}");
    // P1 is whole again: a restore of the first snapshot works.
    let snapshots = backup(&owner, BackupOp::Snapshots).await?;
    let oldest = snapshots.as_array().and_then(|s| s.first()).and_then(|s| s["id"].as_str()).map(str::to_owned);
    let target = data_dir.path().join("restored-first");
    let restore = BackupOp::Restore { snapshot: oldest, path: None, to: target.to_string_lossy().into_owned() };
    backup(&owner, restore).await?;
    let at = target.join(data.strip_prefix("/")?).join("photos/holiday.raw");
    assert_eq!(std::fs::read(&at)?, hearth_tests::noise_bytes(3_000_000, 7));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_away_past_the_grace_period_is_replaced() -> Result<()> {
    let (owner, [f1, f2, f3], _data_dir, _data, _files) = spare_friend_setup(Some(1)).await?;
    let friends = backup(&owner, BackupOp::Friends).await?;
    let holder = friends
        .as_array()
        .and_then(|a| a.iter().find(|f| f["holds_for_me_shards"].as_u64() > Some(0)))
        .and_then(|f| f["name"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow!("a holder: {friends}"))?;
    let mut nodes = [f1, f2, f3];
    let away = nodes.iter_mut().find(|n| n.name == holder).ok_or_else(|| anyhow!("holder node"))?;
    away.stop().await?;
    eventually(ONLINE, "the owner to see the friend leave", || async {
        Ok(owner.contact(&holder).await?.is_some_and(|c| !c.online))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let audit = backup(&owner, BackupOp::Audit).await?;
    let repairs = audit["repairs"].as_array().cloned().unwrap_or_default();
    assert_eq!(repairs.len(), 1, "{audit}");
    assert!(repairs[0]["reason"].as_str().unwrap_or_default().contains("away since"), "{audit}");
    assert!(repairs[0]["moved"].as_u64() > Some(0), "{audit}");
    let status = backup(&owner, BackupOp::Status).await?;
    assert_eq!(status["restorable"], true, "{status}");
    assert!(status["friends"].to_string().contains("re-created"), "{status}");

    // The friend comes back: the shards the repair moved away from it are
    // deleted there, not left to fill its quota (bug 6 of the simulator).
    let held = shard_files(away).len();
    assert!(held > 0);
    away.start().await?;
    owner.wait_online(&holder, ONLINE).await?;
    eventually(Duration::from_secs(30), "the moved shards to be deleted from the friend that was away", || async {
        Ok(shard_files(away).is_empty())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_reclaims_space_on_the_friend_and_keeps_what_is_kept() -> Result<()> {
    let owner = TestNode::start_new("owner").await?;
    let f1 = TestNode::start_new("ann").await?;
    setup(&owner, &[&f1], 100 << 20).await?;
    let data_dir = tempfile::tempdir()?;
    let data = data_dir.path().join("data");
    let mut files = write_data(&data)?;
    backup(&owner, BackupOp::Add { path: data.to_string_lossy().into_owned() }).await?;
    backup(&owner, BackupOp::Run).await?;
    // The large file is replaced: its old chunks are only in the first snapshot.
    let replaced = hearth_tests::noise_bytes(3_000_000, 99);
    std::fs::write(data.join("photos/holiday.raw"), &replaced)?;
    files[1].1 = replaced;
    let second = backup(&owner, BackupOp::Run).await?;
    assert!(second["stats"]["new_bytes"].as_u64() > Some(3_000_000), "the new photo is sent: {second}");
    let used = |v: serde_json::Value| v[0]["used"].as_u64().unwrap_or(0);
    let before = used(backup(&f1, BackupOp::Hosting).await?);

    let forgot = backup(
        &owner,
        BackupOp::Forget(hearth_node::backup::engine::KeepPolicy { keep_last: Some(1), ..Default::default() }),
    )
    .await?;
    assert_eq!(forgot["removed_snapshots"], 1, "{forgot}");
    assert!(forgot["freed_bytes"].as_u64() > Some(2_000_000), "the old photo's space is reclaimed: {forgot}");
    let after = used(backup(&f1, BackupOp::Hosting).await?);
    assert!(after + 2_000_000 < before, "host usage {before} -> {after}");
    assert_eq!(backup(&owner, BackupOp::Snapshots).await?.as_array().map(|a| a.len()), Some(1));

    let target = data_dir.path().join("restored");
    backup(&owner, BackupOp::Restore { snapshot: None, path: None, to: target.to_string_lossy().into_owned() }).await?;
    for (rel, bytes) in &files {
        let at = target.join(data.strip_prefix("/")?).join(rel);
        assert!(&std::fs::read(&at)? == bytes, "{} differs from what was backed up", at.display());
    }

    // The friend removes the owner: after the grace period the space is freed.
    let mut f1 = f1;
    f1.stop().await?;
    f1.configure(|c| c.backup_grace_secs = 1)?;
    f1.start().await?;
    f1.client()?.remove_contact("owner").await?;
    let hosted = f1.root().join("blobs/hosted");
    assert!(std::fs::read_dir(&hosted)?.next().is_some());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let audit = backup(&f1, BackupOp::Audit).await?;
    assert_eq!(audit["reclaimed_owners"].as_array().map(|a| a.len()), Some(1), "{audit}");
    assert!(std::fs::read_dir(&hosted)?.next().is_none(), "the former contact's shards are gone");
    assert_eq!(backup(&f1, BackupOp::Hosting).await?, serde_json::json!([]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_replaces_a_lost_recovery_key() -> Result<()> {
    let mut owner = TestNode::start_new("owner").await?;
    let f1 = TestNode::start_new("ann").await?;
    setup(&owner, &[&f1], 100 << 20).await?;
    let data_dir = tempfile::tempdir()?;
    let data = data_dir.path().join("data");
    let files = write_data(&data)?;
    backup(&owner, BackupOp::Add { path: data.to_string_lossy().into_owned() }).await?;
    // Small Argon2id parameters: a debug build is slow at the default cost.
    let params = hearth_protocol::backup::keys::KdfParams { m_kib: 256, t: 1, p: 1 };
    let op = BackupOp::SetPassphrase { passphrase: "grandma's garden 1987".into(), m_kib: Some(256), t: Some(1) };
    let set = backup(&owner, op).await?;
    assert_eq!(set["stored_with"], serde_json::json!(["ann"]), "{set}");
    backup(&owner, BackupOp::Run).await?;
    let owner_peer = owner.peer_id()?;
    let from = vec![friend_addr(&f1).await?];
    owner.stop().await?;
    std::fs::remove_dir_all(owner.root())?;
    std::fs::remove_dir_all(&data)?;

    let fresh_dir = tempfile::tempdir()?;
    let fresh = Home::new(fresh_dir.path().join("home"));
    let wrong = Secret::Passphrase("grandpa's garden 1987".into(), params);
    let err = restore_fresh(&fresh, wrong, &from, None).await.expect_err("wrong passphrase");
    assert!(err.to_string().contains("passphrase"), "{err:#}");
    assert!(!data.exists() && !fresh.root().join("identity.key").exists(), "a wrong passphrase writes nothing");
    let report = restore_fresh(&fresh, Secret::Passphrase("grandma's garden 1987".into(), params), &from, None).await?;
    assert_eq!(report.files, 4 + 3, "{report:?}");
    for (rel, bytes) in &files {
        assert!(&std::fs::read(data.join(rel))? == bytes, "{} restored byte for byte", rel.display());
    }
    let restored = TestNode::start_existing("owner", fresh_dir, fresh).await?;
    assert_eq!(restored.peer_id()?, owner_peer);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_without_sending_everything_again() -> Result<()> {
    let mut owner = TestNode::start_new("owner").await?;
    let f1 = TestNode::start_new("ann").await?;
    let f2 = TestNode::start_new("ben").await?;
    let f3 = TestNode::start_new("cat").await?;
    setup(&owner, &[&f1, &f2, &f3], 1 << 30).await?;
    let data_dir = tempfile::tempdir()?;
    let data = data_dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    // Incompressible, several 16 MiB packs.
    let mut files = Vec::new();
    for i in 0..4u64 {
        let rel = PathBuf::from(format!("video-{i}.raw"));
        let bytes = hearth_tests::noise_bytes(20 << 20, 100 + i);
        std::fs::write(data.join(&rel), &bytes)?;
        files.push((rel, bytes));
    }
    backup(&owner, BackupOp::Add { path: data.to_string_lossy().into_owned() }).await?;

    // The node stops while the run uploads: some shards are placed.
    let client = owner.client()?;
    let run = tokio::spawn(async move { client.backup(&BackupOp::Run).await });
    eventually(Duration::from_secs(60), "the first shards to be placed", || async {
        Ok(backup(&owner, BackupOp::Progress).await?["uploaded"].as_u64() > Some(0))
    })
    .await?;
    owner.stop().await?;
    assert!(run.await?.is_err(), "the run was interrupted (it did not finish before the stop)");

    owner.start().await?;
    for f in [&f1, &f2, &f3] {
        owner.wait_online(&f.name, ONLINE).await?;
    }
    let second = backup(&owner, BackupOp::Run).await?;
    let friends = backup(&owner, BackupOp::Friends).await?;
    let placed: u64 = friends
        .as_array()
        .ok_or_else(|| anyhow!("friends"))?
        .iter()
        .filter_map(|f| f["holds_for_me_bytes"].as_u64())
        .sum();
    let sent = second["sent_bytes"].as_u64().unwrap_or(u64::MAX);
    eprintln!("after the interruption the second run sent {sent} of the {placed} shard bytes placed");
    assert!(placed > 80 << 20, "all shards are placed: {friends}");
    assert!(
        sent < placed,
        "the second run sent {sent} bytes of the {placed} placed: what was stored is not sent again"
    );

    let target = data_dir.path().join("restored");
    let to = target.to_string_lossy().into_owned();
    backup(&owner, BackupOp::Restore { snapshot: None, path: None, to }).await?;
    for (rel, bytes) in &files {
        let at = target.join(data.strip_prefix("/")?).join(rel);
        assert!(&std::fs::read(&at)? == bytes, "{} restored byte for byte", at.display());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_pruned_while_a_friend_is_away_are_deleted_when_it_is_back() -> Result<()> {
    let owner = TestNode::start_new("owner").await?;
    let ann = TestNode::start_new("ann").await?;
    let mut ben = TestNode::start_new("ben").await?;
    setup(&owner, &[&ann, &ben], 100 << 20).await?;
    let data_dir = tempfile::tempdir()?;
    let data = data_dir.path().join("data");
    write_data(&data)?;
    backup(&owner, BackupOp::Add { path: data.to_string_lossy().into_owned() }).await?;
    backup(&owner, BackupOp::Run).await?;
    std::fs::write(data.join("photos/holiday.raw"), hearth_tests::noise_bytes(3_000_000, 98))?;
    backup(&owner, BackupOp::Run).await?;
    let used = |v: serde_json::Value| v[0]["used"].as_u64().unwrap_or(0);
    let before = used(backup(&ben, BackupOp::Hosting).await?);

    ben.stop().await?;
    eventually(ONLINE, "the owner to see ben leave", || async {
        Ok(owner.contact("ben").await?.is_some_and(|c| !c.online))
    })
    .await?;
    let forgot = backup(
        &owner,
        BackupOp::Forget(hearth_node::backup::engine::KeepPolicy { keep_last: Some(1), ..Default::default() }),
    )
    .await?;
    assert_eq!(forgot["friends_unreachable"], serde_json::json!(["ben"]), "{forgot}");

    // Ben comes back: the deletes recorded for him are sent, once.
    ben.start().await?;
    owner.wait_online("ben", ONLINE).await?;
    eventually(Duration::from_secs(30), "ben to free the pruned shards", || async {
        Ok(used(backup(&ben, BackupOp::Hosting).await?) + 2_000_000 < before)
    })
    .await?;
    assert!(
        !hearth_tests::log_lines_with(&["pruned shards deleted from", "ben"]).is_empty()
            || !hearth_tests::log_lines_with(&["pruned shards deleted from friends that came back"]).is_empty(),
        "the delete is logged"
    );
    Ok(())
}
