//! What a model reads: every main list tool, called with default arguments against the
//! sandbox's seeded tenant, answers within a budget a context window can afford, and its
//! structured content is what its output schema says.
//!
//! A whole answer is measured (`serde_json::to_vec` of the `CallToolResult`): the summary line,
//! the JSON text block and the structured content, since a client pays for all three.

use crate::common;

use std::collections::HashMap;

use common::*;
use serde_json::{Value, json};

/// A tool, its default arguments (only what the tool cannot do without), and the most bytes
/// its default answer may take: 12 KB for a list, whose default page is sized for it; 20 KB for
/// a query tool, whose rows are whatever the query selects (here every column of the widest
/// tables: a model that projects or summarizes gets far less).
struct Budget {
    tool: &'static str,
    arguments: Value,
    bytes: usize,
}

fn budgets() -> Vec<Budget> {
    let contoso = || json!({"tenant_id": CONTOSO});
    let workspace = || json!({"tenant_id": CONTOSO, "workspace": "law-contoso-sentinel"});
    let budget = |tool, arguments, kilobytes: usize| Budget {
        tool,
        arguments,
        bytes: kilobytes * 1000,
    };
    vec![
        budget("mde_list_machines", contoso(), 12),
        budget("mde_list_alerts", contoso(), 12),
        budget("mde_list_incidents", contoso(), 12),
        budget("mde_list_indicators", contoso(), 12),
        budget("mde_list_machine_actions", contoso(), 12),
        budget("mde_list_detection_rules", contoso(), 12),
        budget("mde_list_library_files", contoso(), 12),
        budget(
            "mde_run_hunting_query",
            json!({"tenant_id": CONTOSO, "query": "DeviceProcessEvents"}),
            20,
        ),
        budget("sentinel_list_workspaces", contoso(), 12),
        budget("sentinel_list_incidents", workspace(), 12),
        budget("sentinel_list_analytics_rules", workspace(), 12),
        budget("sentinel_list_rule_templates", workspace(), 12),
        budget("sentinel_list_tables", workspace(), 12),
        budget("sentinel_list_watchlists", workspace(), 12),
        budget("sentinel_list_workbooks", workspace(), 12),
        budget("sentinel_list_dcrs", workspace(), 12),
        budget(
            "sentinel_run_query",
            json!({"tenant_id": CONTOSO, "workspace": "law-contoso-sentinel", "query": "SecurityEvent"}),
            20,
        ),
        budget("job_list", json!({}), 12),
        // Its rows carry caller ids and names as stored by the other tests (long, unique ones),
        // so its size follows them; 15 such rows fit 16 KB.
        budget("audit_search", json!({}), 16),
    ]
}

/// What the catalogue says each tool's structured content looks like.
async fn output_validators(client: &McpClient) -> HashMap<String, jsonschema::Validator> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .filter_map(|tool| {
            let schema = Value::Object(tool.output_schema?.as_ref().clone());
            let validator = jsonschema::validator_for(&schema)
                .unwrap_or_else(|error| panic!("{}: output schema is invalid: {error}", tool.name));
            Some((tool.name.to_string(), validator))
        })
        .collect()
}

#[tokio::test]
async fn default_answers_of_list_tools_fit_their_budget() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let validators = output_validators(&client).await;
    let mut sizes = Vec::new();
    let mut over = Vec::new();
    for Budget {
        tool,
        arguments,
        bytes,
    } in budgets()
    {
        let result = call(&client, tool, arguments).await;
        let structured = ok(&result);
        let errors: Vec<String> = validators[tool]
            .iter_errors(&structured)
            .map(|error| format!("{error} at {}", error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{tool}: the answer does not match the output schema: {errors:?}"
        );
        let size = serde_json::to_vec(&result)
            .expect("answer serializes")
            .len();
        let summary = text(&result).lines().next().unwrap_or_default().to_string();
        sizes.push(format!("{tool}: {size} bytes (budget {bytes}): {summary}"));
        if size > bytes {
            over.push(format!(
                "{tool} answered {size} bytes with default arguments, over its budget of {bytes}"
            ));
        }
    }
    eprintln!("{}", sizes.join("\n"));
    assert!(over.is_empty(), "{}", over.join("\n"));
}

