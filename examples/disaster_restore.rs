//! Backup to friends and disaster restore, end to end, with four real nodes
//! on this machine.
//!
//! Alice asks Bob, Carol and Dan to host her backup; each accepts with a
//! quota. She backs up a folder (chunked, encrypted, erasure-coded 2-of-3,
//! one shard per friend) and notes her recovery key. Then her server dies:
//! her home and her files are deleted, and Dan is away. On a fresh machine
//! (`hearth init`), the recovery key and an invitation token Bob prints
//! (what `hearth restore --recovery-key KEY --from TOKEN` does) bring back
//! her files and her whole node (identity, contacts). Every step is printed.
//!
//! ```text
//! cargo run -p hearth-examples --example disaster_restore
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Result};
use hearth_node::backup::restore::{restore_fresh, Secret};
use hearth_node::backup::BackupOp;
use hearth_node::client::Client;
use hearth_node::home::Home;
use hearth_node::node::RunningNode;

async fn node(dir: &Path, name: &str) -> Result<(RunningNode, Client, Home)> {
    hearth_examples::loopback_node(dir, name).await
}

async fn wait_online(client: &Client, name: &str) -> Result<()> {
    for _ in 0..200 {
        if client.contacts().await?.iter().any(|c| c.name == name && c.online) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{name} did not come online")
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (alice, alice_api, alice_home) = node(dir.path(), "alice").await?;
    let mut friends = Vec::new();
    for name in ["bob", "carol", "dan"] {
        let (running, api, _) = node(dir.path(), name).await?;
        api.join(&alice_api.invite(None).await?.token, None).await?;
        wait_online(&alice_api, name).await?;
        alice_api.backup(&BackupOp::FriendsAdd { contact: name.into(), offer: 10 << 30 }).await?;
        api.backup(&BackupOp::HostingAnswer { contact: "alice".into(), accept: true, quota: 10 << 30 }).await?;
        println!("{name} hosts alice's backup (quota 10 GiB)");
        friends.push((running, api));
    }

    let photos = dir.path().join("alice-photos");
    std::fs::create_dir_all(&photos)?;
    std::fs::write(photos.join("wedding.txt"), "the best day, 12 June")?;
    std::fs::write(photos.join("kids.raw"), vec![7u8; 2_000_000])?;
    alice_api.backup(&BackupOp::Add { path: photos.to_string_lossy().into_owned() }).await?;
    let run = alice_api.backup(&BackupOp::Run).await?;
    println!("backup: {} files, {}-of-{} shards over the friends", run["stats"]["files"], run["k"], run["n"]);
    let status = alice_api.backup(&BackupOp::Status).await?;
    println!("{}", status["restorable_line"].as_str().unwrap_or_default());
    let key = alice_api.backup(&BackupOp::RecoveryKey).await?["recovery_key"].as_str().unwrap_or_default().to_owned();
    println!("recovery key (on paper): {key}");
    // Bob hands Alice a token later, by phone or mail: it says where he is.
    let bob_token = friends[0].1.invite(None).await?.token;

    println!("disaster: alice's server dies (home and files deleted); dan is away");
    alice.stop().await?;
    std::fs::remove_dir_all(alice_home.root())?;
    std::fs::remove_dir_all(&photos)?;
    let (dan, _) = friends.pop().ok_or_else(|| anyhow::anyhow!("dan"))?;
    dan.stop().await?;

    let fresh = Home::new(dir.path().join("alice-new-server"));
    fresh.init(Some("alice"))?; // hearth init
    let report = restore_fresh(&fresh, Secret::Key(key), &[bob_token], None).await?; // hearth restore
    println!("restored {} files ({} bytes) from bob and carol", report.files, report.bytes);
    ensure!(std::fs::read_to_string(photos.join("wedding.txt"))? == "the best day, 12 June");
    let restored = hearth_node::node::start(&fresh).await?;
    let contacts = Client::from_home(&fresh)?.contacts().await?;
    println!(
        "alice's node is back as {} with her contacts: {}",
        restored.peer_id,
        contacts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    restored.stop().await?;
    for (running, _) in friends {
        running.stop().await?;
    }
    Ok(())
}
