//! The Functions host's payload protocol for non-HTTP triggers: `POST /<functionName>` with
//! `{"Data": {...}, "Metadata": {...}}`, answered with `{"Outputs", "Logs", "ReturnValue"}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Default, Deserialize)]
pub struct InvocationRequest {
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
}

impl InvocationRequest {
    /// A trigger or input binding's value. The host JSON-encodes string values a second time
    /// (a queue message `"x"` arrives as `"\"x\""`, an object may arrive as its JSON text), so
    /// strings that hold JSON are decoded once more.
    pub fn binding(&self, name: &str) -> Option<Value> {
        self.data
            .get(name)
            .map(|value| decode_host_value(value.clone()))
    }

    /// A queue trigger's message as JSON: the binding, with message text that is still JSON
    /// after the generic unwrapping (the host encodes it once more than it was sent) parsed.
    pub fn queue_message(&self, name: &str) -> Result<Value, String> {
        match self.binding(name) {
            None => Err(format!("the invocation has no '{name}' binding in Data")),
            Some(Value::String(text)) => serde_json::from_str::<Value>(&text)
                .map_err(|error| format!("the message is not JSON ({error})")),
            Some(value) => Ok(value),
        }
    }
}

pub fn decode_host_value(value: Value) -> Value {
    match value {
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(inner @ (Value::Object(_) | Value::Array(_) | Value::String(_))) => inner,
            _ => Value::String(text),
        },
        other => other,
    }
}

/// What the host expects back. Always a JSON object with all three keys: an empty or non-JSON
/// body leaves the invocation unresolved until the function times out.
#[derive(Debug, Default, Serialize)]
pub struct InvocationResponse {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

/// A non-HTTP function the handler serves.
pub struct InvocationOutcome {
    pub response: InvocationResponse,
    /// False makes the host record a failed invocation (and retry or poison a queue message).
    pub succeeded: bool,
}

#[async_trait::async_trait]
pub trait FunctionHandler: Send + Sync {
    async fn invoke(&self, request: InvocationRequest) -> InvocationOutcome;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn double_encoded_strings_are_unwrapped_once() {
        assert_eq!(
            decode_host_value(json!("\"stringTest\"")),
            json!("stringTest")
        );
        assert_eq!(
            decode_host_value(json!("{\"IsPastDue\":true}")),
            json!({"IsPastDue": true})
        );
        assert_eq!(
            decode_host_value(json!({"IsPastDue": false})),
            json!({"IsPastDue": false})
        );
        // Plain text that is not JSON, and JSON scalars other than strings, stay as they came.
        assert_eq!(decode_host_value(json!("hello")), json!("hello"));
        assert_eq!(decode_host_value(json!("42")), json!("42"));
    }

    #[test]
    fn responses_always_carry_all_three_keys() {
        let text = serde_json::to_string(&InvocationResponse::default()).expect("serialize");
        assert_eq!(text, r#"{"Outputs":{},"Logs":[],"ReturnValue":null}"#);
    }

    #[test]
    fn requests_tolerate_missing_sections() {
        let request: InvocationRequest =
            serde_json::from_str(r#"{"Data":{"timer":"{\"IsPastDue\":false}"}}"#).expect("parse");
        assert_eq!(request.binding("timer"), Some(json!({"IsPastDue": false})));
        assert!(request.metadata.is_empty());
    }
}
