//! Log Analytics tables through the MCP client: list, get, create, update and delete, with
//! their long-running operations (completion, failure, and the wait bound).

use crate::common;

use std::time::Duration;

use common::*;
use sandbox::{ActionTimings, SandboxOptions};
use serde_json::{Value, json};

#[tokio::test]
async fn tables_are_listed_and_read() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let output = ok(&call(
        &client,
        "sentinel_list_tables",
        json!({"tenant_id": FABRIKAM, "fields": ["retention_is_default"]}),
    )
    .await);
    assert_eq!(output["total_matching"], 7);
    let signin = output["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == "SigninLogs")
        .expect("SigninLogs")
        .clone();
    assert_eq!(signin["plan"], "Analytics");
    assert_eq!(signin["table_type"], "Microsoft");
    assert_eq!(signin["retention_is_default"], true);
    let filtered = ok(&call(
        &client,
        "sentinel_list_tables",
        json!({"tenant_id": FABRIKAM, "name_contains": "security", "limit": 1}),
    )
    .await);
    assert_eq!(
        filtered["total_matching"], 3,
        "CommonSecurityLog, SecurityAlert and SecurityEvent"
    );
    assert_eq!(filtered["tables"].as_array().expect("tables").len(), 1);

    let table = ok(&call(
        &client,
        "sentinel_get_table",
        json!({"tenant_id": FABRIKAM, "table": "SigninLogs"}),
    )
    .await);
    assert_eq!(
        table["table"]["total_retention_in_days"],
        table["table"]["retention_in_days"]
    );
    assert!(
        table["standard_columns"]
            .as_array()
            .expect("columns")
            .iter()
            .any(|c| c == &json!({"name": "TimeGenerated", "type": "dateTime"}))
    );

    let message = err(&call(
        &client,
        "sentinel_get_table",
        json!({"tenant_id": FABRIKAM, "table": "Nope_CL"}),
    )
    .await);
    assert!(message.contains("no table 'Nope_CL'"), "{message}");
    let message = err(&call(
        &client,
        "sentinel_get_table",
        json!({"tenant_id": FABRIKAM, "table": "../alertRules"}),
    )
    .await);
    assert!(message.contains("is not a resource name"), "{message}");
}

