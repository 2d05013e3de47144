//! Generic ARM resource collections: the list, get, delete and create-or-update behaviour that
//! every simple resource type shares (watchlists, automation rules, saved searches, workbooks,
//! data collection rules and endpoints, templates), so each type only states where its items
//! live and how a PUT body becomes a resource.
//!
//! Two scopes: workspace resources (`…/workspaces/{ws}/…`) and resource-group resources
//! (`…/resourceGroups/{rg}/providers/Microsoft.Insights/…`). The sandbox keeps a resource
//! group's resources with the workspace in that group (each seeded group holds one workspace).

use std::sync::MutexGuard;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value};

use crate::arm::{
    API, arm_list, check_etag, check_subscription, find_by_name, resolve_workspace, tenant,
    workspace_id,
};
use crate::errors::{ApiError, ApiResult, bad_body, parse_json};
use crate::seed::{TenantData, WorkspaceData};
use crate::state::AppState;
use crate::token::Caller;
use crate::util::QueryParams;

/// One resource type kept as a list of ARM JSON resources.
pub trait Collection: Send + Sync + 'static {
    /// Name used in error messages ("watchlist").
    const NOUN: &'static str;
    /// Whether the list operation is `x-ms-pageable` (answers a `nextLink` past a page).
    const PAGEABLE: bool = true;
    fn items(w: &mut WorkspaceData) -> &mut Vec<Value>;
    /// The resource as a list or get shows it (query options such as `canFetchContent`, or
    /// computed properties). `None` leaves it out of a list.
    fn shown(
        _w: &WorkspaceData,
        item: Value,
        _query: &QueryParams,
        _listing: bool,
    ) -> ApiResult<Option<Value>> {
        Ok(Some(item))
    }
}

fn not_found<C: Collection>(name: &str) -> ApiError {
    ApiError::new(
        API,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The {} '{name}' was not found.", C::NOUN),
    )
}

/// The workspace whose resource group is `rg`.
pub fn resolve_group<'t>(
    state: &AppState,
    caller: &Caller,
    t: &'t mut TenantData,
    sub: &str,
    rg: &str,
) -> ApiResult<&'t mut WorkspaceData> {
    check_subscription(state, caller, sub)?;
    t.workspaces
        .iter_mut()
        .find(|w| {
            w.public.subscription_id.eq_ignore_ascii_case(sub)
                && w.public.resource_group.eq_ignore_ascii_case(rg)
        })
        .ok_or_else(|| {
            ApiError::new(
                API,
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                format!("Resource group '{rg}' could not be found."),
            )
        })
}

fn shown_list<C: Collection>(w: &mut WorkspaceData, query: &QueryParams) -> ApiResult<Vec<Value>> {
    let items = C::items(w).clone();
    let mut out = Vec::new();
    for item in items {
        out.extend(C::shown(w, item, query, true)?);
    }
    Ok(out)
}

fn shown_one<C: Collection>(
    w: &mut WorkspaceData,
    name: &str,
    query: &QueryParams,
) -> ApiResult<Value> {
    let item = find_by_name(C::items(w), name)
        .map(|v| v.clone())
        .ok_or_else(|| not_found::<C>(name))?;
    C::shown(w, item, query, false)?.ok_or_else(|| not_found::<C>(name))
}

