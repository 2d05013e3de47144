//! Live response through the MCP client against the sandbox: the library (list, upload, delete),
//! running scripts with arguments, copying and collecting files, and reading results.

use crate::common;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

fn library_names(output: &Value) -> Vec<String> {
    output["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["fileName"].as_str().expect("name").to_string())
        .collect()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn session(client: &McpClient, tool: &str, machine: &str, options: Value) -> Value {
    let mut arguments = json!({"tenant_id": CONTOSO, "machine_ids": [machine], "comment": "IR-42", "wait_seconds": 5});
    for (key, value) in options.as_object().expect("options") {
        arguments[key] = value.clone();
    }
    let output = ok(&call_confirmed(client, tool, arguments).await);
    output["results"][0].clone()
}

#[tokio::test]
async fn the_library_is_listed_uploaded_to_and_deleted_from() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let listed = ok(&call_confirmed(
        &client,
        "mde_list_library_files",
        json!({"tenant_id": CONTOSO}),
    )
    .await);
    assert_eq!(
        library_names(&listed),
        vec![
            "Collect-Triage.ps1",
            "Get-RunningProcesses.ps1",
            "Remove-Persistence.ps1"
        ]
    );

    let script = "# Find-Persistence.ps1\n# Lists Run keys and scheduled tasks\nparam($Depth)\nWrite-Output 'ok'\n";
    let upload = json!({"tenant_id": CONTOSO, "file_name": "Find-Persistence.ps1", "content_base64": b64(script),
                        "description": "Persistence sweep", "parameters_description": "-Depth <n>"});
    let uploaded = ok(&call_confirmed(&client, "mde_upload_library_file", upload.clone()).await);
    assert_eq!(uploaded["bytes"], script.len());
    assert_eq!(uploaded["file"]["hasParameters"], true);
    assert_eq!(uploaded["file"]["parametersDescription"], "-Depth <n>");
    let listed = ok(&call_confirmed(
        &client,
        "mde_list_library_files",
        json!({"tenant_id": CONTOSO}),
    )
    .await);
    assert!(library_names(&listed).contains(&"Find-Persistence.ps1".to_string()));
    assert!(
        !library_names(&ok(&call_confirmed(
            &client,
            "mde_list_library_files",
            json!({"tenant_id": FABRIKAM})
        )
        .await))
        .contains(&"Find-Persistence.ps1".to_string())
    );

    let conflict = err(&call_confirmed(&client, "mde_upload_library_file", upload.clone()).await);
    assert!(conflict.contains("already exists"), "{conflict}");
    let mut replace = upload.clone();
    replace["override_if_exists"] = json!(true);
    ok(&call_confirmed(&client, "mde_upload_library_file", replace).await);

    let cases = [
        (
            json!({"tenant_id": CONTOSO, "file_name": "x.ps1", "content_base64": "not base64!"}),
            "not valid base64",
        ),
        (
            json!({"tenant_id": CONTOSO, "file_name": "x.ps1", "content_base64": ""}),
            "empty file",
        ),
        (
            json!({"tenant_id": CONTOSO, "file_name": "../x.ps1", "content_base64": b64("x")}),
            "not a library file name",
        ),
    ];
    for (arguments, expected) in cases {
        let message =
            err(&call_confirmed(&client, "mde_upload_library_file", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }

    let deleted = ok(&call_confirmed(
        &client,
        "mde_delete_library_file",
        json!({"tenant_id": CONTOSO, "file_name": "Find-Persistence.ps1"}),
    )
    .await);
    assert_eq!(deleted["deleted"], "Find-Persistence.ps1");
    let again = err(&call_confirmed(
        &client,
        "mde_delete_library_file",
        json!({"tenant_id": CONTOSO, "file_name": "Find-Persistence.ps1"}),
    )
    .await);
    assert!(
        again.contains("no library file named Find-Persistence.ps1"),
        "{again}"
    );
}

#[tokio::test]
async fn a_script_runs_with_arguments_and_its_output_is_read() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let device = session(
        &client,
        "mde_live_response_run_script",
        &ids[0],
        json!({"script_name": "Collect-Triage.ps1", "args": "-OutputPath C:\\temp"}),
    )
    .await;
    assert_eq!(device["outcome"], "done", "{device}");
    assert_eq!(device["action_status"], "Succeeded");
    let action_id = device["action_id"].as_str().expect("action id");

    let result = ok(&call_confirmed(
        &client,
        "mde_get_live_response_result",
        json!({"tenant_id": CONTOSO, "action_id": action_id}),
    )
    .await);
    assert_eq!(result["command_type"], "RunScript");
    let script = &result["script"];
    assert_eq!(script["exit_code"], 0, "{result}");
    assert_eq!(script["script_name"], "Collect-Triage.ps1");
    let output = script["output"].as_str().expect("output");
    assert!(
        output.contains("-OutputPath C:\\temp"),
        "the arguments reached the script: {output}"
    );
    assert!(output.contains("Collects running processes"), "{output}");
    assert_eq!(script["output_truncated"], false);

    let message = err(&call_confirmed(
        &client,
        "mde_get_live_response_result",
        json!({"tenant_id": CONTOSO, "action_id": action_id, "command_index": 3}),
    )
    .await);
    assert!(
        message.contains("out of range") && message.contains("1 command"),
        "{message}"
    );

    // A script that is not in the library is refused by Defender for that device.
    let missing = session(
        &client,
        "mde_live_response_run_script",
        &ids[0],
        json!({"script_name": "Nope.ps1"}),
    )
    .await;
    assert_eq!(missing["outcome"], "failed");
    assert!(
        missing["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not found in the live response library")),
        "{missing}"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_live_response_run_script",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "x", "script_name": "a.ps1", "args": "one\ntwo"}),
    )
    .await);
    assert!(message.contains("control characters"), "{message}");
}

