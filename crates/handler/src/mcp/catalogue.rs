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
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, InputResponses, JsonObject, ToolAnnotations,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tracing::Instrument;

use super::approval::{ApprovalDecision, ApprovalRequest, Approvals, CONFIRMATION_ARGUMENT, Gate};
use super::dynamic::{DynamicTool, ToolSource};
use super::prompts::PromptDef;
use super::resources::ResourceProvider;
use super::tool::{Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset};
use crate::audit::{AuditRecord, Outcome, Storing, action_ids, redact_arguments, sensitive_fields};
use crate::auth::Caller;
use crate::telemetry;
use crate::tenants::TenantId;

/// Everything one `tools/call` brings besides the tool's name.
pub struct Invocation {
    pub caller: Arc<Caller>,
    pub arguments: JsonObject,
    /// MRTR: the sealed state and the client's answers, when this is a retried call.
    pub request_state: Option<String>,
    pub input_responses: Option<InputResponses>,
    /// Whether the client can show the person an elicitation (and understands MRTR).
    pub client_can_elicit: bool,
}

/// Server-wide rules applied to every call.
pub struct CallPolicy {
    pub approvals: Approvals,
    /// Largest `arguments` object, in bytes of JSON (`MCP_MAX_ARGUMENT_BYTES`).
    pub max_argument_bytes: usize,
}

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
    visible: Vec<(Tier, rmcp::model::Tool)>,
    all_visible: Vec<rmcp::model::Tool>,
    /// Only the providers of toolsets that are switched on.
    resources: Vec<Arc<dyn ResourceProvider>>,
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
            prompts: Vec::new(),
            resources: Vec::new(),
            sources: Vec::new(),
            duplicate: None,
        }
    }

    /// Every compiled tool this server offers, whoever asks (dynamic tools come from their sources).
    pub fn visible_tools(&self) -> &[rmcp::model::Tool] {
        &self.all_visible
    }

    /// The tools `caller` may call now: the compiled ones, then each source's current set.
    pub async fn tools_for(&self, caller: &Caller) -> Vec<rmcp::model::Tool> {
        let mut tools: Vec<rmcp::model::Tool> = self
            .visible
            .iter()
            .filter(|(tier, _)| caller.may_use(*tier))
            .map(|(_, tool)| tool.clone())
            .collect();
        for source in &self.sources {
            let set = source.tools().await;
            tools.extend(
                self.visible_dynamic(&set)
                    .filter(|tool| caller.may_use(tool.tier))
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
                && hidden_reason(&self.filter, &tool.name, tool.toolset, tool.effect).is_none()
        })
    }

    pub fn resource_providers(&self) -> &[Arc<dyn ResourceProvider>] {
        &self.resources
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
        context: ToolContext,
        policy: Arc<CallPolicy>,
        invocation: Invocation,
    ) -> Result<CallToolResponse, (Unavailable, Invocation)> {
        if let Some(entry) = self.entries.get(name) {
            if let Some(reason) = hidden_reason(
                &self.filter,
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
            if let Some(reason) = hidden_reason(&self.filter, &tool.name, tool.toolset, tool.effect)
            {
                return Err((Unavailable::Hidden(reason), invocation));
            }
            if !invocation.caller.may_use(tool.tier) {
                return Err((Unavailable::NeedsTier(tool.tier), invocation));
            }
            return Ok(run_dynamic(tool, &context, &policy, invocation).await);
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

fn hidden_reason(
    filter: &CatalogueFilter,
    name: &str,
    toolset: Toolset,
    effect: Effect,
) -> Option<String> {
    if filter.read_only && effect != Effect::Read {
        return Some(format!(
            "tool {name} changes state and this server runs in read-only mode (MCP_READ_ONLY)"
        ));
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
        let definition = definition::<T>(&spec);
        let sensitive = Arc::new(sensitive_fields(&definition.input_schema));
        let takes_tenant = definition
            .input_schema
            .get("properties")
            .and_then(|p| p.get("tenant_id"))
            .is_some();
        let tool = Arc::new(tool);
        let name = spec.name;
        let run_spec = spec.clone();
        let run_sensitive = sensitive.clone();
        let invoke: Invoke = Box::new(move |context, policy, invocation| {
            let tool = tool.clone();
            let spec = run_spec.clone();
            let sensitive = run_sensitive.clone();
            Box::pin(async move {
                let call = Call {
                    spec: &spec,
                    sensitive: &sensitive,
                    takes_tenant,
                    context: &context,
                    policy: &policy,
                };
                call.run(tool.as_ref(), invocation).await
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

    pub fn build(self, filter: CatalogueFilter) -> Result<Catalogue, CatalogueError> {
        if let Some(name) = self.duplicate {
            return Err(CatalogueError::DuplicateTool(name));
        }
        if let Some(enabled) = &filter.toolsets {
            let unknown: Vec<String> = enabled
                .iter()
                .filter(|name| !Toolset::ALL.iter().any(|t| t.name() == name.as_str()))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                let known = Toolset::ALL.map(Toolset::name).join(", ");
                return Err(CatalogueError::UnknownToolset { unknown, known });
            }
        }
        let visible: Vec<(Tier, rmcp::model::Tool)> = self
            .entries
            .values()
            .filter(|entry| {
                hidden_reason(
                    &filter,
                    entry.spec.name,
                    entry.spec.toolset,
                    entry.spec.effect,
                )
                .is_none()
            })
            .map(|entry| (entry.spec.tier, entry.definition.clone()))
            .collect();
        let all_visible = visible.iter().map(|(_, tool)| tool.clone()).collect();
        let resources = self
            .resources
            .into_iter()
            .filter(|(toolset, _)| {
                filter
                    .toolsets
                    .as_ref()
                    .is_none_or(|enabled| enabled.contains(toolset.name()))
            })
            .map(|(_, provider)| provider)
            .collect();
        Ok(Catalogue {
            entries: self.entries,
            prompts: self.prompts,
            filter,
            visible,
            all_visible,
            resources,
            sources: self.sources,
        })
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
    let mut definition = definition.with_title(title).with_annotations(annotations);
    if destructive {
        // The catalogue, not the tool, owns the confirmation step, so it adds the argument.
        let mut schema = (*definition.input_schema).clone();
        if let Some(Value::Object(properties)) = schema.get_mut("properties") {
            properties.insert(
                CONFIRMATION_ARGUMENT.into(),
                json!({
                    "type": "string",
                    "writeOnly": true,
                    "description": "Only when a previous call of this tool answered CONFIRMATION REQUIRED and the person \
                                    confirmed: the token from that answer, with the other arguments unchanged."
                }),
            );
        }
        definition.input_schema = Arc::new(schema);
    }
    definition
}

fn definition<T: Tool>(spec: &ToolSpec) -> rmcp::model::Tool {
    let definition = rmcp::model::Tool::new(spec.name, spec.description, JsonObject::new())
        .with_input_schema::<T::Params>()
        .with_output_schema::<T::Output>();
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
    approval: Option<ApprovalDecision>,
}

impl Executed {
    fn failed(outcome: Outcome, message: String, approval: Option<ApprovalDecision>) -> Self {
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
            approval,
        }
    }

    fn tool_error(error: &ToolError, approval: Option<ApprovalDecision>) -> Self {
        let mut executed = Self::failed(Outcome::Error, error.to_string(), approval);
        executed.failure = Some((error.kind(), error.is_fault()));
        executed
    }

    fn succeeded(
        result: CallToolResult,
        action_ids: Vec<String>,
        approval: Option<ApprovalDecision>,
    ) -> Self {
        Self {
            response: result.into(),
            outcome: Outcome::Ok,
            error: None,
            failure: None,
            action_ids,
            approval,
        }
    }
}

/// One call of one tool, with what the catalogue knows about it.
struct Call<'a> {
    spec: &'a ToolSpec,
    sensitive: &'a [String],
    takes_tenant: bool,
    context: &'a ToolContext,
    policy: &'a CallPolicy,
}

impl Call<'_> {
    async fn run<T: Tool>(&self, tool: &T, invocation: Invocation) -> CallToolResponse {
        let started = Instant::now();
        let record = new_record(
            self.spec.name,
            Some(self.spec.tier),
            &invocation.caller,
            &invocation.arguments,
            self.sensitive,
        );
        let span = tool_span(self.spec.name);
        let executed = self
            .execute(tool, invocation)
            .instrument(span.clone())
            .await;
        finish(
            &self.context.services.audit,
            record,
            self.spec.effect,
            &span,
            started,
            executed,
        )
        .await
    }

    async fn execute<T: Tool>(&self, tool: &T, invocation: Invocation) -> Executed {
        let Invocation {
            caller,
            mut arguments,
            request_state,
            input_responses,
            client_can_elicit,
        } = invocation;
        if let Err(refused) = within_size(self.policy, &arguments) {
            return *refused;
        }
        let destructive = matches!(self.spec.effect, Effect::Destructive { .. });
        let confirmation_token = if destructive {
            match take_confirmation(&mut arguments) {
                Ok(token) => token,
                Err(refused) => return *refused,
            }
        } else {
            None
        };
        let params = match serde_json::from_value::<T::Params>(Value::Object(arguments.clone())) {
            Ok(params) => params,
            Err(error) => {
                let error = ToolError::InvalidArgument(format!(
                    "{error}; see the tool's input schema in tools/list"
                ));
                return Executed::failed(Outcome::Error, error.to_string(), None);
            }
        };
        let mut approval = None;
        if destructive {
            let preview = match self.preview(tool, &params, &arguments) {
                Ok(preview) => preview,
                Err(error) => return Executed::failed(Outcome::Error, error.to_string(), None),
            };
            let request = ApprovalRequest {
                tool: self.spec.name,
                title: self.spec.title,
                caller: &caller,
                arguments: &arguments,
                confirmation_token: confirmation_token.as_deref(),
                request_state: request_state.as_deref(),
                input_responses: input_responses.as_ref(),
                client_can_elicit,
                preview: &preview,
            };
            match gate(self.policy, request).await {
                Ok(decision) => approval = Some(decision),
                Err(stopped) => return stopped,
            }
        }
        let context = ToolContext {
            caller,
            ..self.context.clone()
        };
        // Every call gets one pacing deadline: waits for rate-limit slots, summed over all the
        // Microsoft calls it makes, never hold the MCP request past it.
        let deadline = Instant::now() + context.services.pacing_budget;
        match crate::outbound::with_deadline(deadline, tool.call(&context, params)).await {
            Ok(output) => match serde_json::to_value(&output) {
                Ok(value) => {
                    let action_ids = action_ids(&value);
                    Executed::succeeded(structured(output.summary(), value), action_ids, approval)
                }
                // The tool acted; only its report could not be written.
                Err(error) => Executed::failed(
                    Outcome::Error,
                    format!("the call succeeded but its result could not be serialized: {error}"),
                    approval,
                ),
            },
            Err(error) => Executed::tool_error(&error, approval),
        }
    }

    /// What the person approving is shown: what the tool will do, in which tenant, with which arguments.
    fn preview<T: Tool>(
        &self,
        tool: &T,
        params: &T::Params,
        arguments: &JsonObject,
    ) -> Result<String, ToolError> {
        let mut lines = vec![
            tool.blast_radius(params)
                .unwrap_or_else(|| self.spec.description.to_string()),
        ];
        if self.takes_tenant {
            // A tenant the call may not use is refused now rather than after the person approved.
            let requested = match arguments.get("tenant_id").and_then(Value::as_str) {
                Some(id) => Some(
                    id.parse::<TenantId>()
                        .map_err(|error| ToolError::InvalidArgument(error.to_string()))?,
                ),
                None => None,
            };
            let tenant = self.context.services.tenants.resolve(requested.as_ref())?;
            lines.push(format!(
                "Tenant: {} ({})",
                tenant.display_name, tenant.tenant_id
            ));
        }
        lines.push(format!(
            "Arguments: {}",
            redact_arguments(arguments, self.sensitive)
        ));
        Ok(lines.join("\n"))
    }
}

/// The approval a destructive call needs: the decision to go ahead, or the answer that stops it
/// (a question for the person, a confirmation to give back, or a refusal).
async fn gate(
    policy: &CallPolicy,
    request: ApprovalRequest<'_>,
) -> Result<ApprovalDecision, Executed> {
    match policy.approvals.check(request).await {
        Gate::Proceed(decision) => Ok(decision),
        Gate::Ask(input) => Err(Executed {
            response: CallToolResponse::InputRequired(input),
            outcome: Outcome::PendingApproval,
            error: None,
            failure: None,
            action_ids: Vec::new(),
            approval: Some(ApprovalDecision::Requested),
        }),
        Gate::Stop { message, decision } if decision == ApprovalDecision::ConfirmationIssued => {
            let mut executed = Executed::failed(Outcome::PendingApproval, message, Some(decision));
            // The answer carries the confirmation token; the trail must not.
            executed.error = Some(
                "a preview and a confirmation token were returned; waiting for the person".into(),
            );
            executed.failure = None;
            Err(executed)
        }
        Gate::Stop { message, decision } => {
            Err(Executed::failed(Outcome::Refused, message, Some(decision)))
        }
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
    Err(Box::new(Executed::failed(Outcome::Refused, message, None)))
}

/// The confirmation token a destructive call may carry, taken out of its arguments.
fn take_confirmation(arguments: &mut JsonObject) -> Result<Option<String>, Box<Executed>> {
    match arguments.remove(CONFIRMATION_ARGUMENT) {
        None => Ok(None),
        Some(Value::String(token)) => Ok(Some(token)),
        Some(_) => Err(Box::new(Executed::failed(
            Outcome::Error,
            format!("invalid arguments: {CONFIRMATION_ARGUMENT} must be a string"),
            None,
        ))),
    }
}

/// A short summary first, for a person reading along, then the structured result (also as JSON
/// text, since many clients show only text to the model).
fn structured(summary: String, value: Value) -> CallToolResult {
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
    record.approval = executed.approval;
    audit.append(record, Storing::for_effect(effect)).await;
    executed.response
}

/// A tool from a [`ToolSource`]: the same size limit, approval, audit record and telemetry as a
/// compiled tool.
async fn run_dynamic(
    tool: &DynamicTool,
    context: &ToolContext,
    policy: &CallPolicy,
    invocation: Invocation,
) -> CallToolResponse {
    let started = Instant::now();
    let record = new_record(
        &tool.name,
        Some(tool.tier),
        &invocation.caller,
        &invocation.arguments,
        &[],
    );
    let span = tool_span(&tool.name);
    let executed = async {
        if let Err(refused) = within_size(policy, &invocation.arguments) {
            return *refused;
        }
        let Invocation {
            caller,
            mut arguments,
            request_state,
            input_responses,
            client_can_elicit,
        } = invocation;
        let mut approval = None;
        if matches!(tool.effect, Effect::Destructive { .. }) {
            let confirmation_token = match take_confirmation(&mut arguments) {
                Ok(token) => token,
                Err(refused) => return *refused,
            };
            let description = tool.definition.description.as_deref().unwrap_or(&tool.name);
            let preview = format!(
                "{description}\nArguments: {}",
                redact_arguments(&arguments, &[])
            );
            let request = ApprovalRequest {
                tool: &tool.name,
                title: &tool.name,
                caller: &caller,
                arguments: &arguments,
                confirmation_token: confirmation_token.as_deref(),
                request_state: request_state.as_deref(),
                input_responses: input_responses.as_ref(),
                client_can_elicit,
                preview: &preview,
            };
            match gate(policy, request).await {
                Ok(decision) => approval = Some(decision),
                Err(stopped) => return stopped,
            }
        }
        let context = ToolContext {
            caller,
            ..context.clone()
        };
        match tool.handler.call(&context, arguments).await {
            Ok(output) => Executed::succeeded(
                structured(output.summary, output.value),
                Vec::new(),
                approval,
            ),
            Err(error) => Executed::tool_error(&error, approval),
        }
    }
    .instrument(span.clone())
    .await;
    finish(
        &context.services.audit,
        record,
        tool.effect,
        &span,
        started,
        executed,
    )
    .await
}
