//! The catalogue: every tool and prompt, their definitions built once at start, and the rules
//! (read-only mode, toolsets) that decide which a client sees and may call.
//!
//! rmcp's `#[tool_router]` macros are not used because tools here carry policy (toolset,
//! effect) the macros do not, and tools from the PowerShell manifest are added at run time.
//! Schemas still come from the same schemars-derived types, through rmcp's own helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ToolAnnotations};

use super::prompts::PromptDef;
use super::tool::{Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset};

type Invoke = Box<dyn Fn(ToolContext, JsonObject) -> BoxFuture<'static, CallToolResult> + Send + Sync>;

struct Entry {
    spec: ToolSpec,
    definition: rmcp::model::Tool,
    invoke: Invoke,
}

/// Which tools are offered: everything, or what read-only mode and the toolset list leave.
#[derive(Debug, Clone, Default)]
pub struct CatalogueFilter {
    pub read_only: bool,
    /// `None`: every toolset.
    pub toolsets: Option<BTreeSet<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("MCP_TOOLSETS names unknown toolset(s) {unknown:?}; known toolsets: {known}")]
    UnknownToolset { unknown: Vec<String>, known: String },
    #[error("two tools are named {0}")]
    DuplicateTool(&'static str),
}

pub struct Catalogue {
    entries: BTreeMap<&'static str, Entry>,
    prompts: Vec<PromptDef>,
    filter: CatalogueFilter,
    /// Built once: `tools/list` answers from here without rebuilding schemas.
    visible: Vec<rmcp::model::Tool>,
}

/// Why a named tool cannot be called.
pub enum Unavailable {
    Unknown,
    Hidden(String),
}

impl Catalogue {
    pub fn builder() -> CatalogueBuilder {
        CatalogueBuilder { entries: BTreeMap::new(), prompts: Vec::new(), duplicate: None }
    }

    pub fn visible_tools(&self) -> &[rmcp::model::Tool] {
        &self.visible
    }

    pub fn prompts(&self) -> &[PromptDef] {
        &self.prompts
    }

    pub fn prompt(&self, name: &str) -> Option<&PromptDef> {
        self.prompts.iter().find(|prompt| prompt.name == name)
    }

    pub fn call(&self, name: &str, context: ToolContext, arguments: JsonObject) -> Result<BoxFuture<'static, CallToolResult>, Unavailable> {
        let entry = self.entries.get(name).ok_or(Unavailable::Unknown)?;
        if let Some(reason) = hidden_reason(&self.filter, &entry.spec) {
            return Err(Unavailable::Hidden(reason));
        }
        Ok((entry.invoke)(context, arguments))
    }
}

fn hidden_reason(filter: &CatalogueFilter, spec: &ToolSpec) -> Option<String> {
    if filter.read_only && spec.effect != Effect::Read {
        return Some(format!("tool {} changes state and this server runs in read-only mode (MCP_READ_ONLY)", spec.name));
    }
    match &filter.toolsets {
        Some(enabled) if !enabled.contains(spec.toolset.name()) => Some(format!(
            "tool {} belongs to the {} toolset, which is switched off on this server (MCP_TOOLSETS)",
            spec.name,
            spec.toolset.name()
        )),
        _ => None,
    }
}

pub struct CatalogueBuilder {
    entries: BTreeMap<&'static str, Entry>,
    prompts: Vec<PromptDef>,
    duplicate: Option<&'static str>,
}

impl CatalogueBuilder {
    pub fn tool<T: Tool>(mut self, tool: T) -> Self {
        let spec = tool.spec();
        let definition = definition::<T>(&spec);
        let tool = Arc::new(tool);
        let name = spec.name;
        let effect = spec.effect;
        let tier = spec.tier;
        let invoke: Invoke = Box::new(move |context, arguments| {
            let tool = tool.clone();
            Box::pin(async move { run(tool.as_ref(), name, effect, tier, &context, arguments).await })
        });
        if self.entries.insert(name, Entry { spec, definition, invoke }).is_some() {
            self.duplicate = Some(name);
        }
        self
    }

