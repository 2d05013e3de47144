//! The real `handler` binary, driven exactly as the Azure Functions host drives a custom handler:
//! readiness on `/`, HTTP functions forwarded with their `/api/...` path and headers, and
//! non-HTTP triggers as `POST /<functionName>` with the `{"Data","Metadata"}` payload.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const APP_HOST: &str = "mcp-contoso.azurewebsites.net";

struct Handler {
    child: tokio::process::Child,
    base: String,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Starts the binary as the host does: the port in FUNCTIONS_CUSTOMHANDLER_PORT, app settings in the environment.
/// The host drives the timer, so the in-process hunt schedule is off.
async fn start_handler() -> Handler {
    start_handler_with(&[("HUNT_LOCAL_INTERVAL_SECONDS", "0")]).await
}

async fn start_handler_with(settings: &[(&str, &str)]) -> Handler {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .arg("--sandbox")
        .envs(settings.iter().copied())
        .env("HUNT_STORAGE_CONTAINER", unique_hunt_container())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "test-worker")
        .env("WEBSITE_HOSTNAME", APP_HOST)
        .env("AzureWebJobsStorage", storage_connection_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("handler starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    // The host polls GET / until anything answers.
    for _ in 0..200 {
        if client.get(format!("{base}/")).send().await.is_ok() {
            return Handler { child, base };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the handler did not answer GET / within 5 s");
}

/// Headers the host adds when it forwards or proxies an HTTP request.
fn host_forwarded(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("Host", APP_HOST)
        .header(
            "X-Azure-Functions-InvocationId",
            "5f7a3b56-9c0e-4f5e-9a8b-0e1d2c3b4a59",
        )
        .header("X-Azure-Functions-HostVersion", "4.1040.300.0")
        .header("User-Agent", "Azure-Functions-Host/4.1040.300.0")
        .header(
            "x-functions-key",
            "not-seen-by-the-handler-in-azure-but-harmless",
        )
}

fn jsonrpc(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}

async fn post_mcp(handler: &Handler, body: String) -> reqwest::Response {
    host_forwarded(reqwest::Client::new().post(format!("{}/api/mcp", handler.base)))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn readiness_probe_answers() {
    let handler = start_handler().await;
    let response = reqwest::get(format!("{}/", handler.base))
        .await
        .expect("GET /");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn forwarded_mcp_requests_are_served_statelessly_as_json() {
    let handler = start_handler().await;
    let initialize = jsonrpc(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "host-test", "version": "1"}}),
    );
    let response = post_mcp(&handler, initialize.to_string()).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("mcp-session-id").is_none(),
        "stateless: no session id"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("application/json")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["result"]["serverInfo"]["name"],
        "defender-sentinel-mcp"
    );
    assert!(
        body["result"]["capabilities"]["tools"].is_object()
            && body["result"]["capabilities"]["prompts"].is_object()
    );

    // Any instance may get the next request: tools/list needs no session.
    let response = post_mcp(&handler, jsonrpc("tools/list", json!({})).to_string()).await;
    let body: Value = response.json().await.expect("json");
    assert!(body["result"]["tools"].as_array().expect("tools").len() >= 4);
}

#[tokio::test]
async fn an_rmcp_client_lists_tools_and_calls_mde_list_machines_through_the_binary() {
    let handler = start_handler().await;
    let client = connect(&format!("{}/api/mcp", handler.base)).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "mde_list_machines"));
    let output = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 10}),
    )
    .await);
    assert_eq!(output["machines"].as_array().expect("machines").len(), 10);
}

#[tokio::test]
async fn bad_requests_get_specific_errors_and_the_server_keeps_serving() {
    let handler = start_handler().await;
    let client = reqwest::Client::new();

    let response = post_mcp(
        &handler,
        "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".into(),
    )
    .await;
    assert_eq!(response.status(), 400, "malformed JSON");
    let text = response.text().await.expect("body");
    assert!(
        text.contains("-32700") && text.contains("not JSON"),
        "a malformed request gets JSON-RPC's parse error with an explanation: {text}"
    );

    let oversize = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"padding": "x".repeat(2 * 1024 * 1024)}});
    let response = post_mcp(&handler, oversize.to_string()).await;
    assert_eq!(response.status(), 413);
    assert!(response.text().await.expect("body").contains("exceeds"));

    let response = client
        .post(format!("{}/api/mcp", handler.base))
        .header("Host", "attacker.example")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(jsonrpc("tools/list", json!({})).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        403,
        "DNS rebinding: an unexpected Host is refused"
    );

    let response = host_forwarded(client.post(format!("{}/api/mcp", handler.base)))
        .header("Origin", "https://attacker.example")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(jsonrpc("tools/list", json!({})).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        403,
        "a page on another origin is refused"
    );

    let call = jsonrpc(
        "tools/call",
        json!({"name": "mde_list_machines", "arguments": {"tenant_id": "33333333-3333-4333-8333-333333333333"}}),
    );
    let body: Value = post_mcp(&handler, call.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["result"]["isError"], json!(true));
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains("allow-list")
    );

    let body: Value = post_mcp(&handler, jsonrpc("tools/list", json!({})).to_string())
        .await
        .json()
        .await
        .expect("json");
    assert!(body["result"]["tools"].is_array(), "still serving: {body}");
}

