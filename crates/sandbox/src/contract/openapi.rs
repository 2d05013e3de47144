//! Swagger 2.0 documents vendored from `Azure/azure-rest-api-specs`: an operation is found by
//! method, path and api-version, and its query, body and answers are checked against the
//! document's own parameters and schemas (`$ref`, `allOf`, discriminators, enums, required and
//! read-only properties, types and formats).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{Direction, Violations};

/// One vendored Swagger document.
pub struct Document {
    /// Its path inside the mirror (`specification/...json`), for `$ref`s between files.
    pub path: String,
    json: Value,
    /// `info.version`: the api-version every operation of the document answers to.
    pub api_version: String,
    /// `basePath` (the data-plane documents have one, `/v1`).
    base_path: String,
}

impl Document {
    pub fn parse(path: &str, text: &str) -> Result<Self, String> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("{path} is not JSON: {e}"))?;
        let api_version = json
            .pointer("/info/version")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{path} has no info.version"))?
            .to_string();
        let base_path = json
            .get("basePath")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            path: path.to_string(),
            json,
            api_version,
            base_path,
        })
    }
}

/// Every vendored Swagger document, with `$ref` resolution across them.
pub struct SpecSet {
    documents: Vec<Document>,
}

/// A schema and the document its relative `$ref`s are read from.
#[derive(Clone, Copy)]
struct At<'a> {
    doc: usize,
    value: &'a Value,
}

/// An operation the request matched.
pub struct Operation<'a> {
    /// `GET`, `PUT`, ...
    pub method: String,
    set: &'a SpecSet,
    doc: usize,
    pub template: &'a str,
    operation: &'a Value,
    path_item: &'a Value,
}

/// Why no operation answers a request.
pub enum Unmatched {
    /// No vendored document has the path with this method.
    NoSuchOperation,
    /// The path exists, but not at the api-version asked for.
    ApiVersion { supported: Vec<String> },
}

impl SpecSet {
    pub fn new(documents: Vec<Document>) -> Self {
        Self { documents }
    }

    #[cfg(test)]
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The operation for `method path` at `api_version` (`None` for data-plane documents that
    /// take no api-version). Literal segments compare case-insensitively, as ARM does.
    pub fn find(
        &self,
        method: &str,
        path: &str,
        api_version: Option<&str>,
    ) -> Result<Operation<'_>, Unmatched> {
        let method = method.to_ascii_lowercase();
        let mut supported = BTreeSet::new();
        for (index, doc) in self.documents.iter().enumerate() {
            let Some(paths) = doc.json.get("paths").and_then(Value::as_object) else {
                continue;
            };
            for (template, item) in paths {
                let full = format!("{}{template}", doc.base_path);
                if !template_matches(&full, path) {
                    continue;
                }
                let Some(operation) = item.get(&method) else {
                    continue;
                };
                let takes_version = self
                    .parameters(index, item, operation)
                    .iter()
                    .any(|p| p.value.get("name").and_then(Value::as_str) == Some("api-version"));
                if !takes_version || api_version == Some(doc.api_version.as_str()) {
                    return Ok(Operation {
                        method: method.to_ascii_uppercase(),
                        set: self,
                        doc: index,
                        template,
                        operation,
                        path_item: item,
                    });
                }
                supported.insert(doc.api_version.clone());
            }
        }
        if supported.is_empty() {
            Err(Unmatched::NoSuchOperation)
        } else {
            Err(Unmatched::ApiVersion {
                supported: supported.into_iter().collect(),
            })
        }
    }

