//! Both nodes restart on new ports at once: their last known addresses are
//! all stale, so only mDNS can bring them together again.
//!
//! mDNS never uses the loopback interface, so this test builds a tiny LAN of
//! its own: two Linux network namespaces joined by a veth pair, on private
//! addresses that exist only inside them. It needs root (or CAP_NET_ADMIN)
//! and `ip`; without them it is skipped with a message saying why.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HEARTH: &str = env!("CARGO_BIN_EXE_hearth");

struct Lan {
    a: String,
    b: String,
}

impl Lan {
    /// Two namespaces `a` and `b`, joined by a veth pair 10.77.0.1 <-> 10.77.0.2.
    fn create() -> Result<Self, String> {
        let id = std::process::id();
        let lan = Lan { a: format!("hearth-mdns-a-{id}"), b: format!("hearth-mdns-b-{id}") };
        let (va, vb) = (format!("hma{}", id % 100_000), format!("hmb{}", id % 100_000));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &lan.a],
            vec!["netns", "add", &lan.b],
            vec!["link", "add", &va, "netns", &lan.a, "type", "veth", "peer", "name", &vb, "netns", &lan.b],
            vec!["-n", &lan.a, "addr", "add", "10.77.0.1/24", "dev", &va],
            vec!["-n", &lan.b, "addr", "add", "10.77.0.2/24", "dev", &vb],
            vec!["-n", &lan.a, "link", "set", &va, "up"],
            vec!["-n", &lan.b, "link", "set", &vb, "up"],
            vec!["-n", &lan.a, "link", "set", "lo", "up"],
            vec!["-n", &lan.b, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let out = Command::new("ip").args(&step).output().map_err(|e| format!("cannot run ip: {e}"))?;
            if !out.status.success() {
                return Err(format!("`ip {}` failed: {}", step.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn in_ns(ns: &str, home: &Path, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, HEARTH, "--home"])
        .arg(home)
        .args(args)
        .output()
        .expect("run hearth in namespace")
}

fn ok(ns: &str, home: &Path, args: &[&str]) -> String {
    let out = in_ns(ns, home, args);
    assert!(out.status.success(), "hearth {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn configure(home: &Path, quic: u16, tcp: u16) {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let mut out = String::new();
    let mut skip = false;
    for line in text.lines() {
        if line.starts_with("listen") {
            out.push_str(&format!("listen = [\"/ip4/0.0.0.0/udp/{quic}/quic-v1\", \"/ip4/0.0.0.0/tcp/{tcp}\"]\n"));
            skip = !line.contains(']');
            continue;
        }
        if skip {
            skip = !line.contains(']');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    std::fs::write(&path, out).expect("write config");
}

struct Up(Child);

impl Up {
    fn start(ns: &str, home: &Path) -> Self {
        let _ = std::fs::remove_file(home.join("api.json"));
        let child = Command::new("ip")
            .args(["netns", "exec", ns, HEARTH, "--home"])
            .arg(home)
            .arg("up")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hearth up");
        wait_for(Duration::from_secs(20), || in_ns(ns, home, &["status"]).status.success());
        Up(child)
    }

    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn online(ns: &str, home: &Path, name: &str) -> bool {
    let list: serde_json::Value = serde_json::from_str(&ok(ns, home, &["contacts", "--json"])).expect("json");
    list.as_array().is_some_and(|all| all.iter().any(|c| c["name"] == name && c["online"] == true))
}

#[test]
fn both_nodes_move_ports_and_find_each_other_with_mdns() {
    let lan = match Lan::create() {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!("SKIPPED: this test needs network namespaces (root and iproute2): {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b): (PathBuf, PathBuf) = (dir.path().join("A"), dir.path().join("B"));
    ok(&lan.a, &a, &["init", "--name", "alice"]);
    ok(&lan.b, &b, &["init", "--name", "bob"]);
    configure(&a, 0, 0);
    configure(&b, 0, 0);

    let up_a = Up::start(&lan.a, &a);
    let up_b = Up::start(&lan.b, &b);
    let token = ok(&lan.a, &a, &["invite"]).trim().to_owned();
    ok(&lan.b, &b, &["join", &token]);
    wait_for(Duration::from_secs(20), || online(&lan.a, &a, "bob") && online(&lan.b, &b, "alice"));
    up_a.stop();
    up_b.stop();

    // Both move to ports nobody has seen: every stored address is stale.
    configure(&a, 41101, 41102);
    configure(&b, 41201, 41202);
    let started = Instant::now();
    let _up_a = Up::start(&lan.a, &a);
    let _up_b = Up::start(&lan.b, &b);
    wait_for(Duration::from_secs(30), || online(&lan.a, &a, "bob") && online(&lan.b, &b, "alice"));
    eprintln!("found each other again through mDNS after {:?}", started.elapsed());
    let list: serde_json::Value = serde_json::from_str(&ok(&lan.a, &a, &["contacts", "--json"])).expect("json");
    let addrs = list[0]["addresses"].to_string();
    assert!(addrs.contains("41201") || addrs.contains("41202"), "bob's new address learned: {addrs}");
}
