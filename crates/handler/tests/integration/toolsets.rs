//! Toolsets chosen per connection: by URL (`/api/mcp/x/{toolsets}[/readonly]`, `/api/mcp/readonly`)
//! or by header (`X-MCP-Toolsets`, `X-MCP-Readonly`), through a real MCP client. A connection
//! only narrows what the deployment offers.

use crate::common;

use std::collections::BTreeSet;

use common::*;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, Tool};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

async fn tools_at(app: &TestApp, path: &str) -> Vec<Tool> {
    let client = connect(&format!("{}{path}", app.base_url)).await;
    client.list_all_tools().await.expect("tools/list")
}

fn names(tools: &[Tool]) -> BTreeSet<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

fn changes_nothing(tool: &Tool) -> bool {
    tool.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true)
}

async fn connect_with_headers(url: &str, headers: &[(&'static str, &str)]) -> McpClient {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    for (name, value) in headers {
        config.custom_headers.insert(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP client connects")
}

#[tokio::test]
async fn a_connection_to_x_hunts_sees_and_may_call_only_hunt_tools() {
    let app = TestApp::start().await;
    let client = connect(&format!("{}/api/mcp/x/hunts", app.base_url)).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(!tools.is_empty());
    assert!(
        tools.iter().all(|t| t.name.starts_with("hunt_")),
        "only hunt tools: {:?}",
        names(&tools)
    );
    ok(&call(&client, "hunt_list", json!({})).await);

    let error = client
        .call_tool(
            CallToolRequestParams::new("mde_list_machines")
                .with_arguments(json!({"tenant_id": CONTOSO}).as_object().unwrap().clone()),
        )
        .await
        .expect_err("a tool outside the connection's toolsets is refused");
    let message = error.to_string();
    assert!(
        message.contains("not offered on this connection")
            && message.contains("/api/mcp/x/hunts")
            && message.contains("/api/mcp/x/devices"),
        "says why and where the tool is: {message}"
    );
}

#[tokio::test]
async fn the_default_connection_is_the_triage_set_and_leads_to_the_rest() {
    let app = TestApp::start().await;
    let default = tools_at(&app, "/api/mcp").await;
    let all = tools_at(&app, "/api/mcp/x/all").await;
    assert!(
        default.len() < all.len() / 3,
        "{} of {}",
        default.len(),
        all.len()
    );
    assert!(default.iter().all(changes_nothing), "triage reads only");
    let triage = names(&default);
    for expected in [
        "toolsets_list",
        "tenants_list",
        "mde_list_incidents",
        "mde_run_hunting_query",
    ] {
        assert!(
            triage.contains(expected),
            "{expected} missing from {triage:?}"
        );
    }
    assert_eq!(names(&tools_at(&app, "/api/mcp/x/triage").await), triage);

    let client = connect(&format!("{}/api/mcp", app.base_url)).await;
    let listed = ok(&call(&client, "toolsets_list", json!({})).await);
    let toolsets = listed["toolsets"].as_array().expect("toolsets");
    let response = toolsets
        .iter()
        .find(|t| t["name"] == "response")
        .unwrap_or_else(|| panic!("response toolset listed: {listed}"));
    assert_eq!(response["url"], "/api/mcp/x/response");
    assert_eq!(response["group"], "defender");
    assert!(
        response["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("mde_isolate_machines"))
    );
    let listed_tools: usize = toolsets
        .iter()
        .map(|t| t["tools"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        listed_tools,
        all.len(),
        "every tool is findable from the default connection"
    );
}

#[tokio::test]
async fn read_only_connections_offer_and_allow_no_change() {
    let app = TestApp::start().await;
    for path in [
        "/api/mcp/readonly",
        "/api/mcp/x/all/readonly",
        "/api/mcp/x/defender,hunts/readonly",
    ] {
        let tools = tools_at(&app, path).await;
        assert!(!tools.is_empty(), "{path}");
        let writing: Vec<&str> = tools
            .iter()
            .filter(|t| !changes_nothing(t))
            .map(|t| t.name.as_ref())
            .collect();
        assert!(writing.is_empty(), "{path} offers {writing:?}");
    }
    let client = connect(&format!("{}/api/mcp/x/all/readonly", app.base_url)).await;
    let error = client
        .call_tool(
            CallToolRequestParams::new("hunt_delete").with_arguments(
                json!({"hunt_id": "00000000-0000-4000-8000-000000000000"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .expect_err("a writing tool on a read-only connection");
    assert!(error.to_string().contains("read-only"), "{error}");
}

#[tokio::test]
async fn headers_choose_toolsets_for_clients_that_can_send_them() {
    let app = TestApp::start().await;
    let url = format!("{}/api/mcp", app.base_url);
    let client = connect_with_headers(
        &url,
        &[("x-mcp-toolsets", "hunts,jobs"), ("x-mcp-readonly", "true")],
    )
    .await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let listed = names(&tools);
    assert!(
        listed.contains("hunt_list") && listed.contains("job_list"),
        "{listed:?}"
    );
    assert!(
        tools
            .iter()
            .all(|t| t.name.starts_with("hunt_") || t.name.starts_with("job_"))
    );
    assert!(tools.iter().all(changes_nothing), "{listed:?}");

    // The URL and the header both narrow: a tool must be in each.
    let both = connect_with_headers(
        &format!("{url}/x/defender"),
        &[("x-mcp-toolsets", "response,hunts")],
    )
    .await;
    let tools = both.list_all_tools().await.expect("tools/list");
    assert!(names(&tools).contains("mde_isolate_machines"));
    assert!(
        tools.iter().all(|t| t.name.starts_with("mde_")),
        "{:?}",
        names(&tools)
    );
}

#[tokio::test]
async fn unknown_toolsets_and_paths_are_refused_with_what_is_accepted() {
    let app = TestApp::start().await;
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |path: &str, header: Option<&str>| {
        let mut request = http
            .post(format!("{}{path}", app.base_url))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(list) = header {
            request = request.header("x-mcp-toolsets", list);
        }
        request.send()
    };
    let response = post("/api/mcp/x/hunts,respnse", None)
        .await
        .expect("answer");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    let message = body["error_description"].as_str().expect("description");
    for expected in [
        "respnse",
        "triage",
        "all",
        "defender",
        "live_response",
        "sentinel_tables",
    ] {
        assert!(message.contains(expected), "{expected} missing: {message}");
    }

    let response = post("/api/mcp", Some("nothing")).await.expect("answer");
    assert_eq!(response.status(), 400);

    let response = post("/api/mcp/tools", None).await.expect("answer");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("/api/mcp/x/{toolsets}"),
        "{body}"
    );
}

#[tokio::test]
async fn a_connection_never_widens_what_the_deployment_offers() {
    let app = TestApp::start_with(
        fast_sandbox_options(),
        &[("MCP_TOOLSETS", "defender"), ("MCP_READ_ONLY", "true")],
    )
    .await;
    assert!(
        tools_at(&app, "/api/mcp/x/hunts").await.is_empty(),
        "hunts are off on this server"
    );
    let all = tools_at(&app, "/api/mcp/x/all").await;
    assert!(
        all.iter()
            .all(|t| t.name.starts_with("mde_") && changes_nothing(t)),
        "{:?}",
        names(&all)
    );
    let client = connect(&format!("{}/api/mcp/x/all", app.base_url)).await;
    let error = client
        .call_tool(CallToolRequestParams::new("hunt_list"))
        .await
        .expect_err("switched off on the server");
    assert!(error.to_string().contains("MCP_TOOLSETS"), "{error}");
}

#[test]
fn the_function_route_sends_every_connection_path_to_the_handler() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let function: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("function-mcp/function.json")).unwrap(),
    )
    .unwrap();
    // A catch-all parameter also matches nothing, so `/api/mcp` itself is routed too.
    assert_eq!(function["bindings"][0]["route"], "mcp/{*connection}");
}
