//! `Microsoft.Insights` resources Sentinel uses: workbooks (api-version 2023-06-01, listed by
//! `category` and `sourceId`, content only with `canFetchContent=true`), data collection rules,
//! data collection endpoints and data collection rule associations (2024-03-11).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::arm::{API, tenant, workspace_id};
use crate::content::{dce_json, dcr_json, workbook_json};
use crate::errors::{ApiError, ApiResult, bad_body};
use crate::resources::{
    Collection, Put, Writable, delete_in_group, get_in_group, list_in_group, list_in_subscription,
    put_in_group, resolve_group,
};
use crate::seed::{TenantData, WorkspaceData};
use crate::state::AppState;
use crate::token::Caller;
use crate::util::{QueryParams, fmt_time, new_guid};

const RG: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Insights";

pub fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route(&format!("{RG}/workbooks"), get(list_in_group::<Workbooks>))
        .route(
            &format!("{RG}/workbooks/{{name}}"),
            get(get_in_group::<Workbooks>)
                .put(put_in_group::<Workbooks>)
                .delete(delete_in_group::<Workbooks>),
        )
        .route(
            "/subscriptions/{sub}/providers/Microsoft.Insights/dataCollectionRules",
            get(list_in_subscription::<Dcrs>),
        )
        .route(
            &format!("{RG}/dataCollectionRules"),
            get(list_in_group::<Dcrs>),
        )
        .route(
            &format!("{RG}/dataCollectionRules/{{name}}"),
            get(get_in_group::<Dcrs>)
                .put(put_in_group::<Dcrs>)
                .delete(delete_in_group::<Dcrs>),
        )
        .route(
            &format!("{RG}/dataCollectionRules/{{name}}/associations"),
            get(dcr_associations),
        )
        .route(
            "/subscriptions/{sub}/providers/Microsoft.Insights/dataCollectionEndpoints",
            get(list_in_subscription::<Dces>),
        )
        .route(
            &format!("{RG}/dataCollectionEndpoints"),
            get(list_in_group::<Dces>),
        )
        .route(
            &format!("{RG}/dataCollectionEndpoints/{{name}}"),
            get(get_in_group::<Dces>)
                .put(put_in_group::<Dces>)
                .delete(delete_in_group::<Dces>),
        )
}

type GroupItemPath = Path<(String, String, String)>;

fn location(body: &Value) -> ApiResult<String> {
    body["location"]
        .as_str()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| bad_body(API, "The 'location' property is required."))
}

pub struct Workbooks;

impl Collection for Workbooks {
    const NOUN: &'static str = "workbook";
    fn items(w: &mut WorkspaceData) -> &mut Vec<Value> {
        &mut w.content.workbooks
    }
    /// Lists need `category` and may narrow by `sourceId`; content comes only with
    /// `canFetchContent=true`.
    fn shown(
        _w: &WorkspaceData,
        mut item: Value,
        query: &QueryParams,
        listing: bool,
    ) -> ApiResult<Option<Value>> {
        if listing {
            // `Workbooks_ListByResourceGroup` declares `category` as required, with the extensible
            // values workbook, TSG, performance and retention; Sentinel files its own under
            // `sentinel`.
            let category = query.get("category").ok_or_else(|| bad_body(API, "The 'category' query parameter is required: workbook, TSG, performance, retention (or sentinel for Microsoft Sentinel's workbooks)."))?;
            if !item["properties"]["category"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case(category))
            {
                return Ok(None);
            }
            if let Some(source) = query.get("sourceId")
                && !item["properties"]["sourceId"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(source))
            {
                return Ok(None);
            }
        }
        if !query
            .get("canFetchContent")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            item["properties"]["serializedData"] = Value::Null;
        }
        Ok(Some(item))
    }
}

