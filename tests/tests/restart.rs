//! Contacts, invitations and addresses survive restarts; contacts find each
//! other again by themselves, also after both changed ports (one at a time,
//! through the addresses each learned from the other).

use std::time::Duration;

use anyhow::Result;
use hearth_tests::TestNode;

const ONLINE: Duration = Duration::from_secs(20);

fn free_port_pair() -> Result<(u16, u16)> {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    Ok((udp, tcp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_reconnect_after_restarts_and_port_changes() -> Result<()> {
    let mut alice = TestNode::start_new("alice").await?;
    let mut bob = TestNode::start_new("bob").await?;
    let mut carol = TestNode::start_new("carol").await?;
    alice.pair_with(&bob).await?;
    alice.pair_with(&carol).await?;
    let open = alice.client()?.invite(None).await?;
    alice.wait_online("bob", ONLINE).await?;
    alice.wait_online("carol", ONLINE).await?;

    let listen_before = alice.client()?.status().await?.listen_addrs;

    // 1. Both alice and bob stop, then start again: each reuses its ports, and
    //    the contacts are back without any action.
    alice.stop().await?;
    bob.stop().await?;
    let err = bob.client().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("no node is running"), "{err}");
    alice.start().await?;
    bob.start().await?;
    alice.wait_online("bob", ONLINE).await?;
    bob.wait_online("alice", ONLINE).await?;
    alice.wait_online("carol", ONLINE).await?;
    // The invitations survived, used and unused.
    let invitations = alice.client()?.invitations().await?;
    assert_eq!(invitations.iter().filter(|i| i.state == "used").count(), 2);
    assert_eq!(invitations.iter().filter(|i| i.state == "open").count(), 1);
    assert_eq!(alice.client()?.status().await?.listen_addrs, listen_before);

    // A token made before the restart still works once: alice is back on the
    // ports it names.
    let dave = TestNode::start_new("dave").await?;
    dave.client()?.join(&open.token, None).await?;
    alice.wait_online("dave", ONLINE).await?;

    // 2. Bob restarts on new ports while alice runs: he dials alice's last
    //    known address and tells her his new one.
    let old_bob_addrs = alice.contact("bob").await?.map(|c| c.addresses).unwrap_or_default();
    bob.stop().await?;
    let (q, t) = free_port_pair()?;
    bob.set_ports(q, t)?;
    bob.start().await?;
    alice.wait_online("bob", ONLINE).await?;
    bob.wait_online("alice", ONLINE).await?;
    // The new address arrives with bob's greeting or identify, which may come
    // a moment after the connection that makes him "online".
    let wanted = format!("/udp/{q}/");
    hearth_tests::eventually(ONLINE, "alice to learn bob's new address", || async {
        let addrs = alice.contact("bob").await?.map(|c| c.addresses).unwrap_or_default();
        Ok(addrs.iter().any(|a| a.contains(&wanted)))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; before the move bob was at {old_bob_addrs:?}"))?;

    // 3. Now alice moves too; bob and carol find her at the address she
    //    announced when she came back.
    alice.stop().await?;
    let (q, t) = free_port_pair()?;
    alice.set_ports(q, t)?;
    alice.start().await?;
    bob.wait_online("alice", ONLINE).await?;
    carol.wait_online("alice", ONLINE).await?;
    alice.wait_online("bob", ONLINE).await?;

    // 4. A contact that was offline for a while is seen as offline with a
    //    last-seen time, then online again when it returns.
    carol.stop().await?;
    hearth_tests::eventually(ONLINE, "alice to see carol offline", || async {
        Ok(alice.contact("carol").await?.is_some_and(|c| !c.online && c.last_seen.is_some()))
    })
    .await?;
    carol.start().await?;
    alice.wait_online("carol", ONLINE).await?;

    Ok(())
}

/// Alice and Bob both move to new ports while neither runs: every address
/// each knows of the other is stale. Carol, a contact of both, did not move:
/// each reconnects to her, Bob asks her where Alice is (his greeting's
/// `ask`), she answers with Alice's new address, and Bob dials it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutual_contact_tells_where_a_moved_contact_is() -> Result<()> {
    let mut alice = TestNode::start_new("alice").await?;
    let mut bob = TestNode::start_new("bob").await?;
    let carol = TestNode::start_new("carol").await?;
    alice.pair_with(&bob).await?;
    alice.pair_with(&carol).await?;
    bob.pair_with(&carol).await?;
    alice.wait_online("bob", ONLINE).await?;
    bob.wait_online("carol", ONLINE).await?;
    alice.wait_online("carol", ONLINE).await?;

    alice.stop().await?;
    bob.stop().await?;
    let (q, t) = free_port_pair()?;
    alice.set_ports(q, t)?;
    let (q, t) = free_port_pair()?;
    bob.set_ports(q, t)?;
    alice.start().await?;
    alice.wait_online("carol", ONLINE).await?;
    bob.start().await?;
    bob.wait_online("carol", ONLINE).await?;
    bob.wait_online("alice", ONLINE).await?;
    alice.wait_online("bob", ONLINE).await?;
    assert!(
        !hearth_tests::log_lines_with(&["learned", "address(es) of alice from a mutual contact"]).is_empty(),
        "bob found alice through carol"
    );
    Ok(())
}
