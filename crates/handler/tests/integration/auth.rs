//! Who may call: Entra ID bearer tokens (validated against a local key endpoint with locally
//! generated RSA keys), App Service authentication headers, role tiers, the protected resource
//! metadata and the per-caller rate limit. Every refusal the product promises is exercised here.

use crate::common;

use std::time::Duration;

use base64::Engine as _;
use common::destructive::{self, WipeMachines};
use common::entra::{AUDIENCE, HOME_TENANT, LocalEntra, OTHER_TENANT, now};
use common::*;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

async fn start(entra: &LocalEntra, extra: &[(&str, &str)], wipe: &WipeMachines) -> TestApp {
    let mut settings: Vec<(&str, String)> = entra.settings();
    settings.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::start_custom(fast_sandbox_options(), &pairs, |_| {}, wipe.register()).await
}

/// A raw `tools/list` POST, as a client sends it before it knows it must authenticate.
async fn post_mcp(app: &TestApp, headers: &[(&str, String)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.expect("request")
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {token}"))]
}

async fn refusal_text(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        challenge,
        body["error_description"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn no_token_gets_401_pointing_at_protected_resource_metadata() {
    let entra = LocalEntra::start().await;
    let app = start(&entra, &[], &WipeMachines::default()).await;
    let (status, challenge, description) = refusal_text(post_mcp(&app, &[]).await).await;
    assert_eq!(status, 401);
    assert!(
        description.contains("requires an Entra ID bearer token"),
        "{description}"
    );
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge}"));
    assert!(
        metadata_url.starts_with(&app.base_url)
            && metadata_url.ends_with("/api/.well-known/oauth-protected-resource"),
        "{metadata_url}"
    );
    assert!(
        !challenge.contains("error="),
        "no error code when no credentials were sent (RFC 6750): {challenge}"
    );

    let metadata: Value = reqwest::get(metadata_url)
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    // One resource for every connection path under it (/api/mcp/x/..., /readonly).
    assert_eq!(
        metadata["resource"],
        json!(format!("{}/api/mcp", app.base_url))
    );
    assert_eq!(
        metadata["authorization_servers"],
        json!([format!("{}/{HOME_TENANT}/v2.0", entra.authority)])
    );
    assert_eq!(
        metadata["scopes_supported"],
        json!([format!("{AUDIENCE}/.default")])
    );
    let root: Value = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource",
        app.base_url
    ))
    .await
    .expect("root")
    .json()
    .await
    .expect("json");
    assert_eq!(
        root, metadata,
        "the root well-known path serves the same document"
    );
}

#[tokio::test]
async fn every_bad_token_is_refused_with_what_was_wrong() {
    let entra = LocalEntra::start().await;
    let app = start(&entra, &[], &WipeMachines::default()).await;
    let valid = entra.claims(HOME_TENANT, "alice", &["MCP.Reader"]);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = valid.clone();
        change(&mut claims);
        claims
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            entra.sign(&with(&|c| c["exp"] = json!(now() - 600))),
            "expired",
        ),
        (
            "wrong audience",
            entra.sign(&with(&|c| c["aud"] = json!("api://someone-else"))),
            "another audience",
        ),
        (
            "wrong issuer",
            entra.sign(&with(&|c| c["iss"] = json!("https://evil.example/v2.0"))),
            "issuer",
        ),
        (
            "issuer of another tenant",
            entra.sign(&with(&|c| {
                c["iss"] = json!(format!("{}/{OTHER_TENANT}/v2.0", entra.authority))
            })),
            "issuer",
        ),
        (
            "forged signature",
            entra.forge(&valid),
            "signature does not verify",
        ),
        (
            "tenant not allowed",
            entra.sign(&entra.claims(OTHER_TENANT, "mallory", &["MCP.Admin"])),
            "are not accepted by this server",
        ),
        (
            "not yet valid",
            entra.sign(&with(&|c| c["nbf"] = json!(now() + 3600))),
            "not valid yet",
        ),
        ("not a JWT", "abc.def".to_string(), "not a well-formed JWT"),
        (
            "unsigned",
            format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&valid)),
            "not a well-formed JWT",
        ),
    ];
    for (case, token, expected) in cases {
        let (status, challenge, description) =
            refusal_text(post_mcp(&app, &bearer(&token)).await).await;
        assert_eq!(status, 401, "{case}");
        assert!(
            description.contains(expected),
            "{case}: '{description}' should contain '{expected}'"
        );
        assert!(
            challenge.contains("error=\"invalid_token\"")
                && challenge.contains("resource_metadata="),
            "{case}: {challenge}"
        );
        assert!(
            !description.contains(&token) && !challenge.contains(&token),
            "{case}: the token is echoed"
        );
    }
    // The refused tenant gets no key request: nothing about it is looked up.
    assert_eq!(
        entra.key_fetches(),
        1,
        "keys are fetched once for the home tenant and cached"
    );
    let client = connect_with_token(&app.mcp_url(), &entra.sign(&valid)).await;
    ok(&call(&client, "tenants_list", json!({})).await);
}

