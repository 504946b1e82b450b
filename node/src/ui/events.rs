//! `GET /v1/events`: server-sent events that keep an open page up to date.
//!
//! Every second the node takes a *pulse*: a small summary of everything
//! the pages show at a glance (contacts online, each share's sync figures,
//! bank balances and alert counts, backup restorability and progress). A
//! pulse that differs from the last one sent is pushed as a `pulse` event;
//! the page updates its header from it and refetches what it shows. So the
//! events carry no state of their own: a missed event costs nothing, and a
//! reconnecting page gets a fresh pulse at once.
//!
//! The pulse is read through the same [`Command`]s as the JSON API, so it
//! needs nothing from the event loop beyond what the API already asks.
//! The stream ends when the event loop is gone, so that a node shutting
//! down is not held open by a browser tab.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::{json, Value};

use crate::api::{ask, ApiError, ApiState};
use crate::net::{BankOp, BankReply, Command, ShareOp, ShareReply};

/// How often the pulse is taken.
pub const PULSE_EVERY: Duration = Duration::from_secs(1);
/// A comment line this often keeps proxies and the browser from timing
/// out, and lets the server notice a page that went away.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The event stream.
pub async fn events(State(state): State<ApiState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold((state, None::<Value>), |(state, last)| async move {
        let mut wait = last.is_some();
        loop {
            if wait {
                tokio::time::sleep(PULSE_EVERY).await;
            }
            wait = true;
            if state.commands.is_closed() {
                return None;
            }
            match pulse(&state).await {
                Ok(now) if last.as_ref() != Some(&now) => {
                    let event = Event::default().event("pulse").data(now.to_string());
                    return Some((Ok(event), (state, Some(now))));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("no pulse this time: {}", e.message),
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

async fn share_json(state: &ApiState, op: ShareOp) -> Result<Value, ApiError> {
    match ask(state, |reply| Command::Share { op, reply }).await?? {
        ShareReply::Json(v) => Ok(v),
        ShareReply::Bytes(_) => Err(ApiError::internal("a share listing answered bytes")),
    }
}

async fn bank_json(state: &ApiState, op: BankOp) -> Result<Value, ApiError> {
    match ask(state, |reply| Command::Bank { op, reply }).await?? {
        BankReply::Json(v) => Ok(v),
        BankReply::JsonText(text) => serde_json::from_str(&text).map_err(ApiError::internal),
    }
}

/// Copies `fields` of `from` (absent ones as `null`).
fn pick(from: &Value, fields: &[&str]) -> Value {
    Value::Object(fields.iter().map(|f| ((*f).to_owned(), from.get(*f).cloned().unwrap_or(Value::Null))).collect())
}

/// The summary described in the module documentation.
pub async fn pulse(state: &ApiState) -> Result<Value, ApiError> {
    let status = ask(state, Command::Status).await?;
    let contacts = ask(state, Command::Contacts).await??;
    let contacts: Vec<Value> = contacts.iter().map(|c| json!({ "name": c.name, "online": c.online })).collect();

    let mut shares = Vec::new();
    for share in share_json(state, ShareOp::List).await?.as_array().into_iter().flatten() {
        let id = share["id"].as_str().unwrap_or_default().to_owned();
        let mut summary = pick(share, &["id", "name", "state", "role"]);
        // A share whose status cannot be read now (say, its document is not
        // there yet) is shown without figures; the rest of the pulse goes on.
        let status = if share["state"] == "active" { share_json(state, ShareOp::Status(id)).await.ok() } else { None };
        if let Some(s) = status {
            let members_online = s["members"].as_array().map(|m| m.iter().filter(|m| m["online"] == true).count());
            summary["members_online"] = json!(members_online);
            summary["conflicts"] = json!(s["conflicts"].as_array().map(Vec::len));
            for f in [
                "files",
                "folders",
                "bytes",
                "files_pending_down",
                "bytes_pending_down",
                "bytes_pending_down_stored",
                "bytes_received",
                "in_trash",
                "rejected_changes",
                "doc_changes",
            ] {
                summary[f] = s[f].clone();
            }
        }
        shares.push(summary);
    }

    let accounts = bank_json(state, BankOp::Accounts).await?;
    let views = bank_json(state, BankOp::Views).await?;
    let notifications = bank_json(state, BankOp::Notifications).await?;
    let notifications = notifications.as_array().cloned().unwrap_or_default();
    let bank = json!({
        "accounts": accounts.as_array().into_iter().flatten()
            .map(|a| pick(a, &["id", "name", "balance", "currency", "operations", "shared_with"])).collect::<Vec<_>>(),
        "views": views.as_array().into_iter().flatten()
            .map(|v| pick(v, &["id", "name", "role", "contact", "state", "balance", "currency", "operations"]))
            .collect::<Vec<_>>(),
        "alerts": notifications.len(),
        "last_alert": notifications.last().map(|n| pick(n, &["id", "on", "message", "date", "detail"])),
    });

    let backup_status = ask(state, |reply| Command::Backup { op: crate::backup::BackupOp::Status, reply }).await??;
    let hosting = ask(state, |reply| Command::Backup { op: crate::backup::BackupOp::Hosting, reply }).await??;
    let mut backup =
        pick(&backup_status, &["restorable", "reachable", "hosts", "k", "snapshots", "progress", "friends"]);
    backup["last_snapshot_time"] = backup_status["last_snapshot"]["time"].clone();
    backup["hosting"] = Value::Array(
        hosting.as_array().into_iter().flatten().map(|h| pick(h, &["owner", "state", "quota", "used"])).collect(),
    );

    Ok(json!({
        "node": { "name": status.name, "peer_id": status.peer_id, "version": status.version },
        "contacts": contacts,
        "shares": shares,
        "bank": bank,
        "backup": backup,
    }))
}
