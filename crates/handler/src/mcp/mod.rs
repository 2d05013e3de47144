//! The MCP surface: the tool and prompt catalogue, and the rmcp server handler that serves it.
//! It knows tools only through the [`Tool`] trait; the transport knows it only as an rmcp service.

mod approval;
mod catalogue;
mod discovery;
mod dynamic;
mod prompts;
mod resources;
mod schema;
mod server;
mod tasks;
mod tool;
mod toolsets;

pub use approval::{
    APPROVAL_ID_ARGUMENT, ApprovalDecision, ApprovalKeyError, Approvals, CONFIRMATION_ARGUMENT,
    ClientAsks,
};
pub use catalogue::{
    CallPolicy, Catalogue, CatalogueBuilder, CatalogueError, CatalogueFilter, Invocation, annotate,
    model_bytes,
};
pub use dynamic::{DynamicHandler, DynamicOutput, DynamicTool, ToolSource};
pub use prompts::{PromptDef, PromptError};
pub use resources::{ResourceError, ResourceProvider};
pub use server::McpServer;
pub use tool::{Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec};
pub use toolsets::{ConnectionScope, Selection, Toolset, ToolsetGroup, UnknownToolsets};
