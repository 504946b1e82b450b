//! The HTTP client of a running node's API, used by the CLI and the tests.
//! It finds the node through its home: `api.json` for the address,
//! `api-token` for the bearer token.

use anyhow::{anyhow, Context, Result};
use serde::{de::DeserializeOwned, Serialize};

use crate::bank::alerts::{Hook, Notification, RuleView};
use crate::bank::views::ViewInfo;
use crate::bank::{
    AccountView, AlertAddRequest, AnnotateRequest, BankShareRequest, HookRequest, ImportQuery, ImportReport,
    OperationView,
};
use crate::home::Home;
use crate::share::{ShareStatusView, ShareView, VersionView};
use crate::views::{
    ContactView, ErrorBody, InvitationView, InviteRequest, InviteView, JoinRequest, ShareCreateRequest,
    ShareInviteRequest, SharePathRequest, ShareRestoreRequest, ShareRoleRequest, StatusView,
};

/// A client bound to one node.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    home: String,
}

/// How long a call that reads a whole folder may take (`share create`,
/// `share scan`); other calls give up after a minute.
const LONG: std::time::Duration = std::time::Duration::from_secs(3600);

impl Client {
    /// The client of the node running in `home`.
    pub fn from_home(home: &Home) -> Result<Self> {
        let info = home.api_info()?;
        Ok(Self::new(&format!("http://{}", info.addr), home.api_token()?, home.root().display().to_string()))
    }

    /// A client for the API at `base` (e.g. `http://127.0.0.1:1234`).
    pub fn new(base: &str, token: String, home: String) -> Self {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build().unwrap_or_default();
        Self { http, base: base.trim_end_matches('/').to_owned(), token, home }
    }

    async fn call<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "the node of {} is not running (nothing answers at {}): start it with `hearth --home {} up`",
                    self.home,
                    self.base,
                    self.home
                )
            } else {
                anyhow!("cannot talk to the node at {}: {e}", self.base)
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.context("the node sent an unreadable answer");
        }
        let body: Option<ErrorBody> = response.json().await.ok();
        Err(anyhow!(body.map(|b| b.error).unwrap_or_else(|| format!("the node answered {status}"))))
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post<B: Serialize>(&self, path: &str, body: &B) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).json(body)
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusView> {
        self.call(self.get("/v1/status")).await
    }

    /// `POST /v1/invitations`.
    pub async fn invite(&self, ttl_secs: Option<u64>) -> Result<InviteView> {
        self.call(self.post("/v1/invitations", &InviteRequest { ttl_secs })).await
    }

    /// `GET /v1/invitations`.
    pub async fn invitations(&self) -> Result<Vec<InvitationView>> {
        self.call(self.get("/v1/invitations")).await
    }

    /// `POST /v1/join`.
    pub async fn join(&self, token: &str, name: Option<&str>) -> Result<ContactView> {
        let body = JoinRequest { token: token.to_owned(), name: name.map(str::to_owned) };
        self.call(self.post("/v1/join", &body)).await
    }

    /// `GET /v1/contacts`.
    pub async fn contacts(&self) -> Result<Vec<ContactView>> {
        self.call(self.get("/v1/contacts")).await
    }

    /// `POST /v1/ui/login-link`: a one-time login link for the web
    /// interface, with its full URL on the address this client uses.
    pub async fn ui_login_link(&self) -> Result<crate::ui::LoginLinkView> {
        let mut link: crate::ui::LoginLinkView = self.call(self.post("/v1/ui/login-link", &())).await?;
        link.url = format!("{}{}", self.base, link.path);
        Ok(link)
    }

    /// `DELETE /v1/contacts/{name}`.
    pub async fn remove_contact(&self, name: &str) -> Result<ContactView> {
        let url = format!("{}/v1/contacts/{}", self.base, percent_encode(name));
        self.call(self.http.delete(url)).await
    }
}

impl Client {
    /// `POST /v1/shares`.
    pub async fn share_create(&self, path: &str, name: Option<&str>) -> Result<ShareView> {
        let body = ShareCreateRequest { path: path.to_owned(), name: name.map(str::to_owned) };
        // The node records every existing file before it answers: the
        // first scan of a large folder takes as long as reading it.
        self.call(self.post("/v1/shares", &body).timeout(LONG)).await
    }

    /// `GET /v1/shares`.
    pub async fn shares(&self) -> Result<Vec<ShareView>> {
        self.call(self.get("/v1/shares")).await
    }

    /// `GET /v1/shares/{share}`.
    pub async fn share_status(&self, share: &str) -> Result<ShareStatusView> {
        self.call(self.get(&format!("/v1/shares/{}", percent_encode(share)))).await
    }

