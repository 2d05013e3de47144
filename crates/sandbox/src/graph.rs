//! Microsoft Graph security APIs (`https://graph.microsoft.com/{v1.0|beta}/security/...`),
//! served under `/graph/...`: advanced hunting, incidents, alerts (v2) and custom detection
//! rules (beta).

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::defender::{Alert, odata_collection};
use crate::errors::{Api, ApiError, ApiResult, bad_body, not_found, parse_json};
use crate::kql::{self, ExecOptions};
use crate::seed::TenantData;
use crate::state::AppState;
use crate::token::Caller;
use crate::util::{QueryParams, fmt_time, parse_iso_duration};

const API: Api = Api::Graph;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/{version}/security/runHuntingQuery",
            post(run_hunting_query),
        )
        .route("/{version}/security/incidents", get(list_incidents))
        .route(
            "/{version}/security/incidents/{id}",
            get(get_incident).patch(patch_incident),
        )
        .route(
            "/{version}/security/incidents/{id}/comments",
            post(add_incident_comment),
        )
        .route("/{version}/security/alerts_v2", get(list_alerts))
        .route("/{version}/security/alerts_v2/{id}", get(get_alert))
        .route(
            "/{version}/security/rules/detectionRules",
            get(list_rules).post(create_rule),
        )
        .route(
            "/{version}/security/rules/detectionRules/{id}",
            get(get_rule).patch(patch_rule).delete(delete_rule),
        )
        .route_layer(from_fn_with_state(state, crate::token::require_graph))
}

fn check_version(version: &str) -> ApiResult<()> {
    match version {
        "v1.0" | "beta" => Ok(()),
        other => Err(ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Invalid version: {other}"),
        )),
    }
}

fn beta_only(version: &str) -> ApiResult<()> {
    if version != "beta" {
        return Err(ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Resource not found for the segment 'rules'. Custom detection rules are only available on the beta endpoint.",
        ));
    }
    Ok(())
}

fn context(version: &str, entity: &str) -> String {
    format!("https://graph.microsoft.com/{version}/$metadata#{entity}")
}

fn tenant<'a>(
    state: &'a AppState,
    caller: &Caller,
) -> ApiResult<std::sync::MutexGuard<'a, TenantData>> {
    state.tenant(&caller.tenant_id).ok_or_else(|| {
        ApiError::new(
            API,
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The tenant is not provisioned.",
        )
    })
}

fn prop<'v>(body: &'v Value, name: &str) -> Option<&'v Value> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// lowerCamelCase for Graph enum members (`TruePositive` → `truePositive`).
fn camel(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Advanced hunting
// ---------------------------------------------------------------------------------------

async fn run_hunting_query(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(version): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    check_version(&version)?;
    let body: Value = parse_json(API, &body)?;
    let Some(query) = prop(&body, "Query")
        .and_then(Value::as_str)
        .filter(|q| !q.trim().is_empty())
    else {
        return Err(bad_body(API, "The 'Query' property is required."));
    };
    let now = OffsetDateTime::now_utc();
    let mut opts = ExecOptions::at(now);
    // Advanced hunting caps results at 100,000 rows.
    opts.max_rows = 100_000;
    if let Some(ts) = prop(&body, "Timespan")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let window = crate::util::parse_timespan_window(ts, now).ok_or_else(|| {
            bad_body(
                API,
                format!(
                    "Invalid Timespan '{ts}': expected an ISO 8601 duration such as P1D or PT12H."
                ),
            )
        })?;
        opts.window = Some(window);
    }
    let t = tenant(&state, &caller)?;
    let table = kql::execute(&t.hunting, query, &opts)
        .map_err(|e| crate::loganalytics::query_error(API, &e))?;
    let schema: Vec<Value> = table
        .columns
        .iter()
        .map(|c| json!({"name": c.name, "type": c.ty.graph_name()}))
        .collect();
    let results: Vec<Value> = table
        .rows
        .iter()
        .map(|r| {
            Value::Object(
                table
                    .columns
                    .iter()
                    .zip(r)
                    .map(|(c, v)| (c.name.clone(), v.to_graph_json()))
                    .collect(),
            )
        })
        .collect();
    Ok(Json(json!({
        "@odata.context": context(&version, "microsoft.graph.security.huntingQueryResults"),
        "schema": schema,
        "results": results,
    })))
}

