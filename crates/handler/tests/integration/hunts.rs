//! Scheduled hunts end to end: the tools through the MCP client, the timer through its real
//! payload (`POST /function-hunts`) with a clock the test moves, against the sandbox tenant and
//! Azurite: due and catch-up runs, two overlapping ticks, a failing tenant, the tick deadline,
//! retention, and a threshold alert posted to a local webhook.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use common::*;
use rmcp::model::ReadResourceRequestParams;
use sandbox::{Fault, FaultKind};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const UNKNOWN_TENANT: &str = "33333333-3333-4333-8333-333333333333";
const HUNTING_PATH: &str = "/graph/v1.0/security/runHuntingQuery";
/// Sandbox events lie in the last seven days, so a week's lookback always finds rows.
const QUERY: &str = "DeviceProcessEvents | where FileName =~ 'powershell.exe' | project Timestamp, DeviceName, ProcessCommandLine";

/// A quarter-hour boundary near the real time (the sandbox's data is relative to it), plus a minute.
fn quarter_past() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let aligned = now.unix_timestamp() - now.unix_timestamp().rem_euclid(15 * 60);
    OffsetDateTime::from_unix_timestamp(aligned).expect("time") + Duration::minutes(1)
}

fn timer_payload(past_due: bool) -> Value {
    let timer = json!({
        "Schedule": {"AdjustForDST": true},
        "ScheduleStatus": {"Last": "2026-03-02T10:00:00+00:00", "Next": "2026-03-02T10:05:00+00:00", "LastUpdated": "2026-03-02T10:00:00+00:00"},
        "IsPastDue": past_due
    });
    json!({"Data": {"timer": timer.to_string()}, "Metadata": {"sys": {"MethodName": "function-hunts", "UtcNow": "2026-03-02T10:05:00Z", "RandGuid": "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a"}}})
}

/// One timer invocation as the Functions host sends it; the body is the host-format answer.
async fn fire_timer(app: &TestApp) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/function-hunts", app.base_url))
        .json(&timer_payload(false))
        .send()
        .await
        .expect("invocation");
    let status = response.status();
    let body: Value = response.json().await.expect("host-format JSON");
    assert_eq!(status, 200, "{body}");
    body
}

async fn create_hunt(client: &McpClient, extra: Value) -> String {
    let mut arguments = json!({"name": format!("hunt {}", uuid::Uuid::new_v4()), "query": QUERY, "all_tenants": true, "schedule": {"every_minutes": 15}, "lookback": "7d"});
    if let (Some(arguments), Value::Object(extra)) = (arguments.as_object_mut(), extra) {
        arguments.extend(extra);
    }
    let output = ok(&call(client, "hunt_create", arguments).await);
    output["hunt"]["id"].as_str().expect("hunt id").to_string()
}

async fn runs(client: &McpClient, hunt: &str) -> Vec<Value> {
    ok(&call(
        client,
        "hunt_list_runs",
        json!({"hunt_id": hunt, "limit": 100}),
    )
    .await)["runs"]
        .as_array()
        .expect("runs")
        .clone()
}

fn hunting_calls(app: &TestApp) -> u64 {
    app.sandbox
        .stats()
        .requests
        .iter()
        .filter(|r| r.path_template.ends_with("runHuntingQuery"))
        .map(|r| r.count)
        .sum()
}

