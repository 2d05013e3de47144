//! Azure Resource Manager (`https://management.azure.com/...`), served under `/arm/...`:
//! subscriptions, Log Analytics workspaces and the Sentinel (`Microsoft.SecurityInsights`)
//! resources analytics rules, incidents and incident comments.
//!
//! Structure: every workspace-scoped route resolves its scope with [`resolve_workspace`]
//! (subscription → resource group → workspace, with ARM's own errors), then works on the
//! workspace's resource collections. New resource types (tables, watchlists, workbooks,
//! DCRs, long-running operations) add a collection to `seed::WorkspaceData` and a route here.

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{Request, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::errors::{Api, ApiError, ApiResult, bad_body, parse_json};
use crate::odata;
use crate::seed::{ArmOperation, TableSettings, TenantData, WorkspaceData};
use crate::state::AppState;
use crate::token::Caller;
use crate::util::{QueryParams, build_url, fmt_time, new_guid, paginate, parse_usize_opt};

const API: Api = Api::Arm;

const WS: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{ws}";
const SI: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{ws}/providers/Microsoft.SecurityInsights";

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/subscriptions", get(list_subscriptions))
        .route("/subscriptions/{sub}", get(get_subscription))
        .route("/subscriptions/{sub}/providers/Microsoft.OperationalInsights/workspaces", get(list_workspaces_sub))
        .route("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces", get(list_workspaces_rg))
        .route(WS, get(get_workspace))
        .route(&format!("{WS}/tables"), get(list_tables))
        .route(&format!("{WS}/tables/{{table}}"), get(get_table).patch(update_table).put(update_table))
        .route("/subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{location}/operationStatuses/{op}", get(get_operation))
        .route(&format!("{SI}/alertRules"), get(list_alert_rules))
        .route(&format!("{SI}/alertRules/{{id}}"), get(get_alert_rule).put(put_alert_rule).delete(delete_alert_rule))
        .route(&format!("{SI}/incidents"), get(list_incidents))
        .route(&format!("{SI}/incidents/{{id}}"), get(get_incident).put(put_incident).delete(delete_incident))
        .route(&format!("{SI}/incidents/{{id}}/comments"), get(list_comments))
        .route(&format!("{SI}/incidents/{{id}}/comments/{{cid}}"), get(get_comment).put(put_comment).delete(delete_comment))
        // Runs after authentication (route layers wrap inside-out): ARM validates the token
        // first, then the api-version.
        .route_layer(from_fn(require_api_version))
        .route_layer(from_fn_with_state(state, crate::token::require_arm))
}

/// ARM path segments are case-insensitive; axum routes are not. The connection layer calls
/// this to put known segments in their canonical casing before routing.
pub fn canonical_path(path: &str) -> Option<String> {
    if !path.starts_with("/arm/") {
        return None;
    }
    const KNOWN: &[&str] = &[
        "subscriptions",
        "resourceGroups",
        "providers",
        "Microsoft.OperationalInsights",
        "workspaces",
        "Microsoft.SecurityInsights",
        "alertRules",
        "incidents",
        "comments",
        "tables",
        "locations",
        "operationStatuses",
    ];
    let mut changed = false;
    let out: Vec<String> = path
        .split('/')
        .map(|seg| {
            match KNOWN
                .iter()
                .find(|k| k.eq_ignore_ascii_case(seg) && **k != seg)
            {
                Some(k) => {
                    changed = true;
                    (*k).to_string()
                }
                None => seg.to_string(),
            }
        })
        .collect();
    changed.then(|| out.join("/"))
}

/// Every ARM call needs `api-version`.
async fn require_api_version(req: Request<Body>, next: Next) -> Response {
    let q = QueryParams::parse(req.uri().query());
    match q.get("api-version") {
        None | Some("") => ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
        .into_response(),
        Some(v) if !valid_api_version(v) => ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!("The api-version '{v}' is invalid. The supported versions are 'yyyy-mm-dd' or 'yyyy-mm-dd-preview' (for example 2025-09-01)."),
        )
        .into_response(),
        Some(_) => next.run(req).await,
    }
}

fn valid_api_version(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn tenant<'a>(
    state: &'a AppState,
    caller: &Caller,
) -> ApiResult<std::sync::MutexGuard<'a, TenantData>> {
    state.tenant(&caller.tenant_id).ok_or_else(|| {
        ApiError::new(
            API,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenTenant",
            "The access token is from an unknown tenant.",
        )
    })
}

