//! The catalogue: every tool and prompt, their definitions built once at start (or, for tool
//! sources such as the PowerShell manifest, once per refresh), and the rules
//! every call passes through: read-only mode and toolsets (which tools exist on this server), the
//! caller's tier (which of them a caller sees and may call), input size, human approval for
//! destructive tools, and the audit record of each call.
//!
//! rmcp's `#[tool_router]` macros are not used because tools here carry policy (toolset,
//! effect, tier) the macros do not, and tools from the PowerShell manifest are added at run time.
//! Schemas still come from the same schemars-derived types, through rmcp's own helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, InputResponses, JsonObject, ToolAnnotations,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tracing::Instrument;

use super::approval::{
    APPROVAL_ID_ARGUMENT, Answer, ApprovalDecision, ApprovalRequest, Approvals, Approved,
    CONFIRMATION_ARGUMENT, ClientAsks, Gate,
};
use super::discovery::{self, Listed, ToolsetsList};
use super::dynamic::{DynamicTool, ToolSource};
use super::prompts::PromptDef;
use super::resources::ResourceProvider;
use super::schema;
use super::tool::{Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset};
use super::toolsets::{ConnectionScope, Selection};
use crate::approvals::{Plan, PlanTenant};
use crate::audit::{AuditRecord, Outcome, action_ids, redact_arguments, sensitive_fields};
use crate::auth::Caller;
use crate::services::Services;
use crate::telemetry;
use crate::tenants::TenantId;

/// Everything one `tools/call` brings besides the tool's name.
pub struct Invocation {
    pub caller: Arc<Caller>,
    pub arguments: JsonObject,
    /// MRTR: the sealed state and the client's answers, when this is a retried call.
    pub request_state: Option<String>,
    pub input_responses: Option<InputResponses>,
    /// What the client can show the person (elicitation forms, URLs) over MRTR.
    pub client: ClientAsks,
}

/// Server-wide rules applied to every call.
pub struct CallPolicy {
    pub approvals: Approvals,
    /// Largest `arguments` object, in bytes of JSON (`MCP_MAX_ARGUMENT_BYTES`).
    pub max_argument_bytes: usize,
    /// The longest a call may take from arrival to answer (`MCP_CALL_DEADLINE_SECONDS`).
    pub call_deadline: Duration,
}

/// Kept from the call's deadline for what follows the tool: its outcome record (at most
/// `audit::OUTCOME_WAIT`) and the answer itself.
const ANSWER_RESERVE: Duration = Duration::from_secs(3);

/// How long past its deadline a tool that does not stop by itself is let run before it is cut
/// off. Every wait inside a call ends at the deadline; this only catches one that does not.
const CUT_OFF_GRACE: Duration = Duration::from_secs(1);

type Invoke = Box<
    dyn Fn(ToolContext, Arc<CallPolicy>, Invocation) -> BoxFuture<'static, CallToolResponse>
        + Send
        + Sync,
>;

struct Entry {
    spec: ToolSpec,
    definition: rmcp::model::Tool,
    /// Argument names the input schema marks secret, kept out of the audit trail.
    sensitive: Arc<Vec<String>>,
    invoke: Invoke,
}

/// Which tools this deployment offers: everything, or what read-only mode and the toolset list
/// (`MCP_READ_ONLY`, `MCP_TOOLSETS`) leave. Connections narrow it further, never widen it.
#[derive(Debug, Clone)]
pub struct CatalogueFilter {
    pub read_only: bool,
    /// The toolsets the deployment offers (`MCP_TOOLSETS`, parsed with the settings).
    pub toolsets: Selection,
}

impl Default for CatalogueFilter {
    /// Every toolset, read and write.
    fn default() -> Self {
        Self {
            read_only: false,
            toolsets: Selection::all(),
        }
    }
}