#[tokio::test]
async fn list_rows_are_compact_and_fields_asks_for_more() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let list = |arguments: Value| {
        let client = &client;
        async move { call(client, "mde_list_machines", arguments).await }
    };
    let compact = ok(&list(json!({"tenant_id": CONTOSO, "limit": 1})).await);
    let row = compact["machines"][0].as_object().expect("row").clone();
    assert!(
        row.contains_key("healthStatus") && !row.contains_key("osBuild"),
        "{compact}"
    );

    let named = ok(&list(
        json!({"tenant_id": CONTOSO, "limit": 1, "fields": ["osBuild", "rbacGroupName"]}),
    )
    .await);
    let row = named["machines"][0].as_object().expect("row");
    assert!(
        row.contains_key("osBuild")
            && row.contains_key("rbacGroupName")
            && !row.contains_key("aadDeviceId"),
        "{named}"
    );

    let all = ok(&list(json!({"tenant_id": CONTOSO, "limit": 1, "fields": ["all"]})).await);
    let id = all["machines"][0]["id"].as_str().expect("id");
    let whole = ok(&call(
        &client,
        "mde_get_machine",
        json!({"tenant_id": CONTOSO, "machine_id": id}),
    )
    .await);
    assert_eq!(
        all["machines"][0], whole["machine"],
        "fields [all] is the whole device"
    );

    let message = err(&list(json!({"tenant_id": CONTOSO, "fields": ["colour"]})).await);
    assert!(
        message.contains("[\"colour\"] are not fields of this list")
            && message.contains("osBuild")
            && message.contains("or all"),
        "{message}"
    );
    let message = err(&list(json!({"tenant_id": CONTOSO, "limit": 0})).await);
    assert!(
        message.contains("limit must be between 1 and 500 (default 15), got 0"),
        "{message}"
    );
}

#[tokio::test]
async fn every_time_argument_takes_the_same_forms() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let alerts = |since: &str| {
        let client = &client;
        let arguments = json!({"tenant_id": CONTOSO, "since": since, "limit": 500});
        async move {
            ok(&call(client, "mde_list_alerts", arguments).await)["alerts"]
                .as_array()
                .expect("alerts")
                .len()
        }
    };
    let last_week = alerts("7d").await;
    assert!(last_week > 0, "the sandbox has alerts in the last week");
    assert_eq!(alerts("P7D").await, last_week);
    assert_eq!(alerts("168h").await, last_week);
    assert!(alerts("1s").await < last_week);

    for (tool, arguments) in [
        (
            "mde_list_alerts",
            json!({"tenant_id": CONTOSO, "since": "last week"}),
        ),
        (
            "mde_list_incidents",
            json!({"tenant_id": CONTOSO, "since": "last week"}),
        ),
        (
            "mde_list_machine_actions",
            json!({"tenant_id": CONTOSO, "since": "last week"}),
        ),
        (
            "sentinel_list_incidents",
            json!({"tenant_id": FABRIKAM, "since": "last week"}),
        ),
        ("job_list", json!({"since": "last week"})),
        ("audit_search", json!({"since": "last week"})),
    ] {
        let message = err(&call(&client, tool, arguments).await);
        assert!(
            message.contains("since 'last week' is not understood")
                && message.contains("2026-05-01T08:00:00Z")
                && message.contains("24h")
                && message.contains("P7D"),
            "{tool}: {message}"
        );
    }
    for (tool, arguments) in [
        (
            "mde_run_hunting_query",
            json!({"tenant_id": CONTOSO, "query": "DeviceInfo", "timespan": "yesterday"}),
        ),
        (
            "sentinel_run_query",
            json!({"tenant_id": FABRIKAM, "query": "Heartbeat", "timespan": "yesterday"}),
        ),
    ] {
        let message = err(&call(&client, tool, arguments).await);
        assert!(
            message.contains("timespan 'yesterday' is not understood") && message.contains("PT24H"),
            "{tool}: {message}"
        );
    }
    let day = ok(&call(
        &client,
        "sentinel_run_query",
        json!({"tenant_id": FABRIKAM, "query": "Heartbeat", "timespan": "24h"}),
    )
    .await);
    assert_eq!(day["timespan"], "P1D");
    let hunted = ok(&call(
        &client,
        "mde_run_hunting_query",
        json!({"tenant_id": CONTOSO, "query": "DeviceInfo | take 1", "timespan": "7d"}),
    )
    .await);
    assert_eq!(hunted["results"][0]["ok"], true, "{hunted}");
}
