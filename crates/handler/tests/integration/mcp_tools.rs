//! The first tools, through a real MCP client (rmcp) against the handler and the sandbox tenant.

use crate::common;

use std::collections::HashSet;

use common::*;
use rmcp::model::CallToolRequestParams;
use sandbox::{Fault, FaultKind};
use serde_json::json;

#[tokio::test]
async fn tools_are_listed_with_annotations_and_output_schemas() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: HashSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "tenants_list",
        "mde_list_machines",
        "mde_get_machine",
        "sentinel_health_check",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    for tool in &tools {
        let annotations = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no annotations", tool.name));
        assert!(
            annotations.read_only_hint.is_some() && annotations.destructive_hint.is_some(),
            "{}",
            tool.name
        );
        assert!(
            annotations.idempotent_hint.is_some() && annotations.open_world_hint.is_some(),
            "{}",
            tool.name
        );
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() > 40),
            "{} needs a real description",
            tool.name
        );
    }
    let list = tools
        .iter()
        .find(|t| t.name == "mde_list_machines")
        .expect("listed");
    let properties = list.input_schema.get("properties").expect("properties");
    assert!(
        properties.get("tenant_id").is_some()
            && properties.get("filter").is_some()
            && properties.get("cursor").is_some()
    );
}

#[tokio::test]
async fn tenants_list_shows_the_configured_tenants() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let output = ok(&call(&client, "tenants_list", json!({})).await);
    let ids: Vec<&str> = output["tenants"]
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["tenant_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec![CONTOSO, FABRIKAM]);
}

#[tokio::test]
async fn machines_are_paged_with_a_cursor_and_nothing_is_lost() {
    let app = TestApp::start().await;
    let client = app.client().await;
    // 30 is not a multiple of the sandbox's page size (25): the cursor must resume mid-page.
    let first = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 30}),
    )
    .await);
    assert_eq!(first["machines"].as_array().expect("array").len(), 30);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more machines remain")
        .to_string();
    let second = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "cursor": cursor, "limit": 30}),
    )
    .await);
    let mut ids = HashSet::new();
    for machine in first["machines"]
        .as_array()
        .into_iter()
        .chain(second["machines"].as_array())
        .flatten()
    {
        assert!(
            ids.insert(machine["id"].as_str().expect("id").to_string()),
            "duplicate {machine}"
        );
    }
    assert_eq!(ids.len(), 50, "the sandbox tenant has 50 machines");
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn machines_can_be_filtered_with_odata() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let output = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "filter": "healthStatus eq 'Active'", "limit": 500}),
    )
    .await);
    let machines = output["machines"].as_array().expect("array");
    assert!(!machines.is_empty() && machines.len() < 50);
    assert!(machines.iter().all(|m| m["healthStatus"] == "Active"));
}

#[tokio::test]
async fn bad_inputs_get_specific_tool_errors() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let cases = [
        (
            json!({"tenant_id": CONTOSO, "filter": "healthStatus eq"}),
            "filter",
        ),
        (
            json!({"tenant_id": CONTOSO, "limit": 0}),
            "limit must be between 1 and 500",
        ),
        (
            json!({"tenant_id": CONTOSO, "limt": 5}),
            "unknown field `limt`",
        ),
        (
            json!({"tenant_id": "contoso.onmicrosoft.com"}),
            "expected a GUID",
        ),
        (
            json!({"tenant_id": "33333333-3333-4333-8333-333333333333"}),
            "not on this server's tenant allow-list",
        ),
        (json!({}), "tenant_id is required"),
        (
            json!({"tenant_id": CONTOSO, "cursor": "garbage"}),
            "cursor is not one this server returned",
        ),
        (
            json!({"tenant_id": CONTOSO, "cursor": "x", "filter": "a eq 'b'"}),
            "either filter or cursor",
        ),
    ];
    for (arguments, expected) in cases {
        let message = err(&call(&client, "mde_list_machines", arguments.clone()).await);
        assert!(
            message.contains(expected),
            "{arguments}: '{message}' should contain '{expected}'"
        );
    }
    let message = err(&call(
        &client,
        "mde_get_machine",
        json!({"tenant_id": CONTOSO, "machine_id": "ws-fin-014"}),
    )
    .await);
    assert!(message.contains("40 hexadecimal"), "{message}");
    let message = err(&call(
        &client,
        "mde_get_machine",
        json!({"tenant_id": CONTOSO, "machine_id": "0".repeat(40)}),
    )
    .await);
    assert!(message.contains("no device with machine id"), "{message}");
    // The server keeps serving after every refusal.
    ok(&call(&client, "tenants_list", json!({})).await);
}

