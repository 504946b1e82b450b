//! The HTTP API, served on 127.0.0.1 only, every route behind the bearer
//! token kept in `HOME/api-token`, or behind a session cookie of the web
//! interface (see [`crate::ui`]), which also serves its pages from here.
//! Handlers are thin: they turn a request into a [`Command`] for the event
//! loop and its answer into JSON.

use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot};

use crate::bank::{
    AlertAddRequest, AnnotateRequest, BankShareRequest, HookRequest, ImportOptions, ImportQuery, OperationsQuery,
};
use crate::net::{BankOp, BankReply, Command, ShareOp, ShareReply};
use crate::views::{
    ErrorBody, InviteRequest, JoinRequest, ShareCreateRequest, ShareInviteRequest, SharePathRequest,
    ShareRestoreRequest, ShareRoleRequest,
};

/// An error with the HTTP status it maps to and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// What went wrong and what to do.
    pub message: String,
}

impl ApiError {
    /// 400: the request cannot be satisfied as given.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: 400, message: message.into() }
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: 404, message: message.into() }
    }
    /// 409: conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self { status: 409, message: message.into() }
    }
    /// 502: a remote node failed or refused.
    pub fn remote(message: impl Into<String>) -> Self {
        Self { status: 502, message: message.into() }
    }
    /// 503: the node cannot do it right now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { status: 503, message: message.into() }
    }
    /// 500: a local failure (database, ...), logged by the caller.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self { status: 500, message: format!("internal error: {err}") }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody { error: self.message })).into_response()
    }
}

/// Shared by all handlers.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) commands: mpsc::Sender<Command>,
    token: std::sync::Arc<str>,
    pub(crate) ui: std::sync::Arc<crate::ui::auth::UiAuth>,
}

/// The router: the API with authentication on every route, and the web
/// interface's pages (which check their session themselves).
pub fn router(commands: mpsc::Sender<Command>, token: String) -> Router {
    let ui = std::sync::Arc::new(crate::ui::auth::UiAuth::new(&token));
    let state = ApiState { commands, token: token.into(), ui };
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/invitations", post(invite).get(invitations))
        .route("/v1/join", post(join))
        .route("/v1/contacts", get(contacts))
        .route("/v1/contacts/{name}", delete(remove_contact))
        .route("/v1/shares", post(share_create).get(share_list))
        .route("/v1/shares/{share}", get(share_status))
        .route("/v1/shares/{share}/invite", post(share_invite))
        .route("/v1/shares/{share}/accept", post(share_accept))
        .route("/v1/shares/{share}/decline", post(share_decline))
        .route("/v1/shares/{share}/leave", post(share_leave))
        .route("/v1/shares/{share}/role", post(share_role))
        .route("/v1/shares/{share}/doc", get(share_doc))
        .route("/v1/shares/{share}/scan", post(share_scan))
        .route("/v1/shares/{share}/trash", get(share_trash))
        .route("/v1/shares/{share}/files", get(share_files))
        .route("/v1/shares/{share}/versions", get(share_versions))
        .route("/v1/shares/{share}/restore", post(share_restore))
        .route(
            "/v1/bank/import",
            post(bank_import).layer(axum::extract::DefaultBodyLimit::max(crate::bank::MAX_IMPORT_BYTES)),
        )
        .route("/v1/bank/accounts", get(bank_accounts))
        .route("/v1/bank/accounts/{account}/operations", get(bank_operations))
        .route("/v1/bank/accounts/{account}/export", get(bank_export))
        .route("/v1/bank/accounts/{account}/operations/{key}", post(bank_annotate))
        .route("/v1/bank/accounts/{account}/share", post(bank_share))
        .route("/v1/bank/accounts/{account}/unshare", post(bank_unshare))
        .route("/v1/bank/views", get(bank_views))
        .route("/v1/bank/alerts", post(bank_alert_add).get(bank_alerts))
        .route("/v1/bank/alerts/hook", post(bank_hook))
        .route("/v1/bank/alerts/{id}", delete(bank_alert_remove))
        .route("/v1/bank/notifications", get(bank_notifications))
        .route("/v1/backup", post(backup))
        .route("/v1/events", get(crate::ui::events::events))
        .route("/v1/ui/login-link", post(crate::ui::login_link))
        .fallback(|| async { ApiError::not_found("no such API route") })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .merge(crate::ui::routes())
        .with_state(state)
}

