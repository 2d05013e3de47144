//! Running durable operations ([`crate::jobs::operation`]): long work that outlives the tool
//! call that started it and the instance that ran it.
//!
//! A tool records the operation and starts it here; the call answers with the outcome if the
//! operation finishes within `OPS_INLINE_SECONDS`, otherwise with its id while it carries on:
//! - with `OPS_QUEUE` set (Azure), the starting instance stops at the next batch boundary, lets
//!   go of the lease, and `function-operations` (a queue trigger of this app) continues it;
//! - without it (local runs), the starting instance finishes it in-process, and a sweep on every
//!   instance takes over operations whose worker stopped (their lease ran out).
//!
//! Whoever runs an operation holds its lease; every write to the record is conditional (ETag)
//! and checks the lease, so two workers never send for the same operation. Targets are marked
//! `sending` before their requests go out and their outcomes are written before the next batch
//! is marked; a worker that takes over reports the targets left `sending` as unconfirmed and
//! never sends them again.
//!
//! Work the service goes on with after accepting it (a live response session) comes back
//! `running`; once every target is sent, the run follows those with reads every few seconds until
//! the service says each ended, so the operation (and a task built on it) ends when the work does.

pub mod function;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::jobs::operation::{Lease, NewOperation, Operation, TargetRecord, TargetState};
use crate::jobs::{ErrorCode, JobError, JobId, JobKind, JobRecord, JobState, Jobs, JobsError};
use crate::storage::{MessageEncoding, MessageQueue, SendOptions, Storage};
use crate::tenants::TenantId;

/// Targets sent at once; their outcomes are written together before the next batch is marked.
const BATCH: usize = 8;
/// A batch that made no progress (every target throttled) waits this long before the next try.
const IDLE_PAUSE: Duration = Duration::from_secs(2);
/// Batches in a row that send nothing (each target came back not sent) before the operation
/// gives up on the rest: with the pause between them, several minutes.
const MAX_IDLE_ROUNDS: u32 = 60;
/// The queued message becomes visible this long after the inline run stops.
const HANDOVER_MARGIN: Duration = Duration::from_secs(2);
/// How long one send may wait for a rate-limit slot; the lease is renewed meanwhile.
const PACING_WAIT: Duration = Duration::from_secs(15 * 60);
/// Between two reads of the targets still running at the service: 1 s at first, doubling up to
/// 8 s (each read is one listing against the tenant's quota, whatever the number of targets).
const FOLLOW_PAUSE_FIRST: Duration = Duration::from_secs(1);
const FOLLOW_PAUSE_MAX: Duration = Duration::from_secs(8);

/// Sends one operation's action to one target. Implemented by the tool family that owns the
/// action (device actions: `tools::mde::bulk`).
#[async_trait::async_trait]
pub trait TargetAction: Send + Sync {
    /// Sends the action to `target` once and returns the target with its outcome: `done`,
    /// `running` (accepted, still carried out), `already_pending`, `failed`, `unconfirmed`
    /// (sent, answer lost), or `not_started` when it certainly was not sent (throttled before
    /// sending), in which case it is tried again later. Operations that only follow work
    /// accepted elsewhere (their targets start `running`) keep this default, which sends nothing.
    async fn send(
        &self,
        _tenant: &TenantId,
        _options: &Map<String, Value>,
        _comment: &str,
        target: TargetRecord,
    ) -> TargetRecord {
        TargetRecord {
            state: TargetState::Failed,
            detail: Some(
                "this operation follows work accepted elsewhere; this server sends nothing for it"
                    .into(),
            ),
            ..target
        }
    }

    /// Reads where the service stands with `targets` (each `running`, that is sent and accepted
    /// but not ended) and returns each with what the service says now: still `running`, `done`,
    /// or `failed` with why. Reads only, so whoever holds the operation may repeat it; a target
    /// it could not read comes back unchanged.
    async fn follow(
        &self,
        tenant: &TenantId,
        options: &Map<String, Value>,
        targets: Vec<TargetRecord>,
    ) -> Vec<TargetRecord>;
}

