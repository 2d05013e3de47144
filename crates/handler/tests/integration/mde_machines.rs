//! Device reads beyond list/get (covered in mcp_tools.rs), and the Defender catalogue as the
//! issue names it.

use crate::common;

use std::collections::HashSet;

use common::*;
use serde_json::json;

#[tokio::test]
async fn logged_on_users_are_listed_for_a_device() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let servers = machine_ids(&client, CONTOSO, "startswith(computerDnsName,'srv-')", 1).await;
    let output = ok(&call_confirmed(
        &client,
        "mde_get_logged_on_users",
        json!({"tenant_id": CONTOSO, "machine_id": servers[0]}),
    )
    .await);
    let users = output["users"].as_array().expect("users");
    assert!(!users.is_empty(), "{output}");
    assert!(
        users
            .iter()
            .all(|u| u["accountDomain"] == "contoso" && u["logonTypes"] == "RemoteInteractive"),
        "{output}"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_get_logged_on_users",
        json!({"tenant_id": CONTOSO, "machine_id": "0".repeat(40)}),
    )
    .await);
    assert!(message.contains("no device with machine id"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_get_logged_on_users",
        json!({"tenant_id": FABRIKAM, "machine_id": servers[0]}),
    )
    .await);
    assert!(
        message.contains("no device with machine id"),
        "devices belong to their tenant: {message}"
    );
}

#[tokio::test]
async fn every_defender_tool_of_the_issue_is_offered() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: HashSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let expected = [
        "mde_list_machines",
        "mde_get_machine",
        "mde_get_logged_on_users",
        "mde_isolate_machines",
        "mde_unisolate_machines",
        "mde_contain_devices",
        "mde_uncontain_devices",
        "mde_restrict_app_execution",
        "mde_unrestrict_app_execution",
        "mde_run_antivirus_scan",
        "mde_collect_investigation_package",
        "mde_get_investigation_package_uri",
        "mde_stop_and_quarantine_file",
        "mde_offboard_machines",
        "mde_list_machine_actions",
        "mde_get_machine_action",
        "mde_cancel_machine_action",
        "mde_list_library_files",
        "mde_upload_library_file",
        "mde_delete_library_file",
        "mde_live_response_run_script",
        "mde_live_response_put_file",
        "mde_live_response_get_file",
        "mde_get_live_response_result",
        "mde_list_indicators",
        "mde_add_indicators",
        "mde_remove_indicators",
        "mde_get_file_info",
        "mde_get_ip_info",
        "mde_get_domain_info",
        "mde_list_alerts",
        "mde_get_alert",
        "mde_run_hunting_query",
        "mde_list_incidents",
        "mde_get_incident",
        "mde_update_incident",
        "mde_add_incident_comment",
        "mde_list_detection_rules",
        "mde_get_detection_rule",
        "mde_create_detection_rule",
        "mde_update_detection_rule",
        "mde_delete_detection_rule",
        "tenants_list",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|name| !names.contains(name))
        .collect();
    assert!(missing.is_empty(), "missing tools: {missing:?}");
    let extra: Vec<&&str> = names
        .iter()
        .filter(|name| name.starts_with("mde_") && !expected.contains(name))
        .collect();
    assert!(extra.is_empty(), "tools the issue does not name: {extra:?}");
}
