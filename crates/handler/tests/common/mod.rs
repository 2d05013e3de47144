//! Test harness: a sandbox tenant, the handler served in-process on loopback, and an rmcp client.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use handler::config::{Config, settings};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use sandbox::{ActionTimings, RunningSandbox, SandboxOptions};
use serde_json::{Value, json};

pub const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";
pub const FABRIKAM: &str = "22222222-2222-4222-8222-222222222222";

/// The storage the test command started (Azurite). Tests that need storage fail loudly without it.
pub fn storage_connection_string() -> String {
    std::env::var("TEST_STORAGE_CONNECTION_STRING").unwrap_or_else(|_| {
        panic!("TEST_STORAGE_CONNECTION_STRING is not set: run the tests with ./scripts/test, which starts Azurite and sets it")
    })
}

pub fn fast_sandbox_options() -> SandboxOptions {
    SandboxOptions {
        action_timings: ActionTimings { pending: Duration::from_millis(200), in_progress: Duration::from_millis(300) },
        ..SandboxOptions::default()
    }
}

pub struct TestApp {
    pub sandbox: RunningSandbox,
    pub base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(fast_sandbox_options(), &[]).await
    }

    /// `extra` settings override the sandbox defaults (e.g. read-only mode).
    pub async fn start_with(options: SandboxOptions, extra: &[(&str, &str)]) -> Self {
        Self::start_tuned(options, extra, |_| {}).await
    }

    /// As `start_with`, then `tune` changes the parsed configuration (what no setting reaches,
    /// such as rate-limit windows shortened to match a sandbox with a fast clock).
    pub async fn start_tuned(options: SandboxOptions, extra: &[(&str, &str)], tune: impl FnOnce(&mut Config)) -> Self {
        let sandbox = RunningSandbox::start(options).await.expect("sandbox starts");
        let mut values: HashMap<String, String> =
            handler::local::sandbox_settings(&sandbox).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        values.insert(settings::STORAGE.into(), storage_connection_string());
        values.insert(settings::OUTBOUND_MAX_RETRIES.into(), "3".into());
        for (key, value) in extra {
            values.insert(key.to_string(), value.to_string());
        }
        let mut config = Config::from_lookup(|name| values.get(name).cloned()).expect("valid test configuration");
        config.outbound.trusted_ca_pem = Some(sandbox.ca_certificate_pem().to_string());
        tune(&mut config);
        let router = handler::app(&config).expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).with_graceful_shutdown(async { let _ = signal.await; }).await;
        });
        Self { sandbox, base_url: format!("http://{address}"), shutdown: Some(shutdown) }
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/api/mcp", self.base_url)
    }

    pub async fn client(&self) -> McpClient {
        connect(&self.mcp_url()).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub type McpClient = RunningService<RoleClient, ClientConfig>;

pub async fn connect(url: &str) -> McpClient {
    let transport = StreamableHttpClientTransport::from_uri(url.to_string());
    ClientConfig::default().serve(transport).await.expect("MCP client connects and initializes")
}

pub async fn call(client: &McpClient, tool: &str, arguments: Value) -> CallToolResult {
    let arguments = match arguments {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, got {other}"),
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"))
}

/// The structured result of a successful call.
pub fn ok(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "expected success, got error: {}", text(result));
    result.structured_content.clone().unwrap_or_else(|| panic!("no structured content in {result:?}"))
}

/// The text of a failed call.
pub fn err(result: &CallToolResult) -> String {
    assert_eq!(result.is_error, Some(true), "expected a tool error, got: {}", text(result));
    text(result)
}

pub fn text(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|block| block.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

pub fn contoso() -> Value {
    json!(CONTOSO)
}

/// Ids of the first `count` devices matching an OData filter (the sandbox seeds onboarded, active,
/// inactive and unmanaged devices).
pub async fn machine_ids(client: &McpClient, tenant: &str, filter: &str, count: usize) -> Vec<String> {
    let output = ok(&call(client, "mde_list_machines", json!({"tenant_id": tenant, "filter": filter, "limit": count})).await);
    let ids: Vec<String> =
        output["machines"].as_array().expect("machines").iter().map(|m| m["id"].as_str().expect("id").to_string()).collect();
    assert_eq!(ids.len(), count, "the sandbox has {count} devices matching {filter}");
    ids
}

pub const ACTIVE: &str = "onboardingStatus eq 'Onboarded' and healthStatus eq 'Active'";
pub const UNMANAGED: &str = "onboardingStatus eq 'CanBeOnboarded'";
