//! A real browser for the web interface's tests: headless Chromium driven
//! through WebDriver (W3C protocol, JSON over HTTP) by Debian's
//! `chromedriver`, on 127.0.0.1 only.
//!
//! The client is the few WebDriver commands the tests use, on the same
//! HTTP client as the rest of the tests, plus two Chrome DevTools commands
//! through chromedriver's `goog/cdp/execute` (device metrics for the phone
//! width, full-page screenshots). Clicks and typing go through WebDriver's
//! element commands, so they act like a person's: on visible, enabled
//! elements only. Each [`Browser`] is its own Chromium with a fresh profile
//! (its own cookies, like another person's machine); a browser left open
//! by a failing test is killed when dropped, and so is the driver.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// The flags every Chromium here starts with: headless, and none of the
/// background connections that the closed network refuses.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn binary(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    path.is_file().then_some(path)
}

/// A running `chromedriver`.
pub struct Driver {
    child: Child,
    base: String,
    chromium: PathBuf,
    http: reqwest::Client,
}

impl Driver {
    /// Starts chromedriver on a free loopback port. Fails, saying how to
    /// install them, when Chromium or its driver is missing
    /// (`HEARTH_CHROMIUM` and `HEARTH_CHROMEDRIVER` override the paths).
    pub async fn start() -> Result<Self> {
        let chromium = binary("HEARTH_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("HEARTH_CHROMEDRIVER", "/usr/bin/chromedriver");
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            bail!(
                "the web interface tests need Chromium and its WebDriver: `apt-get install -y chromium chromium-driver` \
                 (Debian; .ci/run installs them), or set HEARTH_CHROMIUM and HEARTH_CHROMEDRIVER"
            );
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", chromedriver.display()))?;
        let http = reqwest::Client::builder().timeout(COMMAND_TIMEOUT).build()?;
        let driver = Self { child, base: format!("http://127.0.0.1:{port}"), chromium, http };
        crate::eventually(Duration::from_secs(20), "chromedriver to answer", || async {
            let status: Value = driver.http.get(format!("{}/status", driver.base)).send().await?.json().await?;
            Ok(status["value"]["ready"] == true)
        })
        .await?;
        Ok(driver)
    }

    /// A new Chromium with an empty profile that asks for pages in
    /// `language` first (its `Accept-Language`).
    pub async fn browser(&self, language: &str) -> Result<Browser> {
        let profile = tempfile::Builder::new().prefix("hearth-chromium-").tempdir()?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--lang={language}"));
        args.push("--window-size=1280,800".into());
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": self.chromium,
                    "args": args,
                    "prefs": { "intl": { "accept_languages": language } },
                },
            }}
        });
        let answer: Value =
            self.http.post(format!("{}/session", self.base)).json(&capabilities).send().await?.json().await?;
        let value = &answer["value"];
        let Some(id) = value["sessionId"].as_str() else {
            bail!("chromedriver could not start Chromium: {}", value["message"]);
        };
        Ok(Browser {
            http: self.http.clone(),
            session: format!("{}/session/{id}", self.base),
            chromium_pid: value["capabilities"]["goog:processID"].as_u64().map(|p| p as u32),
            _profile: profile,
            closed: false,
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Chromium, one tab.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    chromium_pid: Option<u32>,
    _profile: tempfile::TempDir,
    closed: bool,
}

/// An element found on the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.session);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("WebDriver {path}"))?;
        let ok = response.status().is_success();
        let answer: Value = response.json().await.with_context(|| format!("WebDriver {path} answered no JSON"))?;
        if !ok {
            bail!("WebDriver {path}: {} ({})", answer["value"]["error"], answer["value"]["message"]);
        }
        Ok(answer["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).await.map(|_| ())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// The first element matching `css`, if any.
    pub async fn find(&self, css: &str) -> Result<Option<Element>> {
        let value =
            self.command(reqwest::Method::POST, "/elements", Some(json!({ "using": "css selector", "value": css })));
        let all = value.await?;
        Ok(all
            .as_array()
            .and_then(|a| a.first())
            .and_then(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element(id.to_owned())))
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css).await? {
                return Ok(e);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for `{css}` on {}", self.url().await.unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until some element matching `css` shows text containing `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> Result<()> {
        let script = "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText).join('\\n---\\n');";
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let text = self.eval(script, vec![json!(css)]).await?;
            let text = text.as_str().unwrap_or_default();
            if text.contains(needle) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for {needle:?} in `{css}`; it shows: {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of the elements matching `css`.
    pub async fn text(&self, css: &str) -> Result<String> {
        let script = "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText).join('\\n');";
        Ok(self.eval(script, vec![json!(css)]).await?.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `act` on the element matching `css` (waiting for it first). The
    /// pages re-render parts of themselves when the node's state changes;
    /// an element replaced between finding and acting is found again.
    async fn on_element<F, Fut>(&self, css: &str, timeout: Duration, what: &str, mut act: F) -> Result<()>
    where
        F: FnMut(Element) -> Fut,
        Fut: std::future::Future<Output = Result<Value>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let e = self.wait_for(css, timeout).await?;
            match act(e).await {
                Ok(_) => return Ok(()),
                Err(err) if err.to_string().contains("stale element") && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => return Err(err).with_context(|| format!("{what} `{css}`")),
            }
        }
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str, timeout: Duration) -> Result<()> {
        self.on_element(css, timeout, "click", |e| self.post_owned(format!("/element/{}/click", e.0), json!({}))).await
    }

    /// Clears the field matching `css` and types `text` into it (for a file
    /// input, `text` is the file's path).
    pub async fn type_into(&self, css: &str, text: &str, timeout: Duration) -> Result<()> {
        self.on_element(css, timeout, "type into", |e| async move {
            let is_file = self.eval("return arguments[0].type === 'file';", vec![json!({ ELEMENT_KEY: e.0 })]).await?;
            if is_file != true {
                self.post(&format!("/element/{}/clear", e.0), json!({})).await?;
            }
            self.post(&format!("/element/{}/value", e.0), json!({ "text": text })).await
        })
        .await
    }

    async fn post_owned(&self, path: String, body: Value) -> Result<Value> {
        self.post(&path, body).await
    }

    /// Picks the option with value `value` of the `<select>` matching `css`,
    /// as a person would (click on the option).
    pub async fn select(&self, css: &str, value: &str, timeout: Duration) -> Result<()> {
        self.click(&format!("{css} option[value=\"{value}\"]"), timeout).await
    }

    /// Accepts the open `confirm()` dialog.
    pub async fn accept_dialog(&self) -> Result<()> {
        self.post("/alert/accept", json!({})).await.map(|_| ())
    }

    /// The browser's cookies for the current page, as (name, value); unlike
    /// the page's script, WebDriver sees HttpOnly cookies too.
    pub async fn cookies(&self) -> Result<Vec<(String, String)>> {
        let all = self.command(reqwest::Method::GET, "/cookie", None).await?;
        Ok(all
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (c["name"].as_str().unwrap_or_default().to_owned(), c["value"].as_str().unwrap_or_default().to_owned())
            })
            .collect())
    }

    /// The page's address.
    pub async fn url(&self) -> Result<String> {
        let v = self.command(reqwest::Method::GET, "/url", None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    async fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params })).await
    }

    /// Lays the page out for a screen `width` x `height` CSS pixels wide
    /// (`mobile`: a phone's viewport and touch).
    pub async fn set_screen(&self, width: u32, height: u32, mobile: bool) -> Result<()> {
        let metrics = json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile });
        self.cdp("Emulation.setDeviceMetricsOverride", metrics).await?;
        self.cdp("Emulation.setTouchEmulationEnabled", json!({ "enabled": mobile })).await?;
        Ok(())
    }

    /// A PNG of the whole page at the current screen width, written to
    /// `path`. The screen is made as tall as the page for the shot, so that
    /// what is fixed to the bottom of the screen (the phone's navigation)
    /// shows at the bottom of the page.
    pub async fn screenshot(&self, path: &Path, width: u32, height: u32, mobile: bool) -> Result<()> {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
        let page_height = metrics["cssContentSize"]["height"].as_f64().unwrap_or(0.0).ceil() as u32;
        let tall = page_height.clamp(height, 12_000);
        self.set_screen(width, tall, mobile).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let shot = self.cdp("Page.captureScreenshot", json!({ "format": "png" })).await;
        self.set_screen(width, height, mobile).await?;
        let shot = shot?;
        let data = shot["data"].as_str().ok_or_else(|| anyhow!("no screenshot data"))?;
        let png = data_encoding::BASE64.decode(data.as_bytes())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Closes the browser.
    pub async fn close(mut self) -> Result<()> {
        self.closed = true;
        self.command(reqwest::Method::DELETE, "", None).await.map(|_| ())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed half-way never closed its session: Chromium
        // would outlive the driver (it ignores the driver's exit).
        if let (false, Some(pid)) = (self.closed, self.chromium_pid) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// Where screenshots go: `ui-screenshots/` in the cargo target directory
/// in use (found from the test binary's own path, `TARGET/debug/deps/X`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()));
    target.unwrap_or_else(|| PathBuf::from("target")).join("ui-screenshots")
}
