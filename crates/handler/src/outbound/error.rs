use std::time::Duration;

use reqwest::StatusCode;

use super::Api;
use crate::tenants::TenantId;

/// What went wrong talking to a Microsoft API, in terms a tool can explain to a person.
/// Never carries a token or a secret: token failures keep only the identity library's message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("could not get a token for {api} in tenant {tenant}: {message}")]
    Token {
        api: Api,
        tenant: TenantId,
        message: String,
    },
    #[error("{api} could not be reached ({detail})")]
    Transport { api: Api, detail: String },
    #[error("{api} was not asked: {reason}; nothing was sent")]
    NotSent { api: Api, reason: String },
    #[error("{api} throttled the request; retry after {} seconds", retry_after.as_secs())]
    Throttled { api: Api, retry_after: Duration },
    #[error("{api} answered {status}{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        api: Api,
        status: StatusCode,
        code: Option<String>,
        message: String,
    },
    #[error("{api} answered with a body this server could not read: {detail}")]
    Decode { api: Api, detail: String },
    #[error("refused to follow a link outside {api}: {link}")]
    ForeignLink { api: Api, link: String },
    #[error("held back to stay under Microsoft's rate limit for {what} in this tenant: the next call fits in {} seconds, longer than this call may wait; try again then", retry_after.as_secs().max(1))]
    RateLimited {
        api: Api,
        what: &'static str,
        retry_after: Duration,
    },
    #[error(
        "{api} request was sent and may have been carried out, but no answer came back ({detail}); it was not repeated because repeating it could act twice: check the current state before trying again"
    )]
    Unconfirmed { api: Api, detail: String },
    /// Microsoft's 403 for an app registration that lacks the application permission an
    /// endpoint needs: the fix is a consent, not a retry.
    #[error(
        "{api} refused the call: this server's app registration lacks the application permission {} in this tenant. A Global Administrator or Privileged Role Administrator of the tenant adds it (Entra admin center > App registrations, or Enterprise applications for a multi-tenant app > API permissions > Add a permission > {} > Application permissions > {}) and grants admin consent; then try again. ({message})",
        permissions.join(" or "), consent_api(*api), permissions.join(", ")
    )]
    MissingPermission {
        api: Api,
        /// Any one of these would do, as Microsoft names them.
        permissions: Vec<String>,
        message: String,
    },
}

/// Where the permission is found in Entra's "Add a permission" dialog.
fn consent_api(api: Api) -> &'static str {
    match api {
        Api::Defender => "APIs my organization uses > WindowsDefenderATP",
        Api::Graph => "Microsoft Graph",
        Api::Arm | Api::LogAnalytics => "the resource's Access control (IAM) role assignment",
    }
}

/// The permission names in a 403 message, in the two forms Microsoft uses:
/// Defender's "...required application permissions (Machine.Isolate, Machine.ReadWrite.All)..."
/// and Graph's "Missing application roles. API required roles: ThreatHunting.Read.All. ...".
fn permissions_named(message: &str) -> Vec<String> {
    let listed = if let Some(rest) = message.split("application permissions (").nth(1) {
        rest.split(')').next().unwrap_or_default()
    } else if let Some(rest) = message.split("API required roles:").nth(1) {
        rest.split(". ").next().unwrap_or_default()
    } else {
        return Vec::new();
    };
    listed
        .split(',')
        .map(|p| p.trim().trim_end_matches('.').to_string())
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
        .collect()
}

impl ApiError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Throttled { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            Self::MissingPermission { .. } => Some(StatusCode::FORBIDDEN),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

/// The error envelope shared by the Defender API, Graph, ARM and Log Analytics:
/// `{"error": {"code": "...", "message": "...", "innererror": {...}}}`.
#[derive(serde::Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    #[serde(alias = "innerError")]
    innererror: Option<InnerError>,
}

#[derive(serde::Deserialize)]
struct InnerError {
    message: Option<String>,
}

pub(super) fn status_error(api: Api, status: StatusCode, body: &[u8]) -> ApiError {
    let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(envelope) => {
            let inner = envelope.error.innererror.and_then(|inner| inner.message);
            let message = match (envelope.error.message, inner) {
                (Some(outer), Some(inner)) if outer != inner => format!("{outer} ({inner})"),
                (Some(outer), _) => outer,
                (None, Some(inner)) => inner,
                (None, None) => String::new(),
            };
            (envelope.error.code, message)
        }
        Err(_) => (
            None,
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        ),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("no detail").to_string()
    } else {
        message
    };
    if status == StatusCode::FORBIDDEN {
        let permissions = permissions_named(&message);
        if !permissions.is_empty() {
            return ApiError::MissingPermission {
                api,
                permissions,
                message,
            };
        }
    }
    ApiError::Status {
        api,
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_error_envelopes_become_code_and_message() {
        let body = br#"{"error":{"code":"ActiveRequestAlreadyExists","message":"Action is already in progress","target":"x"}}"#;
        let error = status_error(Api::Defender, StatusCode::BAD_REQUEST, body);
        assert_eq!(error.code(), Some("ActiveRequestAlreadyExists"));
        assert!(error.to_string().contains("Action is already in progress"));
    }

    #[test]
    fn inner_errors_are_kept() {
        let body = br#"{"error":{"code":"BadArgumentError","message":"The request had some invalid properties","innererror":{"code":"SyntaxError","message":"Query could not be parsed at 'foo'"}}}"#;
        let error = status_error(Api::LogAnalytics, StatusCode::BAD_REQUEST, body);
        assert!(
            error
                .to_string()
                .contains("Query could not be parsed at 'foo'"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_permission_names_the_permission_and_the_consent_step() {
        let defender = br#"{"error":{"code":"Forbidden","message":"The application does not have any of the required application permissions (Machine.Isolate) to access the resource.","target":"x"}}"#;
        let error = status_error(Api::Defender, StatusCode::FORBIDDEN, defender);
        let text = error.to_string();
        assert!(
            text.contains("lacks the application permission Machine.Isolate"),
            "{text}"
        );
        assert!(
            text.contains("WindowsDefenderATP") && text.contains("admin consent"),
            "{text}"
        );
        let graph = br#"{"error":{"code":"Forbidden","message":"Missing application roles. API required roles: SecurityIncident.Read.All, SecurityIncident.ReadWrite.All. Application roles in the token: ThreatHunting.Read.All."}}"#;
        let text = status_error(Api::Graph, StatusCode::FORBIDDEN, graph).to_string();
        assert!(
            text.contains("SecurityIncident.Read.All or SecurityIncident.ReadWrite.All")
                && text.contains("Microsoft Graph"),
            "{text}"
        );
        let other = br#"{"error":{"code":"AuthorizationFailed","message":"The client does not have authorization to perform action."}}"#;
        assert!(matches!(
            status_error(Api::Arm, StatusCode::FORBIDDEN, other),
            ApiError::Status { .. }
        ));
    }

    #[test]
    fn non_json_bodies_are_truncated_text() {
        let error = status_error(
            Api::Arm,
            StatusCode::BAD_GATEWAY,
            b"<html>bad gateway</html>",
        );
        assert!(error.to_string().contains("bad gateway"));
    }
}
