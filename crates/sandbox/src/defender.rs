//! Defender for Endpoint API (`https://api.securitycenter.microsoft.com/api/...`), served
//! under `/defender/api/...`.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Multipart, OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::ActionTimings;
use crate::errors::{Api, ApiError, ApiResult, bad_body, not_found};
use crate::odata;
use crate::seed::TenantData;
use crate::state::{AppState, MachineState};
use crate::token::Caller;
use crate::util::{QueryParams, build_url, fmt_time, ms_time, new_guid, paginate, parse_usize_opt};

// ---------------------------------------------------------------------------------------
// Models (Microsoft casing)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddressInfo {
    pub ip_address: String,
    pub mac_address: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub operational_status: String,
}

/// The `machine` resource.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub id: String,
    pub computer_dns_name: String,
    #[serde(with = "ms_time")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "ms_time")]
    pub last_seen: OffsetDateTime,
    pub os_platform: String,
    /// Internal (hunting tables): machine.md documents `version` and `osBuild`, not `osVersion`.
    #[serde(skip)]
    pub os_version: Option<String>,
    pub os_processor: String,
    pub version: Option<String>,
    pub last_ip_address: String,
    pub last_external_ip_address: String,
    pub os_build: Option<i64>,
    pub health_status: String,
    pub device_value: String,
    pub rbac_group_id: i64,
    pub rbac_group_name: String,
    pub risk_score: String,
    pub exposure_level: String,
    pub is_aad_joined: bool,
    pub aad_device_id: Option<String>,
    pub machine_tags: Vec<String>,
    /// Internal (Graph device records): not a property of machine.md.
    #[serde(skip)]
    pub defender_av_status: String,
    pub onboarding_status: String,
    pub os_architecture: String,
    pub ip_addresses: Vec<IpAddressInfo>,
    /// Containment state (not part of the public resource).
    #[serde(skip)]
    pub state: MachineState,
}

/// A user seen logging on to a machine (`GET /api/machines/{id}/logonusers`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogonUser {
    pub id: String,
    pub account_name: String,
    pub account_domain: String,
    #[serde(with = "ms_time")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "ms_time")]
    pub last_seen: OffsetDateTime,
    pub logon_types: String,
    pub is_domain_admin: bool,
    pub is_only_network_user: bool,
}

/// A Live Response command as submitted and reported.
#[derive(Debug, Clone)]
pub struct LiveCommand {
    pub kind: String,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Cancellation {
    pub requestor: String,
    pub comment: String,
    pub at: OffsetDateTime,
}

/// A machine action. Its status is derived from the elapsed time at read time.
#[derive(Debug, Clone)]
pub struct MachineAction {
    pub id: String,
    pub action_type: String,
    pub scope: Option<String>,
    pub title: String,
    pub requestor: String,
    pub requestor_comment: String,
    pub machine_id: String,
    pub computer_dns_name: String,
    pub created: OffsetDateTime,
    /// Monotonic creation time for live actions; `None` for seeded history.
    pub created_at: Option<Instant>,
    /// Final status and last update of seeded history.
    pub fixed: Option<(String, OffsetDateTime)>,
    pub cancellation: Option<Cancellation>,
    pub related_file_info: Option<Value>,
    pub commands: Vec<LiveCommand>,
    pub external_id: Option<String>,
    /// Whether the success side effect has been applied to the machine.
    pub applied: bool,
}

impl MachineAction {
    /// Current status and last-update time.
    pub fn status(&self, timings: &ActionTimings) -> (String, OffsetDateTime) {
        if let Some(c) = &self.cancellation {
            return ("Cancelled".into(), c.at);
        }
        if let Some((s, at)) = &self.fixed {
            return (s.clone(), *at);
        }
        let elapsed = self.created_at.map(|c| c.elapsed()).unwrap_or_default();
        let to_time = |d: std::time::Duration| {
            self.created + time::Duration::try_from(d).unwrap_or(time::Duration::ZERO)
        };
        if elapsed < timings.pending {
            ("Pending".into(), self.created)
        } else if elapsed < timings.pending + timings.in_progress {
            ("InProgress".into(), to_time(timings.pending))
        } else {
            (
                "Succeeded".into(),
                to_time(timings.pending + timings.in_progress),
            )
        }
    }

    pub fn to_json(&self, timings: &ActionTimings) -> Value {
        let (status, updated) = self.status(timings);
        let commands: Vec<Value> = self
            .commands
            .iter()
            .enumerate()
            .map(|(i, c)| {
                // run-live-response.md, "Response example": "Possible values for each command
                // status are "Created", "Completed", and "Failed"": a command that has not
                // finished (pending, running or cancelled before it ran) stays Created.
                let (cmd_status, start, end) = match status.as_str() {
                    "Pending" | "Cancelled" => ("Created", Value::Null, Value::Null),
                    "InProgress" => ("Created", json!(fmt_time(updated)), Value::Null),
                    "Succeeded" => ("Completed", json!(fmt_time(self.created)), json!(fmt_time(updated))),
                    _ => ("Failed", json!(fmt_time(self.created)), json!(fmt_time(updated))),
                };
                json!({
                    "index": i,
                    "startTime": start,
                    "endTime": end,
                    "commandStatus": cmd_status,
                    "errors": [],
                    "command": {
                        "type": c.kind,
                        "params": c.params.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                    }
                })
            })
            .collect();
        json!({
            "id": self.id,
            "type": self.action_type,
            "title": self.title,
            "requestor": self.requestor,
            "requestorComment": self.requestor_comment,
            "status": status,
            "machineId": self.machine_id,
            "computerDnsName": self.computer_dns_name,
            "creationDateTimeUtc": fmt_time(self.created),
            "lastUpdateDateTimeUtc": fmt_time(updated),
            "cancellationRequestor": self.cancellation.as_ref().map(|c| c.requestor.clone()),
            "cancellationComment": self.cancellation.as_ref().map(|c| c.comment.clone()),
            "cancellationDateTimeUtc": self.cancellation.as_ref().map(|c| fmt_time(c.at)),
            "scope": self.scope,
            // machineaction.md spells the property externalID.
            "externalID": self.external_id,
            "requestSource": "PublicApi",
            "relatedFileInfo": self.related_file_info,
            "commands": commands,
        })
    }
}

/// A custom indicator (`/api/indicators`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    pub id: String,
    pub indicator_value: String,
    pub indicator_type: String,
    pub action: String,
    pub application: Option<String>,
    pub source: String,
    pub source_type: String,
    pub title: String,
    #[serde(with = "ms_time")]
    pub creation_time_date_time_utc: OffsetDateTime,
    pub created_by: String,
    #[serde(with = "ms_time::option")]
    pub expiration_time: Option<OffsetDateTime>,
    #[serde(with = "ms_time")]
    pub last_update_time: OffsetDateTime,
    pub last_updated_by: String,
    pub severity: String,
    pub description: String,
    pub recommended_actions: Option<String>,
    pub rbac_group_names: Vec<String>,
    pub rbac_group_ids: Vec<i64>,
    pub generate_alert: bool,
    pub created_by_source: String,
    /// ti-indicator.md spells the property externalID.
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
}

