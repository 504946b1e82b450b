//! The web interface, served by the node from its API address.
//!
//! It owns the pages' routes (`/ui/...`), their embedded assets and the
//! browser's way in: [`auth`] (one-time login links, session cookies bound
//! to the API token) and [`events`] (server-sent events that keep an open
//! page live). The page itself is plain HTML, CSS and vanilla JavaScript in
//! `assets/`, compiled into the binary with `include_str!`: no front-end
//! toolchain builds or tests it, and what runs is what is in the
//! repository. The script calls the JSON API (`/v1/...`) with the session
//! cookie, which `crate::api` accepts in place of the bearer token.
//!
//! Invariants: nothing under `/ui/` but the login link answers without a
//! session; every answer forbids framing, caching and referrers (the login
//! link carries a secret); the page's Content-Security-Policy allows only
//! its own script and style, so text that came from other nodes (file
//! names, bank labels) can never run as code even if the script failed
//! to escape it (it builds the DOM with `textContent` throughout).

pub mod auth;
pub mod events;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, ApiState};

/// The header the page sends on every request that changes something. A
/// page of another site cannot send a custom header to this origin without
/// a CORS preflight, which the node never grants; with the SameSite=Strict
/// cookie this is the CSRF defence.
pub const UI_HEADER: &str = "x-hearth-ui";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                        connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The login and error pages have no script and one inline style.
const PLAIN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'";

/// `POST /v1/ui/login-link`: what `hearth ui` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginLinkView {
    /// Path and query of the link on the API address (`/ui/login?t=...`).
    pub path: String,
    /// Full URL, filled in by the client from the address it used.
    #[serde(default)]
    pub url: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
    /// Expiry, Unix seconds.
    pub expires_at_unix: u64,
}

/// The routes of the pages; they check the session themselves (the API's
/// routes are behind `crate::api`'s authentication layer).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(style))
        .route("/ui/login", get(login))
        .route("/ui/logout", post(logout))
}

/// Marks a request authenticated by the session cookie, not the token.
#[derive(Debug, Clone, Copy)]
pub struct BySession;

/// `POST /v1/ui/login-link`: a one-time login link. Only the API token
/// makes them (`hearth ui`): a browser session cannot mint itself more.
pub async fn login_link(
    State(state): State<ApiState>,
    by_session: Option<axum::Extension<BySession>>,
) -> Result<Json<LoginLinkView>, ApiError> {
    if by_session.is_some() {
        return Err(ApiError {
            status: 403,
            message: "login links are made with the API token: run `hearth ui` on the node's machine".into(),
        });
    }
    let (secret, expires) = state.ui.create_link(crate::now_unix());
    tracing::info!("made a one-time login link for the web interface");
    Ok(Json(LoginLinkView {
        path: format!("/ui/login?t={secret}"),
        url: String::new(),
        expires_at: crate::views::rfc3339(expires),
        expires_at_unix: expires,
    }))
}

/// Headers every UI answer carries.
fn guarded(mut response: Response, csp: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn cookie_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::COOKIE).and_then(|v| v.to_str().ok())
}

/// Whether the request carries a valid session of this node.
pub fn has_session(state: &ApiState, headers: &HeaderMap) -> bool {
    state.ui.has_session(cookie_header(headers), crate::now_unix())
}

