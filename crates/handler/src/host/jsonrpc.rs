//! JSON-RPC framing of `POST /api/mcp`, judged before the MCP SDK sees a byte: the SDK answers a
//! body that is not JSON with HTTP 415 and a serde message, and a `tools/call` without a `name`
//! with -32601 naming only the method. A client (or a person reading its log) needs to know what
//! was wrong, in JSON-RPC's own terms:
//!
//! - a body that is not JSON: HTTP 400, -32700 (parse error), with where it stopped being JSON;
//! - JSON that is not one JSON-RPC message: HTTP 400, -32600 (invalid request), naming the member;
//! - a request whose parameters are missing or of the wrong type: -32602 (invalid params) naming
//!   the parameter, as the JSON-RPC answer to that request (HTTP 200, its id echoed).
//!
//! The body is also read here within a time and size bound, so a client that sends half a
//! request cannot hold a connection and a task forever.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// How long a client may take to send a whole request body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What the framing check needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// `MCP_MAX_REQUEST_BYTES`.
    pub max_body_bytes: usize,
}

/// Requests whose parameters must name something, and what: the SDK would answer these with a
/// method-not-found error when the member is missing.
const REQUIRED_STRING_PARAMS: &[(&str, &str, &str)] = &[
    ("tools/call", "name", "the tool's name"),
    ("prompts/get", "name", "the prompt's name"),
    ("resources/read", "uri", "the resource's URI"),
    ("resources/subscribe", "uri", "the resource's URI"),
    ("resources/unsubscribe", "uri", "the resource's URI"),
    (
        "initialize",
        "protocolVersion",
        "the protocol version the client speaks",
    ),
];

/// Parameters that, when present, must be JSON objects.
const OBJECT_PARAMS: &[(&str, &str)] = &[("tools/call", "arguments"), ("prompts/get", "arguments")];

/// Why a message is not passed on.
#[derive(Debug, PartialEq)]
pub struct Rejection {
    status: StatusCode,
    id: Value,
    code: i64,
    message: String,
}

impl Rejection {
    fn parse(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            id: Value::Null,
            code: PARSE_ERROR,
            message,
        }
    }

    fn invalid_request(id: Value, message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            id,
            code: INVALID_REQUEST,
            message,
        }
    }

    fn invalid_params(id: Value, message: String) -> Self {
        // A well-formed request with bad parameters is answered like any other request: the
        // error is its JSON-RPC answer, which clients surface with the code and message.
        Self {
            status: StatusCode::OK,
            id,
            code: INVALID_PARAMS,
            message,
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code, "message": self.message },
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// The axum middleware in front of the MCP service.
pub async fn check(State(framing): State<Framing>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, framing.max_body_bytes),
    )
    .await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return unreadable_body(&error, framing.max_body_bytes),
        Err(_) => {
            return Rejection::invalid_request(
                Value::Null,
                format!(
                    "the request body did not arrive within {} s; send the whole JSON-RPC message at once",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            )
            .into_response();
        }
    };
    match judge(&bytes) {
        Ok(()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(rejection) => {
            tracing::info!(code = rejection.code, message = %rejection.message, "JSON-RPC message refused");
            rejection.into_response()
        }
    }
}

fn unreadable_body(error: &axum::Error, limit: usize) -> Response {
    // axum reports the limit only through its message ("length limit exceeded").
    let too_large = error.to_string().contains("length limit");
    if too_large {
        let mut rejection = Rejection::invalid_request(
            Value::Null,
            format!(
                "the request body exceeds {limit} bytes, the most this server accepts (MCP_MAX_REQUEST_BYTES)"
            ),
        );
        rejection.status = StatusCode::PAYLOAD_TOO_LARGE;
        return rejection.into_response();
    }
    Rejection::invalid_request(
        Value::Null,
        format!("the request body could not be read: {error}"),
    )
    .into_response()
}

/// Accepts one JSON-RPC 2.0 message (request, notification or response) whose parameters have
/// the shape MCP requires; the MCP SDK checks the rest.
pub fn judge(body: &Bytes) -> Result<(), Rejection> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        Rejection::parse(format!(
            "Parse error: the body is not JSON ({error}); send one JSON-RPC 2.0 message as a JSON object"
        ))
    })?;
    let message = match value {
        Value::Object(message) => message,
        Value::Array(_) => {
            return Err(Rejection::invalid_request(
                Value::Null,
                "Invalid Request: batches (JSON arrays) are not accepted; send one JSON-RPC message per request"
                    .into(),
            ));
        }
        other => {
            return Err(Rejection::invalid_request(
                Value::Null,
                format!(
                    "Invalid Request: the body is a JSON {}; a JSON-RPC message is an object with jsonrpc, method, params and id",
                    kind(&other)
                ),
            ));
        }
    };
    let id = check_id(&message)?;
    let answer_id = id.clone().unwrap_or(Value::Null);
    match message.get("jsonrpc") {
        Some(Value::String(version)) if version == "2.0" => {}
        Some(other) => {
            return Err(Rejection::invalid_request(
                answer_id,
                format!("Invalid Request: jsonrpc is {other}; it must be \"2.0\""),
            ));
        }
        None => {
            return Err(Rejection::invalid_request(
                answer_id,
                "Invalid Request: the member jsonrpc is missing; it must be \"2.0\"".into(),
            ));
        }
    }
    let method = match message.get("method") {
        Some(Value::String(method)) => method.as_str(),
        Some(other) => {
            return Err(Rejection::invalid_request(
                answer_id,
                format!(
                    "Invalid Request: method is a JSON {}; it must be a string such as \"tools/call\"",
                    kind(other)
                ),
            ));
        }
        None if message.contains_key("result") || message.contains_key("error") => {
            return match id {
                Some(_) => Ok(()),
                None => Err(Rejection::invalid_request(
                    Value::Null,
                    "Invalid Request: a response (result or error) needs the id of the request it answers"
                        .into(),
                )),
            };
        }
        None => {
            return Err(Rejection::invalid_request(
                answer_id,
                "Invalid Request: the member method is missing; a request names its method (e.g. \"tools/call\"), a response carries result or error"
                    .into(),
            ));
        }
    };
    // A notification cannot be answered, so only requests are held to their parameters here.
    let Some(id) = id else {
        return Ok(());
    };
    check_params(method, message.get("params")).map_err(|reason| {
        Rejection::invalid_params(id, format!("Invalid params for {method}: {reason}"))
    })
}