/// A Live Response library file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LibraryFile {
    pub file_name: String,
    pub sha256: String,
    pub description: String,
    #[serde(with = "ms_time")]
    pub creation_time: OffsetDateTime,
    #[serde(with = "ms_time")]
    pub last_updated_time: OffsetDateTime,
    pub created_by: String,
    pub has_parameters: bool,
    pub parameters_description: Option<String>,
    #[serde(skip)]
    pub content: Vec<u8>,
}

/// A file entity (`/api/files/{sha1}`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub sha1: String,
    pub sha256: String,
    /// Internal (hunting tables, indicators): files.md has no `md5` property.
    #[serde(skip)]
    pub md5: String,
    pub global_prevalence: i64,
    #[serde(with = "ms_time")]
    pub global_first_observed: OffsetDateTime,
    #[serde(with = "ms_time")]
    pub global_last_observed: OffsetDateTime,
    pub size: i64,
    pub file_type: Option<String>,
    pub is_pe_file: bool,
    pub file_publisher: Option<String>,
    pub file_product_name: Option<String>,
    pub signer: Option<String>,
    pub issuer: Option<String>,
    pub signer_hash: Option<String>,
    pub is_valid_certificate: bool,
    pub determination_type: String,
    pub determination_value: String,
    /// Name the file is usually seen with (for `/stats` `topFileNames`).
    #[serde(skip)]
    pub file_name: String,
}

/// A Defender alert (`/api/alerts`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: String,
    pub incident_id: i64,
    pub investigation_id: Option<i64>,
    pub assigned_to: Option<String>,
    pub severity: String,
    pub status: String,
    pub classification: Option<String>,
    pub determination: Option<String>,
    pub investigation_state: String,
    pub detection_source: String,
    pub detector_id: String,
    pub category: String,
    pub threat_family_name: Option<String>,
    pub title: String,
    pub description: String,
    #[serde(with = "ms_time")]
    pub alert_creation_time: OffsetDateTime,
    #[serde(with = "ms_time")]
    pub first_event_time: OffsetDateTime,
    #[serde(with = "ms_time")]
    pub last_event_time: OffsetDateTime,
    #[serde(with = "ms_time")]
    pub last_update_time: OffsetDateTime,
    #[serde(with = "ms_time::option")]
    pub resolved_time: Option<OffsetDateTime>,
    pub machine_id: String,
    pub computer_dns_name: String,
    pub rbac_group_name: String,
    pub aad_tenant_id: String,
    pub threat_name: Option<String>,
    pub mitre_techniques: Vec<String>,
    pub related_user: Option<Value>,
    /// Internal (Graph alerts): not a property of alerts.md.
    #[serde(skip)]
    pub logged_on_users: Vec<Value>,
    pub comments: Vec<Value>,
    pub evidence: Vec<Value>,
    /// What the alert is about, for the entity APIs and hunting data.
    #[serde(skip)]
    pub related_sha1: Option<String>,
    #[serde(skip)]
    pub related_ip: Option<String>,
    #[serde(skip)]
    pub related_domain: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------------------

pub fn router(state: AppState) -> Router<AppState> {
    // Machine and machine-action endpoints carry Microsoft's documented per-tenant limits.
    let limited = Router::new()
        .route("/api/machines", get(list_machines))
        .route("/api/machines/{id}", get(get_machine))
        .route(
            "/api/machines/{id}/{sub}",
            get(machine_sub).post(machine_action),
        )
        .route("/api/machineactions", get(list_actions))
        .route("/api/machineactions/{id}", get(get_action))
        .route(
            "/api/machineactions/{id}/{op}",
            get(action_get_op).post(action_post_op),
        )
        .route_layer(from_fn_with_state(state.clone(), rate_limit));
    let rest = Router::new()
        .route(
            "/api/indicators",
            get(list_indicators).post(submit_indicator),
        )
        .route("/api/indicators/import", post(import_indicators))
        .route("/api/indicators/{id}", delete(delete_indicator))
        .route("/api/libraryfiles", get(list_library).post(upload_library))
        .route("/api/libraryfiles/{name}", delete(delete_library))
        .route("/api/files/{sha1}", get(get_file))
        .route("/api/files/{sha1}/{sub}", get(file_sub))
        .route("/api/ips/{ip}/stats", get(ip_stats))
        .route("/api/domains/{domain}/stats", get(domain_stats))
        .route("/api/alerts", get(list_alerts))
        .route("/api/alerts/{id}", get(get_alert));
    Router::new()
        .merge(limited)
        .merge(rest)
        .route_layer(from_fn_with_state(state, crate::token::require_defender))
}

async fn rate_limit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    req: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    match state.rate_limit(&caller.tenant_id) {
        Ok(()) => next.run(req).await,
        Err(retry_after) => {
            crate::faults::throttle_error(Api::Defender, retry_after, None).into_response()
        }
    }
}

const API: Api = Api::Defender;

fn context(state: &AppState, entity: &str) -> String {
    format!("{}/defender/api/$metadata#{entity}", state.base_url)
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
            "The tenant is not provisioned for Defender for Endpoint.",
        )
    })
}

/// Filters, orders and pages JSON resources the way the Defender and Graph list APIs do, and
/// wraps them in an OData collection with `@odata.nextLink` when more remain.
#[allow(clippy::too_many_arguments)] // one call per list endpoint; a struct would add nothing
pub fn odata_collection(
    api: Api,
    base_url: &str,
    original_path: &str,
    raw_query: Option<&str>,
    mut items: Vec<Value>,
    allowed: Option<&[&str]>,
    context: String,
    page_size: usize,
) -> ApiResult<Value> {
    // common-errors.md: Defender answers an invalid OData query with code ODataError.
    let code = if api == Api::Defender {
        "ODataError"
    } else {
        "BadRequest"
    };
    let bad = |m: String| ApiError::new(api, StatusCode::BAD_REQUEST, code, m);
    let q = QueryParams::parse(raw_query);
    if let Some(f) = q.get("$filter") {
        let filter =
            odata::parse_filter(f, allowed).map_err(|e| bad(format!("Invalid $filter: {e}")))?;
        items.retain(|v| filter.matches(v));
    }
    if let Some(o) = q.get("$orderby") {
        let keys =
            odata::parse_orderby(o, None).map_err(|e| bad(format!("Invalid $orderby: {e}")))?;
        odata::sort_by_keys(&mut items, &keys);
    }
    let skip = parse_usize_opt(&q, "$skip").map_err(bad)?.unwrap_or(0);
    let top = parse_usize_opt(&q, "$top").map_err(bad)?;
    let page = paginate(items, skip, top, page_size);
    let select = q.get("$select");
    let value: Vec<Value> = page
        .items
        .into_iter()
        .map(|v| odata::select(v, select))
        .collect();
    let mut out = Map::new();
    out.insert("@odata.context".into(), Value::String(context));
    out.insert("value".into(), Value::Array(value));
    if let Some((next_skip, next_top)) = page.next {
        let mut overrides = vec![("$skip", next_skip.to_string())];
        if let Some(t) = next_top {
            overrides.push(("$top", t.to_string()));
        }
        out.insert(
            "@odata.nextLink".into(),
            Value::String(build_url(
                base_url,
                original_path,
                &q.with_overrides(&overrides),
            )),
        );
    }
    Ok(Value::Object(out))
}

