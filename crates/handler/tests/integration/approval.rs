//! Human approval of destructive tools (MCP elicitation over MRTR, or the two-step confirmation
//! fallback), its binding to arguments, caller and instance key, single use, and the durable
//! audit trail that records every call. The destructive tool is a test-only one.

use crate::common;

use common::destructive::{self, WipeMachines};
use common::entra::LocalEntra;
use common::*;
use rmcp::model::{CallToolRequestParams, CallToolResponse, ElicitResult, ElicitationAction};
use serde_json::{Value, json};

const SHARED_KEY: &str = "0123456789abcdef0123456789abcdef-test-approval-key";

struct Fixture {
    entra: LocalEntra,
    app: TestApp,
    wipe: WipeMachines,
}

async fn fixture(extra: &[(&str, &str)]) -> Fixture {
    let entra = LocalEntra::start().await;
    let wipe = WipeMachines::default();
    let app = start_on(&entra, &wipe, extra).await;
    Fixture { entra, app, wipe }
}

async fn start_on(entra: &LocalEntra, wipe: &WipeMachines, extra: &[(&str, &str)]) -> TestApp {
    let mut settings: Vec<(&str, String)> = entra.settings();
    settings.push(("APPROVAL_SIGNING_KEY", SHARED_KEY.into()));
    settings.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::start_custom(fast_sandbox_options(), &pairs, |_| {}, wipe.register()).await
}

/// A caller id of its own per test, so audit searches find only that test's records.
fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4())
}

fn wipe_args() -> Value {
    json!({"tenant_id": CONTOSO, "machine_ids": ["ws-fin-014", "ws-fin-015"], "comment": "ransomware containment"})
}

fn with_token(arguments: &Value, token: &str) -> Value {
    let mut arguments = arguments.clone();
    arguments["confirmation_token"] = json!(token);
    arguments
}

fn token_in(message: &str) -> String {
    confirmation_token(message).unwrap_or_else(|| panic!("no confirmation token in {message}"))
}

#[tokio::test]
async fn a_destructive_call_without_approval_is_refused_when_the_client_cannot_ask() {
    let f = fixture(&[("APPROVAL_FALLBACK", "refuse")]).await;
    let client = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("alice"), &["MCP.Responder"]),
    )
    .await;
    let message = err(&call(&client, destructive::NAME, wipe_args()).await);
    assert!(
        message.contains("needs a person's approval")
            && message.contains("APPROVAL_FALLBACK=refuse"),
        "{message}"
    );
    // A token the model makes up does not help.
    let message = err(&call(
        &client,
        destructive::NAME,
        with_token(&wipe_args(), "rs1.made-up"),
    )
    .await);
    assert!(message.contains("does not match this call"), "{message}");
    assert_eq!(f.wipe.runs(), 0);
}

#[tokio::test]
async fn two_step_confirmation_is_bound_to_arguments_and_caller_and_works_once() {
    let f = fixture(&[("APPROVAL_FALLBACK", "confirm")]).await;
    let alice = unique("alice");
    let client =
        connect_with_token(&f.app.mcp_url(), &f.entra.token(&alice, &["MCP.Responder"])).await;
    let preview = err(&call(&client, destructive::NAME, wipe_args()).await);
    assert!(
        preview.starts_with("CONFIRMATION REQUIRED - nothing was done yet"),
        "{preview}"
    );
    assert!(
        preview.contains("Wipe 2 devices")
            && preview.contains("- device ws-fin-014: wiped")
            && preview.contains("- device ws-fin-015: wiped"),
        "the plan names every target: {preview}"
    );
    assert!(
        preview.contains(&format!("Tenant: Contoso ({CONTOSO})")),
        "the tenant by name: {preview}"
    );
    assert_eq!(f.wipe.runs(), 0);
    let token = token_in(&preview);

    // Other arguments (one more device) do not match the token.
    let mut widened = wipe_args();
    widened["machine_ids"] = json!(["ws-fin-014", "ws-fin-015", "dc-01"]);
    let message = err(&call(&client, destructive::NAME, with_token(&widened, &token)).await);
    assert!(message.contains("does not match this call"), "{message}");
    // Another caller cannot use it.
    let bob = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("bob"), &["MCP.Responder"]),
    )
    .await;
    let message = err(&call(&bob, destructive::NAME, with_token(&wipe_args(), &token)).await);
    assert!(message.contains("does not match this call"), "{message}");
    assert_eq!(f.wipe.runs(), 0);

    let done = ok(&call(&client, destructive::NAME, with_token(&wipe_args(), &token)).await);
    assert_eq!(done["machines"], json!(2));
    assert_eq!(f.wipe.runs(), 1);
    let replay = err(&call(&client, destructive::NAME, with_token(&wipe_args(), &token)).await);
    assert!(replay.contains("already used"), "{replay}");
    assert_eq!(f.wipe.runs(), 1, "a replayed confirmation does nothing");
}

