//! A bank view for an elderly parent, end to end, with three real nodes on
//! this machine.
//!
//! Alice (the parent) imports her bank statement (an OFX file, as her bank
//! sends it) and shows her account, read-only, to her children Bob and
//! Carol. Each sees the balance and operations in their own node; Bob
//! watches for large debits (with a hook that could send him an email),
//! Carol for a low balance with amounts hidden. Alice's next statement has a
//! suspicious transfer: both children are alerted, once. Every step is
//! printed.
//!
//! ```text
//! cargo run -p hearth-examples --example parent_account
//! ```

use anyhow::Result;

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (nodes, clients) = hearth_node::demo::family(dir.path()).await?;
    hearth_node::demo::parent_account(dir.path(), &clients).await?;
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
