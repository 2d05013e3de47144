//! `job_get`, `job_list`, `job_cancel`: every durable job (today the PowerShell ones) is followed
//! and stopped the same way.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::job_output;
use crate::jobs::{CancelOutcome, JobFilter, JobId, JobState, JobView};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(JobGet).tool(JobList).tool(JobCancel)
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

struct JobGet;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobGetParams {
    /// The job id a ps_ tool, job_list or job_cancel returned.
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
            description: "Gets one job by id: its state (queued, running, succeeded, failed, cancelled, dead_lettered), timestamps, \
                          attempts, error, and the result once it succeeded. Can wait up to 60 seconds for the job to finish.",
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
    /// Only jobs created at or after this time: an RFC 3339 time (2026-11-23T10:00:00Z) or a span back from now (30m, 24h, 7d).
    since: Option<String>,
    /// Only jobs in this tenant (a GUID from tenants_list).
    tenant_id: Option<TenantId>,
    /// Only jobs of this PowerShell function (case-insensitive), e.g. Get-SentinelTables.
    function: Option<String>,
    /// Most jobs to return (1-200, default 50), newest first.
    limit: Option<u32>,
    /// `next_cursor` from a previous call, to continue that listing (its filters are kept).
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
        let more = if self.next_cursor.is_some() {
            "; older jobs remain (use next_cursor)"
        } else {
            ""
        };
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
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
    }

    fn decode(text: &str) -> Result<(JobId, JobFilter), ToolError> {
        let invalid = || {
            ToolError::invalid(
                "cursor is not one job_list returned; pass the next_cursor value of the previous call unchanged",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| invalid())?;
        let cursor: ListCursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
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

/// RFC 3339, or a span back from `now` written as a number and one of m, h, d.
fn parse_since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, ToolError> {
    let text = text.trim();
    if let Ok(when) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(when);
    }
    let invalid = || {
        ToolError::invalid(format!(
            "since '{text}' is neither an RFC 3339 time (2026-11-23T10:00:00Z) nor a span back from now (30m, 24h, 7d)"
        ))
    };
    let unit = text.chars().last().ok_or_else(invalid)?;
    let amount: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| invalid())?;
    let span = match unit {
        'm' => time::Duration::minutes(amount),
        'h' => time::Duration::hours(amount),
        'd' => time::Duration::days(amount),
        _ => return Err(invalid()),
    };
    if amount <= 0 || amount > 366 * 24 * 60 {
        return Err(invalid());
    }
    Ok(now - span)
}

#[async_trait::async_trait]
impl Tool for JobList {
    type Params = JobListParams;
    type Output = JobListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "job_list",
            title: "List jobs",
            description: "Lists durable jobs newest first, filtered by state, caller, creation time (since), tenant or function. \
                          Shows state, timestamps, attempts and errors; get a job's result with job_get.",
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
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ToolError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
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
                let since = params
                    .since
                    .as_deref()
                    .map(|text| parse_since(text, OffsetDateTime::now_utc()))
                    .transpose()?;
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
            .list(&filter, limit as usize, after.as_ref())
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
            description: "Cancels a job that has not started yet, so it never runs. A running job cannot be interrupted safely: \
                          it finishes, but it is marked so that it is never retried. Finished jobs cannot be cancelled.",
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
    use super::*;

    #[test]
    fn since_accepts_times_and_spans_back_from_now() {
        let now = OffsetDateTime::parse("2026-11-23T10:00:00Z", &Rfc3339).expect("time");
        assert_eq!(
            parse_since("2026-11-22T10:00:00Z", now).expect("rfc3339"),
            now - time::Duration::days(1)
        );
        assert_eq!(
            parse_since("30m", now).expect("minutes"),
            now - time::Duration::minutes(30)
        );
        assert_eq!(
            parse_since(" 24h ", now).expect("hours"),
            now - time::Duration::hours(24)
        );
        assert_eq!(
            parse_since("7d", now).expect("days"),
            now - time::Duration::days(7)
        );
        for bad in ["yesterday", "5w", "-3h", "h", "0d", ""] {
            assert!(
                parse_since(bad, now)
                    .expect_err(bad)
                    .to_string()
                    .contains("RFC 3339"),
                "{bad}"
            );
        }
    }
}
