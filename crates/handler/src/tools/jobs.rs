//! `job_get`, `job_list`, `job_cancel`: every durable job (PowerShell jobs, and the operations of
//! device actions on many devices) is followed and stopped the same way.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::args::{Limit, Since, When};
use super::{cursor, job_output};
use crate::jobs::{CancelOutcome, JobFilter, JobId, JobState, JobView};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(JobGet).tool(JobList).tool(JobCancel)
}

struct JobGet;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobGetParams {
    /// The job id a ps_ tool, a device action (operation_id), job_list or job_cancel returned.
    job_id: JobId,
    /// Seconds to wait for the job to reach a final state before answering (0-60, default 0: answer at once).
    wait_seconds: Option<u32>,
    /// Include the function's output once the job succeeded (default true).
    include_result: Option<bool>,
}

#[async_trait::async_trait]
impl Tool for JobGet {
    type Params = JobGetParams;
    type Output = JobView;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "job_get",
            title: "Get a job",
            description: "Gets a job: state (queued, running, succeeded, failed, cancelled, dead_lettered), \
                         attempts, error, result. wait_seconds (up to 60) waits for it to finish.",
            toolset: Toolset::Jobs,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: JobGetParams,
    ) -> Result<JobView, ToolError> {
        let wait = job_output::wait(params.wait_seconds, 0)?;
        let record = context.services.jobs.wait(&params.job_id, wait).await?;
        job_output::view(context, &record, params.include_result.unwrap_or(true)).await
    }
}

struct JobList;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobListParams {
    /// Only jobs in this state.
    state: Option<JobState>,
    /// Only jobs started by this caller (the `caller` shown on a job; case-insensitive).
    caller: Option<String>,
    /// Only jobs created at or after this time.
    since: Option<When<Since>>,
    /// Only jobs in this tenant (a GUID from tenants_list).
    tenant_id: Option<TenantId>,
    /// Only jobs of this PowerShell function (case-insensitive), e.g. Get-SentinelTables.
    function: Option<String>,
    /// Page size (newest first); more with cursor.
    #[serde(default)]
    limit: Limit<20, 200>,
    cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct JobListOutput {
    /// Newest first; results are not included (use job_get).
    jobs: Vec<JobView>,
    /// Present when older jobs remain to be examined: pass it as `cursor`.
    next_cursor: Option<String>,
}

impl Summary for JobListOutput {
    fn summary(&self) -> String {
        let more = cursor::more_note(self.next_cursor.as_ref());
        format!("{} jobs{more}", self.jobs.len())
    }
}

/// Where a listing continues, with the filters it was made with.
#[derive(Serialize, Deserialize)]
struct ListCursor {
    after: JobId,
    state: Option<JobState>,
    caller: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    since: Option<OffsetDateTime>,
    tenant: Option<TenantId>,
    function: Option<String>,
}

impl ListCursor {
    fn encode(after: JobId, filter: JobFilter) -> String {
        let cursor = ListCursor {
            after,
            state: filter.state,
            caller: filter.caller,
            since: filter.since,
            tenant: filter.tenant,
            function: filter.function,
        };
        cursor::encode_opaque(&cursor)
    }

    fn decode(text: &str) -> Result<(JobId, JobFilter), ToolError> {
        let cursor: ListCursor = cursor::decode_opaque(text)?;
        let filter = JobFilter {
            state: cursor.state,
            caller: cursor.caller,
            since: cursor.since,
            tenant: cursor.tenant,
            function: cursor.function,
        };
        Ok((cursor.after, filter))
    }
}

#[async_trait::async_trait]
impl Tool for JobList {
    type Params = JobListParams;
    type Output = JobListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "job_list",
            title: "List jobs",
            description: "Lists jobs newest first, filtered by state, caller, creation time, tenant or function; \
                         job_get gives a job's result.",
            toolset: Toolset::Jobs,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: JobListParams,
    ) -> Result<JobListOutput, ToolError> {
        let limit = params.limit.get();
        let given_filters = params.state.is_some()
            || params.caller.is_some()
            || params.since.is_some()
            || params.tenant_id.is_some()
            || params.function.is_some();
        let (after, filter) = match params.cursor {
            Some(_) if given_filters => {
                return Err(ToolError::invalid(
                    "pass either filters or cursor, not both: the cursor already carries its filters",
                ));
            }
            Some(cursor) => {
                let (after, filter) = ListCursor::decode(&cursor)?;
                (Some(after), filter)
            }
            None => {
                let tenant = match &params.tenant_id {
                    Some(id) => Some(
                        context
                            .services
                            .tenants
                            .resolve(Some(id))?
                            .tenant_id
                            .clone(),
                    ),
                    None => None,
                };
                let since = params.since.as_ref().map(When::at);
                let caller = params
                    .caller
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty());
                let function = params
                    .function
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty());
                (
                    None,
                    JobFilter {
                        state: params.state,
                        caller,
                        since,
                        tenant,
                        function,
                    },
                )
            }
        };
        let page = context
            .services
            .jobs
            .list(&filter, limit, after.as_ref())
            .await?;
        let mut jobs = Vec::with_capacity(page.jobs.len());
        for record in &page.jobs {
            jobs.push(job_output::view(context, record, false).await?);
        }
        let next_cursor = page.next.map(|after| ListCursor::encode(after, filter));
        Ok(JobListOutput { jobs, next_cursor })
    }
}

