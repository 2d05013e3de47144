//! The Sentinel management surface over HTTPS: custom tables as long-running operations,
//! rule templates, watchlists, automation rules, saved searches, incident evidence,
//! workbooks, data collection and Lighthouse, with the real shapes, etags and errors.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use sandbox::RunningSandbox;
use serde_json::{Value, json};

/// The api-version of each vendored definition the sandbox enforces, by resource provider.
fn version_for(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    if lower.contains("microsoft.securityinsights") {
        "api-version=2025-09-01"
    } else if lower.contains("microsoft.operationalinsights") {
        "api-version=2026-03-01"
    } else if lower.contains("microsoft.insights/workbooks") {
        "api-version=2023-06-01"
    } else if lower.contains("microsoft.insights/datacollection") {
        "api-version=2024-03-11"
    } else if lower.contains("microsoft.managedservices") {
        "api-version=2022-10-01"
    } else {
        "api-version=2022-12-01"
    }
}

struct Arm {
    sb: RunningSandbox,
    c: reqwest::Client,
    tok: String,
    ws: String,
    rg: String,
    sub: String,
}

impl Arm {
    async fn start() -> Self {
        let (sb, c) = start(fast()).await;
        let tok = token(&sb, &c, CONTOSO, ARM).await;
        let w = sb.tenants()[0].workspaces[0].clone();
        let sub = format!("{}/arm/subscriptions/{}", sb.base_url(), w.subscription_id);
        let rg = format!("{sub}/resourceGroups/{}", w.resource_group);
        let ws = format!(
            "{rg}/providers/Microsoft.OperationalInsights/workspaces/{}",
            w.name
        );
        Self {
            sb,
            c,
            tok,
            ws,
            rg,
            sub,
        }
    }

    async fn get(&self, url: &str) -> (StatusCode, Value) {
        get(&self.c, &with_version(url), &self.tok).await
    }

    async fn send(&self, method: Method, url: &str, body: Value) -> (StatusCode, Value) {
        send(&self.c, method, &with_version(url), &self.tok, body).await
    }

