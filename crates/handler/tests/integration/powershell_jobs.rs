//! PowerShell jobs end to end against Azurite: the handler (through an rmcp client and the
//! host's invocation protocol) and a stand-in worker that follows the same contract as the
//! PowerShell app (`tests/integration/common/worker.rs`).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::worker::{
    Act, Delivery, FunctionDef, StandInWorker, function, parameter, test_storage,
};
use common::*;
use handler::jobs::contract::{ManifestEffect, ParameterType};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

struct Setup {
    app: TestApp,
    client: McpClient,
    worker: Arc<StandInWorker>,
}

/// A handler and a worker sharing their own container and queue, so tests run in parallel.
async fn setup(functions: Vec<FunctionDef>, extra: &[(&str, &str)]) -> Setup {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let container = format!("jobs-{}", &suffix[..12]);
    let queue = format!("ps-{}", &suffix[..12]);
    let mut settings = vec![
        ("JOBS_CONTAINER", container.as_str()),
        ("PS_JOBS_QUEUE", queue.as_str()),
        ("PS_MANIFEST_REFRESH_SECONDS", "0"),
    ];
    settings.extend_from_slice(extra);
    let app = TestApp::start_with(fast_sandbox_options(), &settings).await;
    let client = app.client().await;
    let worker = Arc::new(StandInWorker::new(
        &test_storage(),
        &container,
        &queue,
        functions,
    ));
    worker.publish_manifest().await;
    Setup {
        app,
        client,
        worker,
    }
}