/// Subscription check with ARM's errors: a subscription of another tenant is a token/tenant
/// mismatch (401), an unknown one is 404.
fn check_subscription(state: &AppState, caller: &Caller, sub: &str) -> ApiResult<()> {
    let owner = state.tenants_public.iter().find(|t| {
        t.workspaces
            .iter()
            .any(|w| w.subscription_id.eq_ignore_ascii_case(sub))
    });
    match owner {
        Some(t) if t.tenant_id == caller.tenant_id => Ok(()),
        Some(t) => Err(ApiError::new(
            API,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenTenant",
            format!(
                "The access token is from the wrong issuer 'https://sts.windows.net/{}/'. It must match the tenant 'https://sts.windows.net/{}/' associated with this subscription.",
                caller.tenant_id, t.tenant_id
            ),
        )),
        None => Err(ApiError::new(
            API,
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        )),
    }
}

/// Resolves subscription → resource group → workspace inside the caller's tenant.
fn resolve_workspace<'t>(
    state: &AppState,
    caller: &Caller,
    t: &'t mut TenantData,
    sub: &str,
    rg: &str,
    ws: &str,
) -> ApiResult<&'t mut WorkspaceData> {
    check_subscription(state, caller, sub)?;
    let in_sub: Vec<usize> = (0..t.workspaces.len())
        .filter(|i| {
            t.workspaces[*i]
                .public
                .subscription_id
                .eq_ignore_ascii_case(sub)
        })
        .collect();
    if !in_sub.iter().any(|i| {
        t.workspaces[*i]
            .public
            .resource_group
            .eq_ignore_ascii_case(rg)
    }) {
        return Err(ApiError::new(
            API,
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        ));
    }
    let idx = in_sub
        .into_iter()
        .find(|i| t.workspaces[*i].public.resource_group.eq_ignore_ascii_case(rg) && t.workspaces[*i].public.name.eq_ignore_ascii_case(ws))
        .ok_or_else(|| {
            ApiError::new(
                API,
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The Resource 'Microsoft.OperationalInsights/workspaces/{ws}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
            )
        })?;
    Ok(&mut t.workspaces[idx])
}

fn workspace_id(w: &WorkspaceData) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
        w.public.subscription_id, w.public.resource_group, w.public.name
    )
}

fn workspace_json(w: &WorkspaceData) -> Value {
    json!({
        "properties": {
            "customerId": w.public.customer_id,
            "provisioningState": "Succeeded",
            "sku": {"name": "PerGB2018", "lastSkuUpdate": fmt_time(w.created)},
            "retentionInDays": w.retention_in_days,
            "features": {"legacy": 0, "searchVersion": 1, "enableLogAccessUsingOnlyResourcePermissions": true},
            "workspaceCapping": {"dailyQuotaGb": -1.0, "quotaNextResetTime": fmt_time(OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT) + time::Duration::days(1)), "dataIngestionStatus": "RespectQuota"},
            "publicNetworkAccessForIngestion": "Enabled",
            "publicNetworkAccessForQuery": "Enabled",
            "createdDate": fmt_time(w.created),
            "modifiedDate": fmt_time(w.created + time::Duration::days(30)),
        },
        "id": workspace_id(w),
        "name": w.public.name,
        "type": "Microsoft.OperationalInsights/workspaces",
        "location": w.location,
        "tags": {},
    })
}

/// An ARM list: `{"value": [...], "nextLink": ...}` with `$filter`, `$orderby`, `$top` and a
/// `$skipToken` continuation.
fn arm_list(
    state: &AppState,
    original_path: &str,
    raw: Option<&str>,
    mut items: Vec<Value>,
) -> ApiResult<Json<Value>> {
    let bad = |m: String| ApiError::new(API, StatusCode::BAD_REQUEST, "BadRequest", m);
    let q = QueryParams::parse(raw);
    if let Some(f) = q.get("$filter") {
        let filter =
            odata::parse_filter(f, None).map_err(|e| bad(format!("Invalid $filter: {e}")))?;
        items.retain(|v| filter.matches(v));
    }
    if let Some(o) = q.get("$orderby") {
        let keys =
            odata::parse_orderby(o, None).map_err(|e| bad(format!("Invalid $orderby: {e}")))?;
        odata::sort_by_keys(&mut items, &keys);
    }
    let skip = match q.get("$skipToken") {
        Some(tok) => tok
            .parse::<usize>()
            .map_err(|_| bad(format!("Invalid $skipToken '{tok}'.")))?,
        None => 0,
    };
    let top = parse_usize_opt(&q, "$top").map_err(bad)?;
    if top.is_some_and(|t| t > 1000) {
        return Err(bad("The $top value must be at most 1000.".into()));
    }
    let page = paginate(items, skip, top, state.options.page_size);
    let mut out = Map::new();
    out.insert("value".into(), Value::Array(page.items));
    if let Some((next_skip, next_top)) = page.next {
        let mut overrides = vec![("$skipToken", next_skip.to_string())];
        if let Some(t) = next_top {
            overrides.push(("$top", t.to_string()));
        }
        out.insert(
            "nextLink".into(),
            Value::String(build_url(
                &state.base_url,
                original_path,
                &q.with_overrides(&overrides),
            )),
        );
    }
    Ok(Json(Value::Object(out)))
}

