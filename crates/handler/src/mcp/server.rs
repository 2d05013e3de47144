//! The rmcp server handler. Stateless: a fresh value per request (cheap: a few `Arc`s), nothing
//! kept between requests, so any instance of a scaled-out app can answer any request.
//!
//! The caller comes from the request extensions, where the inbound auth layer put it; a request
//! without one (the layer is missing) sees no tools and may call none.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
    ListPromptsResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::catalogue::{CallPolicy, Catalogue, Invocation, Unavailable};
use super::tool::{Tier, ToolContext};
use crate::auth::Caller;
use crate::config::RoleNames;
use crate::services::Services;

pub const SERVER_NAME: &str = "defender-sentinel-mcp";

const INSTRUCTIONS: &str = "Operates Microsoft Defender for Endpoint / Defender XDR and Microsoft Sentinel \
across the tenants this server is configured for. Call tenants_list first when you do not know the tenant id. \
Read tools change nothing; tools annotated destructive (isolation, offboarding, deletions) act on real devices \
and data: confirm the exact targets with the person before calling them.";

#[derive(Clone)]
pub struct McpServer {
    catalogue: Arc<Catalogue>,
    services: Arc<Services>,
    policy: Arc<CallPolicy>,
    roles: Arc<RoleNames>,
}

impl McpServer {
    pub fn new(catalogue: Arc<Catalogue>, services: Arc<Services>, policy: Arc<CallPolicy>, roles: RoleNames) -> Self {
        Self { catalogue, services, policy, roles: Arc::new(roles) }
    }

    fn needs_tier(&self, tool: &str, needed: Tier, caller: &Caller) -> String {
        let have = caller.tier.map_or_else(|| "no tier (none of this server's app roles)".to_string(), |tier| format!("the {} tier", tier.name()));
        format!(
            "tool {tool} needs the {} tier: the app role '{}' (or a higher one); your roles grant {have}. Ask an administrator              to assign the role in the server's Entra ID app registration",
            needed.name(),
            self.roles.role_for(needed)
        )
    }
}

/// The caller the auth layer attached to the HTTP request, or nobody.
fn caller_of(context: &RequestContext<RoleServer>) -> Option<Caller> {
    context.extensions.get::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<Caller>()).cloned()
}

/// The MCP spec's fallback: a client that declares `elicitation` with no sub-capability supports forms.
/// MRTR needs protocol 2026-07-28; older clients can only be asked over a session this server does not keep.
fn client_can_elicit(context: &RequestContext<RoleServer>) -> bool {
    let mrtr = context.protocol_version().is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    let form = context
        .client_capabilities()
        .and_then(|caps| caps.elicitation)
        .is_some_and(|elicitation| elicitation.form.is_some() || elicitation.url.is_none());
    mrtr && form
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut implementation = Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"));
        implementation.title = Some("Defender XDR and Sentinel".into());
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_prompts().build())
            .with_server_info(implementation)
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = caller_of(&context).map(|caller| self.catalogue.tools_for(&caller)).unwrap_or_default();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.catalogue.visible_tools().iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let client_can_elicit = client_can_elicit(&context);
        let Some(caller) = caller_of(&context) else {
            return Err(McpError::invalid_request("no caller identity reached the MCP server; every call is refused", None));
        };
        let caller = Arc::new(caller);
        let invocation = Invocation {
            caller: caller.clone(),
            arguments: request.arguments.unwrap_or_default(),
            request_state: request.request_state,
            input_responses: request.input_responses,
            client_can_elicit,
        };
        let tool_context = ToolContext { services: self.services.clone(), caller: caller.clone() };
        let (unavailable, invocation) = match self.catalogue.call(&request.name, tool_context, self.policy.clone(), invocation) {
            Ok(call) => return Ok(call.await),
            Err(refused) => refused,
        };
        let refusal = match unavailable {
            Unavailable::Unknown => format!("unknown tool '{}'; call tools/list for the tools this server offers", request.name),
            Unavailable::Hidden(reason) => reason,
            Unavailable::NeedsTier(needed) => self.needs_tier(&request.name, needed, &caller),
        };
        let record = self.catalogue.refusal_record(&request.name, &invocation, &refusal);
        self.services.audit.append(&record).await;
        Err(McpError::invalid_params(refusal, None))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(self.catalogue.prompts().iter().map(|p| p.listing()).collect()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let prompt = self.catalogue.prompt(&request.name).ok_or_else(|| {
            let known: Vec<&str> = self.catalogue.prompts().iter().map(|p| p.name).collect();
            McpError::invalid_params(format!("unknown prompt '{}'; prompts: {}", request.name, known.join(", ")), None)
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
        let messages = prompt.render(&arguments).map_err(|error| McpError::invalid_params(error.0, None))?;
        Ok(GetPromptResult::new(messages).with_description(prompt.description).into())
    }
}
