//! `hearth backup ...`: the command line of backups. Every command is a
//! client of the running node's API, except the restore of a fresh
//! install (`restore --key KEY --from ADDR`), which needs no running node.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Subcommand;

use super::{human, parse_size, BackupOp};
use crate::client::Client;
use crate::home::Home;

/// `hearth backup ...`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Friends hosting my backup (and `friends add CONTACT` to ask one).
    Friends {
        #[command(subcommand)]
        action: Option<FriendsAction>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What I host for others (and `hosting accept|decline CONTACT`).
    Hosting {
        #[command(subcommand)]
        action: Option<HostingAction>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Back up a directory or file (absolute path).
    Add {
        /// The path.
        path: PathBuf,
    },
    /// Stop backing up a path.
    Remove {
        /// The path, as added.
        path: PathBuf,
    },
    /// Back up now (incremental), with a progress bar.
    Run {
        /// Print the report as JSON (no progress bar).
        #[arg(long)]
        json: bool,
    },
    /// Last snapshot, friends, audits, and whether a restore is possible now.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List snapshots.
    Snapshots {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the recovery key (keep it on paper, away from this machine);
    /// with --passphrase, also store it wrapped under that passphrase with
    /// every friend.
    RecoveryKey {
        /// A passphrase (at least 8 characters) that can replace the key.
        #[arg(long)]
        passphrase: Option<String>,
        /// Split the key among friends, e.g. 2-of-3 (with --to).
        #[arg(long, value_name = "T-of-M")]
        split: Option<String>,
        /// The friends who each keep one share of the split.
        #[arg(long, num_args = 1.., requires = "split")]
        to: Vec<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Challenge every friend now (and repair what failed).
    Audit {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget snapshots by policy and reclaim space on the friends.
    Forget {
        /// Keep the last N snapshots.
        #[arg(long)]
        keep_last: Option<usize>,
        /// Keep one snapshot a day for N days.
        #[arg(long)]
        keep_daily: Option<usize>,
        /// Keep one a week for N weeks.
        #[arg(long)]
        keep_weekly: Option<usize>,
        /// Keep one a month for N months.
        #[arg(long)]
        keep_monthly: Option<usize>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore. With --key and --from: a whole instance into a fresh home
    /// (no node running). Without: files of a snapshot under --to, from
    /// the running node.
    Restore {
        /// The recovery key (fresh-install restore).
        #[arg(long)]
        key: Option<String>,
        /// The passphrase set with `recovery-key --passphrase`, instead of the key.
        #[arg(long, conflicts_with = "key")]
        passphrase: Option<String>,
        /// A recovery share a friend handed back (repeat T times), instead of the key.
        #[arg(long = "share", conflicts_with_all = ["key", "passphrase"])]
        shares: Vec<String>,
        /// A friend's full address, ADDR/p2p/PEER_ID (repeatable).
        #[arg(long)]
        from: Vec<String>,
        /// Snapshot id (default: the latest).
        #[arg(long)]
        snapshot: Option<String>,
        /// Only files under this path.
        #[arg(long)]
        path: Option<String>,
        /// Write files under this directory instead of their original paths.
        #[arg(long)]
        to: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `hearth backup friends add`.
#[derive(Debug, Subcommand)]
pub enum FriendsAction {
    /// Ask a contact to host my shards.
    Add {
        /// Contact name or peer id.
        contact: String,
        /// Space offered in return (e.g. 50G).
        #[arg(long, default_value = "0", value_parser = parse_size)]
        offer: u64,
    },
}

/// `hearth backup hosting accept|decline`.
#[derive(Debug, Subcommand)]
pub enum HostingAction {
    /// Host a contact's shards, up to a quota.
    Accept {
        /// Contact name or peer id.
        contact: String,
        /// Space granted (e.g. 50G).
        #[arg(long, value_parser = parse_size)]
        quota: u64,
    },
    /// Decline a contact's request.
    Decline {
        /// Contact name or peer id.
        contact: String,
    },
    /// Print the recovery share a contact gave you (to hand it back).
    RecoveryShare {
        /// The owner (contact name or peer id).
        owner: String,
    },
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn u(v: &serde_json::Value, key: &str) -> u64 {
    v.get(key).and_then(|x| x.as_u64()).unwrap_or(0)
}

fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|x| x.as_str()).unwrap_or("")
}

fn absolute(p: PathBuf) -> Result<String> {
    let p = if p.is_absolute() { p } else { std::env::current_dir()?.join(p) };
    Ok(p.to_string_lossy().into_owned())
}

/// Runs one `hearth backup` command.
pub async fn run(home: &Home, command: BackupCommand) -> Result<()> {
    if let BackupCommand::Restore { key, passphrase, shares, from, to, json, .. } = &command {
        let secret = match (key, passphrase) {
            _ if !shares.is_empty() => Some(super::restore::Secret::Shares(shares.clone())),
            (Some(k), _) => Some(super::restore::Secret::Key(k.clone())),
            (None, Some(p)) => {
                Some(super::restore::Secret::Passphrase(p.clone(), hearth_protocol::backup::keys::KdfParams::DEFAULT))
            }
            (None, None) => None,
        };
        if let Some(secret) = secret {
            return restore_fresh(home, secret, from, to.clone(), *json).await;
        }
    }
    let client = Client::from_home(home)?;
    match command {
        BackupCommand::Friends { action: Some(FriendsAction::Add { contact, offer }), json } => {
            let v = client.backup(&BackupOp::FriendsAdd { contact, offer }).await?;
            if json {
                return print_json(&v);
            }
            match s(&v, "state") {
                "accepted" => println!("{} hosts your backup", s(&v, "friend")),
                "declined" => println!("{} declined to host your backup", s(&v, "friend")),
                _ => println!(
                    "asked {}; they answer with `hearth backup hosting accept YOUR-NAME --quota SIZE`",
                    s(&v, "friend")
                ),
            }
        }
        BackupCommand::Friends { action: None, json } => {
            let v = client.backup(&BackupOp::Friends).await?;
            if json {
                return print_json(&v);
            }
            let list = v.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no backup friends yet: `hearth backup friends add CONTACT`");
            }
            println!(
                "{:<14} {:<9} {:<7} {:>10} {:>12} {:>12}  LAST AUDIT",
                "FRIEND", "STATE", "ONLINE", "QUOTA", "HOLDS MINE", "I HOLD"
            );
            for f in list {
                let audit = f.get("last_audit").and_then(|a| a.get("message")).and_then(|m| m.as_str()).unwrap_or("-");
                println!(
                    "{:<14} {:<9} {:<7} {:>10} {:>12} {:>12}  {audit}",
                    s(&f, "name"),
                    s(&f, "state"),
                    if f["online"].as_bool() == Some(true) { "yes" } else { "no" },
                    human(u(&f, "quota")),
                    human(u(&f, "holds_for_me_bytes")),
                    human(u(&f, "i_hold_for_them_bytes")),
                );
                if let Some(r) = f.get("repaired").and_then(|r| r.as_str()) {
                    println!("    repaired: {r}");
                }
            }
        }
        BackupCommand::Hosting { action: Some(HostingAction::RecoveryShare { owner }), json } => {
            let v = client.backup(&BackupOp::HostedShare { owner }).await?;
            if json {
                return print_json(&v);
            }
            println!("{}", s(&v, "share"));
            eprintln!("give this to {} only, in person or over a channel you trust", s(&v, "owner"));
        }
        BackupCommand::Hosting { action: Some(action), json } => {
            let op = match action {
                HostingAction::RecoveryShare { .. } => return Ok(()), // handled above
                HostingAction::Accept { contact, quota } => BackupOp::HostingAnswer { contact, accept: true, quota },
                HostingAction::Decline { contact } => BackupOp::HostingAnswer { contact, accept: false, quota: 0 },
            };
            let v = client.backup(&op).await?;
            if json {
                return print_json(&v);
            }
            println!("{} for {} (quota {})", s(&v, "state"), s(&v, "owner"), human(u(&v, "quota")));
        }
        BackupCommand::Hosting { action: None, json } => {
            let v = client.backup(&BackupOp::Hosting).await?;
            if json {
                return print_json(&v);
            }
            let list = v.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("you host no backup");
            }
            println!("{:<14} {:<9} {:>10} {:>10}", "OWNER", "STATE", "QUOTA", "USED");
            for h in list {
                println!(
                    "{:<14} {:<9} {:>10} {:>10}",
                    s(&h, "owner"),
                    s(&h, "state"),
                    human(u(&h, "quota")),
                    human(u(&h, "used"))
                );
            }
        }
        BackupCommand::Add { path } => {
            let v = client.backup(&BackupOp::Add { path: absolute(path)? }).await?;
            println!("backed-up paths: {}", v["paths"]);
        }
        BackupCommand::Remove { path } => {
            let v = client.backup(&BackupOp::Remove { path: absolute(path)? }).await?;
            println!("backed-up paths: {}", v["paths"]);
        }
        BackupCommand::Run { json } => {
            let v = if json {
                client.backup(&BackupOp::Run).await?
            } else {
                run_with_progress(&client, BackupOp::Run).await?
            };
            if json {
                return print_json(&v);
            }
            let st = &v["stats"];
            println!(
                "snapshot {}: {} files, {}, {} new ({} stored), {}-of-{} over friends; catalog on {}",
                s(&v, "snapshot"),
                u(st, "files"),
                human(u(st, "bytes")),
                human(u(st, "new_bytes")),
                human(u(st, "stored_bytes")),
                u(&v, "k"),
                u(&v, "n"),
                v["catalog_on"]
            );
        }
        BackupCommand::Status { json } => {
            let v = client.backup(&BackupOp::Status).await?;
            if json {
                return print_json(&v);
            }
            println!("paths: {}", v["paths"]);
            match v.get("last_snapshot").filter(|l| !l.is_null()) {
                Some(l) => println!(
                    "last snapshot: {} at {}: {} files, {}, {} new, dedup ratio {:.2}",
                    s(l, "id"),
                    s(l, "time_rfc3339"),
                    u(l, "files"),
                    human(u(l, "bytes")),
                    human(u(l, "new_bytes")),
                    l["dedup_ratio"].as_f64().unwrap_or(1.0)
                ),
                None => println!("last snapshot: none yet (`hearth backup run`)"),
            }
            for f in v["friends"].as_array().cloned().unwrap_or_default() {
                let audit = f
                    .get("last_audit")
                    .and_then(|a| a.get("message"))
                    .and_then(|m| m.as_str())
                    .unwrap_or("not audited yet");
                println!(
                    "  {:<14} {:<9} {} shards, {}; audit: {audit}",
                    s(&f, "name"),
                    if f["online"].as_bool() == Some(true) { "online" } else { "offline" },
                    u(&f, "shards"),
                    human(u(&f, "bytes"))
                );
                if let Some(r) = f.get("repaired").and_then(|r| r.as_str()) {
                    println!("    repaired: {r}");
                }
            }
            println!("{}", s(&v, "restorable_line"));
        }
        BackupCommand::Snapshots { json } => {
            let v = client.backup(&BackupOp::Snapshots).await?;
            if json {
                return print_json(&v);
            }
            println!("{:<10} {:<22} {:>8} {:>10} {:>10}", "ID", "TIME", "FILES", "SIZE", "NEW");
            for sn in v.as_array().cloned().unwrap_or_default() {
                println!(
                    "{:<10} {:<22} {:>8} {:>10} {:>10}",
                    s(&sn, "id"),
                    s(&sn, "time_rfc3339"),
                    u(&sn, "files"),
                    human(u(&sn, "bytes")),
                    human(u(&sn, "new_bytes"))
                );
            }
        }
        BackupCommand::RecoveryKey { passphrase, split, to, json } => {
            if let Some(split) = split {
                let (t, m) = split
                    .split_once("-of-")
                    .and_then(|(t, m)| Some((t.parse::<u8>().ok()?, m.parse::<usize>().ok()?)))
                    .ok_or_else(|| anyhow::anyhow!("--split takes T-of-M, e.g. 2-of-3"))?;
                if m != to.len() {
                    bail!("--split {split} needs {m} friends after --to, {} given", to.len());
                }
                let v = client.backup(&BackupOp::SplitKey { threshold: t, contacts: to }).await?;
                if json {
                    return print_json(&v);
                }
                println!("each of {} keeps one share; any {t} of them can give your key back", v["given_to"]);
                return Ok(());
            }
            if let Some(passphrase) = passphrase {
                let v = client.backup(&BackupOp::SetPassphrase { passphrase, m_kib: None, t: None }).await?;
                eprintln!("the key, wrapped under your passphrase, is stored with: {}", v["stored_with"]);
            }
            let v = client.backup(&BackupOp::RecoveryKey).await?;
            if json {
                return print_json(&v);
            }
            println!("{}", s(&v, "recovery_key"));
            eprintln!("write this down and keep it away from this machine: with it and one friend's address, `hearth restore --recovery-key KEY --from FRIEND` on a fresh `hearth init` brings everything back");
        }
        BackupCommand::Audit { json } => {
            let v = client.backup(&BackupOp::Audit).await?;
            print_json(&v)?;
            let _ = json;
        }
        BackupCommand::Forget { keep_last, keep_daily, keep_weekly, keep_monthly, json } => {
            let policy = super::engine::KeepPolicy { keep_last, keep_daily, keep_weekly, keep_monthly };
            if keep_last.is_none() && keep_daily.is_none() && keep_weekly.is_none() && keep_monthly.is_none() {
                bail!("say what to keep: --keep-last N, --keep-daily N, --keep-weekly N or --keep-monthly N");
            }
            let v = client.backup(&BackupOp::Forget(policy)).await?;
            if json {
                return print_json(&v);
            }
            println!(
                "forgot {} snapshot(s), kept {}; pruned {} pack(s), {} freed on friends",
                u(&v, "removed_snapshots"),
                u(&v, "kept_snapshots"),
                u(&v, "pruned_packs"),
                human(u(&v, "freed_bytes"))
            );
        }
        BackupCommand::Restore { key: None, passphrase: None, from, snapshot, path, to, json, .. } => {
            if !from.is_empty() {
                bail!("--from goes with --key (restore of a fresh install)");
            }
            let Some(to) = to else {
                bail!("say where to restore with --to DIR (files are never restored over the running node's)")
            };
            let op = BackupOp::Restore { snapshot, path, to: absolute(to)? };
            let v = if json { client.backup(&op).await? } else { run_with_progress(&client, op).await? };
            if json {
                return print_json(&v);
            }
            println!(
                "restored {} files, {} from snapshot {}",
                u(&v, "files"),
                human(u(&v, "bytes")),
                s(&v, "snapshot")
            );
        }
        BackupCommand::Restore { .. } => {}
    }
    Ok(())
}

/// The progress bar of a restore: bytes written of the bytes to restore.
fn restore_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} restoring [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `op` (a backup run or a restore) on the node, showing its progress
/// (polled from the node) until it ends.
async fn run_with_progress(client: &Client, op: BackupOp) -> Result<serde_json::Value> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let run = client.backup(&op);
    tokio::pin!(run);
    loop {
        tokio::select! {
            result = &mut run => {
                bar.finish_and_clear();
                return result;
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {
                if let Ok(p) = client.backup(&BackupOp::Progress).await {
                    bar.set_length(u(&p, "bytes_total"));
                    bar.set_position(u(&p, "bytes_done"));
                    let files = match u(&p, "files_total") {
                        0 => String::new(),
                        total => format!(" {}/{total} files", u(&p, "files_done")),
                    };
                    bar.set_message(format!("{}{files}", s(&p, "phase")));
                }
            }
        }
    }
}

/// A whole-instance restore into `home`, with a progress bar (`hearth
/// restore`, `hearth backup restore --key`).
pub(crate) async fn restore_fresh(
    home: &Home,
    secret: super::restore::Secret,
    from: &[String],
    to: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let bar = (!json).then(restore_bar);
    let report = super::restore::restore_fresh_with_progress(home, secret, from, to, &|done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    })
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    if json {
        return print_json(&serde_json::to_value(&report)?);
    }
    println!(
        "restored snapshot {}: {} files, {} ({} packs) into {}",
        report.snapshot,
        report.files,
        human(report.bytes),
        report.packs,
        home.root().display()
    );
    for p in &report.problems {
        println!("worked around: {p}");
    }
    println!("start the node with `hearth --home {} up`", home.root().display());
    Ok(())
}