/// Expiry, audience and issuer need no signing key: with the key endpoint down, such tokens are
/// still refused for what is wrong with them (401), not for the missing keys (503).
#[tokio::test]
async fn tokens_that_fail_on_their_claims_are_refused_without_fetching_a_key() {
    let mut entra = LocalEntra::start().await;
    let app = start(&entra, &[], &WipeMachines::default()).await;
    let valid = entra.claims(HOME_TENANT, "alice", &["MCP.Reader"]);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = valid.clone();
        change(&mut claims);
        entra.sign(&claims)
    };
    let cases = [
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 600)),
            "expired",
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!(["api://someone-else"])),
            "another audience",
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://evil.example/v2.0")),
            "issuer",
        ),
    ];
    entra.stop();
    for (case, token, expected) in cases {
        let (status, _, description) = refusal_text(post_mcp(&app, &bearer(&token)).await).await;
        assert_eq!(status, 401, "{case}: {description}");
        assert!(description.contains(expected), "{case}: {description}");
    }
    assert_eq!(entra.key_fetches(), 0, "no key was needed");
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn tools_list_shows_each_tier_only_its_tools_and_calls_above_it_are_refused_with_the_role_needed()
 {
    let entra = LocalEntra::start().await;
    let wipe = WipeMachines::default();
    let app = start(&entra, &[], &wipe).await;
    let names = |tools: Vec<rmcp::model::Tool>| {
        tools
            .into_iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
    };

    let reader =
        connect_with_token(&app.mcp_url(), &entra.token("reader-1", &["MCP.Reader"])).await;
    let listed = names(reader.list_all_tools().await.expect("tools/list"));
    assert!(
        listed.contains(&"mde_list_machines".to_string())
            && listed.contains(&"tenants_list".to_string()),
        "{listed:?}"
    );
    assert!(
        !listed.contains(&destructive::NAME.to_string())
            && !listed.contains(&"audit_search".to_string()),
        "{listed:?}"
    );
    let error = reader
        .call_tool(
            CallToolRequestParams::new(destructive::NAME).with_arguments(
                json!({"tenant_id": CONTOSO, "machine_ids": ["m1"], "comment": "x"})
                    .as_object()
                    .cloned()
                    .expect("object"),
            ),
        )
        .await
        .expect_err("above the reader tier");
    let message = error.to_string();
    assert!(
        message.contains("needs the Responder tier")
            && message.contains("'MCP.Responder'")
            && message.contains("Reader"),
        "{message}"
    );
    let error = reader
        .call_tool(CallToolRequestParams::new("audit_search"))
        .await
        .expect_err("admin only");
    assert!(error.to_string().contains("'MCP.Admin'"), "{error}");
    assert_eq!(wipe.runs(), 0);

    let responder = connect_with_token(
        &app.mcp_url(),
        &entra.token("responder-1", &["MCP.Responder"]),
    )
    .await;
    let listed = names(responder.list_all_tools().await.expect("tools/list"));
    assert!(
        listed.contains(&destructive::NAME.to_string())
            && !listed.contains(&"audit_search".to_string()),
        "{listed:?}"
    );

    let admin = connect_with_token(
        &app.mcp_url(),
        &entra.token("admin-1", &["MCP.Admin", "Unrelated.Role"]),
    )
    .await;
    let listed = names(admin.list_all_tools().await.expect("tools/list"));
    assert!(
        listed.contains(&"audit_search".to_string())
            && listed.contains(&"tenants_list".to_string()),
        "{listed:?}"
    );

    let nobody = connect_with_token(&app.mcp_url(), &entra.token("no-roles", &[])).await;
    assert!(
        nobody
            .list_all_tools()
            .await
            .expect("tools/list")
            .is_empty(),
        "no role, no tools"
    );
    let error = nobody
        .call_tool(CallToolRequestParams::new("tenants_list"))
        .await
        .expect_err("no tier");
    assert!(
        error.to_string().contains("your roles grant no tier"),
        "{error}"
    );
}