    /// Whether a document (of `api_version`, when the API takes one) has an operation with this
    /// `operationId`.
    #[cfg(test)]
    pub fn has_operation(&self, operation_id: &str, api_version: Option<&str>) -> bool {
        self.documents.iter().any(|doc| {
            api_version.is_none_or(|v| v == doc.api_version)
                && doc
                    .json
                    .get("paths")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|paths| paths.values())
                    .filter_map(Value::as_object)
                    .flat_map(|item| item.values())
                    .any(|op| op.get("operationId").and_then(Value::as_str) == Some(operation_id))
        })
    }

    /// Path-level and operation-level parameters, `$ref`s resolved (the operation's win).
    fn parameters<'a>(&'a self, doc: usize, item: &'a Value, operation: &'a Value) -> Vec<At<'a>> {
        let mut out: Vec<At<'a>> = Vec::new();
        for list in [item.get("parameters"), operation.get("parameters")]
            .into_iter()
            .flatten()
        {
            for parameter in list.as_array().into_iter().flatten() {
                let Some(resolved) = self.resolve(At {
                    doc,
                    value: parameter,
                }) else {
                    continue;
                };
                let key = |p: &At<'_>| {
                    (
                        p.value
                            .get("name")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        p.value.get("in").and_then(Value::as_str).map(str::to_owned),
                    )
                };
                out.retain(|existing| key(existing) != key(&resolved));
                out.push(resolved);
            }
        }
        out
    }

    /// Follows `$ref`s until a schema or parameter without one.
    fn resolve<'a>(&'a self, mut at: At<'a>) -> Option<At<'a>> {
        for _ in 0..32 {
            let Some(reference) = at.value.get("$ref").and_then(Value::as_str) else {
                return Some(at);
            };
            at = self.follow(at.doc, reference)?;
        }
        None
    }

    fn follow(&self, doc: usize, reference: &str) -> Option<At<'_>> {
        let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target = if file.is_empty() {
            doc
        } else {
            let joined = join(&self.documents[doc].path, file);
            self.documents.iter().position(|d| d.path == joined)?
        };
        let value = self.documents[target].json.pointer(pointer)?;
        Some(At { doc: target, value })
    }

    /// Every `$ref` that does not resolve inside the vendored set (a test keeps this empty).
    #[cfg(test)]
    pub fn dangling_refs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (index, doc) in self.documents.iter().enumerate() {
            let mut stack = vec![&doc.json];
            while let Some(value) = stack.pop() {
                match value {
                    Value::Object(map) => {
                        // Examples are documentation, not definitions: they are not vendored.
                        if map.contains_key("x-ms-examples") {
                            stack.extend(
                                map.iter()
                                    .filter(|(k, _)| *k != "x-ms-examples")
                                    .map(|(_, v)| v),
                            );
                            continue;
                        }
                        if let Some(Value::String(reference)) = map.get("$ref")
                            && self.follow(index, reference).is_none()
                        {
                            out.push(format!("{}: {reference}", doc.path));
                        }
                        stack.extend(map.values());
                    }
                    Value::Array(items) => stack.extend(items),
                    _ => {}
                }
            }
        }
        out
    }

    /// The definitions that name `base` in their `allOf` and carry a discriminator value.
    fn subtypes<'a>(&'a self, base: At<'a>) -> Vec<(String, At<'a>)> {
        let mut out = Vec::new();
        for (index, doc) in self.documents.iter().enumerate() {
            let Some(definitions) = doc.json.get("definitions").and_then(Value::as_object) else {
                continue;
            };
            for (name, definition) in definitions {
                let extends_base = definition
                    .get("allOf")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|part| part.get("$ref").and_then(Value::as_str))
                    .filter_map(|reference| self.follow(index, reference))
                    .any(|target| std::ptr::eq(target.value, base.value));
                if extends_base {
                    let value = definition
                        .get("x-ms-discriminator-value")
                        .and_then(Value::as_str)
                        .unwrap_or(name);
                    out.push((
                        value.to_string(),
                        At {
                            doc: index,
                            value: definition,
                        },
                    ));
                }
            }
        }
        out
    }
}

/// The parameters that go `in` one place (`query`, `path`, `body`).
fn of_kind<'p, 'a>(
    parameters: &'p [At<'a>],
    kind: &'static str,
) -> impl Iterator<Item = &'p At<'a>> {
    parameters
        .iter()
        .filter(move |p| p.value.get("in").and_then(Value::as_str) == Some(kind))
}

