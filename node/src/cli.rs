//! The `hearth` command line. `init` and `up` act on the home directly;
//! every other command is a client of the running node's API.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::client::Client;
use crate::home::Home;
use crate::share::ShareStatusView;
use crate::views::ContactView;

/// Hearth: your personal cloud, cooperating directly with your family's.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about)]
pub struct Cli {
    /// The node's home directory (default: $HEARTH_HOME, else the platform data directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the node's home: identity, configuration, database (idempotent).
    Init {
        /// The name your contacts will see.
        #[arg(long)]
        name: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the node in the foreground (Ctrl-C or SIGTERM stops it cleanly).
    Up,
    /// Show the node's identity, addresses and connected contacts.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time invitation token for someone to `hearth join`.
    Invite {
        /// How long the token stays valid (e.g. 30m, 24h, 7d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        valid_for: std::time::Duration,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the invitations this node issued (used, open or expired).
    Invitations {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pair with the node that made TOKEN; both become each other's contact.
    Join {
        /// The token printed by `hearth invite` on the other node.
        token: String,
        /// The name to give this contact here (default: the name they chose).
        #[arg(long)]
        name: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open the web interface: prints a one-time login link (valid 5
    /// minutes) and opens it in the desktop's browser when there is one.
    Ui {
        /// Only print the link.
        #[arg(long)]
        no_open: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run several local nodes that show what Hearth does.
    Demo {
        /// Directory for the demo nodes' homes (default: a temporary one).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the nodes running until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
    },
    /// Shared folders.
    Share {
        #[command(subcommand)]
        action: ShareCommand,
    },
    /// Bank accounts: import statements, list accounts and operations.
    Bank {
        #[command(subcommand)]
        action: BankCommand,
    },
    /// Backups to friends: friends, hosting, run, status, restore.
    Backup {
        #[command(subcommand)]
        action: crate::backup::cli::BackupCommand,
    },
    /// Bring a lost instance back from the friends hosting its backup:
    /// on a fresh machine, `hearth init`, then this, with the recovery key
    /// and one or more friends (the restored contact list finds the rest).
    /// Identity, contacts, shares, bank data and backed-up files come back;
    /// a wrong key is refused and writes nothing.
    Restore {
        /// The recovery key (`hearth backup recovery-key` printed it).
        #[arg(long = "recovery-key", alias = "key")]
        recovery_key: Option<String>,
        /// The backup passphrase, instead of the key.
        #[arg(long, conflicts_with = "recovery_key")]
        passphrase: Option<String>,
        /// A recovery share a friend handed back (repeat T times), instead of the key.
        #[arg(long = "share", conflicts_with_all = ["recovery_key", "passphrase"])]
        shares: Vec<String>,
        /// Friends hosting the backup: full addresses (ADDR/p2p/PEER_ID) or
        /// invitation tokens they printed with `hearth invite`.
        #[arg(long, num_args = 1.., required = true)]
        from: Vec<String>,
        /// Write the backed-up files under this directory instead of their
        /// original paths.
        #[arg(long)]
        to: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List contacts, or remove one.
    Contacts {
        #[command(subcommand)]
        action: Option<ContactsCommand>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `hearth share ...`.
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Start sharing an existing directory; prints the share id.
    Create {
        /// The directory.
        path: PathBuf,
        /// The share's name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List shares (yours, joined, pending invitations).
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Members, roles and sync state of one share.
    Status {
        /// Share name or id.
        share: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// Keep a live view, refreshed every second, until Ctrl-C (with
        /// --json: one JSON object per line per refresh).
        #[arg(long)]
        watch: bool,
    },
    /// Invite a contact (read-write unless --read-only).
    Invite {
        /// Share name or id.
        share: String,
        /// Contact name.
        contact: String,
        /// The contact may read but not change anything.
        #[arg(long)]
        read_only: bool,
    },
    /// Accept an invitation: the folder goes to PATH (new or empty).
    Accept {
        /// Share name or id.
        share: String,
        /// Where the folder goes.
        path: PathBuf,
        /// Wait for the first sync to finish, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
    /// Decline an invitation.
    Decline {
        /// Share name or id.
        share: String,
    },
    /// Stop taking part in a share; the local files stay.
    Leave {
        /// Share name or id.
        share: String,
    },
    /// Change a member's role (owner only).
    SetRole {
        /// Share name or id.
        share: String,
        /// Contact name.
        contact: String,
        /// `read-only` or `read-write`.
        #[arg(value_parser = ["read-only", "read-write"])]
        role: String,
    },
    /// Remove a member (owner only): it receives nothing more.
    RemoveMember {
        /// Share name or id.
        share: String,
        /// Contact name.
        contact: String,
    },
    /// Deleted files and folders, restorable with `share restore`.
    Trash {
        /// Share name or id.
        share: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every version of a file (edits by anyone, overwritten or not).
    Versions {
        /// Share name or id.
        share: String,
        /// Path of the file inside the share.
        path: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Bring back a deleted file, or an older version with --version.
    Restore {
        /// Share name or id.
        share: String,
        /// Path inside the share (where it is, or was).
        path: String,
        /// Version number from `share versions`.
        #[arg(long)]
        version: Option<usize>,
    },
    /// Scan the folder now for local edits (done automatically every few seconds).
    Scan {
        /// Share name or id.
        share: String,
    },
    /// Write the share's Automerge document (loadable by any Automerge).
    Doc {
        /// Share name or id.
        share: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `hearth bank ...`.
#[derive(Debug, Subcommand)]
pub enum BankCommand {
    /// Import a statement: OFX/QFX, camt.053, CSV or Cozy JSON (detected).
    /// Operations already imported are skipped; a broken file imports nothing.
    Import {
        /// The statement file.
        file: PathBuf,
        /// The account to import into (required for CSV; names a new account otherwise).
        #[arg(long)]
        account: Option<String>,
        /// The file's format (default: detected): ofx, camt053, csv, cozy-json.
        #[arg(long, value_parser = ["ofx", "qfx", "camt053", "csv", "cozy-json"])]
        format: Option<String>,
        /// A CSV preset: generic, generic-fr, boursorama, n26, revolut, chase.
        #[arg(long, conflicts_with = "csv_map")]
        csv_preset: Option<String>,
        /// A CSV column mapping, e.g. "date=Date,label=Libellé,amount=Montant,delimiter=semicolon,decimal=comma,dates=dmy,currency_code=EUR".
        #[arg(long)]
        csv_map: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List bank accounts with their balance.
    Accounts {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List an account's operations (or a view's), oldest first.
    Operations {
        /// Account or view: name or id.
        account: String,
        /// Only from this day on (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an account, read-only, to a contact (its balance and operations
    /// from --since on; later imports reach them too).
    Share {
        /// Account name or id.
        account: String,
        /// Contact name.
        contact: String,
        /// First day shown (YYYY-MM-DD); earlier operations are never sent.
        #[arg(long)]
        since: Option<String>,
    },
    /// Stop showing an account to a contact; their node drops its data.
    Unshare {
        /// Account name or id.
        account: String,
        /// Contact name.
        contact: String,
    },
    /// Accounts others show you (and the ones you show).
    Views {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Your private note, or a category, on one of your operations. Notes
    /// and private categories never leave your node.
    Note {
        /// Account name or id.
        account: String,
        /// The operation's key (`bank operations ACCOUNT --json`).
        key: String,
        /// The note (empty to clear).
        #[arg(long)]
        note: Option<String>,
        /// A category (empty to clear).
        #[arg(long)]
        category: Option<String>,
        /// The category is private (not shown to viewers).
        #[arg(long)]
        private: bool,
        /// The category is shown to viewers again.
        #[arg(long, conflicts_with = "private")]
        public: bool,
    },
    /// Alert rules on your accounts and on the views you receive.
    Alerts {
        #[command(subcommand)]
        action: AlertsCommand,
    },
    /// Alerts raised so far (each once), oldest first.
    Notifications {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write an account and its operations in another format.
    Export {
        /// Account name or id.
        account: String,
        /// Output format.
        #[arg(long, value_parser = ["cozy-json"], default_value = "cozy-json")]
        format: String,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `hearth bank alerts ...`.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Add a rule: large-debit AMOUNT, low-balance AMOUNT, new-payee,
    /// busy-day N, foreign. It looks at operations from today (or --from) on.
    Add {
        /// Account or view: name or id.
        on: String,
        /// The rule.
        #[arg(value_parser = ["large-debit", "low-balance", "new-payee", "busy-day", "foreign"])]
        rule: String,
        /// Its amount (large-debit, low-balance) or count (busy-day).
        value: Option<String>,
        /// Notifications do not show amounts (for lock screens).
        #[arg(long)]
        hide_amounts: bool,
        /// Watch operations from this day on (YYYY-MM-DD; default today).
        #[arg(long)]
        from: Option<String>,
    },
    /// List the rules.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule.
    Remove {
        /// Rule id from `alerts list`.
        id: u64,
    },
    /// Hand every new alert to a command (JSON on stdin, the message in
    /// $HEARTH_ALERT_MESSAGE) or POST it to a loopback URL.
    Hook {
        /// A shell command.
        #[arg(long, conflicts_with_all = ["url", "none"])]
        command: Option<String>,
        /// An http:// URL on this machine.
        #[arg(long, conflicts_with = "none")]
        url: Option<String>,
        /// Remove the hook.
        #[arg(long)]
        none: bool,
    },
}

/// `hearth contacts ...`.
#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Forget a contact: it can no longer reach this node's protocols.
    Remove {
        /// The contact's name (or peer id).
        name: String,
    },
}

/// Parses the arguments and runs the command.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Up) { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    if let Command::Demo { dir, keep_running } = cli.command {
        return crate::demo::run(dir, keep_running).await;
    }
    let home = Home::resolve(cli.home)?;
    match cli.command {
        Command::Demo { .. } => unreachable!("handled above"),
        Command::Init { name, json } => {
            let report = home.init(name.as_deref())?;
            if json {
                print_json(&report)?;
            } else if report.created {
                println!("created {} for {} ({})", report.home.display(), report.name, report.peer_id);
                println!("start it with: hearth --home {} up", report.home.display());
            } else {
                println!("{} is already initialised: {} ({})", report.home.display(), report.name, report.peer_id);
            }
        }
        Command::Up => up(&home).await?,
        Command::Status { json } => {
            let status = Client::from_home(&home)?.status().await?;
            if json {
                return print_json(&status);
            }
            println!("name:      {}", status.name);
            println!("peer id:   {}", status.peer_id);
            println!("version:   {}", status.version);
            println!("uptime:    {}", humantime::format_duration(std::time::Duration::from_secs(status.uptime_secs)));
            println!("api:       http://{}", status.api_addr);
            println!("listening: {}", status.listen_addrs.join("\n           "));
            if let Some(port) = status.direct_port {
                let links = if status.direct_links.is_empty() {
                    "none yet".to_string()
                } else {
                    status.direct_links.join(", ")
                };
                println!("direct:    udp port {port} for file contents; connected to: {links}");
            }
            let external = if status.external_addrs.is_empty() {
                String::new()
            } else {
                format!(" at {}", status.external_addrs.join(", "))
            };
            println!("reach:     {}{external}", status.reachability);
            for r in &status.relays {
                let detail = match (&r.error, r.addresses.first()) {
                    (Some(why), _) => format!(": {why}"),
                    (None, Some(addr)) => format!(", reachable at {addr}"),
                    (None, None) => String::new(),
                };
                println!("relay:     {} on {}{detail}", r.state, r.relay);
            }
            if let Some(service) = status.relay_service.as_ref().filter(|s| s.enabled) {
                println!(
                    "relaying:  {} for contacts; {} reservation(s), {} connection(s) now, {} refused",
                    if service.offered { "offered" } else { "not offered (not publicly reachable)" },
                    service.reservations.len(),
                    service.circuits.len(),
                    service.refused_reservations + service.refused_circuits
                );
            }
            let names: Vec<String> = status
                .connected_contacts
                .iter()
                .map(|c| match &c.link {
                    Some(link) => format!("{} ({link})", c.name),
                    None => c.name.clone(),
                })
                .collect();
            println!(
                "contacts:  {} of {} online{}{}",
                names.len(),
                status.contacts_total,
                if names.is_empty() { "" } else { ": " },
                names.join(", ")
            );
        }
        Command::Invite { valid_for, json } => {
            let invite = Client::from_home(&home)?.invite(Some(valid_for.as_secs().max(1))).await?;
            if json {
                return print_json(&invite);
            }
            println!("{}", invite.token);
            eprintln!(
                "one-time invitation, valid until {}; give it to the other person for `hearth join`",
                invite.expires_at
            );
        }
        Command::Invitations { json } => {
            let list = Client::from_home(&home)?.invitations().await?;
            if json {
                return print_json(&list);
            }
            println!("{:<34} {:<8} {:<22} USED BY", "ID", "STATE", "EXPIRES");
            for i in list {
                println!("{:<34} {:<8} {:<22} {}", i.id, i.state, i.expires_at, i.used_by.unwrap_or_default());
            }
        }
        Command::Join { token, name, json } => {
            let contact = Client::from_home(&home)?.join(&token, name.as_deref()).await?;
            if json {
                return print_json(&contact);
            }
            println!("paired with {} ({}); you are now each other's contact", contact.name, contact.peer_id);
        }
        Command::Ui { no_open, json } => {
            let link = Client::from_home(&home)?.ui_login_link().await?;
            if json {
                return print_json(&link);
            }
            println!("{}", link.url);
            eprintln!("one-time login link, valid until {}; it opens Hearth in your browser", link.expires_at);
            if !no_open {
                open_in_browser(&link.url);
            }
        }
        Command::Share { action } => share(&Client::from_home(&home)?, action).await?,
        Command::Bank { action } => bank(&Client::from_home(&home)?, action).await?,
        Command::Backup { action } => crate::backup::cli::run(&home, action).await?,
        Command::Restore { recovery_key, passphrase, shares, from, to, json } => {
            use crate::backup::restore::Secret;
            let secret = match (recovery_key, passphrase) {
                _ if !shares.is_empty() => Secret::Shares(shares),
                (Some(k), _) => Secret::Key(k),
                (None, Some(p)) => Secret::Passphrase(p, hearth_protocol::backup::keys::KdfParams::DEFAULT),
                (None, None) => bail!("give the recovery key: hearth restore --recovery-key KEY --from FRIEND"),
            };
            crate::backup::cli::restore_fresh(&home, secret, &from, to, json).await?
        }
        Command::Contacts { action: None, json } => {
            let contacts = Client::from_home(&home)?.contacts().await?;
            if json {
                return print_json(&contacts);
            }
            print_contacts(&contacts);
        }
        Command::Contacts { action: Some(ContactsCommand::Remove { name }), json } => {
            let removed = Client::from_home(&home)?.remove_contact(&name).await?;
            if json {
                return print_json(&removed);
            }
            println!("removed {} ({})", removed.name, removed.peer_id);
        }
    }
    Ok(())
}

/// Opens `url` with the desktop's opener, if this session has a desktop;
/// on a server (no display) the printed link is all there is.
fn open_in_browser(url: &str) {
    let opener: Option<(&str, Vec<&str>)> = if cfg!(target_os = "macos") {
        Some(("open", vec![url]))
    } else if cfg!(windows) {
        Some(("cmd", vec!["/C", "start", "", url]))
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        Some(("xdg-open", vec![url]))
    } else {
        None
    };
    let Some((program, args)) = opener else { return };
    let spawned = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        tracing::warn!("cannot open a browser with {program} ({e}); open the link above yourself");
    }
}

async fn share(client: &Client, action: ShareCommand) -> Result<()> {
    match action {
        ShareCommand::Create { path, name, json } => {
            let view = client.share_create(&path.to_string_lossy(), name.as_deref()).await?;
            if json {
                return print_json(&view);
            }
            println!("{}", view.id);
            eprintln!(
                "sharing {} as {:?}; invite a contact with `hearth share invite {} CONTACT`",
                view.path.unwrap_or_default(),
                view.name,
                view.name
            );
        }
        ShareCommand::List { json } => {
            let shares = client.shares().await?;
            if json {
                return print_json(&shares);
            }
            if shares.is_empty() {
                println!("no shares yet: `hearth share create DIR`");
            }
            println!("{:<34} {:<20} {:<11} {:<9} PATH", "ID", "NAME", "ROLE", "STATE");
            for s in shares {
                println!("{:<34} {:<20} {:<11} {:<9} {}", s.id, s.name, s.role, s.state, s.path.unwrap_or_default());
            }
        }
        ShareCommand::Status { share, json, watch: true } => watch_status(client, &share, json).await?,
        ShareCommand::Status { share, json, watch: false } => {
            let status = client.share_status(&share).await?;
            if json {
                return print_json(&status);
            }
            println!("share:    {} ({})", status.share.name, status.share.id);
            println!("path:     {}", status.share.path.as_deref().unwrap_or("(not accepted)"));
            println!("role:     {} ({})", status.share.role, status.share.state);
            println!("members:");
            for m in &status.members {
                println!("  {:<20} {:<11} {}", m.name, m.role, if m.online { "online" } else { "offline" });
            }
            if !status.pending_invitations.is_empty() {
                println!("invited, no answer yet: {}", status.pending_invitations.join(", "));
            }
            println!(
                "changes:  {} in the document, {} refused from other members",
                status.doc_changes, status.rejected_changes
            );
            println!("{}", progress_line(&status));
            if !status.conflicts.is_empty() {
                println!("conflicts (both versions are on disk):");
                for path in &status.conflicts {
                    println!("  {path}");
                }
            }
            if !status.not_shared.is_empty() {
                println!("local edits not shared (you are read-only): {}", status.not_shared.join(", "));
            }
        }
        ShareCommand::Invite { share, contact, read_only } => {
            client.share_invite(&share, &contact, read_only).await?;
            let role = if read_only { "read-only" } else { "read-write" };
            println!("invited {contact} to {share} as {role}; they accept with `hearth share accept {share} PATH`");
        }
        ShareCommand::Accept { share, path, wait } => {
            let view = client.share_accept(&share, &path.to_string_lossy()).await?;
            println!("accepted {:?}; it syncs into {}", view.name, view.path.unwrap_or_default());
            if wait {
                wait_for_first_sync(client, &view.id).await?;
            }
        }
        ShareCommand::Decline { share } => {
            let view = client.share_decline(&share).await?;
            println!("declined {:?}", view.name);
        }
        ShareCommand::Leave { share } => {
            let view = client.share_leave(&share).await?;
            println!("left {:?}; the files in {} stay", view.name, view.path.unwrap_or_default());
        }
        ShareCommand::SetRole { share, contact, role } => {
            client.share_set_role(&share, &contact, Some(&role)).await?;
            println!("{contact} is now {role} in {share}");
        }
        ShareCommand::RemoveMember { share, contact } => {
            client.share_set_role(&share, &contact, None).await?;
            println!("removed {contact} from {share}; they receive nothing more");
        }
        ShareCommand::Trash { share, json } => {
            let items = client.share_trash(&share).await?;
            if json {
                return print_json(&items);
            }
            if items.is_empty() {
                println!("the trash of {share} is empty");
            }
            for i in items {
                let until =
                    if i.expires.is_empty() { String::new() } else { format!(", restorable until {}", i.expires) };
                println!("{:<40} {:>10} bytes  deleted version by {} at {}{until}", i.path, i.size, i.author, i.at);
            }
        }
        ShareCommand::Versions { share, path, json } => {
            let versions = client.share_versions(&share, &path).await?;
            if json {
                return print_json(&versions);
            }
            for v in versions {
                let mark = match (v.current, v.expires.is_empty()) {
                    (true, _) => "  (current)".to_owned(),
                    (false, false) => format!("  (restorable until {})", v.expires),
                    (false, true) => String::new(),
                };
                println!("version {:<3} {:>10} bytes  by {:<12} at {}{mark}", v.version, v.size, v.author, v.at);
            }
        }
        ShareCommand::Restore { share, path, version } => {
            client.share_restore(&share, &path, version).await?;
            match version {
                Some(v) => println!("restored version {v} of {path}"),
                None => println!("restored {path}"),
            }
        }
        ShareCommand::Scan { share } => {
            let report = client.share_scan(&share).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        ShareCommand::Doc { share, out } => {
            let bytes = client.share_doc(&share).await?;
            crate::home::write_atomic(&out, &bytes, false)?;
            println!("wrote {} bytes to {}", bytes.len(), out.display());
        }
    }
    Ok(())
}

async fn bank(client: &Client, action: BankCommand) -> Result<()> {
    match action {
        BankCommand::Import { file, account, format, csv_preset, csv_map, json } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let query = crate::bank::ImportQuery { format, account, csv_preset, csv_map };
            let report = client.bank_import(bytes, &query).await?;
            if json {
                return print_json(&report);
            }
            for a in &report.accounts {
                println!(
                    "{}{}: {} operation(s) added, {} already known; balance {}",
                    a.name,
                    if a.created { " (new account)" } else { "" },
                    a.added,
                    a.duplicates,
                    a.balance.as_deref().unwrap_or("unknown")
                );
            }
        }
        BankCommand::Accounts { json } => {
            let accounts = client.bank_accounts().await?;
            if json {
                return print_json(&accounts);
            }
            if accounts.is_empty() {
                println!("no bank accounts yet: `hearth bank import FILE`");
                return Ok(());
            }
            println!("{:<18} {:<24} {:>14} {:<4} {:>6}  AS OF", "ID", "NAME", "BALANCE", "CUR", "OPS");
            for a in accounts {
                println!(
                    "{:<18} {:<24} {:>14} {:<4} {:>6}  {}",
                    a.id,
                    a.name,
                    a.balance.unwrap_or_default(),
                    a.currency,
                    a.operations,
                    a.balance_date.or(a.balance_source).unwrap_or_default()
                );
            }
        }
        BankCommand::Operations { account, since, json } => {
            let ops = client.bank_operations(&account, since.as_deref()).await?;
            if json {
                return print_json(&ops);
            }
            for o in ops {
                println!("{}  {:>12} {}  {}", o.date, o.amount, o.currency, o.label);
            }
        }
        BankCommand::Share { account, contact, since } => {
            client.bank_share(&account, &contact, since.as_deref()).await?;
            let from = since.map(|s| format!(" from {s} on")).unwrap_or_default();
            println!("{account} is now shown read-only to {contact}{from}; stop with `hearth bank unshare {account} {contact}`");
        }
        BankCommand::Unshare { account, contact } => {
            client.bank_unshare(&account, &contact).await?;
            println!("{account} is no longer shown to {contact}; their node drops its data");
        }
        BankCommand::Views { json } => {
            let views = client.bank_views().await?;
            if json {
                return print_json(&views);
            }
            if views.is_empty() {
                println!("no bank views: nobody shows you an account, and you show none");
                return Ok(());
            }
            println!(
                "{:<34} {:<22} {:<7} {:<16} {:<8} {:>14} {:<4} {:>6}",
                "ID", "NAME", "ROLE", "WITH", "STATE", "BALANCE", "CUR", "OPS"
            );
            for v in views {
                println!(
                    "{:<34} {:<22} {:<7} {:<16} {:<8} {:>14} {:<4} {:>6}",
                    v.id,
                    v.name,
                    v.role,
                    v.contact.unwrap_or(v.peer),
                    v.state,
                    v.balance.unwrap_or_default(),
                    v.currency.unwrap_or_default(),
                    v.operations
                );
            }
        }
        BankCommand::Alerts { action } => alerts(client, action).await?,
        BankCommand::Note { account, key, note, category, private, public } => {
            let private = if private {
                Some(true)
            } else if public {
                Some(false)
            } else {
                None
            };
            let request = crate::bank::AnnotateRequest { note, category, private };
            let op = client.bank_annotate(&account, &key, &request).await?;
            println!(
                "{} {} {}: note {:?}, category {:?}",
                op.date,
                op.amount,
                op.label,
                op.note.unwrap_or_default(),
                op.category.unwrap_or_default()
            );
        }
        BankCommand::Notifications { json } => {
            let all = client.bank_notifications().await?;
            if json {
                return print_json(&all);
            }
            if all.is_empty() {
                println!("no alerts so far");
            }
            for n in all {
                println!("{}  {}", n.date, n.message);
            }
        }
        BankCommand::Export { account, format: _, out } => {
            let text = client.bank_export(&account).await?;
            match out {
                Some(path) => {
                    crate::home::write_atomic(&path, text.as_bytes(), false)?;
                    eprintln!("wrote {}", path.display());
                }
                None => println!("{text}"),
            }
        }
    }
    Ok(())
}

async fn alerts(client: &Client, action: AlertsCommand) -> Result<()> {
    use crate::bank::alerts::Hook;
    match action {
        AlertsCommand::Add { on, rule, value, hide_amounts, from } => {
            let request = crate::bank::AlertAddRequest { on, rule, value, hide_amounts, from };
            if let Some(r) = client.bank_alert_add(&request).await? {
                println!("rule {}: {} on {} (operations from {} on)", r.id, r.rule, r.on, r.from);
            }
        }
        AlertsCommand::List { json } => {
            let rules = client.bank_alerts().await?;
            if json {
                return print_json(&rules);
            }
            if rules.is_empty() {
                println!("no alert rules: `hearth bank alerts add ACCOUNT-OR-VIEW large-debit 500`");
            }
            for r in rules {
                let hidden = if r.hide_amounts { "  (amounts hidden)" } else { "" };
                println!("{:>3}  {:<7} {:<24} {:<22} from {}{hidden}", r.id, r.target_kind, r.on, r.rule, r.from);
            }
        }
        AlertsCommand::Remove { id } => {
            client.bank_alert_remove(id).await?;
            println!("removed rule {id}");
        }
        AlertsCommand::Hook { command, url, none } => {
            let hook = match (command, url, none) {
                (Some(command), _, _) => Some(Hook::Command { command }),
                (None, Some(url), _) => Some(Hook::Url { url }),
                (None, None, true) => None,
                (None, None, false) => anyhow::bail!("give --command CMD, --url URL or --none"),
            };
            match client.bank_set_hook(hook).await? {
                Some(Hook::Command { command }) => println!("new alerts will be handed to: {command}"),
                Some(Hook::Url { url }) => println!("new alerts will be POSTed to {url}"),
                None => println!("no alert hook"),
            }
        }
    }
    Ok(())
}

/// Bytes of the share's files that are here: complete files plus the
/// verified part of those being fetched.
fn bytes_here(status: &ShareStatusView) -> u64 {
    status.bytes.saturating_sub(status.bytes_pending_down) + status.bytes_pending_down_stored
}

/// One line of sync state: files and bytes still to fetch, members online,
/// conflicts, refused changes.
fn progress_line(status: &ShareStatusView) -> String {
    let others: Vec<_> = status.members.iter().filter(|m| m.name != "you").collect();
    let online = others.iter().filter(|m| m.online).count();
    let pending = if status.files_pending_down == 0 {
        format!("all {} file(s) here", status.files)
    } else {
        format!(
            "{} of {} file(s) to fetch, {} of {} here",
            status.files_pending_down,
            status.files,
            indicatif::HumanBytes(bytes_here(status)),
            indicatif::HumanBytes(status.bytes)
        )
    };
    format!(
        "{pending} | {online} of {} member(s) online | {} conflict(s) | {} change(s) refused",
        others.len(),
        status.conflicts.len(),
        status.rejected_changes
    )
}

/// A bar of the bytes here out of the bytes the document describes, with
/// the [`progress_line`] as its message; drawn on stderr when it is a
/// terminal (hidden otherwise).
fn sync_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg}\n[{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

fn show(bar: &indicatif::ProgressBar, status: &ShareStatusView) {
    bar.set_message(format!("{}: {}", status.share.name, progress_line(status)));
    bar.set_length(status.bytes);
    bar.set_position(bytes_here(status));
}

/// `hearth share status SHARE --watch`: the status again every second until
/// Ctrl-C. A progress bar on a terminal; otherwise (or with `--json`) one
/// line per refresh, so the output can be piped or logged. Stops quietly
/// when stdout is closed.
async fn watch_status(client: &Client, share: &str, json: bool) -> Result<()> {
    use std::io::{IsTerminal, Write};
    let bar = (!json && std::io::stderr().is_terminal()).then(sync_bar);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let status = tokio::select! {
            r = &mut ctrl_c => {
                r.context("cannot watch Ctrl-C")?;
                break;
            }
            status = async {
                tick.tick().await;
                client.share_status(share).await
            } => status?,
        };
        let line = match &bar {
            Some(bar) => {
                show(bar, &status);
                continue;
            }
            None if json => serde_json::to_string(&status)?,
            None => format!(
                "{} {}: {}",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
                status.share.name,
                progress_line(&status)
            ),
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(()); // the reader went away (`| head`)
        }
    }
    if let Some(bar) = bar {
        bar.abandon();
    }
    Ok(())
}

/// Shows the initial sync of a share as a progress bar (bytes received of
/// the bytes the document describes, files still to fetch) until nothing is
/// left to fetch.
async fn wait_for_first_sync(client: &Client, share: &str) -> Result<()> {
    let bar = sync_bar();
    let started = std::time::Instant::now();
    loop {
        let status = client.share_status(share).await?;
        show(&bar, &status);
        let document_arrived = status.doc_changes > 1 || status.files > 0;
        if document_arrived && status.files_pending_down == 0 {
            bar.finish_and_clear();
            println!(
                "{} file(s), {} folder(s), {} bytes in {:.1?}",
                status.files,
                status.folders,
                status.bytes,
                started.elapsed()
            );
            return Ok(());
        }
        if !status.members.iter().any(|m| m.role == "owner" && m.online) && started.elapsed().as_secs() > 30 {
            bar.abandon();
            anyhow::bail!("the owner is not online; the folder will sync when they are (see `hearth share status`)");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn up(home: &Home) -> Result<()> {
    let node = crate::node::start(home).await?;
    eprintln!("hearth is up: peer {} , API http://{} (Ctrl-C to stop)", node.peer_id, node.api_addr);
    wait_for_signal().await?;
    tracing::info!("stopping");
    node.stop().await
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot watch Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<()> {
    tokio::signal::ctrl_c().await.context("cannot watch Ctrl-C")
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_contacts(contacts: &[ContactView]) {
    if contacts.is_empty() {
        println!("no contacts yet: `hearth invite` here, `hearth join TOKEN` on the other node");
        return;
    }
    println!("{:<20} {:<8} {:<8} {:<22} PEER ID", "NAME", "STATUS", "LINK", "LAST SEEN");
    for c in contacts {
        let status = if c.online {
            "online"
        } else if c.refused_by_them {
            "refused"
        } else {
            "offline"
        };
        let link = c.link.as_deref().or(c.last_link.as_deref()).unwrap_or("-");
        let seen = c.last_seen.as_deref().unwrap_or("never");
        println!("{:<20} {:<8} {:<8} {:<22} {}", c.name, status, link, seen, c.peer_id);
    }
}
