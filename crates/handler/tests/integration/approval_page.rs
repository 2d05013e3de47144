//! The approval page: a destructive call is validated and planned, a person approves the plan on
//! `/api/approvals/{id}` (signed in as themselves through App Service authentication), and the
//! call runs once, only for that plan. Four eyes, caps, the kill switch, and the page's defences
//! (CSRF, cross-site and replayed posts) are each shown refusing. One test drives the page in
//! headless Chromium.

use crate::common;

use base64::Engine as _;
use common::destructive::{self, WipeMachines};
use common::entra::{HOME_TENANT, LocalEntra};
use common::*;
use serde_json::{Value, json};

struct Fixture {
    entra: LocalEntra,
    app: TestApp,
    wipe: WipeMachines,
}

/// Entra-signed callers, with App Service authentication announced in front of the app (the
/// tests send its principal header, as the platform would).
async fn fixture(extra: &[(&str, &str)]) -> Fixture {
    let entra = LocalEntra::start().await;
    let wipe = WipeMachines::default();
    let mut settings: Vec<(&str, String)> = entra.settings();
    settings.push(("APPROVAL_FALLBACK", "page".into()));
    settings.push(("WEBSITE_AUTH_ENABLED", "true".into()));
    settings.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::start_custom(fast_sandbox_options(), &pairs, |_| {}, wipe.register()).await;
    Fixture { entra, app, wipe }
}

/// Now, for audit searches that must see only this test's records (the trail of a shared
/// Azurite holds every earlier run's, and one page scans a bounded number of them).
fn started() -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::seconds(5))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time")
}

fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4())
}

fn wipe_args() -> Value {
    json!({"tenant_id": CONTOSO, "machine_ids": ["ws-fin-014", "ws-fin-015"], "comment": "ransomware containment"})
}

fn with_approval(arguments: &Value, id: &str) -> Value {
    let mut arguments = arguments.clone();
    arguments["approval_id"] = json!(id);
    arguments
}

/// The `X-MS-CLIENT-PRINCIPAL` App Service authentication passes for a signed-in person.
fn principal(oid: &str, roles: &[&str]) -> String {
    let mut claims = vec![
        json!({"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": HOME_TENANT}),
        json!({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid}),
        json!({"typ": "name", "val": format!("{oid}@contoso.example")}),
    ];
    claims.extend(
        roles
            .iter()
            .map(|role| json!({"typ": "roles", "val": role})),
    );
    base64::engine::general_purpose::STANDARD
        .encode(json!({"auth_typ": "aad", "claims": claims}).to_string())
}

/// Asks for the wipe as `oid` and returns the client, the approval id and the page URL.
async fn asked(f: &Fixture, oid: &str) -> (McpClient, String, String) {
    let client =
        connect_with_token(&f.app.mcp_url(), &f.entra.token(oid, &["MCP.Responder"])).await;
    let message = err(&call(&client, destructive::NAME, wipe_args()).await);
    assert!(
        message.starts_with("APPROVAL REQUIRED - nothing was done yet"),
        "{message}"
    );
    let (id, url) = approval_page(&message).unwrap_or_else(|| panic!("no page in {message}"));
    (client, id, url)
}

