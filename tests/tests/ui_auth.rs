//! Who gets into the web interface, checked at the HTTP level against real
//! nodes on loopback (the browser test, `ui.rs`, shows the same from a
//! person's side): nothing under `/ui/` or `/v1/` answers without a
//! credential; a login link works once and sets an HttpOnly, SameSite=Strict
//! cookie; that cookie opens the pages and the API, but a change made with
//! it needs the interface's header (so a page of another site cannot make
//! one); the session outlives a restart of the node, ends when the API token
//! is replaced or on logout, and one node's cookie means nothing to another
//! node; the bearer token keeps working; the event stream sends a pulse.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use hearth_tests::TestNode;

/// A client that never follows redirects and keeps no cookies.
fn http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()?)
}

/// Opens a login link; returns the session cookie as `name=value`.
async fn log_in(node: &TestNode) -> Result<String> {
    let link = node.client()?.ui_login_link().await?;
    let response = http()?.get(&link.url).send().await?;
    ensure!(response.status() == 303, "the login link answered {}", response.status());
    ensure!(response.headers()["location"] == "/ui/");
    let set = response.headers()["set-cookie"].to_str()?.to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        ensure!(set.contains(attribute), "the cookie lacks {attribute}: {set}");
    }
    Ok(set.split(';').next().context("cookie")?.to_owned())
}

async fn status_with(node: &TestNode, cookie: &str) -> Result<u16> {
    let r = http()?.get(format!("{}/v1/status", node.api_base()?)).header("cookie", cookie).send().await?;
    Ok(r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_login_link_opens_the_interface() -> Result<()> {
    let mut alice = TestNode::start_new("alice").await?;
    let bob = TestNode::start_new("bob").await?;
    let base = alice.api_base()?;
    let client = http()?;

    // Without credentials: a page saying how to log in, and refusals.
    let page = client.get(format!("{base}/ui/")).header("accept-language", "fr-FR,fr;q=0.9").send().await?;
    ensure!(page.status() == 401);
    let text = page.text().await?;
    ensure!(text.contains("hearth ui") && text.contains("lang=\"fr\""), "{text}");
    for path in ["/ui/app.js", "/ui/app.css", "/v1/status", "/v1/events", "/v1/contacts", "/nothing-here"] {
        let r = client.get(format!("{base}{path}")).send().await?;
        ensure!(r.status() == 401, "{path} answered {} without credentials", r.status());
    }
    let r = client.post(format!("{base}/v1/ui/login-link")).send().await?;
    ensure!(r.status() == 401, "a login link without the token");
    ensure!(status_with(&alice, "hearth_00000000=1.2.3").await? == 401, "a made-up cookie");
    ensure!(client.get(&base).send().await?.headers()["location"] == "/ui/", "/ leads to the interface");

    // A link works once; a garbled one is explained.
    let link = alice.client()?.ui_login_link().await?;
    ensure!(link.url.starts_with(&base) && link.url.contains("/ui/login?t="), "{}", link.url);
    ensure!(client.get(&link.url).send().await?.status() == 303);
    let again = client.get(&link.url).send().await?;
    ensure!(again.status() == 401);
    ensure!(again.text().await?.contains("already used"));
    let garbled = client.get(format!("{base}/ui/login?t=abc")).send().await?.text().await?;
    ensure!(garbled.contains("garbled"), "{garbled}");

    // The cookie opens the pages and the API.
    let cookie = log_in(&alice).await?;
    let page = client.get(format!("{base}/ui/")).header("cookie", &cookie).send().await?;
    ensure!(page.status() == 200);
    let csp = page.headers()["content-security-policy"].to_str()?.to_owned();
    ensure!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    ensure!(page.headers()["x-frame-options"] == "DENY");
    ensure!(page.text().await?.contains("/ui/app.js"));
    let script = client.get(format!("{base}/ui/app.js")).header("cookie", &cookie).send().await?;
    ensure!(script.status() == 200 && script.headers()["content-type"].to_str()?.starts_with("text/javascript"));
    ensure!(status_with(&alice, &cookie).await? == 200);

    // A change with the cookie needs the interface's header.
    let invite =
        || client.post(format!("{base}/v1/invitations")).header("cookie", &cookie).json(&serde_json::json!({}));
    let refused = invite().send().await?;
    ensure!(refused.status() == 403, "a cookie-only change answered {}", refused.status());
    ensure!(refused.text().await?.contains("x-hearth-ui"));
    ensure!(invite().header("x-hearth-ui", "1").send().await?.status() == 200);
    // The bearer token needs no such header (the CLI and scripts).
    ensure!(alice.client()?.invite(None).await?.token.starts_with("hearth1"));
    // Only the token makes login links: a session cannot mint more.
    let mint = client.post(format!("{base}/v1/ui/login-link")).header("cookie", &cookie).header("x-hearth-ui", "1");
    ensure!(mint.send().await?.status() == 403, "a session made a login link");

    // The event stream starts with a pulse of the node's state.
    let mut events = client.get(format!("{base}/v1/events")).header("cookie", &cookie).send().await?;
    ensure!(events.headers()["content-type"] == "text/event-stream");
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk()).await??;
        seen.push_str(&String::from_utf8_lossy(&chunk.context("the stream ended")?));
    }
    ensure!(seen.starts_with("event: pulse\ndata: "), "{seen}");
    let pulse: serde_json::Value =
        serde_json::from_str(seen.lines().nth(1).unwrap_or_default()["data: ".len()..].trim())?;
    ensure!(pulse["node"]["name"] == "alice" && pulse["backup"]["restorable"].is_boolean(), "{pulse}");
    drop(events);

    // One node's cookie means nothing to another.
    ensure!(status_with(&bob, &cookie).await? == 401);
    let bobs = log_in(&bob).await?;
    ensure!(bobs.split('=').next() != cookie.split('=').next(), "the two nodes' cookies have different names");

    // The session outlives a restart (the node keeps its token)...
    alice.stop().await?;
    alice.start().await?;
    ensure!(status_with(&alice, &cookie).await? == 200, "a session after a restart");
    // ...ends on logout (for whoever kept a copy of the cookie)...
    let second = log_in(&alice).await?;
    let base = alice.api_base()?;
    let out = client.post(format!("{base}/ui/logout")).header("cookie", &second).send().await?;
    ensure!(out.status() == 403, "logout needs the interface's header too");
    let out =
        client.post(format!("{base}/ui/logout")).header("cookie", &second).header("x-hearth-ui", "1").send().await?;
    ensure!(out.status() == 200 && out.headers()["set-cookie"].to_str()?.contains("Max-Age=0"));
    ensure!(status_with(&alice, &second).await? == 401, "a session after logout");
    ensure!(status_with(&alice, &cookie).await? == 200, "the other session goes on");
    // ...and when the API token is replaced, every session ends.
    alice.stop().await?;
    std::fs::write(alice.root().join("api-token"), "a-new-token-0123456789abcdef0123456789abcdef")?;
    alice.start().await?;
    ensure!(status_with(&alice, &cookie).await? == 401, "a session after the token changed");
    ensure!(alice.client()?.status().await?.name == "alice", "the new token works");
    Ok(())
}
