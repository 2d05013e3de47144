//! `function-operations`, the queue trigger on `%OPS_QUEUE%`: continues an operation its tool
//! call handed over; and `function-operations-poison`, on `%OPS_QUEUE%-poison`, where the host
//! moves a message it failed `maxDequeueCount` times: the operation is then given up as
//! `dead_lettered`, with its unsent targets left unsent.
//!
//! A message only names an operation; the record says everything else. A message for an
//! operation that is final, or that another worker finished, is done with at once; one whose
//! operation is held by a live worker waits for that lease (the worker either finishes or stops
//! renewing it) and then continues. One invocation works for `JobsConfig::operation_slice`
//! (under host.json's `functionTimeout`), then puts the operation back on the queue.

use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{OperationMessage, Operations, RunEnd};
use crate::host::{FunctionHandler, InvocationOutcome, InvocationRequest, InvocationResponse};
use crate::jobs::{ErrorCode, JobError, JobState};

pub const FUNCTION_NAME: &str = "function-operations";
pub const POISON_FUNCTION_NAME: &str = "function-operations-poison";
/// The queue trigger binding's `name` in both function.json files.
const MESSAGE_BINDING: &str = "message";

pub struct OperationsFunction {
    operations: Arc<Operations>,
}

impl OperationsFunction {
    pub fn new(operations: Arc<Operations>) -> Self {
        Self { operations }
    }
}

pub struct OperationsPoisonFunction {
    operations: Arc<Operations>,
}

impl OperationsPoisonFunction {
    pub fn new(operations: Arc<Operations>) -> Self {
        Self { operations }
    }
}

fn message(request: &InvocationRequest) -> Result<OperationMessage, String> {
    let value = request.queue_message(MESSAGE_BINDING)?;
    serde_json::from_value(value).map_err(|error| {
        format!("the message is not an operation message, {{\"job_id\": \"<uuid>\"}} ({error})")
    })
}

fn outcome(succeeded: bool, log: String, value: Value) -> InvocationOutcome {
    if succeeded {
        tracing::info!("{log}");
    } else {
        tracing::error!("{log}");
    }
    InvocationOutcome {
        response: InvocationResponse {
            logs: vec![log],
            return_value: value,
            ..Default::default()
        },
        succeeded,
    }
}

#[async_trait::async_trait]
impl FunctionHandler for OperationsFunction {
    async fn invoke(&self, request: InvocationRequest) -> InvocationOutcome {
        let message = match message(&request) {
            Ok(message) => message,
            Err(reason) => {
                return outcome(
                    false,
                    format!(
                        "{FUNCTION_NAME}: the message is refused: {reason}; the host keeps it (finally in the poison queue)"
                    ),
                    Value::Null,
                );
            }
        };
        let id = message.job_id;
        // One invocation works for a slice under the host's functionTimeout, then hands the
        // rest to a new message, so the host never stops it mid-batch.
        let stop_after = std::time::Instant::now() + self.operations.slice();
        loop {
            match self.operations.run(&id, Some(stop_after)).await {
                Ok(RunEnd::Held(until)) => {
                    // A live worker holds it: wait for its lease, then look again.
                    let wait = (until - OffsetDateTime::now_utc()).clamp(
                        time::Duration::milliseconds(200),
                        time::Duration::seconds(30),
                    );
                    tokio::time::sleep(wait.unsigned_abs()).await;
                }
                Ok(RunEnd::Released) => {
                    // Released at a batch boundary: nothing is in flight. If the new message
                    // cannot be sent, failing makes the host deliver this one again.
                    return match self.operations.continue_later(&id).await {
                        Ok(()) => outcome(
                            true,
                            format!(
                                "{FUNCTION_NAME}: operation {id}: continues in a new message after this invocation's slice"
                            ),
                            json!({ "job_id": id, "state": "running" }),
                        ),
                        Err(error) => outcome(
                            false,
                            format!(
                                "{FUNCTION_NAME}: operation {id}: {error}; the host delivers this message again"
                            ),
                            Value::Null,
                        ),
                    };
                }
                Ok(end) => {
                    let state = match &end {
                        RunEnd::Final(record) => record.state.name(),
                        _ => "left to another worker",
                    };
                    return outcome(
                        true,
                        format!("{FUNCTION_NAME}: operation {id}: {state}"),
                        json!({ "job_id": id, "state": state }),
                    );
                }
                // Failing the invocation makes the host deliver the message again (the record
                // keeps every outcome so far, so nothing is sent twice).
                Err(error) => {
                    return outcome(
                        false,
                        format!(
                            "{FUNCTION_NAME}: operation {id} stopped: {error}; the host delivers it again"
                        ),
                        Value::Null,
                    );
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl FunctionHandler for OperationsPoisonFunction {
    async fn invoke(&self, request: InvocationRequest) -> InvocationOutcome {
        let message = match message(&request) {
            Ok(message) => message,
            Err(reason) => {
                return outcome(
                    false,
                    format!("{POISON_FUNCTION_NAME}: the message is refused: {reason}"),
                    Value::Null,
                );
            }
        };
        let id = message.job_id;
        let queue = self
            .operations
            .queue_name()
            .unwrap_or("the operations queue")
            .to_owned();
        let result = self
            .operations
            .jobs
            .update_operation(&id, |record| {
                let Some(operation) = record.operation.as_mut() else {
                    return false;
                };
                if record.state.is_final() {
                    return false;
                }
                let open = operation.targets.iter().filter(|t| t.state.is_open()).count();
                for target in &mut operation.targets {
                    if target.state == crate::jobs::operation::TargetState::Sending {
                        target.state = crate::jobs::operation::TargetState::Unconfirmed;
                    }
                }
                operation.lease = None;
                record.state = JobState::DeadLettered;
                record.finished = Some(OffsetDateTime::now_utc());
                record.error = Some(JobError {
                    code: ErrorCode::DeadLettered,
                    message: format!(
                        "the Functions host gave up on this operation after the maximum number of deliveries on {queue} \
                         ({}); {open} targets were not sent (or are unconfirmed) and will not be",
                        record.last_attempt_error.as_deref().unwrap_or("no error was recorded")
                    ),
                });
                true
            })
            .await;
        match result {
            Ok(record) => outcome(
                true,
                format!(
                    "{POISON_FUNCTION_NAME}: operation {id} is {}",
                    record.state.name()
                ),
                json!({ "job_id": id, "state": record.state }),
            ),
            Err(error) => outcome(
                false,
                format!(
                    "{POISON_FUNCTION_NAME}: operation {id} could not be marked dead-lettered: {error}"
                ),
                Value::Null,
            ),
        }
    }
}
