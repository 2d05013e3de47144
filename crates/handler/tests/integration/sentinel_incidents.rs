//! Sentinel incidents through the MCP client: list with filters and cursor, get with alerts
//! and entities, update (close, assign, severity, labels) with the etag check, comments.

use crate::common;
use crate::sentinel_common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use sentinel_common::{DirectArm, SI_VERSION, slow_next_put, touch, workspace};
use serde_json::{Value, json};

fn incidents(output: &Value) -> Vec<Value> {
    output["incidents"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn incidents_are_filtered_ordered_and_paged() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let first = ok(&call(
        &client,
        "sentinel_list_incidents",
        json!({"tenant_id": FABRIKAM, "limit": 20}),
    )
    .await);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("30 incidents: more remain")
        .to_string();
    let second = ok(&call(
        &client,
        "sentinel_list_incidents",
        json!({"tenant_id": FABRIKAM, "cursor": cursor}),
    )
    .await);
    let all: Vec<Value> = incidents(&first)
        .into_iter()
        .chain(incidents(&second))
        .collect();
    assert_eq!(all.len(), 30);
    assert_eq!(
        all.iter()
            .map(|i| i["incident_id"].as_str().expect("id"))
            .collect::<HashSet<_>>()
            .len(),
        30,
        "nothing twice"
    );
    let created: Vec<&str> = all
        .iter()
        .map(|i| i["created"].as_str().expect("created"))
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let open = ok(&call(&client, "sentinel_list_incidents", json!({"tenant_id": FABRIKAM, "status": ["New", "Active"], "severity": ["High", "Medium"], "order_by": "oldest", "limit": 200})).await);
    let open = incidents(&open);
    assert!(!open.is_empty());
    assert!(
        open.iter()
            .all(|i| i["status"] != "Closed"
                && (i["severity"] == "High" || i["severity"] == "Medium"))
    );
    assert!(
        open.windows(2)
            .all(|w| w[0]["created"].as_str() <= w[1]["created"].as_str()),
        "oldest first"
    );
    let assigned = ok(&call(&client, "sentinel_list_incidents", json!({"tenant_id": FABRIKAM, "filter": "properties/owner/ownerType eq 'User'", "limit": 200})).await);
    assert!(incidents(&assigned).iter().all(|i| i["owner"].is_string()));

    for (arguments, expected) in [
        (
            json!({"tenant_id": FABRIKAM, "status": ["Open"]}),
            "unknown variant `Open`",
        ),
        (
            json!({"tenant_id": FABRIKAM, "since": "last week"}),
            "since 'last week' is not understood",
        ),
        (
            json!({"tenant_id": FABRIKAM, "filter": "properties/status eq"}),
            "Invalid $filter",
        ),
        (
            json!({"tenant_id": FABRIKAM, "cursor": "x", "status": ["New"]}),
            "either filters/order_by or cursor",
        ),
        (
            json!({"tenant_id": FABRIKAM, "limit": 0}),
            "between 1 and 200",
        ),
    ] {
        let message = err(&call(&client, "sentinel_list_incidents", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
    // A cursor continues only its own list.
    let contoso = ok(&call(
        &client,
        "sentinel_list_incidents",
        json!({"tenant_id": CONTOSO, "workspace": workspace(&app, 0, 0).name, "limit": 1}),
    )
    .await);
    let contoso_cursor = contoso["next_cursor"].as_str().expect("cursor");
    let message = err(&call(&client, "sentinel_list_incidents", json!({"tenant_id": CONTOSO, "workspace": workspace(&app, 0, 1).name, "cursor": contoso_cursor})).await);
    assert!(message.contains("continues a different list"), "{message}");
}

#[tokio::test]
async fn an_incident_comes_with_its_alerts_and_entities() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let listed = ok(&call(
        &client,
        "sentinel_list_incidents",
        json!({"tenant_id": FABRIKAM, "limit": 1}),
    )
    .await);
    let first = &incidents(&listed)[0];
    let number = first["number"].as_i64().expect("number");
    let by_number = ok(&call(
        &client,
        "sentinel_get_incident",
        json!({"tenant_id": FABRIKAM, "incident": format!("#{number}")}),
    )
    .await);
    assert_eq!(by_number["incident"]["incident_id"], first["incident_id"]);
    assert_eq!(
        by_number["alerts"].as_array().expect("alerts").len() as i64,
        first["alerts"].as_i64().expect("count")
    );
    assert_eq!(by_number["alerts"][0]["name"], first["title"]);
    let kinds: Vec<&str> = by_number["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["Host", "Account", "Ip"]);
    assert!(by_number["entities"][1]["properties"]["aadUserId"].is_string());
    let by_id = ok(&call(
        &client,
        "sentinel_get_incident",
        json!({"tenant_id": FABRIKAM, "incident": first["incident_id"]}),
    )
    .await);
    assert_eq!(by_id["incident"]["number"], number);

    let message = err(&call(
        &client,
        "sentinel_get_incident",
        json!({"tenant_id": FABRIKAM, "incident": "999999"}),
    )
    .await);
    assert!(message.contains("no incident 999999"), "{message}");
    let message = err(&call(
        &client,
        "sentinel_get_incident",
        json!({"tenant_id": FABRIKAM, "incident": "the phishing one"}),
    )
    .await);
    assert!(
        message.contains("neither an incident number nor an incident id"),
        "{message}"
    );
}

#[tokio::test]
async fn incidents_are_closed_assigned_and_commented() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let open = ok(&call(
        &client,
        "sentinel_list_incidents",
        json!({"tenant_id": FABRIKAM, "status": ["New"], "limit": 2}),
    )
    .await);
    let open = incidents(&open);
    let number = open[0]["number"].as_i64().expect("number").to_string();
    let base = json!({"tenant_id": FABRIKAM, "incident": number});
    let with = |extra: Value| {
        let mut arguments = base.clone();
        arguments
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        arguments
    };

    let assigned = ok(&call(&client, "sentinel_update_incident", with(json!({"status": "Active", "owner_upn": "ana.lopez@fabrikam.com", "add_labels": ["phishing"]}))).await);
    assert_eq!(assigned["incident"]["status"], "Active");
    assert_eq!(assigned["incident"]["owner"], "ana.lopez@fabrikam.com");
    assert_eq!(assigned["incident"]["labels"], json!(["phishing"]));
    assert!(
        assigned["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c == "status: New → Active"),
        "{assigned}"
    );
    let same = ok(&call(
        &client,
        "sentinel_update_incident",
        with(json!({"status": "Active"})),
    )
    .await);
    assert_eq!(same["changes"], json!([]));

    for (extra, expected) in [
        (json!({"status": "Closed"}), "needs a classification"),
        (
            json!({"status": "Closed", "classification": "FalsePositive"}),
            "needs a classification_reason",
        ),
        (
            json!({"status": "Closed", "classification": "TruePositive", "classification_reason": "InaccurateData"}),
            "does not go with TruePositive",
        ),
        (
            json!({"classification": "TruePositive"}),
            "add status Closed",
        ),
        (json!({"owner_upn": "ana"}), "not a user principal name"),
        (
            json!({"owner_upn": "ana@fabrikam.com", "unassign": true}),
            "not both",
        ),
        (json!({}), "nothing to change"),
    ] {
        let message = err(&call(&client, "sentinel_update_incident", with(extra.clone())).await);
        assert!(message.contains(expected), "{extra}: {message}");
    }

    let closed = ok(&call(
        &client,
        "sentinel_update_incident",
        with(json!({"status": "Closed", "classification": "BenignPositive", "classification_comment": "Pen test", "severity": "Low"})),
    )
    .await);
    assert_eq!(closed["incident"]["status"], "Closed");
    assert_eq!(
        closed["incident"]["classification_reason"], "SuspiciousButExpected",
        "the only reason for BenignPositive"
    );
    assert_eq!(closed["incident"]["severity"], "Low");

    let comment = ok(&call(
        &client,
        "sentinel_add_incident_comment",
        with(json!({"message": "Closed after review:\nauthorised pen test."})),
    )
    .await);
    let comment_id = comment["comment"]["comment_id"]
        .as_str()
        .expect("id")
        .to_string();
    let comments = ok(&call(&client, "sentinel_list_incident_comments", base.clone()).await);
    let listed: Vec<&Value> = comments["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter(|c| c["comment_id"] == comment_id.as_str())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["message"],
        "Closed after review:\nauthorised pen test."
    );
    let message = err(&call(
        &client,
        "sentinel_add_incident_comment",
        with(json!({"message": "  "})),
    )
    .await);
    assert!(message.contains("message is empty"), "{message}");
    let message = err(&call(
        &client,
        "sentinel_add_incident_comment",
        with(json!({"message": "x".repeat(30_001)})),
    )
    .await);
    assert!(message.contains("at most 30000"), "{message}");
    let message = err(&call(
        &client,
        "sentinel_list_incident_comments",
        json!({"tenant_id": FABRIKAM, "incident": "424242"}),
    )
    .await);
    assert!(message.contains("no incident 424242"), "{message}");
}

#[tokio::test]
async fn an_incident_changed_meanwhile_is_not_overwritten() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let open = ok(&call(
        &client,
        "sentinel_list_incidents",
        json!({"tenant_id": FABRIKAM, "status": ["New"], "limit": 1}),
    )
    .await);
    let id = incidents(&open)[0]["incident_id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!(
        "{}/providers/Microsoft.SecurityInsights/incidents/{id}",
        DirectArm::workspace_path(&workspace(&app, 1, 0))
    );
    let arm = DirectArm::fabrikam(&app).await;
    slow_next_put(&app, format!("/arm{path}"), Duration::from_millis(1500));
    let update = call(
        &client,
        "sentinel_update_incident",
        json!({"tenant_id": FABRIKAM, "incident": id, "severity": "High"}),
    );
    let colleague = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        touch(&arm, &path, SI_VERSION, |incident| {
            // Written back as a client must: without `IncidentProperties`' read-only members
            // and each label's read-only `labelType`.
            let properties = incident["properties"].as_object_mut().expect("properties");
            for key in [
                "additionalData",
                "createdTimeUtc",
                "incidentUrl",
                "providerName",
                "providerIncidentId",
                "incidentNumber",
                "lastModifiedTimeUtc",
                "relatedAnalyticRuleIds",
            ] {
                properties.remove(key);
            }
            for label in properties
                .get_mut("labels")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                label.as_object_mut().expect("label").remove("labelType");
            }
            incident["properties"]["status"] = json!("Active")
        })
        .await;
    };
    let (result, ()) = tokio::join!(update, colleague);
    let message = err(&result);
    assert!(
        message.contains("changed by someone else") && message.contains("nothing was overwritten"),
        "{message}"
    );
    let (_, now) = arm.get(&path, SI_VERSION).await;
    assert_eq!(now["properties"]["status"], "Active");
}