// ---------------------------------------------------------------------------------------
// Subscriptions and workspaces
// ---------------------------------------------------------------------------------------

fn subscription_json(caller: &Caller, sub: &str, name: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{sub}"),
        "subscriptionId": sub,
        "tenantId": caller.tenant_id,
        "displayName": name,
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "EnterpriseAgreement_2014-09-01", "spendingLimit": "Off"},
        "authorizationSource": "RoleBased",
    })
}

fn tenant_subscriptions(state: &AppState, caller: &Caller) -> Vec<(String, String)> {
    let mut subs: Vec<(String, String)> = Vec::new();
    for t in state
        .tenants_public
        .iter()
        .filter(|t| t.tenant_id == caller.tenant_id)
    {
        for w in &t.workspaces {
            if !subs.iter().any(|(s, _)| s == &w.subscription_id) {
                subs.push((
                    w.subscription_id.clone(),
                    format!("{} Security ({})", t.display_name, w.resource_group),
                ));
            }
        }
    }
    subs
}

async fn list_subscriptions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let value: Vec<Value> = tenant_subscriptions(&state, &caller)
        .iter()
        .map(|(s, n)| subscription_json(&caller, s, n))
        .collect();
    Json(json!({"value": value, "count": {"type": "Total", "value": value.len()}}))
}

async fn get_subscription(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(sub): Path<String>,
) -> ApiResult<Json<Value>> {
    check_subscription(&state, &caller, &sub)?;
    let subs = tenant_subscriptions(&state, &caller);
    let (s, n) = subs
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(&sub))
        .ok_or_else(|| {
            ApiError::new(
                API,
                StatusCode::NOT_FOUND,
                "SubscriptionNotFound",
                format!("The subscription '{sub}' could not be found."),
            )
        })?;
    Ok(Json(subscription_json(&caller, s, n)))
}

async fn list_workspaces_sub(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(sub): Path<String>,
) -> ApiResult<Json<Value>> {
    check_subscription(&state, &caller, &sub)?;
    let t = tenant(&state, &caller)?;
    let value: Vec<Value> = t
        .workspaces
        .iter()
        .filter(|w| w.public.subscription_id.eq_ignore_ascii_case(&sub))
        .map(workspace_json)
        .collect();
    Ok(Json(json!({"value": value})))
}

async fn list_workspaces_rg(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    check_subscription(&state, &caller, &sub)?;
    let t = tenant(&state, &caller)?;
    let value: Vec<Value> = t
        .workspaces
        .iter()
        .filter(|w| {
            w.public.subscription_id.eq_ignore_ascii_case(&sub)
                && w.public.resource_group.eq_ignore_ascii_case(&rg)
        })
        .map(workspace_json)
        .collect();
    if value.is_empty() {
        return Err(ApiError::new(
            API,
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        ));
    }
    Ok(Json(json!({"value": value})))
}

async fn get_workspace(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    Ok(Json(workspace_json(w)))
}

// ---------------------------------------------------------------------------------------
// Tables (retention and plan) and long-running operations
// ---------------------------------------------------------------------------------------

/// The schema type names of the `tables` resource.
fn table_column_type(ty: crate::kql::ColType) -> &'static str {
    use crate::kql::ColType;
    match ty {
        ColType::Bool => "boolean",
        ColType::DateTime => "dateTime",
        other => other.la_name(),
    }
}

