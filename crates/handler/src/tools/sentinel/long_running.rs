//! Azure's long-running operations (a table created, changed or deleted) as tools report them:
//! a call waits for one up to its `wait_seconds`; one still running then is handed to a durable
//! operation ([`crate::operations`]) that follows it until Azure ends it, so the caller gets an
//! id to follow (`job_get`, or a task) instead of "check again later".

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Map, Value, json};
use url::Url;

use crate::clients::arm::{ArmError, OperationOutcome, OperationPoll, PollState};
use crate::jobs::operation::{TargetRecord, TargetState};
use crate::jobs::{JobKind, JobState};
use crate::mcp::{ToolContext, ToolError};
use crate::operations::TargetAction;
use crate::services::Services;
use crate::tenants::TenantId;

/// How a long-running operation ended, for tool outputs.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct OperationReport {
    /// `Succeeded`, or Azure's last status (`InProgress`, `Accepted`) when the wait ended first.
    pub status: String,
    pub waited_seconds: f64,
    /// When the wait ended first: the operation following it until Azure ends it (job_get).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// That operation's state when the call answered (running).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_state: Option<JobState>,
}

impl OperationReport {
    /// The report of `outcome`. One still running that Azure said where to follow is recorded
    /// as a durable operation of tool `function` (whose [`ArmFollower`] follows it).
    pub async fn of(
        context: &ToolContext,
        function: &str,
        tenant: &TenantId,
        resource: &str,
        outcome: OperationOutcome,
    ) -> Result<Self, ToolError> {
        let (status, waited, poll) = match outcome {
            OperationOutcome::Succeeded { waited } => ("Succeeded".to_owned(), waited, None),
            OperationOutcome::Running {
                waited,
                status,
                poll,
            } => (status, waited, poll),
        };
        let mut report = Self {
            status,
            waited_seconds: round(waited),
            operation_id: None,
            operation_state: None,
        };
        let Some(poll) = poll else {
            return Ok(report);
        };
        let mut target = TargetRecord::new(resource.to_owned(), None);
        target.state = TargetState::Running;
        target.reference = Some(poll.url.to_string());
        target.status = Some(report.status.clone());
        let mut options = Map::new();
        options.insert(POLL.into(), json!(poll_kind(poll.via_location)));
        let record = context
            .services
            .operations
            .follow(
                JobKind::AzureOperation,
                function,
                tenant.clone(),
                &context.caller.to_string(),
                options,
                vec![target],
            )
            .await
            .map_err(|error| ToolError::Storage(error.to_string()))?;
        report.operation_id = Some(record.job_id.to_string());
        report.operation_state = Some(record.state);
        Ok(report)
    }

    pub fn done(&self) -> bool {
        self.status == "Succeeded"
    }

    /// What to do about an operation the wait did not see end; empty when it did.
    pub fn note(&self) -> String {
        match (&self.operation_id, self.done()) {
            (_, true) => String::new(),
            (Some(id), false) => format!(
                " (still running after {} s; operation {id} follows it to its end: job_get)",
                self.waited_seconds
            ),
            (None, false) => format!(
                " (still running after {} s; check again later)",
                self.waited_seconds
            ),
        }
    }
}

/// The option naming how the operation is read: `azure-async-operation` or `location`.
const POLL: &str = "poll";

fn poll_kind(via_location: bool) -> &'static str {
    if via_location {
        "location"
    } else {
        "azure-async-operation"
    }
}

fn round(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10.0).round() / 10.0
}

/// Follows Azure operations for whichever worker runs the operation: each target is one Azure
/// operation (its reference the URL to read); nothing is ever sent.
pub struct ArmFollower {
    /// Weak: the services hold the operations, which hold this.
    services: Weak<Services>,
}

impl ArmFollower {
    pub fn shared(services: &Arc<Services>) -> Arc<dyn TargetAction> {
        Arc::new(Self {
            services: Arc::downgrade(services),
        })
    }
}

#[async_trait::async_trait]
impl TargetAction for ArmFollower {
    async fn follow(
        &self,
        tenant: &TenantId,
        options: &Map<String, Value>,
        targets: Vec<TargetRecord>,
    ) -> Vec<TargetRecord> {
        let Some(services) = self.services.upgrade() else {
            return targets;
        };
        let via_location = options.get(POLL).and_then(Value::as_str) == Some(poll_kind(true));
        let mut followed = Vec::with_capacity(targets.len());
        for mut target in targets {
            let Some(url) = target
                .reference
                .as_deref()
                .and_then(|url| Url::parse(url).ok())
            else {
                target.state = TargetState::Failed;
                target.detail = Some("the operation's URL was not recorded".into());
                followed.push(target);
                continue;
            };
            let poll = OperationPoll { url, via_location };
            match services.arm.poll_operation(tenant, &poll, &target.id).await {
                Ok(PollState::Succeeded) => {
                    target.state = TargetState::Done;
                    target.status = Some("Succeeded".into());
                    target.detail = None;
                }
                Ok(PollState::Running { status, next, .. }) => {
                    target.status = Some(status);
                    target.reference = Some(next.url.to_string());
                }
                Err(error @ ArmError::OperationFailed { .. }) => {
                    if let ArmError::OperationFailed { status, .. } = &error {
                        target.status = Some(status.clone());
                    }
                    target.state = TargetState::Failed;
                    target.detail = Some(error.to_string());
                }
                Err(ArmError::Api(error)) if error.is_not_found() => {
                    target.state = TargetState::Failed;
                    target.detail = Some(format!(
                        "Azure no longer knows this operation ({error}); read the resource to see where it stands"
                    ));
                }
                // Read again next round (throttled, a network error): reading is always safe.
                Err(error) => target.detail = Some(format!("last read failed: {error}")),
            }
            followed.push(target);
        }
        followed
    }
}
