//! Log Analytics `tables` (`…/workspaces/{ws}/tables/{table}`): list and get; PUT (create a
//! custom `_CL` table, or change one), PATCH (retention and plan) and DELETE, each a
//! long-running operation answered `202` and polled through `operationStatuses`.
//!
//! `Tables.json` (2026-03-01) marks the three `x-ms-long-running-operation` with
//! `final-state-via: azure-async-operation`, so the `202` carries `Azure-AsyncOperation`
//! pointing at `OperationStatuses_Get`. The DELETE `202` also declares a `Location` header, but no
//! vendored definition describes the URL it would point at (an `operationResults` resource), and
//! the sandbox serves only declared operations, so it is not sent: a `Location` that answered like
//! `operationStatuses` would teach a client the wrong polling rule (audit A-06).

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::arm::{API, WS, check_subscription, resolve_workspace, tenant, workspace_id};
use crate::errors::{ApiError, ApiResult, bad_body, parse_json};
use crate::kql::{ColType, Column, Table};
use crate::seed::{ArmOperation, TableSettings, WorkspaceData};
use crate::state::AppState;
use crate::token::Caller;
use crate::util::{QueryParams, fmt_time, new_guid};

pub fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route(&format!("{WS}/tables"), get(list_tables))
        .route(&format!("{WS}/tables/{{table}}"), get(get_table).patch(patch_table).put(put_table).delete(delete_table))
        .route(
            "/subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{location}/operationStatuses/{op}",
            get(get_operation),
        )
}

type TablePath = Path<(String, String, String, String)>;

/// The schema type names of the `tables` resource.
fn table_column_type(ty: ColType) -> &'static str {
    match ty {
        ColType::Bool => "boolean",
        ColType::DateTime => "dateTime",
        other => other.la_name(),
    }
}

fn column_type_from(name: &str) -> Option<ColType> {
    Some(match name.to_ascii_lowercase().as_str() {
        "string" => ColType::String,
        "int" => ColType::Int,
        "long" => ColType::Long,
        "real" => ColType::Real,
        "boolean" | "bool" => ColType::Bool,
        "datetime" => ColType::DateTime,
        "guid" => ColType::Guid,
        "dynamic" => ColType::Dynamic,
        _ => return None,
    })
}

/// Columns Log Analytics adds to every custom table itself.
const SYSTEM_COLUMNS: &[&str] = &[
    "TenantId",
    "Type",
    "_ResourceId",
    "_SubscriptionId",
    "_ItemId",
    "_BilledSize",
    "_IsBillable",
    "SourceSystem",
];

fn is_custom(name: &str) -> bool {
    // `get`, not an index: the last three bytes of a name from the URL may start inside a
    // multi-byte character.
    name.len() > 3
        && name
            .get(name.len() - 3..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case("_CL"))
}

fn table_json(w: &WorkspaceData, table: &Table) -> Value {
    let settings = w.table_settings.get(&table.name);
    let retention = settings.map(|s| s.retention_in_days).filter(|r| *r >= 0);
    let total = settings
        .map(|s| s.total_retention_in_days)
        .filter(|r| *r >= 0);
    let effective_retention = retention.unwrap_or(w.retention_in_days);
    let effective_total = total
        .unwrap_or(effective_retention)
        .max(effective_retention);
    let columns = |system: bool| -> Vec<Value> {
        table
            .columns
            .iter()
            .filter(|c| SYSTEM_COLUMNS.contains(&c.name.as_str()) == system)
            .map(|c| json!({"name": c.name, "type": table_column_type(c.ty)}))
            .collect()
    };
    let custom = is_custom(&table.name);
    let (user_columns, standard_columns) = if custom {
        (columns(false), columns(true))
    } else {
        (
            Vec::new(),
            table
                .columns
                .iter()
                .map(|c| json!({"name": c.name, "type": table_column_type(c.ty)}))
                .collect(),
        )
    };
    // `Schema.description` is a plain string (not `x-nullable`): absent when unset.
    let description = settings.and_then(|s| s.description.clone());
    let mut out = json!({
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
                "tableType": if custom { "CustomLog" } else { "Microsoft" },
                "columns": user_columns,
                "standardColumns": standard_columns,
                "solutions": if custom { json!([]) } else { json!(["LogManagement"]) },
            },
            "provisioningState": "Succeeded",
        },
        "id": format!("{}/tables/{}", workspace_id(w), table.name),
        "name": table.name,
    });
    if let Some(description) = description {
        out["properties"]["schema"]["description"] = json!(description);
    }
    out
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

