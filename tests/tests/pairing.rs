//! Pairing between three real nodes on 127.0.0.1: invitations, joins,
//! single use, bad tokens, API authentication and contact removal.

use std::time::Duration;

use anyhow::Result;
use hearth_tests::{eventually, log_lines_with, TestNode};

const ONLINE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_pair_and_see_each_other_online() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    let carol = TestNode::start_new("carol").await?;

    let seen_by_bob = alice.pair_with(&bob).await?;
    assert_eq!(seen_by_bob.name, "alice");
    assert_eq!(seen_by_bob.peer_id, alice.peer_id()?);
    alice.pair_with(&carol).await?;
    // An alias given at join time is the local name of the inviter.
    let token = bob.client()?.invite(None).await?.token;
    let seen_by_carol = carol.client()?.join(&token, Some("Bobby")).await?;
    assert_eq!(seen_by_carol.name, "Bobby");
    assert_eq!(seen_by_carol.their_name, "bob");

    alice.wait_online("bob", ONLINE).await?;
    alice.wait_online("carol", ONLINE).await?;
    bob.wait_online("alice", ONLINE).await?;
    bob.wait_online("carol", ONLINE).await?;
    carol.wait_online("alice", ONLINE).await?;
    carol.wait_online("Bobby", ONLINE).await?;

    let contacts = alice.client()?.contacts().await?;
    assert_eq!(contacts.len(), 2);
    for c in &contacts {
        assert!(c.last_seen.is_some(), "{c:?}");
        assert!(!c.addresses.is_empty(), "addresses learned from the greeting: {c:?}");
        assert!(c.addresses.iter().all(|a| a.starts_with("/ip4/127.0.0.1/")), "{c:?}");
    }
    let status = alice.client()?.status().await?;
    assert_eq!(status.name, "alice");
    assert_eq!(status.contacts_total, 2);
    assert_eq!(status.connected_contacts.len(), 2);
    assert!(status.listen_addrs.iter().any(|a| a.contains("/quic-v1")));
    assert!(status.listen_addrs.iter().any(|a| a.contains("/tcp/")));

    let used: Vec<_> = alice.client()?.invitations().await?.into_iter().filter(|i| i.state == "used").collect();
    assert_eq!(used.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_works_once() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    let carol = TestNode::start_new("carol").await?;
    let token = alice.client()?.invite(None).await?.token;
    bob.client()?.join(&token, None).await?;

    let err = carol.client()?.join(&token, None).await.expect_err("second use must fail");
    assert!(err.to_string().contains("already used"), "{err}");
    assert!(carol.client()?.contacts().await?.is_empty());
    assert_eq!(alice.client()?.contacts().await?.len(), 1);
    assert!(!log_lines_with(&["refused a pairing request", &carol.peer_id()?, "AlreadyUsed"]).is_empty());

    // Bob using it again: he already has alice, nothing to do.
    let err = bob.client()?.join(&token, None).await.expect_err("already a contact");
    assert!(err.to_string().contains("already your contact"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_clear_errors_and_change_nothing() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    let token = alice.client()?.invite(None).await?.token;
    let join = |t: String| {
        let client = bob.client();
        async move { client?.join(&t, None).await }
    };

    let truncated = join(token[..token.len() - 12].to_owned()).await.expect_err("truncated");
    assert!(truncated.to_string().contains("incomplete"), "{truncated}");
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'x' { 'y' } else { 'x' };
    let garbled = join(chars.into_iter().collect()).await.expect_err("garbled");
    assert!(garbled.to_string().contains("garbled"), "{garbled}");
    let not_a_token = join("hello alice".into()).await.expect_err("not a token");
    assert!(not_a_token.to_string().contains("not a Hearth invitation"), "{not_a_token}");
    let bad_char = join(format!("{}0OIl", &token[..20])).await.expect_err("bad character");
    assert!(bad_char.to_string().contains("invalid character"), "{bad_char}");
    let own = alice.client()?.join(&token, None).await.expect_err("own token");
    assert!(own.to_string().contains("made by this node"), "{own}");

    let short = alice.client()?.invite(Some(1)).await?.token;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = join(short).await.expect_err("expired");
    assert!(expired.to_string().contains("expired"), "{expired}");

    // Nothing changed: no contacts anywhere, and the good token still works.
    assert!(alice.client()?.contacts().await?.is_empty());
    assert!(bob.client()?.contacts().await?.is_empty());
    join(token).await?;
    alice.wait_online("bob", ONLINE).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_requests_without_the_token() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let base = alice.api_base()?;
    let http = reqwest::Client::new();
    let none = http.get(format!("{base}/v1/contacts")).send().await?;
    assert_eq!(none.status(), 401);
    let body: serde_json::Value = none.json().await?;
    assert!(body["error"].as_str().unwrap_or_default().contains("API token"), "{body}");
    let wrong = http.post(format!("{base}/v1/invitations")).bearer_auth("0".repeat(64)).send().await?;
    assert_eq!(wrong.status(), 401);
    // Nothing was created by the refused request.
    assert!(alice.client()?.invitations().await?.is_empty());
    assert!(!log_lines_with(&["refused an API request without the right token"]).is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_contact_is_refused() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    alice.pair_with(&bob).await?;
    alice.wait_online("bob", ONLINE).await?;
    bob.wait_online("alice", ONLINE).await?;

    let removed = alice.client()?.remove_contact("bob").await?;
    assert_eq!(removed.peer_id, bob.peer_id()?);
    assert!(alice.contact("bob").await?.is_none());
    let err = alice.client()?.remove_contact("bob").await.expect_err("already removed");
    assert!(err.to_string().contains("no contact named"), "{err}");

    // Bob still lists alice, but she no longer answers him as a contact.
    let bob_peer = bob.peer_id()?;
    eventually(ONLINE, "bob to be refused by alice", || async {
        Ok(bob.contact("alice").await?.is_some_and(|c| !c.online)
            && !log_lines_with(&["refused /hearth/contact/1", &bob_peer]).is_empty())
    })
    .await?;
    assert!(alice.client()?.contacts().await?.is_empty());
    Ok(())
}
