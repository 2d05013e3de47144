//! Telemetry exported to a local HTTPS stand-in for Application Insights ingestion
//! (`/v2/track`), through the real opentelemetry-application-insights exporter: requests,
//! dependencies with status, tool spans, exceptions and metrics, correlated, with no query text
//! and no log lines.
//!
//! One test function: the tracing subscriber and the metrics are process-wide, so it needs a
//! process of its own (nextest gives every test one; `scripts/test` runs it alone otherwise).

use crate::common;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use handler::config::{OutboundConfig, settings};
use handler::telemetry::{Telemetry, TelemetrySettings};
use sandbox::{Fault, FaultKind};
use serde_json::{Value, json};

const INSTRUMENTATION_KEY: &str = "11111111-2222-4333-8444-555555555555";
/// Distinctive text in an OData filter, which must never reach telemetry.
const FILTER_TEXT: &str = "healthStatus eq 'Active'";

#[derive(Clone, Default)]
struct Ingestion {
    envelopes: Arc<Mutex<Vec<Value>>>,
    paths: Arc<Mutex<Vec<String>>>,
}

async fn track(
    State(ingestion): State<Ingestion>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    ingestion.paths.lock().unwrap().push(uri.path().to_string());
    let mut text = String::new();
    if headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        == Some("gzip")
    {
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .expect("gzip body");
    } else {
        text = String::from_utf8(body.to_vec()).expect("utf-8 body");
    }
    let items: Vec<Value> = serde_json::from_str(&text).expect("a JSON array of envelopes");
    let count = items.len();
    ingestion.envelopes.lock().unwrap().extend(items);
    axum::Json(json!({"itemsReceived": count, "itemsAccepted": count, "errors": []}))
}

fn of_type<'a>(envelopes: &'a [Value], base_type: &str) -> Vec<&'a Value> {
    envelopes
        .iter()
        .filter(|e| e["data"]["baseType"] == base_type)
        .collect()
}

fn base<'a>(envelope: &'a Value, field: &str) -> &'a Value {
    &envelope["data"]["baseData"][field]
}