#[tokio::test]
async fn the_timer_runs_due_hunts_catches_up_a_few_and_records_the_rest_as_skipped() {
    let start = quarter_past();
    let clock = ManualClock::at(start);
    let app = TestApp::start_with_clock(fast_sandbox_options(), &[], clock.clone()).await;
    let client = app.client().await;
    let hunt = create_hunt(&client, json!({})).await;

    // Not due before its first quarter hour.
    clock.advance(Duration::minutes(10));
    let body = fire_timer(&app).await;
    assert_eq!(body["ReturnValue"]["runs_started"], json!([]), "{body}");
    assert!(
        body["Logs"][0]
            .as_str()
            .expect("log")
            .contains("function-hunts"),
        "{body}"
    );

    // Due: one scheduled run over both sandbox tenants.
    clock.advance(Duration::minutes(5));
    let body = fire_timer(&app).await;
    assert_eq!(
        body["ReturnValue"]["runs_started"]
            .as_array()
            .expect("started")
            .len(),
        1,
        "{body}"
    );
    assert_eq!(body["ReturnValue"]["runs_finished"], json!(1), "{body}");
    let listed = runs(&client, &hunt).await;
    assert_eq!(listed.len(), 1);
    let run = &listed[0];
    assert_eq!(run["kind"], "scheduled");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["tenants"].as_array().expect("tenants").len(), 2);
    assert!(
        run["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .all(|t| t["status"] == "succeeded" && t["rows"].as_u64() > Some(0)),
        "{run}"
    );
    assert_eq!(
        run["occurrence"].as_str().map(|o| o.ends_with(":15:00Z")
            || o.ends_with(":30:00Z")
            || o.ends_with(":45:00Z")
            || o.ends_with(":00:00Z")),
        Some(true),
        "{run}"
    );

    // The same tick again runs nothing: the occurrence is accounted for.
    let body = fire_timer(&app).await;
    assert_eq!(body["ReturnValue"]["runs_started"], json!([]), "{body}");

    // Down for two hours: eight quarter hours missed; three run (HUNT_MAX_CATCH_UP), five skipped.
    clock.advance(Duration::hours(2));
    let body = fire_timer(&app).await;
    assert_eq!(
        body["ReturnValue"]["runs_started"]
            .as_array()
            .expect("started")
            .len(),
        3,
        "{body}"
    );
    assert_eq!(
        body["ReturnValue"]["occurrences_skipped"],
        json!(5),
        "{body}"
    );
    let listed = runs(&client, &hunt).await;
    let kinds: Vec<&str> = listed
        .iter()
        .map(|r| r["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        vec!["scheduled", "catch_up", "catch_up", "skipped", "scheduled"],
        "{listed:?}"
    );
    assert_eq!(listed[3]["skipped"]["count"], json!(5));
    assert!(
        listed[3]["skipped"]["reason"]
            .as_str()
            .expect("reason")
            .contains("HUNT_MAX_CATCH_UP")
    );

    // A month later retention (30 days) deletes every earlier run with its results.
    let old_run = listed[4]["run_id"].as_str().expect("run id").to_string();
    clock.advance(Duration::days(31));
    fire_timer(&app).await;
    let listed = runs(&client, &hunt).await;
    assert!(
        listed.iter().all(|r| r["run_id"] != json!(old_run)),
        "old runs are deleted: {listed:?}"
    );
    let message = err(&call(
        &client,
        "hunt_get_results",
        json!({"hunt_id": hunt, "run_id": old_run}),
    )
    .await);
    assert!(message.contains("has no run"), "{message}");
}

#[tokio::test]
async fn two_ticks_at_once_run_a_hunt_once() {
    let clock = ManualClock::at(quarter_past());
    let app = TestApp::start_with_clock(fast_sandbox_options(), &[], clock.clone()).await;
    let client = app.client().await;
    let hunt = create_hunt(&client, json!({})).await;
    clock.advance(Duration::minutes(15));

    let (first, second) = tokio::join!(fire_timer(&app), fire_timer(&app));
    let started = first["ReturnValue"]["runs_started"]
        .as_array()
        .expect("started")
        .len()
        + second["ReturnValue"]["runs_started"]
            .as_array()
            .expect("started")
            .len();
    assert_eq!(
        started, 1,
        "exactly one invocation claims the occurrence: {first} {second}"
    );
    let listed = runs(&client, &hunt).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "succeeded");
    assert_eq!(hunting_calls(&app), 2, "one query per tenant, not two");
}

