//! Sentinel workbooks through the MCP client: list, get, export, import (to another
//! workspace), delete.

mod common;
mod sentinel_common;

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
    let writes_before = puts(&app);
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
    assert_eq!(puts(&app), writes_before, "a refused import writes nothing");
}

fn puts(app: &TestApp) -> u64 {
    app.sandbox
        .stats()
        .requests
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.count)
        .sum()
}