/// The stored name of a table (ARM names are case-insensitive).
fn stored_name(w: &WorkspaceData, table: &str) -> Option<String> {
    w.logs
        .tables
        .keys()
        .find(|k| k.eq_ignore_ascii_case(table))
        .cloned()
}

async fn get_table(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, ws, table)): TablePath,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_workspace(&state, &caller, &mut t, &sub, &rg, &ws)?;
    let name = stored_name(w, &table).ok_or_else(|| table_not_found(&ws, &table))?;
    let tab = w
        .logs
        .get(&name)
        .ok_or_else(|| table_not_found(&ws, &table))?;
    Ok(Json(table_json(w, tab)))
}

/// Retention and plan as a request sets them (`None`: unchanged).
struct TableChange {
    retention: Option<i64>,
    total: Option<i64>,
    plan: Option<String>,
    description: Option<String>,
}

fn parse_change(p: &Map<String, Value>) -> ApiResult<TableChange> {
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
    // `TableProperties.retentionInDays` has `minimum: 4, maximum: 730` and
    // `totalRetentionInDays` `minimum: 4, maximum: 4383`; their descriptions mention -1 for "the
    // default", which the schema refuses, so a table keeps the default by leaving them out.
    if let Some(r) = retention
        && !(4..=730).contains(&r)
    {
        return Err(bad_body(
            API,
            format!("properties.retentionInDays {r} is out of range: 4-730."),
        ));
    }
    if let Some(r) = total
        && !(4..=4383).contains(&r)
    {
        return Err(bad_body(
            API,
            format!("properties.totalRetentionInDays {r} is out of range: 4-4383."),
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
    let description = p
        .get("schema")
        .and_then(|s| s.get("description"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(TableChange {
        retention,
        total,
        plan,
        description,
    })
}

/// The table's settings after a change, checked; nothing is stored. A plan can be switched
/// once a week.
fn settings_after(
    w: &WorkspaceData,
    table: &str,
    change: TableChange,
    now: OffsetDateTime,
) -> ApiResult<TableSettings> {
    let default_retention = w.retention_in_days;
    let created = w.created;
    let mut entry = w
        .table_settings
        .get(table)
        .cloned()
        .unwrap_or(TableSettings {
            retention_in_days: -1,
            total_retention_in_days: -1,
            plan: "Analytics".into(),
            last_plan_modified: created,
            description: None,
        });
    if let Some(r) = change.retention {
        entry.retention_in_days = r;
    }
    if let Some(r) = change.total {
        entry.total_retention_in_days = r;
    }
    if let Some(pl) = change.plan
        && pl != entry.plan
    {
        if now - entry.last_plan_modified < time::Duration::days(7) {
            return Err(bad_body(
                API,
                format!(
                    "The plan of table '{table}' was changed on {}; it can be changed once a week.",
                    fmt_time(entry.last_plan_modified)
                ),
            ));
        }
        entry.last_plan_modified = now;
        entry.plan = pl;
    }
    if change.description.is_some() {
        entry.description = change.description;
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
    Ok(entry)
}

/// The columns of a custom table's schema, validated.
fn parse_columns(table: &str, p: &Map<String, Value>) -> ApiResult<Vec<Column>> {
    let schema = p.get("schema").and_then(Value::as_object).ok_or_else(|| {
        bad_body(
            API,
            "properties.schema is required to create a custom table.",
        )
    })?;
    if let Some(name) = schema.get("name").and_then(Value::as_str)
        && !name.eq_ignore_ascii_case(table)
    {
        return Err(bad_body(
            API,
            format!("properties.schema.name '{name}' does not match the table name '{table}'."),
        ));
    }
    let columns = schema
        .get("columns")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            bad_body(
                API,
                "properties.schema.columns must list at least one column.",
            )
        })?;
    let mut out: Vec<Column> = Vec::new();
    for c in columns {
        let name = c["name"].as_str().unwrap_or_default();
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !valid_name {
            return Err(bad_body(
                API,
                format!(
                    "Column name '{name}' is invalid: use letters, digits and underscores, starting with a letter."
                ),
            ));
        }
        if SYSTEM_COLUMNS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(bad_body(API, format!("Column name '{name}' is reserved.")));
        }
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
            return Err(bad_body(API, format!("Column '{name}' is declared twice.")));
        }
        let ty_name = c["type"].as_str().unwrap_or_default();
        let ty = column_type_from(ty_name).ok_or_else(|| {
            bad_body(API, format!("Column '{name}' has type '{ty_name}': expected string, int, long, real, boolean, dateTime, guid or dynamic."))
        })?;
        out.push(Column::new(name, ty));
    }
    if !out
        .iter()
        .any(|c| c.name == "TimeGenerated" && c.ty == ColType::DateTime)
    {
        return Err(bad_body(
            API,
            "A custom table needs a TimeGenerated column of type dateTime.",
        ));
    }
    out.insert(0, Column::new("TenantId", ColType::String));
    out.push(Column::new("Type", ColType::String));
    Ok(out)
}

/// Starts a long-running operation: `202` with `Azure-AsyncOperation` (the declared
/// `final-state-via`) and `Retry-After` (the time the operation will take, at least a second).
fn start_operation(
    state: &AppState,
    operations: &mut Vec<ArmOperation>,
    sub: &str,
    location: &str,
    uri: &axum::http::Uri,
    error: Option<(String, String)>,
) -> Response {
    let op = ArmOperation {
        id: new_guid(),
        subscription_id: sub.to_string(),
        location: location.to_string(),
        started: OffsetDateTime::now_utc(),
        started_at: std::time::Instant::now(),
        error,
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
    operations.push(op);
    let mut resp = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&op_url) {
        resp.headers_mut().insert("azure-asyncoperation", v);
    }
    let wait = state
        .options
        .action_timings
        .pending
        .as_secs_f64()
        .ceil()
        .max(1.0) as u64;
    resp.headers_mut()
        .insert("retry-after", HeaderValue::from(wait));
    resp
}

/// `PATCH`: retention and plan of an existing table.
async fn patch_table(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path((sub, rg, ws, table)): TablePath,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(API, &body)?;
    let change = parse_change(&body["properties"].as_object().cloned().unwrap_or_default())?;
    let now = OffsetDateTime::now_utc();
    let mut guard = tenant(&state, &caller)?;
    let t = &mut *guard;
    let w = resolve_workspace(&state, &caller, t, &sub, &rg, &ws)?;
    let name = stored_name(w, &table).ok_or_else(|| table_not_found(&ws, &table))?;
    let settings = settings_after(w, &name, change, now)?;
    w.table_settings.insert(name, settings);
    let location = w.location.clone();
    Ok(start_operation(
        &state,
        &mut t.arm_operations,
        &sub,
        &location,
        &uri,
        None,
    ))
}

/// `PUT`: creates a custom `_CL` table from its schema, or changes an existing table (a
/// custom table's schema may gain columns).
async fn put_table(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path((sub, rg, ws, table)): TablePath,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(API, &body)?;
    let props = body["properties"].as_object().cloned().unwrap_or_default();
    let change = parse_change(&props)?;
    let now = OffsetDateTime::now_utc();
    let mut guard = tenant(&state, &caller)?;
    let t = &mut *guard;
    let w = resolve_workspace(&state, &caller, t, &sub, &rg, &ws)?;
    let location = w.location.clone();
    let existing = stored_name(w, &table);
    if existing.is_none() && !is_custom(&table) {
        return Err(bad_body(
            API,
            format!(
                "Table '{table}' does not exist, and only custom tables, whose names end with _CL, can be created."
            ),
        ));
    }
    let columns = match (&existing, props.contains_key("schema")) {
        (Some(_), false) => None,
        (Some(name), true) if !is_custom(name) => {
            return Err(bad_body(
                API,
                format!(
                    "The schema of table '{name}' is managed by Microsoft and cannot be changed."
                ),
            ));
        }
        _ => Some(parse_columns(&table, &props)?),
    };
    if let (Some(name), Some(columns)) = (&existing, &columns) {
        let current = w
            .logs
            .get(name)
            .map(|tab| tab.columns.clone())
            .unwrap_or_default();
        if let Some(missing) = current
            .iter()
            .find(|c| !columns.iter().any(|n| n.name == c.name && n.ty == c.ty))
        {
            return Err(bad_body(
                API,
                format!(
                    "Column '{}' cannot be removed or retyped; a schema change may only add columns.",
                    missing.name
                ),
            ));
        }
    }
    // Auxiliary tables cannot hold dynamic columns; the service finds out after accepting
    // the request, so the operation fails instead of the request.
    let plan = change.plan.clone();
    if plan.as_deref() == Some("Auxiliary")
        && columns
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c.ty == ColType::Dynamic))
    {
        let error = (
            "InvalidParameter".to_string(),
            format!(
                "Table '{table}': tables on the Auxiliary plan do not support columns of type dynamic."
            ),
        );
        return Ok(start_operation(
            &state,
            &mut t.arm_operations,
            &sub,
            &location,
            &uri,
            Some(error),
        ));
    }
    let name = existing.unwrap_or_else(|| table.clone());
    let settings = settings_after(w, &name, change, now)?;
    if let Some(columns) = columns {
        let mut new_table = Table::new(&name, columns);
        if let Some(old) = w.logs.get(&name) {
            // Existing rows keep their values; new columns are empty for them.
            for row in &old.rows {
                let cells = old
                    .columns
                    .iter()
                    .zip(row.iter())
                    .map(|(c, v)| (c.name.as_str(), v.clone()))
                    .collect();
                new_table.push_named(cells);
            }
        }
        w.logs.insert(new_table);
    }
    w.table_settings.insert(name, settings);
    Ok(start_operation(
        &state,
        &mut t.arm_operations,
        &sub,
        &location,
        &uri,
        None,
    ))
}

