//! Custom detection rules (Graph beta) through the MCP client against the sandbox.

mod common;

use common::*;
use serde_json::{Value, json};

fn rules(output: &Value) -> &Vec<Value> {
    output["rules"].as_array().expect("rules")
}

fn new_rule(name: &str) -> Value {
    json!({
        "tenant_id": CONTOSO,
        "display_name": name,
        "query": "DeviceProcessEvents | where FileName =~ 'rundll32.exe' and ProcessCommandLine has 'javascript' | project Timestamp, DeviceId, DeviceName, ReportId",
        "period": "1H",
        "alert_description": "rundll32 running script",
        "severity": "high",
        "category": "Execution",
        "mitre_techniques": ["T1218.011"]
    })
}

#[tokio::test]
async fn rules_are_listed_and_read_without_changing_anything() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let listed = ok(&call_confirmed(
        &client,
        "mde_list_detection_rules",
        json!({"tenant_id": CONTOSO}),
    )
    .await);
    assert_eq!(rules(&listed).len(), 4, "{listed}");
    let disabled = rules(&listed)
        .iter()
        .find(|r| r["enabled"] == false)
        .expect("a disabled rule");
    assert_eq!(disabled["period"], "24H");
    let id = rules(&listed)[0]["id"].as_str().expect("id").to_string();
    let rule = ok(&call_confirmed(
        &client,
        "mde_get_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": id}),
    )
    .await);
    assert!(
        rule["rule"]["queryCondition"]["queryText"]
            .as_str()
            .is_some_and(|q| q.contains("DeviceProcessEvents"))
    );
    let paged = ok(&call_confirmed(
        &client,
        "mde_list_detection_rules",
        json!({"tenant_id": CONTOSO, "limit": 3}),
    )
    .await);
    assert!(paged["next_cursor"].is_string());
    let stats = app.sandbox.stats();
    let writes: u64 = ["POST", "PATCH", "DELETE"]
        .iter()
        .map(|m| {
            stats.count(m, "/graph/{version}/security/rules/detectionRules/{id}")
                + stats.count(m, "/graph/{version}/security/rules/detectionRules")
        })
        .sum();
    assert_eq!(writes, 0, "a read never writes");

    let message = err(&call_confirmed(
        &client,
        "mde_get_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": "1"}),
    )
    .await);
    assert!(message.contains("no detection rule 1"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_get_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": "abc"}),
    )
    .await);
    assert!(message.contains("not a detection rule id"), "{message}");
}

#[tokio::test]
async fn a_rule_is_created_updated_and_deleted() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let created = ok(&call_confirmed(
        &client,
        "mde_create_detection_rule",
        new_rule("Rundll32 script execution"),
    )
    .await);
    let rule = &created["rule"];
    let id = rule["id"].as_str().expect("id").to_string();
    assert_eq!(rule["isEnabled"], true);
    assert_eq!(rule["schedule"]["period"], "1H");
    assert_eq!(
        rule["detectionAction"]["alertTemplate"]["title"], "Rundll32 script execution",
        "the title defaults to the name"
    );
    assert_eq!(
        rule["detectionAction"]["alertTemplate"]["mitreTechniques"],
        json!(["T1218.011"])
    );

    let conflict = err(&call_confirmed(
        &client,
        "mde_create_detection_rule",
        new_rule("Rundll32 script execution"),
    )
    .await);
    assert!(conflict.contains("already exists"), "{conflict}");

    let paused = ok(&call_confirmed(
        &client,
        "mde_update_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": id, "enabled": false, "severity": "medium", "period": "0"}),
    )
    .await);
    assert_eq!(paused["rule"]["isEnabled"], false);
    assert_eq!(paused["rule"]["schedule"]["period"], "0");
    assert_eq!(
        paused["rule"]["detectionAction"]["alertTemplate"]["severity"],
        "medium"
    );
    assert_eq!(
        paused["rule"]["detectionAction"]["alertTemplate"]["category"], "Execution",
        "untouched fields stay"
    );

    let message = err(&call_confirmed(
        &client,
        "mde_update_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": id}),
    )
    .await);
    assert!(message.contains("nothing to change"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_update_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": id, "query": ".set-or-append T <| DeviceInfo"}),
    )
    .await);
    assert!(
        message.contains("control (management) command"),
        "{message}"
    );

    let deleted = ok(&call_confirmed(
        &client,
        "mde_delete_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": id}),
    )
    .await);
    assert_eq!(deleted["deleted_rule_id"], id.as_str());
    let again = err(&call_confirmed(
        &client,
        "mde_delete_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": id}),
    )
    .await);
    assert!(again.contains("no detection rule"), "{again}");
    let listed = ok(&call_confirmed(
        &client,
        "mde_list_detection_rules",
        json!({"tenant_id": CONTOSO}),
    )
    .await);
    assert_eq!(rules(&listed).len(), 4);
}

#[tokio::test]
async fn bad_rule_definitions_are_refused() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let mut control = new_rule("x");
    control["query"] = json!(".drop table DeviceEvents");
    let mut technique = new_rule("y");
    technique["mitre_techniques"] = json!(["Execution"]);
    let mut period = new_rule("z");
    period["period"] = json!("2H");
    let mut syntax = new_rule("w");
    syntax["query"] = json!("DeviceProcessEvents | where");
    for (arguments, expected) in [
        (control, ".drop"),
        (technique, "MITRE ATT&CK"),
        (period, "unknown variant `2H`"),
    ] {
        let message = err(&call_confirmed(&client, "mde_create_detection_rule", arguments).await);
        assert!(message.contains(expected), "{message}");
    }
    let message = err(&call_confirmed(&client, "mde_create_detection_rule", syntax).await);
    assert!(
        message.contains("not a valid query"),
        "the service's own check comes back: {message}"
    );
}
