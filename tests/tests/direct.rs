//! Direct connections (`/hearth/blob/2`, a quinn endpoint beside the swarm)
//! between real nodes on 127.0.0.1: file contents take them when both ends
//! have one and the swarm otherwise; the endpoint serves members only, and
//! refuses a stranger's connection and a malformed batch with a reason,
//! changing nothing.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use hearth_node::blobs::BlobStore;
use hearth_node::net::direct::{self, BatchFailure, Direct};
use hearth_protocol::blob::batch::{self, TAG_BATCH_REFUSED};
use hearth_protocol::blob::{ChunkHash, Get, Response};
use hearth_tests::{eventually, noise_bytes, TestNode};

const SYNC: Duration = Duration::from_secs(60);

async fn direct_port(node: &TestNode) -> Result<u16> {
    node.client()?.status().await?.direct_port.context("the node has no direct-connection port")
}

async fn same_file(a: &Path, b: &Path) -> Result<()> {
    let want = std::fs::read(a)?;
    eventually(SYNC, &format!("{} to arrive", b.display()), || async {
        Ok(std::fs::read(b).is_ok_and(|got| got == want))
    })
    .await
}

/// Alice shares `dir` (holding `files`) with bob, who accepts into `into`.
async fn share(alice: &TestNode, bob: &TestNode, dir: &Path, into: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    alice.pair_with(bob).await?;
    alice.wait_online("bob", SYNC).await?;
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
    }
    alice.client()?.share_create(&dir.to_string_lossy(), Some("Family")).await?;
    alice.client()?.share_invite("Family", "bob", false).await?;
    eventually(SYNC, "the invitation", || async { Ok(!bob.client()?.shares().await?.is_empty()) }).await?;
    bob.client()?.share_accept("Family", &into.to_string_lossy()).await?;
    Ok(())
}

/// An endpoint of a node nobody knows, with an empty store.
fn stranger(tmp: &Path) -> Result<Direct> {
    let key = libp2p::identity::Keypair::generate_ed25519();
    let blobs = Arc::new(BlobStore::open(tmp.join("stranger-blobs"))?);
    Direct::bind(&key, "127.0.0.1:0".parse()?, blobs, Arc::new(RwLock::new(HashSet::new())), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contents_take_the_direct_connection_which_serves_members_only() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    let tmp = tempfile::tempdir()?;
    let (a, b) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let big = noise_bytes(12 * 1024 * 1024 + 5, 7);
    share(&alice, &bob, &a, &b, &[("big.bin", big.clone()), ("note.txt", b"hello".to_vec())]).await?;
    same_file(&a.join("big.bin"), &b.join("big.bin")).await?;
    same_file(&a.join("note.txt"), &b.join("note.txt")).await?;
    let status = bob.client()?.status().await?;
    assert_eq!(status.direct_links, vec!["alice".to_string()], "bob fetched over a direct connection: {status:?}");

    // A later edit goes the same way.
    std::fs::write(a.join("note.txt"), b"hello again")?;
    same_file(&a.join("note.txt"), &b.join("note.txt")).await?;

    // A stranger completes the TLS handshake (anyone may) but the
    // connection is closed at once, with the reason.
    let port = direct_port(&alice).await?;
    let alice_id: libp2p::PeerId = alice.peer_id()?.parse()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mallory = stranger(tmp.path())?;
    let get = Get { hash: ChunkHash::of(b"hello again"), offset: 0, len: 11 };
    match mallory.connect(alice_id, addr).await {
        Err(e) => anyhow::bail!("the handshake itself should succeed: {e}"),
        Ok(conn) => {
            let (answers, failure) = direct::fetch(conn, vec![get]).await;
            assert!(answers.is_empty(), "a stranger got answers: {answers:?}");
            match failure {
                Some(BatchFailure::Transport(e)) => assert!(e.contains("not a member"), "{e}"),
                other => anyhow::bail!("expected the connection to be closed with a reason, got {other:?}"),
            }
        }
    }
    // Dialling alice while expecting someone else fails the handshake.
    let someone: libp2p::PeerId = bob.peer_id()?.parse()?;
    assert!(mallory.connect(someone, addr).await.is_err(), "a server that is not the expected peer was accepted");
    assert!(
        !hearth_tests::log_lines_with(&["refused a direct connection", "not a member"]).is_empty(),
        "the refusal is logged"
    );

    // Bob (a member) sends a malformed batch: refused with a message.
    let bob_key = bob.home.identity()?;
    let bob_direct = Direct::bind(
        &bob_key,
        "127.0.0.1:0".parse()?,
        Arc::new(BlobStore::open(tmp.path().join("bob2"))?),
        Default::default(),
        None,
    )?;
    let conn = bob_direct.connect(alice_id, addr).await.map_err(anyhow::Error::msg)?;
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await?;
    send.finish()?;
    let answer = recv.read_to_end(4096).await?;
    assert_eq!(answer.first(), Some(&TAG_BATCH_REFUSED), "{answer:?}");
    assert!(String::from_utf8_lossy(&answer[3..]).contains("malformed"), "{}", String::from_utf8_lossy(&answer));
    // A batch over the limits is refused as a whole too.
    let (mut send, mut recv) = conn.open_bi().await?;
    let too_many = hearth_protocol::frame::encode(
        &batch::Batch { gets: vec![get; batch::MAX_GETS + 1] },
        hearth_protocol::frame::MAX_FRAME,
    )?;
    send.write_all(&too_many).await?;
    send.finish()?;
    let answer = recv.read_to_end(4096).await?;
    assert_eq!(answer.first(), Some(&TAG_BATCH_REFUSED), "{answer:?}");
    // A well-formed batch still works on the same connection: one known
    // blob, one unknown.
    let unknown = Get { hash: ChunkHash([9; 32]), offset: 0, len: 5 };
    let (answers, failure) = direct::fetch(conn, vec![get, unknown]).await;
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(answers, vec![Response::Data { bytes: b"hello again".to_vec() }, Response::Missing]);

    // Nothing changed for the members.
    same_file(&a.join("big.bin"), &b.join("big.bin")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_direct_connection_contents_take_the_swarm() -> Result<()> {
    let alice = TestNode::start_new("alice").await?;
    let mut bob = TestNode::start_new("bob").await?;
    bob.stop().await?;
    bob.configure(|c| c.direct_connections = false)?;
    bob.start().await?;
    let tmp = tempfile::tempdir()?;
    let (a, b) = (tmp.path().join("alice"), tmp.path().join("bob"));
    share(&alice, &bob, &a, &b, &[("big.bin", noise_bytes(3 * 1024 * 1024, 3))]).await?;
    same_file(&a.join("big.bin"), &b.join("big.bin")).await?;
    let status = bob.client()?.status().await?;
    assert_eq!(status.direct_port, None);
    assert!(status.direct_links.is_empty(), "{status:?}");
    // Alice has an endpoint, but bob announced none: she fetches nothing
    // over it either (and an edit on bob's side reaches her).
    std::fs::write(b.join("from-bob.txt"), b"hi alice")?;
    same_file(&b.join("from-bob.txt"), &a.join("from-bob.txt")).await?;
    assert!(alice.client()?.status().await?.direct_links.is_empty());
    Ok(())
}