fn table_json(w: &WorkspaceData, table: &crate::kql::Table) -> Value {
    let settings = w.table_settings.get(&table.name);
    let retention = settings.map(|s| s.retention_in_days).filter(|r| *r >= 0);
    let total = settings
        .map(|s| s.total_retention_in_days)
        .filter(|r| *r >= 0);
    let effective_retention = retention.unwrap_or(w.retention_in_days);
    let effective_total = total
        .unwrap_or(effective_retention)
        .max(effective_retention);
    json!({
        "properties": {
            "retentionInDays": effective_retention,
            "totalRetentionInDays": effective_total,
            "archiveRetentionInDays": effective_total - effective_retention,
            "retentionInDaysAsDefault": retention.is_none(),
            "totalRetentionInDaysAsDefault": total.is_none(),
            "plan": settings.map(|s| s.plan.clone()).unwrap_or_else(|| "Analytics".into()),
            "lastPlanModifiedDate": fmt_time(settings.map(|s| s.last_plan_modified).unwrap_or(w.created)),
            "schema": {
                "name": table.name,
                "tableType": "Microsoft",
                "columns": [],
                "standardColumns": table.columns.iter().map(|c| json!({"name": c.name, "type": table_column_type(c.ty)})).collect::<Vec<_>>(),
                "solutions": ["LogManagement"],
                "isTroubleshootingAllowed": false,
            },
            "provisioningState": "Succeeded",
        },
        "id": format!("{}/tables/{}", workspace_id(w), table.name),
        "name": table.name,
    })
}

async fn list_tables(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let value: Vec<Value> = w
        .logs
        .tables
        .values()
        .map(|tab| table_json(w, tab))
        .collect();
    Ok(Json(json!({"value": value})))
}

fn table_not_found(ws: &str, table: &str) -> ApiError {
    ApiError::new(
        API,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The table '{table}' was not found in workspace '{ws}'."),
    )
}

async fn get_table(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, table)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let tab = w
        .logs
        .get(&table)
        .ok_or_else(|| table_not_found(&ws, &table))?;
    Ok(Json(table_json(w, tab)))
}

/// `PATCH`/`PUT` a table's retention or plan. Like the real RP this is a long-running
/// operation: 202 with `Azure-AsyncOperation` and `Location`, polled until it succeeds
/// (after the configured pending time).
async fn update_table(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path((sub, rg, ws, table)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(API, &body)?;
    let p = body["properties"].as_object().cloned().unwrap_or_default();
    let int = |k: &str| -> ApiResult<Option<i64>> {
        match p.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad_body(API, format!("properties.{k} must be an integer."))),
        }
    };
    let retention = int("retentionInDays")?;
    let total = int("totalRetentionInDays")?;
    if let Some(r) = retention
        && r != -1
        && !(4..=730).contains(&r)
    {
        return Err(bad_body(
            API,
            format!(
                "properties.retentionInDays {r} is out of range: 4-730, or -1 for the workspace default."
            ),
        ));
    }
    if let Some(r) = total
        && r != -1
        && !(4..=4383).contains(&r)
    {
        return Err(bad_body(
            API,
            format!(
                "properties.totalRetentionInDays {r} is out of range: 4-4383, or -1 for the default."
            ),
        ));
    }
    let plan = match p.get("plan").and_then(Value::as_str) {
        None => None,
        Some(pl) => Some(
            ["Analytics", "Basic", "Auxiliary"]
                .into_iter()
                .find(|x| x.eq_ignore_ascii_case(pl))
                .ok_or_else(|| bad_body(API, format!("properties.plan '{pl}' is invalid: expected Analytics, Basic or Auxiliary.")))?
                .to_string(),
        ),
    };
    let now = OffsetDateTime::now_utc();
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    if w.logs.get(&table).is_none() {
        return Err(table_not_found(&ws, &table));
    }
    let default_retention = w.retention_in_days;
    let location = w.location.clone();
    let entry = w
        .table_settings
        .entry(table.clone())
        .or_insert(TableSettings {
            retention_in_days: -1,
            total_retention_in_days: -1,
            plan: "Analytics".into(),
            last_plan_modified: now,
        });
    if let Some(r) = retention {
        entry.retention_in_days = r;
    }
    if let Some(r) = total {
        entry.total_retention_in_days = r;
    }
    if let Some(pl) = plan {
        if pl != entry.plan {
            entry.last_plan_modified = now;
        }
        entry.plan = pl;
    }
    let effective = if entry.retention_in_days >= 0 {
        entry.retention_in_days
    } else {
        default_retention
    };
    if entry.total_retention_in_days >= 0 && entry.total_retention_in_days < effective {
        return Err(bad_body(
            API,
            "properties.totalRetentionInDays must be at least retentionInDays.",
        ));
    }
    let op = ArmOperation {
        id: new_guid(),
        subscription_id: sub.clone(),
        location: location.clone(),
        started: now,
        started_at: std::time::Instant::now(),
    };
    let api_version = QueryParams::parse(uri.query())
        .get("api-version")
        .unwrap_or_default()
        .to_string();
    let op_url = format!(
        "{}/arm/subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{}/operationStatuses/{}?api-version={api_version}",
        state.base_url,
        location.replace(' ', "").to_lowercase(),
        op.id
    );
    t.arm_operations.push(op);
    let mut resp = StatusCode::ACCEPTED.into_response();
    for name in ["azure-asyncoperation", "location"] {
        if let Ok(v) = op_url.parse() {
            resp.headers_mut().insert(name, v);
        }
    }
    if let Ok(v) = "5".parse() {
        resp.headers_mut().insert("retry-after", v);
    }
    Ok(resp)
}

