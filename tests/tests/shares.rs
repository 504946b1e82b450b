//! Shared folders between three real nodes, membership and document sync:
//! create, invite (read-write and read-only), pending, accept into an empty
//! directory, the signed document reaching every member, roles, removal,
//! and the document exported for any Automerge implementation.

use std::time::Duration;

use anyhow::Result;
use automerge::ReadDoc;
use hearth_tests::{eventually, TestNode};

const SYNC: Duration = Duration::from_secs(20);

async fn member_count(node: &TestNode, share: &str) -> Result<usize> {
    Ok(node.client()?.share_status(share).await?.members.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_share_reaches_every_member_with_its_roles() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    let carol = TestNode::start_new("carol").await?;
    alice.pair_with(&bob).await?;
    alice.pair_with(&carol).await?;
    alice.wait_online("bob", SYNC).await?;
    alice.wait_online("carol", SYNC).await?;

    let dir = tempfile::tempdir()?;
    let photos = dir.path().join("Photos");
    std::fs::create_dir(&photos)?;
    let share = alice.client()?.share_create(&photos.to_string_lossy(), None).await?;
    assert_eq!((share.name.as_str(), share.role.as_str(), share.state.as_str()), ("Photos", "owner", "active"));
    // The same directory cannot be shared twice; a file cannot be shared.
    let again = alice.client()?.share_create(&photos.to_string_lossy(), None).await.expect_err("twice");
    assert!(again.to_string().contains("already shared"), "{again}");
    std::fs::write(dir.path().join("f.txt"), b"x")?;
    let file = alice.client()?.share_create(&dir.path().join("f.txt").to_string_lossy(), None).await.expect_err("file");
    assert!(file.to_string().contains("not a directory"), "{file}");

    alice.client()?.share_invite("Photos", "bob", false).await?;
    alice.client()?.share_invite("Photos", "carol", true).await?;
    for (node, role) in [(&bob, "read-write"), (&carol, "read-only")] {
        eventually(SYNC, "the invitation to arrive", || async {
            Ok(node.client()?.shares().await?.iter().any(|s| s.name == "Photos" && s.state == "pending"))
        })
        .await?;
        let listed = node.client()?.shares().await?;
        assert_eq!(listed[0].role, role);
        assert_eq!(listed[0].id, share.id);
    }
    let status = alice.client()?.share_status("Photos").await?;
    assert_eq!(status.pending_invitations.len(), 2, "{status:?}");

    // Accepting refuses a non-empty directory, then works with a new one.
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy)?;
    std::fs::write(busy.join("mine.txt"), b"keep me")?;
    let err = bob.client()?.share_accept(&share.id, &busy.to_string_lossy()).await.expect_err("not empty");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(std::fs::read(busy.join("mine.txt"))?, b"keep me");
    bob.client()?.share_accept(&share.id, &dir.path().join("bob-photos").to_string_lossy()).await?;
    carol.client()?.share_accept("Photos", &dir.path().join("carol-photos").to_string_lossy()).await?;
    assert!(dir.path().join("bob-photos").is_dir());

    // The document, with all three members, reaches both.
    for node in [&bob, &carol] {
        eventually(SYNC, "the document to reach the member", || async { Ok(member_count(node, "Photos").await? == 3) })
            .await?;
    }
    let seen_by_carol = carol.client()?.share_status("Photos").await?;
    let roles: Vec<(String, String)> = seen_by_carol.members.iter().map(|m| (m.name.clone(), m.role.clone())).collect();
    assert!(roles.contains(&("you".into(), "read-only".into())), "{roles:?}");
    assert!(roles.contains(&("alice".into(), "owner".into())), "{roles:?}");
    assert!(alice.client()?.share_status("Photos").await?.pending_invitations.is_empty());

    // Only the owner manages members.
    let err = bob.client()?.share_set_role("Photos", "alice", Some("read-only")).await.expect_err("not owner");
    assert!(err.to_string().contains("only the share's owner"), "{err}");
    alice.client()?.share_set_role("Photos", "carol", Some("read-write")).await?;
    eventually(SYNC, "carol's new role to reach bob", || async {
        let members = bob.client()?.share_status("Photos").await?.members;
        Ok(members.iter().any(|m| m.peer_id == carol.peer_id().unwrap_or_default() && m.role == "read-write"))
    })
    .await?;

    // Removing bob: the others see it; bob's copy stops changing.
    let bob_changes = bob.client()?.share_status("Photos").await?.doc_changes;
    alice.client()?.share_set_role("Photos", "bob", None).await?;
    eventually(SYNC, "carol to see bob removed", || async { Ok(member_count(&carol, "Photos").await? == 2) }).await?;
    alice.client()?.share_set_role("Photos", "carol", Some("read-only")).await?;
    eventually(SYNC, "carol to see her role change", || async {
        Ok(carol
            .client()?
            .share_status("Photos")
            .await?
            .members
            .iter()
            .any(|m| m.name == "you" && m.role == "read-only"))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bob.client()?.share_status("Photos").await?.doc_changes, bob_changes, "bob received nothing more");
    // Bob learns he was removed when alice refuses his next sync (here: on
    // reconnection), and stops syncing; his files stay.
    alice.client()?.remove_contact("bob").await?;
    let token = bob.client()?.invite(None).await?.token;
    alice.client()?.join(&token, None).await?;
    eventually(SYNC, "bob to see the share as removed", || async {
        Ok(bob.client()?.shares().await?.iter().any(|s| s.name == "Photos" && s.state == "removed"))
    })
    .await?;
    assert!(dir.path().join("bob-photos").is_dir());

    // The document is plain Automerge.
    let bytes = carol.client()?.share_doc("Photos").await?;
    let doc = automerge::AutoCommit::load(&bytes)?;
    let (_, meta) = doc.get(automerge::ROOT, "meta")?.expect("meta");
    let name = doc.get(&meta, "name")?.expect("name").0.into_scalar().ok().and_then(|s| s.as_str().map(str::to_owned));
    assert_eq!(name.as_deref(), Some("Photos"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_wait_for_an_offline_contact_and_can_be_declined() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let mut bob = TestNode::start_new("bob").await?;
    alice.pair_with(&bob).await?;
    alice.wait_online("bob", SYNC).await?;
    bob.stop().await?;
    let dir = tempfile::tempdir()?;
    alice.client()?.share_create(&dir.path().to_string_lossy(), Some("Papers")).await?;
    alice.client()?.share_invite("Papers", "bob", false).await?;
    bob.start().await?;
    eventually(SYNC, "the invitation to reach bob once back", || async {
        Ok(bob.client()?.shares().await?.iter().any(|s| s.name == "Papers" && s.state == "pending"))
    })
    .await?;
    bob.client()?.share_decline("Papers").await?;
    eventually(SYNC, "alice to learn the answer", || async {
        let status = alice.client()?.share_status("Papers").await?;
        Ok(status.pending_invitations.is_empty() && status.members.len() == 1)
    })
    .await?;
    assert_eq!(bob.client()?.shares().await?[0].state, "declined");
    let err =
        bob.client()?.share_accept("Papers", &dir.path().join("x").to_string_lossy()).await.expect_err("declined");
    assert!(err.to_string().contains("not pending"), "{err}");
    Ok(())
}
