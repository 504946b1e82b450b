//! `hearth demo`: several real nodes on this machine, showing what Hearth
//! does, step by step. Each node has its own home under the demo directory,
//! listens on 127.0.0.1 only (no mDNS) and serves its API, so while the demo
//! runs with `--keep-running` every `hearth --home DIR/NAME ...` command works
//! against it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::client::Client;
use crate::config::Config;
use crate::home::Home;
use crate::node::RunningNode;

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// Runs the demo in `dir` (a new temporary directory if `None`).
pub async fn run(dir: Option<PathBuf>, keep_running: bool) -> Result<()> {
    let (dir, _temp) = match dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::Builder::new().prefix("hearth-demo-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    println!("== Hearth demo in {}", dir.display());
    let (nodes, clients) = family(&dir).await?;
    shared_folder(&dir, &clients).await?;
    parent_account(&dir, &clients).await?;
    mutual_backup(&dir, &clients).await?;

    if keep_running {
        println!("\nThe nodes keep running. Try for example:");
        for name in NAMES {
            println!("  hearth --home {} status", dir.join(name).display());
        }
        println!("or open a node's web interface: hearth --home {} ui", dir.join(NAMES[0]).display());
        println!("Ctrl-C stops them.");
        tokio::signal::ctrl_c().await.context("cannot watch Ctrl-C")?;
    }
    for node in nodes {
        node.stop().await?;
    }
    println!("\n== Demo finished.");
    Ok(())
}

/// Use case 1: a family folder. Alice shares a folder; Bob edits it
/// (read-write), Carol only reads; everyone has the files on disk.
pub async fn shared_folder(dir: &Path, clients: &[Client]) -> Result<()> {
    let (alice, bob, carol) = (&clients[0], &clients[1], &clients[2]);
    println!("\n== 2. Shared folder: alice shares \"Family\" with bob (read-write) and carol (read-only)");
    let folders: Vec<PathBuf> = NAMES.iter().map(|n| dir.join(format!("{n}-Family"))).collect();
    std::fs::create_dir_all(folders[0].join("Recipes"))?;
    std::fs::write(folders[0].join("Recipes/crepes.txt"), "250 g flour, 4 eggs, 50 cl milk\n")?;
    std::fs::write(folders[0].join("shopping.txt"), "bread\n")?;
    alice.share_create(&folders[0].to_string_lossy(), Some("Family")).await?;
    println!("alice$ hearth share create {} --name Family", folders[0].display());
    alice.share_invite("Family", "bob", false).await?;
    alice.share_invite("Family", "carol", true).await?;
    println!("alice$ hearth share invite Family bob; hearth share invite Family carol --read-only");
    for (i, (client, name)) in [(bob, "bob"), (carol, "carol")].into_iter().enumerate() {
        wait(|| async { Ok(!client.shares().await?.is_empty()) }, "the invitation").await?;
        client.share_accept("Family", &folders[i + 1].to_string_lossy()).await?;
        println!("{name}$ hearth share accept Family {}", folders[i + 1].display());
    }
    let recipe = folders[2].join("Recipes/crepes.txt");
    wait(|| async { Ok(recipe.is_file()) }, "the files to reach carol").await?;
    println!("   -> the folder is on every disk: {}", recipe.display());

    std::fs::write(folders[1].join("shopping.txt"), "bread\napples\n")?;
    println!("bob edits shopping.txt (with any program)");
    let seen = folders[0].join("shopping.txt");
    wait(|| async { Ok(std::fs::read_to_string(&seen)?.contains("apples")) }, "bob's edit to reach alice").await?;
    println!("   -> alice's copy now reads: {:?}", std::fs::read_to_string(&seen)?);

    std::fs::write(folders[2].join("shopping.txt"), "carol was here\n")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "carol (read-only) edits her copy: it stays on her disk; alice still has {:?}",
        std::fs::read_to_string(&seen)?
    );
    let status = alice.share_status("Family").await?;
    println!("alice$ hearth share status Family");
    for m in &status.members {
        println!("   {:<8} {:<11} {}", m.name, m.role, if m.online { "online" } else { "offline" });
    }
    println!("   {} file(s), {} folder(s), {} conflict(s)", status.files, status.folders, status.conflicts.len());
    Ok(())
}

/// An OFX 1.x statement of the parent's account, as her bank would send it.
fn statement(txns: &[(&str, &str, &str, &str)], balance: &str, asof: &str) -> String {
    let mut s = String::from(
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nCHARSET:1252\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS>\
         <CURDEF>EUR<BANKACCTFROM><BANKID>30004<ACCTID>00012345678<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>\n",
    );
    for (fitid, date, amount, name) in txns {
        s += &format!("<STMTTRN><TRNTYPE>OTHER<DTPOSTED>{date}<TRNAMT>{amount}<FITID>{fitid}<NAME>{name}</STMTTRN>\n");
    }
    s += &format!("</BANKTRANLIST><LEDGERBAL><BALAMT>{balance}<DTASOF>{asof}</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n");
    s
}