async fn get_operation(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, location, op)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    check_subscription(&state, &caller, &sub)?;
    let t = tenant(&state, &caller)?;
    let o = t
        .arm_operations
        .iter()
        .find(|o| o.id.eq_ignore_ascii_case(&op) && o.subscription_id.eq_ignore_ascii_case(&sub))
        .ok_or_else(|| {
            ApiError::new(
                API,
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("Operation '{op}' was not found."),
            )
        })?;
    let done = o.started_at.elapsed() >= state.options.action_timings.pending;
    let _ = location;
    let id = format!(
        "/subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{}/operationStatuses/{}",
        o.location.replace(' ', "").to_lowercase(),
        o.id
    );
    let mut v = json!({"id": id, "name": o.id, "status": if done { "Succeeded" } else { "InProgress" }, "startTime": fmt_time(o.started)});
    if done {
        let end = o.started
            + time::Duration::try_from(state.options.action_timings.pending)
                .unwrap_or(time::Duration::ZERO);
        v["endTime"] = json!(fmt_time(end));
    }
    Ok(Json(v))
}

// ---------------------------------------------------------------------------------------
// Analytics rules
// ---------------------------------------------------------------------------------------

fn new_etag() -> String {
    format!("\"{}\"", new_guid())
}

fn find_by_name<'a>(items: &'a mut [Value], name: &str) -> Option<&'a mut Value> {
    items.iter_mut().find(|v| {
        v["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

async fn list_alert_rules(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    Path((sub, rg, ws)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let items = {
        let mut t = tenant(&state, &caller)?;
        resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?
            .alert_rules
            .clone()
    };
    arm_list(&state, uri.path(), raw.as_deref(), items)
}

fn rule_not_found(id: &str) -> ApiError {
    ApiError::new(
        API,
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Alert rule '{id}' was not found."),
    )
}

async fn get_alert_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    find_by_name(&mut w.alert_rules, &id)
        .map(|r| Json(r.clone()))
        .ok_or_else(|| rule_not_found(&id))
}

const RULE_KINDS: &[&str] = &[
    "Scheduled",
    "NRT",
    "Fusion",
    "MicrosoftSecurityIncidentCreation",
];
const SEVERITIES: &[&str] = &["High", "Medium", "Low", "Informational"];

/// Validates an analytics rule body the way the Sentinel RP does for the common kinds.
fn validate_rule(kind: &str, p: &Map<String, Value>) -> Result<(), String> {
    let need = |k: &str| -> Result<&Value, String> {
        p.get(k)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("properties.{k} is required for {kind} rules."))
    };
    if !need("enabled")?.is_boolean() {
        return Err("properties.enabled must be a boolean.".into());
    }
    match kind {
        "Scheduled" | "NRT" => {
            need("displayName")?;
            let sev = need("severity")?.as_str().unwrap_or_default();
            if !SEVERITIES.contains(&sev) {
                return Err(format!(
                    "properties.severity '{sev}' is invalid: expected one of {}.",
                    SEVERITIES.join(", ")
                ));
            }
            let query = need("query")?
                .as_str()
                .ok_or("properties.query must be a string.")?;
            crate::kql::check_syntax(query)
                .map_err(|e| format!("properties.query is not valid KQL: {e}"))?;
            if kind == "Scheduled" {
                for k in [
                    "queryFrequency",
                    "queryPeriod",
                    "triggerOperator",
                    "triggerThreshold",
                ] {
                    need(k)?;
                }
                for k in ["queryFrequency", "queryPeriod"] {
                    let v = p[k].as_str().unwrap_or_default();
                    if crate::util::parse_iso_duration(v).is_none() {
                        return Err(format!(
                            "properties.{k} '{v}' is not an ISO 8601 duration (e.g. PT1H)."
                        ));
                    }
                }
                let op = p["triggerOperator"].as_str().unwrap_or_default();
                if !["GreaterThan", "LessThan", "Equal", "NotEqual"].contains(&op) {
                    return Err(format!("properties.triggerOperator '{op}' is invalid."));
                }
            }
        }
        "MicrosoftSecurityIncidentCreation" => {
            need("displayName")?;
            need("productFilter")?;
        }
        "Fusion" => {
            need("alertRuleTemplateName")?;
        }
        _ => {}
    }
    Ok(())
}

async fn put_alert_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(API, &body)?;
    let kind = body["kind"]
        .as_str()
        .ok_or_else(|| bad_body(API, "The 'kind' property is required."))?
        .to_string();
    let Some(kind) = RULE_KINDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(&kind))
        .map(|k| k.to_string())
    else {
        return Err(bad_body(
            API,
            format!(
                "The alert rule kind '{kind}' is not supported: expected one of {}.",
                RULE_KINDS.join(", ")
            ),
        ));
    };
    let Some(props) = body["properties"].as_object().cloned() else {
        return Err(bad_body(API, "The 'properties' object is required."));
    };
    validate_rule(&kind, &props).map_err(|m| bad_body(API, m))?;
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let rule_path = format!(
        "{}/providers/Microsoft.SecurityInsights/alertRules/{id}",
        workspace_id(w)
    );
    let mut props = props;
    props.insert(
        "lastModifiedUtc".into(),
        Value::String(fmt_time(OffsetDateTime::now_utc())),
    );
    match find_by_name(&mut w.alert_rules, &id) {
        Some(existing) => {
            if let Some(etag) = body["etag"].as_str()
                && existing["etag"].as_str() != Some(etag)
            {
                return Err(ApiError::new(
                    API,
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "Newer version of the alert rule '{id}' exists: the etag {etag} does not match the current etag {}. Re-read the rule and retry.",
                        existing["etag"].as_str().unwrap_or_default()
                    ),
                ));
            }
            if existing["kind"].as_str() != Some(kind.as_str()) {
                return Err(bad_body(
                    API,
                    format!(
                        "The kind of an existing alert rule cannot be changed (from {} to {kind}).",
                        existing["kind"].as_str().unwrap_or_default()
                    ),
                ));
            }
            existing["properties"] = Value::Object(props);
            existing["etag"] = Value::String(new_etag());
            Ok((StatusCode::OK, Json(existing.clone())).into_response())
        }
        None => {
            let rule = json!({
                "id": rule_path,
                "name": id,
                "type": "Microsoft.SecurityInsights/alertRules",
                "kind": kind,
                "etag": new_etag(),
                "properties": props,
            });
            w.alert_rules.push(rule.clone());
            Ok((StatusCode::CREATED, Json(rule)).into_response())
        }
    }
}