// ---------------------------------------------------------------------------------------
// Alerts (v2) and incidents
// ---------------------------------------------------------------------------------------

/// A Defender alert in the Graph `alert` (v2) shape.
fn alert_v2(a: &Alert, t: &TenantData) -> Value {
    let status = match a.status.as_str() {
        "InProgress" => "inProgress",
        "Resolved" => "resolved",
        _ => "new",
    };
    let detection_source = match a.detection_source.as_str() {
        "WindowsDefenderAv" => "antivirus",
        "SmartScreen" => "smartScreen",
        _ => "microsoftDefenderForEndpoint",
    };
    let machine = t.machine(&a.machine_id);
    let mut evidence = vec![json!({
        "@odata.type": "#microsoft.graph.security.deviceEvidence",
        "createdDateTime": fmt_time(a.alert_creation_time),
        "verdict": "suspicious",
        "remediationStatus": "none",
        "remediationStatusDetails": Value::Null,
        "roles": [],
        "tags": [],
        "firstSeenDateTime": machine.map(|m| fmt_time(m.first_seen)),
        "mdeDeviceId": a.machine_id,
        "azureAdDeviceId": machine.and_then(|m| m.aad_device_id.clone()),
        "deviceDnsName": a.computer_dns_name,
        "osPlatform": machine.map(|m| m.os_platform.clone()),
        "osBuild": machine.and_then(|m| m.os_build),
        "version": machine.and_then(|m| m.version.clone()),
        "healthStatus": machine.map(|m| camel(&m.health_status)),
        "riskScore": machine.map(|m| camel(&m.risk_score)),
        "rbacGroupId": machine.map(|m| m.rbac_group_id),
        "rbacGroupName": a.rbac_group_name,
        "onboardingStatus": machine.map(|m| camel(&m.onboarding_status)),
        "defenderAvStatus": machine.map(|m| camel(&m.defender_av_status)),
        "loggedOnUsers": a.logged_on_users,
        "ipInterfaces": machine.map(|m| vec![m.last_ip_address.clone()]).unwrap_or_default(),
    })];
    for e in &a.evidence {
        let created = e["evidenceCreationTime"].clone();
        match e["entityType"].as_str() {
            Some("User") => evidence.push(json!({
                "@odata.type": "#microsoft.graph.security.userEvidence",
                "createdDateTime": created,
                "verdict": "suspicious",
                "remediationStatus": "none",
                "roles": [],
                "tags": [],
                "userAccount": {
                    "accountName": e["accountName"],
                    "domainName": e["domainName"],
                    "userSid": e["userSid"],
                    "azureAdUserId": e["aadUserId"],
                    "userPrincipalName": e["userPrincipalName"],
                    "displayName": Value::Null,
                },
            })),
            Some("File") => evidence.push(json!({
                "@odata.type": "#microsoft.graph.security.fileEvidence",
                "createdDateTime": created,
                "verdict": "malicious",
                "remediationStatus": if e["detectionStatus"] == "Blocked" { "prevented" } else { "none" },
                "roles": [],
                "tags": [],
                "detectionStatus": camel(e["detectionStatus"].as_str().unwrap_or("Detected")),
                "mdeDeviceId": a.machine_id,
                "fileDetails": {
                    "sha1": e["sha1"],
                    "sha256": e["sha256"],
                    "fileName": e["fileName"],
                    "filePath": e["filePath"],
                    "fileSize": Value::Null,
                    "filePublisher": Value::Null,
                    "signer": Value::Null,
                    "issuer": Value::Null,
                },
            })),
            Some("Ip") => evidence.push(json!({
                "@odata.type": "#microsoft.graph.security.ipEvidence",
                "createdDateTime": created,
                "verdict": "suspicious",
                "remediationStatus": "none",
                "roles": [],
                "tags": [],
                "ipAddress": e["ipAddress"],
                "countryLetterCode": Value::Null,
            })),
            Some("Url") => evidence.push(json!({
                "@odata.type": "#microsoft.graph.security.urlEvidence",
                "createdDateTime": created,
                "verdict": "suspicious",
                "remediationStatus": "none",
                "roles": [],
                "tags": [],
                "url": e["url"],
            })),
            _ => {}
        }
    }
    json!({
        "@odata.type": "#microsoft.graph.security.alert",
        "id": a.id,
        "providerAlertId": a.id,
        "incidentId": a.incident_id.to_string(),
        "status": status,
        "severity": a.severity.to_lowercase(),
        "classification": a.classification.as_deref().map(camel),
        "determination": a.determination.as_deref().map(camel),
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": detection_source,
        "productName": "Microsoft Defender for Endpoint",
        "detectorId": a.detector_id,
        "tenantId": a.aad_tenant_id,
        "title": a.title,
        "description": a.description,
        "recommendedActions": "Isolate the device, collect an investigation package and review the process tree.",
        "category": a.category,
        "assignedTo": a.assigned_to,
        "alertWebUrl": format!("https://security.microsoft.com/alerts/{}?tid={}", a.id, a.aad_tenant_id),
        "incidentWebUrl": format!("https://security.microsoft.com/incidents/{}?tid={}", a.incident_id, a.aad_tenant_id),
        "actorDisplayName": Value::Null,
        "threatDisplayName": a.threat_name,
        "threatFamilyName": a.threat_family_name,
        "mitreTechniques": a.mitre_techniques,
        "createdDateTime": fmt_time(a.alert_creation_time),
        "lastUpdateDateTime": fmt_time(a.last_update_time),
        "resolvedDateTime": a.resolved_time.map(fmt_time),
        "firstActivityDateTime": fmt_time(a.first_event_time),
        "lastActivityDateTime": fmt_time(a.last_event_time),
        "comments": [],
        "evidence": evidence,
        "systemTags": [],
    })
}

