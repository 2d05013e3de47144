//! What the audit trail keeps of arguments and outputs: secrets out, action ids in.

use serde_json::{Map, Value};

pub const REDACTED: &str = "[redacted]";

/// Parts of argument names that mark a secret value wherever they appear.
const SECRET_NAME_PARTS: [&str; 8] = [
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "apikey",
    "api_key",
    "connection_string",
];
/// Argument names that are secrets on their own (`key`, `sas`) without matching every `*_key`.
const SECRET_NAMES: [&str; 4] = ["key", "sas", "signature", "private_key"];

/// Property names the tool's input schema marks as secret (`writeOnly`, `format: password`, or
/// `x-sensitive`), at any depth.
pub fn sensitive_fields(schema: &Map<String, Value>) -> Vec<String> {
    let mut names = Vec::new();
    collect_sensitive(&Value::Object(schema.clone()), &mut names);
    names
}

fn collect_sensitive(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::Object(properties)) = object.get("properties") {
                for (name, property) in properties {
                    let marked = property.get("writeOnly") == Some(&Value::Bool(true))
                        || property.get("format").and_then(Value::as_str) == Some("password")
                        || property.get("x-sensitive") == Some(&Value::Bool(true));
                    if marked {
                        names.push(name.clone());
                    }
                }
            }
            for value in object.values() {
                collect_sensitive(value, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_sensitive(item, names)),
        _ => {}
    }
}

fn is_secret_name(name: &str, sensitive: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    sensitive.iter().any(|s| s == name)
        || SECRET_NAMES.contains(&lower.as_str())
        || SECRET_NAME_PARTS.iter().any(|part| lower.contains(part))
}

/// The arguments with every secret-named value (at any depth) replaced by `[redacted]`.
pub fn redact_arguments(arguments: &Map<String, Value>, sensitive: &[String]) -> Value {
    redact(&Value::Object(arguments.clone()), sensitive)
}

fn redact(value: &Value, sensitive: &[String]) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(name, value)| {
                    let kept = if is_secret_name(name, sensitive) {
                        Value::String(REDACTED.into())
                    } else {
                        redact(value, sensitive)
                    };
                    (name.clone(), kept)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| redact(item, sensitive)).collect())
        }
        other => other.clone(),
    }
}

/// Action ids in a tool's output: string values of fields named `action_id` / `*_action_id`,
/// `job_id`, or arrays named `action_ids`, at any depth. Tools that start actions report them so.
pub fn action_ids(output: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    collect_action_ids(output, &mut ids);
    ids
}

fn collect_action_ids(value: &Value, ids: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (name, value) in object {
                let is_id_field =
                    name == "action_id" || name.ends_with("_action_id") || name == "job_id";
                match value {
                    Value::String(id) if is_id_field => ids.push(id.clone()),
                    Value::Array(items) if name == "action_ids" => {
                        ids.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
                    }
                    other => collect_action_ids(other, ids),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_action_ids(item, ids)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_by_name_and_by_schema_hint_at_any_depth() {
        let schema = json!({"type": "object", "properties": {"pin": {"type": "string", "writeOnly": true}, "comment": {"type": "string"}}});
        let sensitive = sensitive_fields(schema.as_object().expect("object"));
        assert_eq!(sensitive, vec!["pin".to_string()]);
        let arguments = json!({
            "tenant_id": "11111111-1111-4111-8111-111111111111",
            "pin": "1234",
            "comment": "isolate after phishing",
            "confirmation_token": "rs1.abc",
            "headers": [{"name": "x", "client_secret": "s3cr3t", "key": "k"}],
            "machine_ids": ["a", "b"]
        });
        let redacted = redact_arguments(arguments.as_object().expect("object"), &sensitive);
        let text = redacted.to_string();
        for secret in ["1234", "rs1.abc", "s3cr3t", "\"k\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(redacted["comment"], "isolate after phishing");
        assert_eq!(redacted["machine_ids"], json!(["a", "b"]));
        assert_eq!(
            redacted["tenant_id"],
            "11111111-1111-4111-8111-111111111111"
        );
    }

    #[test]
    fn action_ids_are_found_in_outputs() {
        let output = json!({"action_id": "a1", "results": [{"machine_action_id": "a2"}, {"id": "not-an-action"}], "action_ids": ["a3"], "job_id": "j1"});
        assert_eq!(action_ids(&output), vec!["a1", "a3", "j1", "a2"]);
    }
}
