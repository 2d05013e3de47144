//! The catalogue: every tool and prompt, their definitions built once at start, and the rules
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
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, InputResponses, JsonObject, ToolAnnotations};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::approval::{ApprovalDecision, ApprovalRequest, Approvals, CONFIRMATION_ARGUMENT, Gate};
use super::prompts::PromptDef;
use super::tool::{Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset};
use crate::audit::{AuditRecord, Outcome, action_ids, redact_arguments, sensitive_fields};
use crate::auth::Caller;
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

type Invoke = Box<dyn Fn(ToolContext, Arc<CallPolicy>, Invocation) -> BoxFuture<'static, CallToolResponse> + Send + Sync>;

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
        CatalogueBuilder { entries: BTreeMap::new(), prompts: Vec::new(), duplicate: None }
    }

    /// Every tool this server offers, whoever asks.
    pub fn visible_tools(&self) -> &[rmcp::model::Tool] {
        &self.all_visible
    }

    /// The tools `caller` may call.
    pub fn tools_for(&self, caller: &Caller) -> Vec<rmcp::model::Tool> {
        self.visible.iter().filter(|(tier, _)| caller.may_use(*tier)).map(|(_, tool)| tool.clone()).collect()
    }

    pub fn prompts(&self) -> &[PromptDef] {
        &self.prompts
    }

    pub fn prompt(&self, name: &str) -> Option<&PromptDef> {
        self.prompts.iter().find(|prompt| prompt.name == name)
    }

    /// The call, or why it cannot be made (with the invocation handed back for the audit record).
    pub fn call(
        &self,
        name: &str,
        context: ToolContext,
        policy: Arc<CallPolicy>,
        invocation: Invocation,
    ) -> Result<BoxFuture<'static, CallToolResponse>, (Unavailable, Invocation)> {
        let Some(entry) = self.entries.get(name) else { return Err((Unavailable::Unknown, invocation)) };
        if let Some(reason) = hidden_reason(&self.filter, &entry.spec) {
            return Err((Unavailable::Hidden(reason), invocation));
        }
        if !invocation.caller.may_use(entry.spec.tier) {
            return Err((Unavailable::NeedsTier(entry.spec.tier), invocation));
        }
        Ok((entry.invoke)(context, policy, invocation))
    }

    /// The audit record of a call refused before its tool was reached.
    pub fn refusal_record(&self, name: &str, invocation: &Invocation, reason: &str) -> AuditRecord {
        let entry = self.entries.get(name);
        let sensitive = entry.map(|e| e.sensitive.as_slice()).unwrap_or_default();
        let mut record = new_record(name, entry.map(|e| e.spec.tier), &invocation.caller, &invocation.arguments, sensitive);
        record.outcome = Outcome::Refused;
        record.error = Some(reason.to_string());
        record
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
        let sensitive = Arc::new(sensitive_fields(&definition.input_schema));
        let takes_tenant = definition.input_schema.get("properties").and_then(|p| p.get("tenant_id")).is_some();
        let tool = Arc::new(tool);
        let name = spec.name;
        let run_spec = spec.clone();
        let run_sensitive = sensitive.clone();
        let invoke: Invoke = Box::new(move |context, policy, invocation| {
            let tool = tool.clone();
            let spec = run_spec.clone();
            let sensitive = run_sensitive.clone();
            Box::pin(async move {
                let call = Call { spec: &spec, sensitive: &sensitive, takes_tenant, context: &context, policy: &policy };
                call.run(tool.as_ref(), invocation).await
            })
        });
        if self.entries.insert(name, Entry { spec, definition, sensitive, invoke }).is_some() {
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
        let visible: Vec<(Tier, rmcp::model::Tool)> = self
            .entries
            .values()
            .filter(|entry| hidden_reason(&filter, &entry.spec).is_none())
            .map(|entry| (entry.spec.tier, entry.definition.clone()))
            .collect();
        let all_visible = visible.iter().map(|(_, tool)| tool.clone()).collect();
        Ok(Catalogue { entries: self.entries, prompts: self.prompts, filter, visible, all_visible })
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
    let mut definition = rmcp::model::Tool::new(spec.name, spec.description, JsonObject::new())
        .with_input_schema::<T::Params>()
        .with_title(spec.title)
        .with_output_schema::<T::Output>()
        .with_annotations(annotations);
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

fn new_record(tool: &str, tier: Option<Tier>, caller: &Caller, arguments: &JsonObject, sensitive: &[String]) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::new_v4().to_string(),
        time: OffsetDateTime::now_utc(),
        caller: caller.subject.clone(),
        caller_name: caller.name.clone(),
        caller_tenant: caller.tenant.as_ref().map(TenantId::to_string),
        roles: caller.roles.clone(),
        tool: tool.to_string(),
        tier,
        tenant: arguments.get("tenant_id").and_then(Value::as_str).map(str::to_owned),
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
    action_ids: Vec<String>,
    approval: Option<ApprovalDecision>,
}

impl Executed {
    fn failed(outcome: Outcome, message: String, approval: Option<ApprovalDecision>) -> Self {
        let response = CallToolResult::error(vec![ContentBlock::text(message.clone())]).into();
        Self { response, outcome, error: Some(message), action_ids: Vec::new(), approval }
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
        let mut record = new_record(self.spec.name, Some(self.spec.tier), &invocation.caller, &invocation.arguments, self.sensitive);
        let executed = self.execute(tool, invocation).await;
        record.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        record.outcome = executed.outcome;
        record.error = executed.error;
        record.action_ids = executed.action_ids;
        record.approval = executed.approval;
        self.context.services.audit.append(&record).await;
        executed.response
    }

    async fn execute<T: Tool>(&self, tool: &T, invocation: Invocation) -> Executed {
        let Invocation { caller, mut arguments, request_state, input_responses, client_can_elicit } = invocation;
        let size = serde_json::to_vec(&arguments).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
        if size > self.policy.max_argument_bytes {
            let message = format!(
                "the arguments are {size} bytes of JSON; this server accepts at most {} per call (MCP_MAX_ARGUMENT_BYTES)",
                self.policy.max_argument_bytes
            );
            return Executed::failed(Outcome::Refused, message, None);
        }
        let destructive = matches!(self.spec.effect, Effect::Destructive { .. });
        let confirmation_token = match destructive.then(|| arguments.remove(CONFIRMATION_ARGUMENT)).flatten() {
            None => None,
            Some(Value::String(token)) => Some(token),
            Some(_) => return Executed::failed(Outcome::Error, format!("invalid arguments: {CONFIRMATION_ARGUMENT} must be a string"), None),
        };
        let params = match serde_json::from_value::<T::Params>(Value::Object(arguments.clone())) {
            Ok(params) => params,
            Err(error) => {
                let error = ToolError::InvalidArgument(format!("{error}; see the tool's input schema in tools/list"));
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
            match self.policy.approvals.check(request).await {
                Gate::Proceed(decision) => approval = Some(decision),
                Gate::Ask(input) => {
                    return Executed {
                        response: CallToolResponse::InputRequired(input),
                        outcome: Outcome::PendingApproval,
                        error: None,
                        action_ids: Vec::new(),
                        approval: Some(ApprovalDecision::Requested),
                    };
                }
                Gate::Stop { message, decision } if decision == ApprovalDecision::ConfirmationIssued => {
                    let mut executed = Executed::failed(Outcome::PendingApproval, message, Some(decision));
                    // The answer carries the confirmation token; the trail must not.
                    executed.error = Some("a preview and a confirmation token were returned; waiting for the person".into());
                    return executed;
                }
                Gate::Stop { message, decision } => return Executed::failed(Outcome::Refused, message, Some(decision)),
            }
        }
        let context = ToolContext { caller, ..self.context.clone() };
        match tool.call(&context, params).await {
            Ok(output) => match success(&output) {
                Ok((response, action_ids)) => Executed { response: response.into(), outcome: Outcome::Ok, error: None, action_ids, approval },
                // The tool acted; only its report could not be written.
                Err(message) => Executed::failed(Outcome::Error, message, approval),
            },
            Err(error) => Executed::failed(Outcome::Error, error.to_string(), approval),
        }
    }

    /// What the person approving is shown: what the tool will do, in which tenant, with which arguments.
    fn preview<T: Tool>(&self, tool: &T, params: &T::Params, arguments: &JsonObject) -> Result<String, ToolError> {
        let mut lines = vec![tool.blast_radius(params).unwrap_or_else(|| self.spec.description.to_string())];
        if self.takes_tenant {
            // A tenant the call may not use is refused now rather than after the person approved.
            let requested = match arguments.get("tenant_id").and_then(Value::as_str) {
                Some(id) => Some(id.parse::<TenantId>().map_err(|error| ToolError::InvalidArgument(error.to_string()))?),
                None => None,
            };
            let tenant = self.context.services.tenants.resolve(requested.as_ref())?;
            lines.push(format!("Tenant: {} ({})", tenant.display_name, tenant.tenant_id));
        }
        lines.push(format!("Arguments: {}", redact_arguments(arguments, self.sensitive)));
        Ok(lines.join("\n"))
    }
}

/// A short summary first, for a person reading along, then the structured result (also as JSON
/// text, since many clients show only text to the model), and the action ids the output reports.
fn success<O: serde::Serialize + Summary>(output: &O) -> Result<(CallToolResult, Vec<String>), String> {
    let value = serde_json::to_value(output).map_err(|error| format!("the call succeeded but its result could not be serialized: {error}"))?;
    let ids = action_ids(&value);
    let mut result = CallToolResult::structured(value);
    result.content.insert(0, ContentBlock::text(output.summary()));
    Ok((result, ids))
}
