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
}

impl Toolset {
    pub const ALL: [Toolset; 3] = [Self::Tenants, Self::Defender, Self::Sentinel];

    pub fn name(self) -> &'static str {
        match self {
            Self::Tenants => "tenants",
            Self::Defender => "defender",
            Self::Sentinel => "sentinel",
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

/// What a tool call may use: the shared services. Tools never reach other tools.
#[derive(Clone)]
pub struct ToolContext {
    pub services: Arc<Services>,
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
    /// The target changed since it was read, or is in a state that refuses the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The service accepted the request and then reported that it failed.
    #[error("failed: {0}")]
    Failed(String),
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }
}

#[async_trait::async_trait]
pub trait Tool: Send + Sync + 'static {
    type Params: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Summary + Send + 'static;

    fn spec(&self) -> ToolSpec;

    async fn call(&self, context: &ToolContext, params: Self::Params) -> Result<Self::Output, ToolError>;
}