    /// `POST /v1/shares/{share}/invite`.
    pub async fn share_invite(&self, share: &str, contact: &str, read_only: bool) -> Result<Option<ShareView>> {
        let body = ShareInviteRequest { contact: contact.to_owned(), read_only };
        self.call(self.post(&format!("/v1/shares/{}/invite", percent_encode(share)), &body)).await
    }

    /// `POST /v1/shares/{share}/accept`.
    pub async fn share_accept(&self, share: &str, path: &str) -> Result<ShareView> {
        let body = SharePathRequest { path: path.to_owned() };
        self.call(self.post(&format!("/v1/shares/{}/accept", percent_encode(share)), &body)).await
    }

    /// `POST /v1/shares/{share}/decline`.
    pub async fn share_decline(&self, share: &str) -> Result<ShareView> {
        self.call(self.post(&format!("/v1/shares/{}/decline", percent_encode(share)), &())).await
    }

    /// `POST /v1/shares/{share}/leave`.
    pub async fn share_leave(&self, share: &str) -> Result<ShareView> {
        self.call(self.post(&format!("/v1/shares/{}/leave", percent_encode(share)), &())).await
    }

    /// `POST /v1/shares/{share}/role` (`None` removes the member).
    pub async fn share_set_role(&self, share: &str, contact: &str, role: Option<&str>) -> Result<ShareStatusView> {
        let body = ShareRoleRequest { contact: contact.to_owned(), role: role.map(str::to_owned) };
        self.call(self.post(&format!("/v1/shares/{}/role", percent_encode(share)), &body)).await
    }

    /// `POST /v1/shares/{share}/scan`: record local edits and write remote
    /// ones now; returns what was recorded and written.
    pub async fn share_scan(&self, share: &str) -> Result<serde_json::Value> {
        self.call(self.post(&format!("/v1/shares/{}/scan", percent_encode(share)), &()).timeout(LONG)).await
    }

    /// `GET /v1/shares/{share}/trash`.
    pub async fn share_trash(&self, share: &str) -> Result<Vec<VersionView>> {
        self.call(self.get(&format!("/v1/shares/{}/trash", percent_encode(share)))).await
    }

    /// `GET /v1/shares/{share}/files?limit=N`: entries and conflicts.
    pub async fn share_files(&self, share: &str, limit: Option<usize>) -> Result<crate::share::listing::FilesView> {
        let limit = limit.map(|l| l.to_string());
        let url =
            format!("{}/v1/shares/{}/files{}", self.base, percent_encode(share), query_string(&[("limit", &limit)]));
        self.call(self.http.get(url)).await
    }

    /// `GET /v1/shares/{share}/versions?path=PATH`.
    pub async fn share_versions(&self, share: &str, path: &str) -> Result<Vec<VersionView>> {
        let url = format!("{}/v1/shares/{}/versions?path={}", self.base, percent_encode(share), percent_encode(path));
        self.call(self.http.get(url)).await
    }

    /// `POST /v1/shares/{share}/restore`.
    pub async fn share_restore(&self, share: &str, path: &str, version: Option<usize>) -> Result<Vec<VersionView>> {
        let body = ShareRestoreRequest { path: path.to_owned(), version };
        self.call(self.post(&format!("/v1/shares/{}/restore", percent_encode(share)), &body)).await
    }

    /// `GET /v1/shares/{share}/doc`: the Automerge document bytes.
    pub async fn share_doc(&self, share: &str) -> Result<Vec<u8>> {
        let url = format!("{}/v1/shares/{}/doc", self.base, percent_encode(share));
        let response = self.http.get(url).bearer_auth(&self.token).send().await?;
        if !response.status().is_success() {
            let body: Option<ErrorBody> = response.json().await.ok();
            return Err(anyhow!(body.map(|b| b.error).unwrap_or_else(|| "cannot read the document".into())));
        }
        Ok(response.bytes().await?.to_vec())
    }
}

impl Client {
    /// `POST /v1/bank/import` with the file's bytes.
    pub async fn bank_import(&self, bytes: Vec<u8>, query: &ImportQuery) -> Result<ImportReport> {
        let pairs = [
            ("format", &query.format),
            ("account", &query.account),
            ("csv_preset", &query.csv_preset),
            ("csv_map", &query.csv_map),
        ];
        let request = self
            .http
            .post(format!("{}/v1/bank/import{}", self.base, query_string(&pairs)))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.call(request).await
    }

