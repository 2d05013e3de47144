//! `keyvault:<secret>` app settings resolved at start from a mock Key Vault over HTTPS, with the
//! real azure_identity managed identity credential (App Service protocol, IDENTITY_ENDPOINT) and
//! the real azure_security_keyvault_secrets client, including its 401 challenge handshake.
//!
//! One test function: the managed identity credential reads IDENTITY_ENDPOINT from the process
//! environment, so everything that needs it runs in sequence in this binary.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use handler::config::{Config, OutboundAuth, settings};
use handler::secrets::{self, SecretError};
use serde_json::json;

/// The vault's host must sit under the challenge's resource domain (the client checks it), so
/// the mock vault is `mock.vault.localhost`, resolved to loopback by the test's client.
const VAULT_HOST: &str = "mock.vault.localhost";
const RESOURCE: &str = "https://vault.localhost";
const IDENTITY_HEADER: &str = "identity-header-for-tests";
const IDENTITY_CLIENT_ID: &str = "7d1b2a9e-1c1e-4a55-9a0e-2b0f4b3c5d6e";
const SECRET_VALUE: &str = "s3cr3t-from-the-vault";

#[derive(Clone, Default)]
struct Vault {
    reads: Arc<Mutex<HashMap<String, usize>>>,
    identity_requests: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

async fn identity_token(
    State(vault): State<Vault>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    vault.identity_requests.lock().unwrap().push(query.clone());
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(IDENTITY_HEADER)
    {
        return (StatusCode::UNAUTHORIZED, "missing identity header").into_response();
    }
    let resource = query.get("resource").cloned().unwrap_or_default();
    let expires_on = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600)
        .to_string();
    axum::Json(json!({
        "access_token": format!("mi-token-for-{resource}"),
        "expires_on": expires_on,
        "token_type": "Bearer",
        "resource": resource,
    }))
    .into_response()
}

async fn get_secret(
    State(vault): State<Vault>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if authorization.is_empty() {
        // Key Vault's challenge: the client learns the token audience from it.
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", format!("Bearer authorization=\"https://login.microsoftonline.com/tenant\", resource=\"{RESOURCE}\""))],
        )
            .into_response();
    }
    if authorization != format!("Bearer mi-token-for-{RESOURCE}") {
        return (StatusCode::UNAUTHORIZED, "wrong token").into_response();
    }
    *vault.reads.lock().unwrap().entry(name.clone()).or_default() += 1;
    match name.as_str() {
        "outbound-client-secret" => axum::Json(json!({
            "value": SECRET_VALUE,
            "id": format!("https://{VAULT_HOST}/secrets/{name}/0123456789abcdef"),
            "attributes": {"enabled": true},
        }))
        .into_response(),
        "forbidden-secret" => (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": {"code": "Forbidden", "message": "The user, group or application does not have secrets get permission"}})),
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "SecretNotFound", "message": format!("A secret with (name/id) {name} was not found in this key vault.")}})),
        )
            .into_response(),
    }
}