#[tokio::test]
async fn a_confirmation_issued_by_one_instance_is_honoured_by_another_with_the_same_key_only() {
    let entra = LocalEntra::start().await;
    let wipe = WipeMachines::default();
    let first = start_on(&entra, &wipe, &[("APPROVAL_FALLBACK", "confirm")]).await;
    let second = start_on(&entra, &wipe, &[("APPROVAL_FALLBACK", "confirm")]).await;
    let other_key = start_on(
        &entra,
        &wipe,
        &[
            ("APPROVAL_FALLBACK", "confirm"),
            (
                "APPROVAL_SIGNING_KEY",
                "another-key-of-at-least-32-bytes-long!",
            ),
        ],
    )
    .await;
    let token = entra.token(&unique("alice"), &["MCP.Responder"]);
    let on_first = connect_with_token(&first.mcp_url(), &token).await;
    let confirmation = token_in(&err(&call(&on_first, destructive::NAME, wipe_args()).await));
    let on_other_key = connect_with_token(&other_key.mcp_url(), &token).await;
    let message = err(&call(
        &on_other_key,
        destructive::NAME,
        with_token(&wipe_args(), &confirmation),
    )
    .await);
    assert!(message.contains("does not match this call"), "{message}");
    let on_second = connect_with_token(&second.mcp_url(), &token).await;
    ok(&call(
        &on_second,
        destructive::NAME,
        with_token(&wipe_args(), &confirmation),
    )
    .await);
    let message = err(&call(
        &on_first,
        destructive::NAME,
        with_token(&wipe_args(), &confirmation),
    )
    .await);
    assert!(
        message.contains("already used"),
        "single use holds across instances: {message}"
    );
    assert_eq!(wipe.runs(), 1);
}

#[tokio::test]
async fn a_client_that_can_elicit_asks_the_person_and_acts_only_on_approval() {
    let f = fixture(&[("APPROVAL_FALLBACK", "refuse")]).await;
    let token = f.entra.token(&unique("alice"), &["MCP.Responder"]);
    let (declining, _) = connect_approver(&f.app.mcp_url(), Some(&token), false).await;
    let message = err(&call(&declining, destructive::NAME, wipe_args()).await);
    assert!(message.contains("did not approve"), "{message}");
    assert_eq!(f.wipe.runs(), 0);

    let (approving, prompts) = connect_approver(&f.app.mcp_url(), Some(&token), true).await;
    let done = ok(&call(&approving, destructive::NAME, wipe_args()).await);
    assert_eq!(done["machines"], json!(2));
    assert_eq!(f.wipe.runs(), 1);
    let prompts = prompts.lock().expect("prompts").clone();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0].contains("ws-fin-014")
            && prompts[0].contains("ws-fin-015")
            && prompts[0].contains("Contoso"),
        "{}",
        prompts[0]
    );
}