/// The id, when present, must be a string or a number (MCP: never null).
fn check_id(message: &Map<String, Value>) -> Result<Option<Value>, Rejection> {
    match message.get("id") {
        None => Ok(None),
        Some(id @ (Value::String(_) | Value::Number(_))) => Ok(Some(id.clone())),
        Some(other) => Err(Rejection::invalid_request(
            Value::Null,
            format!(
                "Invalid Request: id is a JSON {}; it must be a string or a number",
                kind(other)
            ),
        )),
    }
}

fn check_params(method: &str, params: Option<&Value>) -> Result<(), String> {
    let params = match params {
        None => None,
        Some(Value::Object(params)) => Some(params),
        Some(other) => {
            return Err(format!(
                "params is a JSON {}; it must be an object",
                kind(other)
            ));
        }
    };
    for (required_by, name, what) in REQUIRED_STRING_PARAMS {
        if *required_by != method {
            continue;
        }
        match params.and_then(|params| params.get(*name)) {
            Some(Value::String(value)) if !value.is_empty() => {}
            Some(Value::String(_)) => {
                return Err(format!("params.{name} is empty; it must be {what}"));
            }
            Some(other) => {
                return Err(format!(
                    "params.{name} is a JSON {}; it must be a string, {what}",
                    kind(other)
                ));
            }
            None => return Err(format!("params.{name} is missing; it must be {what}")),
        }
    }
    for (used_by, name) in OBJECT_PARAMS {
        if *used_by != method {
            continue;
        }
        match params.and_then(|params| params.get(*name)) {
            None | Some(Value::Object(_)) => {}
            Some(other) => {
                return Err(format!(
                    "params.{name} is a JSON {}; it must be an object of named arguments",
                    kind(other)
                ));
            }
        }
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(body: &str) -> Result<(), (i64, StatusCode, Value, String)> {
        judge(&Bytes::from(body.to_owned())).map_err(|rejection| {
            (
                rejection.code,
                rejection.status,
                rejection.id,
                rejection.message,
            )
        })
    }

    #[test]
    fn well_formed_messages_pass() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"mde_list_machines","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
        ] {
            assert_eq!(judged(body), Ok(()), "{body}");
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_a_parse_error() {
        let (code, status, id, message) = judged("{not json").unwrap_err();
        assert_eq!(
            (code, status, id),
            (PARSE_ERROR, StatusCode::BAD_REQUEST, Value::Null)
        );
        assert!(message.contains("not JSON"), "{message}");
    }

    #[test]
    fn json_that_is_not_a_request_is_an_invalid_request_naming_the_member() {
        for (body, names) in [
            ("[]", "batches"),
            ("42", "number"),
            (r#"{"id":1,"method":"tools/list"}"#, "jsonrpc"),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
                "\"2.0\"",
            ),
            (r#"{"jsonrpc":"2.0","id":1}"#, "method"),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                "method is a JSON number",
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
                "id is a JSON null",
            ),
            (r#"{"jsonrpc":"2.0","result":{}}"#, "needs the id"),
        ] {
            let (code, status, _, message) = judged(body).unwrap_err();
            assert_eq!(
                (code, status),
                (INVALID_REQUEST, StatusCode::BAD_REQUEST),
                "{body}"
            );
            assert!(message.contains(names), "{body}: {message}");
        }
    }

    #[test]
    fn missing_or_mistyped_parameters_are_invalid_params_naming_the_parameter() {
        for (body, names) in [
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{}}"#,
                "params.name is missing",
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"tools/call"}"#,
                "params.name is missing",
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":3}}"#,
                "params.name is a JSON number",
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#,
                "params.arguments is a JSON array",
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":[]}"#,
                "params is a JSON array",
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{}}"#,
                "params.uri is missing",
            ),
        ] {
            let (code, status, id, message) = judged(body).unwrap_err();
            assert_eq!(
                (code, status, id),
                (INVALID_PARAMS, StatusCode::OK, json!(5)),
                "{body}"
            );
            assert!(message.contains(names), "{body}: {message}");
        }
    }
}
