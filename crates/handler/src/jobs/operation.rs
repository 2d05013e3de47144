//! Durable operations: long work this app does itself (a device action on many devices), kept in
//! the same job record as PowerShell jobs, with per-target outcomes and a lease.
//!
//! The rule that keeps a destructive step from being sent twice: a target is marked `sending` in
//! the record (a conditional write, under the lease) before its request goes out, and its outcome
//! is written before the next batch is marked. Whoever takes over an operation after a crash finds
//! the targets of the interrupted batch still `sending` and reports them `unconfirmed`: they may
//! have been carried out, and they are never sent again.
//!
//! Some work goes on at the service after it was accepted (a live response session, an
//! investigation package being collected): such a target is `running` and the operation follows
//! it (reads only, safe to repeat by whoever holds the lease) until the service says it ended.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::contract::{self, CONTRACT_VERSION, JobId, JobKind, JobRecord, JobState};
use super::{Jobs, JobsError};
use crate::tenants::TenantId;

/// Which worker holds an operation, and until when; renewed while the worker runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// What happened to one target. `not_started` and `sending` are the open states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Not sent yet.
    NotStarted,
    /// Its request is being sent; a worker that finds this after a crash reports it unconfirmed.
    Sending,
    /// Accepted, and the service is still carrying it out (reference and status say what); the
    /// operation follows it until it ends.
    Running,
    /// Accepted by the service (see reference and status); for followed work: ended as it should.
    Done,
    /// The same action was already pending on the target; nothing new was started.
    AlreadyPending,
    /// Refused by the service (detail says why).
    Failed,
    /// Sent, but no answer was recorded; it may have been carried out and is never sent again.
    Unconfirmed,
}

impl TargetState {
    pub fn is_open(self) -> bool {
        matches!(self, Self::NotStarted | Self::Sending)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::Sending => "sending",
            Self::Running => "running",
            Self::Done => "done",
            Self::AlreadyPending => "already_pending",
            Self::Failed => "failed",
            Self::Unconfirmed => "unconfirmed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetRecord {
    /// The target's id (a Defender machine id).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub state: TargetState,
    /// What the service created for it (a machine action id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The service's status of that, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the service created it (its own timestamp).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<String>")]
    pub created: Option<OffsetDateTime>,
}

impl TargetRecord {
    pub fn new(id: String, name: Option<String>) -> Self {
        Self {
            id,
            name,
            state: TargetState::NotStarted,
            reference: None,
            status: None,
            detail: None,
            created: None,
        }
    }
}

/// The operation's part of a record of kind `device_action`, `azure_operation` or `hunt_run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// The tool's own arguments besides the targets (an isolation type, a script name…).
    pub options: Map<String, Value>,
    /// Why: recorded by the service with each action.
    pub comment: String,
    pub targets: Vec<TargetRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

/// How many targets are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Progress {
    pub total: usize,
    /// Accepted and still being carried out by the service (followed until it ends).
    pub running: usize,
    pub done: usize,
    pub already_pending: usize,
    pub failed: usize,
    pub unconfirmed: usize,
    /// Not sent yet (including any being sent right now).
    pub not_started: usize,
}

impl Operation {
    pub fn progress(&self) -> Progress {
        let mut progress = Progress {
            total: self.targets.len(),
            ..Progress::default()
        };
        for target in &self.targets {
            match target.state {
                TargetState::Running => progress.running += 1,
                TargetState::Done => progress.done += 1,
                TargetState::AlreadyPending => progress.already_pending += 1,
                TargetState::Failed => progress.failed += 1,
                TargetState::Unconfirmed => progress.unconfirmed += 1,
                TargetState::NotStarted | TargetState::Sending => progress.not_started += 1,
            }
        }
        progress
    }

    /// Whether `owner` may work on it at `now`: nobody holds it, or the holder's lease ran out.
    pub fn available_to(&self, owner: &str, now: OffsetDateTime) -> bool {
        self.lease
            .as_ref()
            .is_none_or(|lease| lease.owner == owner || lease.until <= now)
    }
}

/// An operation to record, as the tool that starts it describes it.
pub struct NewOperation {
    /// Any kind but `powershell`.
    pub kind: JobKind,
    pub function: String,
    pub tenant_id: TenantId,
    pub caller: String,
    pub options: Map<String, Value>,
    pub comment: String,
    pub targets: Vec<TargetRecord>,
    /// The worker that starts it at once, and how long its first lease lasts.
    pub owner: String,
    pub lease: time::Duration,
}

impl Jobs {
    /// Records an operation as running under `owner`'s lease; the caller then runs it.
    pub async fn create_operation(&self, new: NewOperation) -> Result<JobRecord, JobsError> {
        self.ensure_container().await?;
        let now = OffsetDateTime::now_utc();
        let record = JobRecord {
            version: CONTRACT_VERSION,
            job_id: JobId::new(),
            kind: new.kind,
            function: new.function,
            tenant_id: new.tenant_id,
            caller: new.caller,
            state: JobState::Running,
            created: now,
            deadline: now + self.operation_deadline,
            updated: now,
            started: Some(now),
            finished: None,
            attempts: 1,
            cancel_requested: None,
            error: None,
            last_attempt_error: None,
            parameters_blob: None,
            result: None,
            operation: Some(Operation {
                options: new.options,
                comment: new.comment,
                targets: new.targets,
                lease: Some(Lease {
                    owner: new.owner,
                    until: now + new.lease,
                }),
            }),
        };
        self.blobs
            .create(&contract::record_blob(&record.job_id), &record)
            .await?;
        tracing::info!(job = %record.job_id, function = %record.function, tenant = %record.tenant_id,
            caller = %record.caller, targets = record.operation.as_ref().map_or(0, |o| o.targets.len()), "operation started");
        Ok(record)
    }

    /// Changes an operation's record under its ETag (read again when another writer got there
    /// first). `change` returns false to leave it as it is.
    pub async fn update_operation(
        &self,
        id: &JobId,
        change: impl FnMut(&mut JobRecord) -> bool,
    ) -> Result<JobRecord, JobsError> {
        self.update(id, change).await
    }

    /// Open operations (recent ones, newest first) that no worker holds: their worker stopped
    /// without finishing them. Each is taken over through its lease, so a listing that races
    /// another instance's takes over nothing twice.
    pub async fn orphaned_operations(&self) -> Result<Vec<JobId>, JobsError> {
        let filter = super::JobFilter {
            state: Some(JobState::Running),
            since: Some(OffsetDateTime::now_utc() - self.operation_deadline),
            ..super::JobFilter::default()
        };
        let now = OffsetDateTime::now_utc();
        let page = self.list(&filter, super::LIST_SCAN_LIMIT, None).await?;
        Ok(page
            .jobs
            .into_iter()
            .filter(|record| {
                record
                    .operation
                    .as_ref()
                    .is_some_and(|operation| operation.available_to("", now))
            })
            .map(|record| record.job_id)
            .collect())
    }
}
