//! Defender alerts through the MCP client against the sandbox.

use crate::common;

use std::collections::HashSet;

use common::*;
use serde_json::{Value, json};

fn alerts(output: &Value) -> &Vec<Value> {
    output["alerts"].as_array().expect("alerts")
}

#[tokio::test]
async fn alerts_are_listed_filtered_and_paged() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let mut seen = HashSet::new();
    let mut page = ok(&call_confirmed(
        &client,
        "mde_list_alerts",
        json!({"tenant_id": CONTOSO, "limit": 7}),
    )
    .await);
    loop {
        for alert in alerts(&page) {
            assert!(seen.insert(alert["id"].as_str().expect("id").to_string()));
        }
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_string) else {
            break;
        };
        page = ok(&call_confirmed(
            &client,
            "mde_list_alerts",
            json!({"tenant_id": CONTOSO, "cursor": cursor, "limit": 7}),
        )
        .await);
    }
    assert_eq!(seen.len(), 30, "the sandbox seeds 30 alerts per tenant");

    let high = ok(&call_confirmed(
        &client,
        "mde_list_alerts",
        json!({"tenant_id": CONTOSO, "severity": "High", "status": "New", "limit": 500}),
    )
    .await);
    assert!(
        alerts(&high)
            .iter()
            .all(|a| a["severity"] == "High" && a["status"] == "New"),
        "{high}"
    );
    let machine = alerts(&high)
        .first()
        .or(alerts(&page).first())
        .expect("an alert")["machineId"]
        .as_str()
        .expect("machine")
        .to_string();
    let on_device = ok(&call_confirmed(
        &client,
        "mde_list_alerts",
        json!({"tenant_id": CONTOSO, "machine_id": machine}),
    )
    .await);
    assert!(
        !alerts(&on_device).is_empty()
            && alerts(&on_device)
                .iter()
                .all(|a| a["machineId"] == machine.as_str())
    );
    // get-alerts.md does not document machineId in $filter: the device's own alert list is read
    // (get-machine-related-alerts.md) and the other filters are applied to it here.
    assert_eq!(
        app.sandbox
            .stats()
            .count("GET", "/defender/api/machines/{id}/{sub}"),
        1,
        "the device's alerts come from /api/machines/{{id}}/alerts"
    );
    let high_on_device = ok(&call_confirmed(
        &client,
        "mde_list_alerts",
        json!({"tenant_id": CONTOSO, "machine_id": machine, "severity": "High", "limit": 1}),
    )
    .await);
    assert!(
        alerts(&high_on_device)
            .iter()
            .all(|a| a["severity"] == "High" && a["machineId"] == machine.as_str()),
        "{high_on_device}"
    );
    assert!(
        high_on_device["more_on_device"].is_u64(),
        "{high_on_device}"
    );
    let recent = ok(&call_confirmed(
        &client,
        "mde_list_alerts",
        json!({"tenant_id": CONTOSO, "since": "PT1M", "limit": 500}),
    )
    .await);
    assert!(
        alerts(&recent).is_empty(),
        "seeded alerts are older than a minute"
    );
    let week = ok(&call_confirmed(
        &client,
        "mde_list_alerts",
        json!({"tenant_id": CONTOSO, "since": "P8D", "limit": 500}),
    )
    .await);
    assert_eq!(alerts(&week).len(), 30);

    let message = err(&call_confirmed(
        &client,
        "mde_list_alerts",
        json!({"tenant_id": CONTOSO, "severity": "Critical"}),
    )
    .await);
    assert!(message.contains("unknown variant `Critical`"), "{message}");
}

#[tokio::test]
async fn one_alert_comes_with_its_evidence() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let listed = ok(&call_confirmed(
        &client,
        "mde_list_alerts",
        json!({"tenant_id": FABRIKAM, "limit": 1}),
    )
    .await);
    let id = alerts(&listed)[0]["id"].as_str().expect("id").to_string();
    let output = ok(&call_confirmed(
        &client,
        "mde_get_alert",
        json!({"tenant_id": FABRIKAM, "alert_id": id}),
    )
    .await);
    let alert = &output["alert"];
    assert_eq!(alert["id"], id.as_str());
    assert!(alert["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(
        alert["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["entityType"] == "User")),
        "{alert}"
    );
    assert!(
        !alert["mitreTechniques"]
            .as_array()
            .expect("techniques")
            .is_empty()
    );

    let message = err(&call_confirmed(
        &client,
        "mde_get_alert",
        json!({"tenant_id": CONTOSO, "alert_id": id}),
    )
    .await);
    assert!(
        message.contains("no alert"),
        "alerts belong to their tenant: {message}"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_get_alert",
        json!({"tenant_id": FABRIKAM, "alert_id": "../alerts"}),
    )
    .await);
    assert!(message.contains("not an alert id"), "{message}");
}