fn lookup_from(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<&'static str, String> = pairs.into_iter().collect();
    move |name| map.get(name).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_references_are_resolved_once_at_start_and_never_shown() {
    let vault = Vault::default();
    let router = Router::new()
        .route("/msi/token", get(identity_token))
        .route("/secrets/{name}", get(get_secret))
        // The client asks for the latest version as `/secrets/<name>/` (an empty version).
        .route("/secrets/{name}/", get(get_secret))
        .with_state(vault.clone());
    let server = common::https::serve(router, &[VAULT_HOST]).await;
    // SAFETY: the test runs in a process of its own (nextest, or alone in `scripts/test`), so
    // nothing else reads the environment while it is changed.
    #[allow(unsafe_code)] // edition 2024 makes changing the environment unsafe
    unsafe {
        std::env::set_var(
            "IDENTITY_ENDPOINT",
            format!("{}/msi/token", server.base_url),
        );
        std::env::set_var("IDENTITY_HEADER", IDENTITY_HEADER);
    }
    let client = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(server.ca_pem.as_bytes()).unwrap())
        .resolve(VAULT_HOST, ([127, 0, 0, 1], server.port).into())
        .build()
        .unwrap();
    let vault_url = format!("https://{VAULT_HOST}:{}/", server.port);
    let base = || {
        vec![
            (settings::KEY_VAULT_URL, vault_url.clone()),
            (settings::AUTH_INBOUND_MODE, "none".to_string()),
            (
                settings::MANAGED_IDENTITY_CLIENT_ID,
                IDENTITY_CLIENT_ID.to_string(),
            ),
            (
                settings::AZURE_CLIENT_ID,
                "00000000-0000-4000-8000-0000000000aa".to_string(),
            ),
            (settings::STORAGE, "UseDevelopmentStorage=true".to_string()),
        ]
    };

    // Two settings naming the same secret: both resolved, the vault read once, with the
    // user-assigned identity's token for the vault's audience.
    let mut pairs = base();
    pairs.push((settings::AUTH_MODE, "client_secret".into()));
    pairs.push((
        settings::AZURE_CLIENT_SECRET,
        "keyvault:outbound-client-secret".into(),
    ));
    pairs.push((
        settings::DEFAULT_TENANT_ID,
        " keyvault:outbound-client-secret ".into(),
    ));
    let lookup = lookup_from(pairs);
    let resolved = secrets::resolve(&lookup, || Ok(client.clone()))
        .await
        .expect("references resolve");
    assert_eq!(
        resolved.get(settings::AZURE_CLIENT_SECRET).as_deref(),
        Some(SECRET_VALUE)
    );
    assert_eq!(
        resolved.get(settings::DEFAULT_TENANT_ID).as_deref(),
        Some(SECRET_VALUE)
    );
    assert_eq!(
        resolved.get(settings::TENANTS),
        None,
        "settings without a reference are left alone"
    );
    assert_eq!(
        vault.reads.lock().unwrap().get("outbound-client-secret"),
        Some(&1)
    );
    let identity_request = vault
        .identity_requests
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a managed identity token was requested");
    assert_eq!(
        identity_request.get("resource").map(String::as_str),
        Some(RESOURCE)
    );
    assert_eq!(
        identity_request.get("client_id").map(String::as_str),
        Some(IDENTITY_CLIENT_ID)
    );
    let shown = format!("{resolved:?}");
    assert!(
        !shown.contains(SECRET_VALUE) && shown.contains(settings::AZURE_CLIENT_SECRET),
        "{shown}"
    );

    // The resolved value is what the configuration gets.
    let config = Config::from_lookup(|name| {
        if name == settings::DEFAULT_TENANT_ID {
            return None;
        }
        resolved.get(name).or_else(|| lookup(name))
    })
    .expect("configuration with the resolved secret");
    match &config.auth {
        OutboundAuth::ClientSecret { secret, .. } => assert_eq!(secret.secret(), SECRET_VALUE),
        other => panic!("expected client_secret auth, got {other:?}"),
    }

    // No reference: nothing is fetched, not even a token.
    let token_requests = vault.identity_requests.lock().unwrap().len();
    let plain = lookup_from(vec![(settings::AZURE_CLIENT_SECRET, "plain".into())]);
    assert_eq!(
        format!(
            "{:?}",
            secrets::resolve(&plain, || Ok(client.clone()))
                .await
                .unwrap()
        ),
        "{}"
    );
    assert_eq!(
        vault.identity_requests.lock().unwrap().len(),
        token_requests
    );

    // Failures name the setting and the secret, say what to do, and never hold a value.
    let failure = |reference: &str, with_vault: bool| {
        let mut pairs = if with_vault { base() } else { Vec::new() };
        pairs.push((settings::AZURE_CLIENT_SECRET, reference.to_string()));
        let lookup = lookup_from(pairs);
        let client = client.clone();
        async move {
            secrets::resolve(&lookup, || Ok(client))
                .await
                .expect_err("must fail")
                .to_string()
        }
    };
    let missing = failure("keyvault:no-such-secret", true).await;
    assert!(
        missing.contains("AZURE_CLIENT_SECRET")
            && missing.contains("no-such-secret")
            && missing.contains("no such secret"),
        "{missing}"
    );
    let forbidden = failure("keyvault:forbidden-secret", true).await;
    assert!(forbidden.contains("Key Vault Secrets User"), "{forbidden}");
    let no_vault = failure("keyvault:outbound-client-secret", false).await;
    assert!(
        no_vault.contains("KEY_VAULT_URL") && no_vault.contains("outbound-client-secret"),
        "{no_vault}"
    );
    let platform = failure(
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x/)",
        true,
    )
    .await;
    assert!(
        platform.contains("could not resolve") && platform.contains("AZURE_CLIENT_SECRET"),
        "{platform}"
    );
    let bad_name = failure("keyvault:not a name!", true).await;
    assert!(
        bad_name.contains("is not a Key Vault secret name"),
        "{bad_name}"
    );
    for message in [&missing, &forbidden, &no_vault, &platform, &bad_name] {
        assert!(!message.contains(SECRET_VALUE));
    }

    // An http vault URL is refused before any request.
    let http_vault = lookup_from(vec![
        (
            settings::KEY_VAULT_URL,
            format!("http://{VAULT_HOST}:{}/", server.port),
        ),
        (
            settings::AZURE_CLIENT_SECRET,
            "keyvault:outbound-client-secret".into(),
        ),
    ]);
    let error = secrets::resolve(&http_vault, || Ok(client.clone()))
        .await
        .expect_err("http is refused");
    assert!(
        matches!(error, SecretError::VaultUrl { .. }) && error.to_string().contains("https"),
        "{error}"
    );
}
