//! Device response actions through the MCP client against the sandbox: targeting (ids, filter,
//! preview, caps), per-device outcomes, the effect on the devices, waiting, and the actions that
//! must never be sent twice.

use crate::common;

use common::*;
use sandbox::{Fault, FaultKind};
use serde_json::{Value, json};

fn results(output: &Value) -> &Vec<Value> {
    output["results"].as_array().expect("results")
}

#[tokio::test]
async fn isolation_targets_explicit_devices_and_takes_effect() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 2).await;
    let output = ok(&call_confirmed(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "isolation_type": "Selective", "comment": "INC-1001 ransomware", "wait_seconds": 10}),
    )
    .await);
    assert_eq!(output["counts"]["done"], 2, "{output}");
    for device in results(&output) {
        assert_eq!(device["outcome"], "done");
        assert_eq!(
            device["action_status"], "Succeeded",
            "waited for the action: {device}"
        );
        assert!(
            device["action_id"]
                .as_str()
                .is_some_and(|id| id.len() == 36)
        );
        assert!(device["computer_dns_name"].as_str().is_some());
    }
    for id in &ids {
        let state = app.sandbox.machine_state(CONTOSO, id).expect("machine");
        assert_eq!(state.isolation.as_deref(), Some("Selective"));
    }
    // Released again.
    let released = ok(&call_confirmed(
        &client,
        "mde_unisolate_machines",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "INC-1001 clean", "wait_seconds": 10}),
    )
    .await);
    assert_eq!(released["counts"]["done"], 2, "{released}");
    assert!(ids.iter().all(|id| {
        app.sandbox
            .machine_state(CONTOSO, id)
            .expect("machine")
            .isolation
            .is_none()
    }));
}

#[tokio::test]
async fn an_action_already_running_is_reported_as_pending_not_repeated() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let arguments = json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "INC-1002"});
    let first = ok(&call_confirmed(&client, "mde_isolate_machines", arguments.clone()).await);
    assert_eq!(results(&first)[0]["outcome"], "done");
    let second = ok(&call_confirmed(&client, "mde_isolate_machines", arguments).await);
    assert_eq!(
        results(&second)[0]["outcome"],
        "already_pending",
        "{second}"
    );
    assert!(
        results(&second)[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ActiveRequestAlreadyExists"))
    );
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/machines/{id}/{sub}"),
        2
    );
}

#[tokio::test]
async fn a_filter_needs_a_cap_a_preview_changes_nothing_and_too_many_matches_do_nothing() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let filter = "startswith(computerDnsName,'srv-')";
    let message = err(&call_confirmed(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "filter": filter, "comment": "x"}),
    )
    .await);
    assert!(message.contains("max_devices is required"), "{message}");

    let preview = ok(&call_confirmed(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "filter": filter, "max_devices": 20, "preview": true}),
    )
    .await);
    let devices = preview["resolved_devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 8, "{preview}");
    assert!(devices.iter().all(|d| {
        d["computer_dns_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("srv-"))
            && d["found"] == true
    }));
    assert!(results(&preview).is_empty());
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/machines/{id}/{sub}"),
        0,
        "a preview acts on nothing"
    );

    let message = err(&call_confirmed(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "filter": filter, "max_devices": 5, "comment": "x"}),
    )
    .await);
    assert!(
        message.contains("more than max_devices (5)") && message.contains("nothing was done"),
        "{message}"
    );
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/machines/{id}/{sub}"),
        0
    );

    let scanned = ok(&call_confirmed(
        &client,
        "mde_run_antivirus_scan",
        json!({"tenant_id": CONTOSO, "filter": filter, "max_devices": 8, "scan_type": "Full", "comment": "sweep"}),
    )
    .await);
    assert_eq!(scanned["counts"]["done"], 8, "{scanned}");
}