/// `en` or `fr`, from `Accept-Language` (highest weight first; English
/// when neither is asked for).
pub fn language(headers: &HeaderMap) -> &'static str {
    let Some(accept) = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()) else {
        return "en";
    };
    let mut best: Option<(f32, &'static str)> = None;
    for part in accept.split(',') {
        let mut fields = part.split(';');
        let tag = fields.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = fields.find_map(|f| f.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
        let lang = match tag.split('-').next() {
            Some("fr") => "fr",
            Some("en") => "en",
            _ => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l).unwrap_or("en")
}

/// A page without script, for people who are not logged in.
fn plain_page(status: StatusCode, lang: &str, title: &str, message: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Hearth</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         code{{background:#f1ede6;padding:.1rem .3rem;border-radius:4px}}</style></head>\
         <body><h1>{}</h1><p id=\"message\">{}</p></body></html>",
        escape(title),
        escape(message).replace("`hearth ui`", "<code>hearth ui</code>"),
    );
    guarded((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(), PLAIN_CSP)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn not_logged_in(headers: &HeaderMap) -> Response {
    let lang = language(headers);
    let (title, message) = if lang == "fr" {
        (
            "Connexion nécessaire",
            "Pour ouvrir Hearth, lancez `hearth ui` sur la machine du nœud et suivez le lien qu'il affiche.",
        )
    } else {
        ("Please log in", "To open Hearth, run `hearth ui` on the node's machine and follow the link it prints.")
    };
    plain_page(StatusCode::UNAUTHORIZED, lang, title, message)
}

async fn index(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if !has_session(&state, &headers) {
        return not_logged_in(&headers);
    }
    let html = INDEX_HTML.replace("{{lang}}", language(&headers));
    guarded(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(), PAGE_CSP)
}

async fn asset(state: &ApiState, headers: &HeaderMap, kind: &'static str, body: &'static str) -> Response {
    if !has_session(state, headers) {
        return guarded((StatusCode::UNAUTHORIZED, "log in with `hearth ui` first").into_response(), PLAIN_CSP);
    }
    guarded(([(header::CONTENT_TYPE, kind)], body).into_response(), PAGE_CSP)
}

async fn script(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    asset(&state, &headers, "text/javascript; charset=utf-8", APP_JS).await
}

async fn style(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    asset(&state, &headers, "text/css; charset=utf-8", APP_CSS).await
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    t: Option<String>,
}

async fn login(State(state): State<ApiState>, headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let now = crate::now_unix();
    let result = state.ui.redeem(q.t.as_deref().unwrap_or_default(), now);
    match result {
        Ok(value) => {
            tracing::info!("a browser logged in to the web interface");
            let mut response = Redirect::to("/ui/").into_response();
            if let Ok(v) = HeaderValue::from_str(&state.ui.set_cookie(&value)) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            guarded(response, PLAIN_CSP)
        }
        // Opening an old link again in a browser that is logged in.
        Err(_) if has_session(&state, &headers) => guarded(Redirect::to("/ui/").into_response(), PLAIN_CSP),
        Err(err) => {
            tracing::warn!("refused a web interface login link: {err}");
            let lang = language(&headers);
            let (title, message) = if lang == "fr" {
                let m = match err {
                    auth::LoginError::Expired => "Ce lien de connexion a expiré (il vaut 5 minutes) : lancez `hearth ui` pour en obtenir un nouveau.",
                    auth::LoginError::Unknown => "Ce lien de connexion a déjà servi (chaque lien ne sert qu'une fois) ou le nœud a redémarré : lancez `hearth ui` pour en obtenir un nouveau.",
                    auth::LoginError::Garbled => "Ce lien de connexion est incomplet : copiez toute la ligne affichée par `hearth ui`.",
                };
                ("Lien refusé", m.to_owned())
            } else {
                ("Login link refused", err.to_string())
            };
            plain_page(StatusCode::UNAUTHORIZED, lang, title, &message)
        }
    }
}

async fn logout(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !headers.contains_key(UI_HEADER) {
        return Err(csrf_refusal());
    }
    state.ui.revoke(cookie_header(&headers), crate::now_unix());
    let mut response = (StatusCode::OK, Json(serde_json::json!({ "logged_out": true }))).into_response();
    if let Ok(v) = HeaderValue::from_str(&state.ui.clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(guarded(response, PLAIN_CSP))
}

/// 403 for a cookie-authenticated change without [`UI_HEADER`].
pub fn csrf_refusal() -> ApiError {
    ApiError {
        status: 403,
        message: format!(
            "refused: a change made with the web interface's session must carry the {UI_HEADER} header \
             (requests from other sites cannot)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn the_language_follows_accept_language() {
        assert_eq!(language(&HeaderMap::new()), "en");
        assert_eq!(language(&accept("fr-FR,fr;q=0.9,en;q=0.8")), "fr");
        assert_eq!(language(&accept("de-DE,en;q=0.5,fr;q=0.7")), "fr");
        assert_eq!(language(&accept("en-GB, fr;q=0.2")), "en");
        assert_eq!(language(&accept("de, es")), "en");
    }

    #[test]
    fn plain_pages_escape_their_text() {
        assert_eq!(escape("<b>\"&"), "&lt;b&gt;&quot;&amp;");
    }
}