/// The worker polling in the background, as the Functions host would, until dropped.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn run_in_background(worker: &Arc<StandInWorker>) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let (worker, flag) = (worker.clone(), stop.clone());
    tokio::spawn(async move {
        while !flag.load(Ordering::SeqCst) {
            if worker.poll().await.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    Running(stop)
}

fn greeting() -> FunctionDef {
    function(
        "Get-Greeting",
        ManifestEffect::Read,
        vec![
            parameter("Name", ParameterType::String, true),
            parameter("TenantId", ParameterType::String, true),
        ],
        Arc::new(|parameters, _| {
            Act::Return(
                json!({"greeting": format!("Hello {}", parameters["Name"].as_str().unwrap_or("?")), "tenant": parameters["TenantId"]}),
            )
        }),
    )
}

/// Succeeds on the attempt given, crashes on the ones before.
fn flaky(name: &str, effect: ManifestEffect, succeed_on: u32) -> FunctionDef {
    function(
        name,
        effect,
        vec![parameter("Target", ParameterType::String, true)],
        Arc::new(move |parameters, attempt| {
            if attempt < succeed_on {
                Act::Crash
            } else {
                Act::Return(json!({"done": parameters["Target"], "attempt": attempt}))
            }
        }),
    )
}

#[tokio::test]
async fn a_function_that_throws_fails_its_job_once_with_the_functions_message() {
    let throwing = function(
        "Get-DeviceOwner",
        ManifestEffect::Read,
        vec![parameter("DeviceName", ParameterType::String, true)],
        Arc::new(|parameters, _| {
            Act::Throw(format!(
                "Cannot find a device named '{}'.",
                parameters["DeviceName"].as_str().unwrap_or("?")
            ))
        }),
    );
    let setup = setup(vec![throwing], &[]).await;
    let client = &setup.client;
    let _worker = run_in_background(&setup.worker);

    let output = ok(&call(
        client,
        "ps_Get-DeviceOwner",
        json!({"tenant_id": CONTOSO, "DeviceName": "ws-404", "wait_seconds": 30}),
    )
    .await);
    assert_eq!(output["state"], "failed", "{output}");
    assert_eq!(output["error"]["code"], "function_failed", "{output}");
    assert_eq!(
        output["error"]["message"], "Cannot find a device named 'ws-404'.",
        "the function's own words reach the model"
    );
    assert_eq!(
        output["attempts"], 1,
        "a function that threw is not run again"
    );
    let id = output["job_id"].as_str().expect("id");
    assert_eq!(job(client, id).await["state"], "failed");
}

async fn job(client: &McpClient, id: &str) -> Value {
    ok(&call(client, "job_get", json!({"job_id": id})).await)
}

async fn queued(client: &McpClient, tool: &str, arguments: Value) -> String {
    let output = ok(&call_confirmed(client, tool, arguments).await);
    assert_eq!(output["state"], "queued", "{output}");
    output["job_id"].as_str().expect("job id").to_string()
}

#[tokio::test]
async fn a_ps_tool_call_runs_through_the_queue_and_returns_the_result() {
    let setup = setup(vec![greeting()], &[]).await;
    let client = &setup.client;
    let _worker = run_in_background(&setup.worker);

    let tools = client.list_all_tools().await.expect("tools/list");
    let tool = tools
        .iter()
        .find(|t| t.name == "ps_Get-Greeting")
        .expect("generated from the manifest");
    let properties = tool
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .expect("properties");
    assert!(
        properties.contains_key("Name")
            && properties.contains_key("tenant_id")
            && !properties.contains_key("TenantId")
    );
    assert_eq!(
        tool.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );

    let output = ok(&call(
        client,
        "ps_Get-Greeting",
        json!({"tenant_id": CONTOSO, "Name": "Ada", "wait_seconds": 30}),
    )
    .await);
    assert_eq!(output["state"], "succeeded", "{output}");
    assert_eq!(
        output["result"],
        json!({"greeting": "Hello Ada", "tenant": CONTOSO}),
        "the tenant parameter is the job's tenant"
    );
    assert_eq!(output["attempts"], 1);
    assert_eq!(
        output["caller"], "local",
        "the caller the auth layer identified (inbound auth off: local)"
    );
    let id = output["job_id"].as_str().expect("id");
    assert_eq!(job(client, id).await["result"], output["result"]);

    let listed = ok(&call(
        client,
        "job_list",
        json!({"state": "succeeded", "caller": "LOCAL", "since": "1h", "tenant_id": CONTOSO}),
    )
    .await);
    let ids: Vec<&str> = listed["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec![id]);
    let none = ok(&call(client, "job_list", json!({"state": "failed"})).await);
    assert_eq!(none["jobs"], json!([]));

    // Refused before anything is queued.
    let message = err(&call(client, "ps_Get-Greeting", json!({"tenant_id": CONTOSO})).await);
    assert!(
        message.contains("parameter `Name` is required"),
        "{message}"
    );
    let message = err(&call(
        client,
        "ps_Get-Greeting",
        json!({"tenant_id": "33333333-3333-4333-8333-333333333333", "Name": "x"}),
    )
    .await);
    assert!(message.contains("allow-list"), "{message}");
    let message = err(&call(
        client,
        "ps_Get-Greeting",
        json!({"tenant_id": CONTOSO, "Name": "x", "TenantId": FABRIKAM}),
    )
    .await);
    assert!(
        message.contains("TenantId is filled from tenant_id"),
        "{message}"
    );
    let message = err(&call(
        client,
        "ps_Get-Greeting",
        json!({"tenant_id": CONTOSO, "Name": "x", "wait_seconds": 61}),
    )
    .await);
    assert!(
        message.contains("wait_seconds must be between 0 and 60"),
        "{message}"
    );
    let all = ok(&call(client, "job_list", json!({})).await);
    assert_eq!(
        all["jobs"].as_array().expect("jobs").len(),
        1,
        "refused calls queue nothing: {all}"
    );
}

#[tokio::test]
async fn a_redelivered_message_of_a_finished_job_does_not_run_again() {
    let setup = setup(vec![greeting()], &[]).await;
    let (client, worker) = (&setup.client, &setup.worker);
    let id = queued(
        client,
        "ps_Get-Greeting",
        json!({"tenant_id": CONTOSO, "Name": "Bo", "wait_seconds": 0}),
    )
    .await;
    assert_eq!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Completed)
    );
    let finished = job(client, &id).await;
    assert_eq!(finished["state"], "succeeded");

    // At-least-once: the same message arrives again (a lost delete, a second host instance).
    let text = worker.seen.lock().expect("lock")[0].clone();
    worker.queue.send(&text).await.expect("redeliver");
    assert_eq!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Completed),
        "completed without running"
    );
    assert_eq!(worker.runs_of(&id), 1, "the function ran once");
    assert_eq!(job(client, &id).await, finished, "the record is untouched");
}

