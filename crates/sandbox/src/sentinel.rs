//! Sentinel (`Microsoft.SecurityInsights`) resources beyond rules and incidents: analytics
//! rule templates, watchlists and their items, automation rules, an incident's alerts and
//! entities; and the workspace's saved searches (functions and saved queries,
//! `Microsoft.OperationalInsights/workspaces/savedSearches`).

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::arm::{
    API, SI, WS, arm_list, find_by_name, incident_name, new_etag, resolve_workspace, tenant,
    workspace_id,
};
use crate::content::{saved_search_etag, watchlist_item_json};
use crate::errors::{ApiError, ApiResult, bad_body, parse_json};
use crate::resources::{
    Collection, Put, Writable, delete_in_workspace, get_in_workspace, list_in_workspace,
    put_in_workspace,
};
use crate::seed::WorkspaceData;
use crate::state::AppState;
use crate::token::Caller;
use crate::util::{QueryParams, fmt_time, new_guid};

pub fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route(
            &format!("{SI}/alertRuleTemplates"),
            get(list_in_workspace::<Templates>),
        )
        .route(
            &format!("{SI}/alertRuleTemplates/{{id}}"),
            get(get_in_workspace::<Templates>),
        )
        .route(
            &format!("{SI}/watchlists"),
            get(list_in_workspace::<Watchlists>),
        )
        .route(
            &format!("{SI}/watchlists/{{alias}}"),
            get(get_in_workspace::<Watchlists>)
                .put(put_in_workspace::<Watchlists>)
                .delete(delete_watchlist),
        )
        .route(
            &format!("{SI}/watchlists/{{alias}}/watchlistItems"),
            get(list_watchlist_items),
        )
        .route(
            &format!("{SI}/watchlists/{{alias}}/watchlistItems/{{item}}"),
            get(get_watchlist_item)
                .put(put_watchlist_item)
                .delete(delete_watchlist_item),
        )
        .route(
            &format!("{SI}/automationRules"),
            get(list_in_workspace::<AutomationRules>),
        )
        .route(
            &format!("{SI}/automationRules/{{id}}"),
            get(get_in_workspace::<AutomationRules>)
                .put(put_in_workspace::<AutomationRules>)
                .delete(delete_automation_rule),
        )
        .route(
            &format!("{SI}/incidents/{{id}}/alerts"),
            post(incident_alerts),
        )
        .route(
            &format!("{SI}/incidents/{{id}}/entities"),
            post(incident_entities),
        )
        .route(
            &format!("{WS}/savedSearches"),
            get(list_in_workspace::<SavedSearches>),
        )
        .route(
            &format!("{WS}/savedSearches/{{id}}"),
            get(get_in_workspace::<SavedSearches>)
                .put(put_in_workspace::<SavedSearches>)
                .delete(delete_in_workspace::<SavedSearches>),
        )
}

type ItemPath = Path<(String, String, String, String)>;

fn required_text<'a>(p: &'a Map<String, Value>, key: &str) -> ApiResult<&'a str> {
    p.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad_body(API, format!("properties.{key} is required.")))
}

pub struct Templates;

impl Collection for Templates {
    const NOUN: &'static str = "alert rule template";
    fn items(w: &mut WorkspaceData) -> &mut Vec<Value> {
        &mut w.content.alert_rule_templates
    }
    /// How many rules were created from the template is counted from the rules that name it.
    fn shown(
        w: &WorkspaceData,
        mut item: Value,
        _query: &QueryParams,
        _listing: bool,
    ) -> ApiResult<Option<Value>> {
        let name = item["name"].as_str().unwrap_or_default().to_string();
        let count = w
            .alert_rules
            .iter()
            .filter(|r| {
                r["properties"]["alertRuleTemplateName"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(&name))
            })
            .count();
        item["properties"]["alertRulesCreatedByTemplateCount"] = json!(count);
        Ok(Some(item))
    }
}

pub struct Watchlists;

impl Collection for Watchlists {
    const NOUN: &'static str = "watchlist";
    fn items(w: &mut WorkspaceData) -> &mut Vec<Value> {
        &mut w.content.watchlists
    }
}

