//! Durable operations across processes: the handler binary is started as the Functions host
//! would start it (settings in the environment), killed in the middle of an operation, and
//! started again; the new process takes the operation over and finishes it without sending any
//! action twice.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use sandbox::{Fault, FaultKind, RunningSandbox, SandboxOptions};
use serde_json::{Value, json};

const FLEET: usize = 40;
const DEVICE_POSTS: &str = "/defender/api/machines/{id}/{sub}";

/// The storage two workers of one app share.
struct Containers {
    jobs: String,
    quota: String,
}

impl Containers {
    fn new() -> Self {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        Self {
            jobs: format!("jobs-ops-{id}"),
            quota: format!("quota-ops-{id}"),
        }
    }
}

fn ca_file(sandbox: &RunningSandbox) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ops-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("sandbox-ca.pem");
    std::fs::write(&file, sandbox.ca_certificate_pem()).expect("CA file");
    file
}

/// Follows an operation with job_get until it is final.
async fn final_view(client: &McpClient, id: &str) -> Value {
    job_when_ended(client, id, 12).await
}

/// Isolation requests the sandbox accepted (201).
fn accepted_posts(sandbox: &RunningSandbox) -> u64 {
    sandbox
        .stats()
        .requests
        .iter()
        .filter(|r| r.method == "POST" && r.path_template == DEVICE_POSTS)
        .filter_map(|r| r.status_counts.get("201"))
        .sum()
}

struct Worker {
    child: tokio::process::Child,
    url: String,
}