#[tokio::test]
async fn a_cursor_from_one_tenant_is_refused_for_another() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let first = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 5}),
    )
    .await);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let message = err(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": FABRIKAM, "cursor": cursor}),
    )
    .await);
    assert!(message.contains("made for tenant"), "{message}");
}

#[tokio::test]
async fn a_tenant_off_the_allow_list_never_gets_a_token_request() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let unknown = "33333333-3333-4333-8333-333333333333";
    err(&call(&client, "mde_list_machines", json!({"tenant_id": unknown})).await);
    let stats = app.sandbox.stats();
    assert!(
        stats.tokens_issued.iter().all(|t| t.tenant_id != unknown),
        "{:?}",
        stats.tokens_issued
    );
    assert_eq!(
        stats.requests.iter().map(|r| r.count).sum::<u64>(),
        0,
        "no call may leave the server: {:?}",
        stats.requests
    );
}

#[tokio::test]
async fn get_machine_returns_the_device() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let listed = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 1}),
    )
    .await);
    let id = listed["machines"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let output = ok(&call(
        &client,
        "mde_get_machine",
        json!({"tenant_id": CONTOSO, "machine_id": id.to_uppercase()}),
    )
    .await);
    assert_eq!(output["machine"]["id"], json!(id));
    assert!(output["machine"]["computerDnsName"].is_string());
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_for_reads() {
    let app = TestApp::start().await;
    let client = app.client().await;
    app.sandbox.inject_fault(Fault {
        path_prefix: "/defender/api/machines".into(),
        method: Some("GET".into()),
        kind: FaultKind::Throttle,
        retry_after_secs: Some(1),
        status: None,
        delay_ms: None,
        times: 1,
    });
    app.sandbox.inject_fault(Fault {
        path_prefix: "/defender/api/machines".into(),
        method: Some("GET".into()),
        kind: FaultKind::ServerError,
        retry_after_secs: None,
        status: Some(500),
        delay_ms: None,
        times: 1,
    });
    let output = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 5}),
    )
    .await);
    assert_eq!(output["machines"].as_array().expect("array").len(), 5);
    let stats = app.sandbox.stats();
    assert_eq!(stats.throttled, 1);
    assert_eq!(
        stats.count("GET", "/defender/api/machines"),
        3,
        "{:?}",
        stats.requests
    );
}

#[tokio::test]
async fn a_long_throttle_is_reported_not_waited_out() {
    let app = TestApp::start().await;
    let client = app.client().await;
    app.sandbox.inject_fault(Fault {
        path_prefix: "/defender/api/machines".into(),
        method: None,
        kind: FaultKind::Throttle,
        retry_after_secs: Some(600),
        status: None,
        delay_ms: None,
        times: 1,
    });
    let message = err(&call(&client, "mde_list_machines", json!({"tenant_id": CONTOSO})).await);
    assert!(
        message.contains("throttled") && message.contains("600"),
        "{message}"
    );
}

#[tokio::test]
async fn tokens_are_fetched_once_per_tenant_and_api() {
    let app = TestApp::start().await;
    let client = app.client().await;
    for _ in 0..3 {
        ok(&call(
            &client,
            "mde_list_machines",
            json!({"tenant_id": CONTOSO, "limit": 1}),
        )
        .await);
        ok(&call(
            &client,
            "mde_list_machines",
            json!({"tenant_id": FABRIKAM, "limit": 1}),
        )
        .await);
    }
    let stats = app.sandbox.stats();
    for tenant in [CONTOSO, FABRIKAM] {
        let issued: u64 = stats
            .tokens_issued
            .iter()
            .filter(|t| t.tenant_id == tenant)
            .map(|t| t.count)
            .sum();
        assert_eq!(issued, 1, "{tenant}: {:?}", stats.tokens_issued);
    }
}

