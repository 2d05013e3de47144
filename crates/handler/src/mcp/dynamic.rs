//! Tools whose definitions are data read at run time (the PowerShell manifest) rather than Rust
//! types compiled in. A [`ToolSource`] offers a set that may change while the server runs; the
//! catalogue asks it on `tools/list` and `tools/call` and applies the same policy (read-only
//! mode, toolsets, audit) as to compiled tools.

use std::sync::Arc;

use rmcp::model::JsonObject;

use super::tool::{Effect, Tier, ToolContext, ToolError, Toolset};

/// The result of a dynamic tool: a line for people and the structured value.
pub struct DynamicOutput {
    pub summary: String,
    pub value: serde_json::Value,
}

#[async_trait::async_trait]
pub trait DynamicHandler: Send + Sync {
    async fn call(
        &self,
        context: &ToolContext,
        arguments: JsonObject,
    ) -> Result<DynamicOutput, ToolError>;
}

/// One tool of a dynamic set: its policy, its MCP definition (schemas built once per refresh)
/// and what runs it.
#[derive(Clone)]
pub struct DynamicTool {
    pub name: String,
    pub toolset: Toolset,
    pub effect: Effect,
    pub tier: Tier,
    pub definition: rmcp::model::Tool,
    pub handler: Arc<dyn DynamicHandler>,
}

/// A set of tools that can change without a redeploy.
#[async_trait::async_trait]
pub trait ToolSource: Send + Sync {
    /// The current set, refreshed first if the source considers it stale. A source that cannot
    /// refresh keeps its last good set (and logs why) rather than failing `tools/list`.
    async fn tools(&self) -> Arc<Vec<DynamicTool>>;

    /// The set as last refreshed, without waiting on storage (for synchronous look-ups).
    fn cached(&self) -> Arc<Vec<DynamicTool>>;
}
