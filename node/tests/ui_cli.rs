//! `hearth ui` as a person runs it: it prints a one-time login link on the
//! running node's API address (`--json` for scripts), the link logs a
//! browser in once, and without a running node it says what to do.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{loopback_only, Runner};

/// `GET` of `url` (plain HTTP on loopback); the status line and headers.
fn head_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the node");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[test]
fn hearth_ui_prints_a_one_time_login_link() {
    let hearth = Runner::direct();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("A");
    hearth.ok(&home, &["init", "--name", "alice"]);
    loopback_only(&home);
    assert!(hearth.fails(&home, &["ui", "--no-open"]).contains("no node is running"));

    let _up = hearth.up(&home);
    let url = hearth.ok(&home, &["ui", "--no-open"]).trim().to_owned();
    let api: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("api.json")).expect("api.json")).expect("json");
    let addr = api["addr"].as_str().expect("addr");
    assert!(url.starts_with(&format!("http://{addr}/ui/login?t=")), "{url}");

    let first = head_of(&url);
    assert!(first.starts_with("HTTP/1.1 303"), "{first}");
    assert!(first.to_ascii_lowercase().contains("set-cookie: hearth_"), "{first}");
    let second = head_of(&url);
    assert!(second.starts_with("HTTP/1.1 401"), "a link works once: {second}");

    let link = hearth.json(&home, &["ui", "--no-open"]);
    assert!(link["url"].as_str().is_some_and(|u| u.starts_with("http://127.0.0.1:")), "{link}");
    assert!(link["expires_at_unix"].as_u64().is_some(), "{link}");
    assert!(head_of(link["url"].as_str().unwrap_or_default()).starts_with("HTTP/1.1 303"));
}