const ALERT_FILTER_FIELDS: &[&str] = &[
    "id",
    "incidentId",
    "status",
    "severity",
    "classification",
    "determination",
    "serviceSource",
    "detectionSource",
    "title",
    "category",
    "assignedTo",
    "createdDateTime",
    "lastUpdateDateTime",
    "resolvedDateTime",
];

async fn list_alerts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(version): Path<String>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    check_version(&version)?;
    let items: Vec<Value> = {
        let t = tenant(&state, &caller)?;
        let mut items: Vec<Value> = t.alerts.iter().map(|a| alert_v2(a, &t)).collect();
        items.sort_by(|a, b| {
            b["createdDateTime"]
                .as_str()
                .cmp(&a["createdDateTime"].as_str())
        });
        items
    };
    odata_collection(
        API,
        &state.base_url,
        uri.path(),
        raw.as_deref(),
        items,
        Some(ALERT_FILTER_FIELDS),
        context(&version, "security/alerts_v2"),
        state.options.page_size,
    )
    .map(Json)
}

async fn get_alert(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((version, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    check_version(&version)?;
    let t = tenant(&state, &caller)?;
    let a = t
        .alerts
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| not_found(API, format!("Alert '{id}' was not found.")))?;
    let mut v = alert_v2(a, &t);
    v["@odata.context"] = json!(context(&version, "security/alerts_v2/$entity"));
    Ok(Json(v))
}

fn with_alerts(incident: &Value, t: &TenantData) -> Value {
    let mut v = incident.clone();
    let id = incident["id"].as_str().unwrap_or_default();
    let alerts: Vec<Value> = t
        .alerts
        .iter()
        .filter(|a| a.incident_id.to_string() == id)
        .map(|a| alert_v2(a, t))
        .collect();
    v["alerts"] = Value::Array(alerts);
    v
}

fn expands_alerts(q: &QueryParams) -> ApiResult<bool> {
    match q.get("$expand") {
        None => Ok(false),
        Some(e)
            if e.split(',')
                .all(|x| x.trim().eq_ignore_ascii_case("alerts")) =>
        {
            Ok(true)
        }
        Some(e) => Err(ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "Could not find a navigation property named '{e}' on incident: only 'alerts' can be expanded."
            ),
        )),
    }
}

const INCIDENT_FILTER_FIELDS: &[&str] = &[
    "id",
    "status",
    "severity",
    "classification",
    "determination",
    "assignedTo",
    "displayName",
    "createdDateTime",
    "lastUpdateDateTime",
    "customTags",
    "systemTags",
];