#[tokio::test]
async fn sentinel_health_check_reports_each_workspace() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let output = ok(&call(
        &client,
        "sentinel_health_check",
        json!({"tenant_id": CONTOSO}),
    )
    .await);
    let workspaces = output["workspaces"].as_array().expect("array");
    assert_eq!(workspaces.len(), 2);
    for workspace in workspaces {
        assert_eq!(workspace["reachable"], json!(true), "{workspace}");
        assert!(
            workspace["problems"].as_array().expect("array").is_empty(),
            "{workspace}"
        );
        assert!(workspace["last_ingestion"].is_string(), "{workspace}");
        let rules = &workspace["analytics_rules"];
        assert!(
            rules["total"].as_u64().expect("total") > 0
                && rules["enabled"].as_u64() <= rules["total"].as_u64()
        );
        assert!(workspace["open_incidents"]["total"].is_u64());
    }
    // The sandbox keeps one table of one Contoso workspace silent for three days.
    let stale: Vec<&serde_json::Value> = workspaces
        .iter()
        .flat_map(|w| w["stale_tables"].as_array().expect("array"))
        .collect();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(stale[0]["hours_since"].as_i64().expect("hours") >= 48);
    assert_eq!(output["healthy"], json!(false));
}

#[tokio::test]
async fn sentinel_health_check_reports_a_failing_check_without_failing_the_call() {
    let app = TestApp::start().await;
    let client = app.client().await;
    app.sandbox.inject_fault(Fault {
        path_prefix: "/loganalytics/".into(),
        method: None,
        kind: FaultKind::ServerError,
        retry_after_secs: None,
        status: Some(500),
        delay_ms: None,
        times: 100,
    });
    let output = ok(&call(
        &client,
        "sentinel_health_check",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    let workspace = &output["workspaces"][0];
    assert_eq!(workspace["reachable"], json!(true));
    let problems = workspace["problems"].as_array().expect("array");
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().is_some_and(|p| p.starts_with("data freshness"))),
        "{problems:?}"
    );
    assert!(workspace["analytics_rules"]["total"].as_u64().is_some());
    let message = err(&call(
        &client,
        "sentinel_health_check",
        json!({"tenant_id": FABRIKAM, "workspace": "nope"}),
    )
    .await);
    assert!(
        message.contains("is not configured for tenant"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_tools_are_protocol_errors_and_the_server_keeps_serving() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let error = client
        .call_tool(CallToolRequestParams::new("mde_isolate_everything"))
        .await
        .expect_err("unknown tool");
    assert!(error.to_string().contains("unknown tool"), "{error}");
    ok(&call(&client, "tenants_list", json!({})).await);
}

#[tokio::test]
async fn read_only_mode_hides_and_refuses_every_writing_tool() {
    let app = TestApp::start_with(
        fast_sandbox_options(),
        &[
            ("MCP_READ_ONLY", "true"),
            ("MCP_TOOLSETS", "tenants,defender"),
        ],
    )
    .await;
    let client = app.client().await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(
        tools
            .iter()
            .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
    );
    assert!(
        tools.iter().all(|t| !t.name.starts_with("sentinel_")),
        "the sentinel toolset is off"
    );
    let error = client
        .call_tool(CallToolRequestParams::new("sentinel_health_check"))
        .await
        .expect_err("switched-off toolset");
    assert!(error.to_string().contains("MCP_TOOLSETS"), "{error}");
}

#[tokio::test]
async fn prompts_are_listed_and_rendered() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert!(prompts.iter().any(|p| p.name == "sentinel-quick-status"));
    let mut arguments = serde_json::Map::new();
    arguments.insert("tenant_id".into(), json!(CONTOSO));
    let prompt = client
        .get_prompt(
            rmcp::model::GetPromptRequestParams::new("sentinel-quick-status")
                .with_arguments(arguments),
        )
        .await
        .expect("prompts/get");
    let text = serde_json::to_string(&prompt).expect("json");
    assert!(
        text.contains("sentinel_health_check") && text.contains(CONTOSO),
        "{text}"
    );
    let error = client
        .get_prompt(rmcp::model::GetPromptRequestParams::new(
            "sentinel-quick-status",
        ))
        .await
        .expect_err("missing argument");
    assert!(error.to_string().contains("tenant_id"), "{error}");
}
