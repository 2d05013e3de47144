//! Durable jobs: long work handed to a worker through a queue, observed through a job record.
//!
//! The first (and today only) worker is the sibling PowerShell Function App in `powershell-app/`.
//! The handler creates the record (`queued`) before it sends the message, so a job exists from
//! the moment a caller gets its id; the worker moves it to `running` and to a final state; every
//! change goes through an ETag so two writers never overwrite each other. Delivery is
//! at-least-once, so the worker decides from the record, not from the message, whether to run:
//! a redelivered message whose job is final is dropped. No job stays open for ever:
//! - a message the Functions host gives up on lands in `<queue>-poison`, which the handler's
//!   `function-jobs-poison` turns into `dead_lettered` with the reason ([`poison`]);
//! - a `queued` job past its deadline is failed as `deadline_passed` when next read (the
//!   worker does the same if the message reaches it late);
//! - a `running` job whose worker never reports back is failed as `abandoned` a day after its
//!   deadline, long after the host's own retries and timeouts would have ended it.

pub mod contract;
pub mod operation;
pub mod poison;
mod view;

use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

pub use contract::{
    ErrorCode, JobError, JobId, JobKind, JobMessage, JobRecord, JobState, Manifest,
};
pub use view::{JobView, ResultView, timestamp};

use crate::config::JobsConfig;
use crate::storage::{
    JsonBlobStore, MAX_MESSAGE_BYTES, MessageEncoding, MessageQueue, SendOptions, Storage,
    StorageError,
};
use crate::tenants::TenantId;

/// How long after its deadline a `running` job with no word from its worker is given up.
const ABANDONED_AFTER_DEADLINE: time::Duration = time::Duration::hours(24);
/// Messages outlive the deadline a little so the worker itself can record `deadline_passed`.
const MESSAGE_TTL_MARGIN: Duration = Duration::from_secs(3600);
/// Concurrent record reads when listing.
const LIST_READ_BATCH: usize = 16;
/// Records read by one job_list call at most; more continue with the cursor.
const LIST_SCAN_LIMIT: usize = 500;
/// The longest an operation may run: Defender's hour quota (1,500 machine calls) lets 1,000
/// devices through well within it.
const OPERATION_DEADLINE: time::Duration = time::Duration::hours(24);
/// Results above this size are left in storage and pointed to, not handed to a model (job_get,
/// a PowerShell tool's answer, a task's result).
pub const MAX_INLINE_RESULT_BYTES: u64 = 1024 * 1024;
/// Optimistic-concurrency retries before an update is reported as contended.
const MAX_UPDATE_ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("no job with id {0}")]
    NotFound(JobId),
    #[error("job storage: {0}")]
    Storage(#[from] StorageError),
    #[error("job {id} could not be queued, so it will not run: {source}")]
    Enqueue { id: JobId, source: StorageError },
    #[error("job {0} kept changing under this update; try again")]
    Contended(JobId),
    #[error("the job cannot be written as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A job to start.
pub struct NewJob {
    pub function: String,
    pub parameters: Map<String, Value>,
    pub tenant_id: TenantId,
    pub caller: String,
    /// See [`JobMessage::retry_interrupted`].
    pub retry_interrupted: bool,
}

/// What job_cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job had not started and never will.
    Cancelled,
    /// The job is running: it finishes (PowerShell cannot be interrupted safely) but is never retried.
    Requested,
    /// Nothing to cancel.
    AlreadyFinal,
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    /// Exact caller name, compared case-insensitively.
    pub caller: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub tenant: Option<TenantId>,
    /// Exact function name, compared case-insensitively (PowerShell names are).
    pub function: Option<String>,
}

impl JobFilter {
    fn matches(&self, record: &JobRecord) -> bool {
        self.state.is_none_or(|state| record.state == state)
            && self
                .caller
                .as_deref()
                .is_none_or(|caller| record.caller.eq_ignore_ascii_case(caller))
            && self.since.is_none_or(|since| record.created >= since)
            && self
                .tenant
                .as_ref()
                .is_none_or(|tenant| &record.tenant_id == tenant)
            && self
                .function
                .as_deref()
                .is_none_or(|function| record.function.eq_ignore_ascii_case(function))
    }
}