#[tokio::test]
async fn a_person_approves_the_plan_on_the_page_and_the_call_runs_once() {
    let since = started();
    let f = fixture(&[]).await;
    let alice = unique("alice");
    let (client, id, url) = asked(&f, &alice).await;
    assert_eq!(f.wipe.runs(), 0);

    // Not decided yet: nothing runs.
    let waiting = err(&call(&client, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert!(waiting.contains("still waiting"), "{waiting}");

    // The page names the tenant, every target and the requester; the person approves.
    let me = principal(&alice, &["MCP.Responder"]);
    let page = reqwest::Client::new()
        .get(&url)
        .header("x-ms-client-principal", &me)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .split(';')
            .next(),
        Some("default-src 'none'")
    );
    let html = page.text().await.expect("html");
    for expected in [
        "Contoso",
        CONTOSO,
        "ws-fin-014",
        "ws-fin-015",
        &format!("{alice}@contoso.example"),
        "value=\"approve\"",
    ] {
        assert!(html.contains(expected), "{expected} missing from {html}");
    }
    let (status, answer) = decide_on_page(&url, "approve", &[("x-ms-client-principal", &me)]).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("Approved."), "{answer}");

    // Other arguments, another caller: refused; the approved call runs once; a replay is refused.
    let mut widened = wipe_args();
    widened["machine_ids"] = json!(["ws-fin-014", "ws-fin-015", "dc-01"]);
    let moved = err(&call(&client, destructive::NAME, with_approval(&widened, &id)).await);
    assert!(
        moved.contains("another caller or with other arguments"),
        "{moved}"
    );
    let bob = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("bob"), &["MCP.Responder"]),
    )
    .await;
    let stolen = err(&call(&bob, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert!(
        stolen.contains("another caller or with other arguments"),
        "{stolen}"
    );
    assert_eq!(f.wipe.runs(), 0);

    let done = ok(&call(&client, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert_eq!(done["machines"], json!(2));
    let replay = err(&call(&client, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert!(replay.contains("already used"), "{replay}");
    assert_eq!(f.wipe.runs(), 1);

    // The trail has the request, the decision (by whom) and the run, all with the approval id.
    let admin = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("auditor"), &["MCP.Admin"]),
    )
    .await;
    let found = ok(&call(
        &admin,
        "audit_search",
        json!({"caller": alice, "tool": destructive::NAME, "since": since, "fields": ["all"]}),
    )
    .await);
    let records = found["records"].as_array().expect("records");
    let with_id: Vec<&Value> = records
        .iter()
        .filter(|r| r["approval_id"] == json!(id))
        .collect();
    let approvals: Vec<&str> = with_id
        .iter()
        .map(|r| r["approval"].as_str().unwrap_or("none"))
        .collect();
    assert!(approvals.contains(&"page_requested"), "{records:#?}");
    assert!(approvals.contains(&"approved_on_page"), "{records:#?}");
    let executed = with_id
        .iter()
        .find(|r| r["outcome"] == json!("ok") && r["action_ids"] != json!([]))
        .unwrap_or_else(|| panic!("no executed record in {records:#?}"));
    assert_eq!(
        executed["approver"],
        json!(format!("{alice}@contoso.example"))
    );
}

#[tokio::test]
async fn an_approval_does_not_cover_a_plan_that_changed() {
    let f = fixture(&[]).await;
    let alice = unique("alice");
    let (client, id, url) = asked(&f, &alice).await;
    let me = principal(&alice, &["MCP.Responder"]);
    let (status, _) = decide_on_page(&url, "approve", &[("x-ms-client-principal", &me)]).await;
    assert_eq!(status, 200);
    // The same arguments now resolve to one more device.
    f.wipe.also_match("dc-01");
    let changed = err(&call(&client, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert!(
        changed.contains("the plan changed") && changed.contains("dc-01"),
        "{changed}"
    );
    assert_eq!(f.wipe.runs(), 0);
}

#[tokio::test]
async fn a_denial_stops_the_call() {
    let f = fixture(&[]).await;
    let alice = unique("alice");
    let (client, id, url) = asked(&f, &alice).await;
    let me = principal(&alice, &["MCP.Responder"]);
    let (status, answer) = decide_on_page(&url, "deny", &[("x-ms-client-principal", &me)]).await;
    assert_eq!(status, 200, "{answer}");
    let denied = err(&call(&client, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert!(denied.contains("denied"), "{denied}");
    assert_eq!(f.wipe.runs(), 0);
}

#[tokio::test]
async fn with_four_eyes_the_requester_cannot_approve_and_an_approver_can() {
    let since = started();
    let f = fixture(&[("APPROVAL_SECOND_PERSON", "destructive")]).await;
    let alice = unique("alice");
    let (client, id, url) = asked(&f, &alice).await;
    let http = reqwest::Client::new();

    // The requester sees no Approve button, and a forged approve is refused.
    let me = principal(&alice, &["MCP.Responder"]);
    let html = http
        .get(&url)
        .header("x-ms-client-principal", &me)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        !html.contains("value=\"approve\"") && html.contains("value=\"deny\""),
        "{html}"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf");
    let origin = url.split("/api/").next().expect("origin");
    let forged = http
        .post(&url)
        .header("x-ms-client-principal", &me)
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("action=approve&csrf={csrf}"))
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);

    // A colleague with only the Responder role may not approve either.
    let bob = principal(&unique("bob"), &["MCP.Responder"]);
    let (status, _) = decide_on_page(&url, "approve", &[("x-ms-client-principal", &bob)]).await;
    assert_ne!(status, 200);
    // The requester's other routes to approval are closed too.
    let confirm = err(&call(&client, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert!(confirm.contains("still waiting"), "{confirm}");
    assert_eq!(f.wipe.runs(), 0);

    // An approver approves; the requester's call runs; both identities are in the trail.
    let carol = unique("carol");
    let approver = principal(&carol, &["MCP.Approver"]);
    let (status, answer) =
        decide_on_page(&url, "approve", &[("x-ms-client-principal", &approver)]).await;
    assert_eq!(status, 200, "{answer}");
    let done = ok(&call(&client, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert_eq!(done["machines"], json!(2));
    assert_eq!(f.wipe.runs(), 1);
    let admin = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("auditor"), &["MCP.Admin"]),
    )
    .await;
    let decision = ok(&call(
        &admin,
        "audit_search",
        json!({"caller": carol, "since": since, "fields": ["all"]}),
    )
    .await);
    assert_eq!(
        decision["records"][0]["approval"],
        json!("approved_on_page"),
        "{decision}"
    );
    assert_eq!(decision["records"][0]["approval_id"], json!(id));
    let run = ok(&call(
        &admin,
        "audit_search",
        json!({"caller": alice, "outcome": "ok", "since": since, "fields": ["all"]}),
    )
    .await);
    assert_eq!(
        run["records"][0]["approver"],
        json!(format!("{carol}@contoso.example")),
        "{run}"
    );
}

#[tokio::test]
async fn the_page_refuses_cross_site_replayed_and_tokenless_posts_and_unsigned_visitors() {
    let f = fixture(&[]).await;
    let alice = unique("alice");
    let (_client, _id, url) = asked(&f, &alice).await;
    let me = principal(&alice, &["MCP.Responder"]);
    let http = reqwest::Client::new();

    let unsigned = http.get(&url).send().await.expect("page");
    assert_eq!(unsigned.status(), 401, "no principal: sign in first");
    assert!(
        unsigned.headers()["location"]
            .to_str()
            .expect("location")
            .starts_with("/.auth/login/aad"),
    );

    let html = http
        .get(&url)
        .header("x-ms-client-principal", &me)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf")
        .to_string();
    let origin = url.split("/api/").next().expect("origin").to_string();
    let post = |origin: &str, site: Option<&str>, body: String| {
        let mut request = http
            .post(&url)
            .header("x-ms-client-principal", &me)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    let cross = post(
        "https://evil.example",
        None,
        format!("action=approve&csrf={csrf}"),
    )
    .await
    .expect("post");
    assert_eq!(cross.status(), 403);
    let cross_site = post(
        &origin,
        Some("cross-site"),
        format!("action=approve&csrf={csrf}"),
    )
    .await
    .expect("post");
    assert_eq!(cross_site.status(), 403);
    let no_token = post(&origin, None, "action=approve&csrf=00".into())
        .await
        .expect("post");
    assert_eq!(no_token.status(), 403);
    // The token belongs to this person: someone else cannot post it.
    let other = http
        .post(&url)
        .header(
            "x-ms-client-principal",
            principal(&unique("mallory"), &["MCP.Approver"]),
        )
        .header("origin", &origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("action=approve&csrf={csrf}"))
        .send()
        .await
        .expect("post");
    assert_eq!(other.status(), 403);

    let first = post(
        &origin,
        Some("same-origin"),
        format!("action=approve&csrf={csrf}"),
    )
    .await
    .expect("post");
    assert_eq!(first.status(), 200);
    let replayed = post(
        &origin,
        Some("same-origin"),
        format!("action=deny&csrf={csrf}"),
    )
    .await
    .expect("post");
    assert_eq!(replayed.status(), 409, "a decision is made once");

    let unknown = http
        .get(format!("{origin}/api/approvals/{}", uuid::Uuid::new_v4()))
        .header("x-ms-client-principal", &me)
        .send()
        .await
        .expect("page");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn invalid_arguments_and_previews_never_ask_for_approval() {
    let f = fixture(&[]).await;
    let client = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("alice"), &["MCP.Responder"]),
    )
    .await;
    // A filter without the cap a person would have to approve blindly: refused at once.
    let invalid = err(&call(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "filter": ACTIVE, "comment": "IR-1"}),
    )
    .await);
    assert!(
        invalid.contains("max_devices is required") && !invalid.contains("APPROVAL REQUIRED"),
        "{invalid}"
    );
    let missing_comment = err(&call(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "filter": ACTIVE, "max_devices": 5}),
    )
    .await);
    assert!(
        !missing_comment.contains("APPROVAL REQUIRED"),
        "{missing_comment}"
    );
    // A preview changes nothing and answers with the devices at once.
    let preview = ok(&call(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "filter": ACTIVE, "max_devices": 50, "preview": true}),
    )
    .await);
    assert_eq!(preview["preview"], json!(true));
    assert!(
        !preview["resolved_devices"]
            .as_array()
            .expect("devices")
            .is_empty()
    );
    assert_eq!(
        f.app
            .sandbox
            .stats()
            .count("POST", "/defender/api/machines/{id}/{sub}"),
        0,
        "nothing was sent"
    );
}

#[tokio::test]
async fn the_approval_names_every_device_and_the_tenant_by_name() {
    let f = fixture(&[]).await;
    let alice = unique("alice");
    let client =
        connect_with_token(&f.app.mcp_url(), &f.entra.token(&alice, &["MCP.Responder"])).await;
    let ids = machine_ids(&client, CONTOSO, ACTIVE, 3).await;
    let listed = ok(&call(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "preview": true}),
    )
    .await);
    let names: Vec<String> = listed["resolved_devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["computer_dns_name"].as_str().expect("name").to_string())
        .collect();
    let message = err(&call(
        &client,
        "mde_isolate_machines",
        json!({"tenant_id": CONTOSO, "machine_ids": ids, "comment": "IR-7"}),
    )
    .await);
    assert!(message.contains("Tenant: Contoso"), "{message}");
    for name in &names {
        assert!(
            message.contains(name.as_str()),
            "{name} missing from {message}"
        );
    }
    let (_, url) = approval_page(&message).expect("page");
    let html = reqwest::Client::new()
        .get(&url)
        .header(
            "x-ms-client-principal",
            principal(&alice, &["MCP.Responder"]),
        )
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    for name in &names {
        assert!(html.contains(name.as_str()), "{name} missing from the page");
    }
}

