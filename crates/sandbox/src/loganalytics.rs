//! Log Analytics query API (`https://api.loganalytics.io/v1/workspaces/{id}/query`), served
//! under `/loganalytics/v1/...`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::errors::{Api, ApiError, ApiResult, parse_json};
use crate::kql::{self, ExecOptions, QueryError, QueryErrorKind};
use crate::state::AppState;
use crate::token::Caller;
use crate::util::{QueryParams, parse_timespan_window};

const API: Api = Api::LogAnalytics;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/workspaces/{workspace}/query",
            post(query_post).get(query_get),
        )
        .route_layer(from_fn_with_state(
            state,
            crate::token::require_loganalytics,
        ))
}

#[derive(Deserialize)]
struct QueryBody {
    query: Option<String>,
    timespan: Option<String>,
}

/// The error body the service returns for a query it cannot run.
pub fn query_error(api: Api, e: &QueryError) -> ApiError {
    let (code, summary, inner_code) = match e.kind {
        QueryErrorKind::Syntax => (
            "SyntaxError",
            "A recognition error occurred in the query.",
            "SYN0002",
        ),
        QueryErrorKind::Semantic => ("SemanticError", "A semantic error occurred.", "SEM0100"),
    };
    let message = format!("{} (line {}, position {})", e.message, e.line, e.pos);
    match api {
        Api::LogAnalytics => ApiError::new(
            api,
            StatusCode::BAD_REQUEST,
            "BadArgumentError",
            "The request had some invalid properties",
        )
        .with_inner(json!({
            "code": code,
            "message": format!("{summary} {message}"),
            "innererror": {
                "code": inner_code,
                "message": message,
                "line": e.line,
                "pos": e.pos,
                "token": e.token,
            }
        })),
        _ => ApiError::new(
            api,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("{summary} {message}"),
        ),
    }
}

async fn query_post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(workspace): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body: QueryBody = parse_json(API, &body)?;
    run(&state, &caller, &workspace, body.query, body.timespan)
}

async fn query_get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(workspace): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = QueryParams::parse(raw.as_deref());
    run(
        &state,
        &caller,
        &workspace,
        q.get("query").map(str::to_string),
        q.get("timespan").map(str::to_string),
    )
}

fn run(
    state: &AppState,
    caller: &Caller,
    workspace: &str,
    query: Option<String>,
    timespan: Option<String>,
) -> ApiResult<Json<Value>> {
    let not_found = || {
        ApiError::new(
            API,
            StatusCode::NOT_FOUND,
            "WorkspaceNotFoundError",
            format!("Workspace '{workspace}' could not be found or you do not have access to it."),
        )
    };
    let t = state.tenant(&caller.tenant_id).ok_or_else(not_found)?;
    let ws = t
        .workspaces
        .iter()
        .find(|w| w.public.customer_id.eq_ignore_ascii_case(workspace))
        .ok_or_else(not_found)?;
    let Some(query) = query.filter(|q| !q.trim().is_empty()) else {
        return Err(ApiError::new(
            API,
            StatusCode::BAD_REQUEST,
            "BadArgumentError",
            "The request had some invalid properties",
        )
        .with_inner(
            json!({"code": "QueryValidationError", "message": "The 'query' property is required."}),
        ));
    };
    let now = OffsetDateTime::now_utc();
    let mut opts = ExecOptions::at(now);
    // One row past the limit tells a truncated result from one that fits exactly.
    opts.max_rows = MAX_ROWS + 1;
    if let Some(ts) = timespan.as_deref().filter(|s| !s.is_empty()) {
        opts.window = Some(parse_timespan_window(ts, now).ok_or_else(|| {
            ApiError::new(API, StatusCode::BAD_REQUEST, "BadArgumentError", "The request had some invalid properties").with_inner(json!({
                "code": "InvalidTimespan",
                "message": format!("The timespan '{ts}' is not a valid ISO 8601 duration or interval (e.g. PT24H, P7D, 2024-05-01T00:00:00Z/2024-05-02T00:00:00Z)."),
            }))
        })?);
    }
    let mut table = kql::execute(&ws.logs, &query, &opts).map_err(|e| query_error(API, &e))?;
    let truncated = table.rows.len() > MAX_ROWS;
    table.rows.truncate(MAX_ROWS);
    let mut answer = json!({
        "tables": [{
            "name": "PrimaryResult",
            "columns": table.columns.iter().map(|c| json!({"name": c.name, "type": c.ty.la_name()})).collect::<Vec<_>>(),
            "rows": table.rows.iter().map(|r| r.iter().map(kql::Value::to_la_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
        }]
    });
    // A result cut at the service's record limit is still a 200, with `queryResults.error`
    // beside the tables saying so (`Query_Execute` 200 schema, 2022-10-27).
    if truncated {
        answer["error"] = json!({
            "code": "PartialError",
            "message": "There were some errors when processing your query.",
            "innererror": {
                "code": "ResultSetTooLarge",
                "message": format!("Query result set has exceeded the internal record count limit {MAX_ROWS}: only the first {MAX_ROWS} records are returned."),
            },
        });
    }
    Ok(Json(answer))
}

/// The record count limit of a query result (Azure Monitor Logs' documented 500,000 rows).
const MAX_ROWS: usize = 500_000;
