//! Scheduled hunts: define, schedule, run and read hunts (`hunts` toolset), and their runs as
//! MCP resources (`hunt://<hunt-id>/runs/<run-id>`).

mod definitions;
mod resources;
mod runs;

use schemars::JsonSchema;
use serde::Serialize;

use crate::hunts::run::{AlertOutcome, RunKind, RunStatus, SkippedOccurrences, TenantRun};
use crate::hunts::{HuntError, HuntId, RunId, RunRecord, format_time, resource_uri};
use crate::mcp::{CatalogueBuilder, ToolError, Toolset};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    let builder = definitions::register(builder);
    let builder = runs::register(builder);
    builder.resources(Toolset::Hunts, resources::HuntResources)
}

fn tool_error(error: HuntError) -> ToolError {
    match error {
        HuntError::Invalid(message) => ToolError::InvalidArgument(message),
        HuntError::NotFound(message) => ToolError::NotFound(message),
        HuntError::Conflict(message) => ToolError::Conflict(message),
        HuntError::Storage(error) => ToolError::Storage(error.to_string()),
    }
}

/// A run as tools show it: everything but the query text and the lease, which `hunt_get` and
/// the resource carry.
#[derive(Serialize, JsonSchema)]
struct RunView {
    run_id: RunId,
    kind: RunKind,
    status: RunStatus,
    /// The scheduled time the run is for (absent for manual runs).
    occurrence: Option<String>,
    window_start: Option<String>,
    window_end: Option<String>,
    started_at: String,
    finished_at: Option<String>,
    rows_total: u64,
    row_cap_per_tenant: u64,
    tenants: Vec<TenantRun>,
    error: Option<String>,
    alert: Option<AlertOutcome>,
    skipped: Option<SkippedOccurrences>,
    /// MCP resource with the full record.
    resource: String,
}

impl RunView {
    fn of(record: RunRecord) -> Self {
        Self {
            resource: resource_uri(&record.hunt_id, &record.run_id),
            run_id: record.run_id,
            kind: record.kind,
            status: record.status,
            occurrence: record.occurrence.map(format_time),
            window_start: record.window_start.map(format_time),
            window_end: record.window_end.map(format_time),
            started_at: format_time(record.started_at),
            finished_at: record.finished_at.map(format_time),
            rows_total: record.rows_total,
            row_cap_per_tenant: record.row_cap_per_tenant,
            tenants: record.tenants,
            error: record.error,
            alert: record.alert,
            skipped: record.skipped,
        }
    }

    fn summary(&self) -> String {
        if let Some(skipped) = &self.skipped {
            return format!(
                "run {}: {} missed occurrences skipped",
                self.run_id, skipped.count
            );
        }
        let failed = self.tenants.iter().filter(|t| t.error.is_some()).count();
        let alert = self
            .alert
            .as_ref()
            .map(|a| format!(", alert {:?}", a.state).to_lowercase())
            .unwrap_or_default();
        format!(
            "run {} {:?}: {} rows from {} tenants ({failed} failed){alert}",
            self.run_id,
            self.status,
            self.rows_total,
            self.tenants.len()
        )
    }
}

/// Hunt and run ids a resource URI or cursor names, checked the same way tool arguments are.
fn parse_ids(hunt: &str, run: &str) -> Result<(HuntId, RunId), String> {
    Ok((
        hunt.parse()
            .map_err(|e: crate::hunts::definition::InvalidHuntId| e.to_string())?,
        run.parse()
            .map_err(|e: crate::hunts::run::InvalidRunId| e.to_string())?,
    ))
}

#[cfg(test)]
mod tests {
    use crate::hunts::run::{AlertState, TenantStatus};
    use crate::testing::Harness;

    use super::*;

    /// A manual run of a hunt over every sandbox tenant, as stored.
    async fn manual_run(harness: &Harness) -> RunRecord {
        let hunt = harness
            .paused_hunt(
                "Encoded PowerShell",
                "DeviceProcessEvents | where FileName =~ 'powershell.exe' | project Timestamp, DeviceName",
            )
            .await;
        let hunts = &harness.context.services.hunts;
        hunts.run_now(&hunt.id).await.expect("the run ends")
    }

    #[tokio::test]
    async fn a_run_is_shown_with_its_resource_and_summed_up_in_one_line() {
        let harness = Harness::start().await;
        let record = manual_run(&harness).await;
        let view = RunView::of(record.clone());
        assert_eq!(
            view.resource,
            format!("hunt://{}/runs/{}", record.hunt_id, record.run_id)
        );
        assert_eq!(
            view.occurrence, None,
            "a manual run is for no scheduled time"
        );
        assert!(view.window_start.is_some() && view.finished_at.is_some());
        let tenants = record.tenants.len();
        assert_eq!(
            view.summary(),
            format!(
                "run {} Succeeded: {} rows from {tenants} tenants (0 failed)",
                record.run_id, record.rows_total
            )
        );

        let mut failed = record.clone();
        failed.tenants[0].status = TenantStatus::Failed;
        failed.tenants[0].error = Some("Graph answered 500".into());
        failed.alert = Some(AlertOutcome {
            state: AlertState::Delivered,
            reason: "42 rows in total, threshold 10".into(),
            error: None,
        });
        let line = RunView::of(failed).summary();
        assert!(
            line.ends_with(&format!(
                "from {tenants} tenants (1 failed), alert delivered"
            )),
            "{line}"
        );

        let mut skipped = record;
        skipped.skipped = Some(SkippedOccurrences {
            first: skipped.started_at,
            last: skipped.started_at,
            count: 7,
            reason: "the app was stopped".into(),
        });
        assert_eq!(
            RunView::of(skipped.clone()).summary(),
            format!("run {}: 7 missed occurrences skipped", skipped.run_id)
        );
    }
}
