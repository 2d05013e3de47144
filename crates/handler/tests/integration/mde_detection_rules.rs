//! Custom detection rules (Graph beta) through the MCP client against the sandbox.

use crate::common;

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
        .find(|r| r["status"] == "disabled")
        .expect("a disabled rule");
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["frequency"], "P1D");
    let auto = rules(&listed)
        .iter()
        .find(|r| r["status"] == "autoDisabled")
        .expect("a rule the service turned off");
    assert_eq!(auto["enabled"], false);
    // Rule ids are strings chosen at creation, not only digits.
    let id = "encoded-powershell".to_string();
    assert!(rules(&listed).iter().any(|r| r["id"] == id.as_str()));
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
    assert_eq!(rule["rule"]["status"], "enabled");
    assert_eq!(rule["rule"]["schedule"]["frequency"], "PT1H");
    assert_eq!(
        rule["rule"]["detectionAction"]["alertTemplate"]["tactics"][0]["tactic"],
        "Execution"
    );
    let numeric = rules(&listed)
        .iter()
        .filter_map(|r| r["id"].as_str())
        .find(|i| i.bytes().all(|b| b.is_ascii_digit()))
        .expect("a rule with a numeric id")
        .to_string();
    ok(&call_confirmed(
        &client,
        "mde_get_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": numeric}),
    )
    .await);
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
        json!({"tenant_id": CONTOSO, "rule_id": "a/../encoded-powershell"}),
    )
    .await);
    assert!(
        message.contains("no detection rule a/../encoded-powershell"),
        "an id stays one path segment: {message}"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_get_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": " "}),
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
    assert_eq!(
        id, "rundll32-script-execution",
        "the id is made from the name"
    );
    assert_eq!(rule["status"], "enabled");
    assert_eq!(rule["schedule"]["frequency"], "PT1H");
    assert_eq!(
        rule["detectionAction"]["alertTemplate"]["title"], "Rundll32 script execution",
        "the title defaults to the name"
    );
    assert_eq!(
        rule["detectionAction"]["alertTemplate"]["tactics"],
        json!([{"tactic": "Execution", "techniques": [{"technique": "T1218", "subTechniques": ["T1218.011"]}]}])
    );
    assert_eq!(
        rule["detectionAction"]["alertTemplate"]["entityMappings"],
        json!({"hosts": [{"deviceIdColumn": "DeviceId"}]})
    );
    let mut named = new_rule("Rundll32 again");
    named["rule_id"] = json!("rundll32.v2");
    let second = ok(&call_confirmed(&client, "mde_create_detection_rule", named).await);
    assert_eq!(second["rule"]["id"], "rundll32.v2");

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
        json!({"tenant_id": CONTOSO, "rule_id": id, "enabled": false, "severity": "medium", "period": "24H"}),
    )
    .await);
    assert_eq!(paused["rule"]["status"], "disabled");
    assert_eq!(paused["rule"]["schedule"]["frequency"], "P1D");
    assert_eq!(
        paused["rule"]["detectionAction"]["alertTemplate"]["severity"],
        "medium"
    );
    assert_eq!(
        paused["rule"]["detectionAction"]["alertTemplate"]["tactics"][0]["tactic"], "Execution",
        "untouched fields stay"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_update_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": id, "period": "0"}),
    )
    .await);
    assert!(
        message.contains("no longer accepted") && message.contains("1H, 3H, 12H or 24H"),
        "{message}"
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
    assert_eq!(rules(&listed).len(), 5, "the second rule stays");
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
    let mut untied = new_rule("v");
    untied.as_object_mut().expect("object").remove("category");
    let mut bad_id = new_rule("u");
    bad_id["rule_id"] = json!("a/b");
    for (arguments, expected) in [
        (control, ".drop"),
        (technique, "MITRE ATT&CK"),
        (period, "unknown variant `2H`"),
        (untied, "need category"),
        (bad_id, "rule_id must be"),
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

/// The person confirming a deletion sees the rule by name with its state, in the tenant by name;
/// a rule that is not there is refused before anyone is asked.
#[tokio::test]
async fn a_deletion_names_the_rule_and_an_unknown_rule_is_refused_unasked() {
    let app =
        TestApp::start_with(fast_sandbox_options(), &[("APPROVAL_FALLBACK", "confirm")]).await;
    let client = app.client().await;
    let rule = ok(&call(
        &client,
        "mde_get_detection_rule",
        json!({"tenant_id": CONTOSO, "rule_id": "encoded-powershell"}),
    )
    .await)["rule"]
        .clone();
    let name = rule["displayName"].as_str().expect("display name");
    let state = rule["status"].as_str().expect("status");
    let arguments = json!({"tenant_id": CONTOSO, "rule_id": "encoded-powershell"});
    let asked = err(&call(&client, "mde_delete_detection_rule", arguments.clone()).await);
    for expected in [
        "CONFIRMATION REQUIRED",
        "Tenant: Contoso",
        format!("custom detection rule {name} (id encoded-powershell)").as_str(),
        format!("{state} -> deleted").as_str(),
    ] {
        assert!(asked.contains(expected), "'{expected}' in {asked}");
    }
    let deleted =
        ok(&call_confirmed(&client, "mde_delete_detection_rule", arguments.clone()).await);
    assert_eq!(deleted["deleted_rule_id"], "encoded-powershell");

    let refused = err(&call(&client, "mde_delete_detection_rule", arguments).await);
    assert!(
        refused.contains("no detection rule encoded-powershell")
            && !refused.contains("CONFIRMATION REQUIRED"),
        "{refused}"
    );
}
