//! Fault injection, request statistics and the `/_sandbox` admin API.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Path, State};
use axum::http::{HeaderName, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::errors::{Api, ApiError, bad_body, parse_json};
use crate::state::AppState;

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After` and the API's throttling error body.
    Throttle,
    /// A 5xx (default 503) with the API's error body.
    ServerError,
    /// Delays the request by `delay_ms`, then serves it normally.
    Slow,
    /// Drops the connection without a response.
    Reset,
}

/// A fault applied to the next `times` requests whose path starts with `path_prefix` (and
/// whose method matches, when given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub path_prefix: String,
    #[serde(default)]
    pub method: Option<String>,
    pub kind: FaultKind,
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault of `kind` for the next `times` requests under `path_prefix`.
    pub fn new(path_prefix: impl Into<String>, kind: FaultKind, times: u32) -> Self {
        Self {
            path_prefix: path_prefix.into(),
            method: None,
            kind,
            retry_after_secs: None,
            status: None,
            delay_ms: None,
            times,
        }
    }
}

/// Counters for one route template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    pub method: String,
    /// The matched route, e.g. `/defender/api/machines/{id}`; `(unmatched)` for 404s.
    pub path_template: String,
    pub count: u64,
    /// Status code (as a string) → count.
    pub status_counts: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenStats {
    pub tenant_id: String,
    pub audience: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxStats {
    pub requests: Vec<RequestStats>,
    pub tokens_issued: Vec<TokenStats>,
    /// Responses with status 429 (rate limits and injected throttling).
    pub throttled: u64,
}

impl SandboxStats {
    /// Total requests served for a method and route template.
    pub fn count(&self, method: &str, path_template: &str) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path_template == path_template)
            .map(|r| r.count)
            .sum()
    }

    /// Total requests served for a method, on any route.
    pub fn count_method(&self, method: &str) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method))
            .map(|r| r.count)
            .sum()
    }
}

#[derive(Default)]
struct Book {
    faults: Vec<Fault>,
    requests: BTreeMap<(String, String), (u64, BTreeMap<String, u64>)>,
    tokens: BTreeMap<(String, String), u64>,
    throttled: u64,
}

/// Faults and counters of one sandbox.
#[derive(Default)]
pub struct FaultBook {
    inner: Mutex<Book>,
}

impl FaultBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        // A panic while holding the lock cannot leave the counters inconsistent in a way that
        // matters to a test double, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().faults.push(fault);
        }
    }

    pub fn clear(&self) {
        self.lock().faults.clear();
    }

    /// Takes one use of the first fault matching the request, if any.
    fn take(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut book = self.lock();
        let idx = book.faults.iter().position(|f| {
            path.starts_with(&f.path_prefix)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
        })?;
        let fault = book.faults[idx].clone();
        book.faults[idx].times -= 1;
        if book.faults[idx].times == 0 {
            book.faults.remove(idx);
        }
        Some(fault)
    }

    fn record(&self, method: &Method, template: &str, status: StatusCode) {
        let mut book = self.lock();
        if status == StatusCode::TOO_MANY_REQUESTS {
            book.throttled += 1;
        }
        let entry = book
            .requests
            .entry((method.to_string(), template.to_string()))
            .or_default();
        entry.0 += 1;
        *entry.1.entry(status.as_u16().to_string()).or_default() += 1;
    }

    pub fn record_token(&self, tenant_id: &str, audience: &str) {
        *self
            .lock()
            .tokens
            .entry((tenant_id.to_string(), audience.to_string()))
            .or_default() += 1;
    }

    pub fn stats(&self) -> SandboxStats {
        let book = self.lock();
        SandboxStats {
            requests: book
                .requests
                .iter()
                .map(|((m, p), (c, s))| RequestStats {
                    method: m.clone(),
                    path_template: p.clone(),
                    count: *c,
                    status_counts: s.clone(),
                })
                .collect(),
            tokens_issued: book
                .tokens
                .iter()
                .map(|((t, a), c)| TokenStats {
                    tenant_id: t.clone(),
                    audience: a.clone(),
                    count: *c,
                })
                .collect(),
            throttled: book.throttled,
        }
    }
}

/// Response extension asking the connection layer to drop the connection.
#[derive(Debug, Clone, Copy)]
pub struct ResetConnection;

/// The throttling error of each API, with `Retry-After`.
pub fn throttle_error(api: Api, retry_after_secs: u64, message: Option<String>) -> ApiError {
    let (code, default_message) = match api {
        Api::Defender => (
            "TooManyRequests",
            "API calls quota exceeded! Maximum allowed calls per tenant reached. Retry after the period in the Retry-After header.",
        ),
        Api::Graph => (
            "TooManyRequests",
            "Too many requests. Retry after the period in the Retry-After header.",
        ),
        Api::Arm => (
            "TooManyRequests",
            "The request was throttled. Retry after the period in the Retry-After header.",
        ),
        Api::LogAnalytics => (
            "ThrottledError",
            "Your request was throttled. Retry after the period in the Retry-After header.",
        ),
        Api::Sandbox => ("TooManyRequests", "Throttled."),
    };
    ApiError::new(
        api,
        StatusCode::TOO_MANY_REQUESTS,
        code,
        message.unwrap_or_else(|| default_message.to_string()),
    )
    .with_header(header::RETRY_AFTER, retry_after_secs.to_string())
}

fn server_error(api: Api, status: StatusCode) -> ApiError {
    let code = match (api, status.as_u16()) {
        (Api::LogAnalytics, _) => "ServiceError",
        (_, 503) => "ServiceUnavailable",
        (_, 502) => "BadGateway",
        (_, 504) => "GatewayTimeout",
        _ => "InternalServerError",
    };
    ApiError::new(
        api,
        status,
        code,
        format!("Injected fault: the service answered {status}."),
    )
}

/// Outermost middleware: applies injected faults, then counts the request by route template.
pub async fn front_door(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let template = matched
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".to_string());
    // The admin API is neither faulted nor counted: tests use it to set up and inspect.
    if path.starts_with("/_sandbox") {
        return next.run(req).await;
    }
    let api = Api::for_path(&path);
    let response = match state.faults.take(&method, &path) {
        Some(fault) => match fault.kind {
            FaultKind::Throttle => {
                throttle_error(api, fault.retry_after_secs.unwrap_or(1), None).into_response()
            }
            FaultKind::ServerError => {
                let status = fault
                    .status
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .filter(|s| s.is_server_error())
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut err = server_error(api, status);
                if let Some(secs) = fault.retry_after_secs {
                    err = err.with_header(header::RETRY_AFTER, secs.to_string());
                }
                err.into_response()
            }
            FaultKind::Slow => {
                tokio::time::sleep(Duration::from_millis(fault.delay_ms.unwrap_or(1000))).await;
                next.run(req).await
            }
            FaultKind::Reset => {
                let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
                r.extensions_mut().insert(ResetConnection);
                r
            }
        },
        None => next.run(req).await,
    };
    state.faults.record(&method, &template, response.status());
    tracing::debug!(%method, %path, status = response.status().as_u16(), "sandbox request");
    response
}

pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route(
            "/faults",
            post(add_fault).delete(clear_faults).get(list_faults),
        )
        .route("/stats", get(get_stats))
        .route("/info", get(get_info))
        .route("/downloads/{token}", get(download))
        .route("/machines/{tenant}/{machine}", get(get_machine_state))
}

async fn add_fault(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let fault: Fault = parse_json(Api::Sandbox, &body)?;
    if fault.path_prefix.is_empty() || !fault.path_prefix.starts_with('/') {
        return Err(bad_body(Api::Sandbox, "path_prefix must start with '/'"));
    }
    state.faults.add(fault);
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(state): State<AppState>) -> Json<Vec<Fault>> {
    Json(state.faults.lock().faults.clone())
}

async fn get_stats(State(state): State<AppState>) -> Json<SandboxStats> {
    Json(state.faults.stats())
}

async fn get_info(State(state): State<AppState>) -> Json<serde_json::Value> {
    let tenants: Vec<_> = state
        .tenants_public
        .iter()
        .map(|t| {
            serde_json::json!({
                "tenant_id": t.tenant_id,
                "display_name": t.display_name,
                "workspaces": t.workspaces.iter().map(|w| serde_json::json!({
                    "subscription_id": w.subscription_id,
                    "resource_group": w.resource_group,
                    "name": w.name,
                    "customer_id": w.customer_id,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(
        serde_json::json!({"base_url": state.base_url, "client_id": state.client_id, "tenants": tenants}),
    )
}

async fn get_machine_state(
    State(state): State<AppState>,
    Path((tenant, machine)): Path<(String, String)>,
) -> Result<Json<crate::state::MachineState>, ApiError> {
    state
        .machine_state(&tenant, &machine)
        .map(Json)
        .ok_or_else(|| crate::errors::not_found(Api::Sandbox, "unknown tenant or machine"))
}

/// SAS-style download links (investigation packages, Live Response results): like Azure
/// Blob SAS URLs they need no bearer token, and they expire.
async fn download(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.take_download(&token) {
        Some(d) => {
            let mut resp = (StatusCode::OK, d.bytes).into_response();
            if let Ok(v) = d.content_type.parse() {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp.headers_mut().insert(HeaderName::from_static("x-ms-blob-type"), axum::http::HeaderValue::from_static("BlockBlob"));
            resp
        }
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist or the link has expired.</Message></Error>",
        )
            .into_response(),
    }
}
