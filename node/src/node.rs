//! Starting and stopping a node: the swarm's event loop and the HTTP API as
//! two tasks, with `api.json` written while both run.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::home::{ApiInfo, Home};
use crate::net::{self, EventLoop};
use crate::store::{ListenPorts, Store};

/// A running node.
pub struct RunningNode {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// The node's identity.
    pub peer_id: PeerId,
    home: Home,
    stop_net: oneshot::Sender<()>,
    stop_api: oneshot::Sender<()>,
    net_task: tokio::task::JoinHandle<()>,
    api_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Installs the process-wide rustls crypto provider. libp2p-quic and quinn
/// pull in both ring and aws-lc-rs, so rustls cannot choose by itself.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Starts the node of `home`: opens its database, listens, serves the API.
pub async fn start(home: &Home) -> Result<RunningNode> {
    install_crypto_provider();
    let key = home.identity()?;
    let config = home.config()?;
    let token = home.api_token()?;
    let store = Arc::new(Store::open(&home.db_path())?);
    let peer_id = key.public().to_peer_id();
    let gate_store = store.clone();
    let reach = net::ReachOptions {
        relay: config.relay.enabled.then(|| config.relay.clone()),
        gate: Arc::new(move |peer: &PeerId| matches!(gate_store.contact(&peer.to_bytes()), Ok(Some(_)))),
        autonat_private_addrs: config.autonat_private_addrs,
    };
    let mut swarm = net::build_swarm(key, config.mdns, reach)?;
    let last: ListenPorts = store.meta("listen_ports")?.unwrap_or_default();
    for text in &config.listen {
        let addr: Multiaddr = text
            .parse()
            .with_context(|| format!("invalid listen address {text:?} in {}", home.config_path().display()))?;
        listen(&mut swarm, &addr, &last)?;
    }
    for text in &config.external_addrs {
        let addr: Multiaddr = text
            .parse()
            .with_context(|| format!("invalid external address {text:?} in {}", home.config_path().display()))?;
        swarm.add_external_address(addr);
    }
    for text in &config.relays {
        let valid = text.parse::<Multiaddr>().ok().and_then(|a| net::relay_target(&a)).is_some();
        anyhow::ensure!(
            valid,
            "invalid relay {text:?} in {}: an address ending in /p2p/<the relay's peer id>",
            home.config_path().display()
        );
    }

    let listener = tokio::net::TcpListener::bind(&config.api_addr)
        .await
        .with_context(|| format!("cannot open the API on {}", config.api_addr))?;
    let api_addr = listener.local_addr()?;
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (stop_api, api_stopped) = oneshot::channel::<()>();
    let router = crate::api::router(commands_tx, token);
    let api_task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = api_stopped.await;
            })
            .await
    });
    let (stop_net, net_stopped) = oneshot::channel();
    let blobs = Arc::new(crate::blobs::BlobStore::open(home.path("blobs"))?);
    let mut shares = crate::share::Shares::load(store.clone(), home.identity()?, blobs.clone(), config.name.clone())?;
    shares.set_retention(config.keep_versions_secs());
    let bank_views = crate::bank::views::Views::load(store.clone(), home.identity()?)?;
    let (rpc, rpc_rx) = crate::backup::rpc::Rpc::channel();
    let engine = Arc::new(crate::backup::Engine::new(store.clone(), home.clone(), rpc, config.clone()));
    let host = crate::backup::host::Host::new(store.clone(), home.path("blobs").join("hosted"));
    let backup = net::Backup::new(engine, host, rpc_rx);
    let direct =
        if config.direct_connections { bind_direct(home, &config, &store, &blobs, &backup.host) } else { None };
    let event_loop =
        EventLoop::new(swarm, store, config, api_addr.to_string(), commands_rx, shares, bank_views, backup)
            .with_direct(direct);
    let net_task = tokio::spawn(event_loop.run(net_stopped));

    home.write_api_info(&ApiInfo { addr: api_addr, pid: std::process::id(), peer_id: peer_id.to_string() })?;
    info!(%peer_id, "node is up; API on http://{api_addr}");
    Ok(RunningNode { api_addr, peer_id, home: home.clone(), stop_net, stop_api, net_task, api_task })
}

const STICKY_PORT_ATTEMPTS: u32 = 30;

/// Opens the direct-connection endpoint (`net::direct`) on the IP of the
/// first listen address, on the port of the last run if it is free. A node
/// without one still works: contents then move over the swarm.
fn bind_direct(
    home: &Home,
    config: &crate::config::Config,
    store: &Store,
    blobs: &Arc<crate::blobs::BlobStore>,
    host: &crate::backup::host::Host,
) -> Option<(net::direct::Direct, net::direct::Readers)> {
    let ip = config.listen.iter().filter_map(|a| a.parse::<Multiaddr>().ok()).find_map(|a| {
        a.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
            libp2p::multiaddr::Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        })
    })?;
    let last: Option<u16> = store.meta("direct_port").ok().flatten();
    let readers = net::direct::Readers::default();
    let key = home.identity().ok()?;
    let bound = last
        .and_then(|port| {
            net::direct::Direct::bind(
                &key,
                SocketAddr::new(ip, port),
                blobs.clone(),
                readers.clone(),
                Some(host.clone()),
            )
            .ok()
        })
        .map(Ok)
        .unwrap_or_else(|| {
            net::direct::Direct::bind(&key, SocketAddr::new(ip, 0), blobs.clone(), readers.clone(), Some(host.clone()))
        });
    match bound {
        Ok(direct) => {
            if let Some(port) = direct.port() {
                info!("direct connections for file contents on {ip} udp port {port}");
                if let Err(e) = store.set_meta("direct_port", &port) {
                    warn!("cannot remember the direct-connection port: {e:#}");
                }
            }
            Some((direct, readers))
        }
        Err(e) => {
            warn!("no direct connections ({e:#}); file contents will move over the swarm");
            None
        }
    }
}

/// Listens on `addr`; a port 0 first tries the port used last time, so that
/// contacts find the node again at its last known address after a restart.
fn listen(swarm: &mut libp2p::Swarm<net::Behaviour>, addr: &Multiaddr, last: &ListenPorts) -> Result<()> {
    let previous = match net::transport_port(addr) {
        Some(("quic", 0)) => last.quic,
        Some(("tcp", 0)) => last.tcp,
        _ => None,
    };
    if let Some(port) = previous {
        let sticky = net::with_port(addr, port);
        // A node restarted in the same process (tests, future in-app restart)
        // may find its QUIC socket still draining for a moment: retry briefly.
        for attempt in 0..STICKY_PORT_ATTEMPTS {
            match swarm.listen_on(sticky.clone()) {
                Ok(_) => return Ok(()),
                Err(err) if attempt + 1 == STICKY_PORT_ATTEMPTS => {
                    warn!("port {port} of the last run is taken ({err:?}); picking a free one")
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
    }
    swarm.listen_on(addr.clone()).with_context(|| format!("cannot listen on {addr}"))?;
    Ok(())
}

impl RunningNode {
    /// Stops the API and the network, then removes `api.json`. The database
    /// is closed when the event loop (its last user) has ended.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop_api.send(());
        let _ = self.stop_net.send(());
        self.net_task.await.context("the network task failed")?;
        self.api_task.await.context("the API task failed")?.context("the API server failed")?;
        self.home.clear_api_info();
        info!("node stopped");
        Ok(())
    }
}