#[tokio::test]
async fn a_failing_tenant_is_recorded_and_the_others_succeed() {
    let tenants = json!([
        {"tenant_id": CONTOSO, "display_name": "Contoso"},
        {"tenant_id": FABRIKAM, "display_name": "Fabrikam"},
        {"tenant_id": UNKNOWN_TENANT, "display_name": "Not in the sandbox"}
    ])
    .to_string();
    let clock = ManualClock::at(quarter_past());
    let app = TestApp::start_with_clock(
        fast_sandbox_options(),
        &[("TENANTS", &tenants)],
        clock.clone(),
    )
    .await;
    let client = app.client().await;
    let hunt = create_hunt(&client, json!({})).await;
    clock.advance(Duration::minutes(15));
    let body = fire_timer(&app).await;
    assert_eq!(
        body["ReturnValue"]["errors"],
        json!([]),
        "a failing tenant is not a failed invocation: {body}"
    );
    let run = &runs(&client, &hunt).await[0];
    assert_eq!(run["status"], "partially_failed", "{run}");
    let tenants = run["tenants"].as_array().expect("tenants");
    let failed: Vec<&Value> = tenants.iter().filter(|t| t["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{run}");
    assert_eq!(failed[0]["tenant_id"], UNKNOWN_TENANT);
    assert!(
        failed[0]["error"]
            .as_str()
            .expect("error")
            .contains("token"),
        "{run}"
    );
    assert_eq!(
        tenants
            .iter()
            .filter(|t| t["status"] == "succeeded")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_tick_stops_at_its_deadline_and_the_next_tick_continues_the_run() {
    let clock = ManualClock::at(quarter_past());
    let app = TestApp::start_with_clock(
        fast_sandbox_options(),
        &[("HUNT_TICK_BUDGET_SECONDS", "1")],
        clock.clone(),
    )
    .await;
    let client = app.client().await;
    let hunt = create_hunt(
        &client,
        json!({"tenant_ids": [CONTOSO], "all_tenants": null}),
    )
    .await;
    clock.advance(Duration::minutes(15));
    let mut slow = Fault::new(HUNTING_PATH, FaultKind::Slow, 1);
    slow.delay_ms = Some(3000);
    app.sandbox.inject_fault(slow);

    let body = fire_timer(&app).await;
    assert_eq!(body["ReturnValue"]["runs_continuing"], json!(1), "{body}");
    let run = &runs(&client, &hunt).await[0];
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(run["tenants"][0]["status"], "pending");
    assert_eq!(run["tenants"][0]["interrupted"], json!(1));

    clock.advance(Duration::minutes(1));
    let body = fire_timer(&app).await;
    assert_eq!(body["ReturnValue"]["runs_finished"], json!(1), "{body}");
    let run = &runs(&client, &hunt).await[0];
    assert_eq!(run["status"], "succeeded", "{run}");
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Value>>>);

async fn receive(State(received): State<Received>, Json(body): Json<Value>) -> &'static str {
    received.0.lock().expect("lock").push(body);
    "ok"
}

/// A local stand-in for a Teams or Logic App webhook.
async fn webhook() -> (String, Received) {
    let received = Received::default();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (
        format!("http://{address}/hook?sig=secret-signature"),
        received,
    )
}

#[tokio::test]
async fn a_threshold_alert_posts_once_to_the_webhook_named_by_its_secret() {
    let (url, received) = webhook().await;
    let app = TestApp::start_with(
        fast_sandbox_options(),
        &[("HUNT_SECRET_SOC_TEAMS_WEBHOOK", &url)],
    )
    .await;
    let client = app.client().await;
    let alerting = create_hunt(
        &client,
        json!({"alert": {"threshold": 0, "webhook_secret": "soc-teams-webhook"}}),
    )
    .await;
    let quiet = create_hunt(&client, json!({"alert": {"threshold": 100000, "scope": "per_tenant", "webhook_secret": "soc-teams-webhook"}})).await;
    let unconfigured = create_hunt(
        &client,
        json!({"alert": {"threshold": 0, "webhook_secret": "nobody-set-this"}}),
    )
    .await;

    let output = ok(&call(&client, "hunt_run_now", json!({"hunt_id": alerting})).await);
    assert_eq!(output["run"]["status"], "succeeded", "{output}");
    assert_eq!(output["run"]["alert"]["state"], "delivered", "{output}");
    let posts = received.0.lock().expect("lock").clone();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post["type"], "message");
    assert_eq!(
        post["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(post["hunt"]["hunt_id"], json!(alerting));
    assert_eq!(post["hunt"]["rows_total"], output["run"]["rows_total"]);
    assert!(
        post["hunt"]["reason"]
            .as_str()
            .expect("reason")
            .contains("threshold 0")
    );

    let output = ok(&call(&client, "hunt_run_now", json!({"hunt_id": quiet})).await);
    assert!(
        output["run"]["alert"].is_null(),
        "below the threshold: {output}"
    );
    assert_eq!(
        received.0.lock().expect("lock").len(),
        1,
        "no post below the threshold"
    );

    let output = ok(&call(&client, "hunt_run_now", json!({"hunt_id": unconfigured})).await);
    assert_eq!(
        output["run"]["status"], "succeeded",
        "a missing secret fails the alert, not the run: {output}"
    );
    assert_eq!(output["run"]["alert"]["state"], "failed");
    assert!(
        output["run"]["alert"]["error"]
            .as_str()
            .expect("error")
            .contains("HUNT_SECRET_NOBODY_SET_THIS"),
        "{output}"
    );

    // The URL is never stored or shown, only the secret's name.
    let shown = ok(&call(&client, "hunt_get", json!({"hunt_id": alerting})).await).to_string()
        + &runs(&client, &alerting).await[0].to_string();
    assert!(
        !shown.contains("secret-signature") && !shown.contains(&url),
        "{shown}"
    );
}

#[tokio::test]
async fn hunt_tools_manage_hunts_and_refuse_bad_input() {
    let app = TestApp::start().await;
    let client = app.client().await;

    let created = ok(&call(
        &client,
        "hunt_create",
        json!({"name": "Encoded PowerShell", "query": QUERY, "tenant_ids": [CONTOSO, FABRIKAM], "schedule": {"cron": "0 */6 * * *"}, "lookback": "P7D", "retention_days": 7}),
    )
    .await);
    let hunt = created["hunt"]["id"].as_str().expect("id").to_string();
    assert_eq!(created["hunt"]["lookback_minutes"], 10080, "{created}");
    assert_eq!(created["schedule_description"], "cron '0 */6 * * *' (UTC)");
    assert_eq!(created["next_runs"].as_array().expect("next").len(), 3);

    let refusals = [
        (
            json!({"name": "Encoded PowerShell", "query": QUERY, "all_tenants": true, "schedule": {"every_hours": 1}}),
            "already exists",
        ),
        (
            json!({"name": "x", "query": ".drop table DeviceEvents", "all_tenants": true, "schedule": {"every_hours": 1}}),
            "control (management) command",
        ),
        (
            json!({"name": "x", "query": QUERY, "schedule": {"every_hours": 1}}),
            "tenant_ids",
        ),
        (
            json!({"name": "x", "query": QUERY, "tenant_ids": [UNKNOWN_TENANT], "schedule": {"every_hours": 1}}),
            "allow-list",
        ),
        (
            json!({"name": "x", "query": QUERY, "all_tenants": true, "schedule": {"cron": "* * * * *"}}),
            "at most every 5 minutes",
        ),
        (
            json!({"name": "x", "query": QUERY, "all_tenants": true, "schedule": {"hourly": true}}),
            "unknown variant `hourly`",
        ),
        (
            json!({"name": "x", "query": QUERY, "all_tenants": true, "schedule": {"every_hours": 1}, "alert": {"threshold": 1, "webhook_secret": "https://x.logic.azure.com/workflows/1"}}),
            "not the URL itself",
        ),
        (
            json!({"name": "x", "query": QUERY, "all_tenants": true, "schedule": {"every_hours": 1}, "retention_days": 0}),
            "retention_days",
        ),
        (
            json!({"name": "x", "query": QUERY, "all_tenants": true, "schedule": {"every_hours": 1}, "lookback": "31d"}),
            "lookback 'P31D' is longer than the 30 days",
        ),
        (
            json!({"name": "x", "query": QUERY, "all_tenants": true, "schedule": {"every_hours": 1}, "lookback": "90s"}),
            "lookback 'PT1M30S' is not a whole number of minutes",
        ),
        (
            json!({"name": "x", "query": QUERY, "all_tenants": true, "schedule": {"every_hours": 1}, "lookback": 60}),
            "invalid type: integer `60`, expected a string",
        ),
    ];
    for (arguments, expected) in refusals {
        let message = err(&call(&client, "hunt_create", arguments.clone()).await);
        assert!(
            message.contains(expected),
            "{arguments}: '{message}' should contain '{expected}'"
        );
    }

    let listed = ok(&call(&client, "hunt_list", json!({})).await);
    assert_eq!(
        listed["hunts"].as_array().expect("hunts").len(),
        1,
        "refused hunts are not stored: {listed}"
    );
    assert_eq!(listed["hunts"][0]["hunt_id"], json!(hunt));
    assert!(
        err(&call(&client, "hunt_list", json!({"status": "enabled"})).await)
            .contains("unknown field `status`")
    );
    assert_eq!(
        ok(&call(&client, "hunt_list", json!({"enabled": false})).await)["hunts"],
        json!([])
    );
    assert!(
        err(&call(&client, "hunt_get", json!({"hunt_id": "contoso-hunt"})).await)
            .contains("not a hunt id")
    );
    assert!(
        err(&call(&client, "hunt_get", json!({"hunt_id": "h000000000000"})).await)
            .contains("no hunt with id")
    );

    let updated = ok(&call(
        &client,
        "hunt_update",
        json!({"hunt_id": hunt, "enabled": false}),
    )
    .await);
    assert_eq!(updated["hunt"]["enabled"], json!(false));
    assert_eq!(updated["next_runs"], json!([]));
    assert!(
        err(&call(&client, "hunt_update", json!({"hunt_id": hunt})).await)
            .contains("nothing to change")
    );
    assert!(
        err(&call(
            &client,
            "hunt_update",
            json!({"hunt_id": hunt, "query": ".set-or-append T <| T"})
        )
        .await)
        .contains("control")
    );
    let updated = ok(&call(
        &client,
        "hunt_update",
        json!({"hunt_id": hunt, "enabled": true, "schedule": {"every_hours": 2}}),
    )
    .await);
    assert_eq!(updated["schedule_description"], "every 2 hours");

    // A disabled or enabled hunt can be run by hand; its rows are paged one tenant at a time.
    let run = ok(&call(&client, "hunt_run_now", json!({"hunt_id": hunt})).await);
    assert_eq!(run["run"]["kind"], "manual");
    assert_eq!(run["run"]["status"], "succeeded", "{run}");
    let run_id = run["run"]["run_id"].as_str().expect("run id").to_string();
    let contoso_rows = run["run"]["tenants"][0]["stored_rows"]
        .as_u64()
        .expect("rows");
    assert!(contoso_rows >= 2, "{run}");

    let first = ok(&call(
        &client,
        "hunt_get_results",
        json!({"hunt_id": hunt, "run_id": run_id, "limit": 1}),
    )
    .await);
    assert_eq!(first["tenant_id"], CONTOSO);
    assert_eq!(first["rows"].as_array().expect("rows").len(), 1);
    assert!(
        first["schema"]
            .as_array()
            .expect("schema")
            .iter()
            .any(|c| c["name"] == "DeviceName")
    );
    let mut cursor = first["next_cursor"]
        .as_str()
        .expect("more rows")
        .to_string();
    let mut seen = 1;
    let mut tenants_seen = vec![first["tenant_id"].clone()];
    loop {
        let page = ok(&call(
            &client,
            "hunt_get_results",
            json!({"hunt_id": hunt, "run_id": run_id, "limit": 1000, "cursor": cursor}),
        )
        .await);
        seen += page["rows"].as_array().expect("rows").len();
        if !tenants_seen.contains(&page["tenant_id"]) {
            tenants_seen.push(page["tenant_id"].clone());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(tenants_seen, vec![json!(CONTOSO), json!(FABRIKAM)]);
    assert_eq!(
        seen as u64,
        run["run"]["rows_total"].as_u64().expect("total")
    );
    let message = err(&call(
        &client,
        "hunt_get_results",
        json!({"hunt_id": hunt, "run_id": run_id, "tenant_id": UNKNOWN_TENANT}),
    )
    .await);
    assert!(message.contains("did not search tenant"), "{message}");
    let message = err(&call(
        &client,
        "hunt_get_results",
        json!({"hunt_id": hunt, "run_id": run_id, "cursor": "nonsense"}),
    )
    .await);
    assert!(
        message.contains("cursor is not one this server returned"),
        "{message}"
    );
    let message = err(&call(
        &client,
        "hunt_list_runs",
        json!({"hunt_id": hunt, "limit": 0}),
    )
    .await);
    assert!(
        message.contains("limit must be between 1 and 100"),
        "{message}"
    );
    assert_eq!(runs(&client, &hunt).await.len(), 1);

    // Runs are MCP resources too.
    let resources = client.list_all_resources().await.expect("resources/list");
    let uri = format!("hunt://{hunt}/runs/{run_id}");
    assert!(resources.iter().any(|r| r.uri == uri), "{resources:?}");
    let templates = client
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    assert_eq!(templates.len(), 2);
    let read = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .expect("resources/read");
    let text = match &read.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("expected text, got {other:?}"),
    };
    let record: Value = serde_json::from_str(&text).expect("JSON record");
    assert_eq!(record["run_id"], json!(run_id));
    let read = client
        .read_resource(ReadResourceRequestParams::new(format!(
            "{uri}/results/{FABRIKAM}"
        )))
        .await
        .expect("tenant results");
    assert!(format!("{read:?}").contains("DeviceName"));
    let missing = client
        .read_resource(ReadResourceRequestParams::new(format!(
            "hunt://{hunt}/runs/20200101T000000Z"
        )))
        .await;
    assert!(
        missing
            .expect_err("no such run")
            .to_string()
            .contains("has no run")
    );
    assert!(
        client
            .read_resource(ReadResourceRequestParams::new("file:///etc/passwd"))
            .await
            .is_err()
    );

    let deleted = ok(&call_confirmed(&client, "hunt_delete", json!({"hunt_id": hunt})).await);
    assert_eq!(deleted["runs_deleted"], json!(1));
    assert!(
        err(&call_confirmed(&client, "hunt_delete", json!({"hunt_id": hunt})).await)
            .contains("no hunt with id")
    );
    assert!(
        err(&call(&client, "hunt_run_now", json!({"hunt_id": hunt})).await)
            .contains("no hunt with id")
    );
    assert_eq!(
        ok(&call(&client, "hunt_list", json!({})).await)["hunts"],
        json!([])
    );
}

#[tokio::test]
async fn read_only_mode_keeps_the_read_tools_and_resources() {
    let app = TestApp::start_with(fast_sandbox_options(), &[("MCP_READ_ONLY", "true")]).await;
    let client = app.client().await;
    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for read in [
        "hunt_list",
        "hunt_get",
        "hunt_list_runs",
        "hunt_get_results",
    ] {
        assert!(tools.contains(&read.to_string()), "{read} in {tools:?}");
    }
    for write in ["hunt_create", "hunt_update", "hunt_delete", "hunt_run_now"] {
        assert!(
            !tools.contains(&write.to_string()),
            "{write} must be hidden"
        );
    }
    let message = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("hunt_delete").with_arguments(
                json!({"hunt_id": "h000000000000"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
        )
        .await;
    assert!(
        message
            .expect_err("hidden")
            .to_string()
            .contains("read-only")
    );
    assert!(client.list_all_resources().await.is_ok());
}

#[tokio::test]
async fn a_tenant_removed_from_the_allow_list_is_refused_at_run_time_and_the_hunt_stays_editable() {
    let container = unique_hunt_container();
    let tenants = json!([{"tenant_id": CONTOSO, "display_name": "Contoso"}, {"tenant_id": UNKNOWN_TENANT, "display_name": "Former customer"}]).to_string();
    let before = TestApp::start_with(
        fast_sandbox_options(),
        &[
            ("TENANTS", &tenants),
            ("HUNT_STORAGE_CONTAINER", &container),
        ],
    )
    .await;
    let hunt = create_hunt(
        &before.client().await,
        json!({"tenant_ids": [CONTOSO, UNKNOWN_TENANT], "all_tenants": null}),
    )
    .await;

    // The same storage, served with the former customer taken off TENANTS.
    let after = TestApp::start_with(
        fast_sandbox_options(),
        &[("HUNT_STORAGE_CONTAINER", &container)],
    )
    .await;
    let client = after.client().await;
    ok(&call(
        &client,
        "hunt_update",
        json!({"hunt_id": hunt, "enabled": false}),
    )
    .await);
    let output = ok(&call(&client, "hunt_run_now", json!({"hunt_id": hunt})).await);
    assert_eq!(output["run"]["status"], "partially_failed", "{output}");
    let refused = &output["run"]["tenants"][1];
    assert_eq!(refused["tenant_id"], UNKNOWN_TENANT);
    assert!(
        refused["error"]
            .as_str()
            .expect("error")
            .contains("allow-list"),
        "{output}"
    );
    let stats = after.sandbox.stats();
    assert!(
        stats
            .tokens_issued
            .iter()
            .all(|t| t.tenant_id != UNKNOWN_TENANT),
        "never asked for a token: {:?}",
        stats.tokens_issued
    );
}

/// The person confirming a deletion sees the hunt by name with its schedule and tenants by name;
/// a hunt that is not there is refused before anyone is asked.
#[tokio::test]
async fn a_deletion_names_the_hunt_and_its_tenants_and_an_unknown_hunt_is_refused_unasked() {
    let app =
        TestApp::start_with(fast_sandbox_options(), &[("APPROVAL_FALLBACK", "confirm")]).await;
    let client = app.client().await;
    let created = ok(&call(
        &client,
        "hunt_create",
        json!({"name": "Encoded PowerShell in Contoso", "query": QUERY, "tenant_ids": [CONTOSO],
               "schedule": {"every_minutes": 15}, "lookback": "7d"}),
    )
    .await);
    let hunt = created["hunt"]["id"].as_str().expect("hunt id").to_string();
    let asked = err(&call(&client, "hunt_delete", json!({"hunt_id": hunt})).await);
    for expected in [
        "CONFIRMATION REQUIRED",
        format!("hunt Encoded PowerShell in Contoso (id {hunt})").as_str(),
        "schedule every 15 minutes",
        "tenants Contoso",
        "enabled -> deleted with its runs and results",
    ] {
        assert!(asked.contains(expected), "'{expected}' in {asked}");
    }
    let deleted = ok(&call_confirmed(&client, "hunt_delete", json!({"hunt_id": hunt})).await);
    assert_eq!(deleted["name"], "Encoded PowerShell in Contoso");

    let refused = err(&call(&client, "hunt_delete", json!({"hunt_id": hunt})).await);
    assert!(
        refused.contains("no hunt with id") && !refused.contains("CONFIRMATION REQUIRED"),
        "{refused}"
    );
}

/// A manual run that outlasts its budget answers with an operation following it; the timer does
/// the searching, and the operation ends with every tenant's outcome once it has.
#[tokio::test]
async fn a_manual_run_left_pending_is_followed_by_an_operation_until_the_timer_finishes_it() {
    let app =
        TestApp::start_with(fast_sandbox_options(), &[("HUNT_TICK_BUDGET_SECONDS", "1")]).await;
    let client = app.client().await;
    let hunt = create_hunt(
        &client,
        json!({"tenant_ids": [CONTOSO], "all_tenants": null, "enabled": false}),
    )
    .await;
    let mut slow = Fault::new(HUNTING_PATH, FaultKind::Slow, 1);
    slow.delay_ms = Some(3000);
    app.sandbox.inject_fault(slow);
    let output = ok(&call(&client, "hunt_run_now", json!({"hunt_id": hunt})).await);
    assert_eq!(output["run"]["status"], "running", "{output}");
    assert_eq!(output["operation_state"], "running", "{output}");
    let operation = output["operation_id"]
        .as_str()
        .expect("an operation follows the run");
    let view = ok(&call(&client, "job_get", json!({"job_id": operation})).await);
    assert_eq!(view["function"], "hunt_run_now");
    assert_eq!(view["progress"]["running"], 1, "{view}");
    assert_eq!(view["targets"][0]["id"], CONTOSO, "{view}");

    let body = fire_timer(&app).await;
    assert_eq!(body["ReturnValue"]["runs_finished"], json!(1), "{body}");
    let view = job_when_ended(&client, operation, 4).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["targets"][0]["status"], "succeeded", "{view}");
    assert!(
        view["targets"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.ends_with("rows")),
        "{view}"
    );
}
