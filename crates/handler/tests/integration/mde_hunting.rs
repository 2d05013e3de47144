//! Advanced hunting through the MCP client against the sandbox's Graph `runHuntingQuery`.

use crate::common;

use common::*;
use sandbox::{Fault, FaultKind};
use serde_json::{Value, json};

fn results(output: &Value) -> &Vec<Value> {
    output["results"].as_array().expect("results")
}

#[tokio::test]
async fn a_query_runs_in_one_tenant_with_columns_and_rows() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let output = ok(&call_confirmed(
        &client,
        "mde_run_hunting_query",
        json!({"tenant_id": CONTOSO, "query": "DeviceProcessEvents | summarize Runs = count() by FileName | order by Runs desc | take 5", "timespan": "P7D"}),
    )
    .await);
    let result = &results(&output)[0];
    assert_eq!(result["tenant_id"], CONTOSO);
    assert_eq!(result["ok"], true, "{result}");
    let columns: Vec<&str> = result["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(columns, vec!["FileName", "Runs"]);
    let rows = result["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    assert!(rows[0]["Runs"].as_i64() >= rows[4]["Runs"].as_i64());
    assert_eq!(result["truncated"], false);
}

#[tokio::test]
async fn a_query_fans_out_to_several_tenants_and_cuts_rows_saying_so() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let output = ok(&call_confirmed(
        &client,
        "mde_run_hunting_query",
        json!({"tenant_ids": [CONTOSO, FABRIKAM], "query": "DeviceNetworkEvents | project Timestamp, DeviceName, RemoteIP", "max_rows": 3}),
    )
    .await);
    let per_tenant = results(&output);
    assert_eq!(per_tenant.len(), 2);
    assert_eq!(per_tenant[0]["tenant_id"], CONTOSO);
    assert_eq!(per_tenant[1]["tenant_id"], FABRIKAM);
    for result in per_tenant {
        assert_eq!(result["rows"].as_array().expect("rows").len(), 3);
        assert_eq!(result["truncated"], true);
        assert!(result["total_rows"].as_u64().is_some_and(|n| n > 3));
        assert!(
            result["truncation"]
                .as_str()
                .is_some_and(|t| t.contains("max_rows (3)")),
            "{result}"
        );
    }
    let names = |result: &Value| {
        result["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["DeviceName"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        names(&per_tenant[0])
            .iter()
            .all(|n| n.ends_with("contoso.local")),
        "each tenant answers with its own data"
    );
    assert!(
        names(&per_tenant[1])
            .iter()
            .all(|n| n.ends_with("fabrikam.local"))
    );
}

#[tokio::test]
async fn a_failure_in_one_tenant_leaves_the_others_answered() {
    let app = TestApp::start().await;
    let client = app.client().await;
    app.sandbox.inject_fault(Fault {
        retry_after_secs: Some(600),
        ..Fault::new(
            "/graph/v1.0/security/runHuntingQuery",
            FaultKind::Throttle,
            1,
        )
    });
    let output = ok(&call_confirmed(
        &client,
        "mde_run_hunting_query",
        json!({"tenant_ids": [CONTOSO, FABRIKAM], "query": "DeviceInfo | take 1"}),
    )
    .await);
    let failed: Vec<&Value> = results(&output)
        .iter()
        .filter(|r| r["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{output}");
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("throttled")),
        "{output}"
    );
    assert!(
        results(&output)
            .iter()
            .any(|r| r["ok"] == true && r["rows"].as_array().is_some_and(|rows| rows.len() == 1))
    );
}

#[tokio::test]
async fn control_commands_bad_queries_and_foreign_tenants_are_refused() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let cases = [
        (
            json!({"tenant_id": CONTOSO, "query": ".drop table DeviceEvents"}),
            "control (management) command",
        ),
        (
            json!({"tenant_id": CONTOSO, "query": "DeviceInfo | take 1; .ingest into table T (h'x')"}),
            ".ingest",
        ),
        (json!({"tenant_id": CONTOSO, "query": "  "}), "empty"),
        (
            json!({"tenant_id": CONTOSO, "query": "DeviceInfo", "timespan": "P90D"}),
            "30 days",
        ),
        (
            json!({"tenant_id": CONTOSO, "query": "DeviceInfo", "max_rows": 0}),
            "max_rows",
        ),
        (
            json!({"tenant_id": CONTOSO, "tenant_ids": [FABRIKAM], "query": "DeviceInfo"}),
            "not both",
        ),
        (
            json!({"tenant_ids": [CONTOSO, "33333333-3333-4333-8333-333333333333"], "query": "DeviceInfo"}),
            "allow-list",
        ),
    ];
    for (arguments, expected) in cases {
        let message =
            err(&call_confirmed(&client, "mde_run_hunting_query", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/graph/{version}/security/runHuntingQuery"),
        0,
        "nothing refused was sent"
    );
    // A query the service rejects comes back as that tenant's error.
    let output = ok(&call_confirmed(
        &client,
        "mde_run_hunting_query",
        json!({"tenant_id": CONTOSO, "query": "NoSuchTable | take 1"}),
    )
    .await);
    assert_eq!(results(&output)[0]["ok"], false);
    assert!(
        results(&output)[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("NoSuchTable")),
        "{output}"
    );
}