/// The seeded example hunt (anchored one period back) is due at the first tick.
async fn seeded_hunt(handler: &Handler) -> (McpClient, String) {
    let client = connect(&format!("{}/api/mcp/x/hunts", handler.base)).await;
    // Seeding runs beside the server (readiness never waits on storage): look until it is there.
    let mut listed = Value::Null;
    for _ in 0..200 {
        listed = ok(&call(&client, "hunt_list", json!({})).await);
        if let Some(hunt) = listed["hunts"][0]["hunt_id"].as_str() {
            return (client, hunt.to_string());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("an example hunt is seeded within 5 s: {listed}");
}

#[tokio::test]
async fn the_timer_payload_runs_the_due_hunts_and_answers_in_the_host_format() {
    let handler = start_handler().await;
    let (client, hunt) = seeded_hunt(&handler).await;
    let client_http = reqwest::Client::new();
    // The host serializes TimerInfo as JSON text inside Data (the double-encoded string form).
    let timer = json!({
        "Schedule": {"AdjustForDST": true},
        "ScheduleStatus": {"Last": "2026-11-23T10:00:00+00:00", "Next": "2026-11-23T10:05:00+00:00", "LastUpdated": "2026-11-23T10:00:00+00:00"},
        "IsPastDue": true
    });
    let payload = json!({
        "Data": {"timer": timer.to_string()},
        "Metadata": {"sys": {"MethodName": "function-hunts", "UtcNow": "2026-11-23T10:05:00.0123Z", "RandGuid": "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a"}}
    });
    let response = client_http
        .post(format!("{}/function-hunts", handler.base))
        .header(
            "X-Azure-Functions-InvocationId",
            "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a",
        )
        .json(&payload)
        .send()
        .await
        .expect("invocation");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("application/json")
    );
    let body: Value = response.json().await.expect("json");
    assert!(
        body["Outputs"].is_object() && body["Logs"].is_array() && body.get("ReturnValue").is_some(),
        "{body}"
    );
    let log = body["Logs"][0].as_str().expect("log line");
    assert!(
        log.contains("function-hunts")
            && log.contains("1 runs started")
            && log.contains("past due: true"),
        "{log}"
    );
    assert_eq!(body["ReturnValue"]["runs_finished"], json!(1), "{body}");
    assert_eq!(body["ReturnValue"]["errors"], json!([]));

    let runs = ok(&call(&client, "hunt_list_runs", json!({"hunt_id": hunt})).await);
    let run = &runs["runs"][0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["tenants"].as_array().expect("tenants").len(),
        2,
        "every enabled sandbox tenant: {run}"
    );

    // The object form is accepted too; the occurrence is already accounted for, so nothing runs twice.
    let payload = json!({"Data": {"timer": timer}, "Metadata": {}});
    let response = client_http
        .post(format!("{}/function-hunts", handler.base))
        .json(&payload)
        .send()
        .await
        .expect("invocation");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["ReturnValue"]["runs_started"], json!([]), "{body}");
}

#[tokio::test]
async fn without_a_host_the_sandbox_runs_the_hunt_schedule_in_process() {
    let handler = start_handler_with(&[("HUNT_LOCAL_INTERVAL_SECONDS", "1")]).await;
    let (client, hunt) = seeded_hunt(&handler).await;
    for _ in 0..100 {
        let runs = ok(&call(&client, "hunt_list_runs", json!({"hunt_id": hunt})).await);
        if runs["runs"][0]["status"] == "succeeded" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the in-process schedule did not run the seeded hunt within 10 s");
}

#[tokio::test]
async fn bad_invocations_fail_with_a_reason_in_the_log() {
    let handler = start_handler().await;
    let client = reqwest::Client::new();
    let cases = [
        ("function-hunts", "not json".to_string(), 400, "Data"),
        (
            "function-hunts",
            json!({"Data": {}, "Metadata": {}}).to_string(),
            500,
            "no 'timer' binding",
        ),
        (
            "function-hunts",
            json!({"Data": {"timer": "[1,2]"}}).to_string(),
            500,
            "not a timer payload",
        ),
        (
            "function-nope",
            json!({"Data": {}}).to_string(),
            404,
            "no function named 'function-nope'",
        ),
        (
            "function-mcp",
            json!({"Data": {"req": {}}}).to_string(),
            501,
            "enableProxyingHttpRequest",
        ),
        (
            "function-jobs-poison",
            json!({"Data": {}}).to_string(),
            500,
            "no 'message' binding",
        ),
        (
            "function-jobs-poison",
            json!({"Data": {"message": "\"{\\\"job_id\\\": 7}\""}}).to_string(),
            500,
            "not a version 1 job message",
        ),
    ];
    for (function, body, status, expected) in cases {
        let response = client
            .post(format!("{}/{function}", handler.base))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("invocation");
        assert_eq!(response.status().as_u16(), status, "{function}");
        let body: Value = response.json().await.expect("always JSON");
        let logs = body["Logs"].to_string();
        assert!(
            logs.contains(expected),
            "{function}: {logs} should contain {expected}"
        );
    }
}

#[tokio::test]
async fn health_reports_storage_and_tenants() {
    let handler = start_handler().await;
    let response =
        host_forwarded(reqwest::Client::new().get(format!("{}/api/health", handler.base)))
            .send()
            .await
            .expect("health");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["checks"]["storage"]["status"], "ok");
    assert_eq!(body["tenants"]["configured"], 2);
}

#[tokio::test]
async fn a_bad_setting_stops_startup_with_its_name() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string())
        .env("AUTH_MODE", "password")
        .env("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")
        .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AUTH_MODE")
            && stderr.contains("managed_identity_federated, client_secret"),
        "{stderr}"
    );
}