#[derive(Debug, thiserror::Error)]
pub enum OperationsError {
    #[error(transparent)]
    Jobs(#[from] JobsError),
    #[error("the operation was recorded but its run reported nothing")]
    Unreported,
    #[error("no worker on this server runs operations of {0}")]
    UnknownAction(String),
    #[error("operation {id} could not be handed to queue {queue}: {reason}")]
    Handover {
        id: JobId,
        queue: String,
        reason: String,
    },
}

/// An operation a tool asks for.
struct NewRun<'a> {
    kind: JobKind,
    function: &'a str,
    tenant_id: TenantId,
    caller: &'a str,
    options: Map<String, Value>,
    comment: String,
    targets: Vec<TargetRecord>,
}

/// How a run of an operation ended on this worker.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// The operation reached a final state (here or elsewhere).
    Final(Box<JobRecord>),
    /// Another worker holds the lease until then.
    Held(OffsetDateTime),
    /// This worker stopped at a batch boundary and let go of the lease (a queue worker goes on).
    Released,
    /// Another worker took the operation over (this one's lease had run out); it stopped.
    Lost,
    /// The record is a PowerShell job, which the PowerShell app runs.
    NotAnOperation,
}

/// What a run has done so far, as this worker knows it: the record as last written, with the
/// outcomes of the batch in flight applied as they arrive (not yet stored).
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub record: Option<JobRecord>,
    /// The run on this worker ended (the operation may go on elsewhere).
    pub ended: bool,
    /// Why the run stopped early, when it did (storage, say).
    pub error: Option<String>,
}

pub struct Operations {
    jobs: Arc<Jobs>,
    actions: std::sync::RwLock<HashMap<String, Arc<dyn TargetAction>>>,
    /// This instance; each run's lease owner starts with it.
    owner: String,
    lease: Duration,
    inline: Duration,
    /// How long one queue invocation works before handing the rest to a new message.
    slice: Duration,
    queue: Option<MessageQueue>,
    /// Operations this instance is running, so a sweep does not start a second run of its own.
    running: std::sync::Mutex<HashMap<JobId, watch::Receiver<Live>>>,
}

