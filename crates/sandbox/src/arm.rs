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
use axum::http::{HeaderMap, Request, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::errors::{Api, ApiError, ApiResult, bad_body, parse_json};
use crate::odata;
use crate::seed::{TenantData, WorkspaceData};
use crate::state::AppState;
use crate::token::Caller;
use crate::util::{QueryParams, build_url, fmt_time, new_guid, paginate, parse_usize_opt};

/// Optimistic concurrency on an update of `existing`, as resource providers check it: an
/// `If-Match` header that no longer matches is `412 PreconditionFailed`; Sentinel resources
/// also carry the etag in the body, and a stale one there is `409 Conflict` (`*` matches any).
pub(crate) fn check_etag(
    headers: &HeaderMap,
    body: &Value,
    existing: &Value,
    what: &str,
) -> ApiResult<()> {
    let current = existing["etag"].as_str().unwrap_or_default();
    if let Some(wanted) = headers.get("if-match").and_then(|v| v.to_str().ok())
        && wanted != "*"
        && wanted != current
    {
        return Err(ApiError::new(
            API,
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            format!(
                "The {what} was changed by someone else: If-Match {wanted} does not match the current etag {current}. Re-read it and retry."
            ),
        ));
    }
    if let Some(etag) = body["etag"].as_str()
        && etag != "*"
        && etag != current
    {
        return Err(ApiError::new(
            API,
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Newer version of the {what} exists: the etag {etag} does not match the current etag {current}. Re-read it and retry."
            ),
        ));
    }
    Ok(())
}

pub(crate) const API: Api = Api::Arm;

pub(crate) const WS: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{ws}";
pub(crate) const SI: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{ws}/providers/Microsoft.SecurityInsights";

pub fn router(state: AppState) -> Router<AppState> {
    let router = Router::new()
        .route("/subscriptions", get(list_subscriptions))
        .route("/subscriptions/{sub}", get(get_subscription))
        .route("/subscriptions/{sub}/providers/Microsoft.OperationalInsights/workspaces", get(list_workspaces_sub))
        .route("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces", get(list_workspaces_rg))
        .route(WS, get(get_workspace))
        .route("/subscriptions/{sub}/providers/Microsoft.ManagedServices/registrationAssignments", get(list_registration_assignments))
        .route(&format!("{SI}/alertRules"), get(list_alert_rules))
        .route(&format!("{SI}/alertRules/{{id}}"), get(get_alert_rule).put(put_alert_rule).delete(delete_alert_rule))
        .route(&format!("{SI}/incidents"), get(list_incidents))
        .route(&format!("{SI}/incidents/{{id}}"), get(get_incident).put(put_incident).delete(delete_incident))
        .route(&format!("{SI}/incidents/{{id}}/comments"), get(list_comments))
        .route(&format!("{SI}/incidents/{{id}}/comments/{{cid}}"), get(get_comment).put(put_comment).delete(delete_comment));
    let router = crate::insights::routes(crate::sentinel::routes(crate::tables::routes(router)));
    router
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
        "alertRuleTemplates",
        "watchlists",
        "watchlistItems",
        "automationRules",
        "savedSearches",
        "alerts",
        "entities",
        "Microsoft.Insights",
        "workbooks",
        "dataCollectionRules",
        "dataCollectionEndpoints",
        "dataCollectionRuleAssociations",
        "associations",
        "Microsoft.Compute",
        "virtualMachines",
        "Microsoft.ManagedServices",
        "registrationAssignments",
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

pub(crate) fn tenant<'a>(
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
pub(crate) fn check_subscription(state: &AppState, caller: &Caller, sub: &str) -> ApiResult<()> {
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
pub(crate) fn resolve_workspace<'t>(
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

pub(crate) fn workspace_id(w: &WorkspaceData) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
        w.public.subscription_id, w.public.resource_group, w.public.name
    )
}