async fn list_incidents(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(version): Path<String>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    check_version(&version)?;
    let q = QueryParams::parse(raw.as_deref());
    let expand = expands_alerts(&q)?;
    let items: Vec<Value> = {
        let t = tenant(&state, &caller)?;
        let mut items: Vec<Value> = t
            .graph_incidents
            .iter()
            .map(|i| {
                if expand {
                    with_alerts(i, &t)
                } else {
                    i.clone()
                }
            })
            .collect();
        items.sort_by(|a, b| {
            b["createdDateTime"]
                .as_str()
                .cmp(&a["createdDateTime"].as_str())
        });
        items
    };
    odata_collection(
        API,
        &state.base_url,
        uri.path(),
        raw.as_deref(),
        items,
        Some(INCIDENT_FILTER_FIELDS),
        context(&version, "security/incidents"),
        state.options.page_size,
    )
    .map(Json)
}

fn incident_not_found(id: &str) -> ApiError {
    not_found(API, format!("Incident '{id}' was not found."))
}

async fn get_incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    check_version(&version)?;
    let expand = expands_alerts(&QueryParams::parse(raw.as_deref()))?;
    let t = tenant(&state, &caller)?;
    let inc = t
        .graph_incidents
        .iter()
        .find(|i| i["id"] == id.as_str())
        .ok_or_else(|| incident_not_found(&id))?;
    let mut v = if expand {
        with_alerts(inc, &t)
    } else {
        inc.clone()
    };
    v["@odata.context"] = json!(context(&version, "security/incidents/$entity"));
    Ok(Json(v))
}

const INCIDENT_STATUSES: &[&str] = &[
    "active",
    "resolved",
    "inProgress",
    "redirected",
    "awaitingAction",
    "unknownFutureValue",
];
const CLASSIFICATIONS: &[&str] = &[
    "unknown",
    "falsePositive",
    "truePositive",
    "informationalExpectedActivity",
    "unknownFutureValue",
];
const DETERMINATIONS: &[&str] = &[
    "unknown",
    "apt",
    "malware",
    "securityPersonnel",
    "securityTesting",
    "unwantedSoftware",
    "other",
    "multiStagedAttack",
    "compromisedAccount",
    "phishing",
    "maliciousUserActivity",
    "notMalicious",
    "notEnoughDataToValidate",
    "confirmedUserActivity",
    "lineOfBusinessApplication",
    "unknownFutureValue",
];
const SEVERITIES: &[&str] = &[
    "unknown",
    "informational",
    "low",
    "medium",
    "high",
    "unknownFutureValue",
];

fn check_enum(field: &str, value: &Value, allowed: &[&str]) -> ApiResult<()> {
    match value.as_str() {
        Some(v) if allowed.contains(&v) => Ok(()),
        _ => Err(bad_body(
            API,
            format!(
                "Invalid value {value} for property '{field}': expected one of {}.",
                allowed.join(", ")
            ),
        )),
    }
}