impl CatalogueFilter {
    /// Whether any tool of `toolset` can be offered (the PowerShell family reads its manifest
    /// only then).
    pub fn offers(&self, toolset: Toolset) -> bool {
        self.toolsets.touches(toolset)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("two tools are named {0}")]
    DuplicateTool(&'static str),
    #[error("the triage set names tool(s) {0:?} that are not in the catalogue")]
    UnknownTriageTool(Vec<&'static str>),
}

/// The deployment's rules for which tools exist, shared by compiled and run-time tools.
struct Offer {
    selection: Selection,
    read_only: bool,
    /// The default set of a connection that names no toolset.
    triage: BTreeSet<&'static str>,
}

impl Offer {
    /// Why this deployment, or this connection, does not offer a tool.
    fn hidden_reason(
        &self,
        scope: Option<&ConnectionScope>,
        name: &str,
        toolset: Toolset,
        effect: Effect,
    ) -> Option<String> {
        let in_triage = self.triage.contains(name);
        if self.read_only && effect != Effect::Read {
            return Some(format!(
                "tool {name} changes state and this server runs in read-only mode (MCP_READ_ONLY)"
            ));
        }
        if !self.selection.contains(toolset, in_triage) {
            return Some(format!(
                "tool {name} belongs to the {toolset} toolset, which is switched off on this server (MCP_TOOLSETS)"
            ));
        }
        let scope = scope?;
        if scope.read_only && effect != Effect::Read {
            return Some(format!(
                "tool {name} changes state and this connection is read-only (a URL ending in /readonly, \
                 or X-MCP-Readonly: true); the person must connect without it to use this tool"
            ));
        }
        if !scope.contains(toolset, in_triage) {
            return Some(format!(
                "tool {name} is not offered on this connection ({}); it is in the {toolset} toolset: the person \
                 can connect to /api/mcp/x/{toolset} (or add {toolset} to the toolsets named); toolsets_list shows them all",
                scope.described()
            ));
        }
        None
    }
}

/// A compiled tool this deployment offers, with what a connection and a caller are checked against.
struct Offered {
    name: &'static str,
    toolset: Toolset,
    effect: Effect,
    tier: Tier,
    definition: rmcp::model::Tool,
}

pub struct Catalogue {
    entries: BTreeMap<&'static str, Entry>,
    prompts: Vec<PromptDef>,
    offer: Offer,
    /// Built once: `tools/list` answers from here without rebuilding schemas.
    offered: Vec<Offered>,
    all_visible: Vec<rmcp::model::Tool>,
    /// Only the providers of toolsets that are switched on.
    resources: Vec<(Toolset, Arc<dyn ResourceProvider>)>,
    /// Tool sets that change at run time; none means compiled tools cost nothing extra.
    sources: Vec<Arc<dyn ToolSource>>,
}

/// Why a named tool cannot be called.
pub enum Unavailable {
    Unknown,
    Hidden(String),
    /// The caller's roles do not reach the tool's tier.
    NeedsTier(Tier),
}

impl Catalogue {
    pub fn builder() -> CatalogueBuilder {
        CatalogueBuilder {
            entries: BTreeMap::new(),
            services: None,
            prompts: Vec::new(),
            resources: Vec::new(),
            sources: Vec::new(),
            triage: Vec::new(),
            duplicate: None,
        }
    }

    /// Every compiled tool this server offers, whoever asks (dynamic tools come from their sources).
    pub fn visible_tools(&self) -> &[rmcp::model::Tool] {
        &self.all_visible
    }

    /// The tools `caller` may call now on a connection: the compiled ones, then each source's
    /// current set.
    pub async fn tools_for(
        &self,
        caller: &Caller,
        scope: &ConnectionScope,
    ) -> Vec<rmcp::model::Tool> {
        let mut tools: Vec<rmcp::model::Tool> = self
            .offered
            .iter()
            .filter(|tool| {
                caller.may_use(tool.tier)
                    && self
                        .offer
                        .hidden_reason(Some(scope), tool.name, tool.toolset, tool.effect)
                        .is_none()
            })
            .map(|tool| tool.definition.clone())
            .collect();
        for source in &self.sources {
            let set = source.tools().await;
            tools.extend(
                self.visible_dynamic(&set)
                    .filter(|tool| {
                        caller.may_use(tool.tier)
                            && self
                                .offer
                                .hidden_reason(Some(scope), &tool.name, tool.toolset, tool.effect)
                                .is_none()
                    })
                    .map(|tool| tool.definition.clone()),
            );
        }
        tools
    }

    /// A visible tool's definition without waiting on a source's refresh.
    pub fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        if let Some(tool) = self.all_visible.iter().find(|tool| tool.name == name) {
            return Some(tool.clone());
        }
        self.sources.iter().find_map(|source| {
            let set = source.cached();
            self.visible_dynamic(&set)
                .find(|tool| tool.name == name)
                .map(|tool| tool.definition.clone())
        })
    }

    fn visible_dynamic<'a>(
        &'a self,
        set: &'a [DynamicTool],
    ) -> impl Iterator<Item = &'a DynamicTool> + 'a {
        set.iter().filter(|tool| {
            !self.entries.contains_key(tool.name.as_str())
                && self
                    .offer
                    .hidden_reason(None, &tool.name, tool.toolset, tool.effect)
                    .is_none()
        })
    }

    /// Whether this deployment serves resources at all (the capability `initialize` announces).
    pub fn has_resources(&self) -> bool {
        !self.resources.is_empty()
    }

    /// The resource providers of the toolsets a connection selects.
    pub fn resource_providers(&self, scope: &ConnectionScope) -> Vec<Arc<dyn ResourceProvider>> {
        self.resources
            .iter()
            .filter(|(toolset, _)| scope.touches(*toolset))
            .map(|(_, provider)| provider.clone())
            .collect()
    }

    pub fn prompts(&self) -> &[PromptDef] {
        &self.prompts
    }

    pub fn prompt(&self, name: &str) -> Option<&PromptDef> {
        self.prompts.iter().find(|prompt| prompt.name == name)
    }