#[tokio::test]
async fn custom_tables_are_created_changed_and_deleted() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let base = json!({"tenant_id": FABRIKAM, "table": "AppAudit_CL"});
    let with = |extra: serde_json::Value| {
        let mut arguments = base.clone();
        arguments
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        arguments
    };
    let created = ok(&call(
        &client,
        "sentinel_create_table",
        with(json!({"columns": [{"name": "UserName", "type": "string"}, {"name": "Details", "type": "dynamic"}], "retention_in_days": 60, "description": "LOB app audit"})),
    )
    .await);
    assert_eq!(created["operation"]["status"], "Succeeded");
    assert_eq!(created["after"]["table_type"], "CustomLog");
    assert_eq!(created["after"]["retention_in_days"], 60);
    let table = ok(&call(&client, "sentinel_get_table", base.clone()).await);
    let columns: Vec<&str> = table["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        columns,
        vec!["TimeGenerated", "UserName", "Details"],
        "TimeGenerated is added first"
    );
    assert_eq!(table["description"], "LOB app audit");

    let message = err(&call(
        &client,
        "sentinel_create_table",
        with(json!({"columns": [{"name": "X", "type": "string"}]})),
    )
    .await);
    assert!(message.contains("already exists"), "{message}");

    let updated = ok(&call(
        &client,
        "sentinel_update_table",
        with(json!({"plan": "Basic", "total_retention_in_days": 365})),
    )
    .await);
    assert_eq!(updated["before"]["plan"], "Analytics");
    assert_eq!(updated["after"]["plan"], "Basic");
    assert_eq!(updated["after"]["total_retention_in_days"], 365);
    assert_eq!(updated["after"]["archive_retention_in_days"], 305);
    // Azure allows one plan switch a week; its refusal comes through.
    let message = err(&call(
        &client,
        "sentinel_update_table",
        with(json!({"plan": "Analytics"})),
    )
    .await);
    assert!(message.contains("once a week"), "{message}");

    let deleted = ok(&call_confirmed(&client, "sentinel_delete_table", base.clone()).await);
    assert_eq!(deleted["operation"]["status"], "Succeeded");
    assert_eq!(deleted["before"]["name"], "AppAudit_CL");
    let message = err(&call(&client, "sentinel_get_table", base.clone()).await);
    assert!(message.contains("no table"), "{message}");

    for (tool, arguments, expected) in [
        (
            "sentinel_create_table",
            json!({"tenant_id": FABRIKAM, "table": "AppAudit", "columns": [{"name": "A", "type": "string"}]}),
            "end with _CL",
        ),
        (
            "sentinel_create_table",
            json!({"tenant_id": FABRIKAM, "table": "T_CL", "columns": [{"name": "A", "type": "varchar"}]}),
            "accepted: string, int",
        ),
        (
            "sentinel_create_table",
            json!({"tenant_id": FABRIKAM, "table": "T_CL", "columns": [{"name": "TimeGenerated", "type": "string"}]}),
            "must be of type dateTime",
        ),
        (
            "sentinel_create_table",
            json!({"tenant_id": FABRIKAM, "table": "T_CL", "columns": [{"name": "A", "type": "string"}], "retention_in_days": 1000}),
            "4-730",
        ),
        (
            "sentinel_update_table",
            json!({"tenant_id": FABRIKAM, "table": "SigninLogs"}),
            "nothing to change",
        ),
        (
            "sentinel_update_table",
            json!({"tenant_id": FABRIKAM, "table": "SigninLogs", "plan": "Cheap"}),
            "unknown variant `Cheap`",
        ),
        (
            "sentinel_delete_table",
            json!({"tenant_id": FABRIKAM, "table": "SigninLogs"}),
            "only custom tables",
        ),
        (
            "sentinel_delete_table",
            json!({"tenant_id": FABRIKAM, "table": "Gone_CL"}),
            "no table 'Gone_CL'",
        ),
    ] {
        let message = err(&call_confirmed(&client, tool, arguments.clone()).await);
        assert!(message.contains(expected), "{tool} {arguments}: {message}");
    }
}

/// A sandbox whose Azure operations take `seconds` to end.
fn slow_operations(seconds: u64) -> SandboxOptions {
    SandboxOptions {
        action_timings: ActionTimings {
            pending: Duration::from_secs(seconds),
            in_progress: Duration::from_millis(300),
        },
        ..SandboxOptions::default()
    }
}

#[tokio::test]
async fn a_failed_operation_is_an_error_and_a_slow_one_is_followed_by_an_operation() {
    let app = TestApp::start_with(slow_operations(4), &[]).await;
    let client = app.client().await;
    let started = std::time::Instant::now();
    let running = ok(&call(
        &client,
        "sentinel_create_table",
        json!({"tenant_id": FABRIKAM, "table": "Slow_CL", "columns": [{"name": "A", "type": "string"}], "wait_seconds": 0}),
    )
    .await);
    assert_eq!(running["operation"]["status"], "InProgress");
    assert!(running["after"].is_null());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the wait bound was not honoured"
    );
    // The call handed the Azure operation to a durable operation, which follows it to its end.
    let operation = running["operation"]["operation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("an operation follows it: {running}"));
    let view = job_when_ended(&client, operation, 4).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["function"], "sentinel_create_table");
    assert_eq!(view["targets"][0]["id"], "table Slow_CL", "{view}");
    assert_eq!(view["targets"][0]["status"], "Succeeded", "{view}");
    ok(&call(
        &client,
        "sentinel_get_table",
        json!({"tenant_id": FABRIKAM, "table": "Slow_CL"}),
    )
    .await);
    let text_result = call(&client, "sentinel_update_table", json!({"tenant_id": FABRIKAM, "table": "Slow_CL", "retention_in_days": 40, "wait_seconds": 1})).await;
    assert!(
        text(&text_result).contains("still running") && text(&text_result).contains("job_get"),
        "{}",
        text(&text_result)
    );
    // Azure accepts a request, then the operation fails: Auxiliary tables cannot hold dynamic
    // columns. The operation following it records why.
    let failing = ok(&call(
        &client,
        "sentinel_create_table",
        json!({"tenant_id": FABRIKAM, "table": "Aux_CL", "plan": "Auxiliary", "columns": [{"name": "Payload", "type": "dynamic"}], "wait_seconds": 0}),
    )
    .await);
    let operation = failing["operation"]["operation_id"]
        .as_str()
        .expect("followed");
    let view = job_when_ended(&client, operation, 4).await;
    assert_eq!(view["progress"]["failed"], 1, "{view}");
    assert!(
        view["targets"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ended Failed") && d.contains("dynamic")),
        "{view}"
    );

    let fast = TestApp::start().await;
    let client = fast.client().await;
    let message = err(&call(
        &client,
        "sentinel_create_table",
        json!({"tenant_id": FABRIKAM, "table": "Aux_CL", "plan": "Auxiliary", "columns": [{"name": "Payload", "type": "dynamic"}]}),
    )
    .await);
    assert!(
        message.contains("ended Failed") && message.contains("dynamic"),
        "{message}"
    );
    let stats = fast.sandbox.stats();
    assert!(stats.count("GET", "/arm/subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{location}/operationStatuses/{op}") >= 1, "{:?}", stats.requests);
}

