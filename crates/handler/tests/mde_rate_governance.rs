//! Rate governance end to end: bulk actions pace themselves under Defender's per-tenant limits
//! (enforced by the sandbox) instead of storming into 429s, and a call that would have to wait
//! too long returns what it did not reach.
//!
//! Both clocks are sped up alike: the sandbox's "minute" and "hour" windows and the handler's
//! limiter windows are divided by the same factor, so minutes of pacing take seconds.

mod common;

use std::time::Duration;

use common::*;
use handler::outbound::RateLimits;
use sandbox::SandboxOptions;
use serde_json::{Value, json};

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

#[tokio::test]
async fn isolating_500_devices_paces_itself_and_draws_no_429() {
    // 100 calls a (one-second) minute and 1,500 a (one-minute) hour, as Microsoft documents.
    let app = TestApp::start_tuned(paced_sandbox(100, 60, 500), &[], |config| {
        config.outbound.rate_limits = RateLimits::documented(100, 1500).with_periods_divided_by(60);
    })
    .await;
    let client = app.client().await;
    let output = ok(&call_confirmed(
        &client,
        "mde_isolate_machines",
        json!({
            "tenant_id": CONTOSO,
            "filter": "startswith(computerDnsName,'ws-fleet-')",
            "max_devices": 500,
            "isolation_type": "Full",
            "comment": "INC-500 worm outbreak",
            "wait_seconds": 20
        }),
    )
    .await);
    let results = output["results"].as_array().expect("results");
    assert_eq!(results.len(), 500);
    assert_eq!(output["counts"]["done"], 500, "{}", output["notes"]);
    assert!(
        output["remaining_machine_ids"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let stats = app.sandbox.stats();
    assert_eq!(
        stats.throttled, 0,
        "the sandbox never had to throttle: {stats:?}"
    );
    // Well over the per-minute limit went out: the pacing, not luck, kept it under.
    assert_eq!(
        stats.count("POST", "/defender/api/machines/{id}/{sub}"),
        500
    );
    let isolated = results
        .iter()
        .filter(|d| {
            let id = d["machine_id"].as_str().expect("id");
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
async fn devices_beyond_the_pacing_budget_are_returned_to_continue_with() {
    // 20 calls a (five-second) minute, and a call may wait at most one second for a slot.
    let app = TestApp::start_tuned(
        paced_sandbox(20, 12, 0),
        &[("OUTBOUND_MAX_PACING_SECONDS", "1")],
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
    let not_started = first["counts"]["not_started"].as_u64().expect("count");
    assert!(
        not_started > 0,
        "20 calls a minute cannot cover 30 devices in one second: {first}"
    );
    assert_eq!(
        first["counts"]["done"].as_u64().expect("count") + not_started,
        30
    );
    let remaining: Vec<Value> = first["remaining_machine_ids"]
        .as_array()
        .expect("remaining")
        .clone();
    assert_eq!(remaining.len() as u64, not_started);
    let skipped = first["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|d| d["outcome"] == "not_started")
        .expect("one");
    assert!(
        skipped["detail"]
            .as_str()
            .is_some_and(|d| d.contains("rate limit")),
        "{skipped}"
    );
    assert!(
        first["notes"].to_string().contains("remaining_machine_ids"),
        "{first}"
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

    // Once the window has moved on, the rest goes through.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let second = ok(&call_confirmed(
        &client,
        "mde_run_antivirus_scan",
        json!({"tenant_id": CONTOSO, "machine_ids": remaining, "comment": "sweep"}),
    )
    .await);
    assert_eq!(
        second["counts"]["done"].as_u64(),
        Some(not_started),
        "{second}"
    );
    assert_eq!(app.sandbox.stats().throttled, 0);
}
