//! The rmcp server handler. Stateless: a fresh value per request (cheap: a few `Arc`s), nothing
//! kept between requests, so any instance of a scaled-out app can answer any request.
//!
//! The caller comes from the request extensions, where the inbound auth layer put it; a request
//! without one (the layer is missing) sees no tools and may call none.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, GetTaskParams, GetTaskResult, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use tracing::Instrument;

use super::approval::ClientAsks;
use super::catalogue::{CallPolicy, Catalogue, Invocation, Unavailable};
use super::resources::ResourceError;
use super::tasks;
use super::tool::{Tier, ToolContext};
use super::toolsets::ConnectionScope;
use crate::audit::Storing;
use crate::auth::Caller;
use crate::config::RoleNames;
use crate::jobs::{JobId, JobRecord, JobState, JobsError, ResultView};
use crate::services::Services;
use crate::telemetry;

pub const SERVER_NAME: &str = "defender-sentinel-mcp";

const INSTRUCTIONS: &str = "Operates Microsoft Defender for Endpoint / Defender XDR and Microsoft Sentinel \
across the tenants this server is configured for. tenant_id is a GUID from tenants_list (optional when the server \
has a default tenant); Sentinel tools take workspace, a name from sentinel_list_workspaces (optional when the tenant \
has one). Lists answer one page (limit) and next_cursor when more match: pass it back as cursor, the filters \
carry over; fields adds columns and the matching get tool gives one item whole. \
Read tools change nothing; tools annotated destructive (isolation, offboarding, deletions) act on real devices \
and data: confirm the exact targets with the person before calling them. A connection may offer only some \
toolsets: toolsets_list names the others and the URL that connects to them.";

#[derive(Clone)]
pub struct McpServer {
    catalogue: Arc<Catalogue>,
    services: Arc<Services>,
    policy: Arc<CallPolicy>,
    roles: Arc<RoleNames>,
}

impl McpServer {
    pub fn new(
        catalogue: Arc<Catalogue>,
        services: Arc<Services>,
        policy: Arc<CallPolicy>,
        roles: RoleNames,
    ) -> Self {
        Self {
            catalogue,
            services,
            policy,
            roles: Arc::new(roles),
        }
    }

    fn needs_tier(&self, tool: &str, needed: Tier, caller: &Caller) -> String {
        let have = caller.tier.map_or_else(
            || "no tier (none of this server's app roles)".to_string(),
            |tier| format!("the {} tier", tier.name()),
        );
        format!(
            "tool {tool} needs the {} tier: the app role '{}' (or a higher one); your roles grant {have}. Ask an administrator to assign the role in the server's Entra ID app registration",
            needed.name(),
            self.roles.role_for(needed)
        )
    }

    /// What a resource read may use: resources show results of reads, so a Reader may see them.
    fn resource_context(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<ToolContext, McpError> {
        match caller_of(context) {
            Some(caller) if caller.may_use(Tier::Reader) => Ok(ToolContext {
                services: self.services.clone(),
                caller: Arc::new(caller),
            }),
            Some(caller) => Err(McpError::invalid_request(
                self.needs_tier("resources", Tier::Reader, &caller),
                None,
            )),
            None => Err(McpError::invalid_request(
                "no caller identity reached the MCP server; every request is refused",
                None,
            )),
        }
    }
}

/// The caller the auth layer attached to the HTTP request, or nobody.
fn caller_of(context: &RequestContext<RoleServer>) -> Option<Caller> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
}

/// The toolsets the connection's URL and headers chose (the host resolved them); plain
/// `/api/mcp` when nothing was attached.
fn scope_of(context: &RequestContext<RoleServer>) -> ConnectionScope {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<ConnectionScope>())
        .cloned()
        .unwrap_or_default()
}

/// What the client can show its user. The MCP spec's fallback: a client that declares
/// `elicitation` with no sub-capability supports forms. MRTR needs protocol 2026-07-28; older
/// clients can only be asked over a session this server does not keep.
fn client_asks(context: &RequestContext<RoleServer>) -> ClientAsks {
    let mrtr = context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    let elicitation = context
        .client_capabilities()
        .and_then(|caps| caps.elicitation)
        .filter(|_| mrtr);
    match elicitation {
        None => ClientAsks::default(),
        Some(elicitation) => ClientAsks {
            form: elicitation.form.is_some() || elicitation.url.is_none(),
            url: elicitation.url.is_some(),
        },
    }
}

impl McpServer {
    /// A call whose operation goes on becomes a task for a client that declared tasks.
    async fn as_task(
        &self,
        response: CallToolResponse,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let tasks = context
            .client_capabilities()
            .is_some_and(|capabilities| capabilities.supports_tasks());
        let Some(id) = tasks
            .then(|| tasks::running_operation(&response))
            .flatten()
            .and_then(|id| id.parse::<JobId>().ok())
        else {
            return response;
        };
        match self.services.jobs.get(&id).await {
            Ok(record) => tasks::created(&record),
            // The answer the client would have had without tasks still names the operation.
            Err(_) => response,
        }
    }

