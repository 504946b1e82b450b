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

    /// `hearth --home HOME ARGS --json`, asserting success, parsed.
    pub fn json(&self, home: &Path, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(home, &all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("hearth {all:?} printed no JSON ({e}): {out}"))
    }

    /// Starts `hearth up` and waits until its API answers.
    pub fn up(&self, home: &Path) -> Up {
        self.up_logging(home, None)
    }

    /// Like [`Runner::up`], appending the node's log (stderr) to `log`.
    pub fn up_logging(&self, home: &Path, log: Option<&Path>) -> Up {
        let _ = std::fs::remove_file(home.join("api.json"));
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open the node's log"),
            ),
            None => Stdio::null(),
        };
        let child = self.command(home).arg("up").stdout(Stdio::null()).stderr(stderr).spawn().expect("start hearth up");
        let up = Up(child);
        wait_for(Duration::from_secs(20), || self.run(home, &["status"]).status.success());
        up
    }

    /// Starts `hearth --home HOME ARGS` with stdout piped, killed on drop.
    pub fn spawn(&self, home: &Path, args: &[&str]) -> Up {
        Up(self.command(home).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn hearth"))
    }

    /// Pairs two running nodes (`invite` on `a`, `join` on `b`) and waits
    /// until each lists the other online under the names `a_name` (on `b`)
    /// and `b_name` (on `a`).
    pub fn pair(&self, a: &Path, a_name: &str, b: &Path, b_name: &str) {
        let token = self.ok(a, &["invite"]).trim().to_owned();
        assert!(self.ok(b, &["join", &token]).contains(&format!("paired with {a_name}")));
        wait_for(Duration::from_secs(30), || self.online(a, b_name) && self.online(b, a_name));
    }
}

/// A `hearth` process (usually `up`), killed if the test ends without
/// stopping it: a failing assertion never leaves a node running.
pub struct Up(Child);

impl Up {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL (no chance to clean up, like a power cut or the OOM killer),
    /// then waits for the process to be gone.
    pub fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("wait");
    }

    /// The child, e.g. to read its piped stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.0
    }

    /// SIGTERM, then the exit status (fails the test after 15 s).
    pub fn terminate(self) -> std::process::ExitStatus {
        self.signal("TERM")
    }

    /// SIGINT (Ctrl-C), then the exit status (fails the test after 15 s).
    pub fn interrupt(self) -> std::process::ExitStatus {
        self.signal("INT")
    }

    fn signal(mut self, name: &str) -> std::process::ExitStatus {
        Command::new("kill").args([&format!("-{name}"), &self.0.id().to_string()]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "hearth did not stop on SIG{name}");
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

/// The lines a child prints on stdout, read by a thread so that waiting for
/// one is bounded in time.
pub struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    /// Takes the child's stdout (spawned with it piped).
    pub fn of(child: &mut Child) -> Self {
        use std::io::BufRead;
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self(rx)
    }

    /// The next line; fails the test after `timeout` or at end of output.
    pub fn next(&self, timeout: Duration) -> String {
        self.0.recv_timeout(timeout).unwrap_or_else(|e| panic!("no line within {timeout:?}: {e}"))
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

/// Listen on 127.0.0.1 only (QUIC and TCP, any port), mDNS off.
pub fn loopback_only(home: &Path) {
    set_network(home, &["/ip4/127.0.0.1/udp/0/quic-v1".into(), "/ip4/127.0.0.1/tcp/0".into()], false);
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
