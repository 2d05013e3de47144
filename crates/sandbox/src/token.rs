//! The Entra ID v2.0 token endpoint (client-credentials grant) and bearer-token checks.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;

use crate::errors::{Api, ApiError};
use crate::state::{AppState, TokenRecord};
use crate::util::new_guid;

/// Resource (scope without `/.default`) → the audience recorded in the token. The Defender
/// API accepts tokens for both its old and new host names.
const RESOURCES: &[(&str, &str)] = &[
    (
        "https://api.securitycenter.microsoft.com",
        "https://api.securitycenter.microsoft.com",
    ),
    (
        "https://api.security.microsoft.com",
        "https://api.security.microsoft.com",
    ),
    (
        "https://securitycenter.onmicrosoft.com/windowsatpservice",
        "https://api.securitycenter.microsoft.com",
    ),
    ("https://graph.microsoft.com", "https://graph.microsoft.com"),
    (
        "https://management.azure.com",
        "https://management.azure.com",
    ),
    (
        "https://management.core.windows.net",
        "https://management.azure.com",
    ),
    ("https://api.loganalytics.io", "https://api.loganalytics.io"),
    (
        "https://api.loganalytics.azure.com",
        "https://api.loganalytics.io",
    ),
];

/// Audiences each API accepts.
pub fn accepted_audiences(api: Api) -> &'static [&'static str] {
    match api {
        Api::Defender => &[
            "https://api.securitycenter.microsoft.com",
            "https://api.security.microsoft.com",
        ],
        Api::Graph => &["https://graph.microsoft.com"],
        Api::Arm => &["https://management.azure.com"],
        Api::LogAnalytics => &["https://api.loganalytics.io"],
        Api::Sandbox => &[],
    }
}

fn entra_error(status: StatusCode, error: &str, code: u32, description: String) -> Response {
    let now = time::OffsetDateTime::now_utc();
    let ts = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let trace_id = new_guid();
    let correlation_id = new_guid();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, axum::Json(body)).into_response()
}

/// A client assertion must be present and look like a compact JWS (three base64url
/// segments). Its signature is deliberately NOT verified: the sandbox has no federated
/// identity provider to check it against, and the point is to exercise the handler's
/// assertion plumbing (managed identity → app registration), not Entra's crypto.
fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub async fn issue_token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };

    // Tenants are addressed by id or by their initial domain.
    let tenant_id = state
        .tenants_public
        .iter()
        .find(|t| {
            t.tenant_id.eq_ignore_ascii_case(&tenant)
                || format!("{}.onmicrosoft.com", t.display_name.to_lowercase())
                    == tenant.to_lowercase()
        })
        .map(|t| t.tenant_id.clone());
    let Some(tenant_id) = tenant_id else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    };

    match field("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!(
                    "The app requested an unsupported grant type '{other}'. The sandbox supports client_credentials only."
                ),
            );
        }
        None => {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.".into(),
            );
        }
    }

    let Some(client_id) = field("client_id") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.".into(),
        );
    };
    if !client_id.eq_ignore_ascii_case(&state.client_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        );
    }

    match (field("client_secret"), field("client_assertion")) {
        (Some(secret), _) => {
            if secret != state.client_secret {
                return entra_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                );
            }
        }
        (None, Some(assertion)) => {
            if field("client_assertion_type")
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    50027,
                    "client_assertion_type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.".into(),
                );
            }
            if !looks_like_jwt(assertion) {
                return entra_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    50027,
                    "JWT token is invalid or malformed.".into(),
                );
            }
        }
        (None, None) => {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.".into(),
            );
        }
    }

    let Some(scope) = field("scope") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.".into(),
        );
    };
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let [scope] = scopes.as_slice() else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a single scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    let Some(resource) = scope
        .strip_suffix("/.default")
        .or_else(|| scope.strip_suffix(".default"))
    else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    let resource = resource.trim_end_matches('/');
    let Some(audience) = RESOURCES
        .iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(resource))
        .map(|(_, a)| *a)
    else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant_id}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        );
    };

    let token_bytes: [u8; 32] = rand::rng().random();
    let access_token = format!(
        "sbx.{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token_bytes
        )
    );
    let lifetime = state.options.token_lifetime;
    state.tokens().insert(
        access_token.clone(),
        TokenRecord {
            tenant_id: tenant_id.clone(),
            audience: audience.to_string(),
            app_id: state.client_id.clone(),
            roles: state.granted_roles(audience),
            expires_at: Instant::now() + lifetime,
        },
    );
    state.faults.record_token(&tenant_id, audience);
    let secs = lifetime.as_secs();
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": secs,
        "ext_expires_in": secs,
        "access_token": access_token,
    }))
    .into_response()
}