#[tokio::test]
async fn rotated_signing_keys_are_fetched_when_a_token_names_a_new_key_id() {
    let entra = LocalEntra::start().await;
    let mut settings: Vec<(&str, String)> = entra.settings();
    settings.push(("MCP_RATE_LIMIT_PER_MINUTE", "0".into()));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::start_custom(
        fast_sandbox_options(),
        &pairs,
        |config| config.inbound.key_refresh_cooldown = Duration::ZERO,
        |builder| builder,
    )
    .await;
    let first = entra.token("alice", &["MCP.Reader"]);
    for _ in 0..3 {
        assert_eq!(post_mcp(&app, &bearer(&first)).await.status().as_u16(), 200);
    }
    assert_eq!(entra.key_fetches(), 1, "cached after the first fetch");
    entra.rotate();
    let second = entra.token("alice", &["MCP.Reader"]);
    assert_eq!(
        post_mcp(&app, &bearer(&second)).await.status().as_u16(),
        200,
        "the new key is fetched on its first use"
    );
    assert_eq!(
        post_mcp(&app, &bearer(&first)).await.status().as_u16(),
        200,
        "the old key is still published"
    );
    assert_eq!(entra.key_fetches(), 2);
}

#[tokio::test]
async fn each_caller_is_rate_limited_with_a_clear_429() {
    let entra = LocalEntra::start().await;
    let app = start(
        &entra,
        &[
            ("MCP_RATE_LIMIT_PER_MINUTE", "6"),
            ("MCP_RATE_LIMIT_BURST", "2"),
        ],
        &WipeMachines::default(),
    )
    .await;
    let alice = entra.token("alice", &["MCP.Reader"]);
    for _ in 0..2 {
        assert_eq!(post_mcp(&app, &bearer(&alice)).await.status().as_u16(), 200);
    }
    let response = post_mcp(&app, &bearer(&alice)).await;
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("MCP_RATE_LIMIT_PER_MINUTE")),
        "{body}"
    );
    let bob = entra.token("bob", &["MCP.Reader"]);
    assert_eq!(
        post_mcp(&app, &bearer(&bob)).await.status().as_u16(),
        200,
        "another caller has their own allowance"
    );
}