/// get-machines.md, get-alerts.md, get-machineactions-collection.md and
/// get-ti-indicators-collection.md: "$top with max value of 10,000".
pub const DEFENDER_TOP_MAX: usize = 10_000;

/// A Defender list the way its pages document it: `$filter` on the endpoint's documented
/// properties with eq/ne/gt/ge/lt/le and `startswith()` only (the functions shown in
/// exposed-apis-odata-samples.md), `$top` up to 10,000, `$skip`, and `extra` options (such as
/// `$expand`, checked by the caller). Anything else (`$orderby`, `$select`, `contains()`) is
/// refused with common-errors.md's "ODataError | BadRequest (400) | Invalid OData URI query".
#[allow(clippy::too_many_arguments)] // one call per list endpoint, as odata_collection
pub fn defender_collection(
    base_url: &str,
    original_path: &str,
    raw_query: Option<&str>,
    items: Vec<Value>,
    allowed: &[&str],
    context: String,
    page_size: usize,
    extra: &[&str],
) -> ApiResult<Value> {
    let q = QueryParams::parse(raw_query);
    let names = url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes())
        .map(|(name, _)| name.into_owned());
    for name in names {
        let documented = ["$filter", "$top", "$skip"]
            .iter()
            .chain(extra)
            .any(|o| o.eq_ignore_ascii_case(&name));
        if name.starts_with('$') && !documented {
            return Err(odata_error(format!(
                "The query option '{name}' is not supported on this entity set."
            )));
        }
    }
    if let Some(f) = q.get("$filter") {
        let filter = odata::parse_filter(f, Some(allowed))
            .map_err(|e| odata_error(format!("Invalid $filter: {e}")))?;
        if let Some(func) = filter
            .functions()
            .into_iter()
            .find(|f| *f != odata::StrFunc::StartsWith)
        {
            return Err(odata_error(format!(
                "Invalid $filter: the function {} is not supported; use eq, ne, gt, ge, lt, le or startswith.",
                func.name()
            )));
        }
    }
    let top = parse_usize_opt(&q, "$top").map_err(odata_error)?;
    if let Some(top) = top.filter(|t| *t > DEFENDER_TOP_MAX) {
        return Err(odata_error(format!(
            "Invalid $top {top}: the maximum is {DEFENDER_TOP_MAX}."
        )));
    }
    odata_collection(
        API,
        base_url,
        original_path,
        raw_query,
        items,
        Some(allowed),
        context,
        page_size,
    )
}

fn odata_error(message: String) -> ApiError {
    ApiError::new(API, StatusCode::BAD_REQUEST, "ODataError", message)
}

