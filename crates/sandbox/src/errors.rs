//! Error bodies in the exact shape each Microsoft API uses, so the handler's error mapping is
//! exercised against the real formats.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::util::{fmt_time, new_guid};

/// Which API surface produced the error (decides the body shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Defender for Endpoint: `{"error":{"code","message","target"}}`.
    Defender,
    /// Microsoft Graph: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
    Graph,
    /// Azure Resource Manager: `{"error":{"code","message"}}`.
    Arm,
    /// Log Analytics query API: `{"error":{"message","code","correlationId","innererror"?}}`.
    LogAnalytics,
    /// Sandbox admin API and anything outside the Microsoft surfaces.
    Sandbox,
}

impl Api {
    /// The API whose URL prefix `path` falls under.
    pub fn for_path(path: &str) -> Api {
        if path.starts_with("/defender/") {
            Api::Defender
        } else if path.starts_with("/graph/") {
            Api::Graph
        } else if path.starts_with("/arm/") {
            Api::Arm
        } else if path.starts_with("/loganalytics/") {
            Api::LogAnalytics
        } else {
            Api::Sandbox
        }
    }
}

/// An API error that renders in the shape of its API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub api: Api,
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Log Analytics `innererror` (syntax/semantic details).
    pub inner: Option<Value>,
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub fn new(
        api: Api,
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            api,
            status,
            code: code.into(),
            message: message.into(),
            inner: None,
            headers: Vec::new(),
        }
    }

    pub fn with_inner(mut self, inner: Value) -> Self {
        self.inner = Some(inner);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(&self) -> Value {
        match self.api {
            Api::Defender => {
                json!({"error": {"code": self.code, "message": self.message, "target": new_guid()}})
            }
            Api::Graph => json!({"error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    // Graph's innerError date has no fractional part and no zone.
                    "date": fmt_time(time::OffsetDateTime::now_utc()).split('.').next().map(str::to_string).unwrap_or_default(),
                    "request-id": new_guid(),
                    "client-request-id": new_guid(),
                }
            }}),
            Api::Arm => json!({"error": {"code": self.code, "message": self.message}}),
            Api::LogAnalytics => {
                let mut e = json!({"message": self.message, "code": self.code, "correlationId": new_guid()});
                if let (Some(inner), Some(obj)) = (&self.inner, e.as_object_mut()) {
                    obj.insert("innererror".into(), inner.clone());
                }
                json!({"error": e})
            }
            Api::Sandbox => json!({"error": {"code": self.code, "message": self.message}}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp.headers_mut().insert(name.clone(), v);
            }
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Parses a JSON request body with an error in the API's own shape (axum's `Json` extractor
/// would answer with plain text).
pub fn parse_json<T: serde::de::DeserializeOwned>(api: Api, body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(bad_body(api, "The request body is empty."));
    }
    serde_json::from_slice(body)
        .map_err(|e| bad_body(api, format!("The request body is not valid: {e}")))
}

/// The "bad request body" error as each API names it.
pub fn bad_body(api: Api, message: impl Into<String>) -> ApiError {
    let code = match api {
        Api::Defender => "InvalidRequestBody",
        Api::Graph => "BadRequest",
        Api::Arm => "InvalidRequestContent",
        Api::LogAnalytics => "BadArgumentError",
        Api::Sandbox => "BadRequest",
    };
    ApiError::new(api, StatusCode::BAD_REQUEST, code, message)
}

pub fn not_found(api: Api, message: impl Into<String>) -> ApiError {
    let code = match api {
        Api::Defender => "ResourceNotFound",
        Api::Graph => "NotFound",
        Api::Arm => "ResourceNotFound",
        Api::LogAnalytics => "PathNotFoundError",
        Api::Sandbox => "NotFound",
    };
    ApiError::new(api, StatusCode::NOT_FOUND, code, message)
}
