//! Microsoft Graph security APIs (`https://graph.microsoft.com/{v1.0|beta}/security/...`),
//! served under `/graph/...`: advanced hunting, incidents with their alerts, and custom detection
//! rules (beta). The operations are the ones `definitions/msgraph-metadata/permissions.json`
//! lists; their bodies follow the CSDL extracts beside it (the contract layer checks both ways).

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::defender::Alert;
use crate::errors::{Api, ApiError, ApiResult, bad_body, not_found, parse_json};
use crate::kql::{self, ExecOptions};
use crate::odata;
use crate::seed::TenantData;
use crate::state::AppState;
use crate::token::Caller;
use crate::util::{
    QueryParams, build_url, fmt_time, parse_iso_duration, parse_time, parse_usize_opt,
};

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
    let timespan = prop(&body, "Timespan")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let window = hunting_window(timespan, now).ok_or_else(|| {
        bad_body(
            API,
            format!(
                "Invalid Timespan '{}': expected an ISO 8601 duration (P1D), a start date/time, or an interval (start/end, start/duration, duration/end).",
                timespan.unwrap_or_default()
            ),
        )
    })?;
    opts.window = Some(window);
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

/// The window a hunting query covers. security-security-runhuntingquery.md: "If not provided,
/// the default timespan of 30 days will be used"; the formats are Date/Date, Duration/EndDate,
/// Start/Duration, a duration back from now, and a single date/time ("Start time with end time
/// defaulted to the current time").
fn hunting_window(
    timespan: Option<&str>,
    now: OffsetDateTime,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    match timespan {
        None => Some((now - time::Duration::days(30), now)),
        Some(ts) => crate::util::parse_timespan_window(ts, now)
            .or_else(|| parse_time(ts).map(|start| (start, now))),
    }
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

/// security-list-incidents.md: "The following properties support `$filter`: assignedTo,
/// classification, createdDateTime, determination, lastUpdateDateTime, severity, and status."
const INCIDENT_FILTER_FIELDS: &[&str] = &[
    "assignedTo",
    "classification",
    "createdDateTime",
    "determination",
    "lastUpdateDateTime",
    "severity",
    "status",
];

/// A Graph collection: `$filter` on `filterable`, `$orderby` where `orderable` allows it,
/// `$select`, `$count=true` (`@odata.count`), `$skip`, and `$top` as the PAGE SIZE. Graph pages a
/// collection with `@odata.nextLink`: a page holds `$top` items (never more than the service's
/// own page size) and the link, carrying the same `$top`, leads to the rest, so `$top` does not
/// cap the whole result. Which options an operation takes at all is the contract's check
/// (permissions.json); this only carries them out.
#[allow(clippy::too_many_arguments)] // one collection's inputs, each read once
fn graph_collection(
    state: &AppState,
    path: &str,
    raw: Option<&str>,
    mut items: Vec<Value>,
    filterable: Option<&[&str]>,
    orderable: bool,
    context: String,
) -> ApiResult<Value> {
    let bad = |m: String| ApiError::new(API, StatusCode::BAD_REQUEST, "BadRequest", m);
    let q = QueryParams::parse(raw);
    if let Some(f) = q.get("$filter") {
        let filter =
            odata::parse_filter(f, filterable).map_err(|e| bad(format!("Invalid $filter: {e}")))?;
        items.retain(|v| filter.matches(v));
    }
    if let Some(o) = q.get("$orderby") {
        if !orderable {
            return Err(bad(
                "Query option '$orderby' is not supported on this collection.".into(),
            ));
        }
        let keys =
            odata::parse_orderby(o, None).map_err(|e| bad(format!("Invalid $orderby: {e}")))?;
        odata::sort_by_keys(&mut items, &keys);
    }
    let count = match q.get("$count") {
        None => false,
        Some(c) if c.eq_ignore_ascii_case("true") => true,
        Some(c) if c.eq_ignore_ascii_case("false") => false,
        Some(c) => {
            return Err(bad(format!(
                "Invalid value '{c}' for $count: expected true or false."
            )));
        }
    };
    let total = items.len();
    let skip = parse_usize_opt(&q, "$skip").map_err(bad)?.unwrap_or(0);
    let top = parse_usize_opt(&q, "$top").map_err(bad)?;
    let page = top
        .unwrap_or(state.options.page_size)
        .min(state.options.page_size)
        .max(1);
    let start = skip.min(total);
    let end = start.saturating_add(page).min(total);
    let select = q.get("$select");
    let value: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|v| odata::select(v, select))
        .collect();
    let mut out = Map::new();
    out.insert("@odata.context".into(), Value::String(context));
    if count {
        out.insert("@odata.count".into(), json!(total));
    }
    out.insert("value".into(), Value::Array(value));
    if end < total {
        out.insert(
            "@odata.nextLink".into(),
            Value::String(build_url(
                &state.base_url,
                path,
                &q.with_overrides(&[("$skip", end.to_string())]),
            )),
        );
    }
    Ok(Value::Object(out))
}

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
    graph_collection(
        &state,
        uri.path(),
        raw.as_deref(),
        items,
        Some(INCIDENT_FILTER_FIELDS),
        false,
        context(&version, "security/incidents"),
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

/// What the incident pages add to the schema's enums, whose membership the contract checks
/// against `v1.0/security.xml` (`incidentStatus`, `alertClassification`, `alertDetermination`).
/// security-incident.md: `awaitingAction` — "Only Microsoft 365 Defender experts can set this
/// status"; `unknownFutureValue` — "Evolvable enumeration sentinel value. Don't use."
fn check_settable(field: &str, value: &Value) -> ApiResult<()> {
    match (field, value.as_str()) {
        ("status", Some("awaitingAction")) => Err(bad_body(
            API,
            "Invalid value 'awaitingAction' for property 'status': only Microsoft Defender Experts can set this status.",
        )),
        (_, Some("unknownFutureValue")) => Err(bad_body(
            API,
            format!(
                "Invalid value 'unknownFutureValue' for property '{field}': it is the evolvable enumeration sentinel, not a value."
            ),
        )),
        _ => Ok(()),
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
    // security-incident-update.md (the vendored revision) lists these as updatable.
    const WRITABLE: &[&str] = &[
        "assignedTo",
        "classification",
        "determination",
        "status",
        "customTags",
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
            "status" | "classification" | "determination" => check_settable(k, v)?,
            // "Owner of the incident, or null if no owner is assigned": null unassigns.
            "assignedTo" if !(v.is_string() || v.is_null()) => {
                return Err(bad_body(API, "assignedTo must be a string or null."));
            }
            "customTags" if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) => {
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

/// Properties of `detectionRule` and its parts that the beta CSDL marks "Deprecated … This
/// property will be removed from this resource on 2026-10-01", with their replacements. The
/// date has passed, so they are neither accepted nor answered: a client still sending one is
/// told what replaced it. Paths are as they appear in the body.
const REMOVED: &[(&str, &str)] = &[
    ("isEnabled", "status"),
    ("detectorId", "(nothing)"),
    (
        "lastRunDetails",
        "(nothing: runtime details are not exposed)",
    ),
    (
        "queryCondition/lastModifiedDateTime",
        "lastModifiedDateTime",
    ),
    ("schedule/period", "schedule/frequency"),
    ("schedule/nextRunDateTime", "(nothing)"),
    (
        "detectionAction/alertTemplate/category",
        "detectionAction/alertTemplate/tactics",
    ),
    (
        "detectionAction/alertTemplate/mitreTechniques",
        "detectionAction/alertTemplate/tactics",
    ),
    (
        "detectionAction/alertTemplate/impactedAssets",
        "detectionAction/alertTemplate/entityMappings",
    ),
    (
        "detectionAction/responseActions",
        "detectionAction/automatedActions",
    ),
];

/// Properties a client cannot set (`Read-only` in the CSDL descriptions, and the key).
const RULE_READ_ONLY: &[&str] = &[
    "createdBy",
    "createdDateTime",
    "lastModifiedBy",
    "lastModifiedDateTime",
];

/// `alertTemplate.severity`: "The possible values are: informational, low, medium, high."
const RULE_SEVERITIES: &[&str] = &["informational", "low", "medium", "high"];

fn at_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('/').try_fold(value, |v, key| v.get(key))
}

/// Refuses a request body carrying a removed property, naming its replacement.
fn refuse_removed(body: &Value) -> Result<(), String> {
    for (path, instead) in REMOVED {
        if at_path(body, path).is_some() {
            return Err(format!(
                "Property '{path}' was removed from microsoft.graph.security.detectionRule on 2026-10-01; use {instead}."
            ));
        }
    }
    Ok(())
}

/// Validates a complete detection rule (after a PATCH has been merged in) against the create
/// page (security-rulesroot-post-detectionrules.md: `displayName`, `id`, `queryCondition`,
/// `schedule`, `status` required) and the CSDL (`ruleSchedule.frequency` an `Edm.Duration`,
/// `alertTemplate.title`/`severity` not nullable). Types and enum membership are the contract's.
fn validate_rule(rule: &Value) -> Result<(), String> {
    if rule["id"].as_str().is_none_or(|s| s.trim().is_empty()) {
        return Err("id is required: the client-provided unique identifier of the rule.".into());
    }
    if rule["displayName"]
        .as_str()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err("displayName is required.".into());
    }
    match rule["status"].as_str() {
        None => {
            return Err("status is required: one of enabled, disabled, autoDisabled.".into());
        }
        Some("unknownFutureValue") => {
            return Err("status 'unknownFutureValue' is the evolvable enumeration sentinel, not a value: use enabled or disabled.".into());
        }
        Some(_) => {}
    }
    let query = rule["queryCondition"]["queryText"]
        .as_str()
        .ok_or("queryCondition.queryText is required.")?;
    kql::check_syntax(query)
        .map_err(|e| format!("queryCondition.queryText is not a valid query: {e}"))?;
    let frequency = rule["schedule"]["frequency"]
        .as_str()
        .ok_or("schedule.frequency is required: an ISO 8601 duration such as PT1H or P1D.")?;
    if parse_iso_duration(frequency).is_none_or(|d| d <= time::Duration::ZERO) {
        return Err(format!(
            "schedule.frequency '{frequency}' is not a positive ISO 8601 duration such as PT1H or P1D."
        ));
    }
    let action = &rule["detectionAction"];
    if !action.is_null() {
        let tpl = &action["alertTemplate"];
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
    // Which properties `$filter`/`$orderby` may name is the contract's check (the CSDL's
    // per-property annotations, in permissions.json).
    graph_collection(
        &state,
        uri.path(),
        raw.as_deref(),
        items,
        None,
        true,
        context(&version, "security/rules/detectionRules"),
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
    let Some(object) = body.as_object() else {
        return Err(bad_body(API, "The request body must be a JSON object."));
    };
    refuse_removed(&body).map_err(|m| bad_body(API, m))?;
    if let Some(k) = RULE_READ_ONLY.iter().find(|k| object.contains_key(**k)) {
        return Err(bad_body(API, format!("Property '{k}' is read-only.")));
    }
    validate_rule(&body).map_err(|m| bad_body(API, m))?;
    let now = fmt_time(OffsetDateTime::now_utc());
    let mut t = tenant(&state, &caller)?;
    let id = body["id"].as_str().unwrap_or_default().to_string();
    if t.detection_rules.iter().any(|r| r["id"] == id.as_str()) {
        return Err(ApiError::new(
            API,
            StatusCode::CONFLICT,
            "Conflict",
            format!("A detection rule with id '{id}' already exists."),
        ));
    }
    let mut rule = body.clone();
    if let Some(o) = rule.as_object_mut() {
        o.remove("@odata.type");
        o.insert("createdBy".into(), json!(caller.app_id));
        o.insert("createdDateTime".into(), json!(now));
        o.insert("lastModifiedBy".into(), json!(caller.app_id));
        o.insert("lastModifiedDateTime".into(), json!(now));
    }
    t.detection_rules.push(rule.clone());
    rule["@odata.context"] = json!(context(&version, "security/rules/detectionRules/$entity"));
    // The create page answers 201 with `Location: …/detectionRules/{id}`.
    let location = format!(
        "{}/graph/{version}/security/rules/detectionRules/{}",
        state.base_url,
        crate::util::encode_component(&id).replace('/', "%2F")
    );
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        Json(rule),
    )
        .into_response())
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
    refuse_removed(&patch).map_err(|m| bad_body(API, m))?;
    if let Some(k) = std::iter::once(&"id")
        .chain(RULE_READ_ONLY)
        .find(|k| p.contains_key(**k))
    {
        return Err(bad_body(API, format!("Property '{k}' is read-only.")));
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
    updated["lastModifiedDateTime"] = json!(fmt_time(OffsetDateTime::now_utc()));
    updated["lastModifiedBy"] = json!(caller.app_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunting_defaults_to_thirty_days_and_takes_a_single_start() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            hunting_window(None, now),
            Some((now - time::Duration::days(30), now))
        );
        let start = parse_time("2024-02-01T08:00:00Z").expect("time");
        assert_eq!(
            hunting_window(Some("2024-02-01T08:00:00Z"), now),
            Some((start, now))
        );
        assert_eq!(
            hunting_window(Some("P1D"), now),
            Some((now - time::Duration::days(1), now))
        );
        assert_eq!(hunting_window(Some("yesterday"), now), None);
    }

    #[test]
    fn removed_rule_properties_are_refused_with_their_replacement() {
        let refused = refuse_removed(&json!({"schedule": {"period": "1H"}})).expect_err("removed");
        assert!(refused.contains("schedule/frequency"), "{refused}");
        assert!(refuse_removed(&json!({"schedule": {"frequency": "PT1H"}})).is_ok());
    }
}