/// Reads a JSON body property case-insensitively (the service binds bodies that way).
fn prop<'v>(body: &'v Value, name: &str) -> Option<&'v Value> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn prop_str<'v>(body: &'v Value, name: &str) -> Option<&'v str> {
    prop(body, name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------------------
// Machines
// ---------------------------------------------------------------------------------------

/// get-machines.md, "API description": "The OData's `$filter` query is supported on:
/// computerDnsName, id, version, deviceValue, aadDeviceId, machineTags, lastSeen, exposureLevel,
/// onboardingStatus, lastIpAddress, healthStatus, osPlatform, riskScore and rbacGroupId."
/// (`rbacGroupName` is not among them.)
const MACHINE_FILTER_FIELDS: &[&str] = &[
    "computerDnsName",
    "id",
    "version",
    "deviceValue",
    "aadDeviceId",
    "machineTags",
    "lastSeen",
    "exposureLevel",
    "onboardingStatus",
    "lastIpAddress",
    "healthStatus",
    "osPlatform",
    "riskScore",
    "rbacGroupId",
];

async fn list_machines(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let items: Vec<Value> = {
        let mut t = tenant(&state, &caller)?;
        t.settle_actions(&state.options.action_timings);
        t.machines
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
            .collect()
    };
    defender_collection(
        &state.base_url,
        uri.path(),
        raw.as_deref(),
        items,
        MACHINE_FILTER_FIELDS,
        context(&state, "Machines"),
        state.options.page_size,
        &[],
    )
    .map(Json)
}

fn machine_not_found(id: &str) -> ApiError {
    not_found(API, format!("Machine {id} was not found"))
}

async fn get_machine(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    t.settle_actions(&state.options.action_timings);
    let m = t.machine(&id).ok_or_else(|| machine_not_found(&id))?;
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            Value::String(context(&state, "Machines/$entity")),
        );
    }
    Ok(Json(v))
}

async fn machine_sub(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, sub)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let t = tenant(&state, &caller)?;
    let m = t.machine(&id).ok_or_else(|| machine_not_found(&id))?;
    match sub.to_ascii_lowercase().as_str() {
        "logonusers" => {
            let users = t.logon_users.get(&m.id).cloned().unwrap_or_default();
            Ok(Json(
                json!({"@odata.context": context(&state, "Users"), "value": users}),
            ))
        }
        "alerts" => {
            let alerts: Vec<&Alert> = t.alerts.iter().filter(|a| a.machine_id == m.id).collect();
            Ok(Json(
                json!({"@odata.context": context(&state, "Alerts"), "value": alerts}),
            ))
        }
        _ => Err(not_found(
            API,
            format!("Resource '{sub}' was not found for machine {id}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Machine actions
// ---------------------------------------------------------------------------------------

impl TenantData {
    pub fn machine(&self, id: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.id.eq_ignore_ascii_case(id))
    }

    /// Applies the side effects of actions that have succeeded since the last look, in
    /// completion order (status is computed lazily, so this runs before reads).
    pub fn settle_actions(&mut self, timings: &ActionTimings) {
        let mut done: Vec<usize> = (0..self.actions.len())
            .filter(|i| {
                !self.actions[*i].applied && self.actions[*i].status(timings).0 == "Succeeded"
            })
            .collect();
        done.sort_by_key(|i| self.actions[*i].status(timings).1);
        for i in done {
            let a = self.actions[i].clone();
            self.actions[i].applied = true;
            let Some(m) = self.machines.iter_mut().find(|m| m.id == a.machine_id) else {
                continue;
            };
            match a.action_type.as_str() {
                // isolate-machine.md: "Calling this API on unmanaged devices triggers the
                // contain device from the network action."
                "Isolate" if m.onboarding_status != "Onboarded" => {
                    m.state.isolation = Some("UnManagedDevice".into())
                }
                "Isolate" => {
                    m.state.isolation = Some(a.scope.clone().unwrap_or_else(|| "Full".into()))
                }
                "Unisolate" => m.state.isolation = None,
                "RestrictCodeExecution" => m.state.code_execution_restricted = true,
                "UnrestrictCodeExecution" => m.state.code_execution_restricted = false,
                "Offboard" => {
                    m.state.offboarded = true;
                    m.health_status = "Inactive".into();
                }
                "StopAndQuarantineFile" => {
                    if let Some(sha1) = a
                        .related_file_info
                        .as_ref()
                        .and_then(|r| r["fileIdentifier"].as_str())
                    {
                        m.state.quarantined_files.push(sha1.to_string());
                    }
                }
                _ => {}
            }
        }
    }
}

fn action_title(kind: &str, computer: &str) -> String {
    let verb = match kind {
        "Isolate" => "Isolate device",
        "Unisolate" => "Release device from isolation",
        "RestrictCodeExecution" => "Restrict app execution",
        "UnrestrictCodeExecution" => "Remove app restriction",
        "RunAntiVirusScan" => "Run antivirus scan",
        "CollectInvestigationPackage" => "Collect investigation package",
        "StopAndQuarantineFile" => "Stop and quarantine file",
        "Offboard" => "Offboard device",
        "LiveResponse" => "Live response session",
        other => other,
    };
    format!("{verb} on {computer}")
}

async fn machine_action(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        crate::errors::parse_json(API, &body)?
    };
    if !body.is_object() {
        return Err(bad_body(API, "The request body must be a JSON object."));
    }
    let kind = match action.to_ascii_lowercase().as_str() {
        "isolate" => "Isolate",
        "unisolate" => "Unisolate",
        "restrictcodeexecution" => "RestrictCodeExecution",
        "unrestrictcodeexecution" => "UnrestrictCodeExecution",
        "runantivirusscan" => "RunAntiVirusScan",
        "collectinvestigationpackage" => "CollectInvestigationPackage",
        "stopandquarantinefile" => "StopAndQuarantineFile",
        "offboard" => "Offboard",
        "runliveresponse" => "LiveResponse",
        _ => {
            return Err(not_found(
                API,
                format!("Action '{action}' is not supported on machines"),
            ));
        }
    };
    // Every action page marks Comment Required except run-live-response.md, whose request body
    // table does not.
    let comment = match prop_str(&body, "Comment") {
        Some(comment) => comment,
        None if kind == "LiveResponse" => "",
        None => return Err(bad_body(API, "The 'Comment' field is required.")),
    };
    let mut scope = None;
    let mut related_file_info = None;
    let mut commands = Vec::new();
    match kind {
        "Isolate" => {
            // isolate-machine.md, "Request body": IsolationType "Allowed values are: 'Full' or
            // 'Selective'" (optional). No page documents `UnManagedDevice`.
            let it = prop_str(&body, "IsolationType").unwrap_or("Full");
            let Some(it) = ["Full", "Selective"]
                .into_iter()
                .find(|x| x.eq_ignore_ascii_case(it))
            else {
                return Err(bad_body(
                    API,
                    format!("Invalid IsolationType '{it}': expected Full or Selective."),
                ));
            };
            scope = Some(it.to_string());
        }
        "RunAntiVirusScan" => {
            // run-av-scan.md, "Request body": ScanType is Required.
            let Some(st) = prop_str(&body, "ScanType") else {
                return Err(bad_body(API, "The 'ScanType' field is required."));
            };
            let Some(st) = ["Quick", "Full"]
                .into_iter()
                .find(|x| x.eq_ignore_ascii_case(st))
            else {
                return Err(bad_body(
                    API,
                    format!("Invalid ScanType '{st}': expected Quick or Full."),
                ));
            };
            scope = Some(st.to_string());
        }
        "StopAndQuarantineFile" => {
            let Some(sha1) = prop_str(&body, "Sha1") else {
                return Err(bad_body(API, "The 'Sha1' field is required."));
            };
            if !is_hex(sha1, 40) {
                return Err(bad_body(
                    API,
                    format!("'{sha1}' is not a valid SHA-1 (40 hexadecimal characters)."),
                ));
            }
            related_file_info =
                Some(json!({"fileIdentifier": sha1.to_lowercase(), "fileIdentifierType": "Sha1"}));
        }
        "LiveResponse" => {
            let Some(cmds) = prop(&body, "Commands")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
            else {
                return Err(bad_body(
                    API,
                    "The 'Commands' field is required and must be a non-empty array.",
                ));
            };
            for (i, c) in cmds.iter().enumerate() {
                let Some(ty) = prop_str(c, "type") else {
                    return Err(bad_body(API, format!("Commands[{i}].type is required.")));
                };
                let Some(ty) = ["RunScript", "PutFile", "GetFile"]
                    .into_iter()
                    .find(|x| x.eq_ignore_ascii_case(ty))
                else {
                    return Err(bad_body(
                        API,
                        format!(
                            "Commands[{i}].type '{ty}' is not supported: expected RunScript, PutFile or GetFile."
                        ),
                    ));
                };
                let params: Vec<(String, String)> = prop(c, "params")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| {
                                Some((
                                    prop_str(p, "key")?.to_string(),
                                    prop(p, "value")?.as_str().unwrap_or_default().to_string(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let param = |k: &str| {
                    params
                        .iter()
                        .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.clone())
                        .filter(|v| !v.is_empty())
                };
                let required = match ty {
                    "RunScript" => "ScriptName",
                    "PutFile" => "FileName",
                    _ => "Path",
                };
                let Some(value) = param(required) else {
                    return Err(bad_body(
                        API,
                        format!("Commands[{i}] ({ty}) requires the parameter '{required}'."),
                    ));
                };
                if ty != "GetFile" {
                    let t = tenant(&state, &caller)?;
                    if !t
                        .library
                        .iter()
                        .any(|f| f.file_name.eq_ignore_ascii_case(&value))
                    {
                        return Err(bad_body(
                            API,
                            format!(
                                "Commands[{i}] ({ty}): the file '{value}' was not found in the live response library."
                            ),
                        ));
                    }
                }
                commands.push(LiveCommand {
                    kind: ty.to_string(),
                    params,
                });
            }
        }
        _ => {}
    }

    let mut t = tenant(&state, &caller)?;
    let timings = state.options.action_timings;
    t.settle_actions(&timings);
    let m = t
        .machine(&id)
        .ok_or_else(|| machine_not_found(&id))?
        .clone();
    // isolate-machine.md: isolate on an unmanaged device contains it (and unisolate releases
    // it); no other action can reach a device that is not onboarded.
    let managed = m.onboarding_status == "Onboarded";
    if !managed && !matches!(kind, "Isolate" | "Unisolate") {
        return Err(ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "InvalidMachineState",
            format!(
                "Machine {} is not onboarded (onboardingStatus {}); only containment (isolate) and its release (unisolate) are possible.",
                m.id, m.onboarding_status
            ),
        ));
    }
    if m.state.offboarded {
        return Err(ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "InvalidMachineState",
            format!("Machine {} has been offboarded.", m.id),
        ));
    }
    if let Some(active) = t.actions.iter().find(|a| {
        a.machine_id == m.id
            && a.action_type == kind
            && matches!(a.status(&timings).0.as_str(), "Pending" | "InProgress")
    }) {
        return Err(ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "ActiveRequestAlreadyExists",
            format!(
                "Action is already in progress: {} action {} on machine {} is {}.",
                kind,
                active.id,
                m.id,
                active.status(&timings).0
            ),
        ));
    }
    let action = MachineAction {
        id: new_guid(),
        action_type: kind.to_string(),
        scope,
        title: action_title(kind, &m.computer_dns_name),
        requestor: caller.app_id.clone(),
        requestor_comment: comment.to_string(),
        machine_id: m.id.clone(),
        computer_dns_name: m.computer_dns_name.clone(),
        created: OffsetDateTime::now_utc(),
        created_at: Some(Instant::now()),
        fixed: None,
        cancellation: None,
        related_file_info,
        commands,
        external_id: prop_str(&body, "ExternalId").map(str::to_string),
        applied: false,
    };
    let mut v = action.to_json(&timings);
    t.actions.push(action);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            Value::String(context(&state, "MachineActions/$entity")),
        );
    }
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// get-machineactions-collection.md, "API description": `$filter` on "id, status, machineId,
/// type, requestor and creationDateTimeUtc".
const ACTION_FILTER_FIELDS: &[&str] = &[
    "id",
    "status",
    "machineId",
    "type",
    "requestor",
    "creationDateTimeUtc",
];

async fn list_actions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let items: Vec<Value> = {
        let mut t = tenant(&state, &caller)?;
        let timings = state.options.action_timings;
        t.settle_actions(&timings);
        t.actions.iter().map(|a| a.to_json(&timings)).collect()
    };
    defender_collection(
        &state.base_url,
        uri.path(),
        raw.as_deref(),
        items,
        ACTION_FILTER_FIELDS,
        context(&state, "MachineActions"),
        state.options.page_size,
        &[],
    )
    .map(Json)
}

fn action_not_found(id: &str) -> ApiError {
    not_found(API, format!("Machine action {id} was not found"))
}

async fn get_action(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let timings = state.options.action_timings;
    t.settle_actions(&timings);
    let a = t
        .actions
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| action_not_found(&id))?;
    let mut v = a.to_json(&timings);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            Value::String(context(&state, "MachineActions/$entity")),
        );
    }
    Ok(Json(v))
}

