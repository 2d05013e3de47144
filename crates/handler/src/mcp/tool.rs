//! What a tool is: one typed definition (parameters, output, effect, toolset) and its handler,
//! side by side. The input and output schemas come from the same Rust types the handler uses.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::approvals::Plan;
use crate::audit::Storing;
use crate::auth::Caller;
use crate::outbound::ApiError;
use crate::services::Services;
use crate::tenants::TenantRefusal;

pub use super::toolsets::Toolset;

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

impl Effect {
    /// Only a read-only tool's audit record may wait for its answer to go out first.
    pub fn audit_storing(self) -> Storing {
        match self {
            Effect::Read => Storing::AfterAnswer,
            Effect::Write { .. } | Effect::Destructive { .. } => Storing::BeforeAnswer,
        }
    }
}

pub use crate::roles::Tier;

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

/// What a tool call may use: the shared services, and who is calling. Tools never reach other tools.
#[derive(Clone)]
pub struct ToolContext {
    pub services: Arc<Services>,
    pub caller: Arc<Caller>,
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

/// A refused query is the caller's to rewrite: an invalid argument, worded by the guard.
impl From<crate::kql_guard::KqlRefusal> for ToolError {
    fn from(refusal: crate::kql_guard::KqlRefusal) -> Self {
        Self::InvalidArgument(refusal.to_string())
    }
}

impl From<crate::jobs::JobsError> for ToolError {
    fn from(error: crate::jobs::JobsError) -> Self {
        match error {
            crate::jobs::JobsError::NotFound(id) => Self::NotFound(format!(
                "no job with id {id}; job_list shows the recent jobs"
            )),
            other => Self::Storage(other.to_string()),
        }
    }
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
            Self::Api(error) => error.status().is_none_or(|status| {
                status.is_server_error() || status.as_u16() == 401 || status.as_u16() == 403
            }),
            Self::Storage(_) | Self::Failed(_) => true,
            _ => false,
        }
    }
}

#[async_trait::async_trait]
pub trait Tool: Send + Sync + 'static {
    type Params: DeserializeOwned + JsonSchema + Send + Sync + 'static;
    type Output: Serialize + JsonSchema + Summary + Send + 'static;

    fn spec(&self) -> ToolSpec;

    /// For a tool that starts durable operations: what each operation sends to one target, so
    /// that any instance can continue the tool's operations ([`crate::operations`]).
    fn target_action(
        &self,
        _services: &Arc<Services>,
    ) -> Option<Arc<dyn crate::operations::TargetAction>> {
        None
    }

    /// For destructive tools: what the call will do, computed read-only before anyone is asked:
    /// the resolved targets and what happens to each. Invalid arguments are refused here, before
    /// a person is bothered. The catalogue adds the tenant. The default names no targets (the
    /// arguments, shown beside the plan, say it all).
    async fn plan(
        &self,
        _context: &ToolContext,
        _params: &Self::Params,
    ) -> Result<Plan, ToolError> {
        Ok(Plan::action(self.spec().title))
    }

    /// Whether these parameters only show what would happen (`preview: true`): such a call
    /// changes nothing and is never held for approval.
    fn is_preview(&self, _params: &Self::Params) -> bool {
        false
    }

    /// Carries out an approved plan. Tools whose plan resolves targets act on exactly those
    /// (the approval covered them); the default calls [`Tool::call`].
    async fn execute(
        &self,
        context: &ToolContext,
        params: Self::Params,
        _plan: Plan,
    ) -> Result<Self::Output, ToolError> {
        self.call(context, params).await
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: Self::Params,
    ) -> Result<Self::Output, ToolError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_calls_are_stored_after_their_answer() {
        assert_eq!(Effect::Read.audit_storing(), Storing::AfterAnswer);
        for effect in [
            Effect::Write { idempotent: true },
            Effect::Write { idempotent: false },
            Effect::Destructive { idempotent: true },
        ] {
            assert_eq!(effect.audit_storing(), Storing::BeforeAnswer, "{effect:?}");
        }
    }
}
