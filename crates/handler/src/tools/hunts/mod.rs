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