async fn authenticate(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = presented.is_some_and(|p| constant_time_eq(p.as_bytes(), state.token.as_bytes()));
    // The web interface's session stands in for the token, except that a
    // change must also carry the page's own header (see `crate::ui`), and
    // the handler can tell that the request came by cookie.
    if !ok && crate::ui::has_session(&state, request.headers()) {
        let safe = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
        if !safe && !request.headers().contains_key(crate::ui::UI_HEADER) {
            tracing::warn!(path = %request.uri().path(), "refused a change by cookie without the web interface's header");
            return crate::ui::csrf_refusal().into_response();
        }
        let mut request = request;
        request.extensions_mut().insert(crate::ui::BySession);
        return next.run(request).await;
    }
    if !ok {
        tracing::warn!(
            path = %request.uri().path(),
            presented = presented.is_some(),
            "refused an API request without the right token"
        );
        return ApiError {
            status: 401,
            message:
                "missing or wrong API token: send `Authorization: Bearer <token>` with the token in HOME/api-token \
                 (in a browser, log in with the link `hearth ui` prints)"
                    .into(),
        }
        .into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sends a command and waits for its answer.
pub(crate) async fn ask<T>(state: &ApiState, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    state
        .commands
        .send_timeout(make(tx), Duration::from_secs(10))
        .await
        .map_err(|_| ApiError::unavailable("the node is busy or shutting down; try again"))?;
    rx.await.map_err(|_| ApiError::unavailable("the node is shutting down"))
}

async fn status(State(s): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(ask(&s, Command::Status).await?))
}

async fn invite(State(s): State<ApiState>, body: Option<Json<InviteRequest>>) -> Result<impl IntoResponse, ApiError> {
    let ttl_secs = body.and_then(|Json(b)| b.ttl_secs);
    Ok(Json(ask(&s, |reply| Command::Invite { ttl_secs, reply }).await??))
}

async fn invitations(State(s): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(ask(&s, Command::Invitations).await??))
}

async fn join(State(s): State<ApiState>, Json(body): Json<JoinRequest>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(ask(&s, |reply| Command::Join { request: body, reply }).await??))
}

async fn contacts(State(s): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(ask(&s, Command::Contacts).await??))
}

async fn remove_contact(State(s): State<ApiState>, Path(name): Path<String>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(ask(&s, |reply| Command::RemoveContact { name, reply }).await??))
}

