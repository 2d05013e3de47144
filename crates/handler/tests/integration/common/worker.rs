//! A stand-in for the sibling PowerShell app, for tests only: it follows the same contract as
//! `powershell-app/run-job/run.ps1` (and `publish-manifest/run.ps1`) step for step, with Rust
//! closures in place of PowerShell functions, and emulates the Functions host's queue trigger
//! around it (peek-lock, redelivery after a failed invocation, `<queue>-poison` after
//! `maxDequeueCount`). Everything it reads from the handler and writes back is checked against
//! the contract's JSON Schemas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use handler::jobs::contract::{
    self, JobMessage, JobRecord, Manifest, ManifestEffect, ManifestFunction, ManifestParameter,
    ManifestTier, ParameterType, ResultRef,
};
use handler::jobs::{ErrorCode, JobError, JobState};
use handler::storage::{
    JsonBlobStore, MessageEncoding, MessageQueue, ReceivedMessage, Storage, StorageConnection,
    StorageError,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::contract::{Contract, assert_valid};

/// The host.json default the PowerShell app keeps.
pub const MAX_DEQUEUE_COUNT: u64 = 5;

/// What one run of a stand-in function does.
pub enum Act {
    /// The function returned this output.
    Return(Value),
    /// The function threw: the job fails, the message is completed.
    Throw(String),
    /// The worker process died mid-run: nothing more is written, the message reappears.
    Crash,
    /// Storage failed while finishing: the attempt's error is recorded, the invocation fails.
    InfraError(String),
}

/// A stand-in PowerShell function: parameters (as splatted) and the attempt number in, an act out.
pub type Function = Arc<dyn Fn(&Map<String, Value>, u32) -> Act + Send + Sync>;

pub struct FunctionDef {
    pub manifest: ManifestFunction,
    pub run: Function,
}

pub fn parameter(name: &str, kind: ParameterType, mandatory: bool) -> ManifestParameter {
    ManifestParameter {
        name: name.into(),
        kind,
        items: None,
        ps_type: None,
        mandatory,
        validate_set: Vec::new(),
        help: Some(format!("The {name}.")),
    }
}

pub fn function(
    name: &str,
    effect: ManifestEffect,
    parameters: Vec<ManifestParameter>,
    run: Function,
) -> FunctionDef {
    let tenant_parameter = parameters
        .iter()
        .any(|p| p.name == "TenantId")
        .then(|| "TenantId".to_string());
    FunctionDef {
        manifest: ManifestFunction {
            name: name.into(),
            module: Some("StandIn".into()),
            synopsis: Some(format!("Stand-in for {name}.")),
            description: None,
            effect,
            tier: ManifestTier::Responder,
            tenant_parameter,
            parameters,
        },
        run,
    }
}

/// What the emulated host did with one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The invocation succeeded and the message was deleted.
    Completed,
    /// The invocation failed; the message becomes visible again.
    Failed(String),
    /// Moved to `<queue>-poison` (after the last failed attempt, or on a delivery past the limit).
    Poisoned,
}

pub struct StandInWorker {
    pub queue: MessageQueue,
    pub poison: MessageQueue,
    pub blobs: JsonBlobStore,
    functions: HashMap<String, FunctionDef>,
    /// Function runs per job id (the thing that must not happen twice).
    pub runs: Arc<Mutex<HashMap<String, u32>>>,
    /// How long a failed or crashed delivery stays invisible (the host's visibilityTimeout).
    pub visibility: Duration,
    /// The text of every message delivered, as the host decoded it.
    pub seen: Mutex<Vec<String>>,
}

pub fn test_storage() -> Storage {
    let connection = StorageConnection::from_connection_string(&super::storage_connection_string())
        .expect("connection string");
    Storage::new(connection, None).expect("storage")
}