    /// A POST without a body (`Content-Length: 0`).
    async fn post_empty(&self, url: &str) -> (StatusCode, Value) {
        let response = self.raw(Method::POST, url, None, None).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends and returns the raw response (headers matter for long-running operations).
    async fn raw(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .c
            .request(method, with_version(url))
            .bearer_auth(&self.tok);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(etag) = if_match {
            request = request.header("if-match", etag);
        }
        request.send().await.expect("request")
    }

    /// Polls an operation until it leaves InProgress.
    async fn settle(&self, response: reqwest::Response) -> Value {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["retry-after"], "1");
        let op = response.headers()["azure-asyncoperation"]
            .to_str()
            .expect("header")
            .to_string();
        // final-state-via azure-async-operation: no Location whose target no definition describes.
        assert!(response.headers().get("location").is_none());
        for _ in 0..50 {
            let (_, status) = get(&self.c, &op, &self.tok).await;
            if status["status"] != "InProgress" {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("operation {op} did not finish");
    }
}

fn with_version(url: &str) -> String {
    if url.contains("api-version=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&{}", version_for(url))
    } else {
        format!("{url}?{}", version_for(url))
    }
}

#[tokio::test]
async fn custom_tables_are_created_changed_and_deleted_through_operations() {
    let arm = Arm::start().await;
    let url = format!("{}/tables/AppAudit_CL", arm.ws);
    let schema = json!({"properties": {"plan": "Analytics", "retentionInDays": 60, "schema": {"name": "AppAudit_CL", "description": "Audit events of the line-of-business app", "columns": [{"name": "TimeGenerated", "type": "dateTime"}, {"name": "UserName", "type": "string"}, {"name": "Action", "type": "string"}]}}});
    let done = arm
        .settle(arm.raw(Method::PUT, &url, Some(schema.clone()), None).await)
        .await;
    assert_eq!(done["status"], "Succeeded");
    let (s, table) = arm.get(&url).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(table["properties"]["schema"]["tableType"], "CustomLog");
    assert_eq!(table["properties"]["retentionInDays"], 60);
    let columns: Vec<&str> = table["properties"]["schema"]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(columns, vec!["TimeGenerated", "UserName", "Action"]);

    // Validation answers at once; a plan the service only rejects later fails the operation.
    let mut bad = schema.clone();
    bad["properties"]["schema"]["name"] = json!("Other_CL");
    bad["properties"]["schema"]["columns"] = json!([{"name": "UserName", "type": "string"}]);
    let (s, e) = arm
        .send(Method::PUT, &format!("{}/tables/Other_CL", arm.ws), bad)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"]
            .as_str()
            .expect("message")
            .contains("TimeGenerated"),
        "{e}"
    );
    let (s, _) = arm
        .send(
            Method::PUT,
            &format!("{}/tables/NotCustom", arm.ws),
            schema.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let aux = json!({"properties": {"plan": "Auxiliary", "schema": {"name": "Aux_CL", "columns": [{"name": "TimeGenerated", "type": "dateTime"}, {"name": "Payload", "type": "dynamic"}]}}});
    let failed = arm
        .settle(
            arm.raw(
                Method::PUT,
                &format!("{}/tables/Aux_CL", arm.ws),
                Some(aux),
                None,
            )
            .await,
        )
        .await;
    assert_eq!(failed["status"], "Failed");
    // `OperationStatus.error` is an `ErrorResponse`: the detail is nested under `error`.
    assert!(
        failed["error"]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("dynamic"),
        "{failed}"
    );
    assert_eq!(
        arm.get(&format!("{}/tables/Aux_CL", arm.ws)).await.0,
        StatusCode::NOT_FOUND
    );

    // The plan can be switched once a week.
    let basic = json!({"properties": {"plan": "Basic"}});
    assert_eq!(
        arm.settle(arm.raw(Method::PATCH, &url, Some(basic), None).await)
            .await["status"],
        "Succeeded"
    );
    let (s, e) = arm
        .send(
            Method::PATCH,
            &url,
            json!({"properties": {"plan": "Analytics"}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"]
            .as_str()
            .expect("message")
            .contains("once a week"),
        "{e}"
    );

    // Microsoft tables cannot be deleted; custom ones can, and a second delete has nothing to do.
    assert_eq!(
        arm.raw(
            Method::DELETE,
            &format!("{}/tables/SigninLogs", arm.ws),
            None,
            None
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        arm.settle(arm.raw(Method::DELETE, &url, None, None).await)
            .await["status"],
        "Succeeded"
    );
    assert_eq!(arm.get(&url).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        arm.raw(Method::DELETE, &url, None, None).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn templates_watchlists_automation_and_saved_searches() {
    let arm = Arm::start().await;
    let si = format!("{}/providers/Microsoft.SecurityInsights", arm.ws);
    let (s, templates) = arm.get(&format!("{si}/alertRuleTemplates")).await;
    assert_eq!(s, StatusCode::OK);
    let templates = templates["value"].as_array().expect("value").clone();
    let kinds: Vec<&str> = templates
        .iter()
        .map(|t| t["kind"].as_str().expect("kind"))
        .collect();
    // 2025-09-01 defines Scheduled, Fusion and MicrosoftSecurityIncidentCreation templates only.
    assert!(
        kinds.contains(&"Scheduled") && !kinds.contains(&"NRT"),
        "{kinds:?}"
    );
    let template = templates
        .iter()
        .find(|t| t["kind"] == "Scheduled")
        .expect("scheduled")
        .clone();
    assert_eq!(
        template["properties"]["alertRulesCreatedByTemplateCount"],
        0
    );
    // The rule takes the template members `ScheduledAlertRuleProperties` declares.
    let mut properties = serde_json::Map::new();
    for key in [
        "displayName",
        "description",
        "severity",
        "query",
        "queryFrequency",
        "queryPeriod",
        "triggerOperator",
        "triggerThreshold",
        "tactics",
        "techniques",
    ] {
        properties.insert(key.into(), template["properties"][key].clone());
    }
    properties.insert("suppressionDuration".into(), json!("PT5H"));
    properties.insert("suppressionEnabled".into(), json!(false));
    let mut rule = json!({"kind": "Scheduled", "properties": properties});
    rule["properties"]["enabled"] = json!(true);
    rule["properties"]["alertRuleTemplateName"] = template["name"].clone();
    assert_eq!(
        arm.send(
            Method::PUT,
            &format!("{si}/alertRules/cccccccc-0000-4000-8000-000000000003"),
            rule
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (_, again) = arm
        .get(&format!(
            "{si}/alertRuleTemplates/{}",
            template["name"].as_str().expect("name")
        ))
        .await;
    assert_eq!(again["properties"]["alertRulesCreatedByTemplateCount"], 1);

    // Watchlists: items are paged (40 TOR nodes over pages of 25).
    let (s, lists) = arm.get(&format!("{si}/watchlists")).await;
    assert_eq!(s, StatusCode::OK, "{lists}");
    let aliases: Vec<&str> = lists["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|w| w["name"].as_str().expect("alias"))
        .collect();
    assert_eq!(aliases, vec!["HighValueAssets", "VIPUsers", "TorExitNodes"]);
    let (_, page) = arm
        .get(&format!("{si}/watchlists/TorExitNodes/watchlistItems"))
        .await;
    assert_eq!(page["value"].as_array().expect("value").len(), 25);
    let (_, rest) = get(
        &arm.c,
        page["nextLink"].as_str().expect("next page"),
        &arm.tok,
    )
    .await;
    assert_eq!(rest["value"].as_array().expect("value").len(), 15);
    assert!(rest["value"][0]["properties"]["itemsKeyValue"]["IPAddress"].is_string());
    let (s, created) = arm.send(Method::PUT, &format!("{si}/watchlists/Blocked"), json!({"properties": {"displayName": "Blocked", "provider": "SOC", "itemsSearchKey": "Domain"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    // The long-running create is finished within the request: final provisioning state.
    assert_eq!(created["properties"]["provisioningState"], "Succeeded");
    let item =
        format!("{si}/watchlists/Blocked/watchlistItems/dddddddd-0000-4000-8000-000000000004");
    assert_eq!(
        arm.send(
            Method::PUT,
            &item,
            json!({"properties": {"itemsKeyValue": {"Name": "x"}}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        arm.send(
            Method::PUT,
            &item,
            json!({"properties": {"itemsKeyValue": {"Domain": "evil.example"}}})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        arm.raw(
            Method::DELETE,
            &format!("{si}/watchlists/Blocked"),
            None,
            None
        )
        .await
        .status(),
        // `Watchlists_Delete` declares 202 and 204, no 200.
        StatusCode::ACCEPTED
    );
    assert_eq!(
        arm.raw(
            Method::DELETE,
            &format!("{si}/watchlists/Blocked"),
            None,
            None
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(arm.get(&item).await.0, StatusCode::NOT_FOUND);

    // Automation rules: validated, etag-checked.
    let (_, rules) = arm.get(&format!("{si}/automationRules")).await;
    let mut existing = rules["value"][0].clone();
    let url = format!(
        "{si}/automationRules/{}",
        existing["name"].as_str().expect("name")
    );
    // Written back without the read-only members of `AutomationRuleProperties`.
    for key in [
        "createdBy",
        "createdTimeUtc",
        "lastModifiedBy",
        "lastModifiedTimeUtc",
    ] {
        existing["properties"]
            .as_object_mut()
            .expect("properties")
            .remove(key);
    }
    let (s, updated) = arm.send(Method::PUT, &url, existing.clone()).await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(
        arm.send(Method::PUT, &url, existing.clone()).await.0,
        StatusCode::CONFLICT,
        "the old etag is stale"
    );
    let mut bad = existing.clone();
    bad["etag"] = Value::Null;
    // `AutomationRuleProperties.actions` has `maxItems: 20`.
    let action = bad["properties"]["actions"][0].clone();
    bad["properties"]["actions"] = Value::Array(vec![action; 21]);
    assert_eq!(
        arm.send(Method::PUT, &url, bad).await.0,
        StatusCode::BAD_REQUEST
    );

    // Saved searches: functions carry an alias, hunting queries a category.
    let (_, searches) = arm.get(&format!("{}/savedSearches", arm.ws)).await;
    let searches = searches["value"].as_array().expect("value");
    assert!(
        searches
            .iter()
            .any(|s| s["properties"]["functionAlias"] == "FirewallEvents")
    );
    assert!(
        searches
            .iter()
            .any(|s| s["properties"]["category"] == "Hunting Queries")
    );
    assert!(
        searches[0]["etag"]
            .as_str()
            .expect("etag")
            .starts_with("W/\"datetime'")
    );
    let (s, _) = arm.send(Method::PUT, &format!("{}/savedSearches/mysearch", arm.ws), json!({"properties": {"category": "SOC", "displayName": "Mine", "query": "Heartbeat | take 1"}})).await;
    // SavedSearches_CreateOrUpdate declares only 200.
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn incident_alerts_and_entities() {
    let arm = Arm::start().await;
    let si = format!("{}/providers/Microsoft.SecurityInsights", arm.ws);
    let (_, incidents) = arm.get(&format!("{si}/incidents")).await;
    let incident = &incidents["value"][0];
    let url = format!(
        "{si}/incidents/{}",
        incident["name"].as_str().expect("name")
    );
    // `Incidents_ListAlerts`/`Incidents_ListEntities` declare no body: a body is refused.
    let refused = arm
        .send(Method::POST, &format!("{url}/alerts"), json!({}))
        .await;
    assert_eq!(refused.0, StatusCode::BAD_REQUEST, "{}", refused.1);
    let (s, alerts) = arm.post_empty(&format!("{url}/alerts")).await;
    assert_eq!(s, StatusCode::OK);
    let alerts = alerts["value"].as_array().expect("value");
    assert_eq!(
        alerts.len() as u64,
        incident["properties"]["additionalData"]["alertsCount"]
            .as_u64()
            .expect("count")
    );
    assert_eq!(alerts[0]["kind"], "SecurityAlert");
    assert_eq!(
        alerts[0]["properties"]["alertDisplayName"],
        incident["properties"]["title"]
    );
    let (_, entities) = arm.post_empty(&format!("{url}/entities")).await;
    let kinds: Vec<&str> = entities["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["Host", "Account", "Ip"]);
    assert_eq!(
        entities["metaData"][0],
        json!({"count": 1, "entityKind": "Host"})
    );
    assert_eq!(
        arm.post_empty(&format!("{si}/incidents/nope/alerts"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn workbooks_need_a_category_and_content_is_fetched_on_request() {
    let arm = Arm::start().await;
    let books = format!("{}/providers/Microsoft.Insights/workbooks", arm.rg);
    let wb = "api-version=2023-06-01";
    let (s, e) = arm.get(&format!("{books}?{wb}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let ws_id = arm.ws.split("/arm").nth(1).expect("path").to_string();
    let (s, list) = arm
        .get(&format!("{books}?{wb}&category=sentinel&sourceId={ws_id}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let list = list["value"].as_array().expect("value");
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|w| w["properties"]["serializedData"].is_null())
    );
    let one = format!(
        "{books}/{}?{wb}&canFetchContent=true",
        list[0]["name"].as_str().expect("name")
    );
    let (_, full) = arm.get(&one).await;
    let content: Value = serde_json::from_str(
        full["properties"]["serializedData"]
            .as_str()
            .expect("content"),
    )
    .expect("json");
    assert_eq!(content["version"], "Notebook/1.0");

    let new = format!("{books}/eeeeeeee-0000-4000-8000-000000000005?{wb}");
    let body = json!({"location": "westeurope", "kind": "shared", "properties": {"displayName": "Copy", "category": "sentinel", "sourceId": ws_id, "serializedData": full["properties"]["serializedData"]}});
    assert_eq!(
        arm.send(
            Method::PUT,
            &format!("{books}/not-a-guid?{wb}"),
            body.clone()
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let (s, created) = arm.send(Method::PUT, &new, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let stale = arm
        .raw(Method::PUT, &new, Some(body.clone()), Some("W/\"stale\""))
        .await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let fresh = arm
        .raw(
            Method::PUT,
            &new,
            Some(body),
            Some(created["etag"].as_str().expect("etag")),
        )
        .await;
    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!(
        arm.raw(Method::DELETE, &new, None, None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        arm.raw(Method::DELETE, &new, None, None).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn data_collection_rules_endpoints_associations_and_lighthouse() {
    let arm = Arm::start().await;
    let v = "api-version=2024-03-11";
    let ws_id = arm.ws.split("/arm").nth(1).expect("path").to_string();
    let (_, dcrs) = arm
        .get(&format!(
            "{}/providers/Microsoft.Insights/dataCollectionRules?{v}",
            arm.sub
        ))
        .await;
    let dcr = dcrs["value"][0].clone();
    assert!(
        dcr["properties"]["immutableId"]
            .as_str()
            .expect("immutable id")
            .starts_with("dcr-")
    );
    let dcr_url = format!(
        "{}/providers/Microsoft.Insights/dataCollectionRules/{}",
        arm.rg,
        dcr["name"].as_str().expect("name")
    );
    let (_, assoc) = arm.get(&format!("{dcr_url}/associations?{v}")).await;
    let assoc = assoc["value"].as_array().expect("value");
    assert!(!assoc.is_empty());
    // Listing associations by resource is not among the vendored operations: refused as ARM
    // refuses an unknown resource type.
    let vm = assoc[0]["id"]
        .as_str()
        .expect("id")
        .split("/providers/Microsoft.Insights")
        .next()
        .expect("vm")
        .to_string();
    let (s, _) = arm
        .get(&format!(
            "{}/arm{vm}/providers/Microsoft.Insights/dataCollectionRuleAssociations?{v}",
            arm.sb.base_url()
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A DCR for a table that does not exist is refused; once it exists the rule is accepted.
    let rule = json!({"location": "westeurope", "kind": "Direct", "properties": {
        "streamDeclarations": {"Custom-AppAudit": {"columns": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "UserName", "type": "string"}]}},
        "destinations": {"logAnalytics": [{"workspaceResourceId": ws_id, "name": "la"}]},
        "dataFlows": [{"streams": ["Custom-AppAudit"], "destinations": ["la"], "transformKql": "source | extend Extra = 1", "outputStream": "Custom-AppAudit_CL"}],
    }});
    let url = format!(
        "{}/providers/Microsoft.Insights/dataCollectionRules/dcr-app?{v}",
        arm.rg
    );
    let (s, e) = arm.send(Method::PUT, &url, rule.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "InvalidOutputTable", "{e}");
    let table = json!({"properties": {"schema": {"name": "AppAudit_CL", "columns": [{"name": "TimeGenerated", "type": "dateTime"}, {"name": "UserName", "type": "string"}]}}});
    arm.settle(
        arm.raw(
            Method::PUT,
            &format!("{}/tables/AppAudit_CL", arm.ws),
            Some(table),
            None,
        )
        .await,
    )
    .await;
    let mut broken = rule.clone();
    broken["properties"]["dataFlows"][0]["transformKql"] = json!("source | joinx");
    assert_eq!(
        arm.send(Method::PUT, &url, broken).await.0,
        StatusCode::BAD_REQUEST
    );
    let (s, created) = arm.send(Method::PUT, &url, rule.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert!(
        created["properties"]["endpoints"]["logsIngestion"]
            .as_str()
            .expect("endpoint")
            .contains(".ingest.monitor.azure.com")
    );
    // A change is sent without the read-only properties the answer carried (the definition's
    // readOnly: immutableId, endpoints, provisioningState, etag, systemData).
    let mut changed = rule.clone();
    changed["properties"]["dataFlows"][0]["transformKql"] = json!("source");
    let stale = arm
        .raw(Method::PUT, &url, Some(changed.clone()), Some("\"stale\""))
        .await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let ok = arm
        .raw(
            Method::PUT,
            &url,
            Some(changed),
            Some(created["etag"].as_str().expect("etag")),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let (_, after) = arm.get(&url).await;
    assert_eq!(
        after["properties"]["immutableId"], created["properties"]["immutableId"],
        "an update keeps the immutable id"
    );

    let dce_url = format!(
        "{}/providers/Microsoft.Insights/dataCollectionEndpoints/dce-new?{v}",
        arm.rg
    );
    let (s, dce) = arm.send(Method::PUT, &dce_url, json!({"location": "westeurope", "properties": {"networkAcls": {"publicNetworkAccess": "Disabled"}}})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        dce["properties"]["networkAcls"]["publicNetworkAccess"],
        "Disabled"
    );
    assert_eq!(
        arm.send(Method::PUT, &dce_url, json!({"properties": {}}))
            .await
            .0,
        StatusCode::BAD_REQUEST,
        "location is required"
    );
    let (_, dces) = arm
        .get(&format!(
            "{}/providers/Microsoft.Insights/dataCollectionEndpoints?{v}",
            arm.sub
        ))
        .await;
    assert_eq!(dces["value"].as_array().expect("value").len(), 2);

    // Lighthouse: the subscription is delegated to the MSSP.
    let (_, subs) = arm
        .get(&format!(
            "{}/arm/subscriptions?api-version=2022-12-01",
            arm.sb.base_url()
        ))
        .await;
    assert!(
        subs["value"]
            .as_array()
            .expect("value")
            .iter()
            .all(|s| s["managedByTenants"][0]["tenantId"].is_string())
    );
    let (s, delegations) = arm.get(&format!("{}/providers/Microsoft.ManagedServices/registrationAssignments?api-version=2022-10-01&$expandRegistrationDefinition=true", arm.sub)).await;
    assert_eq!(s, StatusCode::OK);
    let definition = &delegations["value"][0]["properties"]["registrationDefinition"]["properties"];
    assert_eq!(definition["manageeTenantName"], "Contoso");
    assert!(
        definition["managedByTenantName"]
            .as_str()
            .expect("name")
            .contains("MSSP")
    );
}
