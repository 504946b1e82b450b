//! A node that is not a contact gets nothing: its greetings are refused,
//! invented invitations are rejected, malformed and oversized frames are
//! dropped, and its connection is closed after the grace period. None of it
//! changes the node's state, which keeps working for real contacts.

use std::io;
use std::time::Duration;

use anyhow::{anyhow, Result};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use hearth_node::net::behaviour::{ContactCodec, PairCodec};
use hearth_node::net::codec::Wire;
use hearth_protocol::contact::{self, Hello, HelloResponse};
use hearth_protocol::pairing::{self, PairRequest, PairResponse, RejectReason};
use hearth_protocol::token::Invitation;
use hearth_tests::{log_lines_with, TestNode};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{StreamProtocol, Swarm};

/// Writes raw bytes as a request and reads the whole answer: lets the test
/// send frames the real codec would never produce.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        io.read_to_end(&mut buf).await?;
        Ok(buf)
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        io.take(1 << 20).read_to_end(&mut buf).await?;
        if buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer"));
        }
        Ok(buf)
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&res).await?;
        io.close().await
    }
}

#[derive(NetworkBehaviour)]
struct Stranger {
    pair: request_response::Behaviour<PairCodec>,
    contact: request_response::Behaviour<ContactCodec>,
    raw: request_response::Behaviour<RawCodec>,
}

fn stranger() -> Result<Swarm<Stranger>> {
    hearth_tests::init_logs();
    let cfg = request_response::Config::default().with_request_timeout(Duration::from_secs(10));
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_quic()
        .with_behaviour(|_| Stranger {
            pair: request_response::Behaviour::with_codec(
                PairCodec::new(pairing::MAX_MESSAGE),
                [(StreamProtocol::new(pairing::PROTOCOL), ProtocolSupport::Outbound)],
                cfg.clone(),
            ),
            contact: request_response::Behaviour::with_codec(
                ContactCodec::new(contact::MAX_MESSAGE),
                [(StreamProtocol::new(contact::PROTOCOL), ProtocolSupport::Outbound)],
                cfg.clone(),
            ),
            raw: request_response::Behaviour::with_codec(
                RawCodec,
                [(StreamProtocol::new(pairing::PROTOCOL), ProtocolSupport::Outbound)],
                cfg.clone(),
            ),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// Drives the swarm until `pick` returns a value, for at most 15 s.
async fn until<T>(
    swarm: &mut Swarm<Stranger>,
    mut pick: impl FnMut(&SwarmEvent<StrangerEvent>) -> Option<T>,
) -> Result<T> {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let event = swarm.select_next_some().await;
            if let Some(v) = pick(&event) {
                return v;
            }
        }
    })
    .await
    .map_err(|_| anyhow!("timed out waiting for the node's answer"))
}

fn pair_answer(e: &SwarmEvent<StrangerEvent>) -> Option<Result<PairResponse, String>> {
    match e {
        SwarmEvent::Behaviour(StrangerEvent::Pair(request_response::Event::Message {
            message: request_response::Message::Response { response, .. },
            ..
        })) => Some(Ok(response.clone())),
        SwarmEvent::Behaviour(StrangerEvent::Pair(request_response::Event::OutboundFailure { error, .. })) => {
            Some(Err(error.to_string()))
        }
        _ => None,
    }
}

fn raw_answer(e: &SwarmEvent<StrangerEvent>) -> Option<Result<Vec<u8>, String>> {
    match e {
        SwarmEvent::Behaviour(StrangerEvent::Raw(request_response::Event::Message {
            message: request_response::Message::Response { response, .. },
            ..
        })) => Some(Ok(response.clone())),
        SwarmEvent::Behaviour(StrangerEvent::Raw(request_response::Event::OutboundFailure { error, .. })) => {
            Some(Err(error.to_string()))
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_nothing_and_changes_nothing() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    let (alice_id, alice_addr) = alice.quic_addr().await?;
    let mut s = stranger()?;
    let me = s.local_peer_id().to_string();
    s.dial(alice_addr.clone().with(libp2p::multiaddr::Protocol::P2p(alice_id)))?;

    // Greeting as if it were a contact: refused, and logged.
    let hello = Hello::new("mallory".into(), vec![], "evil/1".into(), None);
    s.behaviour_mut().contact.send_request(&alice_id, Wire::Msg(hello));
    let answer = until(&mut s, |e| match e {
        SwarmEvent::Behaviour(StrangerEvent::Contact(request_response::Event::Message {
            message: request_response::Message::Response { response, .. },
            ..
        })) => Some(response.clone()),
        _ => None,
    })
    .await?;
    assert!(matches!(answer, HelloResponse::Refused { .. }), "{answer:?}");
    assert!(!log_lines_with(&["refused /hearth/contact/1", &me]).is_empty());

    // An invented invitation: unknown.
    let invented = PairRequest { token_id: vec![7; 16], name: "mallory".into(), proof: vec![1; 32] };
    s.behaviour_mut().pair.send_request(&alice_id, Wire::Msg(invented));
    let answer = until(&mut s, pair_answer).await?.map_err(|e| anyhow!(e))?;
    assert!(matches!(answer, PairResponse::Rejected { reason: RejectReason::UnknownInvitation, .. }), "{answer:?}");

    // A real token id seen on the wire, without the secret: bad proof.
    let token = alice.client()?.invite(None).await?.token;
    let invitation = Invitation::decode(&token)?;
    let stolen = PairRequest { token_id: invitation.token_id().to_vec(), name: "mallory".into(), proof: vec![0; 32] };
    s.behaviour_mut().pair.send_request(&alice_id, Wire::Msg(stolen));
    let answer = until(&mut s, pair_answer).await?.map_err(|e| anyhow!(e))?;
    assert!(matches!(answer, PairResponse::Rejected { reason: RejectReason::BadProof, .. }), "{answer:?}");

    // Malformed frames: garbage CBOR, an oversized length, an empty frame, a
    // cut frame. Each is refused with an error message and logged.
    for (what, bytes, expected) in [
        ("garbage", vec![0, 0, 0, 4, 0xff, 0xfe, 0xfd, 0xfc], "malformed message"),
        ("oversized", vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3], "exceeds the 16384-byte limit"),
        ("empty", vec![0, 0, 0, 0], "empty frame"),
        ("cut", vec![0, 0, 1, 0, 0xa1], "the stream ended inside a frame"),
    ] {
        s.behaviour_mut().raw.send_request(&alice_id, bytes);
        let answer = until(&mut s, raw_answer).await?.map_err(|e| anyhow!("{what}: {e}"))?;
        match hearth_protocol::frame::decode::<PairResponse>(&answer, pairing::MAX_MESSAGE)? {
            PairResponse::Rejected { reason: RejectReason::BadRequest, message } => {
                assert!(message.contains(expected), "{what}: {message}")
            }
            other => panic!("{what} frame was not refused: {other:?}"),
        }
        assert!(!log_lines_with(&["refused a pairing request: malformed frame", expected, &me]).is_empty(), "{what}");
    }

    // The stranger is disconnected after the grace period (2 s in tests).
    until(&mut s, |e| matches!(e, SwarmEvent::ConnectionClosed { peer_id, .. } if *peer_id == alice_id).then_some(()))
        .await?;

    // Nothing changed: no contacts, the invitation is still open and works.
    assert!(alice.client()?.contacts().await?.is_empty());
    assert!(alice.client()?.invitations().await?.iter().all(|i| i.state == "open"));
    bob.client()?.join(&token, None).await?;
    alice.wait_online("bob", Duration::from_secs(15)).await?;
    Ok(())
}
