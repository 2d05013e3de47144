//! Resources a tool family can offer besides its tools (e.g. stored results), read through the
//! same shared services. The MCP server knows a family's resources only through this trait and
//! routes `resources/read` by URI scheme.

use rmcp::model::{ReadResourceResult, Resource, ResourceTemplate};

use super::tool::ToolContext;

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The URI is well formed but names nothing that exists.
    #[error("{0}")]
    NotFound(String),
    /// The URI is not one this provider understands.
    #[error("{0}")]
    Invalid(String),
    /// The resource exists but could not be read now (storage unavailable).
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait ResourceProvider: Send + Sync {
    /// The URI scheme this provider serves, without `://` (e.g. `hunt`).
    fn scheme(&self) -> &'static str;
    fn templates(&self) -> Vec<ResourceTemplate>;
    async fn list(&self, context: &ToolContext) -> Result<Vec<Resource>, ResourceError>;
    async fn read(
        &self,
        context: &ToolContext,
        uri: &str,
    ) -> Result<ReadResourceResult, ResourceError>;
}
