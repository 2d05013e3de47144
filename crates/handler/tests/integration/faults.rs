//! A bad day, on purpose: storage stopped and frozen, a failing token endpoint, a slow API. Each
//! test asserts the outcome (no lost audit record, no repeated write, an error that says what
//! happened) and that the answer came within the call's deadline (with generous margins: these
//! are bounds, not benchmarks).

use crate::common;

use std::time::{Duration, Instant};

use common::fault_proxy::{FaultProxy, Mode, blob_endpoint_through};
use common::*;
use sandbox::{Fault, FaultKind};
use serde_json::{Value, json};

/// The call deadline the tests run with, and how late an answer may still count as on time.
const DEADLINE_SECONDS: u64 = 8;
const LATE_MARGIN: Duration = Duration::from_secs(3);

fn on_time(started: Instant, what: &str) {
    let took = started.elapsed();
    assert!(
        took <= Duration::from_secs(DEADLINE_SECONDS) + LATE_MARGIN,
        "{what} answered after {took:?}, past the {DEADLINE_SECONDS} s deadline"
    );
}

fn since() -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::seconds(5))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time")
}

/// A test app whose storage goes through a proxy the test can stop or freeze.
async fn app_behind_proxy() -> (TestApp, FaultProxy) {
    let connection = storage_connection_string();
    let (_, target) = blob_endpoint_through(&connection, 0);
    let proxy = FaultProxy::start(target).await;
    let (through, _) = blob_endpoint_through(&connection, proxy.port);
    let deadline = DEADLINE_SECONDS.to_string();
    let app = TestApp::start_with(
        fast_sandbox_options(),
        &[
            ("AzureWebJobsStorage", through.as_str()),
            ("MCP_CALL_DEADLINE_SECONDS", deadline.as_str()),
        ],
    )
    .await;
    (app, proxy)
}

async fn app_with_deadline() -> TestApp {
    let deadline = DEADLINE_SECONDS.to_string();
    TestApp::start_with(
        fast_sandbox_options(),
        // Work the call hands to a background operation is bounded by the API timeout alone.
        &[
            ("MCP_CALL_DEADLINE_SECONDS", deadline.as_str()),
            ("OUTBOUND_TIMEOUT_SECONDS", "12"),
        ],
    )
    .await
}

async fn health(app: &TestApp) -> Value {
    reqwest::get(format!("{}/api/health", app.base_url))
        .await
        .expect("health")
        .json()
        .await
        .expect("json")
}

async fn records(client: &McpClient, tool: &str, since: &str) -> Vec<Value> {
    let found = ok(&call(
        client,
        "audit_search",
        json!({"tool": tool, "since": since, "fields": ["all"], "limit": 200}),
    )
    .await);
    found["records"].as_array().expect("records").clone()
}

/// A write whose intent cannot be stored is refused within the deadline, saying why.
async fn refused_unrecorded(client: &McpClient, ids: &[String], what: &str) {
    let started = Instant::now();
    let refused = err(&call(
        client,
        "mde_unisolate_machines",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": what}),
    )
    .await);
    on_time(started, what);
    assert!(
        refused.contains("audit trail could not record it"),
        "{what}: {refused}"
    );
}

const ISOLATION_POSTS: &str = "/defender/api/machines/{id}/{sub}";

#[tokio::test]
async fn while_storage_is_stopped_writes_are_refused_and_every_record_is_stored_once_it_is_back() {
    let (app, proxy) = app_behind_proxy().await;
    let client = app.client().await;
    let since = since();
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;

    proxy.set(Mode::Stopped);
    let started = Instant::now();
    let read = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 1}),
    )
    .await);
    assert_eq!(read["machines"].as_array().map(Vec::len), Some(1));
    on_time(started, "a read while storage is stopped");

    refused_unrecorded(&client, &ids, "a write while storage is stopped").await;
    assert_eq!(
        app.sandbox.stats().count("POST", ISOLATION_POSTS),
        0,
        "nothing was sent for a call that could not be recorded"
    );
    let checks = health(&app).await;
    assert_eq!(
        checks["checks"]["audit"]["status"], "waiting_for_storage",
        "{checks}"
    );
    assert!(
        checks["checks"]["audit"]["waiting"].as_u64() >= Some(2),
        "{checks}"
    );

    proxy.set(Mode::Pass);
    let reads = records(&client, "mde_list_machines", &since).await;
    assert!(
        reads
            .iter()
            .any(|r| r["arguments"]["limit"] == json!(1) && r["outcome"] == "ok"),
        "the read made while storage was stopped is in the trail: {reads:?}"
    );
    let writes = records(&client, "mde_unisolate_machines", &since).await;
    assert!(
        writes.iter().any(|r| r["outcome"] == "refused"
            && r["error"]
                .as_str()
                .is_some_and(|e| e.contains("audit trail"))),
        "the refused write is in the trail: {writes:?}"
    );
    assert_eq!(health(&app).await["checks"]["audit"]["waiting"], 0);
}