impl Writable for Workbooks {
    fn build(put: &Put<'_>) -> ApiResult<Value> {
        if uuid::Uuid::try_parse(put.name).is_err() {
            return Err(bad_body(
                API,
                format!(
                    "The workbook resource name '{}' is invalid: it must be a GUID.",
                    put.name
                ),
            ));
        }
        let location = location(put.body)?;
        let kind = put.body["kind"].as_str().unwrap_or("shared");
        if kind != "shared" {
            return Err(bad_body(
                API,
                format!("Workbook kind '{kind}' is not supported: use 'shared'."),
            ));
        }
        let mut p = put.properties()?;
        for key in ["displayName", "category", "serializedData"] {
            if p.get(key)
                .and_then(Value::as_str)
                .is_none_or(|v| v.trim().is_empty())
            {
                return Err(bad_body(API, format!("properties.{key} is required.")));
            }
        }
        let data = p["serializedData"].as_str().unwrap_or_default().to_string();
        if !serde_json::from_str::<Value>(&data).is_ok_and(|v| v.is_object()) {
            return Err(bad_body(
                API,
                "properties.serializedData must be a JSON object serialized as a string.",
            ));
        }
        p.insert(
            "timeModified".into(),
            json!(fmt_time(OffsetDateTime::now_utc())),
        );
        // `WorkbookProperties.version` is writable: "Workbook schema version format, like
        // 'Notebook/1.0', which should match the workbook in serializedData". A sent value is
        // kept; otherwise it is read from the serialized workbook.
        if !p.get("version").is_some_and(Value::is_string)
            && let Some(version) = serde_json::from_str::<Value>(&data)
                .ok()
                .and_then(|d| d["version"].as_str().map(str::to_string))
        {
            p.insert("version".into(), json!(version));
        }
        p.insert(
            "userId".into(),
            put.kept("userId", json!(put.caller.app_id)),
        );
        p.insert("revision".into(), json!(new_guid().replace('-', "")));
        // `WorkbookProperties.tags` is an array of strings and not `x-nullable`.
        match p.get("tags") {
            None => {
                p.insert("tags".into(), json!([]));
            }
            Some(Value::Array(tags)) if tags.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(bad_body(
                    API,
                    "properties.tags must be an array of strings.",
                ));
            }
        }
        p.entry("storageUri").or_insert(Value::Null);
        let etag = format!("W/\"{}\"", &new_guid().replace('-', "")[..16]);
        Ok(workbook_json(
            put.parent,
            put.name,
            &location,
            &etag,
            Value::Object(p),
        ))
    }
}

pub struct Dcrs;

impl Collection for Dcrs {
    const NOUN: &'static str = "data collection rule";
    fn items(w: &mut WorkspaceData) -> &mut Vec<Value> {
        &mut w.content.dcrs
    }
}

pub struct Dces;

impl Collection for Dces {
    const NOUN: &'static str = "data collection endpoint";
    fn items(w: &mut WorkspaceData) -> &mut Vec<Value> {
        &mut w.content.dces
    }
}

fn find_workspace<'a>(t: &'a TenantData, resource_id: &str) -> Option<&'a WorkspaceData> {
    t.workspaces
        .iter()
        .find(|w| workspace_id(w).eq_ignore_ascii_case(resource_id))
}