async fn delete_alert_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let before = w.alert_rules.len();
    w.alert_rules.retain(|r| {
        !r["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&id))
    });
    // ARM: 200 when deleted, 204 when there was nothing to delete.
    Ok(if w.alert_rules.len() < before {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    })
}

// ---------------------------------------------------------------------------------------
// Incidents and comments
// ---------------------------------------------------------------------------------------

async fn list_incidents(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    Path((sub, rg, ws)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut items = {
        let mut t = tenant(&state, &caller)?;
        resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?
            .incidents
            .clone()
    };
    // Newest first unless the client orders otherwise (the portal's default).
    items.sort_by(|a, b| {
        b["properties"]["createdTimeUtc"]
            .as_str()
            .cmp(&a["properties"]["createdTimeUtc"].as_str())
    });
    arm_list(&state, uri.path(), raw.as_deref(), items)
}

fn incident_not_found(id: &str) -> ApiError {
    ApiError::new(
        API,
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Incident '{id}' was not found."),
    )
}

async fn get_incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    find_by_name(&mut w.incidents, &id)
        .map(|r| Json(r.clone()))
        .ok_or_else(|| incident_not_found(&id))
}

const INCIDENT_STATUSES: &[&str] = &["New", "Active", "Closed"];
const CLASSIFICATIONS: &[&str] = &[
    "Undetermined",
    "TruePositive",
    "BenignPositive",
    "FalsePositive",
];
const CLASSIFICATION_REASONS: &[&str] = &[
    "SuspiciousActivity",
    "SuspiciousButExpected",
    "IncorrectAlertLogic",
    "InaccurateData",
];
/// Properties the service computes; a PUT cannot change them.
const INCIDENT_READ_ONLY: &[&str] = &[
    "incidentNumber",
    "createdTimeUtc",
    "lastModifiedTimeUtc",
    "additionalData",
    "incidentUrl",
    "providerName",
    "providerIncidentId",
    "relatedAnalyticRuleIds",
];

