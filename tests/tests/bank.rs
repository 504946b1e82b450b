//! Read-only bank views between real nodes on loopback: an elderly parent's
//! account shown to two children. The view reaches both, later imports
//! follow, nothing private leaves the parent's node (checked in the bytes
//! the children's nodes hold), a tampered child's forged entries are
//! refused by the parent and by the other child, and unsharing drops the
//! data on the child's node.

use std::time::Duration;

use anyhow::{anyhow, Result};
use futures::StreamExt;
use hearth_crdt::bank::{Body, Entry, ViewOp};
use hearth_node::bank::alerts::Hook;
use hearth_node::bank::{AlertAddRequest, AnnotateRequest, ImportQuery};
use hearth_node::net::behaviour::BankCodec;
use hearth_node::net::codec::Wire;
use hearth_protocol::bank::{self as wire, BankRequest, BankResponse};
use hearth_tests::{eventually, TestNode};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{StreamProtocol, Swarm};

const SYNC: Duration = Duration::from_secs(20);

/// The parent's main account: one operation before the --since day, and one
/// carrying a private note and a private category.
const MAMAN: &str = r#"{
  "io.cozy.bank.accounts": [{"_id": "a1", "label": "Compte Maman", "number": "FR761111", "institutionLabel": "X", "type": "Checkings",
                             "currency": "EUR", "balance": 1830.40, "balanceDate": "2024-01-31"}],
  "io.cozy.bank.operations": [
    {"account": "a1", "label": "OLD-BEFORE-SINCE", "amount": -99.00, "currency": "EUR", "date": "2023-12-20T00:00:00Z"},
    {"account": "a1", "label": "PHARMACIE DU CENTRE", "amount": -23.60, "currency": "EUR", "date": "2024-01-04T00:00:00Z",
     "manualCategoryId": "sante-tres-privee", "hearth": {"note": "PIN-4921-secret-note", "category_private": true}},
    {"account": "a1", "label": "CAISSE RETRAITE", "amount": 1450.00, "currency": "EUR", "date": "2024-01-08T00:00:00Z",
     "manualCategoryId": "income"}
  ]
}"#;

/// Another account of the parent's, never shared.
const LIVRET: &str = "Date;Libellé;Montant\n02/01/2024;VIREMENT LIVRET-SECRET-LABEL;5 000,00\n";

fn ofx_later() -> String {
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR\
     <BANKACCTFROM><BANKID>X<ACCTID>FR761111<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>\
     <STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240210<TRNAMT>-2500.00<FITID>F-1<NAME>VIREMENT INCONNU</STMTTRN>\
     </BANKTRANLIST><LEDGERBAL><BALAMT>-669.60<DTASOF>20240210</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n"
        .into()
}

/// A loopback HTTP server that records the bodies POSTed to it.
async fn http_sink() -> Result<(String, std::sync::Arc<std::sync::Mutex<Vec<String>>>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/alert", listener.local_addr()?);
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut chunk)).await else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_owned());
                    }
                }
            };
            if let Some(body) = body {
                if let Ok(mut b) = sink.lock() {
                    b.push(body);
                }
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    });
    Ok((url, bodies))
}

async fn view_of(node: &TestNode) -> Result<Option<hearth_node::bank::views::ViewInfo>> {
    Ok(node.client()?.bank_views().await?.into_iter().find(|v| v.role == "viewer"))
}

async fn view_ops(node: &TestNode) -> Result<Vec<(String, String, String)>> {
    let ops = node.client()?.bank_operations("Compte Maman", None).await?;
    Ok(ops.into_iter().map(|o| (o.date, o.amount, o.label)).collect())
}

#[derive(NetworkBehaviour)]
struct Tamperer {
    bank: request_response::Behaviour<BankCodec>,
}

