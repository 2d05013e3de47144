//! Machine actions through the MCP client against the sandbox: listing with filters and paging,
//! reading one (and waiting for it), cancelling, and investigation package links.

use crate::common;

use std::collections::HashSet;

use common::*;
use serde_json::{Value, json};

async fn start_action(client: &McpClient, tool: &str, tenant: &str, machine: &str) -> String {
    let output = ok(&call_confirmed(
        client,
        tool,
        json!({"tenant_id": tenant, "machine_ids": [machine], "comment": "test"}),
    )
    .await);
    output["results"][0]["action_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{tool} started an action: {output}"))
        .to_string()
}

#[tokio::test]
async fn actions_are_listed_by_device_type_status_and_time_and_paged() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 2).await;
    let scan = start_action(&client, "mde_run_antivirus_scan", CONTOSO, &ids[0]).await;
    start_action(&client, "mde_isolate_machines", CONTOSO, &ids[1]).await;

    let by_device = ok(&call_confirmed(
        &client,
        "mde_list_machine_actions",
        json!({"tenant_id": CONTOSO, "machine_id": ids[0]}),
    )
    .await);
    let actions = by_device["actions"].as_array().expect("actions");
    assert!(
        actions.iter().any(|a| a["id"] == scan.as_str()),
        "{by_device}"
    );
    assert!(actions.iter().all(|a| a["machineId"] == ids[0].as_str()));

    let isolations = ok(&call_confirmed(
        &client,
        "mde_list_machine_actions",
        json!({"tenant_id": CONTOSO, "type": "Isolate", "since": "PT1H"}),
    )
    .await);
    let isolations = isolations["actions"].as_array().expect("actions");
    assert_eq!(
        isolations.len(),
        1,
        "the seeded isolation is older than an hour: {isolations:?}"
    );
    assert_eq!(isolations[0]["machineId"], ids[1].as_str());

    let failed = ok(&call_confirmed(
        &client,
        "mde_list_machine_actions",
        json!({"tenant_id": CONTOSO, "status": "Failed"}),
    )
    .await);
    assert!(
        failed["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .all(|a| a["status"] == "Failed")
    );

    // Seven actions in all (five seeded, two new): pages of three lose and repeat nothing.
    let mut seen = HashSet::new();
    let mut page = ok(&call_confirmed(
        &client,
        "mde_list_machine_actions",
        json!({"tenant_id": CONTOSO, "limit": 3}),
    )
    .await);
    loop {
        for action in page["actions"].as_array().expect("actions") {
            assert!(
                seen.insert(action["id"].as_str().expect("id").to_string()),
                "{action} twice"
            );
        }
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_string) else {
            break;
        };
        page = ok(&call_confirmed(
            &client,
            "mde_list_machine_actions",
            json!({"tenant_id": CONTOSO, "cursor": cursor}),
        )
        .await);
    }
    assert_eq!(seen.len(), 7);

    let cases = [
        (
            json!({"tenant_id": CONTOSO, "type": "Reboot"}),
            "unknown variant `Reboot`",
        ),
        (
            json!({"tenant_id": CONTOSO, "since": "yesterday"}),
            "RFC 3339",
        ),
        (
            json!({"tenant_id": CONTOSO, "status": "Done"}),
            "unknown variant `Done`",
        ),
        (
            json!({"tenant_id": CONTOSO, "cursor": "x", "type": "Isolate"}),
            "either filter or cursor",
        ),
    ];
    for (arguments, expected) in cases {
        let message =
            err(&call_confirmed(&client, "mde_list_machine_actions", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
}

#[tokio::test]
async fn an_action_is_read_and_waited_for() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let action = start_action(&client, "mde_run_antivirus_scan", CONTOSO, &ids[0]).await;
    let now = ok(&call_confirmed(
        &client,
        "mde_get_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": action}),
    )
    .await);
    assert_eq!(now["action"]["type"], "RunAntiVirusScan");
    assert_eq!(now["action"]["requestorComment"], "test");
    let waited = ok(&call_confirmed(
        &client,
        "mde_get_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": action, "wait_seconds": 10}),
    )
    .await);
    assert_eq!(waited["action"]["status"], "Succeeded", "{waited}");
    assert_eq!(waited["settled"], true);

    let message = err(&call_confirmed(
        &client,
        "mde_get_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": "00000000-0000-4000-8000-000000000000"}),
    )
    .await);
    assert!(message.contains("no machine action"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_get_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": "isolate-1"}),
    )
    .await);
    assert!(message.contains("not a machine action id"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_get_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": action, "wait_seconds": 90}),
    )
    .await);
    assert!(message.contains("wait_seconds"), "{message}");
    // Actions belong to their tenant.
    let message = err(&call_confirmed(
        &client,
        "mde_get_machine_action",
        json!({"tenant_id": FABRIKAM, "action_id": action}),
    )
    .await);
    assert!(message.contains("no machine action"), "{message}");
}