impl Operations {
    pub fn new(jobs: Arc<Jobs>, storage: &Storage, config: &crate::config::JobsConfig) -> Self {
        Self {
            jobs,
            actions: std::sync::RwLock::new(HashMap::new()),
            owner: format!("instance-{}", uuid::Uuid::new_v4().simple()),
            lease: config.operation_lease,
            inline: config.operation_inline,
            slice: config.operation_slice,
            queue: config
                .operations_queue
                .as_deref()
                .map(|name| MessageQueue::new(storage, name, MessageEncoding::Base64)),
            running: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The action operations of tool `function` send, registered with the tool.
    pub fn register(&self, function: &str, action: Arc<dyn TargetAction>) {
        self.actions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(function.to_owned(), action);
    }

    fn action(&self, function: &str) -> Option<Arc<dyn TargetAction>> {
        self.actions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(function)
            .cloned()
    }

    pub fn queue_name(&self) -> Option<&str> {
        self.queue.as_ref().map(MessageQueue::name)
    }

    /// Records an operation and runs it: until it finishes or `OPS_INLINE_SECONDS` pass,
    /// whichever comes first, then returns the record as it stands. An unfinished operation
    /// carries on (in this process, or through `OPS_QUEUE`).
    pub async fn start(
        self: &Arc<Self>,
        function: &str,
        tenant_id: TenantId,
        caller: &str,
        options: Map<String, Value>,
        comment: String,
        targets: Vec<TargetRecord>,
    ) -> Result<Live, OperationsError> {
        let new = NewRun {
            kind: JobKind::DeviceAction,
            function,
            tenant_id,
            caller,
            options,
            comment,
            targets,
        };
        self.start_run(new, self.inline).await
    }

    /// Records an operation over work already sent and accepted (its targets are `running`,
    /// each naming where the service reports on it) and returns at once: the operation follows
    /// the work until the service ends it, like the followed targets of any operation.
    pub async fn follow(
        self: &Arc<Self>,
        kind: JobKind,
        function: &str,
        tenant_id: TenantId,
        caller: &str,
        options: Map<String, Value>,
        targets: Vec<TargetRecord>,
    ) -> Result<JobRecord, OperationsError> {
        let new = NewRun {
            kind,
            function,
            tenant_id,
            caller,
            options,
            comment: String::new(),
            targets,
        };
        let live = self.start_run(new, Duration::ZERO).await?;
        live.record.ok_or(OperationsError::Unreported)
    }

    async fn start_run(
        self: &Arc<Self>,
        new: NewRun<'_>,
        inline: Duration,
    ) -> Result<Live, OperationsError> {
        let NewRun {
            kind,
            function,
            tenant_id,
            caller,
            options,
            comment,
            targets,
        } = new;
        if self.action(function).is_none() {
            return Err(OperationsError::UnknownAction(function.to_owned()));
        }
        let run_owner = self.run_owner();
        let record = self
            .jobs
            .create_operation(NewOperation {
                kind,
                function: function.to_owned(),
                tenant_id,
                caller: caller.to_owned(),
                options,
                comment,
                targets,
                owner: run_owner.clone(),
                lease: lease_span(self.lease),
            })
            .await?;
        let id = record.job_id.clone();
        // With a queue, the message goes out first, kept invisible for the inline run: if this
        // instance stops, function-operations still finds the operation (once its lease runs out).
        let handed = match &self.queue {
            Some(queue) => match self.hand_over(queue, &id, inline).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(operation = %id, "{error}; this instance runs it to the end instead");
                    false
                }
            },
            None => false,
        };
        let stop_after = handed.then(|| Instant::now() + inline);
        let mut live = self.spawn(id.clone(), run_owner, stop_after, Some(record));
        // The run goes on without this call; the call only waits for it for a while (and never
        // past its own deadline).
        let wait = crate::deadline::wait_budget(inline);
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, live.wait_for(|live| live.ended)).await;
        }
        let current = live.borrow().clone();
        Ok(current)
    }

    async fn hand_over(
        &self,
        queue: &MessageQueue,
        id: &JobId,
        inline: Duration,
    ) -> Result<(), OperationsError> {
        let handover = |reason: String| OperationsError::Handover {
            id: id.clone(),
            queue: queue.name().to_owned(),
            reason,
        };
        queue
            .ensure_exists()
            .await
            .map_err(|error| handover(error.to_string()))?;
        let text = serde_json::to_string(&OperationMessage { job_id: id.clone() })
            .map_err(|error| handover(error.to_string()))?;
        let options = SendOptions {
            initial_visibility_delay: Some(inline + HANDOVER_MARGIN),
            time_to_live: None,
        };
        queue
            .send_with(&text, options)
            .await
            .map_err(|error| handover(error.to_string()))?;
        Ok(())
    }

    /// How long one queue invocation works on an operation.
    pub fn slice(&self) -> Duration {
        self.slice
    }

    /// Puts the operation back on `OPS_QUEUE` for the next invocation (after the run let go of
    /// it at a batch boundary).
    pub async fn continue_later(&self, id: &JobId) -> Result<(), OperationsError> {
        match &self.queue {
            Some(queue) => self.hand_over(queue, id, Duration::ZERO).await,
            None => Err(OperationsError::Handover {
                id: id.clone(),
                queue: "(OPS_QUEUE is not set)".into(),
                reason: "this app has no operations queue".into(),
            }),
        }
    }

    /// Takes over the operations whose worker stopped (local runs: every lease period).
    pub async fn sweep(self: &Arc<Self>) -> Result<usize, OperationsError> {
        let orphans = self.jobs.orphaned_operations().await?;
        let mut started = 0;
        for id in orphans {
            if self.is_running_here(&id) {
                continue;
            }
            tracing::warn!(operation = %id, "taking over an operation whose worker stopped");
            self.spawn(id, self.run_owner(), None, None);
            started += 1;
        }
        Ok(started)
    }

    /// Runs the sweep every lease period for the life of the process (no queue to redeliver).
    pub fn spawn_local_sweep(self: &Arc<Self>) {
        let operations = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = operations.sweep().await {
                    tracing::warn!("operation sweep failed: {error}");
                }
                tokio::time::sleep(operations.lease).await;
            }
        });
    }

    /// A lease owner for one run: runs are told apart even on one instance (a queue delivery may
    /// reach the instance whose inline run still holds the operation).
    fn run_owner(&self) -> String {
        format!(
            "{}/run-{}",
            self.owner,
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )
    }

    fn is_running_here(&self, id: &JobId) -> bool {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(id).is_some_and(|live| !live.borrow().ended)
    }

    /// Runs the operation on a task of its own; the receiver follows what it does.
    fn spawn(
        self: &Arc<Self>,
        id: JobId,
        owner: String,
        stop_after: Option<Instant>,
        record: Option<JobRecord>,
    ) -> watch::Receiver<Live> {
        let (live, follow) = watch::channel(Live {
            record,
            ended: false,
            error: None,
        });
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), follow.clone());
        let operations = self.clone();
        tokio::spawn(async move {
            let error = match operations.run_live(&id, &owner, stop_after, &live).await {
                Ok(end) => {
                    tracing::info!(operation = %id, end = end_name(&end), "operation run ended");
                    None
                }
                Err(error) => {
                    tracing::error!(operation = %id, "operation run stopped: {error}");
                    Some(error.to_string())
                }
            };
            operations
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            live.send_modify(|live| {
                live.ended = true;
                live.error = error;
            });
        });
        follow
    }

    /// [`Operations::run_live`] with nobody following.
    pub async fn run(
        &self,
        id: &JobId,
        stop_after: Option<Instant>,
    ) -> Result<RunEnd, OperationsError> {
        let owner = self.run_owner();
        self.run_live(id, &owner, stop_after, &watch::channel(Live::default()).0)
            .await
    }

    /// Runs the operation from where its record stands until it is final, `stop_after` passes
    /// (at a batch boundary), or another worker holds or takes it; `live` follows its progress.
    async fn run_live(
        &self,
        id: &JobId,
        owner: &str,
        stop_after: Option<Instant>,
        live: &watch::Sender<Live>,
    ) -> Result<RunEnd, OperationsError> {
        let publish =
            |record: &JobRecord| live.send_modify(|live| live.record = Some(record.clone()));
        let mut record = match self.take_over(id, owner).await? {
            Ok(record) => record,
            Err(end) => return Ok(end),
        };
        publish(&record);
        let mut idle_rounds = 0;
        let mut follow_pause = FOLLOW_PAUSE_FIRST;
        let action = self
            .action(&record.function)
            .ok_or_else(|| OperationsError::UnknownAction(record.function.clone()))?;
        loop {
            let operation = operation_of(&record);
            if record.cancel_requested.is_some() {
                return self.finish(id, owner, FinalReason::Cancelled, live).await;
            }
            let batch: Vec<(usize, TargetRecord)> = operation
                .targets
                .iter()
                .enumerate()
                .filter(|(_, target)| target.state == TargetState::NotStarted)
                .take(BATCH)
                .map(|(index, target)| (index, target.clone()))
                .collect();
            if batch.is_empty() {
                let (indices, running): (Vec<usize>, Vec<TargetRecord>) = operation
                    .targets
                    .iter()
                    .enumerate()
                    .filter(|(_, target)| target.state == TargetState::Running)
                    .map(|(index, target)| (index, target.clone()))
                    .unzip();
                if running.is_empty() {
                    return self.finish(id, owner, FinalReason::Done, live).await;
                }
                if stop_after.is_some_and(|at| Instant::now() >= at) {
                    return self.release(id, owner).await;
                }
                if OffsetDateTime::now_utc() > record.deadline {
                    return self
                        .finish(id, owner, FinalReason::StoppedFollowing, live)
                        .await;
                }
                let (tenant, options) = (record.tenant_id.clone(), operation.options.clone());
                let followed = self
                    .with_heartbeat(id, owner, async {
                        crate::outbound::with_deadline(
                            pacing_deadline(stop_after),
                            action.follow(&tenant, &options, running),
                        )
                        .await
                    })
                    .await;
                let still_running = followed
                    .iter()
                    .any(|target| target.state == TargetState::Running);
                record = match self
                    .record_outcomes(id, owner, indices.into_iter().zip(followed).collect())
                    .await?
                {
                    Some(record) => record,
                    None => return Ok(RunEnd::Lost),
                };
                publish(&record);
                if still_running {
                    tokio::time::sleep(follow_pause).await;
                    follow_pause = (follow_pause * 2).min(FOLLOW_PAUSE_MAX);
                }
                continue;
            }
            if stop_after.is_some_and(|at| Instant::now() >= at) {
                return self.release(id, owner).await;
            }
            let indices: Vec<usize> = batch.iter().map(|(index, _)| *index).collect();
            record = match self.mark_sending(id, owner, &indices).await? {
                Some(record) => record,
                None => return Ok(RunEnd::Lost),
            };
            publish(&record);
            let operation = operation_of(&record);
            let (options, comment, tenant) = (
                operation.options.clone(),
                operation.comment.clone(),
                record.tenant_id.clone(),
            );
            let mut sends: futures::stream::FuturesUnordered<_> = batch
                .into_iter()
                .map(|(index, target)| {
                    let (action, options, comment, tenant) = (&action, &options, &comment, &tenant);
                    async move { (index, action.send(tenant, options, comment, target).await) }
                })
                .collect();
            // Each outcome is shown to whoever follows the run as it arrives; the batch's are
            // stored together.
            let outcomes = self
                .with_heartbeat(id, owner, async {
                    crate::outbound::with_deadline(pacing_deadline(stop_after), async {
                        let mut outcomes = Vec::new();
                        while let Some((index, target)) = sends.next().await {
                            live.send_modify(|live| {
                                if let Some(slot) = live
                                    .record
                                    .as_mut()
                                    .and_then(|record| record.operation.as_mut())
                                    .and_then(|operation| operation.targets.get_mut(index))
                                {
                                    *slot = target.clone();
                                }
                            });
                            outcomes.push((index, target));
                        }
                        outcomes
                    })
                    .await
                })
                .await;
            let progressed = outcomes
                .iter()
                .any(|(_, target)| target.state != TargetState::NotStarted);
            record = match self.record_outcomes(id, owner, outcomes).await? {
                Some(record) => record,
                None => return Ok(RunEnd::Lost),
            };
            publish(&record);
            if progressed {
                idle_rounds = 0;
            } else {
                idle_rounds += 1;
                // Nothing could be sent for a long while (the token endpoint refuses, Microsoft
                // keeps throttling), or the operation outlived its deadline: it ends, saying why,
                // instead of trying for ever.
                if idle_rounds >= MAX_IDLE_ROUNDS || OffsetDateTime::now_utc() > record.deadline {
                    return self.finish(id, owner, FinalReason::GaveUp, live).await;
                }
                tokio::time::sleep(IDLE_PAUSE).await;
            }
        }
    }

    /// Takes the lease (or finds the operation final, or held by a live worker); targets a
    /// stopped worker left `sending` become unconfirmed.
    async fn take_over(
        &self,
        id: &JobId,
        owner: &str,
    ) -> Result<Result<JobRecord, RunEnd>, OperationsError> {
        let mut end = None;
        let lease = lease_span(self.lease);
        let record = self
            .jobs
            .update_operation(id, |record| {
                end = None;
                if record.state.is_final() {
                    end = Some(RunEnd::Final(Box::new(record.clone())));
                    return false;
                }
                let now = OffsetDateTime::now_utc();
                let Some(operation) = record.operation.as_mut() else {
                    end = Some(RunEnd::NotAnOperation);
                    return false;
                };
                if !operation.available_to(owner, now) {
                    end = Some(RunEnd::Held(
                        operation.lease.as_ref().map_or(now, |lease| lease.until),
                    ));
                    return false;
                }
                let new_run = operation
                    .lease
                    .as_ref()
                    .is_none_or(|lease| lease.owner != owner);
                for target in &mut operation.targets {
                    if target.state == TargetState::Sending {
                        target.state = TargetState::Unconfirmed;
                        target.detail = Some(
                            "its request was being sent when the worker running the operation stopped; it may have been \
                             carried out and was not sent again. Look for this device's action with mde_list_machine_actions"
                                .to_owned(),
                        );
                    }
                }
                operation.lease = Some(Lease {
                    owner: owner.to_owned(),
                    until: now + lease,
                });
                if new_run {
                    record.attempts += 1;
                }
                true
            })
            .await?;
        Ok(match end {
            Some(end) => Err(end),
            None => Ok(record),
        })
    }

    /// Marks targets `sending` and renews the lease; `None` if another worker holds it now.
    async fn mark_sending(
        &self,
        id: &JobId,
        owner: &str,
        indices: &[usize],
    ) -> Result<Option<JobRecord>, OperationsError> {
        self.change_held(id, owner, |operation| {
            for index in indices {
                if let Some(target) = operation.targets.get_mut(*index) {
                    target.state = TargetState::Sending;
                }
            }
        })
        .await
    }

    async fn record_outcomes(
        &self,
        id: &JobId,
        owner: &str,
        outcomes: Vec<(usize, TargetRecord)>,
    ) -> Result<Option<JobRecord>, OperationsError> {
        self.change_held(id, owner, |operation| {
            for (index, outcome) in &outcomes {
                if let Some(target) = operation.targets.get_mut(*index) {
                    *target = outcome.clone();
                }
            }
        })
        .await
    }

    /// Applies `change` and renews the lease, if this worker still holds it.
    async fn change_held(
        &self,
        id: &JobId,
        owner: &str,
        mut change: impl FnMut(&mut Operation),
    ) -> Result<Option<JobRecord>, OperationsError> {
        let mut held = true;
        let lease = lease_span(self.lease);
        let record = self
            .jobs
            .update_operation(id, |record| {
                let now = OffsetDateTime::now_utc();
                held = !record.state.is_final()
                    && record.operation.as_ref().is_some_and(|operation| {
                        operation
                            .lease
                            .as_ref()
                            .is_some_and(|lease| lease.owner == owner)
                    });
                if !held {
                    return false;
                }
                if let Some(operation) = record.operation.as_mut() {
                    change(operation);
                    operation.lease = Some(Lease {
                        owner: owner.to_owned(),
                        until: now + lease,
                    });
                }
                true
            })
            .await?;
        Ok(held.then_some(record))
    }

    /// Runs `work` while renewing the lease every third of its length.
    async fn with_heartbeat<T>(
        &self,
        id: &JobId,
        owner: &str,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let work = std::pin::pin!(work);
        let beat = async {
            loop {
                tokio::time::sleep(self.lease / 3).await;
                match self.change_held(id, owner, |_| {}).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        tracing::warn!(operation = %id, "the operation's lease was taken over while a batch was being sent")
                    }
                    Err(error) => {
                        tracing::warn!(operation = %id, "the operation's lease could not be renewed: {error}")
                    }
                }
            }
        };
        tokio::select! {
            output = work => output,
            () = beat => unreachable!("the heartbeat never ends"),
        }
    }

    async fn release(&self, id: &JobId, owner: &str) -> Result<RunEnd, OperationsError> {
        self.jobs
            .update_operation(id, |record| match record.operation.as_mut() {
                Some(operation)
                    if operation
                        .lease
                        .as_ref()
                        .is_some_and(|lease| lease.owner == owner) =>
                {
                    operation.lease = None;
                    true
                }
                _ => false,
            })
            .await?;
        Ok(RunEnd::Released)
    }

    async fn finish(
        &self,
        id: &JobId,
        owner: &str,
        reason: FinalReason,
        live: &watch::Sender<Live>,
    ) -> Result<RunEnd, OperationsError> {
        let record = self
            .jobs
            .update_operation(id, |record| {
                let Some(operation) = record.operation.as_mut() else {
                    return false;
                };
                if record.state.is_final()
                    || operation.lease.as_ref().is_none_or(|lease| lease.owner != owner)
                {
                    return false;
                }
                let now = OffsetDateTime::now_utc();
                operation.lease = None;
                record.finished = Some(now);
                match reason {
                    FinalReason::Done => record.state = JobState::Succeeded,
                    FinalReason::Cancelled => {
                        let left = operation
                            .targets
                            .iter()
                            .filter(|target| target.state.is_open())
                            .count();
                        let running = operation.progress().running;
                        let unfollowed = if running > 0 {
                            format!(
                                "; {running} already running at the service go on there and are no longer followed \
                                 (mde_get_machine_action shows each)"
                            )
                        } else {
                            String::new()
                        };
                        record.state = JobState::Cancelled;
                        record.error = Some(JobError {
                            code: ErrorCode::Cancelled,
                            message: format!(
                                "cancelled with job_cancel; {left} targets were not sent and will not be{unfollowed}"
                            ),
                        });
                    }
                    FinalReason::StoppedFollowing => {
                        let running = operation.progress().running;
                        record.state = JobState::Failed;
                        record.error = Some(JobError {
                            code: ErrorCode::Abandoned,
                            message: format!(
                                "stopped following {running} targets still running at the service when the operation \
                                 reached its deadline; mde_get_machine_action shows each (reference)"
                            ),
                        });
                    }
                    FinalReason::GaveUp => {
                        let left: Vec<&TargetRecord> = operation
                            .targets
                            .iter()
                            .filter(|target| target.state.is_open())
                            .collect();
                        let why = left
                            .iter()
                            .find_map(|target| target.detail.as_deref())
                            .unwrap_or("no reason was given")
                            .to_owned();
                        record.state = JobState::Failed;
                        record.error = Some(JobError {
                            code: ErrorCode::Abandoned,
                            message: format!(
                                "gave up: {} targets could not be sent for several minutes or before the operation's \
                                 deadline; they were not sent and will not be (last reason: {why})",
                                left.len()
                            ),
                        });
                    }
                }
                true
            })
            .await?;
        live.send_modify(|live| live.record = Some(record.clone()));
        Ok(RunEnd::Final(Box::new(record)))
    }
}