#[tokio::test]
async fn a_crash_mid_job_is_retried_but_a_destructive_function_is_not_run_twice() {
    let setup = setup(
        vec![
            flaky("Set-Thing", ManifestEffect::Write, 2),
            flaky("Remove-Thing", ManifestEffect::Destructive, 2),
        ],
        &[],
    )
    .await;
    let (client, worker) = (&setup.client, &setup.worker);

    let retried = queued(
        client,
        "ps_Set-Thing",
        json!({"tenant_id": CONTOSO, "Target": "a", "wait_seconds": 0}),
    )
    .await;
    assert!(matches!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Failed(_))
    ));
    let running = job(client, &retried).await;
    assert_eq!(
        (running["state"].as_str(), running["attempts"].as_u64()),
        (Some("running"), Some(1))
    );
    assert_eq!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Completed)
    );
    let done = job(client, &retried).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2);
    assert_eq!(done["result"], json!({"done": "a", "attempt": 2}));

    let tools = client.list_all_tools().await.expect("tools/list");
    let remove = tools
        .iter()
        .find(|t| t.name == "ps_Remove-Thing")
        .expect("listed");
    assert_eq!(
        remove.annotations.as_ref().and_then(|a| a.destructive_hint),
        Some(true)
    );
    let once = queued(
        client,
        "ps_Remove-Thing",
        json!({"tenant_id": CONTOSO, "Target": "b", "wait_seconds": 0}),
    )
    .await;
    assert!(matches!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Failed(_))
    ));
    assert_eq!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Completed)
    );
    let failed = job(client, &once).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "interrupted");
    assert_eq!(
        worker.runs_of(&once),
        1,
        "a destructive function never runs twice"
    );
}

/// The host's invocation of function-jobs-poison: the message text JSON-encoded once more
/// inside Data, queue metadata beside it.
async fn deliver_poison(app: &TestApp, data_message: Value) -> (u16, Value) {
    let payload = json!({
        "Data": {"message": data_message},
        "Metadata": {
            "DequeueCount": 1,
            "Id": "8c6f7b1e-2a3d-4c5e-9f80-1a2b3c4d5e6f",
            "InsertionTime": "2026-11-23T10:05:00+00:00",
            "sys": {"MethodName": "function-jobs-poison", "UtcNow": "2026-11-23T10:06:00Z", "RandGuid": "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a"}
        }
    });
    let response = reqwest::Client::new()
        .post(format!("{}/function-jobs-poison", app.base_url))
        .header(
            "X-Azure-Functions-InvocationId",
            "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a",
        )
        .json(&payload)
        .send()
        .await
        .expect("invocation");
    let status = response.status().as_u16();
    (status, response.json().await.expect("always JSON"))
}