#[tokio::test]
async fn a_pending_action_is_cancelled_and_a_finished_one_is_not() {
    // Actions stay pending long enough to cancel one.
    let mut options = fast_sandbox_options();
    options.action_timings.pending = std::time::Duration::from_secs(30);
    let app = TestApp::start_with(options, &[]).await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let action = start_action(&client, "mde_isolate_machines", CONTOSO, &ids[0]).await;
    let cancelled = ok(&call_confirmed(
        &client,
        "mde_cancel_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": action, "comment": "isolated the wrong device"}),
    )
    .await);
    assert_eq!(cancelled["action"]["status"], "Cancelled", "{cancelled}");
    assert_eq!(
        cancelled["action"]["cancellationComment"],
        "isolated the wrong device"
    );
    assert!(
        app.sandbox
            .machine_state(CONTOSO, &ids[0])
            .expect("machine")
            .isolation
            .is_none()
    );

    let message = err(&call_confirmed(
        &client,
        "mde_cancel_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": action, "comment": "again"}),
    )
    .await);
    assert!(message.contains("cannot be cancelled"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_cancel_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": action, "comment": ""}),
    )
    .await);
    assert!(message.contains("comment is required"), "{message}");
}

#[tokio::test]
async fn an_investigation_package_link_is_given_once_collected() {
    // The collection takes longer than the call's inline window, so the call answers while the
    // operation still follows it.
    let mut options = fast_sandbox_options();
    options.action_timings.pending = std::time::Duration::from_secs(3);
    let app = TestApp::start_with(options, &[("OPS_INLINE_SECONDS", "1")]).await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let action = start_action(
        &client,
        "mde_collect_investigation_package",
        CONTOSO,
        &ids[0],
    )
    .await;
    let early = err(&call_confirmed(
        &client,
        "mde_get_investigation_package_uri",
        json!({"tenant_id": CONTOSO, "action_id": action}),
    )
    .await);
    assert!(early.contains("has not succeeded yet"), "{early}");
    ok(&call_confirmed(
        &client,
        "mde_get_machine_action",
        json!({"tenant_id": CONTOSO, "action_id": action, "wait_seconds": 10}),
    )
    .await);
    let link = ok(&call_confirmed(
        &client,
        "mde_get_investigation_package_uri",
        json!({"tenant_id": CONTOSO, "action_id": action}),
    )
    .await);
    let url = link["download_url"].as_str().expect("url");
    assert!(
        url.starts_with(app.sandbox.base_url()) && url.contains("sig="),
        "{url}"
    );
    // Another kind of action has no package; Defender says so. get-package-sas-uri.md allows 2
    // calls a minute per tenant, and this tenant has used both, so this one asks another tenant.
    let other = machine_ids(&client, FABRIKAM, ACTIVE, 1).await;
    let scan = start_action(&client, "mde_run_antivirus_scan", FABRIKAM, &other[0]).await;
    let message = err(&call_confirmed(
        &client,
        "mde_get_investigation_package_uri",
        json!({"tenant_id": FABRIKAM, "action_id": scan}),
    )
    .await);
    assert!(
        message.contains("only CollectInvestigationPackage"),
        "{message}"
    );
}

#[tokio::test]
async fn listing_shows_outcomes_of_the_bulk_tools() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, FABRIKAM, ACTIVE, 3).await;
    let output = ok(&call_confirmed(
        &client,
        "mde_collect_investigation_package",
        json!({"tenant_id": FABRIKAM, "machine_ids": ids, "comment": "triage"}),
    )
    .await);
    let started: HashSet<&str> = output["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|d| d["action_id"].as_str())
        .collect();
    let listed = ok(&call_confirmed(
        &client,
        "mde_list_machine_actions",
        json!({"tenant_id": FABRIKAM, "type": "CollectInvestigationPackage", "since": "PT10M"}),
    )
    .await);
    let listed: HashSet<&str> = listed["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a: &Value| a["id"].as_str())
        .collect();
    assert_eq!(started, listed);
}
