//! `hunt_run_now`, `hunt_list_runs`, `hunt_get_results`.

use std::sync::{Arc, Weak};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{RunView, tool_error};
use crate::clients::graph::HuntingColumn;
use crate::hunts::run::{RunStatus, TenantRun, TenantStatus};
use crate::hunts::{HuntId, RunId, RunRecord};
use crate::jobs::operation::{TargetRecord, TargetState};
use crate::jobs::{JobKind, JobRecord, JobState};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::operations::TargetAction;
use crate::services::Services;
use crate::tenants::TenantId;
use crate::tools::args::Limit;
use crate::tools::cursor;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(HuntRunNow)
        .tool(HuntListRuns)
        .tool(HuntGetResults)
}

struct HuntRunNow;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HuntRunNowParams {
    /// Hunt id from hunt_list or hunt_create. Disabled hunts can be run too.
    hunt_id: HuntId,
}

#[derive(Serialize, JsonSchema)]
struct HuntRunNowOutput {
    hunt_id: HuntId,
    run: RunView,
    /// When tenants are still pending: the operation following the run until every tenant is
    /// searched (job_get shows each tenant; the timer does the searching).
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_state: Option<JobState>,
    /// What to do next.
    note: String,
}

impl Summary for HuntRunNowOutput {
    fn summary(&self) -> String {
        self.run.summary()
    }
}

#[async_trait::async_trait]
impl Tool for HuntRunNow {
    type Params = HuntRunNowParams;
    type Output = HuntRunNowOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hunt_run_now",
            title: "Run a hunt now",
            description: "Runs a hunt now over the lookback window ending now and waits up to a minute; tenants \
                         still pending are searched by the timer, and an operation follows them (job_get).",
            toolset: Toolset::Hunts,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    /// A run still pending when the call answers is followed by an operation.
    fn target_action(&self, services: &Arc<Services>) -> Option<Arc<dyn TargetAction>> {
        Some(Arc::new(RunFollower {
            services: Arc::downgrade(services),
        }))
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntRunNowParams,
    ) -> Result<HuntRunNowOutput, ToolError> {
        let record = context
            .services
            .hunts
            .run_now(&params.hunt_id)
            .await
            .map_err(tool_error)?;
        let mut output = HuntRunNowOutput {
            hunt_id: params.hunt_id,
            operation_id: None,
            operation_state: None,
            note: format!(
                "read the rows with hunt_get_results (hunt_id {}, run_id {})",
                record.hunt_id, record.run_id
            ),
            run: RunView::of(record.clone()),
        };
        if record.status == RunStatus::Running {
            let followed = follow_run(context, self.spec().name, &record).await?;
            output.note = format!(
                "some tenants are still pending; the timer continues this run and operation {} follows it to its \
                 end (job_get); then read the rows with hunt_get_results (hunt_id {}, run_id {})",
                followed.job_id, record.hunt_id, record.run_id
            );
            output.operation_id = Some(followed.job_id.to_string());
            output.operation_state = Some(followed.state);
        }
        Ok(output)
    }
}

/// Records an operation following `run`, one target per tenant, for job_get and tasks.
async fn follow_run(
    context: &ToolContext,
    function: &str,
    run: &RunRecord,
) -> Result<JobRecord, ToolError> {
    let Some(first) = run.tenants.first() else {
        return Err(ToolError::Failed(format!(
            "run {} has no tenant to follow",
            run.run_id
        )));
    };
    let targets = run
        .tenants
        .iter()
        .map(|tenant| {
            tenant_target(
                TargetRecord::new(tenant.tenant_id.to_string(), None),
                tenant,
            )
        })
        .collect();
    let mut options = Map::new();
    options.insert("hunt_id".into(), json!(run.hunt_id));
    options.insert("run_id".into(), json!(run.run_id));
    context
        .services
        .operations
        .follow(
            JobKind::HuntRun,
            function,
            // The run's first tenant stands for the record; its targets name every tenant.
            first.tenant_id.clone(),
            &context.caller.to_string(),
            options,
            targets,
        )
        .await
        .map_err(|error| ToolError::Storage(error.to_string()))
}