async fn patch_incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((version, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    check_version(&version)?;
    let body: Value = parse_json(API, &body)?;
    let Some(patch) = body.as_object() else {
        return Err(bad_body(API, "The request body must be a JSON object."));
    };
    const WRITABLE: &[&str] = &[
        "status",
        "assignedTo",
        "classification",
        "determination",
        "customTags",
        "description",
        "displayName",
        "severity",
        "resolvingComment",
        "summary",
    ];
    for (k, v) in patch {
        if k.starts_with('@') {
            continue;
        }
        if !WRITABLE.contains(&k.as_str()) {
            return Err(bad_body(
                API,
                format!(
                    "Property '{k}' does not exist on type 'microsoft.graph.security.incident' or is read-only."
                ),
            ));
        }
        match k.as_str() {
            "status" => check_enum(k, v, INCIDENT_STATUSES)?,
            "classification" => check_enum(k, v, CLASSIFICATIONS)?,
            "determination" => check_enum(k, v, DETERMINATIONS)?,
            "severity" => check_enum(k, v, SEVERITIES)?,
            "customTags" if !v.is_array() => {
                return Err(bad_body(API, "customTags must be an array of strings."));
            }
            _ => {}
        }
    }
    let mut t = tenant(&state, &caller)?;
    let inc = t
        .graph_incidents
        .iter_mut()
        .find(|i| i["id"] == id.as_str())
        .ok_or_else(|| incident_not_found(&id))?;
    for (k, v) in patch {
        if !k.starts_with('@') {
            inc[k] = v.clone();
        }
    }
    inc["lastUpdateDateTime"] = json!(fmt_time(OffsetDateTime::now_utc()));
    inc["lastModifiedBy"] = json!(caller.app_id);
    let mut v = inc.clone();
    v["@odata.context"] = json!(context(&version, "security/incidents/$entity"));
    Ok(Json(v))
}

async fn add_incident_comment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((version, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    check_version(&version)?;
    let body: Value = parse_json(API, &body)?;
    let Some(comment) = prop(&body, "comment")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())
    else {
        return Err(bad_body(API, "The 'comment' property is required."));
    };
    let mut t = tenant(&state, &caller)?;
    let inc = t
        .graph_incidents
        .iter_mut()
        .find(|i| i["id"] == id.as_str())
        .ok_or_else(|| incident_not_found(&id))?;
    let entry = json!({
        "@odata.type": "microsoft.graph.security.alertComment",
        "comment": comment,
        "createdByDisplayName": caller.app_id,
        "createdDateTime": fmt_time(OffsetDateTime::now_utc()),
    });
    if let Some(list) = inc["comments"].as_array_mut() {
        list.push(entry);
    } else {
        inc["comments"] = json!([entry]);
    }
    Ok(Json(json!({
        "@odata.context": context(&version, "Collection(microsoft.graph.security.alertComment)"),
        "value": inc["comments"].clone(),
    })))
}

// ---------------------------------------------------------------------------------------
// Custom detection rules (beta)
// ---------------------------------------------------------------------------------------

const PERIODS: &[&str] = &["0", "1H", "3H", "12H", "24H"];
const RULE_SEVERITIES: &[&str] = &["informational", "low", "medium", "high"];

/// Validates a complete detection rule (after a PATCH has been merged in).
fn validate_rule(rule: &Value) -> Result<(), String> {
    if rule["displayName"]
        .as_str()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err("displayName is required.".into());
    }
    if !rule["isEnabled"].is_boolean() {
        return Err("isEnabled is required and must be a boolean.".into());
    }
    let query = rule["queryCondition"]["queryText"]
        .as_str()
        .ok_or("queryCondition.queryText is required.")?;
    kql::check_syntax(query)
        .map_err(|e| format!("queryCondition.queryText is not a valid query: {e}"))?;
    let period = rule["schedule"]["period"]
        .as_str()
        .ok_or("schedule.period is required.")?;
    if !PERIODS.contains(&period) {
        return Err(format!(
            "schedule.period '{period}' is invalid: expected one of 0 (near real time), 1H, 3H, 12H, 24H."
        ));
    }
    let tpl = &rule["detectionAction"]["alertTemplate"];
    if tpl["title"].as_str().is_none_or(|s| s.trim().is_empty()) {
        return Err("detectionAction.alertTemplate.title is required.".into());
    }
    let sev = tpl["severity"]
        .as_str()
        .ok_or("detectionAction.alertTemplate.severity is required.")?;
    if !RULE_SEVERITIES.contains(&sev) {
        return Err(format!(
            "detectionAction.alertTemplate.severity '{sev}' is invalid: expected one of {}.",
            RULE_SEVERITIES.join(", ")
        ));
    }
    if tpl["category"].as_str().is_none_or(str::is_empty) {
        return Err("detectionAction.alertTemplate.category is required.".into());
    }
    Ok(())
}

async fn list_rules(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(version): Path<String>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    beta_only(&version)?;
    let items = tenant(&state, &caller)?.detection_rules.clone();
    odata_collection(
        API,
        &state.base_url,
        uri.path(),
        raw.as_deref(),
        items,
        None,
        context(&version, "security/rules/detectionRules"),
        state.options.page_size,
    )
    .map(Json)
}

fn rule_not_found(id: &str) -> ApiError {
    not_found(API, format!("Detection rule '{id}' was not found."))
}