async fn delete_table(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path((sub, rg, ws, table)): TablePath,
) -> ApiResult<Response> {
    let mut guard = tenant(&state, &caller)?;
    let t = &mut *guard;
    let w = resolve_workspace(&state, &caller, t, &sub, &rg, &ws)?;
    let Some(name) = stored_name(w, &table) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if !is_custom(&name) {
        return Err(bad_body(
            API,
            format!(
                "Table '{name}' is a Microsoft table and cannot be deleted; only custom (_CL) tables can."
            ),
        ));
    }
    w.logs.tables.remove(&name);
    w.table_settings.remove(&name);
    let location = w.location.clone();
    Ok(start_operation(
        &state,
        &mut t.arm_operations,
        &sub,
        &location,
        &uri,
        None,
    ))
}

async fn get_operation(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, _location, op)): Path<(String, String, String)>,
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
    let id = format!(
        "/subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{}/operationStatuses/{}",
        o.location.replace(' ', "").to_lowercase(),
        o.id
    );
    let status = match (done, &o.error) {
        (false, _) => "InProgress",
        (true, None) => "Succeeded",
        (true, Some(_)) => "Failed",
    };
    let mut v = json!({"id": id, "name": o.id, "status": status, "startTime": fmt_time(o.started)});
    if done {
        let end = o.started
            + time::Duration::try_from(state.options.action_timings.pending)
                .unwrap_or(time::Duration::ZERO);
        v["endTime"] = json!(fmt_time(end));
    }
    // `OperationStatus.error` is common-types v2 `ErrorResponse`: `{"error": ErrorDetail}`.
    if let (true, Some((code, message))) = (done, &o.error) {
        v["error"] = json!({"error": {"code": code, "message": message}});
    }
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_table_names_with_multi_byte_characters_are_not_custom() {
        // The last three bytes of `a€x` start inside `€`; indexing there panicked.
        assert!(!is_custom("a€x"));
        assert!(!is_custom("€_CL€"));
        assert!(is_custom("Events_CL"));
        assert!(is_custom("é_cl"));
        assert!(!is_custom("_CL"));
    }
}