/// Use case 3: mutual encrypted backups. Bob and carol host alice's
/// backup (encrypted, erasure-coded shards); alice backs up a folder, and
/// gets a file back from them. `examples/disaster_restore.rs` shows the
/// restore of a whole lost instance from the recovery key.
pub async fn mutual_backup(dir: &Path, clients: &[Client]) -> Result<()> {
    use crate::backup::BackupOp;
    let alice = &clients[0];
    println!("\n== 4. Mutual backups: bob and carol host alice's encrypted backup");
    for (client, name) in [(&clients[1], "bob"), (&clients[2], "carol")] {
        alice.backup(&BackupOp::FriendsAdd { contact: name.into(), offer: 1 << 30 }).await?;
        println!("alice$ hearth backup friends add {name} --offer 1GiB");
        client.backup(&BackupOp::HostingAnswer { contact: "alice".into(), accept: true, quota: 1 << 30 }).await?;
        println!("{name}$ hearth backup hosting accept alice --quota 1GiB");
    }
    let papers = dir.join("alice-papers");
    std::fs::create_dir_all(&papers)?;
    let will = "I leave my garden to whoever waters it.\n";
    std::fs::write(papers.join("will.txt"), will)?;
    std::fs::write(papers.join("photos.raw"), vec![7u8; 3 << 20])?;
    alice.backup(&BackupOp::Add { path: papers.to_string_lossy().into_owned() }).await?;
    println!("alice$ hearth backup add {}", papers.display());
    let run = alice.backup(&BackupOp::Run).await?;
    println!(
        "alice$ hearth backup run\n   -> {} files backed up, each pack cut into {}-of-{} shards over bob and carol",
        run["stats"]["files"], run["k"], run["n"]
    );
    let status = alice.backup(&BackupOp::Status).await?;
    println!("alice$ hearth backup status\n   -> {}", status["restorable_line"].as_str().unwrap_or("?"));
    let back = dir.join("alice-restored");
    let path = papers.to_string_lossy().trim_start_matches('/').to_owned();
    let restored = alice
        .backup(&BackupOp::Restore { snapshot: None, path: None, to: back.to_string_lossy().into_owned() })
        .await?;
    println!("alice$ hearth backup restore --to {}", back.display());
    let copy = back.join(&path).join("will.txt");
    let got = std::fs::read_to_string(&copy).with_context(|| format!("{} was not restored", copy.display()))?;
    if got != will {
        bail!("the restored will.txt differs from the original");
    }
    println!("   -> {} files restored from the friends' shards; {} is identical", restored["files"], copy.display());
    Ok(())
}

