//! Test harness: a sandbox tenant, the handler served in-process on loopback, and an rmcp client.

pub mod browser;
pub mod contract;
pub mod destructive;
pub mod entra;
pub mod fault_proxy;
pub mod https;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use handler::config::{Config, settings};
use handler::hunts::{AppSettingSecrets, Clock, SystemClock};
use handler::mcp::CatalogueBuilder;
use handler::services::Services;
use rmcp::model::ProtocolVersion;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, FormElicitationCapability,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use sandbox::{ActionTimings, RunningSandbox, SandboxOptions};
use serde_json::{Value, json};

pub const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";
pub const FABRIKAM: &str = "22222222-2222-4222-8222-222222222222";

/// Short read timeouts, so that a test of a half-sent request ends in seconds.
pub fn read_timeouts() -> handler::host::server::ReadTimeouts {
    handler::host::server::ReadTimeouts {
        headers: Duration::from_secs(2),
        body_pause: Duration::from_secs(2),
    }
}

/// The storage the test command started (Azurite). Tests that need storage fail loudly without it.
pub fn storage_connection_string() -> String {
    std::env::var("TEST_STORAGE_CONNECTION_STRING").unwrap_or_else(|_| {
        panic!("TEST_STORAGE_CONNECTION_STRING is not set: run the tests with ./scripts/test, which starts Azurite and sets it")
    })
}

pub fn fast_sandbox_options() -> SandboxOptions {
    SandboxOptions {
        action_timings: ActionTimings {
            pending: Duration::from_millis(200),
            in_progress: Duration::from_millis(300),
        },
        ..SandboxOptions::default()
    }
}

pub struct TestApp {
    pub sandbox: RunningSandbox,
    pub base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A clock tests move by hand, so schedules are exercised without sleeping.
pub struct ManualClock(Mutex<time::OffsetDateTime>);

impl ManualClock {
    pub fn at(now: time::OffsetDateTime) -> Arc<Self> {
        Arc::new(Self(Mutex::new(now)))
    }

    pub fn advance(&self, by: time::Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> time::OffsetDateTime {
        *self.0.lock().expect("clock lock")
    }
}

/// A blob container of its own for each app, so parallel tests never see each other's hunts.
pub fn unique_hunt_container() -> String {
    format!(
        "hunts-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(fast_sandbox_options(), &[]).await
    }

    /// `extra` settings override the sandbox defaults (e.g. read-only mode).
    pub async fn start_with(options: SandboxOptions, extra: &[(&str, &str)]) -> Self {
        Self::start_custom(options, extra, |_| {}, |builder| builder).await
    }

    /// Also `HUNT_SECRET_*` settings in `extra` are what hunt alerts resolve their webhooks from.
    pub async fn start_with_clock(
        options: SandboxOptions,
        extra: &[(&str, &str)],
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::start_full(options, extra, clock, |_| {}, |builder| builder).await
    }

    /// [`Self::start_with`], plus changes to the parsed configuration and extra (test-only) tools.
    pub async fn start_custom(
        options: SandboxOptions,
        extra: &[(&str, &str)],
        adjust: impl FnOnce(&mut Config),
        tools: impl FnOnce(CatalogueBuilder) -> CatalogueBuilder,
    ) -> Self {
        Self::start_full(options, extra, Arc::new(SystemClock), adjust, tools).await
    }

    /// As `start_with`, then `tune` changes the parsed configuration (what no setting reaches,
    /// such as rate-limit windows shortened to match a sandbox with a fast clock).
    pub async fn start_tuned(
        options: SandboxOptions,
        extra: &[(&str, &str)],
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_custom(options, extra, tune, |builder| builder).await
    }

    async fn start_full(
        options: SandboxOptions,
        extra: &[(&str, &str)],
        clock: Arc<dyn Clock>,
        adjust: impl FnOnce(&mut Config),
        tools: impl FnOnce(CatalogueBuilder) -> CatalogueBuilder,
    ) -> Self {
        let sandbox = RunningSandbox::start(options)
            .await
            .expect("sandbox starts");
        // Bound first: the approval page's URL names the port.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let mut values: HashMap<String, String> = handler::local::sandbox_settings(&sandbox)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for (key, value) in handler::local::sandbox_defaults() {
            values.insert(key.to_string(), value);
        }
        values.insert(settings::STORAGE.into(), storage_connection_string());
        values.insert(settings::OUTBOUND_MAX_RETRIES.into(), "3".into());
        values.insert(
            settings::HUNT_STORAGE_CONTAINER.into(),
            unique_hunt_container(),
        );
        // Each app has its own sandbox, so its own quota ledger (tenant ids are the same in all).
        values.insert(
            settings::QUOTA_CONTAINER.into(),
            unique_hunt_container().replace("hunts-", "quota-"),
        );
        // Tests call far faster than a person; the rate limit has tests of its own that set it.
        values.insert(settings::MCP_RATE_LIMIT_PER_MINUTE.into(), "0".into());
        values.insert(
            settings::APPROVAL_PUBLIC_URL.into(),
            format!("http://{address}"),
        );
        for (key, value) in extra {
            values.insert(key.to_string(), value.to_string());
        }
        let mut config = Config::from_lookup(|name| values.get(name).cloned())
            .expect("valid test configuration");
        config.outbound.trusted_ca_pem = Some(sandbox.ca_certificate_pem().to_string());
        adjust(&mut config);
        let secrets = values.clone();
        let secrets = AppSettingSecrets::new(move |name| secrets.get(name).cloned());
        let services =
            Arc::new(Services::with(&config, Arc::new(secrets), clock).expect("services build"));
        let router = handler::app_with_tools(&config, services.clone(), tools).expect("app builds");
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(handler::host::server::serve(
            listener,
            router,
            read_timeouts(),
            async {
                let _ = signal.await;
            },
        ));
        Self {
            sandbox,
            base_url: format!("http://{address}"),
            shutdown: Some(shutdown),
        }
    }

