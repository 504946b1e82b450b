//! TLS for direct connections: libp2p certificates (a self-signed
//! certificate whose extension carries the node's ed25519 key and its
//! signature, `libp2p-tls`), so both ends are authenticated as peer ids
//! exactly as on the swarm, but with cipher suites chosen for bulk data:
//! AES-GCM first (hardware-accelerated almost everywhere), ChaCha20-Poly1305
//! last. `libp2p_tls::make_*_config` fix ChaCha20 first and cannot be
//! changed, which is why these configs are built here.
//!
//! The verifiers follow `libp2p-tls`'s (MIT licence): exactly one
//! certificate, valid libp2p extension, TLS 1.3 only, handshake signatures
//! checked against the certificate's key; the client also checks that the
//! server is the peer it meant to reach.

use std::sync::Arc;

use libp2p::identity::Keypair;
use libp2p::PeerId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::cipher_suite::{
    TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The certificate server name clients send (libp2p ignores names: the peer
/// id in the certificate is what is checked).
pub const SERVER_NAME: &str = "hearth";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256];
    Arc::new(provider)
}

fn certified_key(
    keypair: &Keypair,
    provider: &rustls::crypto::CryptoProvider,
) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
    let (cert, key) = libp2p_tls::certificate::generate(keypair)?;
    let signing = provider.key_provider.load_private_key(key)?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(vec![cert], signing)))
}

#[derive(Debug)]
struct AlwaysCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for AlwaysCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for AlwaysCert {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The server side: any client with a valid libp2p certificate completes
/// the handshake; who it is decides what it gets (see `direct`).
pub fn server_config(keypair: &Keypair) -> anyhow::Result<rustls::ServerConfig> {
    let provider = provider();
    let cert = certified_key(keypair, &provider)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(Verifier { expected: None }))
        .with_cert_resolver(Arc::new(AlwaysCert(cert)));
    config.alpn_protocols =
        vec![hearth_protocol::blob::batch::ALPN.to_vec(), hearth_protocol::backup::wire::DIRECT_ALPN.to_vec()];
    Ok(config)
}

/// The client side, for a connection to `expected` only, speaking `alpn`
/// (`/hearth/blob/2` or `/hearth/backup/2`).
pub fn client_config(keypair: &Keypair, expected: PeerId, alpn: &[u8]) -> anyhow::Result<rustls::ClientConfig> {
    let provider = provider();
    let cert = certified_key(keypair, &provider)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { expected: Some(expected) }))
        .with_client_cert_resolver(Arc::new(AlwaysCert(cert)));
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// The peer id a connection's certificate proves (the handshake verified
/// it already; this reads it back).
pub fn peer_of(certs: &[CertificateDer<'_>]) -> Option<PeerId> {
    match certs {
        [cert] => libp2p_tls::certificate::parse(cert).ok().map(|c| c.peer_id()),
        _ => None,
    }
}

#[derive(Debug)]
struct Verifier {
    /// The peer a client means to reach; `None` on the server.
    expected: Option<PeerId>,
}

impl Verifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General("a libp2p certificate comes alone".into()));
        }
        let cert = libp2p_tls::certificate::parse(end_entity)?;
        match self.expected {
            Some(expected) if cert.peer_id() != expected => {
                Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
            }
            _ => Ok(()),
        }
    }

    fn signature(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        libp2p_tls::certificate::parse(cert)?.verify_signature(dss.scheme, message, dss.signature())?;
        Ok(HandshakeSignatureValid::assertion())
    }

    fn schemes() -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP384_SHA384, SignatureScheme::ECDSA_NISTP256_SHA256, SignatureScheme::ED25519]
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used on direct connections".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Self::schemes()
    }
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used on direct connections".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Self::schemes()
    }
}