#[tokio::test]
async fn a_poison_message_becomes_a_dead_lettered_job_with_the_reason() {
    let failing = function(
        "Export-Everything",
        ManifestEffect::Write,
        vec![],
        Arc::new(|_, _| {
            Act::InfraError("results/… could not be written: HTTP 503 ServerBusy".into())
        }),
    );
    let setup = setup(vec![failing], &[]).await;
    let (app, client, worker) = (&setup.app, &setup.client, &setup.worker);
    let id = queued(
        client,
        "ps_Export-Everything",
        json!({"tenant_id": FABRIKAM, "wait_seconds": 0}),
    )
    .await;
    let mut deliveries = Vec::new();
    while let Some(delivery) = worker.next_delivery(Duration::from_secs(10)).await {
        let poisoned = delivery == Delivery::Poisoned;
        deliveries.push(delivery);
        if poisoned {
            break;
        }
    }
    assert_eq!(deliveries.len(), 5, "{deliveries:?}");
    assert_eq!(
        job(client, &id).await["state"],
        "running",
        "until the poison message is handled"
    );

    let poison = worker
        .poison
        .receive(1, Duration::from_secs(30))
        .await
        .expect("receive")
        .pop()
        .expect("in the poison queue");
    let text = poison.text().expect("base64 text");
    let (status, body) =
        deliver_poison(app, json!(serde_json::to_string(&text).expect("encode"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ReturnValue"]["state"], "dead_lettered");
    worker.poison.delete(&poison).await.expect("completed");

    let dead = job(client, &id).await;
    assert_eq!(dead["state"], "dead_lettered", "{dead}");
    assert_eq!(dead["attempts"], 5);
    let reason = dead["error"]["message"].as_str().expect("reason");
    assert!(
        reason.contains(&worker.poison.name().to_string())
            && reason.contains("5 attempt(s)")
            && reason.contains("503"),
        "{reason}"
    );
    let listed = ok(&call(client, "job_list", json!({"state": "dead_lettered"})).await);
    assert_eq!(listed["jobs"][0]["job_id"], json!(id));

    // Delivered again (the host retries when it lost the answer): the outcome stands.
    let (status, body) = deliver_poison(app, json!(text)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(job(client, &id).await["error"], dead["error"]);

    // Not a job message: refused, so the host keeps it.
    let (status, body) = deliver_poison(
        app,
        json!(serde_json::to_string("just text").expect("encode")),
    )
    .await;
    assert_eq!(status, 500);
    assert!(
        body["Logs"][0].as_str().expect("log").contains("not JSON")
            || body["Logs"][0]
                .as_str()
                .expect("log")
                .contains("not a version 1 job message"),
        "{body}"
    );
}

#[tokio::test]
async fn a_poison_message_without_a_record_still_leaves_a_visible_job() {
    let setup = setup(vec![], &[]).await;
    let id = handler::jobs::JobId::new();
    let message = json!({
        "version": 1, "job_id": id, "kind": "powershell", "function": "Get-Orphan", "parameters": {},
        "tenant_id": CONTOSO, "caller": "someone", "created": "2026-11-23T10:05:00Z", "deadline": "2026-11-23T11:05:00Z",
        "retry_interrupted": true
    });
    let (status, body) = deliver_poison(&setup.app, json!(message.to_string())).await;
    assert_eq!(status, 200, "{body}");
    let record = job(&setup.client, id.as_str()).await;
    assert_eq!(record["state"], "dead_lettered");
    assert!(
        record["error"]["message"]
            .as_str()
            .expect("reason")
            .contains("had no record"),
        "{record}"
    );
}

/// Anyone with the storage key can write to the poison queue: a forged message must not create
/// a job for a tenant this server does not serve, move another tenant's job, or smuggle fields.
#[tokio::test]
async fn forged_poison_messages_are_refused_and_leave_no_job() {
    let setup = setup(vec![], &[]).await;
    let message = |id: &handler::jobs::JobId, tenant: &str| {
        json!({
            "version": 1, "job_id": id, "kind": "powershell", "function": "Get-Orphan", "parameters": {},
            "tenant_id": tenant, "caller": "someone", "created": "2026-11-23T10:05:00Z",
            "deadline": "2026-11-23T11:05:00Z", "retry_interrupted": true
        })
    };
    let outsider = "99999999-9999-4999-8999-999999999999";
    let id = handler::jobs::JobId::new();
    let (status, body) =
        deliver_poison(&setup.app, json!(message(&id, outsider).to_string())).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["Logs"][0]
            .as_str()
            .expect("log")
            .contains("allow-list"),
        "{body}"
    );
    let missing = call(&setup.client, "job_get", json!({"job_id": id})).await;
    assert!(
        missing.is_error == Some(true),
        "no job was created: {missing:?}"
    );

    let mut smuggled = message(&handler::jobs::JobId::new(), CONTOSO);
    smuggled["run_as"] = json!("admin");
    let (status, body) = deliver_poison(&setup.app, json!(smuggled.to_string())).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["Logs"][0].as_str().expect("log").contains("run_as"),
        "{body}"
    );

    let mut two_sources = message(&handler::jobs::JobId::new(), CONTOSO);
    two_sources["parameters_blob"] = json!("parameters/00000000-0000-4000-8000-000000000000.json");
    let (status, body) = deliver_poison(&setup.app, json!(two_sources.to_string())).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["Logs"][0].as_str().expect("log").contains("contract"),
        "{body}"
    );

    // A real job's id with another (allowed) tenant: the record's tenant wins, nothing changes.
    let real = handler::jobs::JobId::new();
    let (status, _) = deliver_poison(&setup.app, json!(message(&real, CONTOSO).to_string())).await;
    assert_eq!(status, 200);
    let (status, body) =
        deliver_poison(&setup.app, json!(message(&real, FABRIKAM).to_string())).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["Logs"][0]
            .as_str()
            .expect("log")
            .contains("was made for tenant"),
        "{body}"
    );
}

