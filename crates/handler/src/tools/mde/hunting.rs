//! Advanced hunting through Graph `runHuntingQuery`, in one tenant or fanned out to several,
//! with per-tenant results capped in rows and size (and saying so when cut).

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common;
use crate::clients::graph::HuntingColumn;
use crate::kql_guard;
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::args::{Limit, MaxRows, Timespan, Window};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(RunHuntingQuery)
}

const MAX_TENANTS: usize = 20;
/// The most result JSON one call returns, shared evenly among the tenants queried.
const MAX_RESULT_BYTES: usize = 512 * 1024;
/// Advanced hunting keeps 30 days of data.
const MAX_TIMESPAN_DAYS: i64 = 30;

struct RunHuntingQuery;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HuntingParams {
    /// One tenant to query (a GUID from tenants_list). Give tenant_id or tenant_ids; optional only when the server
    /// has one default tenant.
    tenant_id: Option<TenantId>,
    /// Several tenants to run the same query in (up to 20), each answered separately.
    tenant_ids: Option<Vec<TenantId>>,
    /// The KQL query over the advanced hunting tables (DeviceProcessEvents, DeviceNetworkEvents, EmailEvents,
    /// IdentityLogonEvents, AlertInfo, ...). Control commands (.drop, .alter, .ingest, ...) are refused.
    query: String,
    /// How far back to look, up to 30 days; absent uses the service default.
    timespan: Option<Window<Timespan>>,
    /// Most rows returned per tenant. The result also stays under 512 KB in all. The default is an answer a
    /// context window can hold: rows of the wide hunting tables run to hundreds of bytes each.
    #[serde(default)]
    max_rows: Limit<10, 10_000, MaxRows>,
}

#[derive(Serialize, JsonSchema)]
struct TenantResult {
    tenant_id: TenantId,
    /// false when the query failed in this tenant (see error).
    ok: bool,
    error: Option<String>,
    columns: Vec<HuntingColumn>,
    rows: Vec<Map<String, Value>>,
    /// Rows the query produced in this tenant.
    total_rows: usize,
    /// Whether rows were left out (see truncation).
    truncated: bool,
    truncation: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct HuntingOutput {
    results: Vec<TenantResult>,
}

impl Summary for HuntingOutput {
    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .results
            .iter()
            .map(|r| match (&r.error, r.truncated) {
                (Some(_), _) => format!("{}: failed", r.tenant_id),
                (None, true) => format!(
                    "{}: {} of {} rows (cut)",
                    r.tenant_id,
                    r.rows.len(),
                    r.total_rows
                ),
                (None, false) => format!("{}: {} rows", r.tenant_id, r.rows.len()),
            })
            .collect();
        format!(
            "hunting query in {} tenant(s): {}",
            self.results.len(),
            parts.join("; ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for RunHuntingQuery {
    type Params = HuntingParams;
    type Output = HuntingOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_run_hunting_query",
            title: "Run an advanced hunting query",
            description: "Runs a read-only advanced hunting KQL query (30 days of data) in one tenant, or in \
                         several (tenant_ids) with a result per tenant; a cut result says so.",
            toolset: Toolset::Hunting,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntingParams,
    ) -> Result<HuntingOutput, ToolError> {
        let query = kql_guard::check_query(&params.query)?;
        let max_rows = params.max_rows.get();
        let timespan = params
            .timespan
            .map(|timespan| timespan.at_most_days(MAX_TIMESPAN_DAYS))
            .transpose()?
            .map(|timespan| timespan.iso8601());
        let tenants = match (params.tenant_id, params.tenant_ids) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid("give tenant_id or tenant_ids, not both"));
            }
            (single, None) => vec![common::tenant(context, single.as_ref())?],
            (None, Some(many)) => {
                let mut seen = HashSet::new();
                let unique: Vec<TenantId> = many
                    .into_iter()
                    .filter(|t| seen.insert(t.clone()))
                    .collect();
                if unique.is_empty() || unique.len() > MAX_TENANTS {
                    return Err(ToolError::invalid(format!(
                        "tenant_ids must hold 1 to {MAX_TENANTS} tenants, got {}",
                        unique.len()
                    )));
                }
                // Every tenant passes the allow-list before any query is sent anywhere.
                unique
                    .iter()
                    .map(|t| common::tenant(context, Some(t)))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let budget = MAX_RESULT_BYTES / tenants.len();
        let graph = &context.services.graph;
        let timespan = timespan.as_deref();
        let runs = tenants.into_iter().map(|tenant| async move {
            let answer = graph.run_hunting_query(&tenant, query, timespan).await;
            match answer {
                Ok(result) => capped(tenant, result.schema, result.results, max_rows, budget),
                Err(error) => TenantResult {
                    tenant_id: tenant,
                    ok: false,
                    error: Some(error.to_string()),
                    columns: Vec::new(),
                    rows: Vec::new(),
                    total_rows: 0,
                    truncated: false,
                    truncation: None,
                },
            }
        });
        Ok(HuntingOutput {
            results: futures::future::join_all(runs).await,
        })
    }
}

/// Keeps rows while they fit both caps, and says which cap cut them.
fn capped(
    tenant: TenantId,
    columns: Vec<HuntingColumn>,
    rows: Vec<Map<String, Value>>,
    max_rows: usize,
    budget: usize,
) -> TenantResult {
    let total_rows = rows.len();
    let mut kept = Vec::new();
    let mut size = 0;
    let mut truncation = None;
    for row in rows {
        if kept.len() == max_rows {
            truncation = Some(format!(
                "cut at max_rows ({max_rows}) of {total_rows} rows; summarize in the query or raise max_rows"
            ));
            break;
        }
        let row_size = serde_json::to_vec(&row)
            .map(|bytes| bytes.len())
            .unwrap_or(0);
        if size + row_size > budget {
            truncation = Some(format!(
                "cut after {} of {total_rows} rows to stay under {} KB for this tenant; project fewer columns or summarize",
                kept.len(),
                budget / 1024
            ));
            break;
        }
        size += row_size;
        kept.push(row);
    }
    TenantResult {
        tenant_id: tenant,
        ok: true,
        error: None,
        columns,
        rows: kept,
        total_rows,
        truncated: truncation.is_some(),
        truncation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(count: usize) -> Vec<Map<String, Value>> {
        (0..count)
            .map(|i| {
                serde_json::json!({"n": i})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    fn tenant() -> TenantId {
        "11111111-1111-4111-8111-111111111111"
            .parse()
            .expect("guid")
    }

    #[test]
    fn rows_are_cut_at_the_row_cap_and_it_is_said() {
        let result = capped(tenant(), Vec::new(), rows(10), 4, usize::MAX);
        assert_eq!(
            (result.rows.len(), result.total_rows, result.truncated),
            (4, 10, true)
        );
        assert!(
            result
                .truncation
                .as_deref()
                .is_some_and(|t| t.contains("max_rows"))
        );
    }

    #[test]
    fn rows_are_cut_at_the_size_cap_and_it_is_said() {
        let result = capped(tenant(), Vec::new(), rows(100), 1000, 50);
        assert!(result.rows.len() < 10 && result.truncated);
        assert!(
            result
                .truncation
                .as_deref()
                .is_some_and(|t| t.contains("KB"))
        );
        let whole = capped(tenant(), Vec::new(), rows(3), 1000, 1000);
        assert!(!whole.truncated && whole.truncation.is_none());
    }
}