    /// `POST /v1/backup`: any backup operation, its JSON answer. Runs,
    /// audits and restores may take long.
    pub async fn backup(&self, op: &crate::backup::BackupOp) -> Result<serde_json::Value> {
        use crate::backup::BackupOp::*;
        let request = self.post("/v1/backup", op);
        let request = match op {
            Run | Restore { .. } | Audit | Forget(_) | FriendsAdd { .. } | HostingAnswer { .. } => {
                request.timeout(LONG)
            }
            _ => request,
        };
        self.call(request).await
    }

    /// `GET /v1/bank/accounts`.
    pub async fn bank_accounts(&self) -> Result<Vec<AccountView>> {
        self.call(self.get("/v1/bank/accounts")).await
    }

    /// `GET /v1/bank/accounts/{account}/operations[?since=DATE]`.
    pub async fn bank_operations(&self, account: &str, since: Option<&str>) -> Result<Vec<OperationView>> {
        let since = since.map(str::to_owned);
        let url = format!(
            "{}/v1/bank/accounts/{}/operations{}",
            self.base,
            percent_encode(account),
            query_string(&[("since", &since)])
        );
        self.call(self.http.get(url)).await
    }

    /// `POST /v1/bank/accounts/{account}/share`.
    pub async fn bank_share(&self, account: &str, contact: &str, since: Option<&str>) -> Result<Option<ViewInfo>> {
        let body = BankShareRequest { contact: contact.to_owned(), since: since.map(str::to_owned) };
        self.call(self.post(&format!("/v1/bank/accounts/{}/share", percent_encode(account)), &body)).await
    }

    /// `POST /v1/bank/accounts/{account}/unshare`.
    pub async fn bank_unshare(&self, account: &str, contact: &str) -> Result<Option<ViewInfo>> {
        let body = BankShareRequest { contact: contact.to_owned(), since: None };
        self.call(self.post(&format!("/v1/bank/accounts/{}/unshare", percent_encode(account)), &body)).await
    }

    /// `POST /v1/bank/accounts/{account}/operations/{key}`: the owner's note
    /// and category of one operation.
    pub async fn bank_annotate(&self, account: &str, key: &str, request: &AnnotateRequest) -> Result<OperationView> {
        let path = format!("/v1/bank/accounts/{}/operations/{}", percent_encode(account), percent_encode(key));
        self.call(self.post(&path, request)).await
    }

    /// `POST /v1/bank/alerts`.
    pub async fn bank_alert_add(&self, request: &AlertAddRequest) -> Result<Option<RuleView>> {
        self.call(self.post("/v1/bank/alerts", request)).await
    }

    /// `GET /v1/bank/alerts`.
    pub async fn bank_alerts(&self) -> Result<Vec<RuleView>> {
        self.call(self.get("/v1/bank/alerts")).await
    }

    /// `DELETE /v1/bank/alerts/{id}`.
    pub async fn bank_alert_remove(&self, id: u64) -> Result<serde_json::Value> {
        self.call(self.http.delete(format!("{}/v1/bank/alerts/{id}", self.base))).await
    }

    /// `POST /v1/bank/alerts/hook`.
    pub async fn bank_set_hook(&self, hook: Option<Hook>) -> Result<Option<Hook>> {
        self.call(self.post("/v1/bank/alerts/hook", &HookRequest { hook })).await
    }

    /// `GET /v1/bank/notifications`.
    pub async fn bank_notifications(&self) -> Result<Vec<Notification>> {
        self.call(self.get("/v1/bank/notifications")).await
    }

    /// `GET /v1/bank/views`: views received (and written).
    pub async fn bank_views(&self) -> Result<Vec<ViewInfo>> {
        self.call(self.get("/v1/bank/views")).await
    }

    /// `GET /v1/bank/accounts/{account}/export`: the Cozy Banks shape, as
    /// JSON text (its amounts are exact decimals; parsing them as floats
    /// would round them).
    pub async fn bank_export(&self, account: &str) -> Result<String> {
        let url = format!("{}/v1/bank/accounts/{}/export", self.base, percent_encode(account));
        let response = self.http.get(url).bearer_auth(&self.token).send().await?;
        if !response.status().is_success() {
            let body: Option<ErrorBody> = response.json().await.ok();
            return Err(anyhow!(body.map(|b| b.error).unwrap_or_else(|| "cannot export the account".into())));
        }
        Ok(response.text().await?)
    }
}

/// `?k=v&...` of the pairs that have a value, percent-encoded.
fn query_string(pairs: &[(&str, &Option<String>)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", percent_encode(v)))).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encodes a path segment (names may hold spaces and accents).
fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