impl Writable for Watchlists {
    fn build(put: &Put<'_>) -> ApiResult<Value> {
        let mut props = put.properties()?;
        for key in ["displayName", "provider", "itemsSearchKey"] {
            required_text(&props, key)?;
        }
        if props.contains_key("rawContent") {
            return Err(bad_body(
                API,
                "rawContent uploads are not simulated by the sandbox: create the watchlist, then PUT its items.",
            ));
        }
        let now = fmt_time(OffsetDateTime::now_utc());
        let who = json!({"objectId": put.caller.app_id});
        for (k, v) in [
            ("watchlistAlias", json!(put.name)),
            ("watchlistId", put.kept("watchlistId", json!(new_guid()))),
            ("created", put.kept("created", json!(now))),
            ("updated", json!(now)),
            ("createdBy", put.kept("createdBy", who.clone())),
            ("updatedBy", who),
            ("tenantId", json!(put.caller.tenant_id)),
            ("isDeleted", json!(false)),
            ("uploadStatus", json!("Complete")),
            // Read-only `WatchlistProperties.provisioningState`. `Watchlists_CreateOrUpdate` is
            // a long-running operation, but the sandbox finishes it within the request and
            // answers without `Azure-AsyncOperation` (a 201 without it is final for a client):
            // SecurityInsights declares no operation-status path a status URL could point to.
            ("provisioningState", json!("Succeeded")),
        ] {
            props.insert(k.into(), v);
        }
        props.entry("labels").or_insert(json!([]));
        props.entry("defaultDuration").or_insert(json!("P1000Y"));
        let path = format!(
            "{}/providers/Microsoft.SecurityInsights/watchlists/{}",
            put.parent, put.name
        );
        Ok(
            json!({"id": path, "name": put.name, "type": "Microsoft.SecurityInsights/Watchlists", "etag": new_etag(), "properties": props}),
        )
    }
}

async fn delete_watchlist(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, alias)): ItemPath,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let before = w.content.watchlists.len();
    w.content.watchlists.retain(|x| {
        !x["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&alias))
    });
    w.content
        .watchlist_items
        .retain(|k, _| !k.eq_ignore_ascii_case(&alias));
    // `Watchlists_Delete` declares `202` (accepted) and `204` (nothing to delete), no `200`.
    // The deletion is done within the request; no `Azure-AsyncOperation`/`Location` is sent
    // because SecurityInsights declares no operation-status path to point them at.
    Ok(if w.content.watchlists.len() < before {
        StatusCode::ACCEPTED
    } else {
        StatusCode::NO_CONTENT
    })
}

/// The canonical alias and search key of a watchlist, or 404.
fn watchlist(w: &mut WorkspaceData, alias: &str) -> ApiResult<(String, String)> {
    find_by_name(&mut w.content.watchlists, alias)
        .map(|x| {
            (
                x["name"].as_str().unwrap_or_default().to_string(),
                x["properties"]["itemsSearchKey"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .ok_or_else(|| {
            ApiError::new(
                API,
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("Watchlist '{alias}' was not found."),
            )
        })
}

async fn list_watchlist_items(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    Path((sub, rg, ws, alias)): ItemPath,
) -> ApiResult<Json<Value>> {
    let items = {
        let mut t = tenant(&state, &caller)?;
        let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
        let (name, _) = watchlist(w, &alias)?;
        w.content
            .watchlist_items
            .get(&name)
            .cloned()
            .unwrap_or_default()
    };
    arm_list(&state, uri.path(), raw.as_deref(), items)
}

type WatchlistItemPath = Path<(String, String, String, String, String)>;

fn item_not_found(item: &str) -> ApiError {
    ApiError::new(
        API,
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Watchlist item '{item}' was not found."),
    )
}

async fn get_watchlist_item(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, alias, item)): WatchlistItemPath,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let (name, _) = watchlist(w, &alias)?;
    let items = w.content.watchlist_items.entry(name).or_default();
    find_by_name(items, &item)
        .map(|v| Json(v.clone()))
        .ok_or_else(|| item_not_found(&item))
}

async fn put_watchlist_item(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, alias, item)): WatchlistItemPath,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(API, &body)?;
    let values = body["properties"]["itemsKeyValue"]
        .as_object()
        .filter(|m| !m.is_empty())
        .cloned()
        .ok_or_else(|| {
            bad_body(
                API,
                "properties.itemsKeyValue is required and must be a non-empty object.",
            )
        })?;
    let now = fmt_time(OffsetDateTime::now_utc());
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let (name, key) = watchlist(w, &alias)?;
    if !values.contains_key(&key) {
        return Err(bad_body(
            API,
            format!("properties.itemsKeyValue must contain the watchlist's search key '{key}'."),
        ));
    }
    let path = format!(
        "{}/providers/Microsoft.SecurityInsights/watchlists/{name}",
        workspace_id(w)
    );
    let items = w.content.watchlist_items.entry(name).or_default();
    let resource = watchlist_item_json(
        &path,
        &item,
        &new_etag(),
        Value::Object(values),
        &caller.app_id,
        &now,
    );
    let status = match find_by_name(items, &item) {
        Some(slot) => {
            *slot = resource.clone();
            StatusCode::OK
        }
        None => {
            items.push(resource.clone());
            StatusCode::CREATED
        }
    };
    Ok(axum::response::IntoResponse::into_response((
        status,
        Json(resource),
    )))
}

