//! Malformed and unauthorised requests to a backup host, on
//! `/hearth/backup/2` (raw QUIC streams on the direct endpoint): a stranger,
//! a cut frame, an oversized frame, garbage CBOR, more bytes than announced,
//! a shard that does not hash to its id, and another owner asking for the
//! owner's shards. Each is refused with a clear, logged message, and the
//! owner's backup is intact afterwards (restored byte for byte).
//! `/hearth/backup/1` frames are checked at the codec and the host
//! (`node/src/net/codec.rs`, `node/src/backup/host.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use hearth_node::backup::BackupOp;
use hearth_node::net::direct::Direct;
use hearth_protocol::backup::erasure::ShardId;
use hearth_protocol::backup::wire::{BackupResponse, DirectRequest, Refusal, DIRECT_ALPN, MAX_DIRECT_FRAME};
use hearth_protocol::frame;
use hearth_tests::TestNode;

const ONLINE: Duration = Duration::from_secs(20);

async fn backup(node: &TestNode, op: BackupOp) -> Result<serde_json::Value> {
    node.client()?.backup(&op).await
}

/// `owner` asks `host` to host its backup, and `host` accepts.
async fn hosts(owner: &TestNode, host: &TestNode) -> Result<()> {
    owner.pair_with(host).await?;
    owner.wait_online(&host.name, ONLINE).await?;
    host.wait_online(&owner.name, ONLINE).await?;
    backup(owner, BackupOp::FriendsAdd { contact: host.name.clone(), offer: 1 << 30 }).await?;
    backup(host, BackupOp::HostingAnswer { contact: owner.name.clone(), accept: true, quota: 1 << 30 }).await?;
    Ok(())
}

/// Reads one control frame of `/hearth/backup/2`.
async fn answer(recv: &mut quinn::RecvStream) -> Result<BackupResponse> {
    let mut prefix = [0u8; 4];
    recv.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(frame::from_cbor(&body)?)
}

/// Sends `bytes` on a new stream and returns the first answer.
async fn ask(conn: &quinn::Connection, bytes: &[u8]) -> Result<BackupResponse> {
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(bytes).await?;
    send.finish()?;
    answer(&mut recv).await
}