    pub fn mcp_url(&self) -> String {
        // Every toolset: the tests reach each tool; the default connection has tests of its own.
        format!("{}/api/mcp/x/all", self.base_url)
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
    ClientConfig::default()
        .serve(transport)
        .await
        .expect("MCP client connects and initializes")
}

/// A client that declares the tasks extension, as protocol 2026-07-28 has it: declared per
/// request, which a stateless server reads without initialize.
pub async fn connect_with_tasks(url: &str) -> McpClient {
    ClientConfig::new(
        rmcp::model::ClientCapabilities::builder()
            .enable_tasks()
            .build(),
        rmcp::model::Implementation::new("task-test", "1"),
    )
    .serve_with_lifecycle(
        StreamableHttpClientTransport::from_uri(url.to_string()),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("a task-aware client connects")
}

/// Follows a job or operation with job_get (waiting 5 s a time) until it ends; at most `polls`
/// asks.
pub async fn job_when_ended(client: &McpClient, id: &str, polls: usize) -> Value {
    for _ in 0..polls {
        let view = ok(&call(client, "job_get", json!({"job_id": id, "wait_seconds": 5})).await);
        if view["state"] != "running" && view["state"] != "queued" {
            return view;
        }
    }
    panic!("job {id} did not end after {polls} asks of 5 s");
}

/// Asks for a task's state until it ends (at most `polls` times, half a second apart).
pub async fn finished_task(
    client: &McpClient,
    task_id: &str,
    polls: usize,
) -> rmcp::model::DetailedTask {
    for _ in 0..polls {
        let task = client
            .get_task(rmcp::model::GetTaskParams::new(task_id.to_string()))
            .await
            .expect("tasks/get");
        if task.task.task.status.is_terminal() {
            return task.task;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("task {task_id} did not end after {polls} polls");
}

/// A client that sends `Authorization: Bearer <token>`.
pub async fn connect_with_token(url: &str, token: &str) -> McpClient {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .auth_header(token.to_string());
    ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP client connects")
}

/// A client whose person answers every approval prompt (MCP elicitation) with `approve`.
#[derive(Clone)]
pub struct Approver {
    pub approve: bool,
    pub prompts: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ClientHandler for Approver {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation =
            Some(ElicitationCapability::new().with_form(FormElicitationCapability::default()));
        let mut info = ClientConfig::default();
        info.capabilities = capabilities;
        info
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.prompts.lock().expect("prompts").push(message.clone());
        }
        Ok(if self.approve {
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": true}))
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }
}

pub type ApproverClient = RunningService<RoleClient, Approver>;

pub async fn connect_approver(
    url: &str,
    token: Option<&str>,
    approve: bool,
) -> (ApproverClient, Arc<std::sync::Mutex<Vec<String>>>) {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(token) = token {
        config = config.auth_header(token.to_string());
    }
    let prompts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let approver = Approver {
        approve,
        prompts: prompts.clone(),
    };
    // Approval prompts on a stateless server need MRTR, which is protocol 2026-07-28 (no initialize).
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = approver
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(config),
            lifecycle,
        )
        .await
        .expect("MCP client connects");
    (client, prompts)
}

pub async fn call<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let arguments = match arguments {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, got {other}"),
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"));
    assert_matches_output_schema(client, tool, &result).await;
    result
}

/// Every structured result a test sees must be one the tool's advertised output schema accepts:
/// clients validate against it.
async fn assert_matches_output_schema<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    result: &CallToolResult,
) {
    let Some(structured) = &result.structured_content else {
        return;
    };
    let tools = client.list_all_tools().await.expect("tools/list");
    let Some(schema) = tools
        .iter()
        .find(|t| t.name == tool)
        .and_then(|t| t.output_schema.clone())
    else {
        return;
    };
    let schema = Value::Object((*schema).clone());
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|error| panic!("{tool}'s output schema is not valid: {error}"));
    let errors: Vec<String> = validator
        .iter_errors(structured)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{tool}'s result does not match its output schema: {errors:?}"
    );
}

/// The structured result of a successful call.
pub fn ok(result: &CallToolResult) -> Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "expected success, got error: {}",
        text(result)
    );
    result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structured content in {result:?}"))
}