#[tokio::test]
async fn the_per_caller_limit_holds_across_instances() {
    // Two instances of one app: the same identity provider and the same storage account (one
    // quota container). Each alone would admit a burst of 6; together they admit 6 a minute.
    let entra = LocalEntra::start().await;
    let quota = format!(
        "quota-callers-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let settings = [
        ("MCP_RATE_LIMIT_PER_MINUTE", "6"),
        ("MCP_RATE_LIMIT_BURST", "6"),
        ("QUOTA_CONTAINER", quota.as_str()),
    ];
    let one = start(&entra, &settings, &WipeMachines::default()).await;
    let two = start(&entra, &settings, &WipeMachines::default()).await;
    let alice = entra.token("alice", &["MCP.Reader"]);
    let mut admitted = 0;
    let mut refused = None;
    for request in 0..12 {
        let app = if request % 2 == 0 { &one } else { &two };
        let response = post_mcp(app, &bearer(&alice)).await;
        match response.status().as_u16() {
            200 => admitted += 1,
            429 => {
                refused = Some(
                    response.headers()["retry-after"]
                        .to_str()
                        .expect("ascii")
                        .to_owned(),
                );
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        admitted, 6,
        "the minute's 6 requests, shared by both instances"
    );
    let retry_after: u64 = refused
        .expect("the 7th request is refused")
        .parse()
        .expect("seconds");
    assert!((1..=70).contains(&retry_after), "{retry_after}");
    let bob = entra.token("bob", &["MCP.Reader"]);
    assert_eq!(
        post_mcp(&two, &bearer(&bob)).await.status().as_u16(),
        200,
        "another caller has their own window"
    );
}

fn principal(tenant: &str, oid: &str, roles: &[&str]) -> String {
    let mut claims = vec![
        json!({"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": tenant}),
        json!({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid}),
        json!({"typ": "aud", "val": AUDIENCE}),
        json!({"typ": "preferred_username", "val": format!("{oid}@contoso.example")}),
    ];
    claims.extend(
        roles
            .iter()
            .map(|role| json!({"typ": "roles", "val": role})),
    );
    let principal = json!({"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"});
    base64::engine::general_purpose::STANDARD.encode(principal.to_string())
}

#[tokio::test]
async fn easy_auth_principals_are_accepted_only_in_easy_auth_mode_and_only_from_allowed_tenants() {
    let settings = [
        ("AUTH_INBOUND_MODE", "easyauth"),
        ("AUTH_ALLOWED_TENANTS", HOME_TENANT),
        ("AUTH_AUDIENCE", AUDIENCE),
    ];
    let app =
        TestApp::start_custom(fast_sandbox_options(), &settings, |_| {}, |builder| builder).await;
    let header = |value: String| vec![("X-MS-CLIENT-PRINCIPAL", value)];
    assert_eq!(
        post_mcp(
            &app,
            &header(principal(HOME_TENANT, "alice", &["MCP.Reader"]))
        )
        .await
        .status()
        .as_u16(),
        200
    );
    let (status, _, description) = refusal_text(post_mcp(&app, &[]).await).await;
    assert_eq!(status, 401);
    assert!(
        description.contains("X-MS-CLIENT-PRINCIPAL"),
        "{description}"
    );
    let (status, _, description) = refusal_text(
        post_mcp(
            &app,
            &header(principal(OTHER_TENANT, "eve", &["MCP.Admin"])),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        description.contains("not accepted by this server"),
        "{description}"
    );
    let (status, _, description) = refusal_text(post_mcp(&app, &header("%%%".into())).await).await;
    assert_eq!(status, 401);
    assert!(
        description.contains("not App Service's base64 JSON principal"),
        "{description}"
    );

    // An Entra-mode server ignores the header: it is only trusted when Easy Auth fronts the app.
    let entra = LocalEntra::start().await;
    let entra_app = start(&entra, &[], &WipeMachines::default()).await;
    let (status, _, _) = refusal_text(
        post_mcp(
            &entra_app,
            &header(principal(HOME_TENANT, "alice", &["MCP.Admin"])),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn without_inbound_auth_every_caller_is_the_local_role_and_there_is_no_metadata() {
    let app = TestApp::start_with(
        fast_sandbox_options(),
        &[("AUTH_INBOUND_MODE", "none"), ("AUTH_LOCAL_ROLE", "reader")],
    )
    .await;
    let client = app.client().await;
    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        tools.contains(&"mde_list_machines".to_string())
            && !tools.contains(&"audit_search".to_string()),
        "{tools:?}"
    );
    let response = reqwest::get(format!(
        "{}/api/.well-known/oauth-protected-resource",
        app.base_url
    ))
    .await
    .expect("metadata");
    assert_eq!(response.status().as_u16(), 404);
}