struct JobCancel;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobCancelParams {
    /// The job to cancel.
    job_id: JobId,
}

#[derive(Serialize, JsonSchema)]
struct JobCancelOutput {
    /// cancelled (it will never run), cancel_requested (it is running: it finishes but is never retried) or already_cancelled.
    outcome: String,
    job: JobView,
}

impl Summary for JobCancelOutput {
    fn summary(&self) -> String {
        match self.outcome.as_str() {
            "cancelled" => format!(
                "job {} cancelled before it started; it will not run",
                self.job.job_id
            ),
            "cancel_requested" if self.job.progress.is_some() => format!(
                "operation {} stops before its next batch; devices not sent by then never will be",
                self.job.job_id
            ),
            "cancel_requested" => format!(
                "job {} is already running and cannot be interrupted safely; it will finish and will not be retried",
                self.job.job_id
            ),
            _ => format!("job {} was already cancelled", self.job.job_id),
        }
    }
}

#[async_trait::async_trait]
impl Tool for JobCancel {
    type Params = JobCancelParams;
    type Output = JobCancelOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "job_cancel",
            title: "Cancel a job",
            description: "Cancels a job: one not started never runs; a running PowerShell job finishes but is never \
                         retried; a running operation stops before its next batch. Finished jobs cannot be cancelled.",
            toolset: Toolset::Jobs,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: JobCancelParams,
    ) -> Result<JobCancelOutput, ToolError> {
        let (record, outcome) = context
            .services
            .jobs
            .cancel(&params.job_id, context.caller.as_str())
            .await?;
        let outcome = match outcome {
            CancelOutcome::Cancelled => "cancelled",
            CancelOutcome::Requested => "cancel_requested",
            CancelOutcome::AlreadyFinal if record.state == JobState::Cancelled => {
                "already_cancelled"
            }
            CancelOutcome::AlreadyFinal => {
                let when = record
                    .finished
                    .map(crate::jobs::timestamp)
                    .unwrap_or_default();
                return Err(ToolError::Conflict(format!(
                    "job {} already {} at {when}; only queued or running jobs can be cancelled",
                    record.job_id,
                    record.state.name()
                )));
            }
        };
        Ok(JobCancelOutput {
            outcome: outcome.to_owned(),
            job: job_output::view(context, &record, false).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jobs::NewJob;
    use crate::testing::Harness;

    async fn queued(harness: &Harness, function: &str) -> String {
        let record = harness
            .context
            .services
            .jobs
            .submit_powershell(NewJob {
                function: function.to_owned(),
                parameters: serde_json::Map::new(),
                tenant_id: harness.contoso().parse().expect("tenant id"),
                caller: "local".to_owned(),
                retry_interrupted: false,
            })
            .await
            .expect("queued on the in-memory queue");
        record.job_id.to_string()
    }

    #[tokio::test]
    async fn a_queued_job_is_listed_cancelled_once_and_then_reported_as_cancelled() {
        let harness = Harness::start().await;
        let first = queued(&harness, "Get-SentinelTables").await;
        let second = queued(&harness, "Export-Everything").await;

        let listed = harness
            .ok(&JobList, json!({"state": "queued", "limit": 1}))
            .await;
        assert_eq!(listed["jobs"][0]["job_id"], json!(second), "newest first");
        let cursor = listed["next_cursor"]
            .as_str()
            .expect("an older job remains");
        let older = harness.ok(&JobList, json!({"cursor": cursor})).await;
        assert_eq!(older["jobs"][0]["job_id"], json!(first), "{older}");
        let by_function = harness
            .ok(&JobList, json!({"function": "get-sentineltables"}))
            .await;
        assert_eq!(by_function["jobs"].as_array().expect("jobs").len(), 1);

        let cancelled = harness.ok(&JobCancel, json!({"job_id": first})).await;
        assert_eq!(cancelled["outcome"], "cancelled", "{cancelled}");
        let again = harness.ok(&JobCancel, json!({"job_id": first})).await;
        assert_eq!(again["outcome"], "already_cancelled");
        let job = harness.ok(&JobGet, json!({"job_id": first})).await;
        assert_eq!(job["state"], "cancelled", "{job}");
    }

    #[tokio::test]
    async fn unknown_and_malformed_job_ids_are_told_apart() {
        let harness = Harness::start().await;
        let message = harness
            .refusal(
                &JobGet,
                json!({"job_id": "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a"}),
            )
            .await;
        assert!(message.starts_with("not found"), "{message}");
        let message = harness.refusal(&JobGet, json!({"job_id": "job 7"})).await;
        assert!(message.contains("job 7"), "{message}");
        let message = harness
            .refusal(
                &JobGet,
                json!({"job_id": "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a", "wait_seconds": 61}),
            )
            .await;
        assert!(message.contains("60"), "{message}");
    }
}