pub struct JobPage {
    pub jobs: Vec<JobRecord>,
    /// The last job id examined, when older jobs remain to be examined.
    pub next: Option<JobId>,
}

/// Job records, parameters and results in one container, and the PowerShell queue.
pub struct Jobs {
    blobs: JsonBlobStore,
    powershell_queue: MessageQueue,
    deadline: Duration,
    /// How long after its start an operation is given up on if it never finished.
    operation_deadline: time::Duration,
    queue_ready: OnceCell<()>,
}

impl Jobs {
    /// What the Functions queue trigger decodes by default; both apps' host.json say so
    /// explicitly (`extensions.queues.messageEncoding`), and a test holds them to it.
    pub const POWERSHELL_QUEUE_ENCODING: MessageEncoding = MessageEncoding::Base64;

    pub fn new(storage: &Storage, config: &JobsConfig) -> Self {
        Self {
            blobs: JsonBlobStore::new(storage, &config.container),
            powershell_queue: MessageQueue::new(
                storage,
                &config.powershell_queue,
                Self::POWERSHELL_QUEUE_ENCODING,
            ),
            deadline: config.deadline,
            operation_deadline: OPERATION_DEADLINE,
            queue_ready: OnceCell::new(),
        }
    }

    pub fn powershell_queue(&self) -> &str {
        self.powershell_queue.name()
    }

    pub fn poison_queue(&self) -> String {
        format!("{}-poison", self.powershell_queue.name())
    }

    /// The blob store of the jobs container (the PowerShell manifest is read from it too).
    pub fn blobs(&self) -> &JsonBlobStore {
        &self.blobs
    }

    async fn ensure_container(&self) -> Result<(), StorageError> {
        self.blobs.ensure_container_once().await
    }

    /// Records the job, then queues it. The record comes first so that a caller never holds an
    /// id that leads nowhere; if the message cannot be sent the record says so.
    pub async fn submit_powershell(&self, job: NewJob) -> Result<JobRecord, JobsError> {
        self.ensure_container().await?;
        self.queue_ready
            .get_or_try_init(|| async { self.powershell_queue.ensure_exists().await.map(drop) })
            .await?;
        let id = JobId::new();
        let now = OffsetDateTime::now_utc();
        let deadline = now + self.deadline;
        let mut message = JobMessage {
            version: contract::CONTRACT_VERSION,
            job_id: id.clone(),
            kind: JobKind::Powershell,
            function: job.function.clone(),
            parameters: Some(job.parameters),
            parameters_blob: None,
            tenant_id: job.tenant_id.clone(),
            caller: job.caller.clone(),
            created: now,
            deadline,
            retry_interrupted: job.retry_interrupted,
        };
        let mut text = serde_json::to_string(&message)?;
        if self.powershell_queue.encoded_len(&text) > MAX_MESSAGE_BYTES {
            let blob = contract::parameters_blob(&id);
            if let Some(parameters) = message.parameters.take() {
                self.blobs.create(&blob, &parameters).await?;
            }
            message.parameters_blob = Some(blob);
            text = serde_json::to_string(&message)?;
        }
        let record = JobRecord::queued(&message, now);
        self.blobs
            .create(&contract::record_blob(&id), &record)
            .await?;
        let options = SendOptions {
            time_to_live: Some(self.deadline + MESSAGE_TTL_MARGIN),
            ..SendOptions::default()
        };
        if let Err(source) = self.powershell_queue.send_with(&text, options).await {
            let reason = format!(
                "the job could not be put on queue {}: {source}",
                self.powershell_queue.name()
            );
            self.update(&id, |record| {
                finish(record, JobState::Failed, ErrorCode::EnqueueFailed, &reason)
            })
            .await?;
            return Err(JobsError::Enqueue { id, source });
        }
        tracing::info!(job = %id, function = %record.function, tenant = %record.tenant_id, caller = %record.caller, "job queued");
        Ok(record)
    }

