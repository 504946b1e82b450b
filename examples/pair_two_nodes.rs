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
use hearth_node::config::Config;
use hearth_node::home::Home;

async fn node(dir: &std::path::Path, name: &str) -> Result<(hearth_node::node::RunningNode, Client)> {
    let home = Home::new(dir.join(name));
    home.init(Some(name))?;
    Config {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".into(), "/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        ..home.config()?
    }
    .save(&home.config_path())?;
    let running = hearth_node::node::start(&home).await?;
    Ok((running, Client::from_home(&home)?))
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