#[tokio::test]
async fn targeting_mistakes_are_refused_before_anything_is_sent() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let id = "a".repeat(40);
    let cases = [
        (
            json!({"tenant_id": CONTOSO, "machine_ids": [id], "filter": "x eq 'y'", "max_devices": 1, "comment": "x"}),
            "either machine_ids or filter",
        ),
        (
            json!({"tenant_id": CONTOSO, "comment": "x"}),
            "no devices given",
        ),
        (
            json!({"tenant_id": CONTOSO, "machine_ids": [id]}),
            "comment is required",
        ),
        (
            json!({"tenant_id": CONTOSO, "machine_ids": [id], "comment": "  "}),
            "comment is required",
        ),
        (
            json!({"tenant_id": CONTOSO, "machine_ids": ["ws-fin-014"], "comment": "x"}),
            "40 hexadecimal",
        ),
        (
            json!({"tenant_id": CONTOSO, "machine_ids": [id, "b".repeat(40)], "max_devices": 1, "comment": "x"}),
            "more than max_devices",
        ),
        (
            json!({"tenant_id": CONTOSO, "machine_ids": [id], "comment": "x", "wait_seconds": 61}),
            "wait_seconds must be between 0 and 60",
        ),
        (
            json!({"tenant_id": CONTOSO, "machine_ids": [id], "comment": "x", "isolation_type": "Partial"}),
            "unknown variant `Partial`",
        ),
        (
            json!({"tenant_id": CONTOSO, "machine_ids": [id], "comment": "x", "isolaton_type": "Full"}),
            "unknown field `isolaton_type`",
        ),
        (
            json!({"tenant_id": "33333333-3333-4333-8333-333333333333", "machine_ids": [id], "comment": "x"}),
            "allow-list",
        ),
    ];
    for (arguments, expected) in cases {
        let message =
            err(&call_confirmed(&client, "mde_isolate_machines", arguments.clone()).await);
        assert!(
            message.contains(expected),
            "{arguments}: '{message}' should contain '{expected}'"
        );
    }
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/machines/{id}/{sub}"),
        0
    );
}

#[tokio::test]
async fn unknown_devices_fail_alone_and_the_others_are_done() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let mut ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    ids.push("0".repeat(40));
    let output = ok(&call_confirmed(
        &client,
        "mde_restrict_app_execution",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "INC-7", "wait_seconds": 5}),
    )
    .await);
    assert_eq!(
        (
            output["counts"]["done"].as_u64(),
            output["counts"]["failed"].as_u64()
        ),
        (Some(1), Some(1)),
        "{output}"
    );
    let failed = results(&output)
        .iter()
        .find(|d| d["outcome"] == "failed")
        .expect("failed device");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no device with this machine id")),
        "{failed}"
    );
    assert!(
        app.sandbox
            .machine_state(CONTOSO, &ids[0])
            .expect("machine")
            .code_execution_restricted
    );
    let undone = ok(&call_confirmed(
        &client,
        "mde_unrestrict_app_execution",
        json!({"tenant_id": CONTOSO, "machine_ids": [ids[0]], "comment": "INC-7 closed", "wait_seconds": 5}),
    )
    .await);
    assert_eq!(undone["counts"]["done"], 1);
    assert!(
        !app.sandbox
            .machine_state(CONTOSO, &ids[0])
            .expect("machine")
            .code_execution_restricted
    );
}

#[tokio::test]
async fn a_lost_answer_is_reported_unconfirmed_and_never_resent() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    app.sandbox.inject_fault(Fault {
        method: Some("POST".into()),
        ..Fault::new("/defender/api/machines/", FaultKind::Reset, 1)
    });
    let output = ok(&call_confirmed(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "INC-9"}),
    )
    .await);
    let device = &results(&output)[0];
    assert_eq!(device["outcome"], "unconfirmed", "{output}");
    assert!(
        device["detail"]
            .as_str()
            .is_some_and(|d| d.contains("mde_list_machine_actions")),
        "{device}"
    );
    assert_eq!(output["counts"]["unconfirmed"], 1);
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/machines/{id}/{sub}"),
        1,
        "sent once, never again"
    );
}

#[tokio::test]
async fn unmanaged_devices_are_contained_and_released() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let unmanaged = machine_ids(&client, CONTOSO, UNMANAGED, 1).await;
    let contained = ok(&call_confirmed(
        &client,
        "mde_contain_devices",
        json!({"tenant_id": CONTOSO, "machine_ids": unmanaged, "comment": "rogue device", "wait_seconds": 5}),
    )
    .await);
    assert_eq!(results(&contained)[0]["outcome"], "done", "{contained}");
    assert_eq!(
        app.sandbox
            .machine_state(CONTOSO, &unmanaged[0])
            .expect("machine")
            .isolation
            .as_deref(),
        Some("UnManagedDevice")
    );
    let released = ok(&call_confirmed(
        &client,
        "mde_uncontain_devices",
        json!({"tenant_id": CONTOSO, "machine_ids": unmanaged, "comment": "owner found", "wait_seconds": 5}),
    )
    .await);
    assert_eq!(released["counts"]["done"], 1);
    assert!(
        app.sandbox
            .machine_state(CONTOSO, &unmanaged[0])
            .expect("machine")
            .isolation
            .is_none()
    );
    // Containment is for devices that are not onboarded; Defender's reason comes back per device.
    let onboarded = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let refused = ok(&call_confirmed(
        &client,
        "mde_contain_devices",
        json!({"tenant_id": CONTOSO, "machine_ids": onboarded, "comment": "x"}),
    )
    .await);
    assert_eq!(results(&refused)[0]["outcome"], "failed");
    assert!(
        results(&refused)[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("is onboarded")),
        "{refused}"
    );
}