/// A tenant's search as an operation target: pending is `running` (the timer searches it).
fn tenant_target(mut target: TargetRecord, tenant: &TenantRun) -> TargetRecord {
    match tenant.status {
        TenantStatus::Pending => target.state = TargetState::Running,
        TenantStatus::Succeeded => {
            target.state = TargetState::Done;
            target.detail = tenant.rows.map(|rows| format!("{rows} rows"));
        }
        TenantStatus::Failed => {
            target.state = TargetState::Failed;
            target.detail = tenant.error.clone();
        }
    }
    target.status = Some(tenant_status_name(tenant.status).to_owned());
    target
}

fn tenant_status_name(status: TenantStatus) -> &'static str {
    match status {
        TenantStatus::Pending => "pending",
        TenantStatus::Succeeded => "succeeded",
        TenantStatus::Failed => "failed",
    }
}

/// Follows a hunt run's record for whichever worker runs the operation; the timer does the
/// searching, so nothing is ever sent.
struct RunFollower {
    /// Weak: the services hold the operations, which hold this.
    services: Weak<Services>,
}

#[async_trait::async_trait]
impl TargetAction for RunFollower {
    async fn follow(
        &self,
        _tenant: &TenantId,
        options: &Map<String, Value>,
        targets: Vec<TargetRecord>,
    ) -> Vec<TargetRecord> {
        let Some(services) = self.services.upgrade() else {
            return targets;
        };
        let ids = options
            .get("hunt_id")
            .cloned()
            .map(serde_json::from_value::<HuntId>);
        let run = options
            .get("run_id")
            .cloned()
            .map(serde_json::from_value::<RunId>);
        let (Some(Ok(hunt)), Some(Ok(run))) = (ids, run) else {
            return fail_all(targets, "the operation does not name its hunt run".into());
        };
        let record = match services.hunts.store().get_run(&hunt, &run).await {
            Ok(Some((record, _))) => record,
            Ok(None) => {
                return fail_all(
                    targets,
                    format!("run {run} of hunt {hunt} is gone (deleted, or removed by retention)"),
                );
            }
            Err(error) => {
                tracing::warn!(hunt = %hunt, run = %run, "could not read the hunt run: {error}");
                return targets;
            }
        };
        targets
            .into_iter()
            .map(|target| {
                match record
                    .tenants
                    .iter()
                    .find(|tenant| tenant.tenant_id.to_string() == target.id)
                {
                    Some(tenant) => tenant_target(target, tenant),
                    None => target,
                }
            })
            .collect()
    }
}

fn fail_all(targets: Vec<TargetRecord>, why: String) -> Vec<TargetRecord> {
    targets
        .into_iter()
        .map(|target| TargetRecord {
            state: TargetState::Failed,
            detail: Some(why.clone()),
            ..target
        })
        .collect()
}

struct HuntListRuns;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HuntListRunsParams {
    /// Hunt id from hunt_list or hunt_create.
    hunt_id: HuntId,
    /// Most runs to return in this call, newest first. Older ones are reached with `cursor`.
    #[serde(default)]
    limit: Limit<20, 100>,
    /// next_cursor from a previous call, to continue with older runs.
    cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RunsCursor {
    hunt: HuntId,
    before: RunId,
}

#[derive(Serialize, JsonSchema)]
struct HuntListRunsOutput {
    hunt_id: HuntId,
    /// Newest first: scheduled, catch-up, manual and skipped-occurrence records.
    runs: Vec<RunView>,
    /// Present when older runs exist: pass it as `cursor`.
    next_cursor: Option<String>,
}

impl Summary for HuntListRunsOutput {
    fn summary(&self) -> String {
        let more = cursor::more_note(self.next_cursor.as_ref());
        format!("{} runs of hunt {}{more}", self.runs.len(), self.hunt_id)
    }
}

#[async_trait::async_trait]
impl Tool for HuntListRuns {
    type Params = HuntListRunsParams;
    type Output = HuntListRunsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hunt_list_runs",
            title: "List a hunt's runs",
            description: "Lists a hunt's runs, newest first: kind (scheduled, catch_up, manual, skipped), status, \
                         window, rows per tenant, failures, alert delivery.",
            toolset: Toolset::Hunts,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntListRunsParams,
    ) -> Result<HuntListRunsOutput, ToolError> {
        let hunts = &context.services.hunts;
        let limit = params.limit.get();
        let before = match params
            .cursor
            .as_deref()
            .map(cursor::decode_opaque::<RunsCursor>)
            .transpose()?
        {
            Some(position) if position.hunt != params.hunt_id => {
                return Err(ToolError::invalid(format!(
                    "cursor was made for hunt {}, not {}; start again without a cursor",
                    position.hunt, params.hunt_id
                )));
            }
            position => position.map(|p| p.before),
        };
        // The hunt must exist; its runs alone could belong to a hunt being deleted.
        hunts.get(&params.hunt_id).await.map_err(tool_error)?;
        let mut ids = hunts
            .store()
            .list_run_ids(&params.hunt_id)
            .await
            .map_err(|e| tool_error(e.into()))?;
        ids.reverse();
        let older: Vec<RunId> = ids
            .into_iter()
            .filter(|id| before.as_ref().is_none_or(|before| id < before))
            .collect();
        let page = &older[..older.len().min(limit)];
        let records = futures::future::try_join_all(
            page.iter()
                .map(|run| hunts.store().get_run(&params.hunt_id, run)),
        )
        .await
        .map_err(|e| tool_error(e.into()))?;
        let runs: Vec<RunView> = records
            .into_iter()
            .flatten()
            .map(|(record, _)| RunView::of(record))
            .collect();
        let next_cursor = (older.len() > page.len())
            .then(|| {
                page.last().map(|last| {
                    cursor::encode_opaque(&RunsCursor {
                        hunt: params.hunt_id.clone(),
                        before: last.clone(),
                    })
                })
            })
            .flatten();
        Ok(HuntListRunsOutput {
            hunt_id: params.hunt_id,
            runs,
            next_cursor,
        })
    }
}

