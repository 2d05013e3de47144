//! Defender XDR incidents (Graph v1.0) through the MCP client against the sandbox.

use crate::common;

use std::collections::HashSet;

use common::*;
use sandbox::SandboxOptions;
use serde_json::{Value, json};

fn incidents(output: &Value) -> &Vec<Value> {
    output["incidents"].as_array().expect("incidents")
}

async fn first_active_incident(client: &McpClient) -> String {
    let output = ok(&call_confirmed(
        client,
        "mde_list_incidents",
        json!({"tenant_id": CONTOSO, "status": "active", "limit": 1}),
    )
    .await);
    incidents(&output)[0]["id"]
        .as_str()
        .expect("an active incident")
        .to_string()
}

#[tokio::test]
async fn incidents_are_listed_filtered_and_paged() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let all = ok(&call_confirmed(
        &client,
        "mde_list_incidents",
        json!({"tenant_id": CONTOSO, "limit": 200}),
    )
    .await);
    let total = incidents(&all).len();
    assert!(total >= 10, "{all}");
    let mut seen = HashSet::new();
    let mut page = ok(&call_confirmed(
        &client,
        "mde_list_incidents",
        json!({"tenant_id": CONTOSO, "limit": 4}),
    )
    .await);
    loop {
        for incident in incidents(&page) {
            assert!(seen.insert(incident["id"].as_str().expect("id").to_string()));
        }
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_string) else {
            break;
        };
        page = ok(&call_confirmed(
            &client,
            "mde_list_incidents",
            json!({"tenant_id": CONTOSO, "cursor": cursor, "limit": 4}),
        )
        .await);
    }
    assert_eq!(seen.len(), total);

    let active = ok(&call_confirmed(
        &client,
        "mde_list_incidents",
        json!({"tenant_id": CONTOSO, "status": "active", "severity": "high", "limit": 200}),
    )
    .await);
    assert!(
        incidents(&active)
            .iter()
            .all(|i| i["status"] == "active" && i["severity"] == "high"),
        "{active}"
    );
    let recent = ok(&call_confirmed(
        &client,
        "mde_list_incidents",
        json!({"tenant_id": CONTOSO, "since": "PT1M"}),
    )
    .await);
    assert!(incidents(&recent).is_empty());

    let message = err(&call_confirmed(
        &client,
        "mde_list_incidents",
        json!({"tenant_id": CONTOSO, "status": "open"}),
    )
    .await);
    assert!(message.contains("unknown variant `open`"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_list_incidents",
        json!({"tenant_id": CONTOSO, "limit": 500}),
    )
    .await);
    assert!(message.contains("between 1 and 200"), "{message}");
}

#[tokio::test]
async fn an_incident_comes_with_its_alerts_and_evidence() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let id = first_active_incident(&client).await;
    let output = ok(&call_confirmed(
        &client,
        "mde_get_incident",
        json!({"tenant_id": CONTOSO, "incident_id": id}),
    )
    .await);
    assert_eq!(output["incident"]["id"], id.as_str());
    let alerts = output["alerts"].as_array().expect("alerts");
    assert!(!alerts.is_empty(), "{output}");
    let kinds: HashSet<&str> = alerts
        .iter()
        .flat_map(|a| a["evidence"].as_array().expect("evidence"))
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains("device") && kinds.contains("user"),
        "{kinds:?}"
    );
    let device = alerts[0]["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .find(|e| e["kind"] == "device")
        .expect("device evidence");
    assert!(
        device["detail"]
            .as_str()
            .is_some_and(|d| d.contains("contoso.local")),
        "{device}"
    );

    let without = ok(&call_confirmed(
        &client,
        "mde_get_incident",
        json!({"tenant_id": CONTOSO, "incident_id": id, "include_alerts": false}),
    )
    .await);
    assert!(without["alerts"].as_array().expect("alerts").is_empty());
    let message = err(&call_confirmed(
        &client,
        "mde_get_incident",
        json!({"tenant_id": CONTOSO, "incident_id": "1"}),
    )
    .await);
    assert!(message.contains("no incident 1"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_get_incident",
        json!({"tenant_id": CONTOSO, "incident_id": "INC-1"}),
    )
    .await);
    assert!(message.contains("not an incident id"), "{message}");
}

