//! The rmcp server handler. Stateless: a fresh value per request (cheap: two `Arc`s), nothing
//! kept between requests, so any instance of a scaled-out app can answer any request.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::catalogue::{Catalogue, Unavailable};
use super::resources::ResourceError;
use super::tool::{Caller, ToolContext};
use crate::services::Services;
use crate::telemetry;
use tracing::Instrument;

pub const SERVER_NAME: &str = "defender-sentinel-mcp";

const INSTRUCTIONS: &str = "Operates Microsoft Defender for Endpoint / Defender XDR and Microsoft Sentinel \
across the tenants this server is configured for. Call tenants_list first when you do not know the tenant id. \
Read tools change nothing; tools annotated destructive (isolation, offboarding, deletions) act on real devices \
and data: confirm the exact targets with the person before calling them. Scheduled hunts (hunt_*) run KQL unattended \
across tenants; their runs are also resources at hunt://<hunt-id>/runs/<run-id>.";

#[derive(Clone)]
pub struct McpServer {
    catalogue: Arc<Catalogue>,
    services: Arc<Services>,
}

impl McpServer {
    pub fn new(catalogue: Arc<Catalogue>, services: Arc<Services>) -> Self {
        Self { catalogue, services }
    }

    /// What a tool or resource read may use, with the caller the HTTP request carried.
    fn tool_context(&self, context: &RequestContext<RoleServer>) -> ToolContext {
        let caller = context
            .extensions
            .get::<axum::http::request::Parts>()
            .map(|parts| Caller::from_headers(&parts.headers))
            .unwrap_or_else(Caller::anonymous);
        ToolContext { services: self.services.clone(), caller }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut implementation = Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"));
        implementation.title = Some("Defender XDR and Sentinel".into());
        let capabilities = if self.catalogue.resource_providers().is_empty() {
            ServerCapabilities::builder().enable_tools().enable_prompts().build()
        } else {
            ServerCapabilities::builder().enable_tools().enable_prompts().enable_resources().build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(implementation)
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.catalogue.list_tools().await))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.catalogue.get_tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // rmcp runs this on its own task: re-enter the HTTP request's span, if it is recorded.
        let request_span = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<telemetry::RequestSpan>())
            .map_or_else(tracing::Span::none, |span| span.0.clone());
        let context = self.tool_context(&context);
        let arguments = request.arguments.unwrap_or_default();
        match self.catalogue.call(&request.name, context, arguments).instrument(request_span).await {
            Ok(result) => Ok(result.into()),
            Err(Unavailable::Unknown) => Err(McpError::invalid_params(
                format!("unknown tool '{}'; call tools/list for the tools this server offers", request.name),
                None,
            )),
            Err(Unavailable::Hidden(reason)) => Err(McpError::invalid_params(reason, None)),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let context = self.tool_context(&context);
        let mut resources = Vec::new();
        for provider in self.catalogue.resource_providers() {
            resources.extend(provider.list(&context).await.map_err(resource_error)?);
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let templates = self.catalogue.resource_providers().iter().flat_map(|provider| provider.templates()).collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let context = self.tool_context(&context);
        let providers = self.catalogue.resource_providers();
        let scheme = request.uri.split_once("://").map(|(scheme, _)| scheme);
        let provider = providers.iter().find(|provider| Some(provider.scheme()) == scheme).ok_or_else(|| {
            let schemes: Vec<String> = providers.iter().map(|p| format!("{}://", p.scheme())).collect();
            McpError::resource_not_found(
                format!("no resource {}: this server serves resources under {}", request.uri, if schemes.is_empty() { "no scheme".into() } else { schemes.join(", ") }),
                None,
            )
        })?;
        Ok(provider.read(&context, &request.uri).await.map_err(resource_error)?.into())
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

fn resource_error(error: ResourceError) -> McpError {
    match error {
        ResourceError::NotFound(message) => McpError::resource_not_found(message, None),
        ResourceError::Invalid(message) => McpError::invalid_params(message, None),
        ResourceError::Unavailable(message) => McpError::internal_error(message, None),
    }
}
