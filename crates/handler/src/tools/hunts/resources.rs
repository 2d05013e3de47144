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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::hunts::{HuntId, RunId};
    use crate::testing::Harness;

    const QUERY: &str = "DeviceProcessEvents | where FileName =~ 'powershell.exe' | project Timestamp, DeviceName, ProcessCommandLine";

    async fn run(harness: &Harness, hunt: &HuntId) -> RunId {
        harness
            .context
            .services
            .hunts
            .run_now(hunt)
            .await
            .expect("the run ends")
            .run_id
    }

    /// The one text content of a read, as JSON, after checking its URI and type.
    async fn read(harness: &Harness, uri: &str) -> Result<Value, ResourceError> {
        let result = HuntResources.read(&harness.context, uri).await?;
        let contents = serde_json::to_value(&result.contents).expect("serializes");
        assert_eq!(contents.as_array().map(Vec::len), Some(1), "{contents}");
        assert_eq!(contents[0]["uri"], uri);
        assert_eq!(contents[0]["mimeType"], MIME);
        Ok(serde_json::from_str(contents[0]["text"].as_str().expect("text")).expect("JSON"))
    }

    #[tokio::test]
    async fn every_run_is_listed_under_its_hunts_name_and_reads_as_its_record() {
        let harness = Harness::start().await;
        let powershell = harness.paused_hunt("Encoded PowerShell", QUERY).await.id;
        harness.paused_hunt("Never run", QUERY).await;
        let runs = [
            run(&harness, &powershell).await,
            run(&harness, &powershell).await,
        ];

        let listed = HuntResources.list(&harness.context).await.expect("listed");
        let listed = serde_json::to_value(&listed).expect("serializes");
        let mut uris: Vec<&str> = listed
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r["uri"].as_str().expect("uri"))
            .collect();
        uris.sort();
        let mut expected: Vec<String> = runs.iter().map(|r| resource_uri(&powershell, r)).collect();
        expected.sort();
        assert_eq!(uris, expected, "the hunt never run has none: {listed}");
        for resource in listed.as_array().expect("resources") {
            let name = resource["name"].as_str().expect("name");
            assert!(name.starts_with("Encoded PowerShell · "), "{resource}");
            assert_eq!(
                resource["description"]
                    .as_str()
                    .map(|d| d.contains("manual run")),
                Some(true),
                "{resource}"
            );
        }

        let record = read(&harness, &resource_uri(&powershell, &runs[0]))
            .await
            .expect("readable");
        assert_eq!(record["run_id"], json!(runs[0]), "{record}");
        assert_eq!(record["hunt_id"], json!(powershell));
        assert_eq!(record["query"], QUERY, "the record carries the query");
    }

    #[tokio::test]
    async fn a_tenants_results_come_with_the_run_window_and_their_counts() {
        let harness = Harness::start().await;
        let hunt_id = harness.paused_hunt("Encoded PowerShell", QUERY).await.id;
        let run_id = run(&harness, &hunt_id).await;
        let tenant = harness.contoso();
        let record = read(&harness, &resource_uri(&hunt_id, &run_id))
            .await
            .expect("the record");
        let entry = record["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .find(|t| t["tenant_id"] == json!(tenant))
            .expect("searched")
            .clone();

        let results = read(
            &harness,
            &format!("{}/results/{tenant}", resource_uri(&hunt_id, &run_id)),
        )
        .await
        .expect("the results");
        assert_eq!(results["tenant_id"], json!(tenant));
        // The record keeps fractions of a second; the results give whole seconds.
        for bound in ["window_start", "window_end"] {
            let second = |v: &Value| v[bound].as_str().map(|t| t[..19].to_owned());
            assert_eq!(second(&results), second(&record), "{bound}");
        }
        assert_eq!(results["rows_found"], entry["rows"]);
        assert_eq!(results["stored_rows"], entry["stored_rows"]);
        let rows = results["rows"].as_array().expect("rows");
        assert_eq!(results["rows_in_this_resource"], json!(rows.len()));
        assert!(
            !rows.is_empty() && rows.len() <= RESULT_CHUNK_ROWS,
            "{results}"
        );
        assert!(
            rows.iter().all(|r| r.get("DeviceName").is_some()),
            "the hunt's columns: {results}"
        );
        assert!(
            results["schema"]
                .as_array()
                .expect("schema")
                .iter()
                .any(|c| c["name"] == "ProcessCommandLine"),
            "{results}"
        );

        let unsearched = "33333333-3333-4333-8333-333333333333";
        let message = read(
            &harness,
            &format!("{}/results/{unsearched}", resource_uri(&hunt_id, &run_id)),
        )
        .await
        .expect_err("not searched");
        assert!(
            matches!(&message, ResourceError::NotFound(m) if m.contains(&format!("did not search tenant {unsearched}"))),
            "{message}"
        );
    }

    #[tokio::test]
    async fn uris_that_name_no_hunt_run_are_refused_for_what_they_are() {
        let harness = Harness::start().await;
        let hunt_id = harness.paused_hunt("Encoded PowerShell", QUERY).await.id;
        let run_id = run(&harness, &hunt_id).await;
        let base = resource_uri(&hunt_id, &run_id);
        for uri in [
            "file:///etc/passwd".to_owned(),
            format!("hunt://{hunt_id}/runs"),
            format!("hunt://{hunt_id}/results/{run_id}"),
            format!("{base}/results"),
            format!("{base}/rows/{}", harness.contoso()),
        ] {
            let error = read(&harness, &uri).await.expect_err("refused");
            assert!(
                matches!(&error, ResourceError::Invalid(m) if m.contains("expected hunt://<hunt_id>/runs/<run_id>")),
                "{uri}: {error}"
            );
        }
        for (uri, expected) in [
            (format!("{base}/results/contoso"), "not a tenant id"),
            (
                format!("hunt://contoso-hunt/runs/{run_id}"),
                "not a hunt id",
            ),
            (format!("hunt://{hunt_id}/runs/yesterday"), "yesterday"),
        ] {
            let error = read(&harness, &uri).await.expect_err("refused");
            assert!(
                matches!(&error, ResourceError::Invalid(m) if m.contains(expected)),
                "{uri}: {error}"
            );
        }
        let other = harness.paused_hunt("Other", QUERY).await.id;
        let error = read(&harness, &resource_uri(&other, &run_id))
            .await
            .expect_err("another hunt's run");
        assert!(
            matches!(&error, ResourceError::NotFound(m) if m.contains(&format!("hunt {other} has no run {run_id}"))),
            "{error}"
        );
    }
}
