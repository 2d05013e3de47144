//! `toolsets_list`: how a model on a narrow connection (the triage default, say) learns what
//! else this server offers and how the person connects to it. The server keeps no session, so
//! a connection's tool list cannot grow mid-conversation; the answer names the URL instead.

use std::sync::{Arc, OnceLock};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dynamic::ToolSource;
use super::tool::{Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec};
use super::toolsets::{Toolset, ToolsetGroup};

pub const TOOL_NAME: &str = "toolsets_list";

/// One compiled tool as the index knows it.
pub struct Listed {
    pub name: &'static str,
    pub toolset: Toolset,
    pub tier: Tier,
    /// Name, description and input schema: what a client hands the model.
    pub model_bytes: usize,
}

pub struct ToolsetsList {
    /// The compiled tools this deployment offers (read-only mode and `MCP_TOOLSETS` applied),
    /// set once the catalogue is built.
    pub offered: Arc<OnceLock<Vec<Listed>>>,
    /// Sources of run-time tools (the PowerShell manifest) this deployment offers.
    pub sources: Vec<Arc<dyn ToolSource>>,
    /// `MCP_READ_ONLY`: run-time tools that change anything are not offered.
    pub read_only: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[derive(Serialize, JsonSchema)]
pub struct ToolsetsListOutput {
    toolsets: Vec<ToolsetEntry>,
    /// How to open a connection with other toolsets.
    connect: String,
}

#[derive(Serialize, JsonSchema)]
struct ToolsetEntry {
    name: &'static str,
    /// The family name that also selects it (`defender`, `sentinel`, ...).
    group: &'static str,
    about: &'static str,
    /// Path of a connection with only this toolset.
    url: String,
    /// The tools you may call in it (your role and this server's settings applied).
    tools: Vec<String>,
    /// About how many tokens its tool definitions cost a model (4 bytes a token).
    tokens: usize,
}

impl Summary for ToolsetsListOutput {
    fn summary(&self) -> String {
        let tools: usize = self.toolsets.iter().map(|t| t.tools.len()).sum();
        format!(
            "{} toolsets with {tools} tools available to you",
            self.toolsets.len()
        )
    }
}

#[async_trait::async_trait]
impl Tool for ToolsetsList {
    type Params = NoParams;
    type Output = ToolsetsListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: TOOL_NAME,
            title: "List toolsets",
            description: "Lists every toolset this server offers you, with its tools and the URL that connects to it. \
                          Use it when a task needs a tool this connection lacks: tell the person which URL to connect to.",
            toolset: Toolset::Tenants,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        _params: NoParams,
    ) -> Result<ToolsetsListOutput, ToolError> {
        let mut dynamic = Vec::new();
        for source in &self.sources {
            for tool in source.tools().await.iter() {
                let offered = !self.read_only || tool.effect == Effect::Read;
                if offered && context.caller.may_use(tool.tier) {
                    let bytes = serde_json::to_vec(&tool.definition).map_or(0, |b| b.len());
                    dynamic.push((tool.toolset, tool.name.clone(), bytes));
                }
            }
        }
        let toolsets = Toolset::ALL
            .into_iter()
            .filter_map(|toolset| {
                let mut bytes = 0;
                let mut tools = Vec::new();
                let offered = self.offered.get().map_or(&[][..], Vec::as_slice);
                for tool in offered.iter().filter(|t| t.toolset == toolset) {
                    if context.caller.may_use(tool.tier) {
                        tools.push(tool.name.to_string());
                        bytes += tool.model_bytes;
                    }
                }
                for (_, name, size) in dynamic.iter().filter(|(t, ..)| *t == toolset) {
                    tools.push(name.clone());
                    bytes += size;
                }
                (!tools.is_empty()).then(|| ToolsetEntry {
                    name: toolset.name(),
                    group: toolset.group().name(),
                    about: toolset.summary(),
                    url: format!("/api/mcp/x/{}", toolset.name()),
                    tools,
                    tokens: bytes.div_ceil(4),
                })
            })
            .collect();
        let groups: Vec<&str> = ToolsetGroup::ALL.map(ToolsetGroup::name).to_vec();
        Ok(ToolsetsListOutput {
            toolsets,
            connect: format!(
                "Connect to /api/mcp/x/<names> with toolset or group names separated by commas ({}, or all), \
                 add /readonly for read tools only; or send the header X-MCP-Toolsets. Plain /api/mcp is the triage set.",
                groups.join(", ")
            ),
        })
    }
}