async fn delete_watchlist_item(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, alias, item)): WatchlistItemPath,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let (name, _) = watchlist(w, &alias)?;
    let items = w.content.watchlist_items.entry(name).or_default();
    let before = items.len();
    items.retain(|x| {
        !x["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&item))
    });
    Ok(if items.len() < before {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    })
}

pub struct AutomationRules;

impl Collection for AutomationRules {
    const NOUN: &'static str = "automation rule";
    fn items(w: &mut WorkspaceData) -> &mut Vec<Value> {
        &mut w.content.automation_rules
    }
}

/// `AutomationRules_Delete` declares its `200` with a body (`schema: {type: object}`), so a
/// deletion answers `{}`; nothing to delete is `204`.
async fn delete_automation_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): ItemPath,
) -> ApiResult<Response> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let before = w.content.automation_rules.len();
    w.content.automation_rules.retain(|x| {
        !x["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&id))
    });
    Ok(if w.content.automation_rules.len() < before {
        axum::response::IntoResponse::into_response((StatusCode::OK, Json(json!({}))))
    } else {
        axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT)
    })
}

fn validate_automation_rule(p: &Map<String, Value>) -> ApiResult<()> {
    required_text(p, "displayName")?;
    let order = p
        .get("order")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad_body(API, "properties.order is required and must be an integer."))?;
    if !(1..=1000).contains(&order) {
        return Err(bad_body(
            API,
            format!("properties.order {order} is out of range 1-1000."),
        ));
    }
    let logic = p
        .get("triggeringLogic")
        .and_then(Value::as_object)
        .ok_or_else(|| bad_body(API, "properties.triggeringLogic is required."))?;
    if !logic.get("isEnabled").is_some_and(Value::is_boolean) {
        return Err(bad_body(
            API,
            "properties.triggeringLogic.isEnabled must be a boolean.",
        ));
    }
    let on = logic
        .get("triggersOn")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !["Incidents", "Alerts"].contains(&on) {
        return Err(bad_body(
            API,
            format!(
                "properties.triggeringLogic.triggersOn '{on}' is invalid: expected Incidents or Alerts."
            ),
        ));
    }
    let when = logic
        .get("triggersWhen")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !["Created", "Updated"].contains(&when) {
        return Err(bad_body(
            API,
            format!(
                "properties.triggeringLogic.triggersWhen '{when}' is invalid: expected Created or Updated."
            ),
        ));
    }
    // `SI /definitions/AutomationRuleProperties`: `actions` required, `maxItems: 20` (no
    // `minItems`); `triggeringLogic.conditions` `maxItems: 50`; each action needs `order`.
    let actions = p
        .get("actions")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_body(API, "properties.actions is required."))?;
    if actions.len() > 20 {
        return Err(bad_body(
            API,
            format!(
                "properties.actions has {} actions; at most 20 are allowed.",
                actions.len()
            ),
        ));
    }
    if let Some(conditions) = logic.get("conditions").and_then(Value::as_array)
        && conditions.len() > 50
    {
        return Err(bad_body(
            API,
            format!(
                "properties.triggeringLogic.conditions has {} conditions; at most 50 are allowed.",
                conditions.len()
            ),
        ));
    }
    for action in actions {
        if !action["order"].is_i64() {
            return Err(bad_body(API, "Each action needs an integer order."));
        }
        let kind = action["actionType"].as_str().unwrap_or_default();
        if !["ModifyProperties", "RunPlaybook", "AddIncidentTask"].contains(&kind) {
            return Err(bad_body(
                API,
                format!(
                    "Action type '{kind}' is invalid: expected ModifyProperties, RunPlaybook or AddIncidentTask."
                ),
            ));
        }
    }
    Ok(())
}