/// One handler process on the shared sandbox and storage. Short leases and a one-second inline
/// run, so a takeover happens within seconds.
async fn start_worker(
    sandbox: &RunningSandbox,
    ca_file: &std::path::Path,
    containers: &Containers,
    extra: &[(&str, &str)],
) -> Worker {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address").port()
    };
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .envs(handler::local::sandbox_settings(sandbox))
        .envs(handler::local::sandbox_defaults())
        .env("OUTBOUND_TRUSTED_CA_FILE", ca_file)
        .env("AzureWebJobsStorage", storage_connection_string())
        .env("JOBS_CONTAINER", &containers.jobs)
        .env("QUOTA_CONTAINER", &containers.quota)
        .env("HUNT_STORAGE_CONTAINER", unique_hunt_container())
        .env("HUNT_LOCAL_INTERVAL_SECONDS", "0")
        .env("APPROVAL_FALLBACK", "confirm")
        .env("OPS_LEASE_SECONDS", "3")
        .env("OPS_INLINE_SECONDS", "1")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let child = command.spawn().expect("handler starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http.get(format!("{base}/")).send().await.is_ok() {
            return Worker {
                child,
                url: format!("{base}/api/mcp/x/all"),
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the handler did not answer GET / within 10 s");
}

async fn job(client: &McpClient, id: &str, wait_seconds: u32) -> Value {
    ok(&call(
        client,
        "job_get",
        json!({"job_id": id, "wait_seconds": wait_seconds}),
    )
    .await)
}

#[tokio::test]
async fn a_worker_killed_mid_operation_is_taken_over_and_no_action_is_sent_twice() {
    // Defender's minute is ten seconds here, and the workers know it (OUTBOUND_RATE_WINDOW_DIVISOR),
    // so the pacing after a takeover costs seconds, not a minute.
    let sandbox = RunningSandbox::start(SandboxOptions {
        extra_workstations: FLEET,
        rate_limit_minute: Duration::from_secs(10),
        ..fast_sandbox_options()
    })
    .await
    .expect("sandbox");
    let ca_file = ca_file(&sandbox);
    let containers = Containers::new();
    let tenant = sandbox.tenants()[0].tenant_id.clone();

    let mut first = start_worker(
        &sandbox,
        &ca_file,
        &containers,
        &[("OUTBOUND_RATE_WINDOW_DIVISOR", "6")],
    )
    .await;
    let client = connect(&first.url).await;
    let ids = machine_ids(
        &client,
        &tenant,
        "startswith(computerDnsName,'ws-fleet-')",
        FLEET,
    )
    .await;
    // Each isolation takes Defender 400 ms to accept, so the operation runs for a few seconds.
    sandbox.inject_fault(Fault {
        method: Some("POST".into()),
        delay_ms: Some(400),
        ..Fault::new("/defender/api/machines/", FaultKind::Slow, 10_000)
    });
    let output = ok(&call_confirmed(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": tenant, "machine_ids": ids, "isolation_type": "Full", "comment": "INC-7 takeover test"}),
    )
    .await);
    assert_eq!(output["operation_state"], "running", "{output}");
    let id = output["operation_id"]
        .as_str()
        .expect("operation id")
        .to_owned();

    // Kill the worker once part of the fleet is done (SIGKILL: nothing is tidied up).
    for _ in 0..100 {
        let progress = job(&client, &id, 0).await["progress"].clone();
        if progress["done"].as_u64().unwrap_or(0) >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.child.start_kill().expect("kill");
    let _ = first.child.wait().await;
    drop(client);
    let at_kill = sandbox.stats().count("POST", DEVICE_POSTS);
    assert!(
        (8..FLEET as u64).contains(&at_kill),
        "the worker was killed mid-operation ({at_kill} of {FLEET} sent)"
    );

    // A new process takes the operation over once the dead worker's lease has run out.
    let second = start_worker(
        &sandbox,
        &ca_file,
        &containers,
        &[("OUTBOUND_RATE_WINDOW_DIVISOR", "6")],
    )
    .await;
    let client = connect(&second.url).await;
    let view = final_view(&client, &id).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert!(
        view["attempts"].as_u64().unwrap_or(0) >= 2,
        "a second worker ran it: {view}"
    );
    let progress = &view["progress"];
    assert_eq!(progress["total"], FLEET, "{progress}");
    assert_eq!(progress["failed"], 0, "{view}");
    assert_eq!(
        progress["done"].as_u64().unwrap_or(0) + progress["unconfirmed"].as_u64().unwrap_or(0),
        FLEET as u64,
        "every device has its outcome: {progress}"
    );
    for target in view["targets"].as_array().expect("targets") {
        if target["state"] == "unconfirmed" {
            assert!(
                target["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("was not sent again")),
                "{target}"
            );
        }
    }

    // No device got two actions: every request the sandbox accepted (201) isolated a device of
    // its own (actions settle after their pending and in-progress times). Requests the killed
    // worker had in flight were dropped with its connections: those devices are unconfirmed,
    // and none of them was sent again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let accepted = accepted_posts(&sandbox);
    let isolated = ids
        .iter()
        .filter(|device| {
            sandbox
                .machine_state(&tenant, device)
                .and_then(|state| state.isolation)
                .is_some()
        })
        .count() as u64;
    assert_eq!(
        accepted, isolated,
        "{accepted} isolation requests accepted for {isolated} isolated devices; {progress}"
    );
    assert_eq!(
        isolated,
        progress["done"].as_u64().unwrap_or(0),
        "every isolated device is a done target, and no unconfirmed one was sent again: {progress}"
    );
    assert_eq!(
        sandbox.stats().throttled,
        0,
        "the second worker knew what the first had sent (the shared quota ledger)"
    );
}

async fn isolate(client: &McpClient, tenant: &str, prefix: &str) -> Value {
    let arguments = json!({
        "tenant_id": tenant,
        "filter": format!("startswith(computerDnsName,'{prefix}')"),
        "max_devices": 10,
        "isolation_type": "Full",
        "comment": "INC-9 two workers"
    });
    ok(&call_confirmed(client, "mde_isolate_machines", arguments).await)
}

#[tokio::test]
async fn two_workers_isolating_one_tenant_at_once_share_its_quota_and_draw_no_429() {
    // 10 machine calls a (two-second) minute, and both workers know it: 20 devices and their
    // listings take several windows, and two workers that each believed they had the whole
    // quota would send twice what it allows.
    let sandbox = RunningSandbox::start(SandboxOptions {
        extra_workstations: 20,
        rate_limit_per_minute: 10,
        rate_limit_minute: Duration::from_secs(2),
        rate_limit_hour: Duration::from_secs(120),
        ..fast_sandbox_options()
    })
    .await
    .expect("sandbox");
    let ca_file = ca_file(&sandbox);
    let containers = Containers::new();
    let tenant = sandbox.tenants()[0].tenant_id.clone();
    let paced = [
        ("DEFENDER_MACHINE_CALLS_PER_MINUTE", "10"),
        ("OUTBOUND_RATE_WINDOW_DIVISOR", "30"),
        ("OPS_INLINE_SECONDS", "2"),
    ];
    let (first, second) = tokio::join!(
        start_worker(&sandbox, &ca_file, &containers, &paced),
        start_worker(&sandbox, &ca_file, &containers, &paced)
    );
    let (one, two) = tokio::join!(connect(&first.url), connect(&second.url));
    let (a, b) = tokio::join!(
        isolate(&one, &tenant, "ws-fleet-000"),
        isolate(&two, &tenant, "ws-fleet-001")
    );
    let id = |output: &Value| {
        output["operation_id"]
            .as_str()
            .expect("operation id")
            .to_owned()
    };
    let (id_a, id_b) = (id(&a), id(&b));
    let (a, b) = tokio::join!(final_view(&one, &id_a), final_view(&two, &id_b));
    let mut seen = std::collections::HashSet::new();
    for view in [&a, &b] {
        assert_eq!(view["state"], "succeeded", "{view}");
        assert_eq!(view["progress"]["done"], 10, "{}", view["progress"]);
        for target in view["targets"].as_array().expect("targets") {
            assert!(
                seen.insert(target["id"].as_str().expect("id").to_owned()),
                "each device is in the records once: {target}"
            );
        }
    }
    assert_eq!(seen.len(), 20);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for device in &seen {
        assert_eq!(
            sandbox
                .machine_state(&tenant, device)
                .and_then(|state| state.isolation)
                .as_deref(),
            Some("Full"),
            "{device} is isolated"
        );
    }
    assert_eq!(accepted_posts(&sandbox), 20, "one isolation per device");
    assert_eq!(
        sandbox.stats().throttled,
        0,
        "two workers together stayed under the tenant's limits: {:?}",
        sandbox.stats()
    );
}

#[tokio::test]
async fn with_a_queue_the_call_hands_its_operation_to_function_operations() {
    use handler::outbound::RateLimits;
    use handler::storage::{MessageEncoding, MessageQueue, Storage, StorageConnection};

    let queue_name = format!(
        "ops-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    // 20 calls a (five-second) minute: 30 devices outlast the one-second inline run.
    let app = TestApp::start_tuned(
        SandboxOptions {
            rate_limit_per_minute: 20,
            rate_limit_minute: Duration::from_secs(5),
            rate_limit_hour: Duration::from_secs(300),
            ..fast_sandbox_options()
        },
        &[("OPS_QUEUE", &queue_name), ("OPS_INLINE_SECONDS", "1")],
        |config| {
            config.outbound.rate_limits =
                RateLimits::documented(20, 1500).with_periods_divided_by(12);
            // Each invocation works two seconds, then puts the operation back on the queue.
            config.jobs.operation_slice = Duration::from_secs(2);
        },
    )
    .await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, "onboardingStatus eq 'Onboarded'", 30).await;
    let started = ok(&call_confirmed(
        &client,
        "mde_run_antivirus_scan",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "handed over"}),
    )
    .await);
    assert_eq!(started["operation_state"], "running", "{started}");
    let id = started["operation_id"].as_str().expect("operation id");

    // The host delivers the message (invisible for the inline run, then visible) to
    // function-operations, which continues from the record for its slice and puts the rest back
    // on the queue, until the operation ends.
    let connection = StorageConnection::from_connection_string(&storage_connection_string())
        .expect("connection string");
    let storage = Storage::new(connection, Some(reqwest::Client::new())).expect("storage");
    let queue = MessageQueue::new(&storage, &queue_name, MessageEncoding::Base64);
    let mut invocations = 0;
    loop {
        let mut message = None;
        for _ in 0..50 {
            if let Some(received) = queue
                .receive(1, Duration::from_secs(60))
                .await
                .expect("receive")
                .pop()
            {
                message = Some(received);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let message = message.expect("the operation is on OPS_QUEUE");
        let text = message.text().expect("base64 text");
        let payload = json!({
            "Data": {"message": serde_json::to_string(&text).expect("encode")},
            "Metadata": {"DequeueCount": 1, "sys": {"MethodName": "function-operations"}}
        });
        let response = reqwest::Client::new()
            .post(format!("{}/function-operations", app.base_url))
            .json(&payload)
            .send()
            .await
            .expect("invocation");
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.expect("JSON");
        queue.delete(&message).await.expect("completed");
        invocations += 1;
        if body["ReturnValue"]["state"] == "succeeded" {
            break;
        }
        assert_eq!(body["ReturnValue"]["state"], "running", "{body}");
        assert!(invocations < 30, "the operation never ended: {body}");
    }
    assert!(
        invocations >= 2,
        "30 devices at 20 a five-second minute outlast a two-second slice"
    );

    let view = job(&client, id, 0).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["progress"]["done"], 30, "{}", view["progress"]);
    assert!(
        view["attempts"].as_u64().unwrap_or(0) >= 2,
        "function-operations ran it after the call: {view}"
    );
    assert_eq!(app.sandbox.stats().throttled, 0);
    assert_eq!(
        app.sandbox.stats().count("POST", DEVICE_POSTS),
        30,
        "one scan per device"
    );
}
