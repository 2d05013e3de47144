//! What a tool is: one typed definition (parameters, output, effect, toolset) and its handler,
//! side by side. The input and output schemas come from the same Rust types the handler uses.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::outbound::ApiError;
use crate::services::Services;
use crate::tenants::TenantRefusal;

/// Families of tools an operator can switch on or off (`MCP_TOOLSETS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Toolset {
    Tenants,
    Defender,
    Sentinel,
    Hunts,
    /// `job_get`, `job_list`, `job_cancel`: long work of every kind, observed one way.
    Jobs,
    /// `ps_<function>` tools generated from the sibling PowerShell app's manifest.
    PowerShell,
}

impl Toolset {
    pub const ALL: [Toolset; 6] = [Self::Tenants, Self::Defender, Self::Sentinel, Self::Hunts, Self::Jobs, Self::PowerShell];

    pub fn name(self) -> &'static str {
        match self {
            Self::Tenants => "tenants",
            Self::Defender => "defender",
            Self::Sentinel => "sentinel",
            Self::Hunts => "hunts",
            Self::Jobs => "jobs",
            Self::PowerShell => "powershell",
        }
    }
}

/// What a tool does to the world, which decides its MCP annotations and whether read-only
/// mode keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Changes nothing.
    Read,
    /// Creates or changes something that can be undone or is additive (an indicator, a comment).
    Write { idempotent: bool },
    /// Takes something away or cuts something off (isolation, offboarding, deletion).
    Destructive { idempotent: bool },
}

/// The least role a caller needs to use a tool (app roles of the inbound identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Reads.
    Reader,
    /// Response actions, indicators, incident updates, jobs.
    Responder,
    /// Rules, tables, data collection, offboarding, deletions.
    Admin,
}

#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub toolset: Toolset,
    pub effect: Effect,
    pub tier: Tier,
}

/// A one-line summary of a result for the text channel; the full result goes in structured content.
pub trait Summary {
    fn summary(&self) -> String;
}

/// What a tool call may use: the shared services and who is calling. Tools never reach other tools.
#[derive(Clone)]
pub struct ToolContext {
    pub services: Arc<Services>,
    pub caller: Caller,
}

/// Who made a call, as recorded on jobs and in the audit line.
///
/// Taken from the principal headers App Service Authentication adds (`X-MS-CLIENT-PRINCIPAL-NAME`,
/// else `-ID`); the platform refuses those headers from outside only while App Service
/// Authentication is on, so without it the name is only what the client claims. Calls without
/// them are `anonymous`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(String);

impl Caller {
    pub const ANONYMOUS: &'static str = "anonymous";

    pub fn from_headers(headers: &axum::http::HeaderMap) -> Self {
        ["x-ms-client-principal-name", "x-ms-client-principal-id"]
            .iter()
            .filter_map(|name| headers.get(*name)?.to_str().ok())
            .map(str::trim)
            .find(|value| !value.is_empty())
            .map(|value| Self(value.chars().take(256).collect()))
            .unwrap_or_else(Self::anonymous)
    }

    pub fn anonymous() -> Self {
        Self(Self::ANONYMOUS.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Errors a tool reports to the model as a readable tool error (`isError: true`), never as a
/// protocol failure, so the model can correct itself.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("invalid arguments: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Tenant(#[from] TenantRefusal),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("not found: {0}")]
    NotFound(String),
    /// Someone else changed the same thing first; reading it again and retrying is the fix.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The server's own storage could not be used; nothing was changed unless the message says so.
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// The service accepted the request and then reported that it failed.
    #[error("failed: {0}")]
    Failed(String),
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }

    /// A stable name for telemetry.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "invalid_argument",
            Self::Tenant(_) => "tenant_refused",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Storage(_) => "storage_unavailable",
            Self::Failed(_) => "operation_failed",
            Self::Api(ApiError::Throttled { .. }) => "throttled",
            Self::Api(_) => "api_error",
        }
    }

    /// Whether the failure is the service's (a Microsoft API erring, unreachable or refusing
    /// our token) rather than the caller's input.
    pub fn is_fault(&self) -> bool {
        match self {
            Self::Api(ApiError::Throttled { .. }) => false,
            Self::Api(error) => error.status().is_none_or(|status| status.is_server_error() || status.as_u16() == 401 || status.as_u16() == 403),
            Self::Storage(_) | Self::Failed(_) => true,
            _ => false,
        }
    }
}

#[async_trait::async_trait]
pub trait Tool: Send + Sync + 'static {
    type Params: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Summary + Send + 'static;

    fn spec(&self) -> ToolSpec;

    async fn call(&self, context: &ToolContext, params: Self::Params) -> Result<Self::Output, ToolError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_is_the_app_service_principal_or_anonymous() {
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(Caller::from_headers(&headers).as_str(), Caller::ANONYMOUS);
        headers.insert("x-ms-client-principal-id", "0c1f5595-fcd9-48f5-b95b-0a4c3b91b22e".parse().expect("header"));
        assert_eq!(Caller::from_headers(&headers).as_str(), "0c1f5595-fcd9-48f5-b95b-0a4c3b91b22e");
        headers.insert("x-ms-client-principal-name", "analyst@contoso.com".parse().expect("header"));
        assert_eq!(Caller::from_headers(&headers).to_string(), "analyst@contoso.com", "the name wins over the id");
        headers.insert("x-ms-client-principal-name", " ".parse().expect("header"));
        assert_eq!(Caller::from_headers(&headers).as_str(), "0c1f5595-fcd9-48f5-b95b-0a4c3b91b22e", "a blank name is no name");
    }
}