fn refusal(r: &BackupResponse) -> Option<(Refusal, &str)> {
    match r {
        BackupResponse::Refused { code, message } => Some((*code, message.as_str())),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_and_strangers_are_refused_and_nothing_is_lost() -> Result<()> {
    let owner = TestNode::start_new("owner").await?;
    let ann = TestNode::start_new("ann").await?;
    let eve = TestNode::start_new("eve").await?;
    hosts(&owner, &ann).await?;
    hosts(&eve, &ann).await?;
    let data_dir = tempfile::tempdir()?;
    let data = data_dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let file = hearth_tests::noise_bytes(3 << 20, 5);
    std::fs::write(data.join("photo.raw"), &file)?;
    backup(&owner, BackupOp::Add { path: data.to_string_lossy().into_owned() }).await?;
    backup(&owner, BackupOp::Run).await?;
    let used_before = backup(&ann, BackupOp::Hosting).await?;

    // One of the owner's shards, as ann stores it.
    let owner_dir = std::fs::read_dir(ann.root().join("blobs/hosted"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("shards").exists())
        .ok_or_else(|| anyhow!("ann holds the owner's shards"))?;
    let shard_file = std::fs::read_dir(owner_dir.join("shards"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.to_string_lossy().ends_with(".part"))
        .ok_or_else(|| anyhow!("a shard"))?;
    let shard_bytes = std::fs::read(&shard_file)?;
    let shard = ShardId::of(&shard_bytes);

    let port = ann.client()?.status().await?.direct_port.context("ann has a direct port")?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let ann_id: libp2p::PeerId = ann.peer_id()?.parse()?;

    // A stranger completes the handshake, then the connection is closed
    // with the reason.
    let stranger = Direct::client_only(&libp2p::identity::Keypair::generate_ed25519())?;
    let conn = stranger.connect_alpn(ann_id, addr, DIRECT_ALPN).await.map_err(|e| anyhow!(e))?;
    let get = frame::encode(&DirectRequest::GetShard { shard, offset: 0 }, MAX_DIRECT_FRAME)?;
    let got = ask(&conn, &get).await;
    assert!(got.is_err(), "a stranger got an answer: {got:?}");
    let reason = conn.closed().await.to_string();
    assert!(reason.contains("hosts no backup for you"), "{reason}");

    // Eve, whom ann hosts too, cannot reach the owner's shards.
    let eve_direct = Direct::client_only(&eve.home.identity()?)?;
    let conn = eve_direct.connect_alpn(ann_id, addr, DIRECT_ALPN).await.map_err(|e| anyhow!(e))?;
    let r = ask(&conn, &get).await?;
    assert_eq!(refusal(&r).map(|r| r.0), Some(Refusal::NotFound), "{r:?}");

    // The owner's own malformed requests.
    let owner_direct = Direct::client_only(&owner.home.identity()?)?;
    let conn = owner_direct.connect_alpn(ann_id, addr, DIRECT_ALPN).await.map_err(|e| anyhow!(e))?;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cut", vec![0, 0, 0, 10, 1, 2], "cut short"),
        ("oversized", [(1u32 << 20).to_be_bytes().to_vec(), vec![0; 16]].concat(), "exceeds"),
        ("garbage CBOR", vec![0, 0, 0, 3, 0xff, 0xff, 0xff], "malformed"),
        ("empty", vec![], "cut short"),
    ];
    for (what, bytes, says) in cases {
        let r = ask(&conn, &bytes).await.with_context(|| what.to_string())?;
        let (code, message) = refusal(&r).ok_or_else(|| anyhow!("{what}: not refused: {r:?}"))?;
        assert_eq!(code, Refusal::BadRequest, "{what}: {r:?}");
        assert!(message.contains(says), "{what}: {message}");
    }
    // More bytes than announced.
    let (mut send, mut recv) = conn.open_bi().await?;
    let put = frame::encode(&DirectRequest::PutShard { shard: ShardId([7; 32]), total: 10 }, MAX_DIRECT_FRAME)?;
    send.write_all(&put).await?;
    assert_eq!(answer(&mut recv).await?, BackupResponse::Stored { have: 0 });
    send.write_all(&[1; 20]).await?;
    send.finish()?;
    let r = answer(&mut recv).await?;
    assert!(refusal(&r).is_some_and(|(c, m)| c == Refusal::BadRequest && m.contains("more bytes")), "{r:?}");
    // A shard that does not hash to its id.
    let (mut send, mut recv) = conn.open_bi().await?;
    let put = frame::encode(&DirectRequest::PutShard { shard: ShardId([8; 32]), total: 5 }, MAX_DIRECT_FRAME)?;
    send.write_all(&put).await?;
    assert_eq!(answer(&mut recv).await?, BackupResponse::Stored { have: 0 });
    send.write_all(b"hello").await?;
    send.finish()?;
    let r = answer(&mut recv).await?;
    assert_eq!(refusal(&r).map(|r| r.0), Some(Refusal::Corrupt), "{r:?}");
    // An oversized shard is refused before any byte.
    let put = frame::encode(&DirectRequest::PutShard { shard: ShardId([9; 32]), total: 1 << 40 }, MAX_DIRECT_FRAME)?;
    let r = ask(&conn, &put).await?;
    assert_eq!(refusal(&r).map(|r| r.0), Some(Refusal::BadRequest), "{r:?}");
    // A well-formed request still works on the same connection.
    let r = ask(&conn, &get).await?;
    assert!(matches!(r, BackupResponse::Data { total, .. } if total == shard_bytes.len() as u64), "{r:?}");

    assert!(
        !hearth_tests::log_lines_with(&["refused a /hearth/backup/2 request", "malformed request"]).is_empty(),
        "the refusals are logged"
    );
    assert!(!hearth_tests::log_lines_with(&["refused a /hearth/backup/2 connection"]).is_empty());

    // Nothing lost: the stored shard is untouched, the counts unchanged,
    // and the backup restores byte for byte.
    assert_eq!(std::fs::read(&shard_file)?, shard_bytes);
    assert_eq!(backup(&ann, BackupOp::Hosting).await?, used_before);
    let target = data_dir.path().join("restored");
    backup(&owner, BackupOp::Restore { snapshot: None, path: None, to: target.to_string_lossy().into_owned() }).await?;
    let at: PathBuf = target.join(data.strip_prefix("/")?).join("photo.raw");
    assert!(std::fs::read(&at)? == file, "restored byte for byte");
    Ok(())
}
