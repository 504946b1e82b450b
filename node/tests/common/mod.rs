//! Helpers shared by the tests that run the `hearth` binary: run a command,
//! keep `hearth up` running in the background, wait for a condition. Every
//! command may run behind a prefix such as `ip netns exec NS`.

#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const HEARTH: &str = env!("CARGO_BIN_EXE_hearth");

/// Where and how to run `hearth`: directly, or inside a network namespace.
#[derive(Clone, Debug, Default)]
pub struct Runner {
    prefix: Vec<String>,
}

impl Runner {
    /// Runs `hearth` directly.
    pub fn direct() -> Self {
        Self::default()
    }

    /// Runs `hearth` inside network namespace `ns`.
    pub fn in_netns(ns: &str) -> Self {
        Self { prefix: vec!["ip".into(), "netns".into(), "exec".into(), ns.into()] }
    }

    fn command(&self, home: &Path) -> Command {
        let mut cmd = match self.prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(HEARTH);
                c
            }
            None => Command::new(HEARTH),
        };
        cmd.arg("--home").arg(home);
        cmd
    }

    /// Runs `hearth --home HOME ARGS` to completion.
    pub fn run(&self, home: &Path, args: &[&str]) -> Output {
        self.command(home).args(args).output().expect("run hearth")
    }

    /// Like [`Runner::run`], asserting success; returns stdout.
    pub fn ok(&self, home: &Path, args: &[&str]) -> String {
        let out = self.run(home, args);
        assert!(out.status.success(), "hearth {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Like [`Runner::run`], asserting failure; returns stderr.
    pub fn fails(&self, home: &Path, args: &[&str]) -> String {
        let out = self.run(home, args);
        assert!(!out.status.success(), "hearth {args:?} should fail");
        String::from_utf8(out.stderr).expect("utf-8")
    }

    /// `hearth contacts --json`, parsed.
    pub fn contacts(&self, home: &Path) -> serde_json::Value {
        serde_json::from_str(&self.ok(home, &["contacts", "--json"])).expect("json")
    }

    /// Whether contact `name` is listed online.
    pub fn online(&self, home: &Path, name: &str) -> bool {
        self.contacts(home).as_array().is_some_and(|all| all.iter().any(|c| c["name"] == name && c["online"] == true))
    }

    /// Starts `hearth up` and waits until its API answers.
    pub fn up(&self, home: &Path) -> Up {
        let _ = std::fs::remove_file(home.join("api.json"));
        let child =
            self.command(home).arg("up").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start hearth up");
        wait_for(Duration::from_secs(20), || self.run(home, &["status"]).status.success());
        Up(child)
    }
}

/// A `hearth up` process, killed if the test ends without stopping it.
pub struct Up(Child);

impl Up {
    /// SIGTERM, then the exit status (fails the test after 15 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "hearth up did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` every 100 ms; fails the test after `timeout`.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rewrites the `listen` and `mdns` settings of a home's config.toml.
pub fn set_network(home: &Path, listen: &[String], mdns: bool) {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let mut config: toml::Table = toml::from_str(&text).expect("toml");
    config.insert("listen".into(), toml::Value::Array(listen.iter().cloned().map(toml::Value::String).collect()));
    config.insert("mdns".into(), toml::Value::Boolean(mdns));
    std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("write config");
}