#[tokio::test]
async fn an_elicitation_answer_cannot_be_replayed_or_moved_to_other_arguments() {
    let f = fixture(&[]).await;
    let token = f.entra.token(&unique("alice"), &["MCP.Responder"]);
    let (client, _) = connect_approver(&f.app.mcp_url(), Some(&token), true).await;
    let params = |arguments: Value| {
        CallToolRequestParams::new(destructive::NAME)
            .with_arguments(arguments.as_object().cloned().expect("object"))
    };
    let asked = match client
        .peer()
        .call_tool_once(params(wipe_args()))
        .await
        .expect("first round")
    {
        CallToolResponse::InputRequired(asked) => asked,
        other => panic!("expected input_required, got {other:?}"),
    };
    let state = asked.request_state.clone().expect("request state");
    assert!(
        asked
            .input_requests
            .as_ref()
            .is_some_and(|r| r.contains_key("approval")),
        "{asked:?}"
    );
    let approve = [(
        "approval".to_string(),
        serde_json::to_value(
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": true})),
        )
        .expect("json"),
    )]
    .into_iter()
    .collect::<rmcp::model::InputResponses>();
    let retry = |arguments: Value| {
        params(arguments)
            .with_input_responses(approve.clone())
            .with_request_state(state.clone())
    };

    let mut widened = wipe_args();
    widened["machine_ids"] = json!(["dc-01"]);
    let moved = client
        .peer()
        .call_tool_once(retry(widened))
        .await
        .expect("round");
    assert!(
        matches!(&moved, CallToolResponse::Complete(r) if text(r).contains("does not match this call")),
        "{moved:?}"
    );
    let mut tampered = state.clone();
    tampered.push('x');
    let forged = client
        .peer()
        .call_tool_once(
            params(wipe_args())
                .with_input_responses(approve.clone())
                .with_request_state(tampered),
        )
        .await
        .expect("round");
    assert!(
        matches!(&forged, CallToolResponse::Complete(r) if r.is_error == Some(true)),
        "{forged:?}"
    );
    assert_eq!(f.wipe.runs(), 0);

    let done = client
        .peer()
        .call_tool_once(retry(wipe_args()))
        .await
        .expect("round");
    assert!(
        matches!(&done, CallToolResponse::Complete(r) if r.is_error != Some(true)),
        "{done:?}"
    );
    let replayed = client
        .peer()
        .call_tool_once(retry(wipe_args()))
        .await
        .expect("round");
    assert!(
        matches!(&replayed, CallToolResponse::Complete(r) if text(r).contains("already used")),
        "{replayed:?}"
    );
    assert_eq!(f.wipe.runs(), 1);
}

#[tokio::test]
async fn read_only_mode_removes_destructive_tools_and_disallowed_tenants_are_refused_before_approval()
 {
    let f = fixture(&[("MCP_READ_ONLY", "true")]).await;
    let client = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("alice"), &["MCP.Admin"]),
    )
    .await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().all(|t| t.name != destructive::NAME));
    let error = client
        .call_tool(
            CallToolRequestParams::new(destructive::NAME)
                .with_arguments(wipe_args().as_object().cloned().expect("object")),
        )
        .await
        .expect_err("read-only");
    assert!(
        error.to_string().contains("read-only mode (MCP_READ_ONLY)"),
        "{error}"
    );

    let g = fixture(&[("APPROVAL_FALLBACK", "confirm")]).await;
    let client = connect_with_token(
        &g.app.mcp_url(),
        &g.entra.token(&unique("alice"), &["MCP.Responder"]),
    )
    .await;
    let mut elsewhere = wipe_args();
    elsewhere["tenant_id"] = json!("33333333-3333-4333-8333-333333333333");
    let message = err(&call(&client, destructive::NAME, elsewhere).await);
    assert!(
        message.contains("not on this server's tenant allow-list")
            && !message.contains("CONFIRMATION"),
        "{message}"
    );
    assert!(
        g.app.sandbox.stats().tokens_issued.is_empty(),
        "no token was requested"
    );
}

#[tokio::test]
async fn oversized_arguments_are_refused_with_the_limit() {
    let f = fixture(&[("MCP_MAX_ARGUMENT_BYTES", "300")]).await;
    let client = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("alice"), &["MCP.Reader"]),
    )
    .await;
    let message = err(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "filter": "x".repeat(400)}),
    )
    .await);
    assert!(
        message.contains("MCP_MAX_ARGUMENT_BYTES") && message.contains("at most 300"),
        "{message}"
    );
    ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 1}),
    )
    .await);
}

