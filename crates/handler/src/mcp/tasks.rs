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
