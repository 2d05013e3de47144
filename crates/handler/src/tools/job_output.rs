//! What every tool that starts or follows a job shares: the bounded wait and the job as shown
//! to the caller (with its result inline when it is small enough).

use std::time::Duration;

use crate::jobs::{JobRecord, JobState, JobView, MAX_INLINE_RESULT_BYTES, ResultView};
use crate::mcp::{ToolContext, ToolError};

/// A tool call may wait this long for a job; MCP clients time out not much later.
pub const MAX_WAIT_SECONDS: u32 = 60;

pub fn wait(seconds: Option<u32>, default: u32) -> Result<Duration, ToolError> {
    let seconds = seconds.unwrap_or(default);
    if seconds > MAX_WAIT_SECONDS {
        return Err(ToolError::invalid(format!(
            "wait_seconds must be between 0 and {MAX_WAIT_SECONDS}, got {seconds}; for longer jobs call job_get again with the job_id"
        )));
    }
    Ok(Duration::from_secs(seconds.into()))
}

pub async fn view(
    context: &ToolContext,
    record: &JobRecord,
    include_result: bool,
) -> Result<JobView, ToolError> {
    let result = if include_result && record.state == JobState::Succeeded {
        context
            .services
            .jobs
            .result(record, MAX_INLINE_RESULT_BYTES)
            .await?
    } else {
        ResultView::None
    };
    let view = JobView::new(record, result);
    Ok(if include_result {
        view.with_targets(record)
    } else {
        view
    })
}
