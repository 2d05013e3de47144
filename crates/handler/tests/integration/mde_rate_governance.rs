//! Rate governance end to end: bulk actions pace themselves under Defender's per-tenant limits
//! (enforced by the sandbox) instead of storming into 429s, and a call that would have to wait
//! too long returns what it did not reach.
//!
//! Both clocks are sped up alike: the sandbox's "minute" and "hour" windows and the handler's
//! limiter windows are divided by the same factor, so minutes of pacing take seconds.

use crate::common;

use std::time::Duration;

use common::*;
use handler::outbound::RateLimits;
use sandbox::SandboxOptions;
use serde_json::{Value, json};

/// The tenant's hourly cap on destructive targets is shared by every test of the run (one
/// storage account, one tenant id); these tests are about pacing, not that cap.
const UNCAPPED: (&str, &str) = ("DESTRUCTIVE_MAX_TARGETS_PER_TENANT_HOUR", "100000");

/// Sandbox options with Defender's limits over windows `divisor` times shorter.
fn paced_sandbox(per_minute: u32, divisor: u32, extra_workstations: usize) -> SandboxOptions {
    SandboxOptions {
        rate_limit_per_minute: per_minute,
        rate_limit_per_hour: 1500,
        rate_limit_minute: Duration::from_secs(60) / divisor,
        rate_limit_hour: Duration::from_secs(3600) / divisor,
        extra_workstations,
        ..fast_sandbox_options()
    }
}

/// Follows an operation with job_get until it is final; returns the final job view.
async fn operation_outcome(client: &McpClient, output: &Value) -> Value {
    let id = output["operation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the answer names its operation: {output}"))
        .to_owned();
    for _ in 0..12 {
        let job = ok(&call(client, "job_get", json!({"job_id": id, "wait_seconds": 10})).await);
        if job["state"] != "running" {
            return job;
        }
    }
    panic!("operation {id} did not finish within two minutes");
}

#[tokio::test]
async fn isolating_500_devices_answers_at_once_and_finishes_in_the_background_with_no_429() {
    // 100 calls a (one-second) minute and 1,500 a (one-minute) hour, as Microsoft documents.
    let app = TestApp::start_tuned(paced_sandbox(100, 60, 500), &[UNCAPPED], |config| {
        config.outbound.rate_limits = RateLimits::documented(100, 1500).with_periods_divided_by(60);
    })
    .await;
    let client = app.client().await;
    let started = std::time::Instant::now();
    let output = ok(&call_confirmed(
        &client,
        "mde_isolate_machines",
        json!({
            "tenant_id": CONTOSO,
            "filter": "startswith(computerDnsName,'ws-fleet-')",
            "max_devices": 500,
            "isolation_type": "Full",
            "comment": "INC-500 worm outbreak"
        }),
    )
    .await);
    // The answer comes after the inline run (OPS_INLINE_SECONDS, 5 s), planning and approval
    // included; a generous margin, not a benchmark.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered in {:?}",
        started.elapsed()
    );
    assert_eq!(output["operation_state"], "running", "{}", output["notes"]);
    assert!(
        output["notes"].to_string().contains("job_get"),
        "the answer says how to follow it: {}",
        output["notes"]
    );
    let job = operation_outcome(&client, &output).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["progress"]["total"], 500, "{}", job["progress"]);
    assert_eq!(job["progress"]["done"], 500, "{}", job["progress"]);
    let stats = app.sandbox.stats();
    assert_eq!(
        stats.throttled, 0,
        "the sandbox never had to throttle: {stats:?}"
    );
    // Well over the per-minute limit went out: the pacing, not luck, kept it under; and each
    // device was sent exactly one action.
    assert_eq!(
        stats.count("POST", "/defender/api/machines/{id}/{sub}"),
        500
    );
    let fleet = machine_ids(
        &client,
        CONTOSO,
        "startswith(computerDnsName,'ws-fleet-')",
        500,
    )
    .await;
    let isolated = fleet
        .iter()
        .filter(|id| {
            app.sandbox
                .machine_state(CONTOSO, id)
                .and_then(|s| s.isolation)
                .as_deref()
                == Some("Full")
        })
        .count();
    assert_eq!(isolated, 500, "every device is isolated");
}

#[tokio::test]
async fn without_pacing_the_same_burst_is_throttled() {
    // The control for the test above: a limiter that allows everything lets the burst reach the
    // sandbox's limits, which answer 429.
    let app = TestApp::start_tuned(paced_sandbox(100, 60, 150), &[], |config| {
        config.outbound.rate_limits = RateLimits::documented(1_000_000, 1_000_000);
    })
    .await;
    let client = app.client().await;
    ok(&call_confirmed(
        &client,
        "mde_run_antivirus_scan",
        json!({"tenant_id": CONTOSO, "filter": "startswith(computerDnsName,'ws-fleet-')", "max_devices": 150, "comment": "sweep"}),
    )
    .await);
    assert!(
        app.sandbox.stats().throttled > 0,
        "an unpaced burst of 150 calls exceeds 100 a minute"
    );
}