    /// The call's answer, or why it cannot be made (with the invocation handed back for the audit record).
    pub async fn call(
        &self,
        name: &str,
        scope: &ConnectionScope,
        context: ToolContext,
        policy: Arc<CallPolicy>,
        invocation: Invocation,
    ) -> Result<CallToolResponse, (Unavailable, Invocation)> {
        if let Some(entry) = self.entries.get(name) {
            if let Some(reason) = self.offer.hidden_reason(
                Some(scope),
                entry.spec.name,
                entry.spec.toolset,
                entry.spec.effect,
            ) {
                return Err((Unavailable::Hidden(reason), invocation));
            }
            if !invocation.caller.may_use(entry.spec.tier) {
                return Err((Unavailable::NeedsTier(entry.spec.tier), invocation));
            }
            return Ok((entry.invoke)(context, policy, invocation).await);
        }
        for source in &self.sources {
            let set = source.tools().await;
            let Some(tool) = set.iter().find(|tool| tool.name == name) else {
                continue;
            };
            if let Some(reason) =
                self.offer
                    .hidden_reason(Some(scope), &tool.name, tool.toolset, tool.effect)
            {
                return Err((Unavailable::Hidden(reason), invocation));
            }
            if !invocation.caller.may_use(tool.tier) {
                return Err((Unavailable::NeedsTier(tool.tier), invocation));
            }
            let sensitive = sensitive_fields(&tool.definition.input_schema);
            let title = tool.definition.title.as_deref().unwrap_or(&tool.name);
            let call = Call {
                profile: Profile {
                    name: &tool.name,
                    title,
                    tier: tool.tier,
                    effect: tool.effect,
                    sensitive: &sensitive,
                    takes_tenant: takes_tenant(&tool.definition),
                },
                context: &context,
                policy: &policy,
            };
            return Ok(call.run(tool, invocation).await);
        }
        Err((Unavailable::Unknown, invocation))
    }

    /// The audit record of a call refused before its tool was reached.
    pub fn refusal_record(&self, name: &str, invocation: &Invocation, reason: &str) -> AuditRecord {
        let entry = self.entries.get(name);
        let sensitive = entry.map(|e| e.sensitive.as_slice()).unwrap_or_default();
        let mut record = new_record(
            name,
            entry.map(|e| e.spec.tier),
            &invocation.caller,
            &invocation.arguments,
            sensitive,
        );
        record.outcome = Outcome::Refused;
        record.error = Some(reason.to_string());
        record
    }
}

pub struct CatalogueBuilder {
    entries: BTreeMap<&'static str, Entry>,
    /// Where tools that start durable operations register what the operations send.
    services: Option<Arc<Services>>,
    prompts: Vec<PromptDef>,
    resources: Vec<(Toolset, Arc<dyn ResourceProvider>)>,
    sources: Vec<Arc<dyn ToolSource>>,
    triage: Vec<&'static str>,
    duplicate: Option<&'static str>,
}

impl CatalogueBuilder {
    /// Tools registered from here on register their operation actions with `services`.
    pub fn operations_on(mut self, services: Arc<Services>) -> Self {
        self.services = Some(services);
        self
    }

    pub fn tool<T: Tool>(mut self, tool: T) -> Self {
        let spec = tool.spec();
        if let Some(services) = &self.services
            && let Some(action) = tool.target_action(services)
        {
            services.operations.register(spec.name, action);
        }
        let definition = definition::<T>(&spec);
        let sensitive = Arc::new(sensitive_fields(&definition.input_schema));
        let takes_tenant = takes_tenant(&definition);
        let tool = Compiled(Arc::new(tool));
        let name = spec.name;
        let run_spec = spec.clone();
        let run_sensitive = sensitive.clone();
        let invoke: Invoke = Box::new(move |context, policy, invocation| {
            let tool = Compiled(tool.0.clone());
            let spec = run_spec.clone();
            let sensitive = run_sensitive.clone();
            Box::pin(async move {
                let call = Call {
                    profile: Profile {
                        name: spec.name,
                        title: spec.title,
                        tier: spec.tier,
                        effect: spec.effect,
                        sensitive: &sensitive,
                        takes_tenant,
                    },
                    context: &context,
                    policy: &policy,
                };
                call.run(&tool, invocation).await
            })
        });
        if self
            .entries
            .insert(
                name,
                Entry {
                    spec,
                    definition,
                    sensitive,
                    invoke,
                },
            )
            .is_some()
        {
            self.duplicate = Some(name);
        }
        self
    }

