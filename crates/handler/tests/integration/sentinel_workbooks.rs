//! Sentinel workbooks through the MCP client: list, get, export, import (to another
//! workspace), delete.

use crate::common;
use crate::sentinel_common;

use common::*;
use sentinel_common::{DirectArm, WORKBOOKS_VERSION, workspace};
use serde_json::json;

#[tokio::test]
async fn workbooks_are_exported_imported_elsewhere_and_deleted() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let prod = workspace(&app, 0, 0).name;
    let dev = workspace(&app, 0, 1).name;
    let listed = ok(&call(
        &client,
        "sentinel_list_workbooks",
        json!({"tenant_id": CONTOSO, "workspace": prod}),
    )
    .await);
    assert_eq!(listed["total_matching"], 2);
    let firewall = listed["workbooks"]
        .as_array()
        .expect("workbooks")
        .iter()
        .find(|w| w["display_name"] == "Firewall overview")
        .expect("firewall workbook")
        .clone();
    let id = firewall["workbook_id"].clone();

    let detail = ok(&call(
        &client,
        "sentinel_get_workbook",
        json!({"tenant_id": CONTOSO, "workspace": prod, "workbook_id": id}),
    )
    .await);
    assert_eq!(detail["steps"], 3);
    assert_eq!(
        detail["queries"],
        json!([
            "CommonSecurityLog | summarize count() by DeviceAction",
            "CommonSecurityLog | top 10 by DestinationPort"
        ])
    );

    let exported = ok(&call(
        &client,
        "sentinel_export_workbook",
        json!({"tenant_id": CONTOSO, "workspace": prod, "workbook_id": id}),
    )
    .await);
    let definition = exported["definition"].clone();
    assert_eq!(definition["format"], "sentinel-workbook/1");
    assert_eq!(definition["display_name"], "Firewall overview");

    let imported = ok(&call(&client, "sentinel_import_workbook", json!({"tenant_id": CONTOSO, "workspace": dev, "definition": definition, "display_name": "Firewall overview (copy)"})).await);
    let new_id = imported["workbook"]["workbook_id"].clone();
    assert_ne!(new_id, id);
    let copy = ok(&call(
        &client,
        "sentinel_export_workbook",
        json!({"tenant_id": CONTOSO, "workspace": dev, "workbook_id": new_id}),
    )
    .await);
    assert_eq!(
        copy["definition"]["serialized_data"], definition["serialized_data"],
        "the content survives the round trip"
    );
    assert_eq!(
        copy["definition"]["display_name"],
        "Firewall overview (copy)"
    );
    // The copy belongs to the dev workspace, not to prod.
    let arm = DirectArm::contoso(&app).await;
    let (_, raw) = arm
        .get(
            &format!(
                "{}/providers/Microsoft.Insights/workbooks/{}",
                DirectArm::group_path(&workspace(&app, 0, 1)),
                new_id.as_str().expect("id")
            ),
            WORKBOOKS_VERSION,
        )
        .await;
    assert!(
        raw["properties"]["sourceId"]
            .as_str()
            .expect("source")
            .ends_with(&dev)
    );
    let message = err(&call(
        &client,
        "sentinel_get_workbook",
        json!({"tenant_id": CONTOSO, "workspace": prod, "workbook_id": new_id}),
    )
    .await);
    assert!(message.contains("no Sentinel workbook"), "{message}");

    let deleted = ok(&call_confirmed(
        &client,
        "sentinel_delete_workbook",
        json!({"tenant_id": CONTOSO, "workspace": prod, "workbook_id": id}),
    )
    .await);
    assert_eq!(deleted["deleted"]["display_name"], "Firewall overview");
    let after = ok(&call(
        &client,
        "sentinel_list_workbooks",
        json!({"tenant_id": CONTOSO, "workspace": prod}),
    )
    .await);
    assert_eq!(after["total_matching"], 1);
    let message = err(&call_confirmed(
        &client,
        "sentinel_delete_workbook",
        json!({"tenant_id": CONTOSO, "workspace": prod, "workbook_id": id}),
    )
    .await);
    assert!(message.contains("no Sentinel workbook"), "{message}");
}