/// What the data collection service checks when a rule is written: declared streams, named
/// destinations, existing output tables, a transformation that parses, an existing endpoint.
fn validate_dcr(t: &TenantData, p: &Map<String, Value>) -> ApiResult<()> {
    let invalid = |m: String| ApiError::new(API, StatusCode::BAD_REQUEST, "InvalidPayload", m);
    let declared: Vec<String> = p
        .get("streamDeclarations")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for (stream, declaration) in p
        .get("streamDeclarations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if !stream.starts_with("Custom-") {
            return Err(invalid(format!(
                "Stream declaration '{stream}' must start with 'Custom-'."
            )));
        }
        if declaration["columns"]
            .as_array()
            .is_none_or(|c| c.is_empty())
        {
            return Err(invalid(format!(
                "Stream declaration '{stream}' must list its columns."
            )));
        }
    }
    // `DestinationsSpec` has many destination kinds (Log Analytics, Azure Monitor metrics,
    // event hubs, storage, Fabric, Data Explorer, ...) and requires none; only Log Analytics
    // destinations refer to something the sandbox holds.
    let destinations: Vec<(String, String)> = p
        .get("destinations")
        .and_then(|d| d["logAnalytics"].as_array())
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or_default().to_string(),
                d["workspaceResourceId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let all_names: Vec<String> = p
        .get("destinations")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|d| d.values())
        .flat_map(|kind| match kind {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            // `azureMonitorMetrics` is a single destination, not a list.
            other => vec![other],
        })
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect();
    for (name, ws) in &destinations {
        if find_workspace(t, ws).is_none() {
            return Err(invalid(format!(
                "Destination '{name}': workspace '{ws}' was not found or is not accessible."
            )));
        }
    }
    let flows = p
        .get("dataFlows")
        .and_then(Value::as_array)
        .filter(|f| !f.is_empty())
        .ok_or_else(|| invalid("properties.dataFlows must list at least one data flow.".into()))?;
    for flow in flows {
        let streams: Vec<&str> = flow["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if streams.is_empty() {
            return Err(invalid(
                "Every data flow must name its input streams.".into(),
            ));
        }
        if let Some(undeclared) = streams
            .iter()
            .find(|s| s.starts_with("Custom-") && !declared.iter().any(|d| d == *s))
        {
            return Err(invalid(format!(
                "Data flow stream '{undeclared}' is not declared in streamDeclarations."
            )));
        }
        let targets: Vec<&str> = flow["destinations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if targets.is_empty() {
            return Err(invalid(
                "Every data flow must name its destinations.".into(),
            ));
        }
        if let Some(unknown) = targets.iter().find(|d| !all_names.iter().any(|n| n == *d)) {
            return Err(invalid(format!(
                "Data flow destination '{unknown}' is not one of the rule's destinations."
            )));
        }
        // `DataFlow.outputStream`: "Only required if the transform changes data to a different
        // stream", which the sandbox cannot tell, so it is never required.
        let output = flow["outputStream"].as_str();
        if let Some(output) = output {
            let table = output
                .strip_prefix("Custom-")
                .or_else(|| output.strip_prefix("Microsoft-"))
                .ok_or_else(|| {
                    invalid(format!(
                        "outputStream '{output}' must start with Custom- or Microsoft-."
                    ))
                })?;
            for target in &targets {
                let ws = destinations
                    .iter()
                    .find(|(n, _)| n == target)
                    .and_then(|(_, id)| find_workspace(t, id));
                if ws.is_some_and(|w| !w.logs.tables.keys().any(|k| k.eq_ignore_ascii_case(table)))
                {
                    return Err(ApiError::new(
                        API,
                        StatusCode::BAD_REQUEST,
                        "InvalidOutputTable",
                        format!(
                            "Table for output stream '{output}' is not available for destination '{target}'."
                        ),
                    ));
                }
            }
        }
        if let Some(transform) = flow["transformKql"].as_str()
            && transform.trim() != "source"
        {
            if !transform.trim_start().starts_with("source") {
                return Err(invalid(format!(
                    "transformKql must start with 'source': '{transform}'."
                )));
            }
            crate::kql::check_syntax(transform)
                .map_err(|e| invalid(format!("transformKql is not valid KQL: {e}")))?;
        }
    }
    if let Some(dce) = p.get("dataCollectionEndpointId").and_then(Value::as_str)
        && !t.workspaces.iter().any(|w| {
            w.content.dces.iter().any(|d| {
                d["id"]
                    .as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(dce))
            })
        })
    {
        return Err(invalid(format!(
            "Data collection endpoint '{dce}' was not found."
        )));
    }
    Ok(())
}