    /// The tools a connection that names no toolset gets (see [`super::toolsets`]).
    pub fn triage(mut self, names: &[&'static str]) -> Self {
        self.triage.extend_from_slice(names);
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
    pub fn resources(
        mut self,
        toolset: Toolset,
        provider: impl ResourceProvider + 'static,
    ) -> Self {
        self.resources.push((toolset, Arc::new(provider)));
        self
    }

    pub fn build(mut self, filter: CatalogueFilter) -> Result<Catalogue, CatalogueError> {
        // The discovery tool lists itself too, so its index is filled once everything is registered.
        let index = Arc::new(OnceLock::new());
        let discovery = ToolsetsList {
            offered: index.clone(),
            sources: self.sources.clone(),
            read_only: filter.read_only,
        };
        self = self.tool(discovery);
        if let Some(name) = self.duplicate {
            return Err(CatalogueError::DuplicateTool(name));
        }
        let unknown: Vec<&'static str> = self
            .triage
            .iter()
            .copied()
            .filter(|name| !self.entries.contains_key(name))
            .collect();
        if !unknown.is_empty() {
            return Err(CatalogueError::UnknownTriageTool(unknown));
        }
        let mut triage: BTreeSet<&'static str> = self.triage.iter().copied().collect();
        triage.insert(discovery::TOOL_NAME);
        let offer = Offer {
            selection: filter.toolsets,
            read_only: filter.read_only,
            triage,
        };
        let offered: Vec<Offered> = self
            .entries
            .values()
            .filter(|entry| {
                let spec = &entry.spec;
                offer
                    .hidden_reason(None, spec.name, spec.toolset, spec.effect)
                    .is_none()
            })
            .map(|entry| Offered {
                name: entry.spec.name,
                toolset: entry.spec.toolset,
                effect: entry.spec.effect,
                tier: entry.spec.tier,
                definition: entry.definition.clone(),
            })
            .collect();
        index.get_or_init(|| {
            offered
                .iter()
                .map(|tool| Listed {
                    name: tool.name,
                    toolset: tool.toolset,
                    tier: tool.tier,
                    model_bytes: model_bytes(&tool.definition),
                })
                .collect()
        });
        let all_visible = offered.iter().map(|tool| tool.definition.clone()).collect();
        let resources = self
            .resources
            .into_iter()
            .filter(|(toolset, _)| offer.selection.touches(*toolset))
            .collect();
        Ok(Catalogue {
            entries: self.entries,
            prompts: self.prompts,
            offer,
            offered,
            all_visible,
            resources,
            sources: self.sources,
        })
    }
}

/// What a client hands a model for one tool: its name, description and input schema.
pub fn model_bytes(tool: &rmcp::model::Tool) -> usize {
    let schema = serde_json::to_vec(&*tool.input_schema).map_or(0, |bytes| bytes.len());
    tool.name.len() + tool.description.as_deref().map_or(0, str::len) + schema
}

/// Title and behaviour hints a client shows and uses to decide on confirmation. Shared by
/// compiled and dynamic tools so both are described the same way.
pub fn annotate(definition: rmcp::model::Tool, title: &str, effect: Effect) -> rmcp::model::Tool {
    let (read_only, destructive, idempotent) = match effect {
        Effect::Read => (true, false, true),
        Effect::Write { idempotent } => (false, false, idempotent),
        Effect::Destructive { idempotent } => (false, true, idempotent),
    };
    // The title is said once, on the tool; a copy in the annotations would be paid for again.
    let annotations = ToolAnnotations::new()
        .read_only(read_only)
        .destructive(destructive)
        .idempotent(idempotent)
        // Every tool talks to a Microsoft cloud service whose state others change too.
        .open_world(true);
    let mut definition = definition.with_title(title).with_annotations(annotations);
    if destructive {
        // The catalogue, not the tool, owns the confirmation step, so it adds the argument.
        let mut schema = (*definition.input_schema).clone();
        if let Some(Value::Object(properties)) = schema.get_mut("properties") {
            properties.insert(
                CONFIRMATION_ARGUMENT.into(),
                // writeOnly keeps the token out of the audit trail (see `sensitive_fields`).
                json!({
                    "type": "string",
                    "writeOnly": true,
                    "description": "From a CONFIRMATION REQUIRED answer the person confirmed."
                }),
            );
            properties.insert(
                APPROVAL_ID_ARGUMENT.into(),
                json!({
                    "type": "string",
                    "description": "From an APPROVAL REQUIRED answer, once the person approved on the page."
                }),
            );
        }
        definition.input_schema = Arc::new(schema);
    }
    definition
}

fn definition<T: Tool>(spec: &ToolSpec) -> rmcp::model::Tool {
    // A Params type that is not an object is a programming error every test would hit at start.
    let input =
        schema::input::<T::Params>().unwrap_or_else(|error| panic!("tool {}: {error}", spec.name));
    let mut definition = rmcp::model::Tool::new(spec.name, spec.description, Arc::new(input));
    definition.output_schema = Some(Arc::new(schema::output::<T::Output>()));
    annotate(definition, spec.title, spec.effect)
}

fn new_record(
    tool: &str,
    tier: Option<Tier>,
    caller: &Caller,
    arguments: &JsonObject,
    sensitive: &[String],
) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::new_v4().to_string(),
        time: OffsetDateTime::now_utc(),
        caller: caller.subject.clone(),
        caller_name: caller.name.clone(),
        caller_tenant: caller.tenant.as_ref().map(TenantId::to_string),
        roles: caller.roles.clone(),
        tool: tool.to_string(),
        tier,
        tenant: arguments
            .get("tenant_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        arguments: redact_arguments(arguments, sensitive),
        outcome: Outcome::Ok,
        error: None,
        duration_ms: 0,
        action_ids: Vec::new(),
        approval: None,
        approval_id: None,
        approver: None,
    }
}

/// How one call ended, for the client and for the audit record.
struct Executed {
    response: CallToolResponse,
    outcome: Outcome,
    error: Option<String>,
    /// For telemetry: what kind of failure, and whether it is the service's fault.
    failure: Option<(&'static str, bool)>,
    action_ids: Vec<String>,
    approval: Option<Approved>,
}

impl Executed {
    fn failed(outcome: Outcome, message: String) -> Self {
        let response = CallToolResult::error(vec![ContentBlock::text(message.clone())]).into();
        let kind = if outcome == Outcome::Refused {
            "refused"
        } else {
            "invalid_argument"
        };
        Self {
            response,
            outcome,
            error: Some(message),
            failure: Some((kind, false)),
            action_ids: Vec::new(),
            approval: None,
        }
    }

