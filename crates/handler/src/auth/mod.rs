//! Who is calling `/api/mcp`: the inbound identity, checked before the MCP service sees the
//! request, and the per-caller rate limit.
//!
//! The Functions host's key stays the outer gate in Azure. On top of it this layer accepts, by
//! `AUTH_INBOUND_MODE`, Entra ID bearer tokens validated here ([`entra`]), the principal App
//! Service authentication passes in when it fronts the app ([`easy_auth`]), or no identity at all
//! (every caller gets the configured local role). The [`Caller`] it establishes travels in the
//! request extensions; the MCP layer reads it to show and allow only the tools of the caller's tier.

mod easy_auth;
mod entra;
mod rate_limit;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::config::{InboundAuthConfig, InboundMode, McpConfig, RoleNames};
use crate::roles::Tier;
use crate::tenants::TenantId;

pub use entra::EntraValidator;
pub use rate_limit::RateLimiter;

/// Where the protected resource metadata is served. The Functions host only forwards paths under
/// its route prefix (`/api`), so the advertised URL is that one; the root `/.well-known` form is
/// served too for direct and local access.
pub const METADATA_PATH: &str = "/api/.well-known/oauth-protected-resource";
pub const WELL_KNOWN_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The identity behind one MCP request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// A stable id: the Entra object id (`oid`) of the user or app, else the token subject;
    /// `local` when inbound auth is off.
    pub subject: String,
    /// A readable name (user principal name or display name) when the token carries one.
    pub name: Option<String>,
    /// The caller's home tenant.
    pub tenant: Option<TenantId>,
    /// The app roles in the token, as given.
    pub roles: Vec<String>,
    /// The highest tier those roles grant; `None`: no tool at all.
    pub tier: Option<Tier>,
}

impl Caller {
    pub fn local(tier: Tier) -> Self {
        Self {
            subject: "local".into(),
            name: None,
            tenant: None,
            roles: vec![tier.name().into()],
            tier: Some(tier),
        }
    }

    pub fn may_use(&self, needed: Tier) -> bool {
        self.tier.is_some_and(|tier| tier >= needed)
    }

    /// How the caller is named on jobs and in logs: the readable name when the token has one,
    /// else the stable subject.
    pub fn as_str(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.subject)
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RoleNames {
    /// The app role that grants `tier`.
    pub fn role_for(&self, tier: Tier) -> &str {
        match tier {
            Tier::Reader => &self.reader,
            Tier::Responder => &self.responder,
            Tier::Admin => &self.admin,
        }
    }

    /// The highest tier any of `roles` grants.
    pub fn tier_of(&self, roles: &[String]) -> Option<Tier> {
        Tier::ALL
            .into_iter()
            .rev()
            .find(|tier| roles.iter().any(|role| role == self.role_for(*tier)))
    }
}

/// Why a request was turned away before reaching the MCP service. Messages say what was wrong
/// and never contain the token, nor whether a refused tenant exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this server requires an Entra ID bearer token (Authorization: Bearer <token>)")]
    NoCredentials,
    #[error("the bearer token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the bearer token has expired; get a new one")]
    Expired,
    #[error("the bearer token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the bearer token was issued for another audience; this server accepts {0}")]
    WrongAudience(String),
    #[error("the bearer token's issuer is not the Entra ID issuer of its tenant")]
    WrongIssuer,
    #[error(
        "the bearer token's signature does not verify against its tenant's published signing keys"
    )]
    BadSignature,
    #[error("tokens from tenant {0} are not accepted by this server (AUTH_ALLOWED_TENANTS)")]
    TenantNotAllowed(TenantId),
    #[error(
        "the tenant's signing keys could not be fetched to check the token: {0}; try again shortly"
    )]
    KeysUnavailable(String),
    #[error(
        "App Service authentication did not pass a principal (X-MS-CLIENT-PRINCIPAL); check that authentication is \
         enabled on the app with 'Require authentication'"
    )]
    NoEasyAuthPrincipal,
    #[error("the X-MS-CLIENT-PRINCIPAL header is not App Service's base64 JSON principal: {0}")]
    BadEasyAuthPrincipal(String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::KeysUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// RFC 6750 error code; none when the request simply carried no credentials.
    fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::NoCredentials | Self::NoEasyAuthPrincipal => None,
            Self::KeysUnavailable(_) => Some("temporarily_unavailable"),
            _ => Some("invalid_token"),
        }
    }
}

/// The person App Service authentication signed in on a browser page (the approval page), from
/// the principal it passes in. Only to be trusted when App Service authentication fronts the app.
pub fn signed_in_person(
    headers: &HeaderMap,
    config: &InboundAuthConfig,
) -> Result<Caller, Refusal> {
    easy_auth::caller(headers, config)
}

/// The inbound identity checks, built once at start.
pub struct InboundAuth {
    config: InboundAuthConfig,
    entra: Option<EntraValidator>,
    limiter: Option<RateLimiter>,
    /// `https://<WEBSITE_HOSTNAME>` in Azure; locally the request's own (allowed) host.
    public_host: Option<String>,
    allowed_hosts: Vec<String>,
}