/// 200 when something was deleted, 204 when there was nothing to delete (ARM's convention).
fn delete_from<C: Collection>(w: &mut WorkspaceData, name: &str) -> StatusCode {
    let items = C::items(w);
    let before = items.len();
    items.retain(|r| {
        !r["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    });
    if items.len() < before {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }
}

/// A PUT as a [`Writable`] collection turns it into the stored resource.
pub struct Put<'a> {
    pub name: &'a str,
    /// The ARM path of the scope (the workspace, or the resource group).
    pub parent: &'a str,
    pub body: &'a Value,
    pub caller: &'a Caller,
    /// The resource being replaced, if any.
    pub existing: Option<&'a Value>,
}

impl Put<'_> {
    /// The PUT body's `properties`, required by every resource type.
    pub fn properties(&self) -> ApiResult<Map<String, Value>> {
        self.body["properties"]
            .as_object()
            .cloned()
            .ok_or_else(|| bad_body(API, "The 'properties' object is required."))
    }

    /// A property of the resource being replaced, or `default` for a new one.
    pub fn kept(&self, key: &str, default: Value) -> Value {
        self.existing
            .map(|e| e["properties"][key].clone())
            .filter(|v| !v.is_null())
            .unwrap_or(default)
    }
}

/// A collection that can be written with PUT.
pub trait Writable: Collection {
    /// The status a PUT that creates the resource answers (the operation's declared one).
    const CREATED: StatusCode = StatusCode::CREATED;
    /// Checks what a body refers to elsewhere in the tenant (destination workspaces, endpoints).
    fn check(_t: &TenantData, _body: &Value) -> ApiResult<()> {
        Ok(())
    }
    /// The resource to store, from the request (validated here) and the resource it replaces.
    fn build(put: &Put<'_>) -> ApiResult<Value>;
}

/// Create or replace `name` after the etag checks; 201 for a new resource, 200 for a replaced one.
fn upsert<C: Writable>(
    w: &mut WorkspaceData,
    parent: &str,
    name: &str,
    headers: &HeaderMap,
    body: &Value,
    caller: &Caller,
) -> ApiResult<Response> {
    let existing = find_by_name(C::items(w), name).map(|v| v.clone());
    match &existing {
        Some(current) => check_etag(headers, body, current, &format!("{} '{name}'", C::NOUN))?,
        None if headers.get("if-match").is_some() => {
            return Err(ApiError::new(
                API,
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                format!(
                    "The {} '{name}' does not exist, so If-Match cannot match.",
                    C::NOUN
                ),
            ));
        }
        None => {}
    }
    let resource = C::build(&Put {
        name,
        parent,
        body,
        caller,
        existing: existing.as_ref(),
    })?;
    let items = C::items(w);
    let status = match find_by_name(items, name) {
        Some(slot) => {
            *slot = resource.clone();
            StatusCode::OK
        }
        None => {
            items.push(resource.clone());
            C::CREATED
        }
    };
    Ok((status, Json(resource)).into_response())
}

type WsPath = Path<(String, String, String)>;
type WsItemPath = Path<(String, String, String, String)>;
type GroupPath = Path<(String, String)>;
type GroupItemPath = Path<(String, String, String)>;

pub async fn list_in_workspace<C: Collection>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    Path((sub, rg, ws)): WsPath,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let items = {
        let mut t = tenant(&state, &caller)?;
        shown_list::<C>(
            resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?,
            &query,
        )?
    };
    if !C::PAGEABLE {
        return Ok(Json(serde_json::json!({"value": items})));
    }
    arm_list(&state, uri.path(), raw.as_deref(), items)
}

pub async fn get_in_workspace<C: Collection>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
    Path((sub, rg, ws, name)): WsItemPath,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    shown_one::<C>(w, &name, &QueryParams::parse(raw.as_deref())).map(Json)
}

pub async fn delete_in_workspace<C: Collection>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, name)): WsItemPath,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    Ok(delete_from::<C>(
        resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?,
        &name,
    ))
}

pub async fn list_in_group<C: Collection>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    Path((sub, rg)): GroupPath,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let items = {
        let mut t = tenant(&state, &caller)?;
        shown_list::<C>(resolve_group(&state, &caller, &mut t, &sub, &rg)?, &query)?
    };
    arm_list(&state, uri.path(), raw.as_deref(), items)
}

/// A subscription-wide list: the resources of every resource group in the subscription.
pub async fn list_in_subscription<C: Collection>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    Path(sub): Path<String>,
) -> ApiResult<Json<Value>> {
    check_subscription(&state, &caller, &sub)?;
    let query = QueryParams::parse(raw.as_deref());
    let items = {
        let mut t = tenant(&state, &caller)?;
        let mut items = Vec::new();
        for w in t
            .workspaces
            .iter_mut()
            .filter(|w| w.public.subscription_id.eq_ignore_ascii_case(&sub))
        {
            items.extend(shown_list::<C>(w, &query)?);
        }
        items
    };
    arm_list(&state, uri.path(), raw.as_deref(), items)
}

pub async fn get_in_group<C: Collection>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
    Path((sub, rg, name)): GroupItemPath,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_group(&state, &caller, &mut t, &sub, &rg)?;
    shown_one::<C>(w, &name, &QueryParams::parse(raw.as_deref())).map(Json)
}

pub async fn delete_in_group<C: Collection>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, name)): GroupItemPath,
) -> ApiResult<StatusCode> {
    let mut t = tenant(&state, &caller)?;
    Ok(delete_from::<C>(
        resolve_group(&state, &caller, &mut t, &sub, &rg)?,
        &name,
    ))
}

/// Checks the subscription, parses the body and checks it against the tenant; returns the
/// locked tenant to write in.
fn prepare<'s, C: Writable>(
    state: &'s AppState,
    caller: &Caller,
    sub: &str,
    body: &[u8],
) -> ApiResult<(MutexGuard<'s, TenantData>, Value)> {
    check_subscription(state, caller, sub)?;
    let body: Value = parse_json(API, body)?;
    let t = tenant(state, caller)?;
    C::check(&t, &body)?;
    Ok((t, body))
}

pub async fn put_in_workspace<C: Writable>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, name)): WsItemPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (mut t, body) = prepare::<C>(&state, &caller, &sub, &body)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let parent = workspace_id(w);
    upsert::<C>(w, &parent, &name, &headers, &body, &caller)
}

pub async fn put_in_group<C: Writable>(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, name)): GroupItemPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (mut t, body) = prepare::<C>(&state, &caller, &sub, &body)?;
    let w = resolve_group(&state, &caller, &mut t, &sub, &rg)?;
    let parent = format!(
        "/subscriptions/{}/resourceGroups/{}",
        w.public.subscription_id, w.public.resource_group
    );
    upsert::<C>(w, &parent, &name, &headers, &body, &caller)
}
