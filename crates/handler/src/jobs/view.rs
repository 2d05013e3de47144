//! How a job is shown to a caller: the output of `job_get`, `job_cancel`, `job_list` entries
//! and every `ps_<function>` tool, so all long work reads the same way.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::contract::{JobError, JobRecord, JobState};
use super::operation::{Operation, Progress, TargetRecord, TargetState};
use crate::tenants::TenantId;

pub fn timestamp(when: OffsetDateTime) -> String {
    when.format(&Rfc3339).unwrap_or_else(|_| when.to_string())
}

/// A job's result as far as a tool hands it back.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultView {
    /// No result (not finished, failed, or not asked for).
    None,
    Inline(Value),
    TooLarge {
        bytes: u64,
        blob: String,
    },
    /// The record names a result blob that is not there (deleted by retention?).
    Missing {
        blob: String,
    },
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JobView {
    /// Pass this to job_get or job_cancel.
    pub job_id: String,
    /// queued, running, succeeded, failed, cancelled or dead_lettered; the last four are final.
    pub state: JobState,
    /// The PowerShell function the job runs, or the tool whose operation it is.
    pub function: String,
    pub tenant_id: TenantId,
    /// Who started the job.
    pub caller: String,
    pub created: String,
    /// A job not started by then fails as deadline_passed.
    pub deadline: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Attempts the worker started; more than one means a retry after a crash.
    pub attempts: u32,
    /// When job_cancel was asked for while the job was running.
    pub cancel_requested: Option<String>,
    /// Why the job did not succeed.
    pub error: Option<JobError>,
    /// The function's output (JSON) once the job succeeded.
    pub result: Option<Value>,
    /// Why `result` is absent although the job succeeded.
    pub result_note: Option<String>,
    /// An operation (every kind but powershell): how many targets are in each state.
    pub progress: Option<Progress>,
    /// An operation: each target's outcome (those needing attention first), when the result is asked for.
    pub targets: Option<Vec<TargetRecord>>,
}

impl JobView {
    pub fn new(record: &JobRecord, result: ResultView) -> Self {
        let (result, result_note) = match result {
            ResultView::None => (None, None),
            ResultView::Inline(value) => (Some(value), None),
            ResultView::TooLarge { bytes, blob } => (
                None,
                Some(format!(
                    "the result is {bytes} bytes, too large to return here; it is stored in blob {blob} of the jobs container"
                )),
            ),
            ResultView::Missing { blob } => (
                None,
                Some(format!(
                    "the result blob {blob} is no longer in the jobs container"
                )),
            ),
        };
        Self {
            job_id: record.job_id.to_string(),
            state: record.state,
            function: record.function.clone(),
            tenant_id: record.tenant_id.clone(),
            caller: record.caller.clone(),
            created: timestamp(record.created),
            deadline: timestamp(record.deadline),
            started: record.started.map(timestamp),
            finished: record.finished.map(timestamp),
            attempts: record.attempts,
            cancel_requested: record.cancel_requested.map(timestamp),
            error: record.error.clone(),
            result,
            result_note,
            progress: record.operation.as_ref().map(Operation::progress),
            targets: None,
        }
    }

    /// The operation's targets, those needing attention first, at most [`MAX_TARGETS_SHOWN`].
    pub fn with_targets(mut self, record: &JobRecord) -> Self {
        if let Some(operation) = &record.operation {
            let mut targets = operation.targets.clone();
            targets.sort_by_key(|target| match target.state {
                TargetState::Failed | TargetState::Unconfirmed => 0,
                TargetState::AlreadyPending => 1,
                TargetState::NotStarted | TargetState::Sending | TargetState::Running => 2,
                TargetState::Done => 3,
            });
            if targets.len() > MAX_TARGETS_SHOWN {
                self.result_note = Some(format!(
                    "targets shows {MAX_TARGETS_SHOWN} of {} targets (failed and unconfirmed first); progress counts them all",
                    targets.len()
                ));
                targets.truncate(MAX_TARGETS_SHOWN);
            }
            self.targets = Some(targets);
        }
        self
    }
}

/// Targets one job view lists at most.
const MAX_TARGETS_SHOWN: usize = 200;
