//! The node's home directory: everything that makes a node itself.
//!
//! ```text
//! HOME/identity.key   ed25519 keypair (libp2p protobuf encoding), mode 0600
//! HOME/api-token      bearer token of the HTTP API, mode 0600
//! HOME/config.toml    configuration (see config.rs)
//! HOME/hearth.redb    the database (see store/tables.rs)
//! HOME/api.json       written while the node runs: API address and pid
//! ```
//! `hearth init` creates what is missing and never replaces an identity.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libp2p::identity::Keypair;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// Paths inside one home.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// What `api.json` holds while the node runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiInfo {
    /// Where the API listens.
    pub addr: std::net::SocketAddr,
    /// The node's process id.
    pub pid: u32,
    /// The node's peer id.
    pub peer_id: String,
}

/// What `init` did.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The home directory.
    pub home: PathBuf,
    /// The node's peer id.
    pub peer_id: String,
    /// The node's name.
    pub name: String,
    /// False when the home already had an identity.
    pub created: bool,
}

impl Home {
    /// The home at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `--home`, else `$HEARTH_HOME`, else the platform data directory.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Self> {
        if let Some(dir) = flag.or_else(|| std::env::var_os("HEARTH_HOME").map(PathBuf::from)) {
            return Ok(Self::new(dir));
        }
        let dirs = directories::ProjectDirs::from("org", "Hearth", "hearth")
            .context("cannot find a data directory for this user: pass --home DIR or set HEARTH_HOME")?;
        Ok(Self::new(dirs.data_dir()))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a file inside the home.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.path("config.toml")
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.path("hearth.redb")
    }

    /// Creates whatever is missing. Never replaces an existing identity,
    /// token or configuration; `name` is used only for a new configuration.
    pub fn init(&self, name: Option<&str>) -> Result<InitReport> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create the home directory {}", self.root.display()))?;
        restrict_dir(&self.root)?;
        let key_path = self.path("identity.key");
        let created = !key_path.exists();
        if created {
            let key = Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().context("cannot encode the new identity")?;
            write_atomic(&key_path, &bytes, true)?;
        }
        let token_path = self.path("api-token");
        if !token_path.exists() {
            let token: [u8; 32] = rand::random();
            write_atomic(&token_path, hex::encode(token).as_bytes(), true)?;
        }
        let config_path = self.config_path();
        if !config_path.exists() {
            let name = hearth_protocol::names::validate_name(name.unwrap_or(&default_name()))?;
            Config::new(name).save(&config_path)?;
        }
        let config = Config::load(&config_path)?;
        // Creating the database now surfaces a permission problem at init
        // rather than at the first `up`.
        crate::store::Store::open(&self.db_path())?;
        let key = self.identity()?;
        Ok(InitReport {
            home: self.root.clone(),
            peer_id: key.public().to_peer_id().to_string(),
            name: config.name,
            created,
        })
    }

    /// Loads the identity, refusing one that others could read.
    pub fn identity(&self) -> Result<Keypair> {
        let path = self.path("identity.key");
        if !path.exists() {
            bail!(
                "{} is not a Hearth home yet: run `hearth --home {} init` first",
                self.root.display(),
                self.root.display()
            );
        }
        check_private(&path)?;
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("{} is not a valid identity key (corrupted?)", path.display()))
    }

    /// The API bearer token.
    pub fn api_token(&self) -> Result<String> {
        let path = self.path("api-token");
        let token = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the API token {}: is {} a Hearth home? (`hearth init`)",
                path.display(),
                self.root.display()
            )
        })?;
        Ok(token.trim().to_owned())
    }

    /// Loads the configuration.
    pub fn config(&self) -> Result<Config> {
        Config::load(&self.config_path())
    }

    /// Records where the running node's API is.
    pub fn write_api_info(&self, info: &ApiInfo) -> Result<()> {
        write_atomic(&self.path("api.json"), &serde_json::to_vec_pretty(info)?, false)
    }

    /// Where the running node's API is, if a node ran here.
    pub fn api_info(&self) -> Result<ApiInfo> {
        let path = self.path("api.json");
        let text = std::fs::read(&path).with_context(|| {
            format!(
                "no node is running in {}: start one with `hearth --home {} up`",
                self.root.display(),
                self.root.display()
            )
        })?;
        serde_json::from_slice(&text).with_context(|| format!("{} is corrupted; restart the node", path.display()))
    }

    /// Removes `api.json` at shutdown.
    pub fn clear_api_info(&self) {
        let _ = std::fs::remove_file(self.path("api.json"));
    }
}

fn default_name() -> String {
    std::env::var("USER").ok().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "hearth".into())
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename, so a
/// crash leaves either the old or the new content. `private` makes it 0600.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let dir = path.parent().context("path has no parent directory")?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by other users (mode {mode:o}); fix it with `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict access to {}", dir.display()))
}

#[cfg(not(unix))]
fn restrict_dir(_: &Path) -> Result<()> {
    Ok(())
}