    fn tool_error(error: &ToolError) -> Self {
        let mut executed = Self::failed(Outcome::Error, error.to_string());
        executed.failure = Some((error.kind(), error.is_fault()));
        executed
    }

    fn approved(mut self, approval: Option<Approved>) -> Self {
        self.approval = approval;
        self
    }
}

/// What a finished tool hands back: a line for people and the structured result.
struct Done {
    summary: String,
    value: Value,
}

/// What the call pipeline needs of a tool, compiled or read at run time, so that both pass
/// through the same steps: size, validation, plan, approval, pacing, audit.
#[async_trait::async_trait]
trait Runnable: Send + Sync {
    type Parsed: Send + Sync;

    fn parse(&self, arguments: JsonObject) -> Result<Self::Parsed, ToolError>;

    fn is_preview(&self, parsed: &Self::Parsed) -> bool;

    async fn plan(&self, context: &ToolContext, parsed: &Self::Parsed) -> Result<Plan, ToolError>;

    /// `plan` is the approved plan of a destructive call, `None` for every other call.
    async fn execute(
        &self,
        context: &ToolContext,
        parsed: Self::Parsed,
        plan: Option<Plan>,
    ) -> Result<Done, ToolError>;
}

struct Compiled<T>(Arc<T>);

#[async_trait::async_trait]
impl<T: Tool> Runnable for Compiled<T> {
    type Parsed = T::Params;

    fn parse(&self, arguments: JsonObject) -> Result<T::Params, ToolError> {
        serde_json::from_value(Value::Object(arguments)).map_err(|error| {
            ToolError::InvalidArgument(format!(
                "{error}; see the tool's input schema in tools/list"
            ))
        })
    }

    fn is_preview(&self, params: &T::Params) -> bool {
        self.0.is_preview(params)
    }

    async fn plan(&self, context: &ToolContext, params: &T::Params) -> Result<Plan, ToolError> {
        self.0.plan(context, params).await
    }

    async fn execute(
        &self,
        context: &ToolContext,
        params: T::Params,
        plan: Option<Plan>,
    ) -> Result<Done, ToolError> {
        let output = match plan {
            Some(plan) => self.0.execute(context, params, plan).await?,
            None => self.0.call(context, params).await?,
        };
        // The tool acted; only its report could not be written.
        let value = serde_json::to_value(&output).map_err(|error| {
            ToolError::Failed(format!(
                "the call succeeded but its result could not be serialized: {error}"
            ))
        })?;
        Ok(Done {
            summary: output.summary(),
            value,
        })
    }
}

#[async_trait::async_trait]
impl Runnable for DynamicTool {
    type Parsed = JsonObject;

    /// The PowerShell app validates parameters against its manifest; the input schema told the
    /// client the same.
    fn parse(&self, arguments: JsonObject) -> Result<JsonObject, ToolError> {
        Ok(arguments)
    }

    fn is_preview(&self, _arguments: &JsonObject) -> bool {
        false
    }

    async fn plan(
        &self,
        _context: &ToolContext,
        _arguments: &JsonObject,
    ) -> Result<Plan, ToolError> {
        let action = self
            .definition
            .description
            .as_deref()
            .map_or(self.name.clone(), str::to_string);
        Ok(Plan::action(action))
    }

    async fn execute(
        &self,
        context: &ToolContext,
        arguments: JsonObject,
        _plan: Option<Plan>,
    ) -> Result<Done, ToolError> {
        let output = self.handler.call(context, arguments).await?;
        Ok(Done {
            summary: output.summary,
            value: output.value,
        })
    }
}

/// What the pipeline knows about a tool besides how to run it.
struct Profile<'a> {
    name: &'a str,
    title: &'a str,
    tier: Tier,
    effect: Effect,
    /// Argument names the input schema marks secret, kept out of the audit trail.
    sensitive: &'a [String],
    takes_tenant: bool,
}

/// Whether a tool's input schema has a `tenant_id` argument.
fn takes_tenant(definition: &rmcp::model::Tool) -> bool {
    definition
        .input_schema
        .get("properties")
        .and_then(|p| p.get("tenant_id"))
        .is_some()
}

/// One call of one tool: every tool, compiled or not, passes through here.
struct Call<'a> {
    profile: Profile<'a>,
    context: &'a ToolContext,
    policy: &'a CallPolicy,
}

