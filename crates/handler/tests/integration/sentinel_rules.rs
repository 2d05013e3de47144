//! Analytics rules and rule templates through the MCP client, including the etag check that
//! keeps a concurrent change from being overwritten.

use crate::common;
use crate::sentinel_common;

use std::time::Duration;

use common::*;
use sentinel_common::{DirectArm, SI_RULES_VERSION, slow_next_put, touch, workspace};
use serde_json::{Value, json};

fn rules_of(output: &Value) -> Vec<Value> {
    output["rules"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn rules_are_listed_filtered_and_read() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let all = ok(&call(
        &client,
        "sentinel_list_analytics_rules",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    assert_eq!(all["total_matching"], 20);
    assert_eq!(all["disabled"], 3);
    let nrt = ok(&call(
        &client,
        "sentinel_list_analytics_rules",
        json!({"tenant_id": FABRIKAM, "kind": "nrt", "enabled": true}),
    )
    .await);
    assert!(
        rules_of(&nrt)
            .iter()
            .all(|r| r["kind"] == "NRT" && r["enabled"] == true)
    );
    assert_eq!(nrt["total_matching"], 2);
    let named = ok(&call(
        &client,
        "sentinel_list_analytics_rules",
        json!({"tenant_id": FABRIKAM, "name_contains": "brute force"}),
    )
    .await);
    let rule = rules_of(&named)
        .into_iter()
        .next()
        .expect("the brute force rule");
    let detail = ok(&call(
        &client,
        "sentinel_get_analytics_rule",
        json!({"tenant_id": FABRIKAM, "rule_id": rule["rule_id"]}),
    )
    .await);
    assert!(
        detail["properties"]["query"]
            .as_str()
            .expect("query")
            .contains("EventID == 4625")
    );
    assert_eq!(detail["properties"]["queryFrequency"], "PT1H");
    assert!(detail["etag"].is_string());
    let message = err(&call(
        &client,
        "sentinel_get_analytics_rule",
        json!({"tenant_id": FABRIKAM, "rule_id": "00000000-0000-4000-8000-000000000000"}),
    )
    .await);
    assert!(message.contains("no analytics rule"), "{message}");
}

#[tokio::test]
async fn rules_are_created_from_templates_and_definitions() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let templates = ok(&call(
        &client,
        "sentinel_list_rule_templates",
        json!({"tenant_id": FABRIKAM, "tactic": "InitialAccess", "fields": ["required_connectors"]}),
    )
    .await);
    let template = templates["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["kind"] == "Scheduled")
        .expect("a scheduled template")
        .clone();
    assert_eq!(template["rules_created"], 0);
    assert_eq!(
        template["required_connectors"],
        json!(["AzureActiveDirectory"])
    );

    let created = ok(&call(
        &client,
        "sentinel_create_analytics_rule",
        json!({"tenant_id": FABRIKAM, "template_id": template["template_id"], "severity": "Medium", "enabled": false}),
    )
    .await);
    let rule = &created["rule"];
    assert_eq!(rule["display_name"], template["display_name"]);
    assert_eq!(rule["template_id"], template["template_id"]);
    assert_eq!(rule["enabled"], false);
    let detail = ok(&call(
        &client,
        "sentinel_get_analytics_rule",
        json!({"tenant_id": FABRIKAM, "rule_id": rule["rule_id"]}),
    )
    .await);
    assert_eq!(
        detail["properties"]["severity"], "Medium",
        "the override wins over the template's High"
    );
    assert!(detail["properties"]["templateVersion"].is_string());
    let again = ok(&call(
        &client,
        "sentinel_list_rule_templates",
        json!({"tenant_id": FABRIKAM, "search": template["display_name"]}),
    )
    .await);
    assert_eq!(again["templates"][0]["rules_created"], 1);

    // A copy of an existing rule under a new id, as NRT from a definition.
    let definition = json!({"displayName": "NRT copy", "severity": "High", "query": "SecurityEvent | where EventID == 1102", "tactics": ["DefenseEvasion"]});
    let copy = ok(&call(
        &client,
        "sentinel_create_analytics_rule",
        json!({"tenant_id": FABRIKAM, "kind": "NRT", "definition": definition, "rule_id": "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"}),
    )
    .await);
    assert_eq!(copy["rule"]["kind"], "NRT");
    assert_eq!(copy["rule"]["enabled"], true);

    let fusion = ok(&call(
        &client,
        "sentinel_list_rule_templates",
        json!({"tenant_id": FABRIKAM, "kind": "Fusion"}),
    )
    .await);
    let fusion_id = fusion["templates"][0]["template_id"].clone();
    for (arguments, expected) in [
        (
            json!({"tenant_id": FABRIKAM, "kind": "NRT", "definition": definition, "rule_id": "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"}),
            "already exists",
        ),
        (
            json!({"tenant_id": FABRIKAM, "template_id": fusion_id}),
            "only Scheduled and NRT",
        ),
        (
            json!({"tenant_id": FABRIKAM, "template_id": template["template_id"], "kind": "NRT"}),
            "does not match",
        ),
        (
            json!({"tenant_id": FABRIKAM, "kind": "Scheduled", "definition": definition}),
            "needs queryFrequency, queryPeriod, triggerOperator, triggerThreshold",
        ),
        (
            json!({"tenant_id": FABRIKAM, "kind": "NRT", "definition": {"displayName": "x", "severity": "Low", "query": ".drop table SecurityEvent"}}),
            "control (management) command",
        ),
        (
            json!({"tenant_id": FABRIKAM, "kind": "NRT", "definition": {"displayName": "x", "severity": "Low", "query": "SecurityEvent | joinx"}}),
            "not valid KQL",
        ),
        (
            json!({"tenant_id": FABRIKAM, "definition": definition}),
            "kind (Scheduled or NRT) is required",
        ),
        (json!({"tenant_id": FABRIKAM}), "give template_id"),
        (
            json!({"tenant_id": FABRIKAM, "template_id": "00000000-0000-4000-8000-000000000000"}),
            "no rule template",
        ),
    ] {
        let message =
            err(&call(&client, "sentinel_create_analytics_rule", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
}

#[tokio::test]
async fn rules_are_enabled_disabled_and_deleted() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let disabled = ok(&call(
        &client,
        "sentinel_list_analytics_rules",
        json!({"tenant_id": FABRIKAM, "enabled": false, "kind": "Scheduled"}),
    )
    .await);
    let rule_id = disabled["rules"][0]["rule_id"].clone();
    let enabled = ok(&call(
        &client,
        "sentinel_set_analytics_rule_enabled",
        json!({"tenant_id": FABRIKAM, "rule_id": rule_id, "enabled": true}),
    )
    .await);
    assert_eq!(
        (
            enabled["was_enabled"].clone(),
            enabled["rule"]["enabled"].clone(),
            enabled["changed"].clone()
        ),
        (json!(false), json!(true), json!(true))
    );
    let puts = app.sandbox.stats().count("PUT", "/arm/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{ws}/providers/Microsoft.SecurityInsights/alertRules/{id}");
    let again = ok(&call(
        &client,
        "sentinel_set_analytics_rule_enabled",
        json!({"tenant_id": FABRIKAM, "rule_id": rule_id, "enabled": true}),
    )
    .await);
    assert_eq!(again["changed"], false);
    let puts_after = app.sandbox.stats().count("PUT", "/arm/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{ws}/providers/Microsoft.SecurityInsights/alertRules/{id}");
    assert_eq!(
        puts, puts_after,
        "nothing is written when the rule is already enabled"
    );

    let deleted = ok(&call_confirmed(
        &client,
        "sentinel_delete_analytics_rule",
        json!({"tenant_id": FABRIKAM, "rule_id": rule_id}),
    )
    .await);
    assert_eq!(deleted["deleted"]["rule_id"], rule_id);
    let message = err(&call_confirmed(
        &client,
        "sentinel_delete_analytics_rule",
        json!({"tenant_id": FABRIKAM, "rule_id": rule_id}),
    )
    .await);
    assert!(message.contains("no analytics rule"), "{message}");
    let message = err(&call(
        &client,
        "sentinel_set_analytics_rule_enabled",
        json!({"tenant_id": FABRIKAM, "rule_id": rule_id, "enabled": false}),
    )
    .await);
    assert!(message.contains("no analytics rule"), "{message}");
}

#[tokio::test]
async fn a_concurrent_change_is_reported_not_overwritten() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let w = workspace(&app, 1, 0);
    let listed = ok(&call(
        &client,
        "sentinel_list_analytics_rules",
        json!({"tenant_id": FABRIKAM, "enabled": true, "kind": "Scheduled"}),
    )
    .await);
    let rule_id = listed["rules"][0]["rule_id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!(
        "{}/providers/Microsoft.SecurityInsights/alertRules/{rule_id}",
        DirectArm::workspace_path(&w)
    );
    let arm = DirectArm::fabrikam(&app).await;

    // The server reads the rule, then its write is held while another admin renames the rule.
    slow_next_put(&app, format!("/arm{path}"), Duration::from_millis(1500));
    let disable = call(
        &client,
        "sentinel_set_analytics_rule_enabled",
        json!({"tenant_id": FABRIKAM, "rule_id": rule_id, "enabled": false}),
    );
    let other_admin = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        touch(&arm, &path, SI_RULES_VERSION, |rule| {
            // Written back as a client must: without the read-only `lastModifiedUtc`.
            rule["properties"]
                .as_object_mut()
                .expect("properties")
                .remove("lastModifiedUtc");
            rule["properties"]["displayName"] = json!("Renamed by someone else")
        })
        .await;
    };
    let (result, ()) = tokio::join!(disable, other_admin);
    let message = err(&result);
    assert!(
        message.starts_with("conflict:") && message.contains("changed by someone else"),
        "{message}"
    );
    let (_, now) = arm.get(&path, SI_RULES_VERSION).await;
    assert_eq!(
        now["properties"]["displayName"], "Renamed by someone else",
        "the other change is kept"
    );
    assert_eq!(
        now["properties"]["enabled"], true,
        "the stale write was not applied"
    );
}

/// The person confirming a deletion sees the rule by name, kind and state, in the tenant by name;
/// a rule that is not there is refused before anyone is asked.
#[tokio::test]
async fn a_deletion_names_the_rule_and_an_unknown_rule_is_refused_unasked() {
    let app =
        TestApp::start_with(fast_sandbox_options(), &[("APPROVAL_FALLBACK", "confirm")]).await;
    let client = app.client().await;
    let listed = ok(&call(
        &client,
        "sentinel_list_analytics_rules",
        json!({"tenant_id": FABRIKAM, "kind": "Scheduled", "enabled": true}),
    )
    .await);
    let rule = rules_of(&listed)[0].clone();
    let (rule_id, name) = (
        rule["rule_id"].as_str().expect("id"),
        rule["display_name"].as_str().expect("name"),
    );
    let arguments = json!({"tenant_id": FABRIKAM, "rule_id": rule_id});
    let asked = err(&call(&client, "sentinel_delete_analytics_rule", arguments.clone()).await);
    for expected in [
        "CONFIRMATION REQUIRED",
        "Tenant: Fabrikam",
        format!("Scheduled analytics rule {name} (id {rule_id})").as_str(),
        "enabled -> deleted",
    ] {
        assert!(asked.contains(expected), "'{expected}' in {asked}");
    }
    let deleted =
        ok(&call_confirmed(&client, "sentinel_delete_analytics_rule", arguments.clone()).await);
    assert_eq!(deleted["deleted"]["rule_id"], rule_id);

    let refused = err(&call(&client, "sentinel_delete_analytics_rule", arguments).await);
    assert!(
        refused.contains("no analytics rule") && !refused.contains("CONFIRMATION REQUIRED"),
        "{refused}"
    );
}