async fn action_post_op(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, op)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    if !op.eq_ignore_ascii_case("cancel") {
        return Err(not_found(
            API,
            format!("Operation '{op}' is not supported on machine actions"),
        ));
    }
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        crate::errors::parse_json(API, &body)?
    };
    // cancel-machine-action.md, "Request body": Comment is not marked Required.
    let comment = prop_str(&body, "Comment").unwrap_or_default();
    let mut t = tenant(&state, &caller)?;
    let timings = state.options.action_timings;
    t.settle_actions(&timings);
    let a = t
        .actions
        .iter_mut()
        .find(|a| a.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| action_not_found(&id))?;
    let status = a.status(&timings).0;
    // cancel-machine-action.md, "API description": "Cancel an already launched machine action
    // that isn't yet in final state (completed, canceled, failed)": Pending and InProgress.
    if !matches!(status.as_str(), "Pending" | "InProgress") {
        return Err(ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Machine action {id} cannot be cancelled: its status {status} is final."),
        ));
    }
    a.cancellation = Some(Cancellation {
        requestor: caller.app_id.clone(),
        comment: comment.to_string(),
        at: OffsetDateTime::now_utc(),
    });
    let mut v = a.to_json(&timings);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            Value::String(context(&state, "MachineActions/$entity")),
        );
    }
    Ok(Json(v))
}

async fn action_get_op(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, op)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let timings = state.options.action_timings;
    let (action, computer) = {
        let mut t = tenant(&state, &caller)?;
        t.settle_actions(&timings);
        let a = t
            .actions
            .iter()
            .find(|a| a.id.eq_ignore_ascii_case(&id))
            .ok_or_else(|| action_not_found(&id))?
            .clone();
        let computer = a.computer_dns_name.clone();
        let library: Vec<LibraryFile> = t.library.clone();
        ((a, library), computer)
    };
    let (a, library) = action;
    let status = a.status(&timings).0;
    let lower = op.to_ascii_lowercase();
    if lower == "getpackageuri" {
        if a.action_type != "CollectInvestigationPackage" {
            return Err(bad_body(
                API,
                format!(
                    "Machine action {id} is a {} action; only CollectInvestigationPackage actions have a package.",
                    a.action_type
                ),
            ));
        }
        if status != "Succeeded" {
            return Err(not_found(
                API,
                format!(
                    "The investigation package of action {id} is not available yet (status {status})."
                ),
            ));
        }
        let readme = format!(
            "Investigation package collected by the Defender sandbox.\r\nMachine: {computer}\r\nAction: {id}\r\nCollected: {}\r\n",
            fmt_time(a.status(&timings).1)
        );
        let url = state.add_download(
            "application/zip",
            crate::util::zip_single("README.txt", readme.as_bytes()),
            &format!("{id}.zip"),
        );
        return Ok(Json(
            json!({"@odata.context": context(&state, "Edm.String"), "value": url}),
        ));
    }
    if let Some(index) = lower
        .strip_prefix("getliveresponseresultdownloadlink(index=")
        .and_then(|r| r.strip_suffix(')'))
    {
        let Ok(index) = index.trim().parse::<usize>() else {
            return Err(bad_body(API, format!("Invalid command index '{index}'.")));
        };
        if a.action_type != "LiveResponse" {
            return Err(bad_body(
                API,
                format!("Machine action {id} is not a live response action."),
            ));
        }
        let Some(cmd) = a.commands.get(index) else {
            return Err(bad_body(
                API,
                format!(
                    "Command index {index} is out of range: the action has {} command(s).",
                    a.commands.len()
                ),
            ));
        };
        if status != "Succeeded" {
            return Err(bad_body(
                API,
                format!(
                    "The result of command {index} is not available: the action status is {status}."
                ),
            ));
        }
        let param = |k: &str| {
            cmd.params
                .iter()
                .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let url = match cmd.kind.as_str() {
            "RunScript" => {
                let script = param("ScriptName");
                let args = param("Args");
                let file = library
                    .iter()
                    .find(|f| f.file_name.eq_ignore_ascii_case(&script));
                let known = file.is_some();
                // The script's own header line stands in for what it would print.
                let header = file
                    .map(|f| {
                        String::from_utf8_lossy(&f.content)
                            .lines()
                            .nth(1)
                            .unwrap_or_default()
                            .trim_start_matches("# ")
                            .to_string()
                    })
                    .unwrap_or_default();
                let result = json!({
                    "script_name": script,
                    "exit_code": if known { 0 } else { 1 },
                    "script_output": format!(
                        "Transcript started, output file is C:\\ProgramData\\Microsoft\\Windows Defender Advanced Threat Protection\\Temp\\PSScriptOutputs\\PSScript_Transcript_{id}.txt\n{script} {args}\n{header}\nHost: {computer}\nCompleted successfully.\n"
                    ),
                    "script_errors": if known { String::new() } else { format!("The script '{script}' is no longer in the library.") },
                });
                state.add_download(
                    "application/json",
                    result.to_string().into_bytes(),
                    &format!("{id}_{index}.json"),
                )
            }
            "GetFile" => {
                let path = param("Path");
                let content = format!("Sandbox copy of {path} collected from {computer}\n");
                let name = path
                    .rsplit(['\\', '/'])
                    .next()
                    .unwrap_or("file")
                    .to_string();
                state.add_download(
                    "application/gzip",
                    crate::util::gzip_stored(content.as_bytes()),
                    &format!("{name}.gz"),
                )
            }
            _ => {
                return Err(bad_body(
                    API,
                    format!(
                        "Command {index} ({}) produces no downloadable result.",
                        cmd.kind
                    ),
                ));
            }
        };
        return Ok(Json(
            json!({"@odata.context": context(&state, "Edm.String"), "value": url}),
        ));
    }
    Err(not_found(
        API,
        format!("Operation '{op}' is not supported on machine actions"),
    ))
}