    async fn task_record(
        &self,
        task_id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<(JobRecord, Arc<Caller>), McpError> {
        let unknown = || McpError::invalid_params(format!("no task with id {task_id}"), None);
        let Some(caller) = caller_of(context) else {
            return Err(McpError::invalid_request(
                "no caller identity reached the MCP server; every call is refused",
                None,
            ));
        };
        let id: JobId = task_id.parse().map_err(|_| unknown())?;
        let record = match self.services.jobs.get(&id).await {
            Ok(record) => record,
            Err(JobsError::NotFound(_)) => return Err(unknown()),
            Err(error) => return Err(McpError::internal_error(error.to_string(), None)),
        };
        if !tasks::visible_to(&record, &caller) {
            return Err(unknown());
        }
        Ok((record, Arc::new(caller)))
    }
}

impl ServerHandler for McpServer {
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let (record, _) = self.task_record(&request.task_id, &context).await?;
        let result = if record.state == JobState::Succeeded {
            self.services
                .jobs
                .result(&record, crate::jobs::MAX_INLINE_RESULT_BYTES)
                .await
                .map_err(|error| McpError::internal_error(error.to_string(), None))?
        } else {
            ResultView::None
        };
        Ok(GetTaskResult::new(tasks::detailed(&record, result)))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let (record, caller) = self.task_record(&request.task_id, &context).await?;
        if record.state.is_final() {
            return Err(McpError::invalid_params(
                format!(
                    "task {} already ended ({})",
                    record.job_id,
                    record.state.name()
                ),
                None,
            ));
        }
        self.services
            .jobs
            .cancel(&record.job_id, &caller.to_string())
            .await
            .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        Ok(())
    }

    fn get_info(&self) -> ServerConfig {
        let mut implementation = Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"));
        implementation.title = Some("Defender XDR and Sentinel".into());
        let capabilities = if !self.catalogue.has_resources() {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_tasks()
                .build()
        } else {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_tasks()
                .build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(implementation)
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = match caller_of(&context) {
            Some(caller) => self.catalogue.tools_for(&caller, &scope_of(&context)).await,
            None => Vec::new(),
        };
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.catalogue.get_tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let client = client_asks(&context);
        // rmcp runs this on its own task: re-enter the HTTP request's span, if it is recorded.
        let request_span = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<telemetry::RequestSpan>())
            .map_or_else(tracing::Span::none, |span| span.0.clone());
        let Some(caller) = caller_of(&context) else {
            return Err(McpError::invalid_request(
                "no caller identity reached the MCP server; every call is refused",
                None,
            ));
        };
        let caller = Arc::new(caller);
        let invocation = Invocation {
            caller: caller.clone(),
            arguments: request.arguments.unwrap_or_default(),
            request_state: request.request_state,
            input_responses: request.input_responses,
            client,
        };
        let tool_context = ToolContext {
            services: self.services.clone(),
            caller: caller.clone(),
        };
        let scope = scope_of(&context);
        let call = self.catalogue.call(
            &request.name,
            &scope,
            tool_context,
            self.policy.clone(),
            invocation,
        );
        let (unavailable, invocation) = match call.instrument(request_span).await {
            Ok(response) => return Ok(self.as_task(response, &context).await),
            Err(refused) => refused,
        };
        let refusal = match unavailable {
            Unavailable::Unknown => format!(
                "unknown tool '{}'; call tools/list for the tools this server offers",
                request.name
            ),
            Unavailable::Hidden(reason) => reason,
            Unavailable::NeedsTier(needed) => self.needs_tier(&request.name, needed, &caller),
        };
        let record = self
            .catalogue
            .refusal_record(&request.name, &invocation, &refusal);
        self.services
            .audit
            .append(record, Storing::BeforeAnswer)
            .await;
        Err(McpError::invalid_params(refusal, None))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let scope = scope_of(&context);
        let context = self.resource_context(&context)?;
        let mut resources = Vec::new();
        for provider in self.catalogue.resource_providers(&scope) {
            resources.extend(provider.list(&context).await.map_err(resource_error)?);
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let templates = self
            .catalogue
            .resource_providers(&scope_of(&context))
            .iter()
            .flat_map(|provider| provider.templates())
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let scope = scope_of(&context);
        let context = self.resource_context(&context)?;
        let providers = self.catalogue.resource_providers(&scope);
        let scheme = request.uri.split_once("://").map(|(scheme, _)| scheme);
        let provider = providers
            .iter()
            .find(|provider| Some(provider.scheme()) == scheme)
            .ok_or_else(|| {
                let schemes: Vec<String> = providers
                    .iter()
                    .map(|p| format!("{}://", p.scheme()))
                    .collect();
                McpError::resource_not_found(
                    format!(
                        "no resource {}: this server serves resources under {}",
                        request.uri,
                        if schemes.is_empty() {
                            "no scheme".into()
                        } else {
                            schemes.join(", ")
                        }
                    ),
                    None,
                )
            })?;
        Ok(provider
            .read(&context, &request.uri)
            .await
            .map_err(resource_error)?
            .into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(
            self.catalogue
                .prompts()
                .iter()
                .map(|p| p.listing())
                .collect(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let prompt = self.catalogue.prompt(&request.name).ok_or_else(|| {
            let known: Vec<&str> = self.catalogue.prompts().iter().map(|p| p.name).collect();
            McpError::invalid_params(
                format!(
                    "unknown prompt '{}'; prompts: {}",
                    request.name,
                    known.join(", ")
                ),
                None,
            )
        })?;
        let arguments: BTreeMap<String, String> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                (key, text)
            })
            .collect();
        let messages = prompt
            .render(&arguments)
            .map_err(|error| McpError::invalid_params(error.0, None))?;
        Ok(GetPromptResult::new(messages)
            .with_description(prompt.description)
            .into())
    }
}

fn resource_error(error: ResourceError) -> McpError {
    match error {
        ResourceError::NotFound(message) => McpError::resource_not_found(message, None),
        ResourceError::Invalid(message) => McpError::invalid_params(message, None),
        ResourceError::Unavailable(message) => McpError::internal_error(message, None),
    }
}