impl Writable for AutomationRules {
    fn build(put: &Put<'_>) -> ApiResult<Value> {
        let mut props = put.properties()?;
        validate_automation_rule(&props)?;
        let now = json!(fmt_time(OffsetDateTime::now_utc()));
        // `ClientInfo` has email, name, objectId and userPrincipalName, none `x-nullable`: an
        // application caller has only its object id.
        let who = json!({"objectId": put.caller.app_id});
        props.insert(
            "createdTimeUtc".into(),
            put.kept("createdTimeUtc", now.clone()),
        );
        props.insert("createdBy".into(), put.kept("createdBy", who.clone()));
        props.insert("lastModifiedTimeUtc".into(), now);
        props.insert("lastModifiedBy".into(), who);
        let path = format!(
            "{}/providers/Microsoft.SecurityInsights/automationRules/{}",
            put.parent, put.name
        );
        Ok(
            json!({"id": path, "name": put.name, "type": "Microsoft.SecurityInsights/AutomationRules", "etag": new_etag(), "properties": props}),
        )
    }
}

pub struct SavedSearches;

impl Collection for SavedSearches {
    const NOUN: &'static str = "saved search";
    /// `SavedSearches_ListByWorkspace` is not `x-ms-pageable` and `SavedSearchesListResult` has
    /// only `value`.
    const PAGEABLE: bool = false;
    fn items(w: &mut WorkspaceData) -> &mut Vec<Value> {
        &mut w.content.saved_searches
    }
}

impl Writable for SavedSearches {
    /// `SavedSearches_CreateOrUpdate` declares only `200`, for a new search too.
    const CREATED: StatusCode = StatusCode::OK;
    fn build(put: &Put<'_>) -> ApiResult<Value> {
        let mut props = put.properties()?;
        for key in ["category", "displayName", "query"] {
            required_text(&props, key)?;
        }
        if let Some(alias) = props.get("functionAlias").and_then(Value::as_str)
            && !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad_body(
                API,
                format!(
                    "properties.functionAlias '{alias}' is invalid: use letters, digits and underscores."
                ),
            ));
        }
        props.entry("version").or_insert(json!(2));
        props.entry("tags").or_insert(json!([]));
        let path = format!("{}/savedSearches/{}", put.parent, put.name);
        Ok(
            json!({"id": path, "etag": saved_search_etag(OffsetDateTime::now_utc()), "name": put.name, "type": "Microsoft.OperationalInsights/savedSearches", "properties": props}),
        )
    }
}

/// `POST …/incidents/{id}/alerts`: the incident's alerts.
async fn incident_alerts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): ItemPath,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let name = incident_name(w, &id)?;
    Ok(Json(
        json!({"value": w.content.incident_alerts.get(&name).cloned().unwrap_or_default()}),
    ))
}

/// `POST …/incidents/{id}/entities`: the incident's entities and a count per kind.
async fn incident_entities(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, id)): ItemPath,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let name = incident_name(w, &id)?;
    let entities = w
        .content
        .incident_entities
        .get(&name)
        .cloned()
        .unwrap_or_default();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in &entities {
        let kind = e["kind"].as_str().unwrap_or_default().to_string();
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let meta: Vec<Value> = counts
        .into_iter()
        .map(
            // `IncidentEntitiesResultsMetadata` has `count` and `entityKind` only.
            |(kind, count)| json!({"count": count, "entityKind": kind}),
        )
        .collect();
    Ok(Json(json!({"entities": entities, "metaData": meta})))
}
