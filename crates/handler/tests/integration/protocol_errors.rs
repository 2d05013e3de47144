//! What a client that speaks the protocol badly gets, over raw HTTP: every error says what was
//! wrong in JSON-RPC's terms, unknown paths are 404s, and a half-sent request does not hold a
//! connection.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn post_raw(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", app.base_url))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(body.to_owned())
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn error_of(body: &Value) -> (i64, String) {
    (
        body["error"]["code"].as_i64().unwrap_or_default(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn malformed_messages_get_the_json_rpc_error_that_names_the_problem() {
    let app = TestApp::start().await;

    let (status, body) = post_raw(&app, "/api/mcp", "{\"jsonrpc\": \"2.0\", oops").await;
    let (code, message) = error_of(&body);
    assert_eq!((status, code), (400, -32700), "{body}");
    assert!(message.contains("not JSON"), "{message}");

    let (status, body) = post_raw(&app, "/api/mcp", "[]").await;
    assert_eq!((status, error_of(&body).0), (400, -32600), "{body}");

    let (status, body) = post_raw(&app, "/api/mcp", r#"{"id":1,"method":"tools/list"}"#).await;
    let (code, message) = error_of(&body);
    assert_eq!((status, code), (400, -32600), "{body}");
    assert!(message.contains("jsonrpc"), "{message}");

    for (request, names) in [
        (
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"arguments": {}}}),
            "params.name is missing",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "tenants_list", "arguments": [1, 2]}}),
            "params.arguments is a JSON array",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": "tenants_list"}),
            "params is a JSON string",
        ),
    ] {
        let (status, body) = post_raw(&app, "/api/mcp", &request.to_string()).await;
        let (code, message) = error_of(&body);
        assert_eq!((status, code), (200, -32602), "{request}: {body}");
        assert_eq!(body["id"], json!(7), "the answer carries the request's id");
        assert!(message.contains(names), "{request}: {message}");
    }

    // A well-formed call still works through the same check.
    let request = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"});
    let (status, body) = post_raw(&app, "/api/mcp/x/all", &request.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"]["tools"].is_array(), "{body}");
}

#[tokio::test]
async fn unknown_paths_under_the_mcp_endpoint_are_not_found() {
    let app = TestApp::start().await;
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    for path in [
        "/api/mcp/admin",
        "/api/mcp/x/",
        "/api/mcp/x/all/extra",
        "/api/mcp/readonly/x",
    ] {
        let (status, body) = post_raw(&app, path, &request).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
}

/// Reads until the server closes the connection (or answers), giving up after `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> (bool, String) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let outcome = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    (
        outcome.is_ok(),
        String::from_utf8_lossy(&received).into_owned(),
    )
}

#[tokio::test]
async fn half_sent_requests_do_not_hold_connections() {
    let app = TestApp::start().await;
    let address = app.base_url.trim_start_matches("http://").to_owned();

    // Headers that never end: the connection is closed once the header timeout passes.
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /api/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n",
        )
        .await
        .expect("write");
    let started = Instant::now();
    let (closed, _) = closed_within(&mut stream, Duration::from_secs(20)).await;
    assert!(closed, "a connection with unfinished headers stayed open");
    assert!(
        started.elapsed() >= read_timeouts().headers / 2,
        "closed at once, not by the timeout"
    );

    // A body that stops halfway: the request is answered with an error, not held.
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/mcp HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: 200\r\n\r\n{{\"jsonrpc\":"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let (closed, answer) = closed_within(&mut stream, Duration::from_secs(40)).await;
    assert!(closed, "a request with half its body stayed open");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a half-sent body is answered with a client error: {answer}"
    );
}