impl Call<'_> {
    async fn run<R: Runnable>(&self, tool: &R, invocation: Invocation) -> CallToolResponse {
        let started = Instant::now();
        let record = new_record(
            self.profile.name,
            Some(self.profile.tier),
            &invocation.caller,
            &invocation.arguments,
            self.profile.sensitive,
        );
        let span = tool_span(self.profile.name);
        let deadline = started + self.policy.call_deadline.saturating_sub(ANSWER_RESERVE);
        let executed = tokio::time::timeout_at(
            (deadline + CUT_OFF_GRACE).into(),
            crate::deadline::scope(deadline, self.execute(tool, invocation, &record)),
        )
        .instrument(span.clone())
        .await
        .unwrap_or_else(|_| self.cut_off());
        finish(
            &self.context.services.audit,
            record,
            self.profile.effect,
            &span,
            started,
            executed,
        )
        .await
    }

    /// Size, then (for destructive tools) approval arguments and the kill switch, validation,
    /// the tenant, the plan, the caps and the approval, then the tool under one pacing deadline.
    async fn execute<R: Runnable>(
        &self,
        tool: &R,
        invocation: Invocation,
        record: &AuditRecord,
    ) -> Executed {
        // Every call gets one pacing deadline: waits for rate-limit slots, summed over all the
        // Microsoft calls it makes (planning included), never hold the MCP request past it (nor
        // past the call's own deadline, which `outbound` applies on top).
        let deadline = Instant::now() + self.context.services.pacing_budget;
        let Invocation {
            caller,
            mut arguments,
            request_state,
            input_responses,
            client,
        } = invocation;
        if let Err(refused) = within_size(self.policy, &arguments) {
            return *refused;
        }
        let destructive = matches!(self.profile.effect, Effect::Destructive { .. });
        let mut answer = Answer {
            request_state,
            input_responses,
            ..Answer::default()
        };
        if destructive {
            if self.policy.approvals.config().destructive_disabled {
                return Executed::failed(
                    Outcome::Refused,
                    format!(
                        "{} is refused: an administrator switched off every destructive tool on this server \
                         (DESTRUCTIVE_TOOLS_DISABLED). Nothing was done.",
                        self.profile.name
                    ),
                );
            }
            match take_approval_arguments(&mut arguments) {
                Ok((token, id)) => {
                    answer.confirmation_token = token;
                    answer.approval_id = id;
                }
                Err(refused) => return *refused,
            }
        }
        let shown_arguments = redact_arguments(&arguments, self.profile.sensitive);
        let parsed = match tool.parse(arguments.clone()) {
            Ok(parsed) => parsed,
            Err(error) => return Executed::tool_error(&error),
        };
        let context = ToolContext {
            caller: caller.clone(),
            ..self.context.clone()
        };
        if !destructive || tool.is_preview(&parsed) {
            if matches!(self.profile.effect, Effect::Write { .. })
                && let Err(refused) = self.record_intent(record, None).await
            {
                return *refused;
            }
            return run_tool(tool, &context, parsed, None, deadline).await;
        }
        let planned = crate::outbound::with_deadline(deadline, async {
            let tenant = self.tenant(&arguments)?;
            let mut plan = tool.plan(&context, &parsed).await?;
            plan.tenant = tenant;
            Ok::<_, ToolError>(plan)
        })
        .await;
        let plan = match planned {
            Ok(plan) => plan,
            Err(error) => return Executed::tool_error(&error),
        };
        if let Err(refused) = self.within_caps(&plan).await {
            return *refused;
        }
        let request = ApprovalRequest {
            tool: self.profile.name,
            title: self.profile.title,
            tier: self.profile.tier,
            caller: &caller,
            arguments: &arguments,
            shown_arguments,
            plan: &plan,
            answer,
            client,
        };
        let approved = match gate(self.policy, request).await {
            Ok(approved) => approved,
            Err(stopped) => return stopped,
        };
        if let Err(refused) = self.charge(&plan).await {
            return refused.approved(Some(approved));
        }
        if let Err(refused) = self.record_intent(record, Some(&approved)).await {
            return refused.approved(Some(approved));
        }
        run_tool(tool, &context, parsed, Some(plan), deadline)
            .await
            .approved(Some(approved))
    }

    /// Stores that a changing call is about to run, before it sends anything; refuses the call
    /// when that record cannot be kept.
    async fn record_intent(
        &self,
        record: &AuditRecord,
        approval: Option<&Approved>,
    ) -> Result<(), Box<Executed>> {
        let mut intent = record.clone();
        intent.outcome = Outcome::Started;
        if let Some(approval) = approval {
            intent.approval = Some(approval.decision);
            intent.approval_id = approval.approval_id.clone();
            intent.approver = approval.approver.clone();
        }
        self.context
            .services
            .audit
            .intent(&intent)
            .await
            .map_err(|error| {
                let mut refused = Executed::failed(
                    Outcome::Refused,
                    format!(
                        "{} was not run: the audit trail could not record it first ({error}). This server changes \
                         nothing it cannot account for, so nothing was done; try again once storage answers \
                         (/api/health shows it).",
                        self.profile.name
                    ),
                );
                refused.failure = Some(("audit_unavailable", true));
                Box::new(refused)
            })
    }

    /// The answer of a call that did not stop by its deadline.
    fn cut_off(&self) -> Executed {
        let seconds = self.policy.call_deadline.as_secs();
        let name = self.profile.name;
        let message = match self.profile.effect {
            Effect::Read => format!(
                "{name} did not finish within {seconds} s (MCP_CALL_DEADLINE_SECONDS) and was stopped; nothing was \
                 changed. Narrow it (a shorter time range, fewer rows or targets) or try again."
            ),
            Effect::Write { .. } | Effect::Destructive { .. } => format!(
                "{name} did not finish within {seconds} s (MCP_CALL_DEADLINE_SECONDS) and was stopped. Requests it had \
                 already sent may have been carried out: check the current state (audit_search shows this call, \
                 the list tools show actions) before trying again."
            ),
        };
        let mut executed = Executed::failed(Outcome::Error, message);
        executed.failure = Some(("deadline", true));
        executed
    }

    /// The tenant a destructive call acts in, by display name: refused now rather than after a
    /// person approved.
    fn tenant(&self, arguments: &JsonObject) -> Result<Option<PlanTenant>, ToolError> {
        if !self.profile.takes_tenant {
            return Ok(None);
        }
        let requested = match arguments.get("tenant_id").and_then(Value::as_str) {
            Some(id) => Some(
                id.parse::<TenantId>()
                    .map_err(|error| ToolError::InvalidArgument(error.to_string()))?,
            ),
            None => None,
        };
        let tenant = self.context.services.tenants.resolve(requested.as_ref())?;
        Ok(Some(PlanTenant {
            id: tenant.tenant_id.to_string(),
            display_name: tenant.display_name.clone(),
        }))
    }

    /// The most targets one destructive call, and one tenant per hour, may have.
    async fn within_caps(&self, plan: &Plan) -> Result<(), Box<Executed>> {
        let config = self.policy.approvals.config();
        let targets = u32::try_from(plan.targets.len()).unwrap_or(u32::MAX);
        if targets > config.max_targets_per_call {
            return Err(Box::new(Executed::failed(
                Outcome::Refused,
                format!(
                    "{} would act on {targets} targets; this server allows at most {} per destructive call \
                     (DESTRUCTIVE_MAX_TARGETS_PER_CALL). Nothing was done: split the work or narrow the targets.",
                    self.profile.name, config.max_targets_per_call
                ),
            )));
        }
        let Some(tenant) = plan.tenant.as_ref().filter(|_| targets > 0) else {
            return Ok(());
        };
        let used = self
            .policy
            .approvals
            .store()
            .budget_used(&tenant.id, OffsetDateTime::now_utc())
            .await
            .map_err(|error| {
                Box::new(Executed::failed(
                    Outcome::Refused,
                    format!("the tenant's hourly budget of destructive targets could not be read ({error}); nothing was done"),
                ))
            })?;
        if used.saturating_add(targets) > config.max_targets_per_tenant_hour {
            return Err(Box::new(over_budget(
                self.profile.name,
                tenant,
                used,
                config.max_targets_per_tenant_hour,
            )));
        }
        Ok(())
    }

    /// Counts an approved plan's targets against the tenant's hour, over every instance.
    async fn charge(&self, plan: &Plan) -> Result<(), Executed> {
        let targets = u32::try_from(plan.targets.len()).unwrap_or(u32::MAX);
        let Some(tenant) = plan.tenant.as_ref().filter(|_| targets > 0) else {
            return Ok(());
        };
        let limit = self.policy.approvals.config().max_targets_per_tenant_hour;
        let charged = self
            .policy
            .approvals
            .store()
            .charge(&tenant.id, targets, limit, OffsetDateTime::now_utc())
            .await;
        match charged {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(exceeded)) => Err(over_budget(
                self.profile.name,
                tenant,
                exceeded.used,
                exceeded.limit,
            )),
            Err(error) => Err(Executed::failed(
                Outcome::Refused,
                format!(
                    "the approved call could not be counted against the tenant's hourly budget ({error}), so it was \
                     not carried out; nothing was done and the approval is spent"
                ),
            )),
        }
    }
}