fn validate_incident(p: &Map<String, Value>) -> Result<(), String> {
    for k in ["title", "severity", "status"] {
        if p.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(format!("properties.{k} is required."));
        }
    }
    let sev = p["severity"].as_str().unwrap_or_default();
    if !SEVERITIES.contains(&sev) {
        return Err(format!(
            "properties.severity '{sev}' is invalid: expected one of {}.",
            SEVERITIES.join(", ")
        ));
    }
    let status = p["status"].as_str().unwrap_or_default();
    if !INCIDENT_STATUSES.contains(&status) {
        return Err(format!(
            "properties.status '{status}' is invalid: expected one of {}.",
            INCIDENT_STATUSES.join(", ")
        ));
    }
    if let Some(c) = p.get("classification").and_then(Value::as_str)
        && !CLASSIFICATIONS.contains(&c)
    {
        return Err(format!(
            "properties.classification '{c}' is invalid: expected one of {}.",
            CLASSIFICATIONS.join(", ")
        ));
    }
    if let Some(r) = p.get("classificationReason").and_then(Value::as_str)
        && !CLASSIFICATION_REASONS.contains(&r)
    {
        return Err(format!(
            "properties.classificationReason '{r}' is invalid: expected one of {}.",
            CLASSIFICATION_REASONS.join(", ")
        ));
    }
    if status == "Closed" && p.get("classification").and_then(Value::as_str).is_none() {
        return Err("properties.classification is required when closing an incident.".into());
    }
    Ok(())
}

async fn put_incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(API, &body)?;
    let Some(props) = body["properties"].as_object().cloned() else {
        return Err(bad_body(API, "The 'properties' object is required."));
    };
    validate_incident(&props).map_err(|m| bad_body(API, m))?;
    let now = fmt_time(OffsetDateTime::now_utc());
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let ws_path = workspace_id(w);
    let next_number = w
        .incidents
        .iter()
        .filter_map(|i| i["properties"]["incidentNumber"].as_i64())
        .max()
        .unwrap_or(0)
        + 1;
    match find_by_name(&mut w.incidents, &id) {
        Some(existing) => {
            if let Some(etag) = body["etag"].as_str()
                && existing["etag"].as_str() != Some(etag)
            {
                return Err(ApiError::new(
                    API,
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "The incident '{id}' was modified by someone else: the etag {etag} does not match the current etag {}. Re-read the incident and retry.",
                        existing["etag"].as_str().unwrap_or_default()
                    ),
                ));
            }
            if let Some(target) = existing["properties"].as_object_mut() {
                for (k, v) in props {
                    if !INCIDENT_READ_ONLY.contains(&k.as_str()) {
                        target.insert(k, v);
                    }
                }
                // Reopening clears the closing classification.
                if target.get("status").and_then(Value::as_str) != Some("Closed") {
                    for k in [
                        "classification",
                        "classificationReason",
                        "classificationComment",
                    ] {
                        target.remove(k);
                    }
                }
                target.insert("lastModifiedTimeUtc".into(), Value::String(now));
            }
            existing["etag"] = Value::String(new_etag());
            Ok((StatusCode::OK, Json(existing.clone())).into_response())
        }
        None => {
            let mut p: Map<String, Value> = props
                .into_iter()
                .filter(|(k, _)| !INCIDENT_READ_ONLY.contains(&k.as_str()))
                .collect();
            p.insert("incidentNumber".into(), json!(next_number));
            p.insert("createdTimeUtc".into(), Value::String(now.clone()));
            p.insert("lastModifiedTimeUtc".into(), Value::String(now));
            p.entry("owner").or_insert(json!({"objectId": Value::Null, "email": Value::Null, "assignedTo": Value::Null, "userPrincipalName": Value::Null, "ownerType": "Unknown"}));
            p.entry("labels").or_insert(json!([]));
            p.insert("providerName".into(), json!("Azure Sentinel"));
            p.insert("providerIncidentId".into(), json!(next_number.to_string()));
            p.insert("additionalData".into(), json!({"alertsCount": 0, "bookmarksCount": 0, "commentsCount": 0, "alertProductNames": [], "tactics": [], "techniques": []}));
            p.insert("relatedAnalyticRuleIds".into(), json!([]));
            let incident = json!({
                "id": format!("{ws_path}/providers/Microsoft.SecurityInsights/incidents/{id}"),
                "name": id,
                "type": "Microsoft.SecurityInsights/Incidents",
                "etag": new_etag(),
                "properties": p,
            });
            w.incidents.push(incident.clone());
            w.incident_comments.entry(id).or_default();
            Ok((StatusCode::CREATED, Json(incident)).into_response())
        }
    }
}