async fn share(s: &ApiState, op: ShareOp) -> Result<Response, ApiError> {
    Ok(match ask(s, |reply| Command::Share { op, reply }).await?? {
        ShareReply::Json(value) => Json(value).into_response(),
        ShareReply::Bytes(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
    })
}

async fn share_create(State(s): State<ApiState>, Json(b): Json<ShareCreateRequest>) -> Result<Response, ApiError> {
    share(&s, ShareOp::Create { path: b.path.into(), name: b.name }).await
}

async fn share_list(State(s): State<ApiState>) -> Result<Response, ApiError> {
    share(&s, ShareOp::List).await
}

async fn share_status(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    share(&s, ShareOp::Status(id)).await
}

async fn share_invite(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Json(b): Json<ShareInviteRequest>,
) -> Result<Response, ApiError> {
    share(&s, ShareOp::Invite { share: id, contact: b.contact, read_only: b.read_only }).await
}

async fn share_accept(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Json(b): Json<SharePathRequest>,
) -> Result<Response, ApiError> {
    share(&s, ShareOp::Accept { share: id, path: b.path.into() }).await
}

async fn share_decline(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    share(&s, ShareOp::Decline(id)).await
}

async fn share_leave(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    share(&s, ShareOp::Leave(id)).await
}

async fn share_role(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Json(b): Json<ShareRoleRequest>,
) -> Result<Response, ApiError> {
    share(&s, ShareOp::SetRole { share: id, contact: b.contact, role: b.role }).await
}

async fn share_doc(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    share(&s, ShareOp::Doc(id)).await
}

async fn share_scan(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    share(&s, ShareOp::Scan(id)).await
}

async fn share_trash(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    share(&s, ShareOp::Trash(id)).await
}

/// `GET /v1/shares/{share}/files[?limit=N]`.
async fn share_files(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<FilesQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(crate::share::listing::DEFAULT_LIMIT);
    share(&s, ShareOp::Files { share: id, limit }).await
}

/// `GET /v1/shares/{share}/files` query.
#[derive(Debug, serde::Deserialize)]
struct FilesQuery {
    limit: Option<usize>,
}

async fn share_versions(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ShareRestoreRequest>,
) -> Result<Response, ApiError> {
    share(&s, ShareOp::Versions { share: id, path: q.path }).await
}

async fn share_restore(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Json(b): Json<ShareRestoreRequest>,
) -> Result<Response, ApiError> {
    share(&s, ShareOp::Restore { share: id, path: b.path, version: b.version }).await
}

/// `POST /v1/backup` with a [`crate::backup::BackupOp`]; runs and restores
/// answer when done.
async fn backup(State(s): State<ApiState>, Json(op): Json<crate::backup::BackupOp>) -> Result<Response, ApiError> {
    Ok(Json(ask(&s, |reply| Command::Backup { op, reply }).await??).into_response())
}

async fn bank(s: &ApiState, op: BankOp) -> Result<Response, ApiError> {
    Ok(match ask(s, |reply| Command::Bank { op, reply }).await?? {
        BankReply::Json(value) => Json(value).into_response(),
        BankReply::JsonText(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
    })
}

async fn bank_import(
    State(s): State<ApiState>,
    axum::extract::Query(q): axum::extract::Query<ImportQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let format = q.format.map(|f| f.parse()).transpose().map_err(ApiError::bad_request)?;
    let options = ImportOptions { format, account: q.account, csv_preset: q.csv_preset, csv_map: q.csv_map };
    bank(&s, BankOp::Import { bytes: body.to_vec(), options }).await
}

async fn bank_accounts(State(s): State<ApiState>) -> Result<Response, ApiError> {
    bank(&s, BankOp::Accounts).await
}

async fn bank_operations(
    State(s): State<ApiState>,
    Path(account): Path<String>,
    axum::extract::Query(q): axum::extract::Query<OperationsQuery>,
) -> Result<Response, ApiError> {
    bank(&s, BankOp::Operations { account, since: q.since }).await
}

async fn bank_export(State(s): State<ApiState>, Path(account): Path<String>) -> Result<Response, ApiError> {
    bank(&s, BankOp::Export { account }).await
}

async fn bank_share(
    State(s): State<ApiState>,
    Path(account): Path<String>,
    Json(b): Json<BankShareRequest>,
) -> Result<Response, ApiError> {
    bank(&s, BankOp::Share { account, contact: b.contact, since: b.since }).await
}

async fn bank_unshare(
    State(s): State<ApiState>,
    Path(account): Path<String>,
    Json(b): Json<BankShareRequest>,
) -> Result<Response, ApiError> {
    bank(&s, BankOp::Unshare { account, contact: b.contact }).await
}

async fn bank_views(State(s): State<ApiState>) -> Result<Response, ApiError> {
    bank(&s, BankOp::Views).await
}

async fn bank_alert_add(State(s): State<ApiState>, Json(b): Json<AlertAddRequest>) -> Result<Response, ApiError> {
    bank(&s, BankOp::AlertAdd(b)).await
}

async fn bank_alerts(State(s): State<ApiState>) -> Result<Response, ApiError> {
    bank(&s, BankOp::AlertList).await
}

async fn bank_alert_remove(State(s): State<ApiState>, Path(id): Path<u64>) -> Result<Response, ApiError> {
    bank(&s, BankOp::AlertRemove(id)).await
}

async fn bank_hook(State(s): State<ApiState>, Json(b): Json<HookRequest>) -> Result<Response, ApiError> {
    bank(&s, BankOp::SetHook(b.hook)).await
}

async fn bank_notifications(State(s): State<ApiState>) -> Result<Response, ApiError> {
    bank(&s, BankOp::Notifications).await
}

async fn bank_annotate(
    State(s): State<ApiState>,
    Path((account, key)): Path<(String, String)>,
    Json(b): Json<AnnotateRequest>,
) -> Result<Response, ApiError> {
    bank(&s, BankOp::Annotate { account, key, note: b.note, category: b.category, private: b.private }).await
}