#[tokio::test]
async fn a_write_that_ran_keeps_its_outcome_when_storage_stops_after_it_was_sent() {
    let (app, proxy) = app_behind_proxy().await;
    let client = app.client().await;
    let since = since();
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    // The action is sent after the intent is stored; storage stops while Defender takes its time.
    app.sandbox.inject_fault(Fault {
        method: Some("POST".into()),
        delay_ms: Some(1_500),
        ..Fault::new("/defender/api/machines/", FaultKind::Slow, 1)
    });
    let (result, ()) = tokio::join!(
        call(
            &client,
            "mde_unisolate_machines",
            json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "storage stops mid-call"}),
        ),
        async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            proxy.set(Mode::Stopped);
        }
    );
    let output = ok(&result);
    let action_id = output["results"][0]["action_id"]
        .as_str()
        .expect("the action ran")
        .to_owned();
    assert_eq!(app.sandbox.stats().count("POST", ISOLATION_POSTS), 1);

    proxy.set(Mode::Pass);
    let writes = records(&client, "mde_unisolate_machines", &since).await;
    let record = writes
        .iter()
        .find(|r| {
            r["action_ids"]
                .as_array()
                .is_some_and(|ids| ids.contains(&json!(action_id)))
        })
        .unwrap_or_else(|| {
            panic!("the outcome with action {action_id} is in the trail: {writes:?}")
        });
    assert_eq!(
        record["outcome"], "ok",
        "the outcome replaced the intent: {record}"
    );
}

#[tokio::test]
async fn frozen_storage_holds_no_answer_past_the_deadline() {
    let (app, proxy) = app_behind_proxy().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;

    proxy.set(Mode::Frozen);
    let started = Instant::now();
    ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 1}),
    )
    .await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a read's answer does not wait for its audit record: {:?}",
        started.elapsed()
    );

    refused_unrecorded(&client, &ids, "a write while storage is frozen").await;
    assert_eq!(app.sandbox.stats().count("POST", ISOLATION_POSTS), 0);

    let started = Instant::now();
    let search = err(&call(&client, "audit_search", json!({"since": "5m"})).await);
    on_time(started, "an audit search while storage is frozen");
    assert!(search.contains("audit"), "{search}");
    proxy.set(Mode::Pass);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_named_with_its_answer_within_the_deadline() {
    let app = app_with_deadline().await;
    let client = app.client().await;
    app.sandbox.inject_fault(Fault {
        status: Some(503),
        ..Fault::new(format!("/{FABRIKAM}/oauth2/"), FaultKind::ServerError, 50)
    });
    let started = Instant::now();
    let failed = err(&call(&client, "mde_list_machines", json!({"tenant_id": FABRIKAM})).await);
    on_time(started, "a call whose token endpoint fails");
    assert!(failed.contains(FABRIKAM), "names the tenant: {failed}");
    assert!(
        failed.contains("503"),
        "says what the token endpoint answered: {failed}"
    );
    let attempts = app
        .sandbox
        .stats()
        .count("POST", "/{tenant}/oauth2/v2.0/token");
    assert!(
        (1..=3).contains(&attempts),
        "{attempts} token requests for one call"
    );
}

#[tokio::test]
async fn a_slow_api_is_cut_at_the_deadline_with_what_ran_and_what_is_unknown() {
    let app = app_with_deadline().await;
    let client = app.client().await;

    // A read that never comes back in time.
    app.sandbox.inject_fault(Fault {
        delay_ms: Some(30_000),
        ..Fault::new("/defender/api/machines", FaultKind::Slow, 10)
    });
    let started = Instant::now();
    let failed = err(&call(&client, "mde_list_machines", json!({"tenant_id": CONTOSO})).await);
    on_time(started, "a read from a slow API");
    assert!(
        failed.contains("deadline") || failed.contains("MCP_CALL_DEADLINE_SECONDS"),
        "{failed}"
    );
    app.sandbox.clear_faults();

    // Two devices: one action is answered, the other is still in flight at the deadline.
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 2).await;
    app.sandbox.inject_fault(Fault {
        method: Some("POST".into()),
        delay_ms: Some(30_000),
        ..Fault::new(
            format!("/defender/api/machines/{}/", ids[1]),
            FaultKind::Slow,
            1,
        )
    });
    let started = Instant::now();
    let output = ok(&call(
        &client,
        "mde_unisolate_machines",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "slow API"}),
    )
    .await);
    on_time(started, "a write to a slow API");
    let results = output["results"].as_array().expect("results");
    let by_id = |id: &str| {
        results
            .iter()
            .find(|r| r["machine_id"] == json!(id))
            .expect("result")
    };
    assert_eq!(by_id(&ids[0])["outcome"], "done", "{output}");
    assert!(
        by_id(&ids[0])["action_id"].is_string(),
        "what ran is named: {output}"
    );
    // The held device's request is in flight when the call answers; the operation goes on and
    // records what becomes of it.
    assert_eq!(by_id(&ids[1])["outcome"], "sending", "{output}");
    assert!(
        output["notes"].to_string().contains("job_get"),
        "the answer says where the rest is followed: {output}"
    );
    let id = output["operation_id"].as_str().expect("operation id");
    let mut job = Value::Null;
    for _ in 0..10 {
        job = ok(&call(&client, "job_get", json!({"job_id": id, "wait_seconds": 8})).await);
        if job["state"] != "running" {
            break;
        }
    }
    assert_eq!(job["state"], "succeeded", "{job}");
    let held = job["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["id"] == json!(ids[1]))
        .expect("the held device");
    assert!(
        held["state"] == "unconfirmed" || held["state"] == "done",
        "{held}"
    );
    if held["state"] == "unconfirmed" {
        assert!(
            held["detail"]
                .as_str()
                .is_some_and(|d| d.contains("may have been carried out")),
            "what is unknown is said: {held}"
        );
    }
    // The sandbox counts a request once it has answered it; a resend would be answered at once
    // (the fault is used up) and counted on top.
    assert!(
        app.sandbox.stats().count("POST", ISOLATION_POSTS) <= 2,
        "the held device's action was not sent again"
    );
}