    /// The record, with an overdue job first moved to its final state.
    pub async fn get(&self, id: &JobId) -> Result<JobRecord, JobsError> {
        // On a new account the container may not exist yet: the job is then not found, which
        // is not a storage fault.
        self.ensure_container().await?;
        let (record, _) = self
            .blobs
            .get::<JobRecord>(&contract::record_blob(id))
            .await?
            .ok_or_else(|| JobsError::NotFound(id.clone()))?;
        self.settle_overdue(record).await
    }

    async fn settle_overdue(&self, record: JobRecord) -> Result<JobRecord, JobsError> {
        if overdue(&record, OffsetDateTime::now_utc()).is_none() {
            return Ok(record);
        }
        self.update(&record.job_id, |record| {
            apply_overdue(record, self.powershell_queue.name())
        })
        .await
    }

    /// Waits up to `timeout` for the job to reach a final state, then returns it as it is.
    pub async fn wait(&self, id: &JobId, timeout: Duration) -> Result<JobRecord, JobsError> {
        let until = tokio::time::Instant::now() + crate::deadline::wait_budget(timeout);
        let mut pause = Duration::from_millis(200);
        loop {
            let record = self.get(id).await?;
            let now = tokio::time::Instant::now();
            if record.state.is_final() || now >= until {
                return Ok(record);
            }
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    pub async fn cancel(
        &self,
        id: &JobId,
        caller: &str,
    ) -> Result<(JobRecord, CancelOutcome), JobsError> {
        let mut outcome = CancelOutcome::AlreadyFinal;
        let record = self
            .update(id, |record| {
                let now = OffsetDateTime::now_utc();
                match record.state {
                    JobState::Queued => {
                        outcome = CancelOutcome::Cancelled;
                        finish(
                            record,
                            JobState::Cancelled,
                            ErrorCode::Cancelled,
                            &format!("cancelled by {caller} before it started"),
                        )
                    }
                    JobState::Running if record.cancel_requested.is_none() => {
                        outcome = CancelOutcome::Requested;
                        record.cancel_requested = Some(now);
                        true
                    }
                    JobState::Running => {
                        outcome = CancelOutcome::Requested;
                        false
                    }
                    _ => {
                        outcome = CancelOutcome::AlreadyFinal;
                        false
                    }
                }
            })
            .await?;
        if outcome != CancelOutcome::AlreadyFinal {
            tracing::info!(job = %id, caller, ?outcome, "job cancel");
        }
        Ok((record, outcome))
    }

    /// Jobs newest first, read until `limit` match or the scan limit is reached.
    pub async fn list(
        &self,
        filter: &JobFilter,
        limit: usize,
        after: Option<&JobId>,
    ) -> Result<JobPage, JobsError> {
        self.ensure_container().await?;
        let mut ids: Vec<JobId> = self
            .blobs
            .list(contract::RECORDS_PREFIX)
            .await?
            .into_iter()
            .filter_map(|entry| {
                entry
                    .name
                    .strip_prefix(contract::RECORDS_PREFIX)?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .filter(|id| after.is_none_or(|after| id < after))
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(since) = filter.since {
            // Ids are time-ordered: everything after the first older one is older too. A small
            // margin covers clock differences between the id and the record's `created`.
            let margin = time::Duration::minutes(1);
            if let Some(cut) = ids
                .iter()
                .position(|id| id.created().is_some_and(|created| created + margin < since))
            {
                ids.truncate(cut);
            }
        }
        let mut jobs = Vec::new();
        let mut examined = 0;
        for batch in ids.chunks(LIST_READ_BATCH) {
            if jobs.len() >= limit || examined >= LIST_SCAN_LIMIT {
                break;
            }
            let reads = batch.iter().map(|id| async move {
                match self
                    .blobs
                    .get::<JobRecord>(&contract::record_blob(id))
                    .await
                {
                    Ok(Some((record, _))) => self.settle_overdue(record).await.map(Some),
                    Ok(None) => Ok(None),
                    Err(error) => Err(JobsError::from(error)),
                }
            });
            for (id, record) in batch.iter().zip(futures::future::join_all(reads).await) {
                if jobs.len() >= limit {
                    break;
                }
                examined += 1;
                match record {
                    Ok(Some(record)) if filter.matches(&record) => jobs.push(record),
                    Ok(_) => {}
                    // One unreadable record must not hide every other job: skip it, loudly.
                    Err(error) => {
                        tracing::warn!(job = %id, error = %error, "job record skipped in listing")
                    }
                }
            }
        }
        let next = examined
            .checked_sub(1)
            .filter(|_| examined < ids.len())
            .map(|last| ids[last].clone());
        Ok(JobPage { jobs, next })
    }

    /// The job's result, if it has one small enough to hand back.
    pub async fn result(
        &self,
        record: &JobRecord,
        max_bytes: u64,
    ) -> Result<ResultView, JobsError> {
        let Some(result) = &record.result else {
            return Ok(ResultView::None);
        };
        if result.bytes > max_bytes {
            return Ok(ResultView::TooLarge {
                bytes: result.bytes,
                blob: result.blob.clone(),
            });
        }
        match self.blobs.get::<Value>(&result.blob).await? {
            Some((value, _)) => Ok(ResultView::Inline(value)),
            None => Ok(ResultView::Missing {
                blob: result.blob.clone(),
            }),
        }
    }

    /// Marks the job of a message the Functions host gave up on as `dead_lettered`, unless it
    /// already reached a final state. Creates the record from the message if there is none, so
    /// the job is visible either way.
    pub async fn dead_letter(&self, message: &JobMessage) -> Result<JobRecord, JobsError> {
        self.ensure_container().await?;
        let poison = self.poison_queue();
        let reason = |record: &JobRecord| {
            let last = match &record.last_attempt_error {
                Some(error) => format!("last attempt error: {error}"),
                None => "no attempt recorded an error (the worker crashed, timed out, or could not read the message)".to_owned(),
            };
            format!(
                "the PowerShell worker gave up on this job: the Functions host moved its message to {poison} after the \
                 maximum number of delivery attempts; the worker started {} attempt(s); {last}",
                record.attempts
            )
        };
        match self
            .update(&message.job_id, |record| {
                let why = reason(record);
                !record.state.is_final()
                    && finish(
                        record,
                        JobState::DeadLettered,
                        ErrorCode::DeadLettered,
                        &why,
                    )
            })
            .await
        {
            Err(JobsError::NotFound(_)) => {
                let mut record = JobRecord::queued(message, OffsetDateTime::now_utc());
                record.last_attempt_error =
                    Some("the job had no record when its message was dead-lettered".to_owned());
                let why = reason(&record);
                finish(
                    &mut record,
                    JobState::DeadLettered,
                    ErrorCode::DeadLettered,
                    &why,
                );
                match self
                    .blobs
                    .create(&contract::record_blob(&message.job_id), &record)
                    .await
                {
                    Ok(_) => Ok(record),
                    // Written meanwhile: apply the rule to what is there now.
                    Err(StorageError::AlreadyExists { .. }) => {
                        Box::pin(self.dead_letter(message)).await
                    }
                    Err(error) => Err(error.into()),
                }
            }
            other => other,
        }
    }

    /// Reads, changes and writes a record with its ETag, reading again when another writer got
    /// there first. `change` returns false to leave the record as it is.
    async fn update(
        &self,
        id: &JobId,
        mut change: impl FnMut(&mut JobRecord) -> bool,
    ) -> Result<JobRecord, JobsError> {
        let blob = contract::record_blob(id);
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let (mut record, etag) = self
                .blobs
                .get::<JobRecord>(&blob)
                .await?
                .ok_or_else(|| JobsError::NotFound(id.clone()))?;
            if !change(&mut record) {
                return Ok(record);
            }
            record.updated = OffsetDateTime::now_utc();
            match self.blobs.replace(&blob, &record, &etag).await {
                Ok(_) => return Ok(record),
                Err(StorageError::Conflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(JobsError::Contended(id.clone()))
    }
}

/// Moves a record to a final state with its reason; false (no change) if it already is final.
fn finish(record: &mut JobRecord, state: JobState, code: ErrorCode, message: &str) -> bool {
    if record.state.is_final() {
        return false;
    }
    record.state = state;
    record.finished = Some(OffsetDateTime::now_utc());
    record.error = Some(JobError {
        code,
        message: message.to_owned(),
    });
    true
}

fn overdue(record: &JobRecord, now: OffsetDateTime) -> Option<ErrorCode> {
    match record.state {
        JobState::Queued if now > record.deadline => Some(ErrorCode::DeadlinePassed),
        JobState::Running if now > record.deadline + ABANDONED_AFTER_DEADLINE => {
            Some(ErrorCode::Abandoned)
        }
        _ => None,
    }
}

fn apply_overdue(record: &mut JobRecord, queue: &str) -> bool {
    match overdue(record, OffsetDateTime::now_utc()) {
        Some(ErrorCode::DeadlinePassed) => {
            let reason = format!(
                "no worker started the job before its deadline ({}); check that the PowerShell app is running and listens on queue {queue}",
                view::timestamp(record.deadline)
            );
            finish(record, JobState::Failed, ErrorCode::DeadlinePassed, &reason)
        }
        Some(code) => {
            let reason = format!(
                "the worker started the job ({} attempt(s)) and never reported an outcome, long after its deadline ({})",
                record.attempts,
                view::timestamp(record.deadline)
            );
            finish(record, JobState::Failed, code, &reason)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: JobState, deadline_from_now: time::Duration) -> JobRecord {
        let now = OffsetDateTime::now_utc();
        let message = JobMessage {
            version: contract::CONTRACT_VERSION,
            job_id: JobId::new(),
            kind: JobKind::Powershell,
            function: "Get-Thing".into(),
            parameters: Some(Map::new()),
            parameters_blob: None,
            tenant_id: "11111111-1111-4111-8111-111111111111"
                .parse()
                .expect("guid"),
            caller: "anonymous".into(),
            created: now,
            deadline: now + deadline_from_now,
            retry_interrupted: true,
        };
        JobRecord {
            state,
            attempts: u32::from(state == JobState::Running),
            ..JobRecord::queued(&message, now)
        }
    }

    #[test]
    fn no_open_job_outlives_its_deadline() {
        let mut late = record(JobState::Queued, time::Duration::minutes(-1));
        assert!(apply_overdue(&mut late, "ps-jobs"));
        assert_eq!(late.state, JobState::Failed);
        let error = late.error.expect("reason");
        assert_eq!(error.code, ErrorCode::DeadlinePassed);
        assert!(
            error.message.contains("listens on queue ps-jobs"),
            "{}",
            error.message
        );

        let mut on_time = record(JobState::Queued, time::Duration::minutes(1));
        assert!(!apply_overdue(&mut on_time, "ps-jobs"));
        // A running job gets the host's retries and timeouts first; only a day later is it given up.
        let mut running = record(JobState::Running, time::Duration::hours(-2));
        assert!(!apply_overdue(&mut running, "ps-jobs"));
        let mut abandoned = record(JobState::Running, time::Duration::hours(-25));
        assert!(apply_overdue(&mut abandoned, "ps-jobs"));
        assert_eq!(abandoned.error.expect("reason").code, ErrorCode::Abandoned);
        // Final states never change.
        let mut done = record(JobState::Succeeded, time::Duration::hours(-48));
        assert!(
            !apply_overdue(&mut done, "ps-jobs")
                && !finish(&mut done, JobState::Failed, ErrorCode::Cancelled, "x")
        );
    }

    #[test]
    fn filters_compare_names_without_case() {
        let job = record(JobState::Queued, time::Duration::minutes(5));
        let filter = JobFilter {
            caller: Some("ANONYMOUS".into()),
            function: Some("get-thing".into()),
            ..JobFilter::default()
        };
        assert!(filter.matches(&job));
        assert!(
            !JobFilter {
                state: Some(JobState::Running),
                ..JobFilter::default()
            }
            .matches(&job)
        );
        assert!(
            !JobFilter {
                since: Some(job.created + time::Duration::seconds(1)),
                ..JobFilter::default()
            }
            .matches(&job)
        );
    }
}
