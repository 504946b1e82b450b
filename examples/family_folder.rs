//! A family folder, end to end, with three real nodes on this machine.
//!
//! Alice, Bob and Carol each run a node (own home, own redb database, QUIC on
//! 127.0.0.1). They pair with invitations; Alice shares a folder with Bob
//! (read-write) and Carol (read-only); the files appear on every disk; Bob's
//! edit reaches Alice; Carol's edit stays on her disk. Every step is printed.
//!
//! ```text
//! cargo run -p hearth-examples --example family_folder
//! ```

use anyhow::Result;

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (nodes, clients) = hearth_node::demo::family(dir.path()).await?;
    hearth_node::demo::shared_folder(dir.path(), &clients).await?;
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