async fn get_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((version, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    beta_only(&version)?;
    let t = tenant(&state, &caller)?;
    let mut v = t
        .detection_rules
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .ok_or_else(|| rule_not_found(&id))?;
    v["@odata.context"] = json!(context(&version, "security/rules/detectionRules/$entity"));
    Ok(Json(v))
}

async fn create_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(version): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    beta_only(&version)?;
    let body: Value = parse_json(API, &body)?;
    if !body.is_object() {
        return Err(bad_body(API, "The request body must be a JSON object."));
    }
    validate_rule(&body).map_err(|m| bad_body(API, m))?;
    let now = OffsetDateTime::now_utc();
    let mut t = tenant(&state, &caller)?;
    let name = body["displayName"].as_str().unwrap_or_default();
    if t.detection_rules.iter().any(|r| {
        r["displayName"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }) {
        return Err(ApiError::new(
            API,
            StatusCode::CONFLICT,
            "Conflict",
            format!("A detection rule named '{name}' already exists."),
        ));
    }
    t.next_rule_id += 1;
    let mut rule = body.clone();
    let period = body["schedule"]["period"].as_str().unwrap_or("24H");
    let next_run = match period {
        "0" => now,
        p => now + parse_iso_duration(&format!("PT{p}")).unwrap_or(time::Duration::hours(24)),
    };
    if let Some(o) = rule.as_object_mut() {
        o.remove("@odata.type");
        o.insert("id".into(), json!(t.next_rule_id.to_string()));
        o.insert("createdBy".into(), json!(caller.app_id));
        o.insert("createdDateTime".into(), json!(fmt_time(now)));
        o.insert("lastModifiedBy".into(), json!(caller.app_id));
        o.insert("lastModifiedDateTime".into(), json!(fmt_time(now)));
        o.insert("detectorId".into(), json!(crate::util::new_guid()));
        o.insert("lastRunDetails".into(), json!({"lastRunDateTime": Value::Null, "status": Value::Null, "failureReason": Value::Null, "errorCode": Value::Null}));
    }
    rule["schedule"]["nextRunDateTime"] = json!(fmt_time(next_run));
    rule["queryCondition"]["lastModifiedDateTime"] = json!(fmt_time(now));
    t.detection_rules.push(rule.clone());
    rule["@odata.context"] = json!(context(&version, "security/rules/detectionRules/$entity"));
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

/// Merges a PATCH into a resource: objects recursively, everything else replaced.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_object() && t.get(k).is_some_and(Value::is_object) {
                    if let Some(inner) = t.get_mut(k) {
                        merge(inner, v);
                    }
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

async fn patch_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((version, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    beta_only(&version)?;
    let patch: Value = parse_json(API, &body)?;
    let Some(p) = patch.as_object() else {
        return Err(bad_body(API, "The request body must be a JSON object."));
    };
    for k in [
        "id",
        "createdBy",
        "createdDateTime",
        "detectorId",
        "lastRunDetails",
    ] {
        if p.contains_key(k) {
            return Err(bad_body(API, format!("Property '{k}' is read-only.")));
        }
    }
    let mut t = tenant(&state, &caller)?;
    let idx = t
        .detection_rules
        .iter()
        .position(|r| r["id"] == id.as_str())
        .ok_or_else(|| rule_not_found(&id))?;
    let mut updated = t.detection_rules[idx].clone();
    let clean: Map<String, Value> = p
        .iter()
        .filter(|(k, _)| !k.starts_with('@'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    merge(&mut updated, &Value::Object(clean));
    validate_rule(&updated).map_err(|m| bad_body(API, m))?;
    let now = fmt_time(OffsetDateTime::now_utc());
    updated["lastModifiedDateTime"] = json!(now);
    updated["lastModifiedBy"] = json!(caller.app_id);
    if p.contains_key("queryCondition") {
        updated["queryCondition"]["lastModifiedDateTime"] = json!(now);
    }
    t.detection_rules[idx] = updated.clone();
    updated["@odata.context"] = json!(context(&version, "security/rules/detectionRules/$entity"));
    Ok(Json(updated))
}

async fn delete_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((version, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    beta_only(&version)?;
    let mut t = tenant(&state, &caller)?;
    let before = t.detection_rules.len();
    t.detection_rules.retain(|r| r["id"] != id.as_str());
    if t.detection_rules.len() == before {
        return Err(rule_not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT)
}