#[tokio::test]
async fn cancel_stops_a_queued_job_and_keeps_a_running_one_from_retrying() {
    let setup = setup(
        vec![greeting(), flaky("Set-Thing", ManifestEffect::Write, 2)],
        &[],
    )
    .await;
    let (client, worker) = (&setup.client, &setup.worker);

    let id = queued(
        client,
        "ps_Get-Greeting",
        json!({"tenant_id": CONTOSO, "Name": "Cy", "wait_seconds": 0}),
    )
    .await;
    let cancelled = ok(&call(client, "job_cancel", json!({"job_id": id})).await);
    assert_eq!(cancelled["outcome"], "cancelled");
    assert_eq!(cancelled["job"]["state"], "cancelled");
    assert_eq!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Completed)
    );
    assert_eq!(worker.runs_of(&id), 0, "a cancelled job never runs");
    assert_eq!(
        ok(&call(client, "job_cancel", json!({"job_id": id})).await)["outcome"],
        "already_cancelled"
    );

    let running = queued(
        client,
        "ps_Set-Thing",
        json!({"tenant_id": CONTOSO, "Target": "x", "wait_seconds": 0}),
    )
    .await;
    assert!(matches!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Failed(_))
    ));
    let requested = ok(&call(client, "job_cancel", json!({"job_id": running})).await);
    assert_eq!(requested["outcome"], "cancel_requested");
    assert!(requested["job"]["cancel_requested"].is_string());
    assert_eq!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Completed)
    );
    let after = job(client, &running).await;
    assert_eq!(after["state"], "cancelled", "{after}");
    assert_eq!(worker.runs_of(&running), 1, "not retried after the cancel");

    let _worker = run_in_background(worker);
    let done = ok(&call(
        client,
        "ps_Get-Greeting",
        json!({"tenant_id": CONTOSO, "Name": "Di", "wait_seconds": 30}),
    )
    .await);
    let message = err(&call(client, "job_cancel", json!({"job_id": done["job_id"]})).await);
    assert!(
        message.contains("already succeeded") && message.contains("only queued or running jobs"),
        "{message}"
    );
    let message = err(&call(
        client,
        "job_cancel",
        json!({"job_id": handler::jobs::JobId::new()}),
    )
    .await);
    assert!(message.contains("no job with id"), "{message}");
}