#[tokio::test]
async fn imports_are_checked_before_anything_is_written() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let content =
        json!({"version": "Notebook/1.0", "items": [{"type": 1, "content": {"json": "# Hello"}}]})
            .to_string();
    let created = ok(&call(
        &client,
        "sentinel_import_workbook",
        json!({"tenant_id": FABRIKAM, "display_name": "Hello", "serialized_data": content, "workbook_id": "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"}),
    )
    .await);
    assert_eq!(
        created["workbook"]["workbook_id"],
        "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"
    );
    let writes_before = app.sandbox.stats().count_method("PUT");
    for (arguments, expected) in [
        (
            json!({"tenant_id": FABRIKAM, "display_name": "Again", "serialized_data": content, "workbook_id": "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"}),
            "already exists",
        ),
        (
            json!({"tenant_id": FABRIKAM, "display_name": "Bad", "serialized_data": "{not json"}),
            "not JSON",
        ),
        (
            json!({"tenant_id": FABRIKAM, "display_name": "Bad", "serialized_data": "{\"a\": 1}"}),
            "not workbook content",
        ),
        (
            json!({"tenant_id": FABRIKAM, "serialized_data": content}),
            "display_name is required",
        ),
        (
            json!({"tenant_id": FABRIKAM, "display_name": "Bad", "serialized_data": content, "workbook_id": "not-a-guid"}),
            "not a GUID",
        ),
        (
            json!({"tenant_id": FABRIKAM, "definition": {"format": "other/2", "display_name": "x", "serialized_data": content}}),
            "is not sentinel-workbook/1",
        ),
        (json!({"tenant_id": FABRIKAM}), "give definition"),
    ] {
        let message = err(&call(&client, "sentinel_import_workbook", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
    assert_eq!(
        app.sandbox.stats().count_method("PUT"),
        writes_before,
        "a refused import writes nothing"
    );
}

/// The person confirming a deletion sees the workbook by name, in the tenant by name; a workbook
/// that is not there is refused before anyone is asked.
#[tokio::test]
async fn a_deletion_names_the_workbook_and_an_unknown_one_is_refused_unasked() {
    let app =
        TestApp::start_with(fast_sandbox_options(), &[("APPROVAL_FALLBACK", "confirm")]).await;
    let client = app.client().await;
    let prod = workspace(&app, 0, 0).name;
    let listed = ok(&call(
        &client,
        "sentinel_list_workbooks",
        json!({"tenant_id": CONTOSO, "workspace": prod}),
    )
    .await);
    let id = listed["workbooks"]
        .as_array()
        .expect("workbooks")
        .iter()
        .find(|w| w["display_name"] == "Firewall overview")
        .expect("firewall workbook")["workbook_id"]
        .clone();
    let arguments = json!({"tenant_id": CONTOSO, "workspace": prod, "workbook_id": id});
    let asked = err(&call(&client, "sentinel_delete_workbook", arguments.clone()).await);
    for expected in [
        "CONFIRMATION REQUIRED",
        "Tenant: Contoso",
        format!("in workspace {prod}").as_str(),
        "workbook Firewall overview (id ",
        ": deleted",
    ] {
        assert!(asked.contains(expected), "'{expected}' in {asked}");
    }
    let deleted = ok(&call_confirmed(&client, "sentinel_delete_workbook", arguments.clone()).await);
    assert_eq!(deleted["deleted"]["display_name"], "Firewall overview");

    let refused = err(&call(&client, "sentinel_delete_workbook", arguments).await);
    assert!(
        refused.contains("no Sentinel workbook") && !refused.contains("CONFIRMATION REQUIRED"),
        "{refused}"
    );
}

/// Requests the server has sent to ARM, of any method: a refusal before anything is sent leaves
/// this unchanged.
fn arm_requests(app: &TestApp) -> u64 {
    app.sandbox
        .stats()
        .requests
        .iter()
        .filter(|r| r.path_template.starts_with("/arm/"))
        .map(|r| r.count)
        .sum()
}

/// A control command hidden in a workbook query, in a step or a parameter however deeply groups
/// nest it, refuses the import before any request; the refusal names the query and the command.
#[tokio::test]
async fn an_import_with_a_hidden_control_command_is_refused_before_anything_is_sent() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let dev = workspace(&app, 0, 1).name;
    let in_a_step = json!({"version": "Notebook/1.0", "items": [
        {"type": 1, "content": {"json": "# Firewall"}, "name": "text - 0"},
        {"type": 3, "content": {"version": "KqlItem/1.0", "query": "SecurityEvent | take 1; .drop table SecurityEvent", "queryType": 0}, "name": "query - 1"},
    ]})
    .to_string();
    // `@'\'` is a whole verbatim literal: a backslash is itself there, so the quote after it
    // closes the string and the command after `;` is a statement of its own.
    let in_a_grouped_parameter = json!({"version": "Notebook/1.0", "items": [
        {"type": 12, "content": {"version": "NotebookGroup/1.0", "groupType": "editable", "items": [
            {"type": 9, "content": {"version": "KqlParameterItem/1.0", "parameters": [
                {"id": "p1", "version": "KqlParameterItem/1.0", "name": "Account", "type": 2,
                 "query": r"T | where a == @'\'; .drop table T", "queryType": 0},
            ]}, "name": "parameters - 0"},
        ]}, "name": "group - 0"},
    ]})
    .to_string();
    let before = arm_requests(&app);
    for (arguments, names) in [
        (
            json!({"tenant_id": CONTOSO, "workspace": dev, "display_name": "Firewall", "serialized_data": in_a_step}),
            "the query of 'query - 1' (/items/1/content/query)",
        ),
        (
            json!({"tenant_id": CONTOSO, "workspace": dev, "definition": {"format": "sentinel-workbook/1", "display_name": "Accounts", "serialized_data": in_a_grouped_parameter}}),
            "the query of 'Account' (/items/0/content/items/0/content/parameters/0/query)",
        ),
    ] {
        let message = err(&call(&client, "sentinel_import_workbook", arguments.clone()).await);
        for expected in [
            names,
            "'.drop' is a KQL control (management) command",
            "nothing was written",
        ] {
            assert!(message.contains(expected), "'{expected}' in {message}");
        }
    }
    assert_eq!(
        arm_requests(&app),
        before,
        "a refused import sends nothing to ARM"
    );
    let listed = ok(&call(
        &client,
        "sentinel_list_workbooks",
        json!({"tenant_id": CONTOSO, "workspace": dev}),
    )
    .await);
    assert!(
        listed["workbooks"]
            .as_array()
            .expect("workbooks")
            .iter()
            .all(|w| w["display_name"] != "Firewall" && w["display_name"] != "Accounts"),
        "{listed}"
    );
}

/// ".drop" inside a string literal is data, not a command; and a step whose query is not
/// written yet runs nothing: both import.
#[tokio::test]
async fn a_query_that_only_mentions_a_command_in_a_string_is_imported() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let content = json!({"version": "Notebook/1.0", "items": [
        {"type": 3, "content": {"version": "KqlItem/1.0", "query": "T | where s has '.drop table'", "queryType": 0}, "name": "query - 0"},
        {"type": 3, "content": {"version": "KqlItem/1.0", "query": "", "queryType": 0}, "name": "query - 1"},
    ]})
    .to_string();
    let created = ok(&call(
        &client,
        "sentinel_import_workbook",
        json!({"tenant_id": FABRIKAM, "display_name": "Mentions", "serialized_data": content}),
    )
    .await);
    let detail = ok(&call(
        &client,
        "sentinel_get_workbook",
        json!({"tenant_id": FABRIKAM, "workbook_id": created["workbook"]["workbook_id"]}),
    )
    .await);
    assert_eq!(
        detail["queries"],
        json!(["T | where s has '.drop table'", ""])
    );
}
