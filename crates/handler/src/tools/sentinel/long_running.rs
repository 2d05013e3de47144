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

#[cfg(test)]
mod tests {
    use reqwest::Method;

    use super::*;
    use crate::clients::arm::{ArmName, WorkspaceResource};
    use crate::testing::Harness;

    const FUNCTION: &str = "sentinel_create_table";

    fn tenant(harness: &Harness) -> TenantId {
        harness.contoso().parse().expect("a tenant id")
    }

    /// Starts creating a custom table and stops waiting at once: Azure is still at it.
    async fn table_creation_left_running(harness: &Harness, name: &str) -> OperationOutcome {
        let tenant = tenant(harness);
        let services = &harness.context.services;
        let workspace = services
            .tenants
            .resolve(Some(&tenant))
            .expect("allowed")
            .workspaces[0]
            .clone();
        let table: ArmName = name.parse().expect("a table name");
        let columns = json!([{"name": "TimeGenerated", "type": "dateTime"}, {"name": "UserName", "type": "string"}]);
        services
            .arm
            .run_operation(
                &tenant,
                Method::PUT,
                services
                    .arm
                    .workspace_url(&workspace, WorkspaceResource::Table(&table)),
                Some(&json!({"properties": {"schema": {"name": name, "columns": columns}}})),
                name,
                Duration::ZERO,
            )
            .await
            .expect("accepted")
    }

    #[tokio::test]
    async fn an_operation_that_ended_in_the_wait_is_reported_without_one_to_follow() {
        let harness = Harness::start().await;
        let tenant = tenant(&harness);
        let report = OperationReport::of(
            &harness.context,
            FUNCTION,
            &tenant,
            "table A_CL",
            OperationOutcome::Succeeded {
                waited: Duration::from_millis(1249),
            },
        )
        .await
        .expect("a report");
        assert!(report.done());
        assert_eq!(report.waited_seconds, 1.2);
        assert_eq!(report.note(), "");
        assert!(report.operation_id.is_none());
        assert_eq!(
            serde_json::to_value(&report).expect("serializes"),
            json!({"status": "Succeeded", "waited_seconds": 1.2}),
            "no operation fields when there is none"
        );

        // Accepted with nothing to follow it by: the caller is told to look again.
        let report = OperationReport::of(
            &harness.context,
            FUNCTION,
            &tenant,
            "table A_CL",
            OperationOutcome::Running {
                waited: Duration::from_secs(30),
                status: "Accepted".into(),
                poll: None,
            },
        )
        .await
        .expect("a report");
        assert!(!report.done() && report.operation_id.is_none());
        assert_eq!(
            report.note(),
            " (still running after 30 s; check again later)"
        );
    }

    #[tokio::test]
    async fn an_operation_still_running_is_followed_to_its_end_by_a_durable_operation() {
        let harness = Harness::start().await;
        let tenant = tenant(&harness);
        let services = &harness.context.services;
        services
            .operations
            .register(FUNCTION, ArmFollower::shared(services));
        let outcome = table_creation_left_running(&harness, "AppAudit_CL").await;
        let OperationOutcome::Running {
            poll: Some(poll), ..
        } = &outcome
        else {
            panic!("still running with a status to follow: {outcome:?}");
        };
        let poll_url = poll.url.to_string();
        let report = OperationReport::of(
            &harness.context,
            FUNCTION,
            &tenant,
            "table AppAudit_CL",
            outcome,
        )
        .await
        .expect("a report");
        assert!(!report.done());
        let id = report
            .operation_id
            .clone()
            .expect("an operation follows it");
        assert_eq!(report.operation_state, Some(JobState::Running));
        assert!(
            report
                .note()
                .contains(&format!("operation {id} follows it to its end: job_get")),
            "{}",
            report.note()
        );

        let record = services
            .jobs
            .wait(&id.parse().expect("a job id"), Duration::from_secs(30))
            .await
            .expect("the operation");
        assert_eq!(record.state, JobState::Succeeded, "{record:?}");
        assert_eq!(record.function, FUNCTION);
        let operation = record.operation.expect("an operation record");
        assert_eq!(
            operation.options.get(POLL),
            Some(&json!("azure-async-operation"))
        );
        let target = &operation.targets[0];
        assert_eq!(target.id, "table AppAudit_CL");
        assert_eq!(target.state, TargetState::Done, "{target:?}");
        assert_eq!(target.status.as_deref(), Some("Succeeded"));
        assert_eq!(target.reference.as_deref(), Some(poll_url.as_str()));
    }

    #[tokio::test]
    async fn the_follower_fails_an_operation_it_cannot_read_and_waits_on_one_still_running() {
        let harness = Harness::start().await;
        let tenant = tenant(&harness);
        let follower = ArmFollower::shared(&harness.context.services);
        let OperationOutcome::Running {
            poll: Some(poll), ..
        } = table_creation_left_running(&harness, "AppAudit_CL").await
        else {
            panic!("still running");
        };
        let mut options = Map::new();
        options.insert(POLL.into(), json!(poll_kind(false)));
        let target = |reference: Option<String>| {
            let mut target = TargetRecord::new("table AppAudit_CL".into(), None);
            target.state = TargetState::Running;
            target.reference = reference;
            target
        };
        // Azure's operation ids are its own: one it does not know is gone.
        let unknown = {
            let mut url = poll.url.clone();
            let path = url.path().rsplit_once('/').expect("an id").0.to_owned();
            url.set_path(&format!("{path}/00000000-0000-4000-8000-000000000000"));
            url.to_string()
        };
        let followed = follower
            .follow(
                &tenant,
                &options,
                vec![
                    target(None),
                    target(Some(unknown)),
                    target(Some(poll.url.to_string())),
                ],
            )
            .await;
        assert_eq!(followed[0].state, TargetState::Failed);
        assert_eq!(
            followed[0].detail.as_deref(),
            Some("the operation's URL was not recorded")
        );
        assert_eq!(followed[1].state, TargetState::Failed, "{:?}", followed[1]);
        assert!(
            followed[1]
                .detail
                .as_deref()
                .is_some_and(|d| d.starts_with("Azure no longer knows this operation")),
            "{:?}",
            followed[1]
        );
        // Read just after it started: still running, followed again next round.
        assert_eq!(followed[2].state, TargetState::Running, "{:?}", followed[2]);
        assert!(followed[2].status.is_some() && followed[2].detail.is_none());
        assert_eq!(followed[2].reference.as_deref(), Some(poll.url.as_str()));
    }
}