/// Use case 2: an elderly parent's account watched by her two children.
/// Alice imports her bank statement and shows the account, read-only, to
/// bob and carol; they set alerts; a suspicious debit raises them.
pub async fn parent_account(dir: &Path, clients: &[Client]) -> Result<()> {
    use crate::bank::alerts::Hook;
    use crate::bank::{AlertAddRequest, ImportQuery};
    let (alice, bob, carol) = (&clients[0], &clients[1], &clients[2]);
    println!("\n== 3. Bank view: alice (the parent) shows her account to bob and carol, read-only");
    let january = statement(
        &[
            ("J1", "20240103", "-23.60", "PHARMACIE DU CENTRE"),
            ("J2", "20240108", "1450.00", "CAISSE DE RETRAITE"),
            ("J3", "20240115", "-64.99", "EDF"),
        ],
        "2361.41",
        "20240131",
    );
    let file = dir.join("alice-january.ofx");
    std::fs::write(&file, &january)?;
    let query = ImportQuery { account: Some("Compte courant".into()), ..Default::default() };
    let report = alice.bank_import(january.into_bytes(), &query).await?;
    println!("alice$ hearth bank import {} --account \"Compte courant\"", file.display());
    for a in &report.accounts {
        println!("   -> {}: {} operations, balance {}", a.name, a.added, a.balance.as_deref().unwrap_or("?"));
    }
    for child in ["bob", "carol"] {
        alice.bank_share("Compte courant", child, Some("2024-01-01")).await?;
        println!("alice$ hearth bank share \"Compte courant\" {child} --since 2024-01-01");
    }
    for (client, name) in [(bob, "bob"), (carol, "carol")] {
        wait(
            || async { Ok(client.bank_views().await?.iter().any(|v| v.role == "viewer" && v.operations == 3)) },
            "the view to reach the children",
        )
        .await?;
        let v = client.bank_views().await?.into_iter().find(|v| v.role == "viewer").context("no view")?;
        println!(
            "{name}$ hearth bank views   -> {:?} from {}: balance {} {}, {} operations",
            v.name,
            v.contact.unwrap_or_default(),
            v.balance.unwrap_or_default(),
            v.currency.unwrap_or_default(),
            v.operations
        );
    }
    let rule = |rule: &str, value: &str, hide: bool| AlertAddRequest {
        on: "Compte courant".into(),
        rule: rule.into(),
        value: Some(value.into()),
        hide_amounts: hide,
        from: Some("2024-01-01".into()),
    };
    bob.bank_alert_add(&rule("large-debit", "1000", false)).await?;
    println!("bob$ hearth bank alerts add \"Compte courant\" large-debit 1000");
    carol.bank_alert_add(&rule("low-balance", "500", true)).await?;
    println!("carol$ hearth bank alerts add \"Compte courant\" low-balance 500 --hide-amounts");
    let inbox = dir.join("bob-alerts.jsonl");
    let command = format!("cat >> '{}'; echo >> '{}'", inbox.display(), inbox.display());
    bob.bank_set_hook(Some(Hook::Command { command })).await?;
    println!("bob$ hearth bank alerts hook --command 'cat >> {}'   (could send an email)", inbox.display());

    let february = statement(
        &[("F1", "20240202", "-1950.00", "VIREMENT M. INCONNU"), ("F2", "20240205", "-12.40", "BOULANGERIE")],
        "399.01",
        "20240205",
    );
    alice.bank_import(february.into_bytes(), &query).await?;
    println!("\nalice imports February: a transfer of 1950.00 EUR to someone nobody knows");
    for (client, name) in [(bob, "bob"), (carol, "carol")] {
        wait(|| async { Ok(!client.bank_notifications().await?.is_empty()) }, "the alerts").await?;
        for n in client.bank_notifications().await? {
            println!("{name}$ hearth bank notifications   -> {}  {}", n.date, n.message);
        }
    }
    wait(|| async { Ok(inbox.is_file()) }, "bob's alert hook").await?;
    println!("   -> bob's hook received it too: {}", inbox.display());
    println!("bob$ hearth bank operations \"Compte courant\"");
    for o in bob.bank_operations("Compte courant", None).await? {
        println!("   {}  {:>9} {}  {}", o.date, o.amount, o.currency, o.label);
    }
    Ok(())
}

async fn wait<F, Fut>(mut check: F, what: &str) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    for _ in 0..300 {
        if check().await.unwrap_or(false) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the demo timed out waiting for {what}")
}

/// Three nodes (alice, bob, carol) with homes under `dir`, on 127.0.0.1;
/// alice invites bob and carol, and the three wait to see each other.
pub async fn family(dir: &Path) -> Result<(Vec<RunningNode>, Vec<Client>)> {
    let mut nodes = Vec::new();
    for name in NAMES {
        nodes.push(start(&dir.join(name), name).await?);
    }
    let clients: Vec<Client> =
        NAMES.iter().map(|n| Client::from_home(&Home::new(dir.join(n)))).collect::<Result<_>>()?;

    println!("\n== 1. Pairing: alice invites bob and carol; each joins with the token");
    for (i, joiner) in [(1usize, "bob"), (2, "carol")] {
        let invite = clients[0].invite(Some(600)).await?;
        println!("alice$ hearth invite\n{}", invite.token);
        let contact = clients[i].join(&invite.token, None).await?;
        println!("{joiner}$ hearth join <token>   -> paired with {} ({})", contact.name, contact.peer_id);
    }
    wait_all_online(&clients).await?;
    println!("\nalice$ hearth contacts");
    for c in clients[0].contacts().await? {
        println!("  {:<8} {:<8} {}", c.name, if c.online { "online" } else { "offline" }, c.peer_id);
    }
    Ok((nodes, clients))
}

async fn start(root: &Path, name: &str) -> Result<RunningNode> {
    let home = Home::new(root);
    home.init(Some(name))?;
    let config = Config {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".into(), "/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        ..home.config()?
    };
    config.save(&home.config_path())?;
    let node = crate::node::start(&home).await?;
    println!("started {name:<6} {} (home {})", node.peer_id, root.display());
    Ok(node)
}

async fn wait_all_online(clients: &[Client]) -> Result<()> {
    for _ in 0..200 {
        let mut all = true;
        for c in clients {
            all &= c.contacts().await?.iter().all(|c| c.online);
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the demo nodes did not all see each other within 10 s")
}
