//! Helpers shared by the sandbox's HTTP tests: a sandbox per test, tokens, requests.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Client, StatusCode};
use sandbox::{ActionTimings, RunningSandbox, SandboxOptions};
use serde_json::Value;

pub const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";
pub const FABRIKAM: &str = "22222222-2222-4222-8222-222222222222";
pub const MDE: &str = "https://api.securitycenter.microsoft.com/.default";
pub const GRAPH: &str = "https://graph.microsoft.com/.default";
pub const ARM: &str = "https://management.azure.com/.default";
pub const LA: &str = "https://api.loganalytics.io/.default";

pub fn fast() -> SandboxOptions {
    SandboxOptions {
        action_timings: ActionTimings {
            pending: Duration::from_millis(300),
            in_progress: Duration::from_millis(300),
        },
        ..SandboxOptions::default()
    }
}

pub async fn start(options: SandboxOptions) -> (RunningSandbox, Client) {
    let sb = RunningSandbox::start(options)
        .await
        .expect("sandbox starts");
    let cert =
        reqwest::Certificate::from_pem(sb.ca_certificate_pem().as_bytes()).expect("CA PEM parses");
    let client = Client::builder()
        .add_root_certificate(cert)
        .build()
        .expect("client");
    (sb, client)
}

pub async fn token_response(
    sb: &RunningSandbox,
    c: &Client,
    tenant: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    c.post(format!("{}/{tenant}/oauth2/v2.0/token", sb.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token request")
}

pub async fn token(sb: &RunningSandbox, c: &Client, tenant: &str, scope: &str) -> String {
    let r = token_response(
        sb,
        c,
        tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_secret", sb.client_secret()),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("token json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

pub async fn get(c: &Client, url: &str, tok: &str) -> (StatusCode, Value) {
    let r = c.get(url).bearer_auth(tok).send().await.expect("GET");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub async fn send(
    c: &Client,
    method: reqwest::Method,
    url: &str,
    tok: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = c
        .request(method, url)
        .bearer_auth(tok)
        .json(&body)
        .send()
        .await
        .expect("request");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}