struct HuntGetResults;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HuntGetResultsParams {
    /// Hunt id from hunt_list.
    hunt_id: HuntId,
    /// Run id from hunt_list_runs or hunt_run_now.
    run_id: RunId,
    /// One tenant's rows; omitted: every tenant that succeeded, one tenant per page, in the run's order.
    tenant_id: Option<TenantId>,
    /// Most rows in this page. More are reached with `cursor`.
    #[serde(default)]
    limit: Limit<20, 1000>,
    /// next_cursor from a previous call, to continue (it keeps hunt, run and tenant).
    cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ResultsCursor {
    hunt: HuntId,
    run: RunId,
    tenant: TenantId,
    offset: usize,
    /// Whether the listing covers every tenant (no tenant_id was given).
    all: bool,
}

#[derive(Serialize, JsonSchema)]
struct HuntGetResultsOutput {
    hunt_id: HuntId,
    run_id: RunId,
    /// The tenant these rows come from.
    tenant_id: TenantId,
    /// Position of the first row in this tenant's stored rows.
    offset: usize,
    schema: Vec<HuntingColumn>,
    rows: Vec<Map<String, Value>>,
    /// Rows the hunt found in this tenant.
    rows_found: u64,
    /// Rows kept; fewer than rows_found when the per-tenant cap truncated the result.
    stored_rows: u64,
    truncated: bool,
    /// Present when more rows (or another tenant's rows) follow: pass it as `cursor`.
    next_cursor: Option<String>,
}

impl Summary for HuntGetResultsOutput {
    fn summary(&self) -> String {
        let truncated = if self.truncated {
            format!(" (truncated: {} found)", self.rows_found)
        } else {
            String::new()
        };
        let more = cursor::more_note(self.next_cursor.as_ref());
        format!(
            "rows {}-{} of {} stored for tenant {} in run {}{truncated}{more}",
            self.offset + usize::from(!self.rows.is_empty()),
            self.offset + self.rows.len(),
            self.stored_rows,
            self.tenant_id,
            self.run_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for HuntGetResults {
    type Params = HuntGetResultsParams;
    type Output = HuntGetResultsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hunt_get_results",
            title: "Get a hunt run's results",
            description: "Returns the rows a hunt run found, one tenant per page, saying when a tenant's rows were \
                         cut by the row cap.",
            toolset: Toolset::Hunts,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntGetResultsParams,
    ) -> Result<HuntGetResultsOutput, ToolError> {
        let hunts = &context.services.hunts;
        let limit = params.limit.get();
        let (record, _) = hunts
            .store()
            .get_run(&params.hunt_id, &params.run_id)
            .await
            .map_err(|e| tool_error(e.into()))?
            .ok_or_else(|| {
                ToolError::NotFound(format!(
                    "hunt {} has no run {}; hunt_list_runs lists its runs",
                    params.hunt_id, params.run_id
                ))
            })?;
        let (tenant, offset, all) = match params
            .cursor
            .as_deref()
            .map(cursor::decode_opaque::<ResultsCursor>)
            .transpose()?
        {
            Some(position) => {
                if position.hunt != params.hunt_id || position.run != params.run_id {
                    return Err(ToolError::invalid(format!(
                        "cursor was made for hunt {} run {}; start again without a cursor",
                        position.hunt, position.run
                    )));
                }
                (position.tenant, position.offset, position.all)
            }
            None => match params.tenant_id {
                Some(tenant) => (tenant, 0, false),
                None => (first_with_results(&record)?, 0, true),
            },
        };
        let entry = record
            .tenants
            .iter()
            .find(|t| t.tenant_id == tenant)
            .ok_or_else(|| {
                let searched: Vec<String> = record
                    .tenants
                    .iter()
                    .map(|t| t.tenant_id.to_string())
                    .collect();
                ToolError::NotFound(format!(
                    "run {} did not search tenant {tenant}; it searched: {}",
                    record.run_id,
                    searched.join(", ")
                ))
            })?;
        match entry.status {
            TenantStatus::Succeeded => {}
            TenantStatus::Pending => {
                return Err(ToolError::NotFound(format!(
                    "tenant {tenant} has no results yet in run {}: it is still pending",
                    record.run_id
                )));
            }
            TenantStatus::Failed => {
                return Err(ToolError::NotFound(format!(
                    "tenant {tenant} failed in run {}: {}",
                    record.run_id,
                    entry.error.as_deref().unwrap_or("no reason recorded")
                )));
            }
        }
        let page = hunts
            .store()
            .read_results(&record.hunt_id, &record.run_id, &tenant, offset, limit)
            .await
            .map_err(|e| tool_error(e.into()))?
            .ok_or_else(|| {
                ToolError::NotFound(format!(
                    "the results of tenant {tenant} in run {} are gone (deleted by retention?)",
                    record.run_id
                ))
            })?;
        let end = offset + page.rows.len();
        let stored = usize::try_from(entry.stored_rows).unwrap_or(usize::MAX);
        let next = if end < stored {
            Some(ResultsCursor {
                hunt: record.hunt_id.clone(),
                run: record.run_id.clone(),
                tenant: tenant.clone(),
                offset: end,
                all,
            })
        } else if all {
            next_with_results(&record, &tenant).map(|next| ResultsCursor {
                hunt: record.hunt_id.clone(),
                run: record.run_id.clone(),
                tenant: next,
                offset: 0,
                all,
            })
        } else {
            None
        };
        Ok(HuntGetResultsOutput {
            hunt_id: record.hunt_id.clone(),
            run_id: record.run_id.clone(),
            tenant_id: tenant,
            offset,
            schema: page.schema,
            rows: page.rows,
            rows_found: entry.rows.unwrap_or(0),
            stored_rows: entry.stored_rows,
            truncated: entry.truncated,
            next_cursor: next.map(|position| cursor::encode_opaque(&position)),
        })
    }
}

fn first_with_results(record: &RunRecord) -> Result<TenantId, ToolError> {
    record.tenants.iter().find(|t| t.status == TenantStatus::Succeeded).map(|t| t.tenant_id.clone()).ok_or_else(|| {
        ToolError::NotFound(format!("run {} has no results: no tenant succeeded (status {:?}); hunt_list_runs shows why", record.run_id, record.status))
    })
}

fn next_with_results(record: &RunRecord, after: &TenantId) -> Option<TenantId> {
    record
        .tenants
        .iter()
        .skip_while(|t| &t.tenant_id != after)
        .skip(1)
        .find(|t| t.status == TenantStatus::Succeeded)
        .map(|t| t.tenant_id.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sandbox::{Fault, FaultKind};
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    const QUERY: &str = "DeviceProcessEvents | where FileName =~ 'powershell.exe' | project Timestamp, DeviceName, ProcessCommandLine";
    const HUNTING_PATH: &str = "/graph/v1.0/security/runHuntingQuery";

    fn tenant_run(status: TenantStatus, rows: Option<u64>, error: Option<&str>) -> TenantRun {
        TenantRun {
            tenant_id: "11111111-1111-4111-8111-111111111111"
                .parse()
                .expect("tenant"),
            status,
            rows,
            stored_rows: rows.unwrap_or(0),
            truncated: false,
            error: error.map(str::to_owned),
            finished_at: None,
            interrupted: 0,
        }
    }

    #[test]
    fn a_tenants_search_is_shown_as_an_operation_target() {
        let target = || TargetRecord::new("t".into(), None);
        let pending = tenant_target(target(), &tenant_run(TenantStatus::Pending, None, None));
        assert_eq!(
            (pending.state, pending.status.as_deref(), pending.detail),
            (TargetState::Running, Some("pending"), None)
        );
        let done = tenant_target(
            target(),
            &tenant_run(TenantStatus::Succeeded, Some(12), None),
        );
        assert_eq!(
            (done.state, done.status.as_deref(), done.detail.as_deref()),
            (TargetState::Done, Some("succeeded"), Some("12 rows"))
        );
        let failed = tenant_target(
            target(),
            &tenant_run(TenantStatus::Failed, None, Some("Graph answered 400")),
        );
        assert_eq!(
            (
                failed.state,
                failed.status.as_deref(),
                failed.detail.as_deref()
            ),
            (
                TargetState::Failed,
                Some("failed"),
                Some("Graph answered 400")
            )
        );
    }

    #[tokio::test]
    async fn runs_are_paged_with_a_cursor_that_belongs_to_its_hunt() {
        let harness = Harness::start().await;
        let first = harness.paused_hunt("Encoded PowerShell", QUERY).await.id;
        let other = harness.paused_hunt("Other", QUERY).await.id;
        let mut started = BTreeSet::new();
        for _ in 0..3 {
            let run = harness.ok(&HuntRunNow, json!({"hunt_id": first})).await;
            assert_eq!(run["run"]["status"], "succeeded", "{run}");
            assert!(
                run.get("operation_id").is_none(),
                "nothing left to follow: {run}"
            );
            started.insert(run["run"]["run_id"].as_str().expect("id").to_owned());
        }

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut arguments = json!({"hunt_id": first, "limit": 2});
            if let Some(cursor) = &cursor {
                arguments["cursor"] = json!(cursor);
            }
            let page = harness.ok(&HuntListRuns, arguments).await;
            let runs = page["runs"].as_array().expect("runs");
            assert!(runs.len() <= 2, "{page}");
            seen.extend(
                runs.iter()
                    .map(|r| r["run_id"].as_str().expect("id").to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 3, "each run once: {seen:?}");
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), started);
        let mut newest_first = seen.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, newest_first);

        let page = harness
            .ok(&HuntListRuns, json!({"hunt_id": first, "limit": 1}))
            .await;
        let cursor = page["next_cursor"].as_str().expect("more runs");
        let message = harness
            .refusal(&HuntListRuns, json!({"hunt_id": other, "cursor": cursor}))
            .await;
        assert!(
            message.contains(&format!("made for hunt {first}, not {other}")),
            "{message}"
        );
        let empty = harness.ok(&HuntListRuns, json!({"hunt_id": other})).await;
        assert_eq!(
            (empty["runs"].clone(), empty["next_cursor"].clone()),
            (json!([]), Value::Null)
        );
    }

    #[tokio::test]
    async fn results_of_one_tenant_end_with_it_and_failed_or_unsearched_tenants_are_explained() {
        let harness = Harness::start_with(&[("OUTBOUND_MAX_RETRIES", "0")]).await;
        let hunt_id = harness.paused_hunt("Encoded PowerShell", QUERY).await.id;
        let tenants = harness.tenant_ids();
        let run = harness.ok(&HuntRunNow, json!({"hunt_id": hunt_id})).await;
        let run_id = run["run"]["run_id"].as_str().expect("id").to_owned();
        let last = tenants.last().expect("a tenant");
        let stored = run["run"]["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .find(|t| t["tenant_id"] == json!(last))
            .and_then(|t| t["stored_rows"].as_u64())
            .expect("the last tenant's rows");
        assert!(stored >= 2, "{run}");

        // Named, the tenant's rows are paged to their end and no further.
        let mut rows = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut arguments =
                json!({"hunt_id": hunt_id, "run_id": run_id, "tenant_id": last, "limit": 1});
            if let Some(cursor) = &cursor {
                arguments["cursor"] = json!(cursor);
            }
            let page = harness.ok(&HuntGetResults, arguments).await;
            assert_eq!(page["tenant_id"], json!(last), "{page}");
            assert_eq!(page["offset"], json!(rows));
            rows += page["rows"].as_array().expect("rows").len();
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(rows as u64, stored);

        let unknown = "33333333-3333-4333-8333-333333333333";
        let message = harness
            .refusal(
                &HuntGetResults,
                json!({"hunt_id": hunt_id, "run_id": run_id, "tenant_id": unknown}),
            )
            .await;
        assert!(
            message.contains(&format!("did not search tenant {unknown}"))
                && tenants.iter().all(|t| message.contains(t.as_str())),
            "{message}"
        );

        // A cursor is bound to its run.
        let page = harness
            .ok(
                &HuntGetResults,
                json!({"hunt_id": hunt_id, "run_id": run_id, "tenant_id": last, "limit": 1}),
            )
            .await;
        let cursor = page["next_cursor"].as_str().expect("more rows").to_owned();
        let mut fault = Fault::new(HUNTING_PATH, FaultKind::ServerError, 1);
        fault.status = Some(500);
        harness.sandbox.inject_fault(fault);
        let second = harness.ok(&HuntRunNow, json!({"hunt_id": hunt_id})).await;
        let second_id = second["run"]["run_id"].as_str().expect("id").to_owned();
        let message = harness
            .refusal(
                &HuntGetResults,
                json!({"hunt_id": hunt_id, "run_id": second_id, "cursor": cursor}),
            )
            .await;
        assert!(
            message.contains(&format!("made for hunt {hunt_id} run {run_id}")),
            "{message}"
        );

        // The first tenant searched met the fault: its failure is what the call says.
        assert_eq!(second["run"]["status"], "partially_failed", "{second}");
        let failed = second["run"]["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .find(|t| t["status"] == "failed")
            .expect("a failed tenant")
            .clone();
        let message = harness
            .refusal(
                &HuntGetResults,
                json!({"hunt_id": hunt_id, "run_id": second_id, "tenant_id": failed["tenant_id"]}),
            )
            .await;
        assert!(
            message.contains("failed in run")
                && message.contains(failed["error"].as_str().expect("a reason")),
            "{message}"
        );
        // Without a tenant the listing starts at the first that succeeded.
        let page = harness
            .ok(
                &HuntGetResults,
                json!({"hunt_id": hunt_id, "run_id": second_id}),
            )
            .await;
        assert_ne!(page["tenant_id"], failed["tenant_id"], "{page}");
    }

    #[tokio::test]
    async fn the_follower_reports_each_tenant_and_fails_what_it_cannot_find() {
        let harness = Harness::start().await;
        let follower = RunFollower {
            services: Arc::downgrade(&harness.context.services),
        };
        let hunt_id = harness.paused_hunt("Encoded PowerShell", QUERY).await.id;
        let run = harness.ok(&HuntRunNow, json!({"hunt_id": hunt_id})).await;
        let run_id: RunId = serde_json::from_value(run["run"]["run_id"].clone()).expect("id");
        let tenant: TenantId = harness.contoso().parse().expect("tenant");
        let targets = || vec![TargetRecord::new(tenant.to_string(), None)];
        let mut options = Map::new();
        options.insert("hunt_id".into(), json!(hunt_id));
        options.insert("run_id".into(), json!(run_id));

        let followed = follower.follow(&tenant, &options, targets()).await;
        assert_eq!(followed[0].state, TargetState::Done, "{followed:?}");
        assert!(
            followed[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.ends_with(" rows")),
            "{followed:?}"
        );

        let nameless = follower.follow(&tenant, &Map::new(), targets()).await;
        assert_eq!(nameless[0].state, TargetState::Failed);
        assert!(
            nameless[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("does not name its hunt run")),
            "{nameless:?}"
        );

        harness
            .context
            .services
            .hunts
            .delete(&hunt_id)
            .await
            .expect("deleted");
        let gone = follower.follow(&tenant, &options, targets()).await;
        assert_eq!(gone[0].state, TargetState::Failed);
        assert!(
            gone[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("is gone")),
            "{gone:?}"
        );
    }
}