/// A swarm with a real node's identity that speaks `/hearth/bank/1` with
/// whatever it is told to send.
fn tamperer(key: libp2p::identity::Keypair) -> Result<Swarm<Tamperer>> {
    let cfg = request_response::Config::default().with_request_timeout(Duration::from_secs(10));
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_quic()
        .with_behaviour(|_| Tamperer {
            bank: request_response::Behaviour::with_codec(
                BankCodec::new(wire::MAX_MESSAGE),
                [(StreamProtocol::new(wire::PROTOCOL), ProtocolSupport::Full)],
                cfg,
            ),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// Sends `request` to `to` and returns its answer (15 s at most).
async fn ask(s: &mut Swarm<Tamperer>, to: &TestNode, request: BankRequest) -> Result<BankResponse> {
    let (peer, addr) = to.quic_addr().await?;
    s.add_peer_address(peer, addr);
    s.behaviour_mut().bank.send_request(&peer, Wire::Msg(request));
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match s.select_next_some().await {
                SwarmEvent::Behaviour(TampererEvent::Bank(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                })) => return Ok(response),
                SwarmEvent::Behaviour(TampererEvent::Bank(request_response::Event::OutboundFailure {
                    error, ..
                })) => return Err(anyhow!("push failed: {error}")),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no answer from {}", to.name))?
}

/// An entry for `view` at `seq` after `prev`, signed by `key` (not the owner).
fn forged(view: &[u8], seq: u64, prev: &[u8], key: &libp2p::identity::Keypair) -> Entry {
    let body = Body::Operations {
        ops: vec![ViewOp {
            key: "id:FORGED".into(),
            date: "2024-02-11".into(),
            amount: "50000.00".into(),
            currency: "EUR".into(),
            label: "FORGED CREDIT".into(),
            kind: "credit".into(),
            original: None,
            category: None,
        }],
    };
    let signature = key.sign(&Entry::signing_message(view, seq, prev, &body)).expect("sign");
    Entry { seq, prev: prev.to_vec(), body, signature }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parents_account_watched_by_two_children() -> Result<()> {
    let parent = TestNode::start_new("parent").await?;
    let mut alice = TestNode::start_new("alice").await?;
    let bruno = TestNode::start_new("bruno").await?;
    parent.pair_with(&alice).await?;
    parent.pair_with(&bruno).await?;
    alice.pair_with(&bruno).await?;
    parent.wait_online("alice", SYNC).await?;
    parent.wait_online("bruno", SYNC).await?;

    let owner = parent.client()?;
    let q = |format: &str| ImportQuery { format: Some(format.into()), ..Default::default() };
    owner.bank_import(MAMAN.as_bytes().to_vec(), &q("cozy-json")).await?;
    let livret = ImportQuery { account: Some("Livret secret".into()), ..Default::default() };
    owner.bank_import(LIVRET.as_bytes().to_vec(), &livret).await?;

    owner.bank_share("Compte Maman", "alice", Some("2024-01-01")).await?;
    owner.bank_share("Compte Maman", "bruno", Some("2024-01-01")).await?;
    let again = owner.bank_share("Compte Maman", "bruno", None).await.expect_err("twice");
    assert!(again.to_string().contains("already shown"), "{again}");
    let accounts = owner.bank_accounts().await?;
    let maman = accounts.iter().find(|a| a.name == "Compte Maman").expect("account");
    assert_eq!(maman.shared_with, vec!["alice".to_string(), "bruno".to_string()]);

    let expected = vec![
        ("2024-01-04".to_string(), "-23.60".to_string(), "PHARMACIE DU CENTRE".to_string()),
        ("2024-01-08".to_string(), "1450.00".to_string(), "CAISSE RETRAITE".to_string()),
    ];
    for child in [&alice, &bruno] {
        eventually(SYNC, &format!("{} to see the account", child.name), || async {
            Ok(view_ops(child).await.unwrap_or_default() == expected)
        })
        .await?;
        let v = view_of(child).await?.expect("view");
        assert_eq!(
            (v.balance.as_deref(), v.currency.as_deref(), v.state.as_str()),
            (Some("1830.40"), Some("EUR"), "active")
        );
        assert_eq!(v.contact.as_deref(), Some("parent"));
        // A viewer cannot import into the view.
        let write = child.client()?.bank_import(ofx_later().into_bytes(), &ImportQuery::default()).await;
        // (That import creates the child's own account, never touches the view.)
        write?;
        assert_eq!(view_ops(child).await?, expected);
        let ops = child.client()?.bank_operations(&v.id, None).await?;
        assert!(ops.iter().all(|o| o.note.is_none()));
        assert_eq!(ops[1].category.as_deref(), Some("income"), "a category that is not private is shown");
        assert_eq!(ops[0].category, None);
    }

    // The parent annotates after sharing: a private note and a private
    // category stay home; a public category reaches the children.
    let mine = owner.bank_operations("Compte Maman", None).await?;
    let key_of = |label: &str| mine.iter().find(|o| o.label == label).map(|o| o.key.clone()).expect("op");
    let private = AnnotateRequest {
        note: Some("SECOND-SECRET-NOTE".into()),
        category: Some("famille-privee".into()),
        private: Some(true),
    };
    owner.bank_annotate("Compte Maman", &key_of("CAISSE RETRAITE"), &private).await?;
    let public = AnnotateRequest { note: None, category: Some("pharmacy".into()), private: Some(false) };
    owner.bank_annotate("Compte Maman", &key_of("PHARMACIE DU CENTRE"), &public).await?;
    for child in [&alice, &bruno] {
        eventually(SYNC, &format!("{} to see the new categories", child.name), || async {
            let ops = child.client()?.bank_operations("Compte Maman", None).await?;
            Ok(ops[0].category.as_deref() == Some("pharmacy") && ops[1].category.is_none())
        })
        .await?;
    }

    // Privacy: the children's databases hold every byte they ever received.
    // A shown label is in there (so the search works); nothing private is.
    for child in [&alice, &bruno] {
        let db = std::fs::read(child.home.db_path())?;
        let holds = |needle: &str| db.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(holds("CAISSE RETRAITE"));
        for secret in
            ["PIN-4921-secret-note", "sante-tres-privee", "OLD-BEFORE-SINCE", "LIVRET-SECRET-LABEL", "Livret secret"]
        {
            assert!(!holds(secret), "{} received {secret:?}", child.name);
        }
    }

    // Alerts: Alice watches for large debits and the balance going below
    // zero, with a command hook; Bruno for large debits, amounts hidden,
    // with a loopback URL hook; the parent for new payees on her account.
    let hook_file = tempfile::NamedTempFile::new()?;
    let add = |on: &str, rule: &str, value: Option<&str>, hide: bool| AlertAddRequest {
        on: on.into(),
        rule: rule.into(),
        value: value.map(str::to_owned),
        hide_amounts: hide,
        from: Some("2024-01-01".into()),
    };
    let a = alice.client()?;
    a.bank_alert_add(&add("Compte Maman", "large-debit", Some("1000"), false)).await?;
    a.bank_alert_add(&add("Compte Maman", "low-balance", Some("0"), false)).await?;
    let command = format!("cat >> '{}'; echo >> '{}'", hook_file.path().display(), hook_file.path().display());
    a.bank_set_hook(Some(Hook::Command { command })).await?;
    let b = bruno.client()?;
    b.bank_alert_add(&add("Compte Maman", "large-debit", Some("1000"), true)).await?;
    let (url, posted) = http_sink().await?;
    b.bank_set_hook(Some(Hook::Url { url })).await?;
    assert!(b.bank_set_hook(Some(Hook::Url { url: "http://192.0.2.1/x".into() })).await.is_err());
    owner.bank_alert_add(&add("Compte Maman", "new-payee", None, false)).await?;
    assert_eq!(a.bank_alerts().await?.len(), 2);
    assert!(a.bank_notifications().await?.is_empty(), "rules look at new operations only");

    // A later import by the parent reaches both children and raises alerts.
    owner.bank_import(ofx_later().into_bytes(), &ImportQuery::default()).await?;
    for child in [&alice, &bruno] {
        eventually(SYNC, &format!("{} to see the new debit", child.name), || async {
            let v = view_of(child).await?.expect("view");
            Ok(v.operations == 3 && v.balance.as_deref() == Some("-669.60"))
        })
        .await?;
    }
    let messages =
        |n: Vec<hearth_node::bank::alerts::Notification>| n.into_iter().map(|n| n.message).collect::<Vec<_>>();
    let got = messages(a.bank_notifications().await?);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().any(|m| m.contains("large debit of 2500.00 EUR") && m.contains("VIREMENT INCONNU")), "{got:?}");
    assert!(got.iter().any(|m| m.contains("balance fell to -669.60 EUR")), "{got:?}");
    let got = messages(b.bank_notifications().await?);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("large debit of an amount") && !got[0].contains("2500"), "{got:?}");
    let got = messages(owner.bank_notifications().await?);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("new payee \"VIREMENT INCONNU\""), "{got:?}");
    // The hooks got each alert once.
    eventually(SYNC, "the hooks to run", || async {
        let lines = std::fs::read_to_string(hook_file.path())?.lines().filter(|l| !l.is_empty()).count();
        Ok(lines == 2 && posted.lock().map(|p| p.len()).unwrap_or(0) == 1)
    })
    .await?;
    assert!(posted.lock().map(|p| p[0].contains("large debit of an amount")).unwrap_or(false));
    // The same statement again changes nothing and raises nothing.
    let r = owner.bank_import(ofx_later().into_bytes(), &ImportQuery::default()).await?;
    assert_eq!(r.accounts[0].added, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.bank_notifications().await?.len(), 2);
    assert_eq!(owner.bank_notifications().await?.len(), 1);

    // Alice's node is tampered with: with her key, it forges entries.
    let bruno_view = view_of(&bruno).await?.expect("view");
    let alice_view = view_of(&alice).await?.expect("view");
    let key = alice.home.identity()?;
    alice.stop().await?;
    let mut s = tamperer(key.clone())?;
    let parent_views = || async {
        let all = parent.client()?.bank_views().await?;
        anyhow::Ok(
            all.into_iter().filter(|v| v.role == "owner").map(|v| (v.id, v.operations, v.rejected)).collect::<Vec<_>>(),
        )
    };
    let before = parent_views().await?;
    // 1. To the parent, as the next entry of her own view, correctly
    // chained after the entries she pulls (only the signature is wrong).
    let alice_id = hex::decode(&alice_view.id)?;
    let BankResponse::Entries { entries, more: false, .. } =
        ask(&mut s, &parent, BankRequest::Pull { view: alice_id.clone(), from: 0 }).await?
    else {
        anyhow::bail!("alice cannot pull her view");
    };
    let last = Entry::from_bytes(entries.last().expect("entries")).map_err(|e| anyhow!("{e}"))?;
    let head = Entry::hash(&alice_id, last.seq, &last.prev, &last.body);
    let entry = forged(&alice_id, last.seq + 1, &head, &key);
    let push = BankRequest::Push {
        view: alice_id.clone(),
        from: last.seq + 1,
        entries: vec![serde_bytes::ByteBuf::from(entry.to_bytes())],
    };
    let answer = ask(&mut s, &parent, push).await?;
    assert!(matches!(answer, BankResponse::Have { rejected: 1, .. }), "{answer:?}");
    assert!(!hearth_tests::log_lines_with(&["refused a bank view entry", "bad signature"]).is_empty());
    // She cannot read Bruno's view either.
    let bruno_id = hex::decode(&bruno_view.id)?;
    let answer = ask(&mut s, &parent, BankRequest::Pull { view: bruno_id.clone(), from: 0 }).await?;
    assert!(matches!(answer, BankResponse::Refused { .. }), "{answer:?}");
    // 2. To Bruno, as an entry of Bruno's view (whose id she learned).
    let entry = forged(&bruno_id, 5, &[7; 32], &key);
    let answer = ask(
        &mut s,
        &bruno,
        BankRequest::Push {
            view: bruno_id.clone(),
            from: 5,
            entries: vec![serde_bytes::ByteBuf::from(entry.to_bytes())],
        },
    )
    .await?;
    assert!(matches!(answer, BankResponse::Have { rejected: 1, .. }), "{answer:?}");
    // 3. To Bruno, a whole new view claiming to be the parent's.
    let genesis = Body::Genesis {
        view: vec![42; 16],
        owner: parent.home.identity()?.public().to_peer_id().to_bytes(),
        viewer: bruno.home.identity()?.public().to_peer_id().to_bytes(),
        account: hearth_crdt::bank::ViewAccount {
            name: "Compte Maman".into(),
            currency: "EUR".into(),
            kind: "Checkings".into(),
            since: None,
        },
    };
    let signature = key.sign(&Entry::signing_message(&[42; 16], 0, &[0; 32], &genesis))?;
    let fake = Entry { seq: 0, prev: vec![0; 32], body: genesis, signature };
    let entries = vec![serde_bytes::ByteBuf::from(fake.to_bytes())];
    let answer = ask(&mut s, &bruno, BankRequest::Push { view: vec![42; 16], from: 0, entries }).await?;
    assert!(matches!(answer, BankResponse::Refused { .. }), "{answer:?}");
    // Nothing changed anywhere; the refusals are counted.
    let after = parent_views().await?;
    let alice_after = after.iter().find(|v| v.0 == alice_view.id).expect("alice's view");
    assert_eq!(alice_after.1, 3);
    assert!(alice_after.2 >= 1, "the parent counts the forged entry");
    assert_eq!(after.len(), before.len());
    let b = bruno.client()?.bank_views().await?;
    assert_eq!(b.iter().filter(|v| v.role == "viewer").count(), 1, "no made-up view accepted");
    let bv = view_of(&bruno).await?.expect("view");
    assert_eq!((bv.operations, bv.rejected), (3, 1));
    assert!(!bruno.client()?.bank_operations(&bv.id, None).await?.iter().any(|o| o.label == "FORGED CREDIT"));
    drop(s);

    // The parent stops showing the account to Bruno: his node drops it.
    owner.bank_unshare("Compte Maman", "bruno").await?;
    eventually(SYNC, "bruno to see the view revoked", || async {
        Ok(view_of(&bruno).await?.is_some_and(|v| v.state == "revoked" && v.operations == 0 && v.balance.is_none()))
    })
    .await?;
    let err = bruno.client()?.bank_operations("Compte Maman", None).await.expect_err("revoked");
    assert!(err.to_string().contains("stopped sharing"), "{err}");
    let accounts = owner.bank_accounts().await?;
    assert_eq!(accounts.iter().find(|a| a.name == "Compte Maman").expect("a").shared_with, vec!["alice".to_string()]);

    // While Alice is offline the parent imports March; Bruno no longer
    // receives anything. Alice, back online, still has her view and catches up.
    let march = ofx_later().replace("F-1", "M-1").replace("20240210", "20240305").replace("-2500.00", "-45.00");
    owner.bank_import(march.into_bytes(), &ImportQuery::default()).await?;
    alice.start().await?;
    parent.wait_online("alice", SYNC).await?;
    eventually(SYNC, "alice to catch up after her restart", || async {
        Ok(view_of(&alice).await?.is_some_and(|v| v.operations == 4 && v.state == "active"))
    })
    .await?;
    assert_eq!(view_of(&bruno).await?.expect("view").operations, 0);
    assert_eq!(alice.client()?.bank_notifications().await?.len(), 2, "no alert raised twice after a restart");

    // Shown again to Bruno (a new view, from March on): his node shows it.
    owner.bank_share("Compte Maman", "bruno", Some("2024-03-01")).await?;
    eventually(SYNC, "bruno to see the account again", || async {
        Ok(bruno.client()?.bank_operations("Compte Maman", None).await.is_ok_and(|ops| ops.len() == 1))
    })
    .await?;
    let views = bruno.client()?.bank_views().await?;
    let states: Vec<&str> = views.iter().filter(|v| v.role == "viewer").map(|v| v.state.as_str()).collect();
    assert_eq!(states.len(), 2);
    assert!(states.contains(&"revoked") && states.contains(&"active"), "{states:?}");
    Ok(())
}