#[tokio::test]
async fn caps_and_the_kill_switch_refuse_before_anyone_is_asked() {
    let f = fixture(&[("DESTRUCTIVE_MAX_TARGETS_PER_CALL", "1")]).await;
    let client = connect_with_token(
        &f.app.mcp_url(),
        &f.entra.token(&unique("alice"), &["MCP.Responder"]),
    )
    .await;
    let capped = err(&call(&client, destructive::NAME, wipe_args()).await);
    assert!(
        capped.contains("DESTRUCTIVE_MAX_TARGETS_PER_CALL")
            && !capped.contains("APPROVAL REQUIRED"),
        "{capped}"
    );

    let g = fixture(&[("DESTRUCTIVE_TOOLS_DISABLED", "true")]).await;
    let client = connect_with_token(
        &g.app.mcp_url(),
        &g.entra.token(&unique("alice"), &["MCP.Responder"]),
    )
    .await;
    let off = err(&call(&client, destructive::NAME, wipe_args()).await);
    assert!(off.contains("DESTRUCTIVE_TOOLS_DISABLED"), "{off}");
    assert_eq!(g.wipe.runs(), 0);
}

#[tokio::test]
async fn the_tenant_hourly_budget_is_shared_and_counts_approved_targets() {
    // A tenant of its own would be cleaner; the budget blob is per tenant and hour, so this test
    // uses Fabrikam, which no other approval test acts in.
    let f = fixture(&[("DESTRUCTIVE_MAX_TARGETS_PER_TENANT_HOUR", "3")]).await;
    let alice = unique("alice");
    let client =
        connect_with_token(&f.app.mcp_url(), &f.entra.token(&alice, &["MCP.Responder"])).await;
    let mut args = wipe_args();
    args["tenant_id"] = json!(FABRIKAM);
    let me = principal(&alice, &["MCP.Responder"]);
    let approve_and_run = |args: Value| {
        let client = &client;
        let me = &me;
        async move {
            let message = err(&call(client, destructive::NAME, args.clone()).await);
            let Some((id, url)) = approval_page(&message) else {
                return message;
            };
            let (status, _) =
                decide_on_page(&url, "approve", &[("x-ms-client-principal", me)]).await;
            assert_eq!(status, 200);
            text(&call(client, destructive::NAME, with_approval(&args, &id)).await)
        }
    };
    let first = approve_and_run(args.clone()).await;
    let second = approve_and_run(args.clone()).await;
    assert!(
        [&first, &second]
            .iter()
            .any(|m| m.contains("DESTRUCTIVE_MAX_TARGETS_PER_TENANT_HOUR")),
        "two wipes of two devices pass a budget of three: {first} / {second}"
    );
    assert!(f.wipe.runs() <= 1);
}