impl StandInWorker {
    pub fn new(
        storage: &Storage,
        container: &str,
        queue: &str,
        functions: Vec<FunctionDef>,
    ) -> Self {
        Self {
            queue: MessageQueue::new(storage, queue, MessageEncoding::Base64),
            poison: MessageQueue::new(storage, &format!("{queue}-poison"), MessageEncoding::Base64),
            blobs: JsonBlobStore::new(storage, container),
            functions: functions
                .into_iter()
                .map(|f| (f.manifest.name.to_ascii_lowercase(), f))
                .collect(),
            runs: Arc::new(Mutex::new(HashMap::new())),
            visibility: Duration::from_secs(1),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn runs_of(&self, job_id: &str) -> u32 {
        self.runs
            .lock()
            .expect("lock")
            .get(job_id)
            .copied()
            .unwrap_or(0)
    }

    /// publish-manifest: the allow-listed functions, as the handler reads them.
    pub async fn publish_manifest(&self) {
        let mut functions: Vec<ManifestFunction> = self
            .functions
            .values()
            .map(|f| f.manifest.clone())
            .collect();
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        self.publish(functions).await;
    }

    pub async fn publish(&self, functions: Vec<ManifestFunction>) {
        self.blobs.ensure_container().await.expect("container");
        let manifest = Manifest {
            version: 1,
            generated: OffsetDateTime::now_utc(),
            functions,
        };
        let value = serde_json::to_value(&manifest).expect("json");
        assert_valid(Contract::Manifest, &value);
        self.blobs
            .upsert(contract::MANIFEST_BLOB, &value)
            .await
            .expect("manifest written");
    }

    /// One poll of the queue trigger: takes at most one message and handles it as the host would.
    pub async fn poll(&self) -> Option<Delivery> {
        self.queue.ensure_exists().await.expect("queue");
        let message = self
            .queue
            .receive(1, self.visibility)
            .await
            .expect("receive")
            .into_iter()
            .next()?;
        if message.dequeue_count > MAX_DEQUEUE_COUNT {
            self.move_to_poison(&message).await;
            return Some(Delivery::Poisoned);
        }
        match self.run_job(&message).await {
            Ok(()) => {
                self.queue.delete(&message).await.expect("delete");
                Some(Delivery::Completed)
            }
            Err(reason) if message.dequeue_count >= MAX_DEQUEUE_COUNT => {
                let _ = reason;
                self.move_to_poison(&message).await;
                Some(Delivery::Poisoned)
            }
            Err(reason) => Some(Delivery::Failed(reason)),
        }
    }

    /// Polls until a delivery happens or `timeout` passes (a failed message reappears after `visibility`).
    pub async fn next_delivery(&self, timeout: Duration) -> Option<Delivery> {
        let until = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < until {
            if let Some(delivery) = self.poll().await {
                return Some(delivery);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// The host copies the message as it is to `<queue>-poison` and deletes the original.
    async fn move_to_poison(&self, message: &ReceivedMessage) {
        self.poison.ensure_exists().await.expect("poison queue");
        let text = message.text().expect("decodable");
        self.poison.send(&text).await.expect("poison send");
        self.queue.delete(message).await.expect("delete");
    }

    async fn read_record(&self, blob: &str) -> Option<(JobRecord, handler::storage::ETag)> {
        let (value, etag) = self.blobs.get::<Value>(blob).await.expect("record read")?;
        assert_valid(Contract::JobRecord, &value);
        Some((serde_json::from_value(value).expect("record"), etag))
    }

    /// Writes a record change with the ETag it was read with; re-reads and re-applies on 412,
    /// like Update-JobRecord in JobWorker.psm1. `change` returns false to leave it as it is.
    async fn update(
        &self,
        blob: &str,
        mut change: impl FnMut(&mut JobRecord) -> bool,
    ) -> Result<(), String> {
        loop {
            let Some((mut record, etag)) = self.read_record(blob).await else {
                return Err(format!("{blob} vanished"));
            };
            if !change(&mut record) {
                return Ok(());
            }
            record.updated = OffsetDateTime::now_utc();
            let value = serde_json::to_value(&record).expect("json");
            assert_valid(Contract::JobRecord, &value);
            match self.blobs.replace(blob, &value, &etag).await {
                Ok(_) => return Ok(()),
                Err(StorageError::Conflict { .. }) => continue,
                Err(error) => return Err(error.to_string()),
            }
        }
    }

    async fn fail(&self, blob: &str, code: ErrorCode, message: String) -> Result<(), String> {
        self.update(blob, |record| {
            finish(record, JobState::Failed, code, &message)
        })
        .await
    }

    /// Invoke-Job / Invoke-JobSteps of JobWorker.psm1 (called by run-job/run.ps1), step for step.
    async fn run_job(&self, delivered: &ReceivedMessage) -> Result<(), String> {
        self.seen
            .lock()
            .expect("lock")
            .push(delivered.text().map_err(|e| e.to_string())?);
        let value: Value = delivered.json().map_err(|e| e.to_string())?;
        assert_valid(Contract::JobMessage, &value);
        let message: JobMessage = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let blob = contract::record_blob(&message.job_id);
        let now = OffsetDateTime::now_utc();

        // 1. Decide from the record, not the message, whether this delivery runs anything.
        let mut attempt = 0;
        let mut decision: Option<(ErrorCode, String, JobState)> = None;
        let function = self.functions.get(&message.function.to_ascii_lowercase());
        let claimed = self
            .update(&blob, |record| {
                decision = None;
                if record.state.is_final() {
                    return false;
                }
                if message.version != contract::CONTRACT_VERSION {
                    decision = Some((ErrorCode::InvalidMessage, format!("the message has contract version {}", message.version), JobState::Failed));
                } else if record.cancel_requested.is_some() {
                    decision = Some((ErrorCode::Cancelled, "cancelled while running; the interrupted attempt is not retried".into(), JobState::Cancelled));
                } else if record.state == JobState::Queued && now > message.deadline {
                    decision = Some((ErrorCode::DeadlinePassed, "the job reached the worker after its deadline".into(), JobState::Failed));
                } else if record.state == JobState::Running && !message.retry_interrupted {
                    decision = Some((
                        ErrorCode::Interrupted,
                        "an earlier attempt started and did not finish; the function is destructive, so it is not run again".into(),
                        JobState::Failed,
                    ));
                } else if function.is_none() {
                    decision = Some((ErrorCode::NotAllowed, format!("{} is not on this worker's allow-list", message.function), JobState::Failed));
                }
                if let Some((code, text, state)) = &decision {
                    return finish(record, *state, *code, text);
                }
                record.state = JobState::Running;
                record.started.get_or_insert(now);
                record.attempts += 1;
                attempt = record.attempts;
                true
            })
            .await;
        if claimed.is_err() && self.read_record(&blob).await.is_none() {
            return self.record_orphan(&message).await;
        }
        claimed?;
        if decision.is_some() || attempt == 0 {
            return Ok(());
        }
        let Some(function) = function else {
            return Ok(());
        };

        // 2. Parameters: inline, or from the blob the message names; the tenant parameter is
        //    always the job's allow-listed tenant.
        let mut parameters = match (&message.parameters, &message.parameters_blob) {
            (Some(parameters), _) => parameters.clone(),
            (None, Some(parameters_blob)) => match self
                .blobs
                .get::<Map<String, Value>>(parameters_blob)
                .await
                .map_err(|e| e.to_string())?
            {
                Some((parameters, _)) => parameters,
                None => {
                    return self
                        .fail(
                            &blob,
                            ErrorCode::InvalidMessage,
                            format!("parameters blob {parameters_blob} is missing"),
                        )
                        .await;
                }
            },
            (None, None) => {
                return self
                    .fail(
                        &blob,
                        ErrorCode::InvalidMessage,
                        "the message has no parameters".into(),
                    )
                    .await;
            }
        };
        if let Some(tenant_parameter) = &function.manifest.tenant_parameter {
            parameters.insert(tenant_parameter.clone(), json!(message.tenant_id));
        }

        // 3. Run, then write the result before the record that points at it.
        *self
            .runs
            .lock()
            .expect("lock")
            .entry(message.job_id.to_string())
            .or_default() += 1;
        match (function.run)(&parameters, attempt) {
            Act::Return(output) => {
                let result_blob = contract::result_blob(&message.job_id);
                let bytes = serde_json::to_vec(&output).expect("json").len() as u64;
                self.blobs
                    .upsert(&result_blob, &output)
                    .await
                    .map_err(|e| e.to_string())?;
                self.update(&blob, |record| {
                    record.result = Some(ResultRef {
                        blob: result_blob.clone(),
                        bytes,
                    });
                    finish(record, JobState::Succeeded, ErrorCode::FunctionFailed, "")
                })
                .await
            }
            Act::Throw(error) => self.fail(&blob, ErrorCode::FunctionFailed, error).await,
            Act::Crash => Err("the worker process died".into()),
            Act::InfraError(error) => {
                let recorded = error.clone();
                let _ = self
                    .update(&blob, |record| {
                        record.last_attempt_error = Some(recorded.clone());
                        true
                    })
                    .await;
                Err(error)
            }
        }
    }

    /// A message without a record was not queued by the handler: record it as failed, never run it.
    async fn record_orphan(&self, message: &JobMessage) -> Result<(), String> {
        let mut record = JobRecord::queued(message, OffsetDateTime::now_utc());
        finish(
            &mut record,
            JobState::Failed,
            ErrorCode::InvalidMessage,
            "the message has no job record; it was not queued by the handler",
        );
        match self
            .blobs
            .create(&contract::record_blob(&message.job_id), &record)
            .await
        {
            Ok(_) | Err(StorageError::AlreadyExists { .. }) => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// Final states are never left; succeeded carries no error.
fn finish(record: &mut JobRecord, state: JobState, code: ErrorCode, message: &str) -> bool {
    if record.state.is_final() {
        return false;
    }
    record.state = state;
    record.finished = Some(OffsetDateTime::now_utc());
    record.error = (state != JobState::Succeeded).then(|| JobError {
        code,
        message: message.to_owned(),
    });
    true
}
