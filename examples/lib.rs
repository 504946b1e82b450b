//! Runnable Hearth scenarios; each example file starts with what it shows
//! and the `cargo run -p hearth-examples --example NAME` line that runs it.

use hearth_node::client::Client;
use hearth_node::config::Config;
use hearth_node::home::Home;
use hearth_node::node::RunningNode;

/// A node named `name` in `dir/name`, listening on 127.0.0.1 only (QUIC and
/// TCP, mDNS off), started; with its API client and home.
pub async fn loopback_node(dir: &std::path::Path, name: &str) -> anyhow::Result<(RunningNode, Client, Home)> {
    let home = Home::new(dir.join(name));
    home.init(Some(name))?;
    Config {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".into(), "/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        ..home.config()?
    }
    .save(&home.config_path())?;
    let running = hearth_node::node::start(&home).await?;
    Ok((running, Client::from_home(&home)?, home))
}