fn over_budget(tool: &str, tenant: &PlanTenant, used: u32, limit: u32) -> Executed {
    Executed::failed(
        Outcome::Refused,
        format!(
            "{tool} is refused: destructive calls have acted on {used} targets in tenant {} this hour, and this server \
             allows {limit} (DESTRUCTIVE_MAX_TARGETS_PER_TENANT_HOUR). Nothing was done; the budget frees up at the next \
             full hour.",
            tenant.display_name
        ),
    )
}

async fn run_tool<R: Runnable>(
    tool: &R,
    context: &ToolContext,
    parsed: R::Parsed,
    plan: Option<Plan>,
    deadline: Instant,
) -> Executed {
    match crate::outbound::with_deadline(deadline, tool.execute(context, parsed, plan)).await {
        Ok(done) => {
            let action_ids = action_ids(&done.value);
            Executed {
                response: structured(done.summary, done.value).into(),
                outcome: Outcome::Ok,
                error: None,
                failure: None,
                action_ids,
                approval: None,
            }
        }
        Err(error) => Executed::tool_error(&error),
    }
}

/// The approval a destructive call needs: the decision to go ahead, or the answer that stops it
/// (a question for the person, a page or a confirmation to give back, or a refusal).
async fn gate(policy: &CallPolicy, request: ApprovalRequest<'_>) -> Result<Approved, Executed> {
    let pending = |decision, approval_id| Approved {
        decision,
        approval_id,
        approver: None,
    };
    match policy.approvals.check(request).await {
        Gate::Proceed(approved) => Ok(approved),
        Gate::Ask {
            input,
            decision,
            approval_id,
        } => Err(Executed {
            response: CallToolResponse::InputRequired(input),
            outcome: Outcome::PendingApproval,
            error: None,
            failure: None,
            action_ids: Vec::new(),
            approval: Some(pending(decision, approval_id)),
        }),
        Gate::Stop {
            message,
            decision,
            approval_id,
        } if matches!(
            decision,
            ApprovalDecision::ConfirmationIssued | ApprovalDecision::PageRequested
        ) =>
        {
            let mut executed = Executed::failed(Outcome::PendingApproval, message);
            // The answer may carry a confirmation token; the trail must not.
            executed.error = Some("waiting for a person's approval; nothing was done yet".into());
            executed.failure = None;
            Err(executed.approved(Some(pending(decision, approval_id))))
        }
        Gate::Stop {
            message,
            decision,
            approval_id,
        } => Err(Executed::failed(Outcome::Refused, message)
            .approved(Some(pending(decision, approval_id)))),
    }
}