/// The authenticated caller, put into request extensions by the auth middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
    pub app_id: String,
    /// The application permissions (app roles) the token carries.
    pub roles: Vec<String>,
}

enum AuthFailure {
    Missing,
    Unknown,
    Expired,
    WrongAudience(String),
}

fn auth_error(api: Api, failure: AuthFailure) -> ApiError {
    let (status, code, message) = match (api, failure) {
        (_, AuthFailure::WrongAudience(aud)) => {
            let code = match api {
                Api::Defender => "Forbidden",
                Api::Graph => "Authorization_RequestDenied",
                Api::Arm => "InvalidAuthenticationTokenAudience",
                Api::LogAnalytics => "InsufficientAccessError",
                Api::Sandbox => "Forbidden",
            };
            (
                StatusCode::FORBIDDEN,
                code,
                format!(
                    "The access token has an invalid audience '{aud}' for this API; expected '{}'.",
                    accepted_audiences(api).first().copied().unwrap_or_default()
                ),
            )
        }
        (Api::Defender, f) => (
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            match f {
                AuthFailure::Missing => "Authorization header is missing.".to_string(),
                AuthFailure::Expired => "The access token has expired.".to_string(),
                _ => "The access token is invalid.".to_string(),
            },
        ),
        (Api::Graph, f) => (
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            match f {
                AuthFailure::Missing => "Access token is empty.".to_string(),
                AuthFailure::Expired => {
                    "Lifetime validation failed, the token is expired.".to_string()
                }
                _ => "IDX14100: JWT is not well formed.".to_string(),
            },
        ),
        (Api::Arm, AuthFailure::Missing) => (
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_string(),
        ),
        (Api::Arm, AuthFailure::Expired) => (
            StatusCode::UNAUTHORIZED,
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.".to_string(),
        ),
        (Api::Arm, _) => (
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.".to_string(),
        ),
        (Api::LogAnalytics, AuthFailure::Expired) => (
            StatusCode::UNAUTHORIZED,
            "TokenExpired",
            "The provided authentication token has expired.".to_string(),
        ),
        (Api::LogAnalytics, _) => (
            StatusCode::UNAUTHORIZED,
            "AuthorizationRequiredError",
            "Valid authentication was not provided".to_string(),
        ),
        (Api::Sandbox, _) => (
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".to_string(),
        ),
    };
    let mut err = ApiError::new(api, status, code, message);
    if status == StatusCode::UNAUTHORIZED {
        err = err.with_header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"");
    }
    err
}

/// Validates the bearer token for `api` and returns the caller.
fn authenticate(
    state: &AppState,
    api: Api,
    auth_header: Option<&HeaderValue>,
) -> Result<Caller, ApiError> {
    let raw = auth_header
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim();
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
            t.trim()
        }
        _ => return Err(auth_error(api, AuthFailure::Missing)),
    };
    let record = state
        .tokens()
        .get(token)
        .cloned()
        .ok_or_else(|| auth_error(api, AuthFailure::Unknown))?;
    if record.expires_at <= Instant::now() {
        return Err(auth_error(api, AuthFailure::Expired));
    }
    if !accepted_audiences(api).contains(&record.audience.as_str()) {
        return Err(auth_error(api, AuthFailure::WrongAudience(record.audience)));
    }
    Ok(Caller {
        tenant_id: record.tenant_id,
        app_id: record.app_id,
        roles: record.roles,
    })
}

async fn require(state: AppState, api: Api, mut req: Request<Body>, next: Next) -> Response {
    match authenticate(&state, api, req.headers().get(header::AUTHORIZATION)) {
        Ok(caller) => {
            req.extensions_mut().insert(caller.clone());
            crate::contract::enforce(&state, api, &caller, req, next).await
        }
        Err(e) => e.into_response(),
    }
}

pub async fn require_defender(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    require(state, Api::Defender, req, next).await
}

pub async fn require_graph(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    require(state, Api::Graph, req, next).await
}

pub async fn require_arm(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    require(state, Api::Arm, req, next).await
}

pub async fn require_loganalytics(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    require(state, Api::LogAnalytics, req, next).await
}