#[tokio::test]
async fn the_page_works_in_a_real_browser() {
    let f = fixture(&[]).await;
    let alice = unique("alice");
    let (client, id, url) = asked(&f, &alice).await;
    let me = principal(&alice, &["MCP.Responder"]);
    let view = browser::open_in_browser(&url, "approve", &[("X-MS-CLIENT-PRINCIPAL", &me)]).await;
    assert_eq!(view.error, None, "{view:?}");
    assert_eq!(view.status, 200, "{view:?}");
    assert!(view.h1.starts_with("Approve: "), "{view:?}");
    assert_eq!(
        view.title,
        format!("{} - Defender XDR and Sentinel MCP", view.h1),
        "the tab names the decision"
    );
    assert!(
        view.status_text
            .starts_with("Waiting for a decision until "),
        "{view:?}"
    );
    assert_eq!(view.lang, "en");
    assert_eq!(view.unlabelled_buttons, 0);
    assert_eq!(view.buttons, vec!["Approve", "Deny"]);
    assert_eq!(view.targets, vec!["ws-fin-014", "ws-fin-015"]);
    assert!(
        view.definitions
            .get("Tenant")
            .is_some_and(|tenant| tenant.contains("Contoso")),
        "{view:?}"
    );
    let after = view.after.expect("clicked Approve");
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(after.method, "POST", "a decision is never a GET: {after:?}");
    assert!(after.url.starts_with(&url), "{after:?}");
    assert!(after.status_text.starts_with("Approved."), "{after:?}");
    assert!(after.buttons.is_empty(), "no second decision: {after:?}");
    let done = ok(&call(&client, destructive::NAME, with_approval(&wipe_args(), &id)).await);
    assert_eq!(done["machines"], json!(2));
}

