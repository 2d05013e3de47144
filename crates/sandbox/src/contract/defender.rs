//! The Defender for Endpoint contract (`definitions/defender-endpoint/contract.json`), written
//! from the API reference pages since that API has no OpenAPI document: per endpoint the method,
//! path, application permissions, quota, `$filter`-able properties, body fields (case-sensitive)
//! and the entity whose property table bounds the answer.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::Violations;

#[derive(Debug, Deserialize)]
pub struct Contract {
    pub endpoints: Vec<Endpoint>,
    pub entities: BTreeMap<String, Entity>,
}

#[derive(Debug, Deserialize)]
pub struct Page {
    pub path: String,
    pub commit: String,
}

#[derive(Debug, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub method: String,
    pub path: String,
    pub page: Page,
    pub permissions: Permissions,
    #[serde(default)]
    pub quota: Option<Quota>,
    #[serde(default)]
    pub query: Option<Query>,
    #[serde(default)]
    pub body: Option<Body>,
    #[serde(default)]
    pub response: Option<Response>,
}

#[derive(Debug, Deserialize)]
pub struct Permissions {
    /// Any one of these application permissions suffices.
    pub application: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Quota {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Query {
    #[serde(default)]
    pub filter: Vec<String>,
    pub top_max: Option<u64>,
    #[serde(default)]
    pub other: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Body {
    /// `Name` or `Parent[].name`.
    pub fields: BTreeMap<String, Field>,
}

#[derive(Debug, Deserialize)]
pub struct Field {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(rename = "enum", default)]
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct Response {
    #[serde(default)]
    pub fields: Vec<String>,
    pub entity: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Entity {
    pub properties: BTreeMap<String, String>,
}

/// OData words and functions that are not property names.
const ODATA_WORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "in",
    "has",
    "true",
    "false",
    "null",
    "startswith",
    "endswith",
    "contains",
    "tolower",
    "toupper",
    "any",
    "all",
];

impl Contract {
    /// The endpoint for `method path` (`path` under `/api`). Literal segments compare without
    /// regard to case, as the service's routing does; bodies are another matter.
    pub fn find(&self, method: &str, path: &str) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.method.eq_ignore_ascii_case(method) && super::path_matches(&e.path, path))
    }

    /// Checks an answer's property names against the entity table of the endpoint.
    pub fn check_response(&self, endpoint: &Endpoint, body: &Value, violations: &mut Violations) {
        let Some(response) = &endpoint.response else {
            return;
        };
        let mut allowed: Vec<&str> = response
            .fields
            .iter()
            .map(String::as_str)
            .filter(|f| !f.contains(['.', '[']))
            .collect();
        if let Some(entity) = response
            .entity
            .as_deref()
            .and_then(|e| self.entities.get(e))
        {
            allowed.extend(entity.properties.keys().map(String::as_str));
        }
        if allowed.is_empty() {
            return;
        }
        let items: Vec<&Value> = match body.get("value") {
            Some(Value::Array(items)) if !allowed.contains(&"value") => items.iter().collect(),
            _ => vec![body],
        };
        for item in items {
            let Some(object) = item.as_object() else {
                continue;
            };
            for name in object.keys() {
                if !name.starts_with("@odata") && !allowed.contains(&name.as_str()) {
                    violations.push(
                        format!("response.{name}"),
                        format!(
                            "is not a property of {} ({} at {})",
                            response.entity.as_deref().unwrap_or(&endpoint.id),
                            endpoint.page.path,
                            endpoint.page.commit
                        ),
                    );
                }
            }
        }
    }
}

impl Endpoint {
    /// The query string: documented parameters only, `$filter` on documented properties,
    /// `$top` within the documented page size.
    pub fn check_query(&self, query: &[(String, String)], violations: &mut Violations) {
        let documented = self.query.as_ref();
        for (name, value) in query {
            match name.as_str() {
                "$filter" => match documented.filter(|q| !q.filter.is_empty()) {
                    Some(q) => {
                        for property in filter_properties(value) {
                            if !q.filter.iter().any(|p| p == &property) {
                                violations.push(
                                    "$filter".into(),
                                    format!(
                                        "'{property}' is not a filterable property of {} (the page lists: {})",
                                        self.id,
                                        q.filter.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                    None => violations.push(
                        "$filter".into(),
                        format!("{} does not support $filter ({})", self.id, self.page.path),
                    ),
                },
                "$top" => match (documented.and_then(|q| q.top_max), value.parse::<u64>()) {
                    (Some(max), Ok(top)) if top <= max => {}
                    (Some(max), _) => violations.push(
                        "$top".into(),
                        format!("'{value}' is not a whole number up to {max}"),
                    ),
                    (None, _) => violations.push(
                        "$top".into(),
                        format!("{} does not support $top ({})", self.id, self.page.path),
                    ),
                },
                // `other` lists a parameter by name, or by `name=value` where the page documents
                // only that value (`$expand=evidence`).
                other
                    if documented.is_some_and(|q| {
                        q.other.iter().any(|o| match o.split_once('=') {
                            Some((n, v)) => n == other && v == value,
                            None => o == other,
                        })
                    }) => {}
                other => violations.push(
                    format!("query parameter {other}"),
                    format!("is not documented for {} ({})", self.id, self.page.path),
                ),
            }
        }
    }

    /// A JSON body: every field documented, with its exact casing, type and allowed values;
    /// every required field present.
    pub fn check_body(&self, body: Option<&Value>, violations: &mut Violations) {
        let Some(spec) = &self.body else {
            if body.is_some_and(|b| !b.is_null()) {
                violations.push("body".into(), format!("{} takes no body", self.id));
            }
            return;
        };
        let Some(body) = body else {
            if spec.fields.values().any(|f| f.required) {
                violations.push("body".into(), "is required".into());
            }
            return;
        };
        self.check_object(spec, "", body, violations);
    }

    fn check_object(&self, spec: &Body, prefix: &str, value: &Value, violations: &mut Violations) {
        let Some(object) = value.as_object() else {
            violations.push(
                if prefix.is_empty() {
                    "body".into()
                } else {
                    prefix.trim_end_matches('.').to_string()
                },
                "must be a JSON object".into(),
            );
            return;
        };
        let here: Vec<(&str, &Field)> = spec
            .fields
            .iter()
            .filter_map(|(name, field)| {
                let rest = name.strip_prefix(prefix)?;
                (!rest.contains('.')).then_some((rest, field))
            })
            .collect();
        for (name, value) in object {
            let Some((_, field)) = here.iter().find(|(n, _)| n == name) else {
                let hint = here
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(n, _)| format!(" (field names are case-sensitive: '{n}')"))
                    .unwrap_or_default();
                violations.push(
                    format!("{prefix}{name}"),
                    format!("is not a field of {}{hint}", self.id),
                );
                continue;
            };
            self.check_value(spec, &format!("{prefix}{name}"), field, value, violations);
        }
        for (name, field) in &here {
            if field.required && !object.contains_key(*name) {
                violations.push(format!("{prefix}{name}"), "is required".into());
            }
        }
    }

    fn check_value(
        &self,
        spec: &Body,
        path: &str,
        field: &Field,
        value: &Value,
        violations: &mut Violations,
    ) {
        if value.is_null() {
            return;
        }
        let fits = match field.kind.as_str() {
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "int" | "integer" | "long" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "DateTimeOffset" => value.as_str().is_some_and(|text| {
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            }),
            "string collection" => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        };
        if !fits {
            violations.push(path.into(), format!("must be {}", field.kind));
            return;
        }
        if let (Some(allowed), Some(text)) = (&field.allowed, value.as_str())
            && !allowed.iter().any(|a| a == text)
        {
            violations.push(
                path.into(),
                format!("'{text}' is not one of {}", allowed.join(", ")),
            );
        }
        if let Some(items) = value.as_array() {
            let prefix = format!("{path}[].");
            if spec.fields.keys().any(|k| k.starts_with(&prefix)) {
                for item in items {
                    self.check_object(spec, &prefix, item, violations);
                }
            }
        }
    }
}

/// The property names an OData `$filter` reads (lambda variables and literals left out).
pub fn filter_properties(filter: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut variables: Vec<String> = Vec::new();
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // A string literal; '' is an escaped quote.
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            let previous = chars[..start]
                .iter()
                .rev()
                .find(|c| !c.is_whitespace())
                .copied();
            if next == Some(':') {
                variables.push(word);
            } else if previous == Some('/') || ODATA_WORDS.contains(&word.to_lowercase().as_str()) {
                // `machineTags/any`: the function after a slash is not a property.
            } else if !variables.contains(&word) && !out.contains(&word) {
                out.push(word);
            }
        } else if c.is_ascii_digit() {
            // Numbers, dates and times (2024-01-01T00:00:00Z) are literals.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "-:.+".contains(chars[i]))
            {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_properties_skip_literals_functions_and_lambda_variables() {
        assert_eq!(
            filter_properties(
                "healthStatus eq 'Active' and lastSeen gt 2024-01-01T00:00:00Z and startswith(computerDnsName,'it''s') and machineTags/any(tag: tag eq 'x')"
            ),
            vec!["healthStatus", "lastSeen", "computerDnsName", "machineTags"]
        );
    }

    #[test]
    fn templated_segments_match_their_values() {
        assert!(super::super::path_matches(
            "/api/machineactions/{id}/GetLiveResponseResultDownloadLink(index={index})",
            "/api/machineactions/abc/GetLiveResponseResultDownloadLink(index=0)"
        ));
        assert!(!super::super::path_matches(
            "/api/machines/{id}/isolate",
            "/api/machines/abc/isolate/x"
        ));
    }
}
