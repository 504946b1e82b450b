//! Both nodes restart on new ports at once: their last known addresses are
//! all stale, so only mDNS can bring them together again.
//!
//! mDNS never uses the loopback interface, so this test builds a tiny LAN of
//! its own: two Linux network namespaces joined by a veth pair, on private
//! addresses that exist only inside them. It needs root (or CAP_NET_ADMIN)
//! and `ip`; without them it is skipped with a message saying why.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{set_network, wait_for, Runner};

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

fn configure(home: &Path, quic: u16, tcp: u16) {
    set_network(home, &[format!("/ip4/0.0.0.0/udp/{quic}/quic-v1"), format!("/ip4/0.0.0.0/tcp/{tcp}")], true);
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
    let (in_a, in_b) = (Runner::in_netns(&lan.a), Runner::in_netns(&lan.b));
    in_a.ok(&a, &["init", "--name", "alice"]);
    in_b.ok(&b, &["init", "--name", "bob"]);
    configure(&a, 0, 0);
    configure(&b, 0, 0);

    let up_a = in_a.up(&a);
    let up_b = in_b.up(&b);
    let token = in_a.ok(&a, &["invite"]).trim().to_owned();
    in_b.ok(&b, &["join", &token]);
    wait_for(Duration::from_secs(20), || in_a.online(&a, "bob") && in_b.online(&b, "alice"));
    assert!(up_a.terminate().success());
    assert!(up_b.terminate().success());

    // Both move to ports nobody has seen: every stored address is stale.
    configure(&a, 41101, 41102);
    configure(&b, 41201, 41202);
    let started = Instant::now();
    let _up_a = in_a.up(&a);
    let _up_b = in_b.up(&b);
    wait_for(Duration::from_secs(30), || in_a.online(&a, "bob") && in_b.online(&b, "alice"));
    eprintln!("found each other again through mDNS after {:?}", started.elapsed());
    let list = in_a.contacts(&a);
    let addrs = list[0]["addresses"].to_string();
    assert!(addrs.contains("41201") || addrs.contains("41202"), "bob's new address learned: {addrs}");
}
