//! `function-jobs-poison`: the queue trigger on `<PS_JOBS_QUEUE>-poison`, where the Functions
//! host moves a job message after the PowerShell app failed it `maxDequeueCount` times.
//!
//! Why a queue trigger and not a sweep on the timer: the host delivers each poison message
//! within its polling interval (seconds), retries this function by itself if storage hiccups,
//! and scales it with the queue; a sweep would add up to a schedule's worth of delay, need its
//! own receive/delete/lease logic, and duplicate what the host already does well.
//!
//! A message that is not a job message is refused (non-2xx): the host then keeps it, in the end
//! in `<queue>-poison-poison`, so nothing is lost and the log says why. Anyone holding the
//! storage key can write to the queue, so a message is believed only when it follows the
//! contract, names a tenant on the allow-list and, when its job has a record, the same tenant.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{JobMessage, Jobs, JobsError};
use crate::host::{FunctionHandler, InvocationOutcome, InvocationRequest, InvocationResponse};
use crate::tenants::TenantRegistry;

pub const FUNCTION_NAME: &str = "function-jobs-poison";
/// The queue trigger binding's `name` in function-jobs-poison/function.json.
const MESSAGE_BINDING: &str = "message";

pub struct PoisonHandler {
    jobs: Arc<Jobs>,
    tenants: TenantRegistry,
}

impl PoisonHandler {
    pub fn new(jobs: Arc<Jobs>, tenants: TenantRegistry) -> Self {
        Self { jobs, tenants }
    }
}

impl PoisonHandler {
    /// A well-formed message is still only believed for a tenant this server serves, and for the
    /// tenant its job was made in.
    async fn believable(&self, message: &JobMessage) -> Result<(), String> {
        let known = self
            .tenants
            .all()
            .iter()
            .any(|tenant| tenant.tenant_id == message.tenant_id);
        if !known {
            return Err(format!(
                "tenant {} is not on this server's allow-list (TENANTS)",
                message.tenant_id
            ));
        }
        match self.jobs.get(&message.job_id).await {
            Ok(record) if record.tenant_id != message.tenant_id => Err(format!(
                "the job was made for tenant {}, the message names tenant {}",
                record.tenant_id, message.tenant_id
            )),
            Ok(_) | Err(JobsError::NotFound(_)) => Ok(()),
            Err(error) => Err(format!("the job record could not be read ({error})")),
        }
    }
}

fn failed(log: String) -> InvocationOutcome {
    tracing::error!("{log}");
    InvocationOutcome {
        response: InvocationResponse {
            logs: vec![log],
            ..Default::default()
        },
        succeeded: false,
    }
}

/// The job message in a poison-queue invocation. The host JSON-encodes the message text once
/// more than it was sent, so after the generic unwrapping it may still be JSON text.
fn job_message(request: &InvocationRequest) -> Result<JobMessage, String> {
    let value = request.queue_message(MESSAGE_BINDING)?;
    let message: JobMessage = serde_json::from_value(value)
        .map_err(|error| format!("the message is not a version 1 job message ({error})"))?;
    message
        .check()
        .map_err(|reason| format!("the message breaks the job message contract: {reason}"))?;
    Ok(message)
}

#[async_trait::async_trait]
impl FunctionHandler for PoisonHandler {
    async fn invoke(&self, request: InvocationRequest) -> InvocationOutcome {
        let jobs = &self.jobs;
        let message = match job_message(&request) {
            Ok(message) => message,
            Err(reason) => {
                return failed(format!(
                    "{FUNCTION_NAME}: a message in {} cannot be turned into a job outcome: {reason}; it is left to the host, \
                     which keeps it (finally in {}-poison)",
                    jobs.poison_queue(),
                    jobs.poison_queue()
                ));
            }
        };
        if let Err(reason) = self.believable(&message).await {
            return failed(format!(
                "{FUNCTION_NAME}: a message in {} for job {} is refused: {reason}; it is left to the host, which keeps it \
                 (finally in {}-poison)",
                jobs.poison_queue(),
                message.job_id,
                jobs.poison_queue()
            ));
        }
        let delivery = request
            .metadata
            .get("DequeueCount")
            .cloned()
            .unwrap_or(Value::Null);
        match jobs.dead_letter(&message).await {
            Ok(record) => {
                let detail = record
                    .error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or("already final before the message was dead-lettered");
                let log = format!(
                    "{FUNCTION_NAME}: job {} ({}) is {}: {detail}",
                    record.job_id,
                    record.function,
                    record.state.name()
                );
                tracing::warn!(job = %record.job_id, state = record.state.name(), poison_delivery = %delivery, "{log}");
                InvocationOutcome {
                    response: InvocationResponse {
                        logs: vec![log],
                        return_value: json!({ "job_id": record.job_id, "state": record.state }),
                        ..Default::default()
                    },
                    succeeded: true,
                }
            }
            // Failing the invocation makes the host deliver the poison message again.
            Err(error) => failed(format!(
                "{FUNCTION_NAME}: job {} could not be marked dead-lettered: {error}",
                message.job_id
            )),
        }
    }
}