// ---------------------------------------------------------------------------------------
// Indicators
// ---------------------------------------------------------------------------------------

const INDICATOR_TYPES: &[&str] = &[
    "FileSha1",
    "FileSha256",
    "FileMd5",
    "IpAddress",
    "Url",
    "DomainName",
    "CertificateThumbprint",
];
/// The pages disagree: post-ti-indicator.md still lists Alert and AlertAndBlock among the
/// possible actions, but ti-indicator.md, "Indicator Types", the newer guidance, says "The
/// indicator action types supported by the API are: Allowed, Audit, Block, BlockAndRemediate,
/// Warn" and "The prior response actions (AlertAndBlock, and Alert) will be supported until
/// January 2022". We follow ti-indicator.md and refuse the retired two.
const INDICATOR_ACTIONS: &[&str] = &["Warn", "Block", "Audit", "BlockAndRemediate", "Allowed"];
const RETIRED_INDICATOR_ACTIONS: &[&str] = &["Alert", "AlertAndBlock"];
/// post-ti-indicator.md and import-ti-indicators.md, "Limitations" 2: "There's a limit of
/// 15,000 active indicators per tenant."
pub const MAX_ACTIVE_INDICATORS: usize = 15_000;
/// get-ti-indicators-collection.md, "API description": the `$filter`-able properties.
const INDICATOR_FILTER_FIELDS: &[&str] = &[
    "application",
    "createdByDisplayName",
    "expirationTime",
    "generateAlert",
    "title",
    "rbacGroupNames",
    "rbacGroupIds",
    "indicatorValue",
    "indicatorType",
    "creationTimeDateTimeUtc",
    "createdBy",
    "action",
    "severity",
];
const SEVERITIES: &[&str] = &["Informational", "Low", "Medium", "High"];

async fn list_indicators(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let items: Vec<Value> = tenant(&state, &caller)?
        .indicators
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect();
    defender_collection(
        &state.base_url,
        uri.path(),
        raw.as_deref(),
        items,
        INDICATOR_FILTER_FIELDS,
        context(&state, "Indicators"),
        state.options.page_size.max(100),
        &[],
    )
    .map(Json)
}

/// Validates an indicator submission; `Err` carries the failure reason.
fn validate_indicator(body: &Value) -> Result<(String, String, String, String, String), String> {
    let value = prop_str(body, "indicatorValue").ok_or("indicatorValue is required.")?;
    let ty_raw = prop_str(body, "indicatorType").ok_or("indicatorType is required.")?;
    let ty = INDICATOR_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(ty_raw))
        .ok_or_else(|| {
            format!(
                "indicatorType '{ty_raw}' is invalid: expected one of {}.",
                INDICATOR_TYPES.join(", ")
            )
        })?;
    let ok = match *ty {
        "FileSha1" | "CertificateThumbprint" => is_hex(value, 40),
        "FileSha256" => is_hex(value, 64),
        "FileMd5" => is_hex(value, 32),
        "IpAddress" => match value.parse::<std::net::IpAddr>() {
            // Only public addresses can be indicators.
            Ok(std::net::IpAddr::V4(ip)) => {
                !(ip.is_private()
                    || ip.is_loopback()
                    || ip.is_link_local()
                    || ip.is_unspecified()
                    || ip.is_broadcast())
            }
            Ok(std::net::IpAddr::V6(ip)) => !(ip.is_loopback() || ip.is_unspecified()),
            Err(_) => false,
        },
        "Url" => url::Url::parse(value)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .unwrap_or(false),
        "DomainName" => {
            value.contains('.')
                && !value.contains("://")
                && value.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        }
        _ => false,
    };
    if !ok {
        return Err(format!("indicatorValue '{value}' is not a valid {ty}."));
    }
    let action_raw = prop_str(body, "action").ok_or("action is required.")?;
    if let Some(retired) = RETIRED_INDICATOR_ACTIONS
        .iter()
        .find(|a| a.eq_ignore_ascii_case(action_raw))
    {
        return Err(format!(
            "action '{retired}' was supported until January 2022: use one of {} (Block or Audit with generateAlert true to raise alerts).",
            INDICATOR_ACTIONS.join(", ")
        ));
    }
    let action = INDICATOR_ACTIONS
        .iter()
        .find(|a| a.eq_ignore_ascii_case(action_raw))
        .ok_or_else(|| {
            format!(
                "action '{action_raw}' is invalid: expected one of {}.",
                INDICATOR_ACTIONS.join(", ")
            )
        })?;
    if *action == "BlockAndRemediate" && !ty.starts_with("File") && *ty != "CertificateThumbprint" {
        return Err(format!(
            "action BlockAndRemediate is only valid for file and certificate indicators, not {ty}."
        ));
    }
    let title = prop_str(body, "title").ok_or("title is required.")?;
    let severity = match prop_str(body, "severity") {
        Some(s) => SEVERITIES
            .iter()
            .find(|x| x.eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "severity '{s}' is invalid: expected one of {}.",
                    SEVERITIES.join(", ")
                )
            })?
            .to_string(),
        None => "Informational".into(),
    };
    if prop_str(body, "description").is_none() {
        return Err("description is required.".into());
    }
    // post-ti-indicator.md, "Request body", action: "The `GenerateAlert` parameter must be set
    // to `TRUE` when creating an action with `Audit`."
    if *action == "Audit" && prop(body, "generateAlert").and_then(Value::as_bool) != Some(true) {
        return Err("generateAlert must be true when the action is Audit.".into());
    }
    let value = if ty.starts_with("File") || *ty == "CertificateThumbprint" {
        value.to_lowercase()
    } else {
        value.to_string()
    };
    Ok((
        value,
        ty.to_string(),
        action.to_string(),
        title.to_string(),
        severity,
    ))
}

