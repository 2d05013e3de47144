//! No token, key or secret ever reaches a log line: every log line of a run that exercises
//! inbound tokens (good and bad), outbound tokens, approvals and confirmation tokens is captured
//! at debug level (through the product's log filter, as `RUST_LOG=debug` would) and scanned for
//! the secrets used and for anything shaped like a token.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::destructive::{self, WipeMachines};
use common::entra::{HOME_TENANT, LocalEntra, now};
use common::*;
use serde_json::json;

const APPROVAL_KEY: &str = "log-hygiene-approval-key-0123456789abcdef";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Spans of `text` that look like a token: a JWT, a sandbox access token, a sealed approval.
fn token_shaped(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in ["eyJ", "sbx.", "rs1.", "rs2."] {
        for (at, _) in text.match_indices(prefix) {
            let candidate: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            if candidate.len() >= 24 {
                found.push(candidate);
            }
        }
    }
    found
}

#[tokio::test]
async fn no_secret_reaches_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The product's own subscriber, with the most an operator can ask for.
    let spec = "debug,rmcp::service=trace,h2=info,hyper=info,hyper_util=info,rustls=info";
    tracing::subscriber::set_global_default(handler::telemetry::subscriber(
        Some(spec),
        move || writer.clone(),
        false,
    ))
    // Process-wide: this test runs in a process of its own (nextest, or alone in `scripts/test`).
    .expect("the only subscriber of this test process");

    let entra = LocalEntra::start().await;
    let wipe = WipeMachines::default();
    let mut settings: Vec<(&str, String)> = entra.settings();
    settings.push(("APPROVAL_SIGNING_KEY", APPROVAL_KEY.into()));
    settings.push(("APPROVAL_FALLBACK", "confirm".into()));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::start_custom(fast_sandbox_options(), &pairs, |_| {}, wipe.register()).await;

    let good = entra.token("hygiene-user", &["MCP.Admin"]);
    let mut expired_claims = entra.claims(HOME_TENANT, "hygiene-user", &["MCP.Admin"]);
    expired_claims["exp"] = json!(now() - 600);
    let expired = entra.sign(&expired_claims);
    let forged = entra.forge(&entra.claims(HOME_TENANT, "hygiene-user", &["MCP.Admin"]));
    for bad in [&expired, &forged] {
        let config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                app.mcp_url(),
            )
            .auth_header(bad.clone());
        let refused = rmcp::ServiceExt::serve(
            rmcp::model::ClientConfig::default(),
            rmcp::transport::StreamableHttpClientTransport::from_config(config),
        )
        .await;
        assert!(refused.is_err(), "a bad token must not connect");
    }

    let client = connect_with_token(&app.mcp_url(), &good).await;
    ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 2}),
    )
    .await);
    ok(&call(
        &client,
        "sentinel_health_check",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    let arguments =
        json!({"tenant_id": CONTOSO, "machine_ids": ["ws-1"], "comment": "log hygiene"});
    let preview = err(&call(&client, destructive::NAME, arguments.clone()).await);
    let confirmation = confirmation_token(&preview).expect("token");
    let mut confirmed = arguments.clone();
    confirmed["confirmation_token"] = json!(confirmation);
    ok(&call(&client, destructive::NAME, confirmed.clone()).await);
    err(&call(&client, destructive::NAME, confirmed).await);
    let (approver, _) = connect_approver(&app.mcp_url(), Some(&good), true).await;
    ok(&call(&approver, destructive::NAME, arguments).await);
    ok(&call(&client, "audit_search", json!({"caller": "hygiene-user"})).await);
    assert_eq!(wipe.runs(), 2);

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).to_string();
    assert!(
        logs.contains("tool call") && logs.lines().count() > 20,
        "the capture works: {} lines",
        logs.lines().count()
    );
    let storage = storage_connection_string();
    let account_key = storage
        .split("AccountKey=")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .expect("account key");
    let secrets: [(&str, &str); 8] = [
        ("inbound token", &good),
        ("expired inbound token", &expired),
        ("forged inbound token", &forged),
        ("outbound client secret", app.sandbox.client_secret()),
        ("approval signing key", APPROVAL_KEY),
        ("confirmation token", &confirmation),
        ("storage account key", account_key),
        (
            "token signature",
            good.rsplit('.').next().expect("signature"),
        ),
    ];
    for (what, secret) in secrets {
        let leaks: Vec<&str> = logs
            .lines()
            .filter(|line| line.contains(secret))
            .map(|line| &line[..line.len().min(400)])
            .collect();
        assert!(
            leaks.is_empty(),
            "the {what} appears in the logs:\n{}",
            leaks.join("\n")
        );
    }
    let shaped = token_shaped(&logs);
    assert!(
        shaped.is_empty(),
        "token-shaped text in the logs: {shaped:?}"
    );
}