impl Writable for Dcrs {
    fn check(t: &TenantData, body: &Value) -> ApiResult<()> {
        validate_dcr(
            t,
            &body["properties"].as_object().cloned().unwrap_or_default(),
        )
    }

    fn build(put: &Put<'_>) -> ApiResult<Value> {
        let location = location(put.body)?;
        let mut p = put.properties()?;
        // `KnownDataCollectionRuleResourceKind` documents Linux and Windows with
        // `modelAsString: true`: any kind is accepted (the Logs Ingestion API's `Direct` among them).
        let kind = put.body["kind"].as_str();
        // The immutable id survives updates; it is how clients address the rule for ingestion.
        let immutable = put.kept(
            "immutableId",
            json!(format!("dcr-{}", new_guid().replace('-', ""))),
        );
        let immutable = immutable.as_str().unwrap_or_default().to_string();
        if kind == Some("Direct") {
            let host = format!("{}-{}", put.name, immutable.get(4..10).unwrap_or_default());
            let region = location.replace(' ', "").to_lowercase();
            p.insert("endpoints".into(), json!({"logsIngestion": format!("https://{host}.{region}-1.ingest.monitor.azure.com"), "metricsIngestion": format!("https://{host}.{region}-1.metrics.ingest.monitor.azure.com")}));
        }
        p.insert("immutableId".into(), json!(immutable));
        p.insert("provisioningState".into(), json!("Succeeded"));
        let id = format!(
            "{}/providers/Microsoft.Insights/dataCollectionRules/{}",
            put.parent, put.name
        );
        Ok(dcr_json(
            &id,
            put.name,
            &location,
            kind,
            &format!("\"{}\"", new_guid()),
            Value::Object(p),
        ))
    }
}

impl Writable for Dces {
    fn build(put: &Put<'_>) -> ApiResult<Value> {
        let location = location(put.body)?;
        let access = put.body["properties"]["networkAcls"]["publicNetworkAccess"]
            .as_str()
            .unwrap_or("Enabled");
        if !["Enabled", "Disabled", "SecuredByPerimeter"].contains(&access) {
            return Err(bad_body(
                API,
                format!(
                    "publicNetworkAccess '{access}' is invalid: expected Enabled, Disabled or SecuredByPerimeter."
                ),
            ));
        }
        let immutable = put
            .kept("immutableId", Value::Null)
            .as_str()
            .and_then(|i| i.strip_prefix("dce-"))
            .map(str::to_string)
            .unwrap_or_else(|| new_guid().replace('-', ""));
        let suffix = immutable.get(..6).unwrap_or_default().to_string();
        let id = format!(
            "{}/providers/Microsoft.Insights/dataCollectionEndpoints/{}",
            put.parent, put.name
        );
        let description = put.body["properties"]["description"].as_str();
        Ok(dce_json(
            &id,
            put.name,
            &location,
            &format!("\"{}\"", new_guid()),
            &immutable,
            &suffix,
            access,
            description,
        ))
    }
}

/// `GET {dcr}/associations`: every association that points at the rule.
async fn dcr_associations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sub, rg, name)): GroupItemPath,
) -> ApiResult<Json<Value>> {
    let mut t = tenant(&state, &caller)?;
    let w = resolve_group(&state, &caller, &mut t, &sub, &rg)?;
    let dcr_id = w
        .content
        .dcrs
        .iter()
        .find(|d| {
            d["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&name))
        })
        .and_then(|d| d["id"].as_str().map(str::to_string))
        .ok_or_else(|| {
            ApiError::new(
                API,
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The data collection rule '{name}' was not found."),
            )
        })?;
    let value: Vec<Value> = t
        .workspaces
        .iter()
        .flat_map(|w| w.content.dcr_associations.iter())
        .filter(|a| {
            a["properties"]["dataCollectionRuleId"]
                .as_str()
                .is_some_and(|d| d.eq_ignore_ascii_case(&dcr_id))
        })
        .cloned()
        .collect();
    Ok(Json(json!({"value": value})))
}