/// A client that can open URLs for its person (URL-mode elicitation), on protocol 2026-07-28.
#[derive(Clone)]
struct OpensUrls;

impl rmcp::ClientHandler for OpensUrls {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut info = rmcp::model::ClientConfig::default();
        info.capabilities.elicitation = Some(
            rmcp::model::ElicitationCapability::new()
                .with_url(rmcp::model::UrlElicitationCapability::default()),
        );
        info
    }
}

#[tokio::test]
async fn a_client_that_opens_urls_gets_the_page_as_an_elicitation() {
    use rmcp::model::{CallToolRequestParams, CallToolResponse, ElicitResult, ElicitationAction};
    use rmcp::service::ClientLifecycleMode;
    use rmcp::service::ClientServiceExt as _;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let f = fixture(&[]).await;
    let alice = unique("alice");
    let config = StreamableHttpClientTransportConfig::with_uri(f.app.mcp_url())
        .auth_header(f.entra.token(&alice, &["MCP.Responder"]));
    let client = OpensUrls
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(config),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("MCP client connects");
    let params = CallToolRequestParams::new(destructive::NAME)
        .with_arguments(wipe_args().as_object().cloned().expect("object"));
    let asked = match client
        .peer()
        .call_tool_once(params.clone())
        .await
        .expect("first round")
    {
        CallToolResponse::InputRequired(asked) => asked,
        other => panic!("expected input_required, got {other:?}"),
    };
    let request = serde_json::to_value(&asked.input_requests).expect("json");
    let elicitation = &request["approval"]["params"];
    assert_eq!(elicitation["mode"], json!("url"), "{request}");
    let url = elicitation["url"].as_str().expect("url").to_string();
    assert!(
        elicitation["message"]
            .as_str()
            .is_some_and(|m| m.contains("ws-fin-014") && m.contains("Contoso")),
        "{request}"
    );
    let state = asked.request_state.clone().expect("request state");
    let accepted = [(
        "approval".to_string(),
        serde_json::to_value(ElicitResult::new(ElicitationAction::Accept)).expect("json"),
    )]
    .into_iter()
    .collect::<rmcp::model::InputResponses>();
    let retry = params
        .clone()
        .with_input_responses(accepted)
        .with_request_state(state);

    // The client says the person opened the page, but nobody decided yet: nothing runs.
    let early = client
        .peer()
        .call_tool_once(retry.clone())
        .await
        .expect("round");
    assert!(
        matches!(&early, CallToolResponse::Complete(r) if text(r).contains("still waiting")),
        "{early:?}"
    );
    let me = principal(&alice, &["MCP.Responder"]);
    let (status, _) = decide_on_page(&url, "approve", &[("x-ms-client-principal", &me)]).await;
    assert_eq!(status, 200);
    let done = client.peer().call_tool_once(retry).await.expect("round");
    assert!(
        matches!(&done, CallToolResponse::Complete(r) if r.is_error != Some(true)),
        "{done:?}"
    );
    assert_eq!(f.wipe.runs(), 1);
}
