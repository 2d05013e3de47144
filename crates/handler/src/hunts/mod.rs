//! The `function-hunts` timer trigger.
//!
//! Scheduled hunts themselves are not built yet; until they are, every tick says so plainly in
//! the invocation log and reports that no hunt ran, so nobody mistakes a tick for a hunt.

use serde::Deserialize;
use serde_json::json;

use crate::host::{FunctionHandler, InvocationOutcome, InvocationRequest, InvocationResponse};

pub const FUNCTION_NAME: &str = "function-hunts";
/// The timer binding's `name` in function-hunts/function.json.
const TIMER_BINDING: &str = "timer";

/// The host's serialized TimerInfo (PascalCase for non-JavaScript workers).
#[derive(Debug, Deserialize)]
pub struct TimerInfo {
    #[serde(rename = "IsPastDue", default)]
    pub is_past_due: bool,
    #[serde(rename = "ScheduleStatus", default)]
    pub schedule_status: Option<ScheduleStatus>,
}

#[derive(Debug, Deserialize)]
pub struct ScheduleStatus {
    #[serde(rename = "Last")]
    pub last: Option<String>,
    #[serde(rename = "Next")]
    pub next: Option<String>,
}

pub struct HuntTimer;

#[async_trait::async_trait]
impl FunctionHandler for HuntTimer {
    async fn invoke(&self, request: InvocationRequest) -> InvocationOutcome {
        let timer = match request.binding(TIMER_BINDING).map(serde_json::from_value::<TimerInfo>) {
            Some(Ok(timer)) => timer,
            Some(Err(error)) => {
                let log = format!("{FUNCTION_NAME}: the '{TIMER_BINDING}' binding is not a timer payload: {error}");
                tracing::error!("{log}");
                return InvocationOutcome { response: InvocationResponse { logs: vec![log], ..Default::default() }, succeeded: false };
            }
            None => {
                let log = format!("{FUNCTION_NAME}: the invocation has no '{TIMER_BINDING}' binding in Data");
                tracing::error!("{log}");
                return InvocationOutcome { response: InvocationResponse { logs: vec![log], ..Default::default() }, succeeded: false };
            }
        };
        let next = timer.schedule_status.as_ref().and_then(|s| s.next.as_deref()).unwrap_or("unknown");
        let log = format!(
            "{FUNCTION_NAME}: timer fired (past due: {}, next: {next}); scheduled hunts are not implemented in this build, so no hunt ran",
            timer.is_past_due
        );
        tracing::warn!("{log}");
        InvocationOutcome {
            response: InvocationResponse {
                logs: vec![log],
                return_value: json!({ "hunts_run": 0, "reason": "scheduled hunts are not implemented in this build" }),
                ..Default::default()
            },
            succeeded: true,
        }
    }
}