fn metric_names(envelopes: &[Value]) -> Vec<String> {
    of_type(envelopes, "MetricData")
        .iter()
        .flat_map(|e| base(e, "metrics").as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["name"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dependencies_exceptions_and_metrics_reach_application_insights() {
    let ingestion = Ingestion::default();
    let router = Router::new()
        .route("/v2/track", post(track))
        .with_state(ingestion.clone());
    let server = common::https::serve(router, &[]).await;
    let ca_file =
        std::env::temp_dir().join(format!("telemetry-test-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &server.ca_pem).expect("write CA");

    let values = [
        (
            settings::APPLICATIONINSIGHTS_CONNECTION_STRING,
            format!(
                "InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint={}/",
                server.base_url
            ),
        ),
        (
            settings::OUTBOUND_TRUSTED_CA_FILE,
            ca_file.display().to_string(),
        ),
    ];
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    };
    let export = TelemetrySettings::from_lookup(&lookup)
        .expect("valid settings")
        .expect("a connection string turns export on");
    let outbound = OutboundConfig::from_lookup(&lookup).expect("outbound settings");
    let http = handler::outbound::http_client(&outbound).expect("outbound client");
    let telemetry = Telemetry::start(Some("info"), Some((export, http))).expect("telemetry starts");
    assert!(telemetry.is_exporting());
    assert!(handler::telemetry::metrics().is_some());

    let app = TestApp::start().await;
    let client = app.client().await;
    let listed = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 3, "filter": FILTER_TEXT}),
    )
    .await);
    assert_eq!(listed["machines"].as_array().expect("machines").len(), 3);
    let missing = err(&call(
        &client,
        "mde_get_machine",
        json!({"tenant_id": CONTOSO, "machine_id": "f".repeat(40)}),
    )
    .await);
    assert!(
        missing.contains("not found") || missing.contains("404"),
        "{missing}"
    );
    app.sandbox.inject_fault(Fault {
        path_prefix: "/defender/api/machines".into(),
        method: Some("GET".into()),
        kind: FaultKind::Throttle,
        retry_after_secs: Some(0),
        status: None,
        delay_ms: None,
        times: 1,
    });
    ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 1}),
    )
    .await);
    // A timer invocation, and one the handler must refuse (not the host's payload).
    let http = reqwest::Client::new();
    let tick = json!({"Data": {"timer": {"IsPastDue": false}}, "Metadata": {}});
    assert!(
        http.post(format!("{}/function-hunts", app.base_url))
            .json(&tick)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let refused = http
        .post(format!("{}/function-hunts", app.base_url))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    let flushed = tokio::task::spawn_blocking(move || {
        telemetry.flush();
        telemetry
    })
    .await
    .expect("flush");
    let envelopes = {
        let mut waited = Duration::ZERO;
        loop {
            let envelopes = ingestion.envelopes.lock().unwrap().clone();
            let complete = of_type(&envelopes, "RequestData").len() >= 4
                && metric_names(&envelopes).contains(&"microsoft_api.throttled".to_string());
            if complete || waited > Duration::from_secs(10) {
                break envelopes;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
    };
    let everything = serde_json::to_string(&envelopes).unwrap();
    assert!(
        ingestion
            .paths
            .lock()
            .unwrap()
            .iter()
            .all(|path| path == "/v2/track")
    );

    // Requests: one per MCP HTTP request and per invocation, with their status.
    let requests = of_type(&envelopes, "RequestData");
    let mcp = requests
        .iter()
        .find(|r| {
            base(r, "name")
                .as_str()
                .is_some_and(|name| name.starts_with("POST /api/mcp"))
                && base(r, "responseCode") == "200"
        })
        .expect("an MCP request");
    let invocation = requests
        .iter()
        .find(|r| base(r, "name") == "POST /function-hunts" && base(r, "responseCode") == "200");
    assert!(
        invocation.is_some(),
        "a timer invocation request in {everything}"
    );
    assert!(
        requests
            .iter()
            .any(|r| base(r, "name") == "POST /function-hunts" && base(r, "responseCode") == "400")
    );

    // Dependencies: each Microsoft API call with its status, correlated with its request, and
    // the tool call around them.
    let dependencies = of_type(&envelopes, "RemoteDependencyData");
    let machines = dependencies
        .iter()
        .find(|d| base(d, "name") == "GET /defender/api/machines" && base(d, "resultCode") == "200")
        .expect("the machine list call");
    assert_eq!(base(machines, "type"), "HTTP");
    assert!(
        base(machines, "target")
            .as_str()
            .unwrap_or_default()
            .starts_with("127.0.0.1"),
        "{machines}"
    );
    let not_found = dependencies
        .iter()
        .find(|d| base(d, "resultCode") == "404")
        .expect("the 404 call");
    assert_eq!(base(not_found, "success"), false);
    assert!(
        dependencies.iter().any(|d| base(d, "resultCode") == "429"),
        "the throttled attempt is its own dependency"
    );
    let tool = dependencies
        .iter()
        .find(|d| base(d, "name") == "tool mde_list_machines")
        .expect("the tool span");
    assert_eq!(base(tool, "type"), "InProc");
    let operation = |envelope: &Value| {
        envelope["tags"]["ai.operation.id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(!operation(machines).is_empty());
    assert!(
        requests.iter().any(|r| operation(r) == operation(machines))
            && operation(tool) == operation(machines),
        "the API call, the tool span and an MCP request share one operation: {machines} {tool} {mcp}"
    );

    // Exceptions: the refused invocation, correlated with its request.
    let exceptions = of_type(&envelopes, "ExceptionData");
    assert!(
        exceptions
            .iter()
            .any(|e| everything.contains("InvocationRejected") && !operation(e).is_empty()),
        "an exception for the refused invocation in {everything}"
    );

    // Metrics.
    let names = metric_names(&envelopes);
    for expected in [
        "mcp.tool.calls",
        "mcp.tool.errors",
        "mcp.tool.duration",
        "microsoft_api.throttled",
        "function.invocation.duration",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "metric {expected} missing from {names:?}"
        );
    }

    // Nothing that should stay local: no query text, no bearer tokens, no plain log lines.
    assert!(
        !everything.contains(FILTER_TEXT) && !everything.contains("healthStatus"),
        "query text leaked"
    );
    assert!(!everything.to_ascii_lowercase().contains("bearer"));
    assert!(
        of_type(&envelopes, "MessageData").is_empty(),
        "log lines are the host's to send"
    );

    tokio::task::spawn_blocking(move || flushed.shutdown())
        .await
        .expect("shutdown");
    let _ = std::fs::remove_file(ca_file);
}
