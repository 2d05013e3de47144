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

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::jobs::NewJob;
    use crate::jobs::contract::ResultRef;
    use crate::jobs::operation::{Operation, TargetRecord, TargetState};
    use crate::testing::Harness;

    #[test]
    fn the_wait_is_bounded_by_what_clients_tolerate() {
        assert_eq!(wait(None, 20).expect("default"), Duration::from_secs(20));
        assert_eq!(wait(Some(0), 20).expect("no wait"), Duration::ZERO);
        assert_eq!(
            wait(Some(MAX_WAIT_SECONDS), 20).expect("longest"),
            Duration::from_secs(60)
        );
        let message = wait(Some(61), 20).expect_err("too long").to_string();
        assert!(
            message.contains("between 0 and 60, got 61") && message.contains("job_get"),
            "{message}"
        );
    }

    /// A queued PowerShell job, as the record the worker would later finish.
    async fn record(harness: &Harness) -> JobRecord {
        harness
            .context
            .services
            .jobs
            .submit_powershell(NewJob {
                function: "Get-MailboxAuditLog".to_owned(),
                parameters: Map::new(),
                tenant_id: harness.contoso().parse().expect("tenant id"),
                caller: "local".to_owned(),
                retry_interrupted: false,
            })
            .await
            .expect("queued")
    }

    /// `record` finished with `result` stored where the worker stores it.
    async fn finished(harness: &Harness, result: &serde_json::Value, bytes: u64) -> JobRecord {
        let mut record = record(harness).await;
        let blob = format!("results/{}.json", record.job_id);
        harness
            .context
            .services
            .jobs
            .blobs()
            .create(&blob, result)
            .await
            .expect("stored");
        record.state = JobState::Succeeded;
        record.result = Some(ResultRef { blob, bytes });
        record
    }

    #[tokio::test]
    async fn a_small_result_is_shown_inline_only_when_asked_for_and_the_job_succeeded() {
        let harness = Harness::start().await;
        let result = json!([{"Operation": "MailboxLogin", "Count": 3}]);
        let record = finished(&harness, &result, 42).await;
        let shown = view(&harness.context, &record, true).await.expect("a view");
        assert_eq!(shown.result, Some(result));
        assert_eq!(shown.result_note, None);
        let without = view(&harness.context, &record, false)
            .await
            .expect("a view");
        assert_eq!(without.result, None);

        let mut failed = record.clone();
        failed.state = JobState::Failed;
        let shown = view(&harness.context, &failed, true).await.expect("a view");
        assert_eq!(
            (shown.result, shown.result_note),
            (None, None),
            "no result of a job that did not succeed"
        );
    }

    #[tokio::test]
    async fn a_result_too_large_to_hand_back_is_named_by_its_blob() {
        let harness = Harness::start().await;
        let record = finished(&harness, &json!(["…"]), MAX_INLINE_RESULT_BYTES + 1).await;
        let shown = view(&harness.context, &record, true).await.expect("a view");
        assert_eq!(shown.result, None);
        let note = shown.result_note.expect("why there is no result");
        let blob = &record.result.as_ref().expect("a result").blob;
        assert!(
            note.contains(&format!("{} bytes", MAX_INLINE_RESULT_BYTES + 1)) && note.contains(blob),
            "{note}"
        );
    }

    #[tokio::test]
    async fn an_operations_targets_are_shown_only_with_the_result() {
        let harness = Harness::start().await;
        let mut record = record(&harness).await;
        let mut failed = TargetRecord::new("machine-b".into(), None);
        failed.state = TargetState::Failed;
        let mut done = TargetRecord::new("machine-a".into(), None);
        done.state = TargetState::Done;
        record.operation = Some(Operation {
            options: Map::new(),
            comment: "INC-4711".into(),
            targets: vec![done, failed],
            lease: None,
        });
        record.state = JobState::Running;
        let listed = view(&harness.context, &record, false)
            .await
            .expect("a view");
        assert!(listed.targets.is_none());
        let shown = view(&harness.context, &record, true).await.expect("a view");
        let ids: Vec<String> = shown
            .targets
            .expect("targets")
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(
            ids,
            ["machine-b", "machine-a"],
            "those needing attention first"
        );
    }
}
