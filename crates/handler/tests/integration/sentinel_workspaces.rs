//! Sentinel workspaces, health and KQL through the MCP client: sentinel_list_workspaces
//! (with Lighthouse discovery), sentinel_health_check (scope and depth), sentinel_run_query,
//! and the Sentinel prompts.

use crate::common;
use crate::sentinel_common;

use common::*;
use rmcp::model::GetPromptRequestParams;
use serde_json::{Value, json};

#[tokio::test]
async fn workspaces_are_listed_from_configuration_and_discovered_through_lighthouse() {
    // Contoso configured with only its first workspace: discovery must find the second one.
    let probe = TestApp::start().await;
    let contoso = probe.sandbox.tenants()[0].clone();
    let first = contoso.workspaces[0].clone();
    let tenants = json!([{
        "tenant_id": CONTOSO, "display_name": "Contoso",
        "workspaces": [{"subscription_id": first.subscription_id, "resource_group": first.resource_group, "workspace_name": first.name, "workspace_id": first.customer_id}],
    }]);
    let unconfigured = contoso.workspaces[1].name.clone();
    drop(probe);
    let app =
        TestApp::start_with(fast_sandbox_options(), &[("TENANTS", &tenants.to_string())]).await;
    let client = app.client().await;

    let plain = ok(&call(&client, "sentinel_list_workspaces", json!({})).await);
    assert_eq!(plain["configured"].as_array().expect("configured").len(), 1);
    assert!(
        plain["discovered"].is_null(),
        "no ARM discovery unless asked"
    );

    let output = ok(&call(
        &client,
        "sentinel_list_workspaces",
        json!({"tenant_id": CONTOSO, "discover": true}),
    )
    .await);
    let subscriptions = output["discovered"].as_array().expect("discovered");
    assert_eq!(subscriptions.len(), 2, "{output}");
    for subscription in subscriptions {
        assert!(subscription["problem"].is_null(), "{subscription}");
        let delegation = &subscription["delegations"][0];
        assert_eq!(
            delegation["managed_by_tenant_name"],
            "Northwind Security (MSSP)"
        );
    }
    let workspaces: Vec<&Value> = subscriptions
        .iter()
        .flat_map(|s| s["workspaces"].as_array().expect("workspaces"))
        .collect();
    let configured: Vec<(&str, bool)> = workspaces
        .iter()
        .map(|w| {
            (
                w["workspace"].as_str().expect("name"),
                w["configured"].as_bool().expect("flag"),
            )
        })
        .collect();
    assert!(
        configured.contains(&(first.name.as_str(), true)),
        "{configured:?}"
    );
    assert!(
        configured.contains(&(unconfigured.as_str(), false)),
        "{configured:?}"
    );

    // Tools only act on configured workspaces.
    let message = err(&call(
        &client,
        "sentinel_run_query",
        json!({"workspace": unconfigured, "query": "Heartbeat | take 1"}),
    )
    .await);
    assert!(
        message.contains("is not configured for tenant"),
        "{message}"
    );
    let message = err(&call(
        &client,
        "sentinel_list_workspaces",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    assert!(message.contains("allow-list"), "{message}");
}

#[tokio::test]
async fn detailed_health_check_of_every_tenant() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let output = ok(&call(
        &client,
        "sentinel_health_check",
        json!({"scope": "all", "depth": "detailed"}),
    )
    .await);
    assert_eq!(output["tenants_checked"], json!([CONTOSO, FABRIKAM]));
    let workspaces = output["workspaces"].as_array().expect("workspaces");
    assert_eq!(workspaces.len(), 3);
    for w in workspaces {
        assert_eq!(w["reachable"], json!(true), "{w}");
        assert!(
            w["problems"].as_array().expect("problems").is_empty(),
            "{w}"
        );
        // Every workspace has one scheduled rule whose recent runs failed (SentinelHealth).
        let failing = w["analytics_rules"]["failing"]
            .as_array()
            .expect("failing rules are checked in detail");
        assert_eq!(failing.len(), 1, "{w}");
        assert_eq!(failing[0]["display_name"], "Firewall denies to known C2");
        assert!(failing[0]["failures_last_day"].as_i64().expect("count") >= 1);
        assert!(
            failing[0]["reason"]
                .as_str()
                .expect("reason")
                .contains("timed out")
        );
        let key_tables = w["key_tables"].as_array().expect("key tables");
        let signin = key_tables
            .iter()
            .find(|t| t["table"] == "SigninLogs")
            .expect("SigninLogs");
        assert!(signin["last_ingestion"].is_string());
        let syslog = key_tables
            .iter()
            .find(|t| t["table"] == "Syslog")
            .expect("Syslog");
        assert!(
            syslog["last_ingestion"].is_null(),
            "no Syslog connector in the sandbox"
        );
        let incidents = &w["open_incidents"];
        assert!(incidents["oldest_open_hours"].as_i64().expect("oldest") > 0);
        assert!(
            incidents["unassigned"].as_u64().expect("unassigned") > 0,
            "New incidents have no owner"
        );
    }
    // The stale firewall table of Contoso's first workspace is an ingestion drop, too.
    let stale = &workspaces[0];
    let anomalies = stale["ingestion_anomalies"].as_array().expect("anomalies");
    assert_eq!(strings(anomalies, "table"), vec!["CommonSecurityLog"]);
    assert_eq!(anomalies[0]["kind"], "drop");
    assert_eq!(anomalies[0]["rows_last_day"], 0);
    assert!(
        workspaces[1]["ingestion_anomalies"]
            .as_array()
            .expect("anomalies")
            .is_empty()
    );
    assert_eq!(output["healthy"], json!(false));

    // Quick stays quick: no detailed sections.
    let quick = ok(&call(
        &client,
        "sentinel_health_check",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    assert!(
        quick["workspaces"][0]["key_tables"].is_null()
            && quick["workspaces"][0]["analytics_rules"]["failing"].is_null()
    );

    let message = err(&call(
        &client,
        "sentinel_health_check",
        json!({"scope": "all", "tenant_id": CONTOSO}),
    )
    .await);
    assert!(message.contains("scope \"all\""), "{message}");
    let message = err(&call(
        &client,
        "sentinel_health_check",
        json!({"tenant_id": CONTOSO, "depth": "deep"}),
    )
    .await);
    assert!(message.contains("unknown variant `deep`"), "{message}");
}

fn strings(values: &[Value], key: &str) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| v[key].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn kql_queries_run_capped_and_guarded() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let workspace = sentinel_common::workspace(&app, 0, 0).name;
    let output = ok(&call(
        &client,
        "sentinel_run_query",
        json!({"tenant_id": CONTOSO, "workspace": workspace, "query": "SigninLogs | summarize Attempts = count() by UserPrincipalName | order by Attempts desc", "timespan": "P7D", "max_rows": 3}),
    )
    .await);
    assert_eq!(
        output["columns"],
        json!([{"name": "UserPrincipalName", "type": "string"}, {"name": "Attempts", "type": "long"}])
    );
    let rows = output["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    assert!(rows[0]["Attempts"].as_i64() >= rows[1]["Attempts"].as_i64());
    assert_eq!(output["truncated"], json!(true));
    let small = ok(&call(
        &client,
        "sentinel_run_query",
        json!({"tenant_id": FABRIKAM, "query": "SecurityAlert | summarize count()"}),
    )
    .await);
    assert_eq!(small["truncated"], json!(false));
    assert_eq!(small["timespan"], "P1D");

    for (arguments, expected) in [
        (
            json!({"tenant_id": FABRIKAM, "query": ".drop table SecurityEvent"}),
            "control (management) command",
        ),
        (
            json!({"tenant_id": FABRIKAM, "query": "SecurityEvent | joinx"}),
            "Log Analytics query API answered 400",
        ),
        (
            json!({"tenant_id": FABRIKAM, "query": "Heartbeat", "timespan": "yesterday"}),
            "timespan 'yesterday' is not understood",
        ),
        (
            json!({"tenant_id": FABRIKAM, "query": "Heartbeat", "max_rows": 5000}),
            "max_rows must be between 1 and 1000",
        ),
        (
            json!({"tenant_id": CONTOSO, "query": "Heartbeat"}),
            "several workspaces",
        ),
    ] {
        let message = err(&call(&client, "sentinel_run_query", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
}

#[tokio::test]
async fn sentinel_prompts_walk_through_the_right_tools() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let names: Vec<String> = client
        .list_all_prompts()
        .await
        .expect("prompts/list")
        .into_iter()
        .map(|p| p.name.to_string())
        .collect();
    for expected in [
        "sentinel-health-report",
        "sentinel-quick-status",
        "incident-triage",
        "device-investigation",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    let render = |name: &str, arguments: Value| {
        let request = GetPromptRequestParams::new(name.to_string())
            .with_arguments(arguments.as_object().cloned().unwrap_or_default());
        let client = &client;
        async move {
            serde_json::to_string(&client.get_prompt(request).await.expect("prompts/get"))
                .expect("json")
        }
    };
    let report = render("sentinel-health-report", json!({})).await;
    assert!(
        report.contains("scope \\\"all\\\"") && report.contains("detailed"),
        "{report}"
    );
    let triage = render(
        "incident-triage",
        json!({"tenant_id": CONTOSO, "incident": "42"}),
    )
    .await;
    for tool in [
        "sentinel_get_incident",
        "sentinel_list_incident_comments",
        "sentinel_run_query",
        "sentinel_add_incident_comment",
        "sentinel_update_incident",
    ] {
        assert!(triage.contains(tool), "triage should use {tool}");
        assert!(
            tools.iter().any(|t| t == tool),
            "the triage prompt names {tool}, which this server does not offer"
        );
    }
    let device = render(
        "device-investigation",
        json!({"tenant_id": CONTOSO, "device": "ws-fin-014", "incident": "42"}),
    )
    .await;
    for tool in [
        "mde_get_machine",
        "mde_get_logged_on_users",
        "mde_run_hunting_query",
        "mde_isolate_machines",
        "mde_get_machine_action",
        "sentinel_add_incident_comment",
    ] {
        assert!(
            device.contains(tool),
            "device investigation should use {tool}"
        );
    }
    let missing = client
        .get_prompt(GetPromptRequestParams::new("incident-triage"))
        .await
        .expect_err("arguments are required");
    assert!(missing.to_string().contains("incident"), "{missing}");
}