#[tokio::test]
async fn files_are_copied_to_and_collected_from_devices() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let put = session(
        &client,
        "mde_live_response_put_file",
        &ids[0],
        json!({"file_name": "Get-RunningProcesses.ps1"}),
    )
    .await;
    assert_eq!(put["action_status"], "Succeeded", "{put}");
    let put_result = ok(&call_confirmed(
        &client,
        "mde_get_live_response_result",
        json!({"tenant_id": CONTOSO, "action_id": put["action_id"]}),
    )
    .await);
    assert!(
        put_result["note"]
            .as_str()
            .is_some_and(|n| n.contains("no downloadable result")),
        "{put_result}"
    );

    let get = session(
        &client,
        "mde_live_response_get_file",
        &ids[0],
        json!({"path": "C:\\Users\\alice\\Downloads\\invoice_2024.docm"}),
    )
    .await;
    assert_eq!(get["action_status"], "Succeeded", "{get}");
    let result = ok(&call_confirmed(
        &client,
        "mde_get_live_response_result",
        json!({"tenant_id": CONTOSO, "action_id": get["action_id"]}),
    )
    .await);
    let url = result["download_url"].as_str().expect("download link");
    let certificate =
        reqwest::Certificate::from_pem_bundle(app.sandbox.ca_certificate_pem().as_bytes())
            .expect("ca");
    let http = reqwest::Client::builder()
        .tls_certs_merge(certificate)
        .build()
        .expect("client");
    let response = http.get(url).send().await.expect("download");
    assert!(response.status().is_success());
    let bytes = response.bytes().await.expect("body");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip file");

    let message = err(&call_confirmed(
        &client,
        "mde_live_response_get_file",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "x", "path": " "}),
    )
    .await);
    assert!(message.contains("full file path"), "{message}");
}

#[tokio::test]
async fn results_say_when_they_are_not_ready_or_not_live_response() {
    let mut options = fast_sandbox_options();
    options.action_timings.pending = std::time::Duration::from_secs(30);
    let app = TestApp::start_with(options, &[]).await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let started = ok(&call_confirmed(
        &client,
        "mde_live_response_run_script",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "x", "script_name": "Get-RunningProcesses.ps1"}),
    )
    .await);
    let action_id = started["results"][0]["action_id"]
        .as_str()
        .expect("id")
        .to_string();
    let pending = ok(&call_confirmed(
        &client,
        "mde_get_live_response_result",
        json!({"tenant_id": CONTOSO, "action_id": action_id}),
    )
    .await);
    assert!(
        pending["note"]
            .as_str()
            .is_some_and(|n| n.contains("Pending") && n.contains("mde_get_machine_action")),
        "{pending}"
    );
    assert!(pending["script"].is_null());

    // One session per device at a time.
    let second = ok(&call_confirmed(
        &client,
        "mde_live_response_put_file",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "x", "file_name": "Collect-Triage.ps1"}),
    )
    .await);
    assert_eq!(
        second["results"][0]["outcome"], "already_pending",
        "{second}"
    );

    let scan = ok(&call_confirmed(
        &client,
        "mde_run_antivirus_scan",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "x"}),
    )
    .await);
    let message = err(&call_confirmed(
        &client,
        "mde_get_live_response_result",
        json!({"tenant_id": CONTOSO, "action_id": scan["results"][0]["action_id"]}),
    )
    .await);
    assert!(message.contains("not a live response session"), "{message}");
}

#[tokio::test]
async fn a_session_longer_than_the_call_is_followed_by_its_operation_until_it_ends() {
    // The session stays pending past the call's inline window (OPS_INLINE_SECONDS=1): the call
    // answers with the operation, which follows the session and ends when Defender does.
    let mut options = fast_sandbox_options();
    options.action_timings.pending = std::time::Duration::from_secs(4);
    let app = TestApp::start_with(options, &[("OPS_INLINE_SECONDS", "1")]).await;
    let client = app.client().await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 1).await;
    let started = ok(&call_confirmed(
        &client,
        "mde_live_response_run_script",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "IR-7", "script_name": "Get-RunningProcesses.ps1"}),
    )
    .await);
    assert_eq!(started["operation_state"], "running", "{started}");
    assert_eq!(started["results"][0]["outcome"], "running", "{started}");
    assert_eq!(started["counts"]["running"], 1);
    let operation = started["operation_id"].as_str().expect("operation id");
    let view = job_when_ended(&client, operation, 6).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["progress"]["done"], 1, "{view}");
    assert_eq!(view["targets"][0]["status"], "Succeeded", "{view}");
    // The output is ready when the operation says so.
    let result = ok(&call_confirmed(
        &client,
        "mde_get_live_response_result",
        json!({"tenant_id": CONTOSO, "action_id": view["targets"][0]["reference"]}),
    )
    .await);
    assert_eq!(result["script"]["exit_code"], 0, "{result}");
}
