//! The catalogue: every tool and prompt, their definitions built once at start (or, for tool
//! sources such as the PowerShell manifest, once per refresh), and the rules (read-only mode,
//! toolsets) that decide which a client sees and may call.
//!
//! rmcp's `#[tool_router]` macros are not used because tools here carry policy (toolset,
//! effect) the macros do not, and tools from the PowerShell manifest are added at run time.
//! Schemas still come from the same schemars-derived types, through rmcp's own helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use tracing::Instrument;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ToolAnnotations};

use super::dynamic::{DynamicTool, ToolSource};
use super::prompts::PromptDef;
use super::resources::ResourceProvider;
use super::tool::{Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset};
use crate::telemetry;

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
    /// Only the providers of toolsets that are switched on.
    resources: Vec<Arc<dyn ResourceProvider>>,
    filter: CatalogueFilter,
    /// Built once: `tools/list` answers from here without rebuilding schemas.
    visible: Vec<rmcp::model::Tool>,
    /// Tool sets that change at run time; none means compiled tools cost nothing extra.
    sources: Vec<Arc<dyn ToolSource>>,
}

/// Why a named tool cannot be called.
pub enum Unavailable {
    Unknown,
    Hidden(String),
}

impl Catalogue {
    pub fn builder() -> CatalogueBuilder {
        CatalogueBuilder { entries: BTreeMap::new(), prompts: Vec::new(), resources: Vec::new(), sources: Vec::new(), duplicate: None }
    }

    /// The compiled tools this server offers (dynamic tools excluded: see [`Catalogue::list_tools`]).
    pub fn visible_tools(&self) -> &[rmcp::model::Tool] {
        &self.visible
    }

    /// Every tool a client may see now: the compiled ones, then each source's current set.
    pub async fn list_tools(&self) -> Vec<rmcp::model::Tool> {
        let mut tools = self.visible.clone();
        for source in &self.sources {
            let set = source.tools().await;
            tools.extend(self.visible_dynamic(&set).map(|tool| tool.definition.clone()));
        }
        tools
    }

    /// A visible tool's definition without waiting on a source's refresh.
    pub fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        if let Some(tool) = self.visible.iter().find(|tool| tool.name == name) {
            return Some(tool.clone());
        }
        self.sources.iter().find_map(|source| {
            let set = source.cached();
            self.visible_dynamic(&set).find(|tool| tool.name == name).map(|tool| tool.definition.clone())
        })
    }

    fn visible_dynamic<'a>(&'a self, set: &'a [DynamicTool]) -> impl Iterator<Item = &'a DynamicTool> + 'a {
        set.iter().filter(|tool| {
            !self.entries.contains_key(tool.name.as_str())
                && hidden_reason(&self.filter, &tool.name, tool.toolset, tool.effect).is_none()
        })
    }

    pub fn prompts(&self) -> &[PromptDef] {
        &self.prompts
    }

    pub fn resource_providers(&self) -> &[Arc<dyn ResourceProvider>] {
        &self.resources
    }

    pub fn prompt(&self, name: &str) -> Option<&PromptDef> {
        self.prompts.iter().find(|prompt| prompt.name == name)
    }

    pub async fn call(&self, name: &str, context: ToolContext, arguments: JsonObject) -> Result<CallToolResult, Unavailable> {
        if let Some(entry) = self.entries.get(name) {
            if let Some(reason) = hidden_reason(&self.filter, entry.spec.name, entry.spec.toolset, entry.spec.effect) {
                return Err(Unavailable::Hidden(reason));
            }
            return Ok((entry.invoke)(context, arguments).await);
        }
        for source in &self.sources {
            let set = source.tools().await;
            let Some(tool) = set.iter().find(|tool| tool.name == name) else { continue };
            if let Some(reason) = hidden_reason(&self.filter, &tool.name, tool.toolset, tool.effect) {
                return Err(Unavailable::Hidden(reason));
            }
            let handler = tool.handler.clone();
            let policy = Policy { name: &tool.name, effect: tool.effect, tier: tool.tier };
            let tenant = tenant_of(&arguments);
            let result = audited(&policy, &context, tenant.as_deref(), async {
                let output = handler.call(&context, arguments).await?;
                Ok(structured(output.summary, output.value))
            })
            .await;
            return Ok(result);
        }
        Err(Unavailable::Unknown)
    }
}

fn hidden_reason(filter: &CatalogueFilter, name: &str, toolset: Toolset, effect: Effect) -> Option<String> {
    if filter.read_only && effect != Effect::Read {
        return Some(format!("tool {name} changes state and this server runs in read-only mode (MCP_READ_ONLY)"));
    }
    match &filter.toolsets {
        Some(enabled) if !enabled.contains(toolset.name()) => Some(format!(
            "tool {name} belongs to the {} toolset, which is switched off on this server (MCP_TOOLSETS)",
            toolset.name()
        )),
        _ => None,
    }
}

pub struct CatalogueBuilder {
    entries: BTreeMap<&'static str, Entry>,
    prompts: Vec<PromptDef>,
    resources: Vec<(Toolset, Arc<dyn ResourceProvider>)>,
    sources: Vec<Arc<dyn ToolSource>>,
    duplicate: Option<&'static str>,
}