/// `a/b/c.json` + `../d/e.json` → `a/d/e.json`.
fn join(from: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for segment in relative.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn template_matches(template: &str, path: &str) -> bool {
    path_values(template, path).is_some()
}

/// The value of each `{name}` of `template` in `path`, or `None` when the path does not fit. A
/// template that starts with a parameter (`/{scope}/providers/...`, ARM's extension resources)
/// lets it take one or more leading segments, as `x-ms-skip-url-encoding` scopes do.
fn path_values(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let template: Vec<&str> = template.trim_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_matches('/').split('/').collect();
    let parameter = |t: &str| {
        t.strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .map(str::to_string)
    };
    let leading_scope = template.len() > 1 && parameter(template[0]).is_some();
    let (head, template_rest, path_rest) = if leading_scope {
        let rest = template.len() - 1;
        if path.len() <= rest {
            return None;
        }
        let split = path.len() - rest;
        let scope = path[..split].join("/");
        (
            Some((parameter(template[0])?, scope)),
            &template[1..],
            &path[split..],
        )
    } else {
        if template.len() != path.len() {
            return None;
        }
        (None, &template[..], &path[..])
    };
    let mut values: Vec<(String, String)> = head.into_iter().collect();
    for (t, p) in template_rest.iter().zip(path_rest) {
        match parameter(t) {
            Some(name) if !p.is_empty() => values.push((name, (*p).to_string())),
            Some(_) => return None,
            None if t.eq_ignore_ascii_case(p) => {}
            None => return None,
        }
    }
    Some(values)
}

impl<'a> Operation<'a> {
    pub fn operation_id(&self) -> &'a str {
        self.operation
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn document(&self) -> &'a Document {
        &self.set.documents[self.doc]
    }

    /// Checks the path values, the query string and the body of a request.
    pub fn check_request(
        &self,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        violations: &mut Violations,
    ) {
        let parameters = self
            .set
            .parameters(self.doc, self.path_item, self.operation);
        let of_kind = |kind: &'static str| of_kind(&parameters, kind);
        let full_template = format!("{}{}", self.document().base_path, self.template);
        for (name, value) in path_values(&full_template, path).unwrap_or_default() {
            if let Some(parameter) = of_kind("path")
                .find(|p| p.value.get("name").and_then(Value::as_str) == Some(name.as_str()))
            {
                let decoded = url::form_urlencoded::parse(format!("x={value}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                self.check_simple(
                    *parameter,
                    &decoded,
                    &format!("path segment {name}"),
                    violations,
                );
            }
        }
        for (name, value) in query {
            // A next link's continuation token is the service's own, whatever its name.
            if name.eq_ignore_ascii_case("$skipToken") {
                continue;
            }
            match of_kind("query")
                .find(|p| p.value.get("name").and_then(Value::as_str) == Some(name.as_str()))
            {
                Some(parameter) => self.check_simple(
                    *parameter,
                    value,
                    &format!("query parameter {name}"),
                    violations,
                ),
                None => violations.push(
                    format!("query parameter {name}"),
                    format!(
                        "is not a parameter of {} (it takes: {})",
                        self.operation_id(),
                        of_kind("query")
                            .filter_map(|p| p.value.get("name").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        for parameter in of_kind("query") {
            let name = parameter
                .value
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let required = parameter.value.get("required").and_then(Value::as_bool) == Some(true);
            if required && !query.iter().any(|(n, _)| n == name) {
                violations.push(format!("query parameter {name}"), "is required".into());
            }
        }
        match (of_kind("body").next(), body) {
            (Some(parameter), Some(body)) => {
                if let Some(schema) = parameter.value.get("schema") {
                    self.set.check(
                        At {
                            doc: parameter.doc,
                            value: schema,
                        },
                        body,
                        "body",
                        Direction::Request,
                        violations,
                    );
                }
            }
            (Some(parameter), None) => {
                if parameter.value.get("required").and_then(Value::as_bool) == Some(true) {
                    violations.push("body".into(), "is required".into());
                }
            }
            (None, Some(_)) => violations.push(
                "body".into(),
                format!("{} takes no body", self.operation_id()),
            ),
            (None, None) => {}
        }
    }

    /// Checks an answer: its status must be one the operation declares (or an error under
    /// `default`), and its body must match that response's schema.
    pub fn check_response(&self, status: u16, body: Option<&Value>, violations: &mut Violations) {
        let Some(responses) = self.operation.get("responses").and_then(Value::as_object) else {
            return;
        };
        let declared = responses.get(&status.to_string());
        let response = match declared {
            Some(response) => response,
            None if status >= 400 => match responses.get("default") {
                Some(response) => response,
                None => return,
            },
            None => {
                violations.push(
                    "status".into(),
                    format!(
                        "{status} is not a response of {} (it declares {})",
                        self.operation_id(),
                        responses.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                return;
            }
        };
        let Some(response) = self.set.resolve(At {
            doc: self.doc,
            value: response,
        }) else {
            return;
        };
        match (response.value.get("schema"), body) {
            (Some(schema), Some(body)) => self.set.check(
                At {
                    doc: response.doc,
                    value: schema,
                },
                body,
                "response",
                Direction::Response,
                violations,
            ),
            // 204 carries no body by definition (HTTP), whatever schema the document gives it.
            (Some(_), None) if status < 400 && status != 204 => {
                violations.push("response".into(), "has no JSON body".into())
            }
            _ => {}
        }
    }

    fn check_simple(&self, parameter: At<'_>, text: &str, at: &str, violations: &mut Violations) {
        let typed = match parameter.value.get("type").and_then(Value::as_str) {
            Some("integer") => match text.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    violations.push(at.into(), format!("'{text}' is not an integer"));
                    return;
                }
            },
            Some("boolean") => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    violations.push(at.into(), format!("'{text}' is not true or false"));
                    return;
                }
            },
            _ => Value::String(text.to_string()),
        };
        self.set
            .check(parameter, &typed, at, Direction::Request, violations);
    }
}

impl SpecSet {
    /// Checks `value` against `schema`; what departs is added to `violations` under `at`.
    fn check(
        &self,
        schema: At<'_>,
        value: &Value,
        at: &str,
        direction: Direction,
        violations: &mut Violations,
    ) {
        // Swagger 2.0 has no null: a value may be null only where the definition says
        // `x-nullable: true` (AutoRest's extension, beside a `$ref` or on the schema itself).
        // Elsewhere the member is left out.
        if value.is_null() {
            let marked = schema.value.get("x-nullable").and_then(Value::as_bool) == Some(true);
            let allowed = self.resolve(schema).is_some_and(|s| {
                let shape = self.shape(s);
                shape.nullable || shape.is_bare_object()
            });
            if !marked && !allowed {
                violations.push(
                    at.into(),
                    "is null, which the definition does not allow (leave it out)".into(),
                );
            }
            return;
        }
        let Some(schema) = self.resolve(schema) else {
            violations.push(at.into(), "its schema does not resolve".into());
            return;
        };
        if let Some(chosen) = self.discriminated(schema, value, at, violations) {
            if !std::ptr::eq(chosen.value, schema.value) {
                return self.check(chosen, value, at, direction, violations);
            }
        } else {
            return;
        }
        let shape = self.shape(schema);
        // `{"type": "object"}` with nothing else describes any JSON value (AutoRest reads it as
        // `any`): Log Analytics declares its result cells so.
        if shape.is_bare_object() {
            return;
        }
        if let Some(kind) = shape.kind {
            let fits = match kind {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !fits && !value.is_null() {
                violations.push(at.into(), format!("is {}, not {kind}", json_kind(value)));
                return;
            }
        }
        if let Some(allowed) = shape.enumeration
            && !value.is_null()
            && !allowed.contains(value)
            // An answer may carry a value added to an extensible enum since; a request is held
            // to the list, so a misspelt value is caught before Microsoft sees it.
            && !(shape.extensible
                && (direction == Direction::Response || beyond_the_list(shape.enum_name, value)))
        {
            violations.push(
                at.into(),
                format!(
                    "{value} is not one of {}",
                    allowed
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if let (Some(format), Some(text)) = (shape.format, value.as_str()) {
            check_format(format, text, at, violations);
        }
        if let Some(text) = value.as_str() {
            check_length(schema.value, text, at, violations);
        }
        match value {
            Value::Object(object) if shape.is_object() => {
                self.check_object(&shape, object, at, direction, violations)
            }
            Value::Array(items) => {
                let count = items.len() as u64;
                if let Some(min) = shape.min_items.filter(|min| count < *min) {
                    violations.push(at.into(), format!("has {count} items, fewer than {min}"));
                }
                if let Some(max) = shape.max_items.filter(|max| count > *max) {
                    violations.push(at.into(), format!("has {count} items, more than {max}"));
                }
                if let Some(items_schema) = shape.items {
                    for (index, item) in items.iter().enumerate() {
                        self.check(
                            items_schema,
                            item,
                            &format!("{at}[{index}]"),
                            direction,
                            violations,
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn check_object(
        &self,
        shape: &Shape<'_>,
        object: &Map<String, Value>,
        at: &str,
        direction: Direction,
        violations: &mut Violations,
    ) {
        for (name, value) in object {
            let property = shape.properties.iter().find(|(n, _)| n == name);
            match property {
                Some((_, property)) => {
                    let read_only = self.resolve(*property).is_some_and(|p| {
                        p.value.get("readOnly").and_then(Value::as_bool) == Some(true)
                    }) || property.value.get("readOnly").and_then(Value::as_bool)
                        == Some(true);
                    // ARM fills in the envelope (id, name, type) itself and ignores them in a body.
                    let envelope = matches!(name.as_str(), "id" | "name" | "type");
                    if direction == Direction::Request && read_only && !envelope {
                        violations.push(
                            format!("{at}.{name}"),
                            "is read-only: the service sets it, a request must not".into(),
                        );
                        continue;
                    }
                    self.check(
                        *property,
                        value,
                        &format!("{at}.{name}"),
                        direction,
                        violations,
                    );
                }
                None => match shape.additional {
                    Additional::Schema(schema) => self.check(
                        schema,
                        value,
                        &format!("{at}.{name}"),
                        direction,
                        violations,
                    ),
                    Additional::Any => {}
                    Additional::Closed => violations.push(
                        format!("{at}.{name}"),
                        format!(
                            "is not a property of this object (it has: {})",
                            shape
                                .properties
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                },
            }
        }
        for required in &shape.required {
            if object.contains_key(required) {
                continue;
            }
            let read_only = shape
                .properties
                .iter()
                .find(|(n, _)| n == required)
                .and_then(|(_, p)| self.resolve(*p))
                .is_some_and(|p| p.value.get("readOnly").and_then(Value::as_bool) == Some(true));
            if direction == Direction::Response || !read_only {
                violations.push(format!("{at}.{required}"), "is required".into());
            }
        }
    }

    /// For a schema with a discriminator, the subtype the value names (`Some(schema)` itself when
    /// it has none); `None` after recording a value no subtype carries.
    fn discriminated<'a>(
        &'a self,
        schema: At<'a>,
        value: &Value,
        at: &str,
        violations: &mut Violations,
    ) -> Option<At<'a>> {
        let Some(property) = schema.value.get("discriminator").and_then(Value::as_str) else {
            return Some(schema);
        };
        let Some(kind) = value.get(property).and_then(Value::as_str) else {
            violations.push(format!("{at}.{property}"), "is required".into());
            return None;
        };
        let subtypes = self.subtypes(schema);
        if let Some((_, subtype)) = subtypes.iter().find(|(name, _)| name == kind) {
            return Some(*subtype);
        }
        violations.push(
            format!("{at}.{property}"),
            format!(
                "'{kind}' is not one of {}",
                subtypes
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        None
    }

    /// A schema with its `allOf` parts merged.
    fn shape<'a>(&'a self, schema: At<'a>) -> Shape<'a> {
        let mut shape = Shape::default();
        self.merge(schema, &mut shape, 0);
        shape
    }

    fn merge<'a>(&'a self, schema: At<'a>, shape: &mut Shape<'a>, depth: usize) {
        let Some(schema) = self.resolve(schema) else {
            return;
        };
        if depth > 16 {
            return;
        }
        let value = schema.value;
        if let Some(kind) = value.get("type").and_then(Value::as_str) {
            shape.kind = Some(kind);
        }
        if let Some(format) = value.get("format").and_then(Value::as_str) {
            shape.format = Some(format);
        }
        if value.get("x-nullable").and_then(Value::as_bool) == Some(true) {
            shape.nullable = true;
        }
        for (key, slot) in [
            ("minItems", &mut shape.min_items),
            ("maxItems", &mut shape.max_items),
        ] {
            if let Some(limit) = value.get(key).and_then(Value::as_u64) {
                *slot = Some(limit);
            }
        }
        if let Some(allowed) = value.get("enum").and_then(Value::as_array) {
            shape.enumeration = Some(allowed);
            // `x-ms-enum.modelAsString: true` marks an extensible enum: Microsoft may answer
            // values it adds later, and takes a few beyond the list (see `BEYOND_THE_LIST`).
            shape.extensible = value
                .pointer("/x-ms-enum/modelAsString")
                .and_then(Value::as_bool)
                == Some(true);
            shape.enum_name = value.pointer("/x-ms-enum/name").and_then(Value::as_str);
        }
        if let Some(items) = value.get("items") {
            shape.items = Some(At {
                doc: schema.doc,
                value: items,
            });
        }
        for (name, property) in value
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            shape.properties.retain(|(n, _)| n != name);
            shape.properties.push((
                name.clone(),
                At {
                    doc: schema.doc,
                    value: property,
                },
            ));
        }
        for required in value
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            shape.required.insert(required.to_string());
        }
        // The Log Analytics data-plane definition spells an open object as a *property* named
        // `additionalProperties` (its `errorInfo`), and the service answers extra members there
        // (`correlationId`, `line`, `pos`): read it as the author meant it.
        if value.pointer("/properties/additionalProperties/type") == Some(&Value::from("object")) {
            shape.additional = Additional::Any;
        }
        match value.get("additionalProperties") {
            Some(Value::Bool(true)) => shape.additional = Additional::Any,
            Some(Value::Object(map)) if map.is_empty() => shape.additional = Additional::Any,
            Some(other @ Value::Object(_)) => {
                shape.additional = Additional::Schema(At {
                    doc: schema.doc,
                    value: other,
                })
            }
            _ => {}
        }
        for part in value
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.merge(
                At {
                    doc: schema.doc,
                    value: part,
                },
                shape,
                depth + 1,
            );
        }
    }
}

#[derive(Default)]
struct Shape<'a> {
    kind: Option<&'a str>,
    format: Option<&'a str>,
    enumeration: Option<&'a Vec<Value>>,
    items: Option<At<'a>>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    nullable: bool,
    extensible: bool,
    enum_name: Option<&'a str>,
    properties: Vec<(String, At<'a>)>,
    required: BTreeSet<String>,
    additional: Additional<'a>,
}

impl Shape<'_> {
    fn is_object(&self) -> bool {
        self.kind == Some("object") || !self.properties.is_empty()
    }

    fn is_bare_object(&self) -> bool {
        self.kind == Some("object")
            && self.properties.is_empty()
            && matches!(self.additional, Additional::Closed)
            && self.items.is_none()
    }
}

/// Values of extensible enums (`x-ms-enum.modelAsString: true`) that the service takes though the
/// Swagger does not list them: `(x-ms-enum name, value, where Microsoft documents it)`.
const BEYOND_THE_LIST: &[(&str, &str, &str)] = &[
    (
        "CategoryType",
        "sentinel",
        "Microsoft Sentinel keeps its workbooks under category 'sentinel' (the Sentinel workbook ARM templates set \"category\": \"sentinel\")",
    ),
    (
        "KnownDataCollectionRuleResourceKind",
        "Direct",
        "Azure Monitor's Logs ingestion API uses data collection rules of kind 'Direct' (data-collection-rule-structure, 'kind')",
    ),
    (
        "KnownWindowsEventLogDataSourceStreams",
        "Microsoft-SecurityEvent",
        "Microsoft Sentinel's Windows Security Events connector (via AMA) collects into stream 'Microsoft-SecurityEvent'; its documented data collection rule request body lists it under windowsEventLogs.streams",
    ),
    (
        "KnownDataFlowStreams",
        "Microsoft-SecurityEvent",
        "the same rule's data flow carries the 'Microsoft-SecurityEvent' stream to the workspace's SecurityEvent table",
    ),
    (
        "KnownDataFlowStreams",
        "Custom-*",
        "a custom stream declared in the rule's own streamDeclarations (DataCollectionRule.streamDeclarations: 'Custom-' streams)",
    ),
];

/// Whether `value` is one of the documented values beyond the list of the enum `name` (an entry
/// ending in `*` is a prefix).
fn beyond_the_list(name: Option<&str>, value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    BEYOND_THE_LIST.iter().any(|(enum_name, extra, _)| {
        name == Some(*enum_name)
            && match extra.strip_suffix('*') {
                Some(prefix) => text.starts_with(prefix) && text.len() > prefix.len(),
                None => text == *extra,
            }
    })
}

/// What an object accepts beyond its named properties. A schema with named properties and no
/// `additionalProperties` is closed here: an unknown name in a request is a misspelt field
/// (ARM answers it with an error or, worse, ignores it), and one in an answer is invented.
#[derive(Default, Clone, Copy)]
enum Additional<'a> {
    #[default]
    Closed,
    Any,
    Schema(At<'a>),
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_format(format: &str, text: &str, at: &str, violations: &mut Violations) {
    let fits = match format {
        "date-time" => {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .is_ok()
        }
        "uuid" => uuid::Uuid::parse_str(text).is_ok(),
        "duration" => super::iso_duration(text),
        _ => true,
    };
    if !fits {
        violations.push(at.into(), format!("'{text}' is not a valid {format}"));
    }
}

fn check_length(schema: &Value, text: &str, at: &str, violations: &mut Violations) {
    let length = text.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        violations.push(at.into(), format!("is shorter than {min} characters"));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        violations.push(at.into(), format!("is longer than {max} characters"));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set() -> SpecSet {
        let base = json!({
            "swagger": "2.0", "info": {"version": "2025-01-01"},
            "paths": {"/subscriptions/{s}/things/{name}": {"put": {
                "operationId": "Things_Put",
                "parameters": [
                    {"$ref": "../common/types.json#/parameters/ApiVersion"},
                    {"name": "name", "in": "path", "required": true, "type": "string", "maxLength": 5},
                    {"name": "thing", "in": "body", "required": true, "schema": {"$ref": "#/definitions/Thing"}}
                ],
                "responses": {"200": {"schema": {"$ref": "#/definitions/Thing"}}}
            }}},
            "definitions": {
                "Thing": {"type": "object", "discriminator": "kind", "required": ["kind"],
                    "properties": {"kind": {"type": "string"}, "id": {"type": "string", "readOnly": true}}},
                "Big": {"x-ms-discriminator-value": "Big", "allOf": [{"$ref": "#/definitions/Thing"}],
                    "properties": {"size": {"type": "integer"},
                        "colour": {"type": "string", "enum": ["Red", "Blue"]},
                        "made": {"type": "string", "format": "date-time", "readOnly": true}}}
            }
        });
        let common = json!({"swagger": "2.0", "info": {"version": "common"},
            "parameters": {"ApiVersion": {"name": "api-version", "in": "query", "required": true, "type": "string"}}});
        SpecSet::new(vec![
            Document::parse("spec/a/things.json", &base.to_string()).unwrap(),
            Document::parse("spec/common/types.json", &common.to_string()).unwrap(),
        ])
    }

    fn request(body: Value, query: &[(&str, &str)]) -> Vec<String> {
        let set = set();
        let operation = set
            .find("PUT", "/subscriptions/1/THINGS/abc", Some("2025-01-01"))
            .ok()
            .unwrap();
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut violations = Violations::default();
        operation.check_request(
            "/subscriptions/1/THINGS/abc",
            &query,
            Some(&body),
            &mut violations,
        );
        violations.into_lines()
    }

    #[test]
    fn a_valid_subtype_body_passes() {
        let lines = request(
            json!({"kind": "Big", "size": 3, "colour": "Red"}),
            &[("api-version", "2025-01-01")],
        );
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn enums_types_read_only_unknown_properties_and_kinds_are_refused() {
        let lines = request(
            json!({"kind": "Big", "size": "3", "colour": "red", "made": "2025-01-01T00:00:00Z", "sise": 1}),
            &[("api-version", "2025-01-01"), ("$top", "5")],
        );
        let text = lines.join("\n");
        for expected in [
            "body.size: is a string, not integer",
            "body.colour: \"red\" is not one of",
            "body.made: is read-only",
            "body.sise: is not a property",
            "query parameter $top: is not a parameter",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        let kinds = request(json!({"kind": "Huge"}), &[("api-version", "2025-01-01")]);
        assert_eq!(
            kinds,
            vec!["body.kind: 'Huge' is not one of Big".to_string()]
        );
    }

    #[test]
    fn extensible_enums_and_bare_objects_take_any_value() {
        let doc = json!({
            "swagger": "2.0", "info": {"version": "v1"},
            "paths": {"/q": {"post": {"operationId": "Q", "parameters": [
                {"name": "body", "in": "body", "schema": {"type": "object", "properties": {
                    "category": {"type": "string", "enum": ["workbook"], "x-ms-enum": {"name": "CategoryType", "modelAsString": true}},
                    "other": {"type": "string", "enum": ["A"], "x-ms-enum": {"name": "E", "modelAsString": true}},
                    "closed": {"type": "string", "enum": ["A"], "x-ms-enum": {"name": "D", "modelAsString": false}},
                    "cells": {"type": "array", "items": {"type": "object"}}}}}],
                "responses": {"200": {}}}}}
        });
        let set = SpecSet::new(vec![
            Document::parse("spec/q.json", &doc.to_string()).unwrap(),
        ]);
        let operation = set.find("POST", "/q", None).ok().unwrap();
        let mut violations = Violations::default();
        operation.check_request(
            "/q",
            &[],
            Some(
                &json!({"category": "sentinel", "closed": "B", "cells": ["x", 1, null, {"a": 1}]}),
            ),
            &mut violations,
        );
        assert_eq!(
            violations.into_lines(),
            vec!["body.closed: \"B\" is not one of \"A\"".to_string()]
        );
    }

    #[test]
    fn another_api_version_is_named_with_the_supported_ones() {
        let set = set();
        match set.find("PUT", "/subscriptions/1/things/abc", Some("2019-01-01")) {
            Err(Unmatched::ApiVersion { supported }) => assert_eq!(supported, vec!["2025-01-01"]),
            _ => panic!("expected an api-version refusal"),
        }
        assert!(matches!(
            set.find("GET", "/subscriptions/1/things/abc", Some("2025-01-01")),
            Err(Unmatched::NoSuchOperation)
        ));
        assert!(set.dangling_refs().is_empty());
    }

    #[test]
    fn answers_must_carry_required_and_declared_properties() {
        let set = set();
        let operation = set
            .find("PUT", "/subscriptions/1/things/abc", Some("2025-01-01"))
            .ok()
            .unwrap();
        let mut violations = Violations::default();
        operation.check_response(
            200,
            Some(&json!({"kind": "Big", "made": "yesterday"})),
            &mut violations,
        );
        operation.check_response(201, Some(&json!({"kind": "Big"})), &mut violations);
        let text = violations.into_lines().join("\n");
        assert!(
            text.contains("response.made: 'yesterday' is not a valid date-time"),
            "{text}"
        );
        assert!(
            text.contains("status: 201 is not a response of Things_Put"),
            "{text}"
        );
    }
}