async fn delete_incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let before = w.incidents.len();
    w.incidents.retain(|r| {
        !r["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&id))
    });
    Ok(if w.incidents.len() < before {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    })
}

/// The incident's canonical name, or 404.
fn incident_name(w: &mut WorkspaceData, id: &str) -> ApiResult<String> {
    find_by_name(&mut w.incidents, id)
        .and_then(|i| i["name"].as_str().map(str::to_string))
        .ok_or_else(|| incident_not_found(id))
}

async fn list_comments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let items = {
        let mut t = tenant(&state, &caller)?;
        let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
        let name = incident_name(w, &id)?;
        w.incident_comments.get(&name).cloned().unwrap_or_default()
    };
    arm_list(&state, uri.path(), raw.as_deref(), items)
}

async fn get_comment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id, cid)): Path<(String, String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let name = incident_name(w, &id)?;
    let comments = w.incident_comments.entry(name).or_default();
    find_by_name(comments, &cid)
        .map(|c| Json(c.clone()))
        .ok_or_else(|| {
            ApiError::new(
                API,
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("Comment '{cid}' was not found."),
            )
        })
}

async fn put_comment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id, cid)): Path<(String, String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(API, &body)?;
    let Some(message) = body["properties"]["message"]
        .as_str()
        .filter(|m| !m.trim().is_empty())
    else {
        return Err(bad_body(API, "properties.message is required."));
    };
    if message.len() > 30_000 {
        return Err(bad_body(
            API,
            "properties.message must be at most 30000 characters.",
        ));
    }
    let now = fmt_time(OffsetDateTime::now_utc());
    let app = caller.app_id.clone();
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let name = incident_name(w, &id)?;
    let incident_path = format!(
        "{}/providers/Microsoft.SecurityInsights/incidents/{name}",
        workspace_id(w)
    );
    let comments = w.incident_comments.entry(name.clone()).or_default();
    let (status, comment) = match find_by_name(comments, &cid) {
        Some(existing) => {
            existing["properties"]["message"] = json!(message);
            existing["properties"]["lastModifiedTimeUtc"] = json!(now);
            existing["etag"] = json!(new_etag());
            (StatusCode::OK, existing.clone())
        }
        None => {
            let c = json!({
                "id": format!("{incident_path}/comments/{cid}"),
                "name": cid,
                "type": "Microsoft.SecurityInsights/Incidents/Comments",
                "etag": new_etag(),
                "properties": {
                    "message": message,
                    "createdTimeUtc": now,
                    "lastModifiedTimeUtc": now,
                    "author": {"objectId": app, "email": Value::Null, "name": app, "userPrincipalName": Value::Null},
                },
            });
            comments.push(c.clone());
            (StatusCode::CREATED, c)
        }
    };
    let count = comments.len();
    if let Some(inc) = find_by_name(&mut w.incidents, &name) {
        inc["properties"]["additionalData"]["commentsCount"] = json!(count);
    }
    Ok((status, Json(comment)).into_response())
}

async fn delete_comment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id, cid)): Path<(String, String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let name = incident_name(w, &id)?;
    let comments = w.incident_comments.entry(name).or_default();
    let before = comments.len();
    comments.retain(|c| {
        !c["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&cid))
    });
    Ok(if comments.len() < before {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        assert!(valid_api_version("2025-09-01"));
        assert!(valid_api_version("2024-04-01-preview"));
        assert!(!valid_api_version("2025-9-1"));
        assert!(!valid_api_version("latest"));
    }

    #[test]
    fn canonical_casing() {
        assert_eq!(
            canonical_path("/arm/subscriptions/x/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/w").as_deref(),
            Some("/arm/subscriptions/x/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w")
        );
        assert_eq!(canonical_path("/arm/subscriptions/x"), None);
        assert_eq!(canonical_path("/defender/api/machines"), None);
    }
}