#[tokio::test]
async fn every_call_is_in_the_audit_trail_and_admins_can_search_it() {
    let f = fixture(&[("APPROVAL_FALLBACK", "confirm")]).await;
    let alice = unique("alice");
    let responder =
        connect_with_token(&f.app.mcp_url(), &f.entra.token(&alice, &["MCP.Responder"])).await;
    let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    ok(&call(
        &responder,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 1}),
    )
    .await);
    let token = token_in(&err(&call(&responder, destructive::NAME, wipe_args()).await));
    let done = ok(&call(
        &responder,
        destructive::NAME,
        with_token(&wipe_args(), &token),
    )
    .await);
    err(&call(
        &responder,
        destructive::NAME,
        with_token(&wipe_args(), &token),
    )
    .await);
    responder
        .call_tool(CallToolRequestParams::new("audit_search"))
        .await
        .expect_err("responders cannot search the audit trail");

    let admin = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("auditor"), &["MCP.Admin"]),
    )
    .await;
    let since = started
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let found = ok(&call(
        &admin,
        "audit_search",
        json!({"caller": alice, "since": since, "fields": ["all"]}),
    )
    .await);
    let records = found["records"].as_array().expect("records");
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(
        outcomes,
        vec!["ok", "pending_approval", "ok", "refused", "refused"],
        "{records:#?}"
    );
    let tools: Vec<&str> = records
        .iter()
        .map(|r| r["tool"].as_str().expect("tool"))
        .collect();
    assert_eq!(
        tools,
        vec![
            "mde_list_machines",
            destructive::NAME,
            destructive::NAME,
            destructive::NAME,
            "audit_search"
        ]
    );
    let executed = &records[2];
    assert_eq!(executed["approval"], json!("approved_by_confirmation"));
    assert_eq!(executed["action_ids"], json!([done["action_id"]]));
    assert_eq!(executed["tenant"], json!(CONTOSO));
    assert_eq!(
        executed["arguments"]["confirmation_token"],
        json!("[redacted]"),
        "the token is not kept"
    );
    assert_eq!(
        executed["arguments"]["machine_ids"],
        json!(["ws-fin-014", "ws-fin-015"])
    );
    assert_eq!(executed["roles"], json!(["MCP.Responder"]));
    assert_eq!(
        executed["caller_name"],
        json!(format!("{alice}@contoso.example"))
    );
    assert!(
        records[4]["error"]
            .as_str()
            .is_some_and(|e| e.contains("'MCP.Admin'")),
        "{}",
        records[4]
    );
    assert!(
        !found.to_string().contains(&token),
        "no confirmation token anywhere in the trail"
    );

    // Paging: one record at a time, nothing lost or repeated.
    let mut cursor: Option<String> = None;
    let mut paged = Vec::new();
    loop {
        let arguments = match &cursor {
            None => json!({"caller": alice, "since": since, "limit": 1, "fields": ["id"]}),
            Some(cursor) => json!({"cursor": cursor, "limit": 1, "fields": ["id"]}),
        };
        let page = ok(&call(&admin, "audit_search", arguments).await);
        paged.extend(
            page["records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| r["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let ids: Vec<Value> = records.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(paged, ids);

    let filtered = ok(&call(
        &admin,
        "audit_search",
        json!({"caller": alice, "since": since, "outcome": "refused", "tool": destructive::NAME}),
    )
    .await);
    assert_eq!(filtered["records"].as_array().expect("records").len(), 1);
    for (arguments, expected) in [
        (
            json!({"since": "yesterday"}),
            "since 'yesterday' is not understood",
        ),
        (json!({"until": "soon"}), "until 'soon' is not understood"),
        (
            json!({"since": "2026-03-10T00:00:00Z", "until": "2026-01-01T00:00:00Z"}),
            "since must be before until",
        ),
        (
            json!({"since": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}),
            "at most 92 days",
        ),
        (
            json!({"cursor": "garbage"}),
            "cursor is not one this server returned",
        ),
        (json!({"cursor": "x", "tool": "y"}), "either a cursor"),
        (json!({"limit": 0}), "limit must be between 1 and 200"),
        (json!({"outcome": "maybe"}), "unknown variant"),
    ] {
        let message = err(&call(&admin, "audit_search", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
}
