//! Hunt runs as MCP resources: `hunt://<hunt-id>/runs/<run-id>` (the run record) and
//! `hunt://<hunt-id>/runs/<run-id>/results/<tenant-id>` (the first rows of one tenant).

use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::json;

use super::parse_ids;
use crate::hunts::store::RESULT_CHUNK_ROWS;
use crate::hunts::{format_time, resource_uri};
use crate::mcp::{ResourceError, ResourceProvider, ToolContext};
use crate::storage::StorageError;
use crate::tenants::TenantId;

pub struct HuntResources;

const MIME: &str = "application/json";

fn unavailable(error: StorageError) -> ResourceError {
    ResourceError::Unavailable(format!("hunt storage: {error}"))
}

#[async_trait::async_trait]
impl ResourceProvider for HuntResources {
    fn scheme(&self) -> &'static str {
        "hunt"
    }

    fn templates(&self) -> Vec<ResourceTemplate> {
        vec![
            ResourceTemplate::new("hunt://{hunt_id}/runs/{run_id}", "hunt-run")
                .with_title("Hunt run")
                .with_description("One run of a scheduled hunt: window searched, rows and status per tenant, alert delivery.")
                .with_mime_type(MIME),
            ResourceTemplate::new("hunt://{hunt_id}/runs/{run_id}/results/{tenant_id}", "hunt-run-results")
                .with_title("Hunt run results for one tenant")
                .with_description(format!("The first {RESULT_CHUNK_ROWS} rows one tenant returned in a run; hunt_get_results pages through all of them."))
                .with_mime_type(MIME),
        ]
    }

    /// The newest runs of every hunt (up to 20 each).
    async fn list(&self, context: &ToolContext) -> Result<Vec<Resource>, ResourceError> {
        let store = context.services.hunts.store();
        let hunts = store.list_definitions().await.map_err(unavailable)?;
        let states = futures::future::try_join_all(hunts.iter().map(|hunt| store.state(&hunt.id)))
            .await
            .map_err(unavailable)?;
        Ok(hunts
            .iter()
            .zip(states)
            .flat_map(|(hunt, state)| {
                state.recent_runs.into_iter().map(move |run| {
                    Resource::new(
                        resource_uri(&hunt.id, &run.run_id),
                        format!("{} · {}", hunt.name, run.run_id),
                    )
                    .with_description(
                        format!(
                            "{:?} {:?} run, {} rows",
                            run.status, run.kind, run.rows_total
                        )
                        .to_lowercase(),
                    )
                    .with_mime_type(MIME)
                })
            })
            .collect())
    }

    async fn read(
        &self,
        context: &ToolContext,
        uri: &str,
    ) -> Result<ReadResourceResult, ResourceError> {
        let invalid = || {
            ResourceError::Invalid(format!(
                "'{uri}' is not a hunt resource: expected hunt://<hunt_id>/runs/<run_id> or hunt://<hunt_id>/runs/<run_id>/results/<tenant_id>"
            ))
        };
        let path = uri.strip_prefix("hunt://").ok_or_else(invalid)?;
        let parts: Vec<&str> = path.split('/').collect();
        let (hunt_text, run_text, tenant) = match parts.as_slice() {
            [hunt, "runs", run] => (*hunt, *run, None),
            [hunt, "runs", run, "results", tenant] => (
                *hunt,
                *run,
                Some(
                    tenant
                        .parse::<TenantId>()
                        .map_err(|e| ResourceError::Invalid(e.to_string()))?,
                ),
            ),
            _ => return Err(invalid()),
        };
        let (hunt, run) = parse_ids(hunt_text, run_text).map_err(ResourceError::Invalid)?;
        let store = context.services.hunts.store();
        let (record, _) = store
            .get_run(&hunt, &run)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                ResourceError::NotFound(format!(
                    "hunt {hunt} has no run {run} (deleted by retention, or never existed)"
                ))
            })?;
        let body = match tenant {
            None => serde_json::to_value(&record)
                .map_err(|e| ResourceError::Unavailable(e.to_string()))?,
            Some(tenant) => {
                let entry = record
                    .tenants
                    .iter()
                    .find(|t| t.tenant_id == tenant)
                    .ok_or_else(|| {
                        ResourceError::NotFound(format!("run {run} did not search tenant {tenant}"))
                    })?;
                let page = store
                    .read_results(&hunt, &run, &tenant, 0, RESULT_CHUNK_ROWS)
                    .await
                    .map_err(unavailable)?
                    .ok_or_else(|| {
                        ResourceError::NotFound(format!(
                            "tenant {tenant} has no stored results in run {run} (status {:?})",
                            entry.status
                        ))
                    })?;
                json!({
                    "hunt_id": hunt, "run_id": run, "tenant_id": tenant,
                    "window_start": record.window_start.map(format_time), "window_end": record.window_end.map(format_time),
                    "rows_found": entry.rows, "stored_rows": entry.stored_rows, "truncated": entry.truncated,
                    "rows_in_this_resource": page.rows.len(),
                    "schema": page.schema, "rows": page.rows,
                })
            }
        };
        let text = serde_json::to_string_pretty(&body)
            .map_err(|e| ResourceError::Unavailable(e.to_string()))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type(MIME),
        ]))
    }
}