/// The text of a failed call.
pub fn err(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error, got: {}",
        text(result)
    );
    text(result)
}

pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The token a `CONFIRMATION REQUIRED` answer gives back, if the answer has one.
pub fn confirmation_token(message: &str) -> Option<String> {
    message
        .split("\"confirmation_token\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
}

/// The approval id and page URL an `APPROVAL REQUIRED` answer gives, if the answer has them.
pub fn approval_page(message: &str) -> Option<(String, String)> {
    let id = message
        .split("\"approval_id\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())?;
    let url = message
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.contains("/api/approvals/"))?;
    Some((id.to_string(), url.to_string()))
}

/// What a person's browser does on the approval page: opens it, reads the form's CSRF token,
/// and presses `action` (approve or deny). `headers` carry the person's identity where App
/// Service authentication would (X-MS-CLIENT-PRINCIPAL). Returns the page's status and text.
pub async fn decide_on_page(url: &str, action: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let http = reqwest::Client::new();
    let mut get = http.get(url);
    for (name, value) in headers {
        get = get.header(*name, *value);
    }
    let page = get.send().await.expect("approval page answers");
    let page = page.text().await.expect("page text");
    let Some(csrf) = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
    else {
        return (0, page);
    };
    let origin = url.split("/api/").next().unwrap_or(url);
    let mut post = http
        .post(url)
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("action={action}&csrf={csrf}"));
    for (name, value) in headers {
        post = post.header(*name, *value);
    }
    let answer = post.send().await.expect("decision answers");
    let status = answer.status().as_u16();
    (status, answer.text().await.expect("answer text"))
}

/// Calls a tool; when the server answers that a person must approve (a destructive tool), does
/// what the person would: approves on the approval page (or confirms with the token under
/// `APPROVAL_FALLBACK=confirm`), then calls again as the client would.
pub async fn call_confirmed(client: &McpClient, tool: &str, arguments: Value) -> CallToolResult {
    let first = call(client, tool, arguments.clone()).await;
    if first.is_error != Some(true) {
        return first;
    }
    let message = text(&first);
    let mut confirmed = arguments;
    if let Some((id, url)) = approval_page(&message) {
        let (status, page) = decide_on_page(&url, "approve", &[]).await;
        assert_eq!(status, 200, "the approval page took the approval: {page}");
        confirmed["approval_id"] = json!(id);
    } else if let Some(token) = confirmation_token(&message) {
        confirmed["confirmation_token"] = json!(token);
    } else {
        return first;
    }
    call(client, tool, confirmed).await
}

/// Ids of the first `count` devices matching an OData filter (the sandbox seeds onboarded, active,
/// inactive and unmanaged devices).
pub async fn machine_ids(
    client: &McpClient,
    tenant: &str,
    filter: &str,
    count: usize,
) -> Vec<String> {
    let output = ok(&call(
        client,
        "mde_list_machines",
        json!({"tenant_id": tenant, "filter": filter, "limit": count}),
    )
    .await);
    let ids: Vec<String> = output["machines"]
        .as_array()
        .expect("machines")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        ids.len(),
        count,
        "the sandbox has {count} devices matching {filter}"
    );
    ids
}

pub const ACTIVE: &str = "onboardingStatus eq 'Onboarded' and healthStatus eq 'Active'";
pub const UNMANAGED: &str = "onboardingStatus eq 'CanBeOnboarded'";