#[tokio::test]
async fn an_incident_is_worked_and_resolved() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let id = first_active_incident(&client).await;
    let working = ok(&call_confirmed(
        &client,
        "mde_update_incident",
        json!({"tenant_id": CONTOSO, "incident_id": id, "status": "inProgress", "assigned_to": "analyst@contoso.com", "custom_tags": ["ransomware", "P1"]}),
    )
    .await);
    assert_eq!(working["incident"]["status"], "inProgress", "{working}");
    assert_eq!(working["incident"]["assigned_to"], "analyst@contoso.com");
    assert_eq!(
        working["incident"]["custom_tags"],
        json!(["ransomware", "P1"])
    );

    let resolved = ok(&call_confirmed(
        &client,
        "mde_update_incident",
        json!({"tenant_id": CONTOSO, "incident_id": id, "status": "resolved", "classification": "truePositive",
               "determination": "confirmedActivity"}),
    )
    .await);
    assert_eq!(resolved["incident"]["status"], "resolved");
    assert_eq!(resolved["incident"]["classification"], "truePositive");
    assert_eq!(resolved["incident"]["determination"], "confirmedActivity");
    let read = ok(&call_confirmed(
        &client,
        "mde_get_incident",
        json!({"tenant_id": CONTOSO, "incident_id": id, "include_alerts": false}),
    )
    .await);
    assert_eq!(
        read["incident"]["assigned_to"], "analyst@contoso.com",
        "earlier changes stay"
    );

    // An empty owner unassigns: Graph's "null if no owner is assigned".
    let unassigned = ok(&call_confirmed(
        &client,
        "mde_update_incident",
        json!({"tenant_id": CONTOSO, "incident_id": id, "assigned_to": " "}),
    )
    .await);
    assert!(
        unassigned["incident"]["assigned_to"].is_null(),
        "{unassigned}"
    );

    let cases = [
        (
            json!({"tenant_id": CONTOSO, "incident_id": id}),
            "nothing to update",
        ),
        (
            json!({"tenant_id": CONTOSO, "incident_id": id, "status": "redirected"}),
            "cannot be set",
        ),
        (
            json!({"tenant_id": CONTOSO, "incident_id": id, "status": "awaitingAction"}),
            "only Microsoft Defender Experts set it",
        ),
        (
            json!({"tenant_id": CONTOSO, "incident_id": id, "determination": "confirmedUserActivity"}),
            "calls it confirmedActivity",
        ),
        (
            json!({"tenant_id": CONTOSO, "incident_id": id, "resolving_comment": "why"}),
            "mde_add_incident_comment",
        ),
        (
            json!({"tenant_id": CONTOSO, "incident_id": id, "severity": "high"}),
            "severity is no longer accepted",
        ),
        (
            json!({"tenant_id": CONTOSO, "incident_id": id, "determination": "clean"}),
            "unknown variant `clean`",
        ),
        (
            json!({"tenant_id": CONTOSO, "incident_id": id, "custom_tags": [""]}),
            "custom_tags entry",
        ),
        (
            json!({"tenant_id": CONTOSO, "incident_id": "1", "status": "active"}),
            "no incident 1",
        ),
    ];
    for (arguments, expected) in cases {
        let message = err(&call_confirmed(&client, "mde_update_incident", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
}

#[tokio::test]
async fn comments_are_added_once() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let id = first_active_incident(&client).await;
    let first = ok(&call_confirmed(
        &client,
        "mde_add_incident_comment",
        json!({"tenant_id": CONTOSO, "incident_id": id, "comment": "Isolated the device at 03:12"}),
    )
    .await);
    let second = ok(&call_confirmed(
        &client,
        "mde_add_incident_comment",
        json!({"tenant_id": CONTOSO, "incident_id": id, "comment": "Package collected"}),
    )
    .await);
    assert_eq!(first["comments"].as_array().expect("comments").len(), 1);
    let comments = second["comments"].as_array().expect("comments");
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[1]["comment"], "Package collected");
    let read = ok(&call_confirmed(
        &client,
        "mde_get_incident",
        json!({"tenant_id": CONTOSO, "incident_id": id, "include_alerts": false}),
    )
    .await);
    assert_eq!(read["comments"].as_array().expect("comments").len(), 2);

    // A comment whose answer is lost is not posted again (it would appear twice).
    app.sandbox.inject_fault(sandbox::Fault {
        method: Some("POST".into()),
        ..sandbox::Fault::new(
            "/graph/v1.0/security/incidents/",
            sandbox::FaultKind::Reset,
            1,
        )
    });
    let message = err(&call_confirmed(
        &client,
        "mde_add_incident_comment",
        json!({"tenant_id": CONTOSO, "incident_id": id, "comment": "Lost"}),
    )
    .await);
    assert!(message.contains("may have been carried out"), "{message}");
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/graph/{version}/security/incidents/{id}/comments"),
        3
    );

    let message = err(&call_confirmed(
        &client,
        "mde_add_incident_comment",
        json!({"tenant_id": CONTOSO, "incident_id": id, "comment": " "}),
    )
    .await);
    assert!(message.contains("comment is empty"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_add_incident_comment",
        json!({"tenant_id": CONTOSO, "incident_id": "1", "comment": "x"}),
    )
    .await);
    assert!(message.contains("no incident 1"), "{message}");
}

#[tokio::test]
async fn an_app_without_the_incident_write_permission_is_told_which_one() {
    // security-incident-update-permissions.md: the update needs SecurityIncident.ReadWrite.All
    // (listing also accepts SecurityIncident.Read.All, which the app keeps).
    let options = SandboxOptions {
        withheld_permissions: vec!["SecurityIncident.ReadWrite.All".into()],
        ..fast_sandbox_options()
    };
    let app = TestApp::start_with(options, &[]).await;
    let client = app.client().await;
    let id = first_active_incident(&client).await;
    let message = err(&call_confirmed(
        &client,
        "mde_update_incident",
        json!({"tenant_id": CONTOSO, "incident_id": id, "status": "inProgress"}),
    )
    .await);
    assert!(
        message.contains("SecurityIncident.ReadWrite.All"),
        "{message}"
    );
    assert_eq!(
        app.sandbox
            .stats()
            .count("PATCH", "/graph/{version}/security/incidents/{id}"),
        1,
        "a refusal for a missing permission is not retried"
    );
}

#[tokio::test]
async fn listings_follow_next_links_page_by_page() {
    // Graph's $top is a page size: with pages of 3, a listing of 10 takes several pages.
    let options = SandboxOptions {
        page_size: 3,
        ..fast_sandbox_options()
    };
    let app = TestApp::start_with(options, &[]).await;
    let client = app.client().await;
    let listed = ok(&call_confirmed(
        &client,
        "mde_list_incidents",
        json!({"tenant_id": CONTOSO, "limit": 10}),
    )
    .await);
    assert_eq!(incidents(&listed).len(), 10, "{listed}");
    assert!(listed["next_cursor"].is_string());
    assert!(
        app.sandbox
            .stats()
            .count("GET", "/graph/{version}/security/incidents")
            >= 4
    );
}
