//! MCP tasks (the `io.modelcontextprotocol/tasks` extension, as rmcp 3.11 implements it): a
//! client that declares the extension gets a task for a tool call whose durable operation goes
//! on after the call, and follows it with `tasks/get` and `tasks/cancel`. A task is the job
//! record itself (its id is the task id), so any instance answers for any task, and a client
//! without tasks follows the same record with `job_get`.

use rmcp::model::{
    CallToolResponse, CreateTaskResult, DetailedTask, Task, TaskPayload, TaskStatus,
};
use serde_json::{Map, Value, json};

use super::catalogue::structured;
use super::tool::{Summary, Tier};
use crate::auth::Caller;
use crate::jobs::{JobRecord, JobState, JobView, ResultView, timestamp};

/// How often a client should look again.
const POLL_INTERVAL_MS: u64 = 2_000;

/// The operation a tool answer says is still running, if any: `operation_id` and
/// `operation_state: "running"` at the top of the answer (bulk device actions) or in its
/// `operation` (an Azure operation being followed).
pub fn running_operation(response: &CallToolResponse) -> Option<String> {
    let CallToolResponse::Complete(result) = response else {
        return None;
    };
    let structured = result.structured_content.as_ref()?;
    [Some(structured), structured.get("operation")]
        .into_iter()
        .flatten()
        .find(|answer| {
            answer
                .get("operation_state")
                .is_some_and(|state| state == "running")
        })
        .and_then(|answer| answer.get("operation_id")?.as_str().map(str::to_owned))
}

pub fn task(record: &JobRecord) -> Task {
    let status = match record.state {
        JobState::Queued | JobState::Running => TaskStatus::Working,
        JobState::Succeeded => TaskStatus::Completed,
        JobState::Cancelled => TaskStatus::Cancelled,
        JobState::Failed | JobState::DeadLettered => TaskStatus::Failed,
    };
    let view = JobView::new(record, ResultView::None);
    Task::new(
        record.job_id.to_string(),
        status,
        timestamp(record.created),
        timestamp(record.updated),
    )
    .with_poll_interval_ms(POLL_INTERVAL_MS)
    .with_status_message(view.summary())
}

pub fn created(record: &JobRecord) -> CallToolResponse {
    CallToolResponse::Task(CreateTaskResult::new(task(record)))
}

/// The task with its outcome: a finished one carries the job as `job_get` shows it, with the
/// job's result (a PowerShell function's output) when it has one.
pub fn detailed(record: &JobRecord, result: ResultView) -> DetailedTask {
    let task = task(record);
    let view = JobView::new(record, result).with_targets(record);
    let payload = match record.state {
        JobState::Queued | JobState::Running => TaskPayload::Working,
        JobState::Cancelled => TaskPayload::Cancelled,
        JobState::Succeeded => {
            let result = structured(
                view.summary(),
                serde_json::to_value(&view).unwrap_or(Value::Null),
            );
            TaskPayload::Completed {
                result: object(serde_json::to_value(result).unwrap_or(Value::Null)),
            }
        }
        JobState::Failed | JobState::DeadLettered => TaskPayload::Failed {
            error: object(json!({
                "code": -32603,
                "message": view.summary(),
                "data": serde_json::to_value(&view).unwrap_or(Value::Null),
            })),
        },
    };
    DetailedTask::new(task, payload)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Tasks are bound to who started them: another caller (short of an Admin) is told there is no
/// such task, as for an unknown id.
pub fn visible_to(record: &JobRecord, caller: &Caller) -> bool {
    record.caller == caller.to_string() || caller.tier == Some(Tier::Admin)
}

/// The text channel's line for a job (a `job_get` answer, a `ps_` call's, a task's status):
/// what it is, how far it got, and how to follow it. The MCP surface owns it because tasks
/// show it too.
impl Summary for JobView {
    fn summary(&self) -> String {
        let mut head = format!(
            "job {} ({} in tenant {})",
            self.job_id, self.function, self.tenant_id
        );
        if let Some(p) = &self.progress {
            head.push_str(&format!(
                " [{} targets: {} done, {}{} already pending, {} failed, {} unconfirmed, {} not sent yet]",
                p.total,
                p.done,
                if p.running > 0 {
                    format!("{} still running at the service, ", p.running)
                } else {
                    String::new()
                },
                p.already_pending,
                p.failed,
                p.unconfirmed,
                p.not_started
            ));
        }
        match self.state {
            JobState::Queued => {
                format!("{head} is queued; follow it with job_get (job_id, wait_seconds)")
            }
            JobState::Running if self.cancel_requested.is_some() => {
                format!(
                    "{head} is running (attempt {}); cancellation was requested, so it will not be retried",
                    self.attempts
                )
            }
            JobState::Running => format!(
                "{head} is running (attempt {}); follow it with job_get (job_id, wait_seconds)",
                self.attempts
            ),
            JobState::Succeeded => match &self.progress {
                Some(p) if p.failed + p.unconfirmed > 0 => format!(
                    "{head} ended with every target's outcome recorded; {} failed or unconfirmed (targets says why)",
                    p.failed + p.unconfirmed
                ),
                _ => format!("{head} succeeded"),
            },
            _ => {
                let why = self
                    .error
                    .as_ref()
                    .map(|e| format!(": {}", e.message))
                    .unwrap_or_default();
                format!("{head} {}{why}", self.state.name())
            }
        }
    }
}