impl CatalogueBuilder {
    pub fn tool<T: Tool>(mut self, tool: T) -> Self {
        let spec = tool.spec();
        let definition = rmcp::model::Tool::new(spec.name, spec.description, JsonObject::new())
            .with_input_schema::<T::Params>()
            .with_output_schema::<T::Output>();
        let definition = annotate(definition, spec.title, spec.effect);
        let tool = Arc::new(tool);
        let name = spec.name;
        let policy = (spec.effect, spec.tier);
        let invoke: Invoke = Box::new(move |context, arguments| {
            let tool = tool.clone();
            Box::pin(async move {
                let policy = Policy { name, effect: policy.0, tier: policy.1 };
                let tenant = tenant_of(&arguments);
                audited(&policy, &context, tenant.as_deref(), async {
                    let params = serde_json::from_value::<T::Params>(serde_json::Value::Object(arguments))
                        .map_err(|error| ToolError::InvalidArgument(format!("{error}; see the tool's input schema in tools/list")))?;
                    let output = tool.call(&context, params).await?;
                    Ok(success(&output))
                })
                .await
            })
        });
        if self.entries.insert(name, Entry { spec, definition, invoke }).is_some() {
            self.duplicate = Some(name);
        }
        self
    }

    /// Adds a set of tools that is read at run time (see [`ToolSource`]).
    pub fn source(mut self, source: Arc<dyn ToolSource>) -> Self {
        self.sources.push(source);
        self
    }

    pub fn prompt(mut self, prompt: PromptDef) -> Self {
        self.prompts.push(prompt);
        self
    }

    /// Resources offered while `toolset` is switched on.
    pub fn resources(mut self, toolset: Toolset, provider: impl ResourceProvider + 'static) -> Self {
        self.resources.push((toolset, Arc::new(provider)));
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
            .filter(|entry| hidden_reason(&filter, entry.spec.name, entry.spec.toolset, entry.spec.effect).is_none())
            .map(|entry| entry.definition.clone())
            .collect();
        let resources = self
            .resources
            .into_iter()
            .filter(|(toolset, _)| filter.toolsets.as_ref().is_none_or(|enabled| enabled.contains(toolset.name())))
            .map(|(_, provider)| provider)
            .collect();
        Ok(Catalogue { entries: self.entries, prompts: self.prompts, resources, filter, visible, sources: self.sources })
    }
}

/// Title and behaviour hints a client shows and uses to decide on confirmation. Shared by
/// compiled and dynamic tools so both are described the same way.
pub fn annotate(definition: rmcp::model::Tool, title: &str, effect: Effect) -> rmcp::model::Tool {
    let (read_only, destructive, idempotent) = match effect {
        Effect::Read => (true, false, true),
        Effect::Write { idempotent } => (false, false, idempotent),
        Effect::Destructive { idempotent } => (false, true, idempotent),
    };
    let annotations = ToolAnnotations::with_title(title)
        .read_only(read_only)
        .destructive(destructive)
        .idempotent(idempotent)
        // Every tool talks to a Microsoft cloud service whose state others change too.
        .open_world(true);
    definition.with_title(title).with_annotations(annotations)
}

struct Policy<'a> {
    name: &'a str,
    effect: Effect,
    tier: Tier,
}

fn tenant_of(arguments: &JsonObject) -> Option<String> {
    arguments.get("tenant_id").and_then(|v| v.as_str()).map(str::to_owned)
}

/// Runs one call and writes its audit line: who, what, where, outcome, how long.
async fn audited(
    policy: &Policy<'_>,
    context: &ToolContext,
    tenant: Option<&str>,
    call: impl Future<Output = Result<CallToolResult, ToolError>>,
) -> CallToolResult {
    let started = Instant::now();
    let span = tracing::info_span!(target: telemetry::TOOL_TARGET, "tool call", otel.name = %format_args!("tool {}", policy.name), mcp.tool = policy.name);
    let outcome = call.instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let duration_ms = elapsed.as_millis() as u64;
    record_tool_telemetry(&span, policy.name, elapsed, outcome.as_ref().err());
    let mutating = policy.effect != Effect::Read;
    let (tool, tier, caller) = (policy.name, policy.tier, context.caller.as_str());
    match outcome {
        Ok(result) => {
            tracing::info!(target: "audit", tool, tier = ?tier, caller, tenant, mutating, outcome = "ok", duration_ms, "tool call");
            result
        }
        Err(error) => {
            tracing::info!(target: "audit", tool, tier = ?tier, caller, tenant, mutating, outcome = "error", error = %error, duration_ms, "tool call");
            CallToolResult::error(vec![ContentBlock::text(error.to_string())])
        }
    }
}

fn record_tool_telemetry(span: &tracing::Span, name: &str, elapsed: std::time::Duration, error: Option<&ToolError>) {
    if let Some(error) = error {
        // Faults (the server or a Microsoft API misbehaving) are exceptions worth an alert; a
        // refused argument or tenant is the caller's to fix.
        if error.is_fault() {
            telemetry::record_exception(span, error.kind(), &error.to_string());
        } else {
            telemetry::record_failure(span, error.kind());
        }
    }
    if let Some(metrics) = telemetry::metrics() {
        metrics.tool_call(name, elapsed.as_secs_f64() * 1000.0, error.map(ToolError::kind));
    }
}

/// A short summary first, for a person reading along, then the structured result (also as JSON
/// text, since many clients show only text to the model).
fn success<O: serde::Serialize + Summary>(output: &O) -> CallToolResult {
    match serde_json::to_value(output) {
        Ok(value) => structured(output.summary(), value),
        Err(error) => CallToolResult::error(vec![ContentBlock::text(format!("the result could not be serialized: {error}"))]),
    }
}

fn structured(summary: String, value: serde_json::Value) -> CallToolResult {
    let mut result = CallToolResult::structured(value);
    result.content.insert(0, ContentBlock::text(summary));
    result
}