/// Creates or updates (same value and type) an indicator.
fn upsert_indicator(
    t: &mut TenantData,
    caller: &Caller,
    body: &Value,
) -> Result<Indicator, String> {
    let (value, ty, action, title, severity) = validate_indicator(body)?;
    let now = OffsetDateTime::now_utc();
    let expiration = match prop_str(body, "expirationTime") {
        Some(s) => Some(
            crate::util::parse_time(s)
                .ok_or_else(|| format!("expirationTime '{s}' is not a valid date-time."))?,
        ),
        None => None,
    };
    let rbac_group_names: Vec<String> = prop(body, "rbacGroupNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let rbac_group_ids: Vec<i64> = rbac_group_names
        .iter()
        .filter_map(|n| {
            t.machines
                .iter()
                .find(|m| m.rbac_group_name.eq_ignore_ascii_case(n))
                .map(|m| m.rbac_group_id)
        })
        .collect();
    let existing = t
        .indicators
        .iter()
        .position(|i| i.indicator_value.eq_ignore_ascii_case(&value) && i.indicator_type == ty);
    let active = t
        .indicators
        .iter()
        .filter(|i| i.expiration_time.is_none_or(|e| e > now))
        .count();
    if existing.is_none() && active >= MAX_ACTIVE_INDICATORS {
        return Err(format!(
            "The tenant already has {active} active indicators; the limit is {MAX_ACTIVE_INDICATORS}."
        ));
    }
    let id = match existing {
        Some(i) => t.indicators[i].id.clone(),
        None => {
            t.next_indicator_id += 1;
            t.next_indicator_id.to_string()
        }
    };
    let created = existing
        .map(|i| t.indicators[i].creation_time_date_time_utc)
        .unwrap_or(now);
    let ind = Indicator {
        id,
        indicator_value: value,
        indicator_type: ty,
        action,
        application: prop_str(body, "application").map(str::to_string),
        source: caller.app_id.clone(),
        source_type: "AadApp".into(),
        title,
        creation_time_date_time_utc: created,
        created_by: caller.app_id.clone(),
        expiration_time: expiration,
        last_update_time: now,
        last_updated_by: caller.app_id.clone(),
        severity,
        description: prop_str(body, "description")
            .unwrap_or_default()
            .to_string(),
        recommended_actions: prop_str(body, "recommendedActions").map(str::to_string),
        rbac_group_names,
        rbac_group_ids,
        generate_alert: prop(body, "generateAlert")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        created_by_source: "PublicApi".into(),
        external_id: prop_str(body, "externalId").map(str::to_string),
    };
    match existing {
        Some(i) => t.indicators[i] = ind.clone(),
        None => t.indicators.push(ind.clone()),
    }
    Ok(ind)
}

async fn submit_indicator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body: Value = crate::errors::parse_json(API, &body)?;
    let mut t = tenant(&state, &caller)?;
    let ind = upsert_indicator(&mut t, &caller, &body).map_err(|m| bad_body(API, m))?;
    let mut v = serde_json::to_value(ind).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            Value::String(context(&state, "Indicators/$entity")),
        );
    }
    Ok(Json(v))
}

async fn import_indicators(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body: Value = crate::errors::parse_json(API, &body)?;
    let Some(list) = prop(&body, "Indicators").and_then(Value::as_array) else {
        return Err(bad_body(
            API,
            "The 'Indicators' field is required and must be an array.",
        ));
    };
    if list.len() > 500 {
        return Err(bad_body(
            API,
            format!(
                "At most 500 indicators can be imported per request; got {}.",
                list.len()
            ),
        ));
    }
    let mut t = tenant(&state, &caller)?;
    let results: Vec<Value> = list
        .iter()
        .map(|item| {
            let indicator = prop_str(item, "indicatorValue").unwrap_or_default().to_string();
            match upsert_indicator(&mut t, &caller, item) {
                Ok(ind) => json!({"id": ind.id, "indicator": indicator, "isFailed": false, "failureReason": Value::Null}),
                Err(reason) => json!({"id": Value::Null, "indicator": indicator, "isFailed": true, "failureReason": reason}),
            }
        })
        .collect();
    Ok(Json(
        json!({"@odata.context": context(&state, "Collection(microsoft.windowsDefenderATP.api.ImportIndicatorResult)"), "value": results}),
    ))
}

async fn delete_indicator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    let before = t.indicators.len();
    t.indicators.retain(|i| i.id != id);
    if t.indicators.len() == before {
        return Err(not_found(API, format!("Indicator {id} was not found")));
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// Live Response library
// ---------------------------------------------------------------------------------------

async fn list_library(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    let t = tenant(&state, &caller)?;
    Ok(Json(
        json!({"@odata.context": context(&state, "LibraryFiles"), "value": t.library}),
    ))
}

async fn upload_library(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    mut multipart: Multipart,
) -> ApiResult<Json<Value>> {
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut fields: Vec<(String, String)> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(bad_body(API, format!("Invalid multipart body: {e}"))),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name.eq_ignore_ascii_case("file") {
            let file_name = field.file_name().unwrap_or_default().to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| bad_body(API, format!("Invalid multipart body: {e}")))?;
            file = Some((file_name, bytes.to_vec()));
        } else {
            let text = field
                .text()
                .await
                .map_err(|e| bad_body(API, format!("Invalid multipart body: {e}")))?;
            fields.push((name, text));
        }
    }
    let Some((file_name, content)) = file.filter(|(n, _)| !n.is_empty()) else {
        return Err(bad_body(API, "A 'file' part with a file name is required."));
    };
    // upload-library.md, "Limitations" 1: "File max size limitation is 20MB."
    if content.len() > MAX_LIBRARY_FILE_BYTES {
        return Err(bad_body(API, "The file exceeds the 20 MB library limit."));
    }
    let field = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let flag = |n: &str| field(n).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut t = tenant(&state, &caller)?;
    let existing = t
        .library
        .iter()
        .position(|f| f.file_name.eq_ignore_ascii_case(&file_name));
    if existing.is_some() && !flag("OverrideIfExists") {
        return Err(ApiError::new(
            API,
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "A file named '{file_name}' already exists in the library. Set OverrideIfExists to true to replace it."
            ),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let lf = LibraryFile {
        file_name: file_name.clone(),
        sha256: sha256_hex(&content),
        description: field("Description").unwrap_or_default(),
        creation_time: existing.map(|i| t.library[i].creation_time).unwrap_or(now),
        last_updated_time: now,
        created_by: caller.app_id.clone(),
        has_parameters: flag("HasParameters"),
        parameters_description: field("ParametersDescription").filter(|s| !s.is_empty()),
        content,
    };
    match existing {
        Some(i) => t.library[i] = lf.clone(),
        None => t.library.push(lf.clone()),
    }
    let mut v = serde_json::to_value(lf).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            Value::String(context(&state, "LibraryFiles/$entity")),
        );
    }
    Ok(Json(v))
}

/// upload-library.md, "Limitations" 1 (20 MB, read as MiB like the client's own cap).
pub const MAX_LIBRARY_FILE_BYTES: usize = 20 * 1024 * 1024;

/// Hex SHA-256 of a library file, as the library listing reports it.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn delete_library(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    let before = t.library.len();
    t.library
        .retain(|f| !f.file_name.eq_ignore_ascii_case(&name));
    if t.library.len() == before {
        return Err(not_found(
            API,
            format!("Library file '{name}' was not found"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// Entities and alerts
// ---------------------------------------------------------------------------------------

async fn get_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(hash): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = tenant(&state, &caller)?;
    let f = find_file(&t, &hash)?;
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            Value::String(context(&state, "Files/$entity")),
        );
    }
    Ok(Json(v))
}

fn invalid_hash(hash: &str, accepted: &str) -> ApiError {
    ApiError::new(
        API,
        StatusCode::BAD_REQUEST,
        "InvalidHashValue",
        format!("'{hash}' is not a valid {accepted} hash."),
    )
}

/// get-file-information.md, "API description": "Retrieves a File by identifier Sha1, or
/// Sha256" (MD5 is not an identifier; files.md has no md5 property).
fn find_file<'a>(t: &'a TenantData, hash: &str) -> ApiResult<&'a FileInfo> {
    if !(is_hex(hash, 40) || is_hex(hash, 64)) {
        return Err(invalid_hash(hash, "SHA-1 or SHA-256"));
    }
    t.files
        .iter()
        .find(|f| f.sha1.eq_ignore_ascii_case(hash) || f.sha256.eq_ignore_ascii_case(hash))
        .ok_or_else(|| not_found(API, format!("File {hash} was not found")))
}