impl InboundAuth {
    pub fn new(config: &InboundAuthConfig, mcp: &McpConfig, http: reqwest::Client) -> Self {
        let entra = (config.mode == InboundMode::Entra).then(|| EntraValidator::new(config, http));
        Self {
            config: config.clone(),
            entra,
            limiter: mcp.rate_limit.map(RateLimiter::new),
            public_host: mcp.public_host.clone(),
            allowed_hosts: mcp.allowed_hosts.clone(),
        }
    }

    /// Counts each caller's requests with the app's other instances through `ledger`.
    pub fn share_rate_limit(&self, ledger: Arc<dyn crate::quota::SharedQuota>) {
        if let Some(limiter) = &self.limiter {
            limiter.share(ledger);
        }
    }

    pub fn mode(&self) -> &InboundMode {
        &self.config.mode
    }

    /// Who sent a request with these headers.
    pub async fn identify(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        match &self.config.mode {
            InboundMode::None { local_role } => Ok(Caller::local(*local_role)),
            InboundMode::EasyAuth => easy_auth::caller(headers, &self.config),
            InboundMode::Entra => {
                let token = bearer_token(headers).ok_or(Refusal::NoCredentials)?;
                match &self.entra {
                    Some(validator) => validator.validate(token).await,
                    None => Err(Refusal::NoCredentials),
                }
            }
        }
    }

    /// The base URL clients reach this app at, for the resource and metadata URLs.
    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(host) = &self.public_host {
            return format!("https://{host}");
        }
        let requested = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let name = requested
            .rsplit_once(':')
            .map_or(requested, |(name, _)| name);
        if self
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
        {
            format!("http://{requested}")
        } else {
            "http://localhost".into()
        }
    }

    /// RFC 9728 protected resource metadata for `/api/mcp`.
    fn metadata(&self, headers: &HeaderMap) -> serde_json::Value {
        let base = self.base_url(headers);
        let authority = self.config.authority.as_str().trim_end_matches('/');
        let servers: Vec<String> = self
            .config
            .allowed_tenants
            .iter()
            .map(|tenant| format!("{authority}/{tenant}/v2.0"))
            .collect();
        let scopes: Vec<String> = self
            .config
            .scope
            .clone()
            .or_else(|| self.default_scope())
            .into_iter()
            .collect();
        json!({
            "resource": format!("{base}/api/mcp"),
            "authorization_servers": servers,
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "Defender XDR and Sentinel MCP server",
        })
    }

    /// `<application id URI>/.default` when the audience is a URI, `api://<client id>/.default` otherwise.
    fn default_scope(&self) -> Option<String> {
        let audience = self.config.audiences.first()?;
        Some(if audience.contains("://") {
            format!("{audience}/.default")
        } else {
            format!("api://{audience}/.default")
        })
    }

    fn refused(&self, refusal: &Refusal, headers: &HeaderMap) -> Response {
        let metadata = format!("{}{METADATA_PATH}", self.base_url(headers));
        let mut challenge = format!("Bearer resource_metadata=\"{metadata}\"");
        if let Some(code) = refusal.error_code() {
            // The description is ours (no token text); quotes are swapped so the header stays well-formed.
            challenge.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                refusal.to_string().replace('"', "'")
            ));
        }
        tracing::info!(target: "audit", outcome = "unauthenticated", reason = %refusal, "request refused before MCP");
        let body = json!({ "error": refusal.error_code().unwrap_or("unauthorized"), "error_description": refusal.to_string() });
        let mut response = (refusal.status(), Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The axum middleware in front of `/api/mcp`: identify, rate-limit, then hand on with the
/// [`Caller`] in the request extensions.
pub async fn authenticate(
    State(auth): State<Arc<InboundAuth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match auth.identify(request.headers()).await {
        Ok(caller) => caller,
        Err(refusal) => return auth.refused(&refusal, request.headers()),
    };
    if let Some(limiter) = &auth.limiter
        && let Err(wait) = limiter.take(&caller.subject).await
    {
        return too_many_requests(&caller, wait);
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn too_many_requests(caller: &Caller, wait: Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    tracing::warn!(target: "audit", caller = %caller.subject, retry_after_s = seconds, outcome = "rate_limited", "request refused: rate limit");
    let body = json!({
        "error": "rate_limited",
        "error_description": format!(
            "too many requests from {}: this server allows a burst then a steady pace per caller \
             (MCP_RATE_LIMIT_PER_MINUTE, MCP_RATE_LIMIT_BURST); retry after {seconds} s",
            caller.subject
        ),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728). Without inbound auth there is
/// nothing to advertise, and a 404 says so.
pub async fn protected_resource_metadata(
    State(auth): State<Arc<InboundAuth>>,
    headers: HeaderMap,
) -> Response {
    match auth.mode() {
        InboundMode::None { .. } => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "not_found", "error_description": "inbound authentication is off on this server (AUTH_INBOUND_MODE=none)" })),
        )
            .into_response(),
        _ => Json(auth.metadata(&headers)).into_response(),
    }
}