pub(crate) fn workspace_json(w: &WorkspaceData) -> Value {
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
pub(crate) fn arm_list(
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
        "managedByTenants": [{"tenantId": crate::content::MSSP_TENANT_ID}],
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
    // `SubscriptionListResult` declares `value` and `nextLink` only.
    Json(json!({"value": value}))
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

/// Azure Lighthouse: the delegations of a subscription (`$expandRegistrationDefinition=true`
/// embeds each definition, as the portal asks for it).
async fn list_registration_assignments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
    Path(sub): Path<String>,
) -> ApiResult<Json<Value>> {
    check_subscription(&state, &caller, &sub)?;
    let tenant_name = state
        .tenants_public
        .iter()
        .find(|t| t.tenant_id == caller.tenant_id)
        .map(|t| t.display_name.clone())
        .unwrap_or_default();
    let expand = QueryParams::parse(raw.as_deref())
        .get("$expandRegistrationDefinition")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut value = crate::content::registration_assignments(&sub, &tenant_name);
    if !expand {
        for v in &mut value {
            if let Some(p) = v["properties"].as_object_mut() {
                p.remove("registrationDefinition");
            }
        }
    }
    Ok(Json(json!({"value": value})))
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
// Analytics rules
// ---------------------------------------------------------------------------------------

pub(crate) fn new_etag() -> String {
    format!("\"{}\"", new_guid())
}

pub(crate) fn find_by_name<'a>(items: &'a mut [Value], name: &str) -> Option<&'a mut Value> {
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
    let kinds = rule_kinds(raw.as_deref());
    let items = {
        let mut t = tenant(&state, &caller)?;
        resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?
            .alert_rules
            .iter()
            // A stable list leaves out the kinds its definition does not have (NRT), as the
            // service does (Azure/azure-sdk-for-python#39996, microsoft/msticpy#788).
            .filter(|r| r["kind"].as_str().is_some_and(|k| kinds.contains(&k)))
            .cloned()
            .collect()
    };
    arm_list(&state, uri.path(), raw.as_deref(), items)
}

/// The alert rule kinds of the api-version asked for: `AlertRuleKind` of
/// `stable/2025-09-01/openapi.json` (no NRT), or the subtypes vendored from
/// `preview/2025-10-01-preview/openapi.json` (the contract layer refuses any other version).
fn rule_kinds(raw_query: Option<&str>) -> &'static [&'static str] {
    let preview = raw_query.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .any(|(k, v)| k == "api-version" && v.ends_with("-preview"))
    });
    if preview {
        &[
            "Scheduled",
            "NRT",
            "Fusion",
            "MicrosoftSecurityIncidentCreation",
        ]
    } else {
        &["Scheduled", "Fusion", "MicrosoftSecurityIncidentCreation"]
    }
}

/// A rule of a kind the api-version does not define cannot be answered at it.
fn kind_not_at_version(id: &str, kind: &str) -> ApiError {
    bad_body(
        API,
        format!(
            "The alert rule '{id}' is of kind '{kind}', which this api-version does not define; read it with api-version 2025-10-01-preview."
        ),
    )
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
    RawQuery(raw): RawQuery,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let rule = find_by_name(&mut w.alert_rules, &id).ok_or_else(|| rule_not_found(&id))?;
    let kind = rule["kind"].as_str().unwrap_or_default();
    if !rule_kinds(raw.as_deref()).contains(&kind) {
        return Err(kind_not_at_version(&id, kind));
    }
    Ok(Json(rule.clone()))
}

