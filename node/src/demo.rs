//! `hearth demo`: several real nodes on this machine, showing what Hearth
//! does, step by step. Each node has its own home under the demo directory,
//! listens on 127.0.0.1 only (no mDNS) and serves its API, so while the demo
//! runs with `--keep-running` every `hearth --home DIR/NAME ...` command works
//! against it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::client::Client;
use crate::config::Config;
use crate::home::Home;
use crate::node::RunningNode;

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// Runs the demo in `dir` (a new temporary directory if `None`).
pub async fn run(dir: Option<PathBuf>, keep_running: bool) -> Result<()> {
    let (dir, _temp) = match dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::Builder::new().prefix("hearth-demo-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    println!("== Hearth demo in {}", dir.display());
    let mut nodes = Vec::new();
    for name in NAMES {
        nodes.push(start(&dir.join(name), name).await?);
    }
    let clients: Vec<Client> =
        NAMES.iter().map(|n| Client::from_home(&Home::new(dir.join(n)))).collect::<Result<_>>()?;

    println!("\n== 1. Pairing: alice invites bob and carol; each joins with the token");
    for (i, joiner) in [(1usize, "bob"), (2, "carol")] {
        let invite = clients[0].invite(Some(600)).await?;
        println!("alice$ hearth invite\n{}", invite.token);
        let contact = clients[i].join(&invite.token, None).await?;
        println!("{joiner}$ hearth join <token>   -> paired with {} ({})", contact.name, contact.peer_id);
    }
    wait_all_online(&clients).await?;
    println!("\nalice$ hearth contacts");
    for c in clients[0].contacts().await? {
        println!("  {:<8} {:<8} {}", c.name, if c.online { "online" } else { "offline" }, c.peer_id);
    }

    if keep_running {
        println!("\nThe nodes keep running. Try for example:");
        for name in NAMES {
            println!("  hearth --home {} status", dir.join(name).display());
        }
        println!("Ctrl-C stops them.");
        tokio::signal::ctrl_c().await.context("cannot watch Ctrl-C")?;
    }
    for node in nodes {
        node.stop().await?;
    }
    println!("\n== Demo finished.");
    Ok(())
}

async fn start(root: &Path, name: &str) -> Result<RunningNode> {
    let home = Home::new(root);
    home.init(Some(name))?;
    let config = Config {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".into(), "/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        ..home.config()?
    };
    config.save(&home.config_path())?;
    let node = crate::node::start(&home).await?;
    println!("started {name:<6} {} (home {})", node.peer_id, root.display());
    Ok(node)
}

async fn wait_all_online(clients: &[Client]) -> Result<()> {
    for _ in 0..200 {
        let mut all = true;
        for c in clients {
            all &= c.contacts().await?.iter().all(|c| c.online);
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the demo nodes did not all see each other within 10 s")
}
