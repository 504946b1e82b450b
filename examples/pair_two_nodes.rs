//! Two nodes on this machine pair with an invitation and see each other.
//!
//! Shows the whole foundation in one screen: two homes, two real nodes
//! (QUIC + TCP on 127.0.0.1, real redb databases, real HTTP APIs), an
//! invitation made by one and redeemed by the other, and both contact lists.
//!
//! ```text
//! cargo run -p hearth-examples --example pair_two_nodes
//! ```

use std::time::Duration;

use anyhow::Result;
use hearth_node::client::Client;

async fn node(dir: &std::path::Path, name: &str) -> Result<(hearth_node::node::RunningNode, Client)> {
    let (running, client, _) = hearth_examples::loopback_node(dir, name).await?;
    Ok((running, client))
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (alice, alice_api) = node(dir.path(), "alice").await?;
    let (bob, bob_api) = node(dir.path(), "bob").await?;

    let invite = alice_api.invite(None).await?;
    println!("alice's invitation (valid until {}):\n{}\n", invite.expires_at, invite.token);
    let contact = bob_api.join(&invite.token, None).await?;
    println!("bob paired with {} ({})", contact.name, contact.peer_id);

    for _ in 0..100 {
        if alice_api.contacts().await?.iter().all(|c| c.online) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (who, api) in [("alice", &alice_api), ("bob", &bob_api)] {
        for c in api.contacts().await? {
            println!("{who} sees {} online={} last_seen={:?}", c.name, c.online, c.last_seen);
        }
    }
    alice.stop().await?;
    bob.stop().await?;
    Ok(())
}