/// `MicrosoftSecurityProductName` (both vendored SecurityInsights definitions).
const SECURITY_PRODUCTS: &[&str] = &[
    "Microsoft Cloud App Security",
    "Azure Security Center",
    "Azure Advanced Threat Protection",
    "Azure Active Directory Identity Protection",
    "Azure Security Center for IoT",
    "Office 365 Advanced Threat Protection",
    "Microsoft Defender Advanced Threat Protection",
];
/// Read-only members of `FusionAlertRuleProperties`: the service takes them from the template.
const FUSION_READ_ONLY: &[&str] = &[
    "description",
    "displayName",
    "severity",
    "tactics",
    "techniques",
    "subTechniques",
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
            // `ScheduledAlertRuleProperties/required` and `NrtAlertRuleProperties/required`.
            let suppression = need("suppressionDuration")?.as_str().unwrap_or_default();
            if crate::util::parse_iso_duration(suppression).is_none() {
                return Err(format!(
                    "properties.suppressionDuration '{suppression}' is not an ISO 8601 duration (e.g. PT5H)."
                ));
            }
            if !need("suppressionEnabled")?.is_boolean() {
                return Err("properties.suppressionEnabled must be a boolean.".into());
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
            let product = need("productFilter")?.as_str().unwrap_or_default();
            if !SECURITY_PRODUCTS.contains(&product) {
                return Err(format!(
                    "properties.productFilter '{product}' is invalid: expected one of {}.",
                    SECURITY_PRODUCTS.join(", ")
                ));
            }
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
    RawQuery(raw): RawQuery,
    Path((sub, rg, ws, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let rule_kinds = rule_kinds(raw.as_deref());
    let body: Value = parse_json(API, &body)?;
    let kind = body["kind"]
        .as_str()
        .ok_or_else(|| bad_body(API, "The 'kind' property is required."))?
        .to_string();
    let Some(kind) = rule_kinds
        .iter()
        .find(|k| k.eq_ignore_ascii_case(&kind))
        .map(|k| k.to_string())
    else {
        return Err(bad_body(
            API,
            format!(
                "The alert rule kind '{kind}' is not supported at this api-version: expected one of {}.",
                rule_kinds.join(", ")
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
    if kind == "Fusion" {
        // The service fills a Fusion rule's read-only members from its template.
        let template_name = props["alertRuleTemplateName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let template = w
            .content
            .alert_rule_templates
            .iter()
            .find(|t| {
                t["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&template_name))
            })
            .map(|t| t["properties"].clone());
        for key in FUSION_READ_ONLY {
            props.remove(*key);
            if let Some(value) = template.as_ref().and_then(|t| t.get(*key)) {
                props.insert((*key).to_string(), value.clone());
            }
        }
    }
    match find_by_name(&mut w.alert_rules, &id) {
        Some(existing) => {
            check_etag(&headers, &body, existing, &format!("alert rule '{id}'"))?;
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
    // `classificationReason` is a string enum without `x-nullable`: a `null` (or any other
    // non-string) is refused rather than read as "no reason".
    if let Some(reason) = p.get("classificationReason")
        && !reason.is_string()
    {
        return Err(format!(
            "properties.classificationReason must be one of {}; leave it out when there is none.",
            CLASSIFICATION_REASONS.join(", ")
        ));
    }
    // `IncidentOwnerInfo`: string members, `objectId` a uuid, none of them `x-nullable`.
    if let Some(owner) = p.get("owner") {
        let Some(owner) = owner.as_object() else {
            return Err("properties.owner must be an object.".into());
        };
        for (k, v) in owner {
            match k.as_str() {
                "email" | "assignedTo" | "userPrincipalName" if v.is_string() => {}
                "objectId"
                    if v.as_str()
                        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()) => {}
                "ownerType"
                    if v.as_str()
                        .is_some_and(|t| ["Unknown", "User", "Group"].contains(&t)) => {}
                _ => {
                    return Err(format!(
                        "properties.owner.{k} {v} is invalid: objectId is a GUID, ownerType Unknown, User or Group, the others strings."
                    ));
                }
            }
        }
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
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(API, &body)?;
    let Some(props) = body["properties"].as_object().cloned() else {
        return Err(bad_body(API, "The 'properties' object is required."));
    };
    validate_incident(&props).map_err(|m| bad_body(API, m))?;
    let mut props = props;
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
            check_etag(&headers, &body, existing, &format!("incident '{id}'"))?;
            // `IncidentLabel.labelType` is read-only: a label already there keeps its type
            // (AutoAssigned stays AutoAssigned), one added by this PUT is the user's.
            if let Some(labels) = props.get_mut("labels").and_then(Value::as_array_mut) {
                let before = existing["properties"]["labels"].clone();
                for label in labels.iter_mut() {
                    let kept = before
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|l| l["labelName"] == label["labelName"])
                        .and_then(|l| l.get("labelType").cloned());
                    label["labelType"] = kept.unwrap_or_else(|| json!("User"));
                }
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
            for label in props
                .get_mut("labels")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                label["labelType"] = json!("User");
            }
            let mut p: Map<String, Value> = props
                .into_iter()
                .filter(|(k, _)| !INCIDENT_READ_ONLY.contains(&k.as_str()))
                .collect();
            p.insert("incidentNumber".into(), json!(next_number));
            p.insert("createdTimeUtc".into(), Value::String(now.clone()));
            p.insert("lastModifiedTimeUtc".into(), Value::String(now));
            p.entry("owner").or_insert(json!({"ownerType": "Unknown"}));
            p.entry("labels").or_insert(json!([]));
            p.insert("providerName".into(), json!("Azure Sentinel"));
            p.insert("providerIncidentId".into(), json!(next_number.to_string()));
            p.insert("additionalData".into(), json!({"alertsCount": 0, "bookmarksCount": 0, "commentsCount": 0, "alertProductNames": [], "tactics": []}));
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
pub(crate) fn incident_name(w: &mut WorkspaceData, id: &str) -> ApiResult<String> {
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
                    "author": {"objectId": app, "name": app},
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