#[tokio::test]
async fn devices_beyond_the_call_s_budget_are_sent_by_the_operation_after_it_answers() {
    // 20 calls a (five-second) minute, and a call may wait at most one second for a slot.
    let app = TestApp::start_tuned(
        paced_sandbox(20, 12, 0),
        &[
            ("OUTBOUND_MAX_PACING_SECONDS", "1"),
            ("OPS_INLINE_SECONDS", "1"),
        ],
        |config| {
            config.outbound.rate_limits =
                RateLimits::documented(20, 1500).with_periods_divided_by(12);
        },
    )
    .await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, "onboardingStatus eq 'Onboarded'", 30).await;
    let first = ok(&call_confirmed(
        &client,
        "mde_run_antivirus_scan",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "sweep"}),
    )
    .await);
    let waiting = first["counts"]["not_started"].as_u64().expect("count")
        + first["counts"]["sending"].as_u64().expect("count");
    assert!(
        waiting > 0,
        "20 calls a minute cannot cover 30 devices in one second: {first}"
    );
    assert_eq!(first["operation_state"], "running", "{first}");
    assert!(
        first["remaining_machine_ids"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "nothing is left to the caller while the operation runs: {first}"
    );

    // While the window is full, a single read says why it is held back instead of drawing a 429.
    let message = err(&call_confirmed(
        &client,
        "mde_get_machine",
        json!({"tenant_id": CONTOSO, "machine_id": ids[0]}),
    )
    .await);
    assert!(
        message.contains("held back to stay under Microsoft's rate limit"),
        "{message}"
    );

    // The operation sends the rest as the windows move on.
    let job = operation_outcome(&client, &first).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["progress"]["done"], 30, "{}", job["progress"]);
    assert_eq!(app.sandbox.stats().throttled, 0);
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/machines/{id}/{sub}"),
        30,
        "one scan per device"
    );
}

#[tokio::test]
async fn a_task_aware_client_gets_the_500_device_isolation_as_a_task() {
    use rmcp::model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, GetTaskParams, TaskPayload,
        TaskStatus,
    };

    let app = TestApp::start_tuned(paced_sandbox(100, 60, 500), &[UNCAPPED], |config| {
        config.outbound.rate_limits = RateLimits::documented(100, 1500).with_periods_divided_by(60);
    })
    .await;
    let client = connect_with_tasks(&app.mcp_url()).await;
    let arguments = json!({
        "tenant_id": CONTOSO,
        "filter": "startswith(computerDnsName,'ws-fleet-')",
        "max_devices": 500,
        "isolation_type": "Full",
        "comment": "INC-501 as a task"
    });
    // A person approves on the page first, as for any client.
    let asked = call(&client, "mde_isolate_machines", arguments.clone()).await;
    let (approval, url) = approval_page(&text(&asked))
        .unwrap_or_else(|| panic!("an approval page: {}", text(&asked)));
    let (status, page) = decide_on_page(&url, "approve", &[]).await;
    assert_eq!(status, 200, "{page}");
    let mut approved = arguments;
    approved["approval_id"] = json!(approval);
    let Value::Object(approved) = approved else {
        unreachable!()
    };
    let started = std::time::Instant::now();
    let response = client
        .call_tool_once(CallToolRequestParams::new("mde_isolate_machines").with_arguments(approved))
        .await
        .expect("the call is answered");
    assert!(started.elapsed() < Duration::from_secs(20));
    let CallToolResponse::Task(created) = response else {
        panic!("a task-aware client gets a task: {response:?}");
    };
    assert_eq!(created.task.status, TaskStatus::Working);
    let id = created.task.task_id.clone();

    // An unknown task is refused as the spec says; a finished one carries the outcome.
    let unknown = client
        .get_task(GetTaskParams::new("01a24200-0000-7000-8000-000000000000"))
        .await
        .expect_err("unknown task");
    assert!(unknown.to_string().contains("no task"), "{unknown}");
    let done = finished_task(&client, &id, 120).await;
    let TaskPayload::Completed { result } = &done.payload else {
        panic!("completed: {done:?}");
    };
    let job = &result["structuredContent"];
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["progress"]["done"], 500, "{}", job["progress"]);
    assert_eq!(app.sandbox.stats().throttled, 0);
    // The same record answers job_get for clients without tasks, and a finished task cannot be
    // cancelled.
    let view = ok(&call(
        &client,
        "job_get",
        json!({"job_id": id, "include_result": false}),
    )
    .await);
    assert_eq!(view["state"], "succeeded");
    let refused = client
        .cancel_task(CancelTaskParams::new(id))
        .await
        .expect_err("already ended");
    assert!(refused.to_string().contains("already ended"), "{refused}");
}

#[tokio::test]
async fn a_cancelled_operation_stops_before_its_next_batch_and_never_sends_the_rest() {
    // 20 calls a (five-second) minute: 30 devices take a few windows.
    let app = TestApp::start_tuned(
        paced_sandbox(20, 12, 0),
        &[("OPS_INLINE_SECONDS", "1")],
        |config| {
            config.outbound.rate_limits =
                RateLimits::documented(20, 1500).with_periods_divided_by(12);
        },
    )
    .await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, "onboardingStatus eq 'Onboarded'", 30).await;
    let started = ok(&call_confirmed(
        &client,
        "mde_run_antivirus_scan",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "sweep, then stop"}),
    )
    .await);
    assert_eq!(started["operation_state"], "running", "{started}");
    let id = started["operation_id"].as_str().expect("operation id");
    let cancelled = ok(&call(&client, "job_cancel", json!({"job_id": id})).await);
    assert_eq!(cancelled["outcome"], "cancel_requested", "{cancelled}");
    let job = operation_outcome(&client, &started).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    let progress = &job["progress"];
    let not_sent = progress["not_started"].as_u64().expect("count");
    assert!(not_sent > 0, "{progress}");
    let sent = progress["done"].as_u64().expect("count")
        + progress["already_pending"].as_u64().expect("count")
        + progress["failed"].as_u64().expect("count");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/machines/{id}/{sub}"),
        sent,
        "nothing was sent after the cancellation took effect"
    );
}