    pub fn prompt(mut self, prompt: PromptDef) -> Self {
        self.prompts.push(prompt);
        self
    }

    pub fn build(self, filter: CatalogueFilter) -> Result<Catalogue, CatalogueError> {
        if let Some(name) = self.duplicate {
            return Err(CatalogueError::DuplicateTool(name));
        }
        if let Some(enabled) = &filter.toolsets {
            let unknown: Vec<String> =
                enabled.iter().filter(|name| !Toolset::ALL.iter().any(|t| t.name() == name.as_str())).cloned().collect();
            if !unknown.is_empty() {
                let known = Toolset::ALL.map(Toolset::name).join(", ");
                return Err(CatalogueError::UnknownToolset { unknown, known });
            }
        }
        let visible = self
            .entries
            .values()
            .filter(|entry| hidden_reason(&filter, &entry.spec).is_none())
            .map(|entry| entry.definition.clone())
            .collect();
        Ok(Catalogue { entries: self.entries, prompts: self.prompts, filter, visible })
    }
}

fn definition<T: Tool>(spec: &ToolSpec) -> rmcp::model::Tool {
    let (read_only, destructive, idempotent) = match spec.effect {
        Effect::Read => (true, false, true),
        Effect::Write { idempotent } => (false, false, idempotent),
        Effect::Destructive { idempotent } => (false, true, idempotent),
    };
    let annotations = ToolAnnotations::with_title(spec.title)
        .read_only(read_only)
        .destructive(destructive)
        .idempotent(idempotent)
        // Every tool talks to a Microsoft cloud service whose state others change too.
        .open_world(true);
    rmcp::model::Tool::new(spec.name, spec.description, JsonObject::new())
        .with_input_schema::<T::Params>()
        .with_title(spec.title)
        .with_output_schema::<T::Output>()
        .with_annotations(annotations)
}

async fn run<T: Tool>(tool: &T, name: &'static str, effect: Effect, tier: Tier, context: &ToolContext, arguments: JsonObject) -> CallToolResult {
    let started = Instant::now();
    let tenant = arguments.get("tenant_id").and_then(|v| v.as_str()).map(str::to_owned);
    let outcome = match serde_json::from_value::<T::Params>(serde_json::Value::Object(arguments)) {
        Err(error) => Err(ToolError::InvalidArgument(format!("{error}; see the tool's input schema in tools/list"))),
        // Every call gets one pacing deadline: waits for rate-limit slots, summed over all the
        // Microsoft calls it makes, never hold the MCP request past it.
        Ok(params) => crate::outbound::with_deadline(started + context.services.pacing_budget, tool.call(context, params)).await,
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let mutating = effect != Effect::Read;
    match outcome {
        Ok(output) => {
            tracing::info!(target: "audit", tool = name, tier = ?tier, tenant = tenant.as_deref(), mutating, outcome = "ok", duration_ms, "tool call");
            success(&output)
        }
        Err(error) => {
            tracing::info!(target: "audit", tool = name, tier = ?tier, tenant = tenant.as_deref(), mutating, outcome = "error", error = %error, duration_ms, "tool call");
            CallToolResult::error(vec![ContentBlock::text(error.to_string())])
        }
    }
}

/// A short summary first, for a person reading along, then the structured result (also as JSON
/// text, since many clients show only text to the model).
fn success<O: serde::Serialize + Summary>(output: &O) -> CallToolResult {
    match serde_json::to_value(output) {
        Ok(value) => {
            let mut result = CallToolResult::structured(value);
            result.content.insert(0, ContentBlock::text(output.summary()));
            result
        }
        Err(error) => CallToolResult::error(vec![ContentBlock::text(format!("the result could not be serialized: {error}"))]),
    }
}