#[tokio::test]
async fn oversize_parameters_travel_in_a_blob() {
    let echo = function(
        "Import-Workbook",
        ManifestEffect::Write,
        vec![parameter("Content", ParameterType::String, true)],
        Arc::new(|parameters, _| {
            Act::Return(json!({"received_chars": parameters["Content"].as_str().map(str::len)}))
        }),
    );
    let setup = setup(vec![echo], &[]).await;
    let (client, worker) = (&setup.client, &setup.worker);
    let content = "x".repeat(100_000);
    let id = queued(
        client,
        "ps_Import-Workbook",
        json!({"tenant_id": CONTOSO, "Content": content, "wait_seconds": 0}),
    )
    .await;
    assert_eq!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Completed)
    );
    let sent: Value = serde_json::from_str(&worker.seen.lock().expect("lock")[0]).expect("json");
    assert!(
        sent.get("parameters").is_none()
            && sent["parameters_blob"] == json!(format!("parameters/{id}.json")),
        "{sent}"
    );
    assert!(
        worker.seen.lock().expect("lock")[0].len() < 2_000,
        "the message itself stays small"
    );
    let done = job(client, &id).await;
    assert_eq!(done["result"], json!({"received_chars": 100_000}), "{done}");

    // Small parameters stay inline.
    let small = queued(
        client,
        "ps_Import-Workbook",
        json!({"tenant_id": CONTOSO, "Content": "tiny", "wait_seconds": 0}),
    )
    .await;
    assert_eq!(
        worker.next_delivery(Duration::from_secs(10)).await,
        Some(Delivery::Completed)
    );
    let sent: Value = serde_json::from_str(&worker.seen.lock().expect("lock")[1]).expect("json");
    assert_eq!(sent["parameters"], json!({"Content": "tiny"}));
    assert_eq!(
        job(client, &small).await["result"],
        json!({"received_chars": 4})
    );
}

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    let mut names: Vec<String> = tools
        .iter()
        .filter(|t| t.name.starts_with("ps_"))
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_manifest_change_adds_and_removes_tools_without_a_restart() {
    let setup = setup(
        vec![greeting(), flaky("Set-Thing", ManifestEffect::Write, 1)],
        &[],
    )
    .await;
    let (client, worker) = (&setup.client, &setup.worker);
    assert_eq!(
        names(&client.list_all_tools().await.expect("list")),
        vec!["ps_Get-Greeting", "ps_Set-Thing"]
    );

    let mut manifest: Vec<_> = [
        flaky("Set-Thing", ManifestEffect::Write, 1),
        flaky("Remove-Thing", ManifestEffect::Destructive, 1),
    ]
    .into_iter()
    .map(|f| f.manifest)
    .collect();
    worker.publish(manifest.clone()).await;
    assert_eq!(
        names(&client.list_all_tools().await.expect("list")),
        vec!["ps_Remove-Thing", "ps_Set-Thing"]
    );
    let error = client
        .call_tool(
            CallToolRequestParams::new("ps_Get-Greeting").with_arguments(
                json!({"Name": "x"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
        )
        .await
        .expect_err("removed from the manifest");
    assert!(error.to_string().contains("unknown tool"), "{error}");

    // A function the handler cannot offer is left out; the rest still are.
    manifest[0]
        .parameters
        .push(parameter("wait_seconds", ParameterType::Integer, false));
    worker.publish(manifest).await;
    assert_eq!(
        names(&client.list_all_tools().await.expect("list")),
        vec!["ps_Remove-Thing"]
    );

    worker
        .blobs
        .delete(handler::jobs::contract::MANIFEST_BLOB)
        .await
        .expect("delete");
    assert!(
        names(&client.list_all_tools().await.expect("list")).is_empty(),
        "no manifest, no ps_ tools"
    );
    let jobs_tools = client.list_all_tools().await.expect("list");
    assert!(
        ["job_get", "job_list", "job_cancel"]
            .iter()
            .all(|name| jobs_tools.iter().any(|t| t.name == *name))
    );
}

#[tokio::test]
async fn read_only_mode_and_toolsets_apply_to_generated_tools() {
    let read_only = setup(
        vec![greeting(), flaky("Set-Thing", ManifestEffect::Write, 1)],
        &[("MCP_READ_ONLY", "true")],
    )
    .await;
    let tools = read_only.client.list_all_tools().await.expect("list");
    assert_eq!(
        names(&tools),
        vec!["ps_Get-Greeting"],
        "only the read function stays in read-only mode"
    );
    assert!(!tools.iter().any(|t| t.name == "job_cancel"));
    let error = read_only
        .client
        .call_tool(CallToolRequestParams::new("ps_Set-Thing"))
        .await
        .expect_err("hidden");
    assert!(error.to_string().contains("MCP_READ_ONLY"), "{error}");

    let off = setup(vec![greeting()], &[("MCP_TOOLSETS", "tenants,jobs")]).await;
    let tools = off.client.list_all_tools().await.expect("list");
    assert!(names(&tools).is_empty() && tools.iter().any(|t| t.name == "job_list"));
}

#[tokio::test]
async fn job_tools_refuse_bad_input_specifically() {
    let setup = setup(vec![], &[]).await;
    let client = &setup.client;
    let cases = [
        ("job_get", json!({"job_id": "abc"}), "is not a job id"),
        (
            "job_get",
            json!({"job_id": handler::jobs::JobId::new()}),
            "no job with id",
        ),
        (
            "job_get",
            json!({"job_id": handler::jobs::JobId::new(), "wait_seconds": 120}),
            "wait_seconds must be between 0 and 60",
        ),
        (
            "job_list",
            json!({"limit": 0}),
            "limit must be between 1 and 200",
        ),
        (
            "job_list",
            json!({"since": "last week"}),
            "since 'last week' is not understood",
        ),
        (
            "job_list",
            json!({"state": "done"}),
            "unknown variant `done`",
        ),
        (
            "job_list",
            json!({"tenant_id": "33333333-3333-4333-8333-333333333333"}),
            "allow-list",
        ),
        (
            "job_list",
            json!({"cursor": "garbage"}),
            "cursor is not one this server returned",
        ),
        (
            "job_list",
            json!({"cursor": "x", "state": "queued"}),
            "either filters or cursor",
        ),
        (
            "job_cancel",
            json!({"job_id": "abc", "force": true}),
            "unknown field `force`",
        ),
    ];
    for (tool, arguments, expected) in cases {
        let message = err(&call(client, tool, arguments.clone()).await);
        assert!(
            message.contains(expected),
            "{tool} {arguments}: '{message}' should contain '{expected}'"
        );
    }
}

/// A task-aware client gets a PowerShell job as a task, whose result is the function's output.
#[tokio::test]
async fn a_task_aware_client_gets_a_powershell_job_as_a_task_with_its_result() {
    use rmcp::model::{CallToolResponse, TaskPayload};

    let setup = setup(vec![greeting()], &[]).await;
    let client = connect_with_tasks(&setup.app.mcp_url()).await;
    let Value::Object(arguments) =
        json!({"tenant_id": CONTOSO, "Name": "Grace", "wait_seconds": 0})
    else {
        unreachable!()
    };
    let response = client
        .call_tool_once(CallToolRequestParams::new("ps_Get-Greeting").with_arguments(arguments))
        .await
        .expect("the call is answered");
    let CallToolResponse::Task(created) = response else {
        panic!("a queued job is a task: {response:?}");
    };
    let _worker = run_in_background(&setup.worker);
    let done = finished_task(&client, &created.task.task_id, 40).await;
    let TaskPayload::Completed { result } = &done.payload else {
        panic!("completed: {done:?}");
    };
    assert_eq!(
        result["structuredContent"]["result"],
        json!({"greeting": "Hello Grace", "tenant": CONTOSO}),
        "{result:?}"
    );
}
