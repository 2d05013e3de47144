//! Data collection through the MCP client: rules, endpoints, associations; a DCR for a new
//! custom table; its transformation changed with the etag check.

use crate::common;
use crate::sentinel_common;

use std::time::Duration;

use common::*;
use sentinel_common::{DirectArm, slow_next_put, touch, workspace};
use serde_json::json;

const DCR_VERSION: &str = "2024-03-11";

#[tokio::test]
async fn rules_endpoints_and_associations_are_read() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let rules = ok(&call(
        &client,
        "sentinel_list_dcrs",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    let rule = rules["rules"][0].clone();
    assert_eq!(rule["name"], "dcr-windows-security-events");
    assert_eq!(rule["sends_to_workspace"], true);
    assert_eq!(rule["flows"][0]["output_stream"], "Microsoft-SecurityEvent");
    let detail = ok(&call(
        &client,
        "sentinel_get_dcr",
        json!({"tenant_id": FABRIKAM, "name": "dcr-windows-security-events"}),
    )
    .await);
    assert!(detail["rule"]["properties"]["dataSources"]["windowsEventLogs"].is_array());
    let associations = ok(&call(
        &client,
        "sentinel_list_dcr_associations",
        json!({"tenant_id": FABRIKAM, "name": "dcr-windows-security-events"}),
    )
    .await);
    let associations = associations["associations"]
        .as_array()
        .expect("associations");
    assert!(!associations.is_empty());
    assert!(associations.iter().all(|a| {
        a["resource_id"]
            .as_str()
            .expect("resource")
            .contains("/providers/Microsoft.Compute/virtualMachines/srv-")
    }));
    let endpoints = ok(&call(
        &client,
        "sentinel_list_dces",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    assert!(
        endpoints["endpoints"][0]["logs_ingestion"]
            .as_str()
            .expect("url")
            .contains(".ingest.monitor.azure.com")
    );

    let message = err(&call(
        &client,
        "sentinel_get_dcr",
        json!({"tenant_id": FABRIKAM, "name": "nope"}),
    )
    .await);
    assert!(
        message.contains("no data collection rule 'nope'"),
        "{message}"
    );
    let message = err(&call(&client, "sentinel_list_dcr_associations", json!({"tenant_id": FABRIKAM, "name": "dcr-windows-security-events", "resource_group": "rg-elsewhere"})).await);
    assert!(
        message.contains("in resource group rg-elsewhere"),
        "{message}"
    );
}

#[tokio::test]
async fn a_custom_table_gets_an_endpoint_a_rule_and_a_new_transformation() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let base = json!({"tenant_id": FABRIKAM});
    let with = |extra: serde_json::Value| {
        let mut arguments = base.clone();
        arguments
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        arguments
    };
    let message = err(&call(
        &client,
        "sentinel_create_dcr",
        with(json!({"name": "dcr-app", "table": "AppAudit_CL"})),
    )
    .await);
    assert!(
        message.contains("create it first with sentinel_create_table"),
        "{message}"
    );
    ok(&call(&client, "sentinel_create_table", with(json!({"table": "AppAudit_CL", "columns": [{"name": "UserName", "type": "string"}, {"name": "Count", "type": "int"}]}))).await);

    let dce = ok(&call(
        &client,
        "sentinel_create_dce",
        with(json!({"name": "dce-app", "public_network_access": "Disabled"})),
    )
    .await);
    assert_eq!(dce["endpoint"]["public_network_access"], "Disabled");
    let message = err(&call(
        &client,
        "sentinel_create_dce",
        with(json!({"name": "dce-app"})),
    )
    .await);
    assert!(message.contains("already exists"), "{message}");

    let via_dce = ok(&call(&client, "sentinel_create_dcr", with(json!({"name": "dcr-app", "table": "AppAudit_CL", "endpoint": "dce-app", "transform_kql": "source | where UserName != ''"}))).await);
    assert_eq!(via_dce["stream"], "Custom-AppAudit");
    let immutable = via_dce["rule"]["immutable_id"]
        .as_str()
        .expect("immutable id")
        .to_string();
    let url = via_dce["ingestion_url"].as_str().expect("ingestion url");
    assert!(
        url.starts_with(dce["endpoint"]["logs_ingestion"].as_str().expect("dce url")),
        "{url}"
    );
    assert!(
        url.ends_with(&format!(
            "/dataCollectionRules/{immutable}/streams/Custom-AppAudit?api-version=2023-01-01"
        )),
        "{url}"
    );
    let direct = ok(&call(
        &client,
        "sentinel_create_dcr",
        with(json!({"name": "dcr-app-direct", "table": "AppAudit_CL"})),
    )
    .await);
    assert_eq!(direct["rule"]["kind"], "Direct");
    assert!(
        direct["ingestion_url"]
            .as_str()
            .expect("url")
            .contains("dcr-app-direct")
    );
    let detail = ok(&call(
        &client,
        "sentinel_get_dcr",
        with(json!({"name": "dcr-app"})),
    )
    .await);
    let declared =
        &detail["rule"]["properties"]["streamDeclarations"]["Custom-AppAudit"]["columns"];
    assert_eq!(
        declared,
        &json!([{"name": "TimeGenerated", "type": "datetime"}, {"name": "UserName", "type": "string"}, {"name": "Count", "type": "int"}])
    );

    let changed = ok(&call(
        &client,
        "sentinel_update_dcr_transformation",
        with(json!({"name": "dcr-app", "transform_kql": "source | extend Count = Count * 2"})),
    )
    .await);
    assert_eq!(
        (changed["before"].clone(), changed["changed"].clone()),
        (json!("source | where UserName != ''"), json!(true))
    );
    let same = ok(&call(
        &client,
        "sentinel_update_dcr_transformation",
        with(json!({"name": "dcr-app", "transform_kql": "source | extend Count = Count * 2"})),
    )
    .await);
    assert_eq!(same["changed"], false);

    for (tool, extra, expected) in [
        (
            "sentinel_create_dcr",
            json!({"name": "dcr-app", "table": "AppAudit_CL"}),
            "already exists",
        ),
        (
            "sentinel_create_dcr",
            json!({"name": "x", "table": "SigninLogs"}),
            "ending _CL",
        ),
        (
            "sentinel_create_dcr",
            json!({"name": "x", "table": "AppAudit_CL", "endpoint": "dce-nope"}),
            "no data collection endpoint 'dce-nope'",
        ),
        (
            "sentinel_create_dcr",
            json!({"name": "x", "table": "AppAudit_CL", "transform_kql": "AppAudit_CL | take 1"}),
            "must start with 'source'",
        ),
        (
            "sentinel_update_dcr_transformation",
            json!({"name": "dcr-app", "transform_kql": ".drop table AppAudit_CL"}),
            "control (management) command",
        ),
        (
            "sentinel_update_dcr_transformation",
            json!({"name": "dcr-app", "transform_kql": "source | joinx"}),
            "not valid KQL",
        ),
        (
            "sentinel_update_dcr_transformation",
            json!({"name": "dcr-app", "transform_kql": "source", "output_stream": "Custom-Other_CL"}),
            "no data flow to 'Custom-Other_CL'",
        ),
    ] {
        let message = err(&call(&client, tool, with(extra.clone())).await);
        assert!(message.contains(expected), "{tool} {extra}: {message}");
    }

    // Someone edits the rule while the server is writing: the edit survives, the call says so.
    let path = format!(
        "{}/providers/Microsoft.Insights/dataCollectionRules/dcr-app",
        DirectArm::group_path(&workspace(&app, 1, 0))
    );
    let arm = DirectArm::fabrikam(&app).await;
    slow_next_put(&app, format!("/arm{path}"), Duration::from_millis(1500));
    let update = call(
        &client,
        "sentinel_update_dcr_transformation",
        with(json!({"name": "dcr-app", "transform_kql": "source"})),
    );
    let colleague = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        touch(&arm, &path, DCR_VERSION, |rule| {
            rule["properties"]["description"] = json!("edited elsewhere")
        })
        .await;
    };
    let (result, ()) = tokio::join!(update, colleague);
    let message = err(&result);
    assert!(message.contains("changed by someone else"), "{message}");
    let (_, now) = arm.get(&path, DCR_VERSION).await;
    assert_eq!(now["properties"]["description"], "edited elsewhere");
    assert_eq!(
        now["properties"]["dataFlows"][0]["transformKql"],
        "source | extend Count = Count * 2"
    );
}