/// First/last sighting and device count of rows matching `pred` in a hunting table.
fn org_sightings(
    t: &TenantData,
    table: &str,
    pred: impl Fn(&crate::kql::Table, &[crate::kql::Value]) -> bool,
) -> (i64, Option<OffsetDateTime>, Option<OffsetDateTime>) {
    use crate::kql::Value as K;
    let Some(tab) = t.hunting.get(table) else {
        return (0, None, None);
    };
    let (Some(ts_i), Some(dev_i)) = (tab.column_index("Timestamp"), tab.column_index("DeviceId"))
    else {
        return (0, None, None);
    };
    let mut devices = std::collections::HashSet::new();
    let (mut first, mut last) = (None::<OffsetDateTime>, None::<OffsetDateTime>);
    for r in tab.rows.iter().filter(|r| pred(tab, r)) {
        if let K::String(d) = &r[dev_i] {
            devices.insert(d.clone());
        }
        if let K::DateTime(ts) = &r[ts_i] {
            first = Some(first.map_or(*ts, |f| f.min(*ts)));
            last = Some(last.map_or(*ts, |l| l.max(*ts)));
        }
    }
    (devices.len() as i64, first, last)
}

fn col_eq(tab: &crate::kql::Table, row: &[crate::kql::Value], col: &str, value: &str) -> bool {
    tab.column_index(col)
        .and_then(|i| match &row[i] {
            crate::kql::Value::String(s) => Some(s.eq_ignore_ascii_case(value)),
            _ => None,
        })
        .unwrap_or(false)
}

async fn file_sub(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((hash, sub)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let t = tenant(&state, &caller)?;
    match sub.to_ascii_lowercase().as_str() {
        "stats" => {
            let f = find_file(&t, &hash)?.clone();
            let pred =
                |tab: &crate::kql::Table, r: &[crate::kql::Value]| col_eq(tab, r, "SHA1", &f.sha1);
            let (p1, f1, l1) = org_sightings(&t, "DeviceFileEvents", pred);
            let (p2, f2, l2) = org_sightings(&t, "DeviceProcessEvents", pred);
            let first = [f1, f2].into_iter().flatten().min();
            let last = [l1, l2].into_iter().flatten().max();
            // get-file-statistics.md, "Response example": InOrgFileStats with the
            // prevalences as numbers named organizationPrevalence and globallyPrevalence.
            Ok(Json(json!({
                "@odata.context": context(&state, "microsoft.windowsDefenderATP.api.InOrgFileStats"),
                "sha1": f.sha1,
                "organizationPrevalence": p1.max(p2),
                "orgFirstSeen": first.map(fmt_time),
                "orgLastSeen": last.map(fmt_time),
                "globallyPrevalence": f.global_prevalence,
                "globalFirstObserved": fmt_time(f.global_first_observed),
                "globalLastObserved": fmt_time(f.global_last_observed),
                "topFileNames": [f.file_name],
            })))
        }
        "alerts" => {
            // get-file-related-alerts.md, "Limitations": "Only SHA-1 Hash Function is
            // supported (not MD5 or SHA-256)"; "If file doesn't exist - 200 OK with an empty set."
            if !is_hex(&hash, 40) {
                return Err(invalid_hash(&hash, "SHA-1"));
            }
            let alerts: Vec<&Alert> = t
                .alerts
                .iter()
                .filter(|a| {
                    a.related_sha1
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case(&hash))
                })
                .collect();
            Ok(Json(
                json!({"@odata.context": context(&state, "Alerts"), "value": alerts}),
            ))
        }
        _ => Err(not_found(
            API,
            format!("Resource '{sub}' was not found for file {hash}"),
        )),
    }
}

async fn ip_stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ip): Path<String>,
) -> ApiResult<Json<Value>> {
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad_body(API, format!("'{ip}' is not a valid IP address.")));
    }
    let t = tenant(&state, &caller)?;
    let (p, first, last) = org_sightings(&t, "DeviceNetworkEvents", |tab, r| {
        col_eq(tab, r, "RemoteIP", &ip)
    });
    Ok(Json(json!({
        "@odata.context": context(&state, "microsoft.windowsDefenderATP.api.InOrgIPStats"),
        "ipAddress": ip,
        // get-ip-statistics.md, "Response example": a number named organizationPrevalence
        // (0 for a valid address nobody contacted).
        "organizationPrevalence": p,
        "orgFirstSeen": first.map(fmt_time),
        "orgLastSeen": last.map(fmt_time),
    })))
}

async fn domain_stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = tenant(&state, &caller)?;
    let (p, first, last) = org_sightings(&t, "DeviceNetworkEvents", |tab, r| {
        col_eq(tab, r, "RemoteUrl", &domain)
    });
    Ok(Json(json!({
        "@odata.context": context(&state, "microsoft.windowsDefenderATP.api.InOrgDomainStats"),
        "host": domain,
        // get-domain-statistics.md, "Response example": a number named organizationPrevalence.
        "organizationPrevalence": p,
        "orgFirstSeen": first.map(fmt_time),
        "orgLastSeen": last.map(fmt_time),
    })))
}

/// get-alerts.md, "API description": "$filter on: alertCreationTime, lastUpdateTime,
/// incidentId, InvestigationId, id, asssignedTo, detectionSource, lastEventTime, status,
/// severity and category properties" (`machineId` is not filterable: a device's alerts come from
/// `/api/machines/{id}/alerts`).
const ALERT_FILTER_FIELDS: &[&str] = &[
    "alertCreationTime",
    "lastUpdateTime",
    "incidentId",
    "investigationId",
    "id",
    "assignedTo",
    "detectionSource",
    "lastEventTime",
    "status",
    "severity",
    "category",
];

async fn list_alerts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    // get-alerts.md: "$expand of evidence" is the only expansion; without it (Example 1)
    // each alert carries "evidence": [].
    let expand = QueryParams::parse(raw.as_deref())
        .get("$expand")
        .map(str::to_string);
    let with_evidence = match expand.as_deref() {
        None => false,
        Some(e) if e.trim().eq_ignore_ascii_case("evidence") => true,
        Some(other) => {
            return Err(odata_error(format!(
                "Invalid $expand '{other}': only evidence can be expanded."
            )));
        }
    };
    let items: Vec<Value> = tenant(&state, &caller)?
        .alerts
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
            if !with_evidence {
                v["evidence"] = json!([]);
            }
            v
        })
        .collect();
    defender_collection(
        &state.base_url,
        uri.path(),
        raw.as_deref(),
        items,
        ALERT_FILTER_FIELDS,
        context(&state, "Alerts"),
        state.options.page_size,
        &["$expand"],
    )
    .map(Json)
}

async fn get_alert(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = tenant(&state, &caller)?;
    let a = t
        .alerts
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| not_found(API, format!("Alert {id} was not found")))?;
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            Value::String(context(&state, "Alerts/$entity")),
        );
    }
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_vectors() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
