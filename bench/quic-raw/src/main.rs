//! Raw QUIC throughput over loopback: one quinn connection on 127.0.0.1, one
//! unidirectional stream, N bytes (default 1 GiB) from client to server.
//! Self-signed certificate (rcgen), quinn's default transport parameters,
//! rustls with the ring provider. Prints one JSON line.
//!
//! Usage: quic-raw [BYTES]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use quinn::{ClientConfig, Endpoint, ServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const BUF: usize = 1 << 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let total: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1 << 30,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert_der: CertificateDer<'static> = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));

    let server_config = ServerConfig::with_single_cert(vec![cert_der.clone()], key)?;
    let server = Endpoint::server(server_config, "127.0.0.1:0".parse::<SocketAddr>()?)?;
    let server_addr = server.local_addr()?;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der)?;
    let mut client = Endpoint::client("127.0.0.1:0".parse::<SocketAddr>()?)?;
    client.set_default_client_config(ClientConfig::with_root_certificates(Arc::new(roots))?);

    let receiver = tokio::spawn(async move {
        let conn = server.accept().await.ok_or("no connection")?.await?;
        let mut stream = conn.accept_uni().await?;
        let mut received: u64 = 0;
        let mut first: Option<Instant> = None;
        while let Some(chunk) = stream.read_chunk(BUF, true).await? {
            first.get_or_insert_with(Instant::now);
            received += chunk.bytes.len() as u64;
        }
        let done = Instant::now();
        conn.close(0u32.into(), b"done");
        server.wait_idle().await;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((received, first, done))
    });

    let conn = client.connect(server_addr, "localhost")?.await?;
    let start = Instant::now();
    let mut stream = conn.open_uni().await?;
    let buf = vec![0xA5u8; BUF];
    let mut sent: u64 = 0;
    while sent < total {
        let n = (total - sent).min(BUF as u64) as usize;
        stream.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    stream.finish()?;
    let (received, _first, done) = receiver.await??;
    let secs = done.duration_since(start).as_secs_f64();
    conn.close(0u32.into(), b"done");
    client.wait_idle().await;
    println!(
        "{{\"tool\":\"quinn-raw\",\"bytes\":{received},\"secs\":{secs:.3},\"mb_per_s\":{:.1},\"mib_per_s\":{:.1}}}",
        received as f64 / secs / 1e6,
        received as f64 / secs / (1 << 20) as f64
    );
    if received != total {
        return Err(format!("received {received} of {total} bytes").into());
    }
    Ok(())
}
