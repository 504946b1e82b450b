//! Harness for end-to-end tests: real Hearth nodes, each with its own home
//! (identity, redb database, config) in a temporary directory, listening on
//! QUIC and TCP on 127.0.0.1 only (mDNS off), serving the real HTTP API, and
//! driven through the same HTTP client the CLI uses. Nodes run in the test's
//! process so that they can be stopped and restarted quickly; the
//! `node/tests/cli.rs` tests run the `hearth` binary itself. [`browser`]
//! drives a real headless Chromium for the web interface's tests.

pub mod browser;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Mutex, Once};
use std::time::Duration;

use anyhow::{bail, Result};
use hearth_node::client::Client;
use hearth_node::config::Config;
use hearth_node::home::Home;
use hearth_node::node::RunningNode;
use hearth_node::views::ContactView;

/// A node under test.
pub struct TestNode {
    /// Its home.
    pub home: Home,
    /// Its name.
    pub name: String,
    _dir: tempfile::TempDir,
    running: Option<RunningNode>,
}

/// The loopback-only configuration tests use: free ports, no mDNS, a short
/// grace period for strangers and a short reconnection backoff.
pub fn loopback_config(name: &str, quic_port: u16, tcp_port: u16) -> Config {
    Config {
        listen: vec![format!("/ip4/127.0.0.1/udp/{quic_port}/quic-v1"), format!("/ip4/127.0.0.1/tcp/{tcp_port}")],
        mdns: false,
        stranger_grace_secs: 2,
        reconnect_max_backoff_secs: 2,
        rescan_secs: 1,
        ..Config::new(name.to_owned())
    }
}

impl TestNode {
    /// Initialises a home for `name` and starts the node.
    pub async fn start_new(name: &str) -> Result<Self> {
        init_logs();
        let dir = tempfile::Builder::new().prefix(&format!("hearth-{name}-")).tempdir()?;
        let home = Home::new(dir.path().join("home"));
        home.init(Some(name))?;
        loopback_config(name, 0, 0).save(&home.config_path())?;
        let mut node = Self { home, name: name.to_owned(), _dir: dir, running: None };
        node.start().await?;
        Ok(node)
    }

    /// Starts a node on a home that already exists (e.g. one a backup
    /// restore rebuilt), kept in `dir`.
    pub async fn start_existing(name: &str, dir: tempfile::TempDir, home: Home) -> Result<Self> {
        init_logs();
        let mut node = Self { home, name: name.to_owned(), _dir: dir, running: None };
        node.start().await?;
        Ok(node)
    }

    /// Starts (or restarts) the node on its home.
    pub async fn start(&mut self) -> Result<()> {
        if self.running.is_none() {
            self.running = Some(hearth_node::node::start(&self.home).await?);
        }
        Ok(())
    }

    /// Stops the node; its home stays. Like the exit of a `hearth up`
    /// process, it returns once the node's UDP port is free again (in one
    /// process, quinn keeps a socket until its last connection has drained,
    /// which takes seconds for a dial still in its handshake).
    pub async fn stop(&mut self) -> Result<()> {
        let Some(node) = self.running.take() else {
            return Ok(());
        };
        let quic: Vec<std::net::SocketAddr> =
            Client::from_home(&self.home)?.status().await?.listen_addrs.iter().filter_map(|a| quic_socket(a)).collect();
        node.stop().await?;
        for addr in quic {
            eventually(Duration::from_secs(15), &format!("{} to release {addr}", self.name), || async move {
                Ok(std::net::UdpSocket::bind(addr).is_ok())
            })
            .await?;
        }
        Ok(())
    }

    /// Changes the configuration for the next start.
    pub fn configure(&self, change: impl FnOnce(&mut Config)) -> Result<()> {
        let mut config = self.home.config()?;
        change(&mut config);
        config.save(&self.home.config_path())
    }

    /// Rewrites the listen ports (0 = any free port) for the next start.
    pub fn set_ports(&self, quic: u16, tcp: u16) -> Result<()> {
        let fresh = loopback_config(&self.name, quic, tcp);
        self.configure(|c| c.listen = fresh.listen)
    }

    /// The API client of the running node.
    pub fn client(&self) -> Result<Client> {
        Client::from_home(&self.home)
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> Result<String> {
        Ok(self.home.identity()?.public().to_peer_id().to_string())
    }

    /// The running node's API address.
    pub fn api_base(&self) -> Result<String> {
        Ok(format!("http://{}", self.home.api_info()?.addr))
    }

    /// Home directory path.
    pub fn root(&self) -> PathBuf {
        self.home.root().to_path_buf()
    }

    /// The running node's peer id and QUIC address, for raw swarms that dial it.
    pub async fn quic_addr(&self) -> Result<(libp2p::PeerId, libp2p::Multiaddr)> {
        let status = self.client()?.status().await?;
        let addr = status.listen_addrs.iter().find(|a| a.contains("quic"));
        let addr = addr.ok_or_else(|| anyhow::anyhow!("{} has no QUIC address", self.name))?;
        Ok((status.peer_id.parse()?, addr.parse()?))
    }

    /// Makes an invitation and has `joiner` redeem it.
    pub async fn pair_with(&self, joiner: &TestNode) -> Result<ContactView> {
        let token = self.client()?.invite(None).await?.token;
        joiner.client()?.join(&token, None).await
    }

    /// The contact named `name`, if any.
    pub async fn contact(&self, name: &str) -> Result<Option<ContactView>> {
        Ok(self.client()?.contacts().await?.into_iter().find(|c| c.name == name))
    }

    /// Waits until contact `name` is online (or fails after `timeout`).
    pub async fn wait_online(&self, name: &str, timeout: Duration) -> Result<()> {
        eventually(timeout, &format!("{} to see {name} online", self.name), || async {
            Ok(self.contact(name).await?.is_some_and(|c| c.online))
        })
        .await
    }
}

fn quic_socket(multiaddr: &str) -> Option<std::net::SocketAddr> {
    let mut parts = multiaddr.split('/').skip(1);
    match (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?) {
        ("ip4", ip, "udp", port, "quic-v1") => format!("{ip}:{port}").parse().ok(),
        _ => None,
    }
}

/// Incompressible-looking, deterministic bytes (xorshift from `seed`).
pub fn noise_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed + 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Polls `check` every 50 ms until it returns true, for at most `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

static LOGS: Mutex<String> = Mutex::new(String::new());
static INIT: Once = Once::new();

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = LOGS.lock() {
            logs.push_str(&String::from_utf8_lossy(buf));
        }
        if std::env::var_os("HEARTH_TEST_LOGS").is_some() {
            std::io::Write::write_all(&mut std::io::stderr(), buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the nodes' logs (set `HEARTH_TEST_LOGS=1` to also see them).
pub fn init_logs() {
    INIT.call_once(|| {
        hearth_node::node::install_crypto_provider();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("hearth_node=debug,warn"))
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
    });
}

/// Log lines captured so far that contain every one of `needles`.
pub fn log_lines_with(needles: &[&str]) -> Vec<String> {
    let logs = LOGS.lock().map(|l| l.clone()).unwrap_or_default();
    logs.lines().filter(|line| needles.iter().all(|n| line.contains(n))).map(str::to_owned).collect()
}