/// The person confirming a deletion sees the table with its plan and retention, in the tenant by
/// name; a table that is not there is refused before anyone is asked.
#[tokio::test]
async fn a_deletion_names_the_table_and_an_unknown_table_is_refused_unasked() {
    let app =
        TestApp::start_with(fast_sandbox_options(), &[("APPROVAL_FALLBACK", "confirm")]).await;
    let client = app.client().await;
    let table = json!({"tenant_id": FABRIKAM, "table": "Doomed_CL"});
    let mut create = table.clone();
    create["columns"] = json!([{"name": "UserName", "type": "string"}]);
    create["retention_in_days"] = json!(60);
    ok(&call(&client, "sentinel_create_table", create).await);
    let asked = err(&call(&client, "sentinel_delete_table", table.clone()).await);
    for expected in [
        "CONFIRMATION REQUIRED",
        "Tenant: Fabrikam",
        "custom table Doomed_CL",
        "plan Analytics",
        "retention 60 days",
        "deleted with its data",
    ] {
        assert!(asked.contains(expected), "'{expected}' in {asked}");
    }
    let deleted = ok(&call_confirmed(&client, "sentinel_delete_table", table.clone()).await);
    assert_eq!(deleted["before"]["name"], "Doomed_CL");

    let refused = err(&call(&client, "sentinel_delete_table", table).await);
    assert!(
        refused.contains("no table 'Doomed_CL'") && !refused.contains("CONFIRMATION REQUIRED"),
        "{refused}"
    );
}

/// A task-aware client gets a table change that outlasts its wait as a task, which completes
/// when Azure's operation does.
#[tokio::test]
async fn a_task_aware_client_follows_a_slow_table_change_as_a_task() {
    use rmcp::model::{CallToolRequestParams, CallToolResponse, TaskPayload, TaskStatus};

    let app = TestApp::start_with(slow_operations(3), &[]).await;
    let client = connect_with_tasks(&app.mcp_url()).await;
    let Value::Object(arguments) = json!({"tenant_id": FABRIKAM, "table": "Tasked_CL", "columns": [{"name": "A", "type": "string"}], "wait_seconds": 0})
    else {
        unreachable!()
    };
    let response = client
        .call_tool_once(
            CallToolRequestParams::new("sentinel_create_table").with_arguments(arguments),
        )
        .await
        .expect("the call is answered");
    let CallToolResponse::Task(created) = response else {
        panic!("a task-aware client gets a task: {response:?}");
    };
    assert_eq!(created.task.status, TaskStatus::Working);
    let done = finished_task(&client, &created.task.task_id, 40).await;
    let TaskPayload::Completed { result } = &done.payload else {
        panic!("completed: {done:?}");
    };
    let job = &result["structuredContent"];
    assert_eq!(job["progress"]["done"], 1, "{job}");
    assert_eq!(job["targets"][0]["status"], "Succeeded", "{job}");
}