/// Refuses an `arguments` object larger than `MCP_MAX_ARGUMENT_BYTES`.
fn within_size(policy: &CallPolicy, arguments: &JsonObject) -> Result<(), Box<Executed>> {
    let size = serde_json::to_vec(arguments)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if size <= policy.max_argument_bytes {
        return Ok(());
    }
    let message = format!(
        "the arguments are {size} bytes of JSON; this server accepts at most {} per call (MCP_MAX_ARGUMENT_BYTES)",
        policy.max_argument_bytes
    );
    Err(Box::new(Executed::failed(Outcome::Refused, message)))
}

/// The confirmation token and approval id a destructive call may carry, taken out of its arguments.
fn take_approval_arguments(
    arguments: &mut JsonObject,
) -> Result<(Option<String>, Option<String>), Box<Executed>> {
    let mut take = |name: &str| match arguments.remove(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(Box::new(Executed::failed(
            Outcome::Error,
            format!("invalid arguments: {name} must be a string"),
        ))),
    };
    Ok((take(CONFIRMATION_ARGUMENT)?, take(APPROVAL_ID_ARGUMENT)?))
}

/// A short summary first, for a person reading along, then the structured result (also as JSON
/// text, since many clients show only text to the model).
pub(super) fn structured(summary: String, value: Value) -> CallToolResult {
    let mut result = CallToolResult::structured(value);
    result.content.insert(0, ContentBlock::text(summary));
    result
}

fn tool_span(name: &str) -> tracing::Span {
    tracing::info_span!(target: telemetry::TOOL_TARGET, "tool call", otel.name = %format_args!("tool {name}"), mcp.tool = name)
}

/// Completes the audit record and the telemetry of one call, and hands back the client's answer.
async fn finish(
    audit: &crate::audit::AuditLog,
    mut record: AuditRecord,
    effect: Effect,
    span: &tracing::Span,
    started: Instant,
    executed: Executed,
) -> CallToolResponse {
    let elapsed = started.elapsed();
    if let Some((kind, fault)) = executed.failure {
        // Faults (the server or a Microsoft API misbehaving) are exceptions worth an alert; a
        // refused argument or tenant is the caller's to fix.
        if fault {
            telemetry::record_exception(span, kind, executed.error.as_deref().unwrap_or(kind));
        } else {
            telemetry::record_failure(span, kind);
        }
    }
    if let Some(metrics) = telemetry::metrics() {
        metrics.tool_call(
            &record.tool,
            elapsed.as_secs_f64() * 1000.0,
            executed.failure.map(|(kind, _)| kind),
        );
    }
    record.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    record.outcome = executed.outcome;
    record.error = executed.error;
    record.action_ids = executed.action_ids;
    if let Some(approval) = executed.approval {
        record.approval = Some(approval.decision);
        record.approval_id = approval.approval_id;
        record.approver = approval.approver;
    }
    audit.append(record, effect.audit_storing()).await;
    executed.response
}