#[derive(Debug, Clone, Copy)]
enum FinalReason {
    Done,
    Cancelled,
    /// Nothing could be sent for [`MAX_IDLE_ROUNDS`] batches, or the deadline passed.
    GaveUp,
    /// Everything was sent, but some work was still running at the service at the deadline.
    StoppedFollowing,
}

fn end_name(end: &RunEnd) -> &'static str {
    match end {
        RunEnd::Final(_) => "final",
        RunEnd::Held(_) => "held by another worker",
        RunEnd::Released => "released",
        RunEnd::Lost => "lost to another worker",
        RunEnd::NotAnOperation => "not an operation",
    }
}

fn operation_of(record: &JobRecord) -> &Operation {
    static EMPTY: OnceLock<Operation> = OnceLock::new();
    record.operation.as_ref().unwrap_or_else(|| {
        EMPTY.get_or_init(|| Operation {
            options: Map::new(),
            comment: String::new(),
            targets: Vec::new(),
            lease: None,
        })
    })
}

/// How long a batch may wait for rate-limit slots: [`PACING_WAIT`], and never past the run's
/// stop (a queue invocation's slice), so a worker stops on time; what was not sent is sent by
/// the next run.
fn pacing_deadline(stop_after: Option<Instant>) -> Instant {
    let paced = Instant::now() + PACING_WAIT;
    stop_after.map_or(paced, |stop| paced.min(stop.max(Instant::now())))
}

fn lease_span(lease: Duration) -> time::Duration {
    time::Duration::try_from(lease).unwrap_or(time::Duration::MINUTE)
}

/// The message on `OPS_QUEUE`: which operation to continue. The record holds everything else.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationMessage {
    pub job_id: JobId,
}
