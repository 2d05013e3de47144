//! Transport and the custom-handler protocol: what the Functions host sends to this process.
//!
//! - `GET /`: the host's readiness probe (any answer counts; this one is 200).
//! - `/api/mcp` (and the connection paths under it, see [`connection`]), `/api/health`,
//!   `/api/approvals/{id}` (the approval page, handed in as a router): HTTP
//!   functions, forwarded (`enableForwardingHttpRequest`) or proxied
//!   (`enableProxyingHttpRequest`) with their original path.
//! - `POST /<functionName>`: every other trigger, in the `{"Data","Metadata"}` payload form.
//!
//! - `/.well-known/oauth-protected-resource` (and under `/api`): the protected resource metadata.
//!
//! It knows the MCP server only as an rmcp service and functions only as [`FunctionHandler`]s;
//! the inbound identity check ([`crate::auth`]) wraps `/api/mcp` and nothing else.

pub mod connection;
pub mod invocation;
pub mod jsonrpc;
pub mod server;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tracing::Instrument;

pub use connection::{ConnectionRequest, Resolver};
pub use invocation::{FunctionHandler, InvocationOutcome, InvocationRequest, InvocationResponse};

use crate::auth::{self, InboundAuth};
use crate::config::McpConfig;
use crate::telemetry;

/// The Functions host names each invocation in this header (forwarded and proxied HTTP too).
const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// What `/api/health` reports.
#[async_trait::async_trait]
pub trait HealthProbe: Send + Sync {
    async fn probe(&self) -> (bool, serde_json::Value);
}

/// HTTP functions the host may send in payload form when neither forwarding nor proxying is on.
const HTTP_FUNCTIONS: [&str; 4] = [
    "function-mcp",
    "function-health",
    "function-oauth-metadata",
    "function-approvals",
];

#[derive(Clone)]
struct HostState {
    health: Arc<dyn HealthProbe>,
    functions: Arc<HashMap<&'static str, Arc<dyn FunctionHandler>>>,
}

/// `connection` resolves each MCP request's URL and headers into what the server reads from the
/// request extensions (its toolsets). `pages` are HTTP functions for browsers (the approval
/// page), served as they are: they sign people in themselves.
pub fn router<S, C>(
    mcp_server: impl Fn() -> S + Send + Sync + 'static,
    connection: Resolver<C>,
    mcp: &McpConfig,
    auth: Arc<InboundAuth>,
    health: Arc<dyn HealthProbe>,
    functions: HashMap<&'static str, Arc<dyn FunctionHandler>>,
    pages: Router,
) -> Router
where
    S: rmcp::ServerHandler + Send + 'static,
    C: Clone + Send + Sync + 'static,
{
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(mcp.allowed_hosts.clone())
        .with_max_request_body_bytes(mcp.max_request_bytes);
    // Browsers send Origin; MCP clients that are not browsers do not. A page on another origin
    // must never reach the tools through a user's browser, so Origin is always checked.
    config = config
        .with_allowed_origins(allowed_origins(mcp))
        .enforce_origin_validation();
    let service = StreamableHttpService::new(
        move || Ok(mcp_server()),
        Arc::new(NeverSessionManager::default()),
        config,
    );

    // Layers run outside in: identity first, so an unknown connection is refused only to callers.
    let framing = jsonrpc::Framing {
        max_body_bytes: mcp.max_request_bytes,
    };
    let mcp_routes = Router::new()
        .nest_service(connection::MCP_PATH, service)
        .layer(from_fn_with_state(framing, jsonrpc::check))
        .layer(from_fn_with_state(connection, connection::resolve::<C>))
        .layer(from_fn_with_state(auth.clone(), auth::authenticate));
    let metadata = get(auth::protected_resource_metadata).with_state(auth);
    let state = HostState {
        health,
        functions: Arc::new(functions),
    };
    Router::new()
        .route("/", get(ready))
        .route("/api/health", get(health_check))
        .route("/{function}", post(invoke))
        .with_state(state)
        .merge(mcp_routes)
        .merge(pages)
        .route_service(auth::METADATA_PATH, metadata.clone())
        .route_service(auth::WELL_KNOWN_METADATA_PATH, metadata.clone())
        .route_service(
            &format!("{}/api/mcp", auth::WELL_KNOWN_METADATA_PATH),
            metadata,
        )
        .layer(axum::middleware::from_fn(traced))
}

/// A request (server span) for each HTTP request and invocation the host sends. With telemetry
/// off the span is disabled at its call site and the request passes straight through.
async fn traced(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // Field values are only evaluated when the span is enabled.
    let span = tracing::info_span!(
        target: telemetry::REQUEST_TARGET,
        "request",
        otel.name = %format_args!("{} {}", request.method(), request.uri().path()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %request.uri().path(),
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        faas.invocation_id = tracing::field::Empty,
    );
    if span.is_disabled() {
        return next.run(request).await;
    }
    if let Some(id) = request
        .headers()
        .get(INVOCATION_ID_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        span.record("faas.invocation_id", id);
    }
    request
        .extensions_mut()
        .insert(telemetry::RequestSpan(span.clone()));
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        telemetry::record_failure(&span, status.as_str());
    }
    response
}

fn allowed_origins(mcp: &McpConfig) -> Vec<String> {
    let mut origins = vec![
        "http://localhost:*".to_string(),
        "http://127.0.0.1:*".to_string(),
    ];
    origins.extend(mcp.allowed_origins.iter().cloned());
    origins
}

async fn ready() -> &'static str {
    "ready"
}

async fn health_check(State(state): State<HostState>) -> Response {
    let (healthy, body) = state.health.probe().await;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn invoke(
    State(state): State<HostState>,
    Path(function): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let failed = |status: StatusCode, log: String| {
        tracing::error!(function = %function, "{log}");
        telemetry::record_exception(&tracing::Span::current(), "InvocationRejected", &log);
        let response = InvocationResponse {
            logs: vec![log],
            ..InvocationResponse::default()
        };
        (status, Json(response)).into_response()
    };
    let Some(handler) = state.functions.get(function.as_str()).cloned() else {
        if HTTP_FUNCTIONS.contains(&function.as_str()) {
            return failed(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "{function} reached the handler in payload form; set customHandler.enableProxyingHttpRequest \
                     (or enableForwardingHttpRequest) to true in host.json so HTTP requests are passed through as they are"
                ),
            );
        }
        let known: Vec<&str> = state.functions.keys().copied().collect();
        return failed(
            StatusCode::NOT_FOUND,
            format!(
                "this handler has no function named '{function}'; it serves: {}",
                known.join(", ")
            ),
        );
    };
    let request: InvocationRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return failed(
                StatusCode::BAD_REQUEST,
                format!(
                    "{function}: the invocation body is not the host's {{\"Data\",\"Metadata\"}} JSON: {error}"
                ),
            );
        }
    };
    let started = std::time::Instant::now();
    let outcome = handler.invoke(request).await;
    if let Some(metrics) = telemetry::metrics() {
        metrics.invocation(
            &function,
            started.elapsed().as_secs_f64() * 1000.0,
            outcome.succeeded,
        );
    }
    if !outcome.succeeded {
        let message = outcome.response.logs.join("; ");
        telemetry::record_exception(&tracing::Span::current(), "InvocationFailed", &message);
    }
    let status = if outcome.succeeded {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (status, Json(outcome.response)).into_response()
}
