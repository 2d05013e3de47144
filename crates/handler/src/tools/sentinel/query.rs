//! `sentinel_run_query`: a KQL query on a workspace through the Log Analytics query API.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::target;
use crate::clients::log_analytics::Column;
use crate::kql_guard;
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::args::{Limit, MaxRows, Timespan, Window};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(RunQuery)
}

struct RunQuery;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunQueryParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The KQL query, e.g. `SigninLogs | where ResultType != '0' | summarize count() by UserPrincipalName`.
    /// Control commands (.drop, .alter, .set, .ingest ...) are refused.
    query: String,
    /// How far back the query looks, ending now (default 1 day).
    timespan: Option<Window<Timespan>>,
    /// Most rows to return; the output says when more matched.
    #[serde(default)]
    max_rows: Limit<10, 1000, MaxRows>,
}

#[derive(Serialize, JsonSchema)]
struct RunQueryOutput {
    tenant_id: TenantId,
    workspace: String,
    timespan: String,
    columns: Vec<ColumnInfo>,
    /// One object per row, keyed by column name.
    rows: Vec<Map<String, Value>>,
    /// True when the query returned more rows than max_rows, or Log Analytics itself returned
    /// a partial result: narrow it or summarize.
    truncated: bool,
    /// Log Analytics' own statement that the result is partial (a limit was hit or part of the
    /// query failed), although rows came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_error: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ColumnInfo {
    name: String,
    #[serde(rename = "type")]
    column_type: String,
}

impl Summary for RunQueryOutput {
    fn summary(&self) -> String {
        let more = match (&self.partial_error, self.truncated) {
            (Some(error), _) => format!(" (PARTIAL result, Log Analytics says: {error})"),
            (None, true) => {
                " (truncated: more rows matched; raise max_rows or summarize in the query)"
                    .to_string()
            }
            (None, false) => String::new(),
        };
        format!(
            "{} rows, {} columns from {} over {}{more}",
            self.rows.len(),
            self.columns.len(),
            self.workspace,
            self.timespan
        )
    }
}

#[async_trait::async_trait]
impl Tool for RunQuery {
    type Params = RunQueryParams;
    type Output = RunQueryOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_run_query",
            title: "Run a KQL query on a Sentinel workspace",
            description: "Runs a read-only KQL query on a Sentinel (Log Analytics) workspace over a time window \
                         (default 1 day) and returns up to max_rows rows, saying when more matched.",
            toolset: Toolset::SentinelQuery,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: RunQueryParams,
    ) -> Result<RunQueryOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let query = kql_guard::check_query(&params.query)?;
        let timespan = params
            .timespan
            .map_or_else(|| "P1D".to_string(), |timespan| timespan.iso8601());
        let max_rows = params.max_rows.get();
        // One row past the cap tells whether more matched without fetching everything.
        let capped = format!(
            "{}\n| take {}",
            query.trim_end().trim_end_matches(';'),
            max_rows + 1
        );
        let response = context
            .services
            .log_analytics
            .query(
                target.tenant_id(),
                &target.workspace.workspace_id,
                &capped,
                Some(&timespan),
            )
            .await?;
        let partial_error = response.error.as_ref().map(ToString::to_string);
        let table =
            response.tables.into_iter().next().ok_or_else(|| {
                ToolError::Failed("the query API returned no result table".into())
            })?;
        let truncated = table.rows.len() > max_rows || partial_error.is_some();
        let rows = table
            .rows
            .into_iter()
            .take(max_rows)
            .map(|row| {
                table
                    .columns
                    .iter()
                    .map(|c: &Column| c.name.clone())
                    .zip(row)
                    .collect()
            })
            .collect();
        let columns = table
            .columns
            .into_iter()
            .map(|c| ColumnInfo {
                name: c.name,
                column_type: c.column_type,
            })
            .collect();
        Ok(RunQueryOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            timespan,
            columns,
            rows,
            truncated,
            partial_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    const WORKSPACE: &str = "law-contoso-sentinel";

    #[tokio::test]
    async fn a_query_answers_rows_by_column_and_says_when_it_cut_them() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let answer = harness
            .ok(
                &RunQuery,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "timespan": "7d",
                       "query": "SigninLogs | summarize Signins = count() by UserPrincipalName",
                       "max_rows": 2}),
            )
            .await;
        let columns: Vec<&str> = answer["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().expect("name"))
            .collect();
        assert_eq!(columns, ["UserPrincipalName", "Signins"], "{answer}");
        let rows = answer["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 2, "{answer}");
        assert!(
            rows[0]["Signins"].as_i64().is_some_and(|n| n > 0),
            "{answer}"
        );
        assert_eq!(answer["truncated"], true, "more users signed in than two");
    }

    #[tokio::test]
    async fn control_commands_and_parse_errors_are_refused_with_the_reason() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let message = harness
            .refusal(
                &RunQuery,
                json!({"tenant_id": tenant, "workspace": WORKSPACE,
                       "query": "SigninLogs | take 1\n.drop table SigninLogs"}),
            )
            .await;
        assert!(message.contains("control command"), "{message}");
        let message = harness
            .refusal(
                &RunQuery,
                json!({"tenant_id": tenant, "workspace": WORKSPACE,
                       "query": "SigninLogs | where"}),
            )
            .await;
        // Log Analytics' own reason, with the position.
        assert!(
            message.contains("could not be parsed") && message.contains("position"),
            "{message}"
        );
        let message = harness
            .refusal(
                &RunQuery,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "query": "SigninLogs",
                       "timespan": "forever"}),
            )
            .await;
        assert!(message.contains("timespan"), "{message}");
    }
}