#[tokio::test]
async fn a_file_is_stopped_and_quarantined_by_sha1_only() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let sha1 = "3395856ce81f2b7382dee72602f798b642f14140";
    let output = ok(&call_confirmed(
        &client,
        "mde_stop_and_quarantine_file",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "sha1": sha1.to_uppercase(), "comment": "INC-3", "wait_seconds": 5}),
    )
    .await);
    assert_eq!(
        results(&output)[0]["action_status"],
        "Succeeded",
        "{output}"
    );
    assert_eq!(
        app.sandbox
            .machine_state(CONTOSO, &ids[0])
            .expect("machine")
            .quarantined_files,
        vec![sha1.to_string()]
    );
    let message = err(&call_confirmed(
        &client,
        "mde_stop_and_quarantine_file",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "sha1": "ab".repeat(32), "comment": "x"}),
    )
    .await);
    assert!(
        message.contains("not a SHA-1") && message.contains("no SHA-256"),
        "{message}"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_stop_and_quarantine_file",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "x"}),
    )
    .await);
    assert!(message.contains("missing field `sha1`"), "{message}");
}

#[tokio::test]
async fn packages_are_collected_and_devices_offboarded() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, FABRIKAM, ACTIVE, 2).await;
    let collected = ok(&call_confirmed(
        &client,
        "mde_collect_investigation_package",
        json!({"tenant_id": FABRIKAM, "machine_ids": [ids[0]], "comment": "forensics", "wait_seconds": 5}),
    )
    .await);
    assert_eq!(
        results(&collected)[0]["action_status"],
        "Succeeded",
        "{collected}"
    );
    let offboarded = ok(&call_confirmed(
        &client,
        "mde_offboard_machines",
        json!({"tenant_id": FABRIKAM, "machine_ids": [ids[1]], "comment": "decommissioned", "wait_seconds": 5}),
    )
    .await);
    assert_eq!(results(&offboarded)[0]["outcome"], "done", "{offboarded}");
    assert!(
        app.sandbox
            .machine_state(FABRIKAM, &ids[1])
            .expect("machine")
            .offboarded
    );
    // An offboarded device takes no further action; the reason is Defender's.
    let after = ok(&call_confirmed(
        &client,
        "mde_run_antivirus_scan",
        json!({"tenant_id": FABRIKAM, "machine_ids": [ids[1]], "comment": "x"}),
    )
    .await);
    assert_eq!(results(&after)[0]["outcome"], "failed");
    assert!(
        results(&after)[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("offboarded")),
        "{after}"
    );
}

#[tokio::test]
async fn device_actions_are_listed_with_their_effects() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let destructive = |name: &str| {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} is listed"));
        let annotations = tool.annotations.as_ref().expect("annotations");
        assert_eq!(annotations.read_only_hint, Some(false), "{name}");
        assert!(
            tool.description
                .as_deref()
                .is_some_and(|d| d.contains("never re-sent")),
            "{name}"
        );
        annotations.destructive_hint == Some(true)
    };
    for name in [
        "mde_isolate_machines",
        "mde_contain_devices",
        "mde_restrict_app_execution",
        "mde_stop_and_quarantine_file",
        "mde_offboard_machines",
    ] {
        assert!(destructive(name), "{name} is destructive");
    }
    for name in [
        "mde_unisolate_machines",
        "mde_uncontain_devices",
        "mde_unrestrict_app_execution",
        "mde_run_antivirus_scan",
        "mde_collect_investigation_package",
    ] {
        assert!(!destructive(name), "{name} is not destructive");
    }
    let isolate = tools
        .iter()
        .find(|t| t.name == "mde_isolate_machines")
        .expect("listed");
    let properties = isolate
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .expect("properties");
    for field in [
        "tenant_id",
        "machine_ids",
        "filter",
        "max_devices",
        "preview",
        "comment",
        "wait_seconds",
        "isolation_type",
    ] {
        assert!(properties.contains_key(field), "{field} in the schema");
    }
}
