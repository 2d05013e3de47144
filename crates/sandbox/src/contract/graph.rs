//! Microsoft Graph: the security types of Graph's published CSDL schema (`msgraph-metadata`,
//! v1.0 and beta extracts) and, per operation we call, the permissions, query options and
//! updatable properties of its API reference page (`permissions.json`). A body property must be a
//! property of its type (base types included) with a value of the property's type (enum members,
//! collections, complex types, date-times); a PATCH may only carry what the page says is
//! updatable; an answer may only carry the type's properties.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::Violations;

/// The vendored files as they are read.
#[derive(Default)]
pub struct Sources {
    schemas: BTreeMap<String, Types>,
    operations: Option<Vec<OperationSpec>>,
}

/// The types of one schema version (`v1.0` or `beta`), by qualified name.
#[derive(Default)]
struct Types {
    structured: BTreeMap<String, Structured>,
    enums: BTreeMap<String, Vec<String>>,
    actions: BTreeMap<String, Vec<Parameter>>,
}

#[derive(Clone)]
struct Structured {
    base: Option<String>,
    open: bool,
    properties: Vec<Property>,
}

#[derive(Clone)]
struct Property {
    name: String,
    kind: String,
    nullable: bool,
}

struct Parameter {
    name: String,
    kind: String,
    optional: bool,
}

#[derive(Debug, Deserialize)]
struct PermissionsFile {
    operations: Vec<OperationSpec>,
}

#[derive(Debug, Deserialize)]
struct OperationSpec {
    id: String,
    method: String,
    path: String,
    permissions: OperationPermissions,
    #[serde(default)]
    query: Option<QuerySpec>,
    #[serde(default)]
    body: Option<BodySpec>,
    /// Calls per tenant the page documents (advanced hunting).
    #[serde(default)]
    quota: Option<super::defender::Quota>,
}

#[derive(Debug, Deserialize)]
struct OperationPermissions {
    application: ApplicationPermissions,
}

#[derive(Debug, Deserialize)]
struct ApplicationPermissions {
    least_privileged: Vec<String>,
    #[serde(default)]
    higher_privileged: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct QuerySpec {
    #[serde(default)]
    supported: Vec<String>,
    #[serde(default)]
    filter: Vec<String>,
    #[serde(default)]
    top_max: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct BodySpec {
    /// What a PATCH may change (`detectionAction/alertTemplate/title` names a nested one).
    #[serde(default)]
    updatable: Option<Vec<String>>,
}

/// What each operation sends and answers, in the schema's own type names. The paths and
/// permissions come from the pages (`permissions.json`); this says which CSDL type each body is.
const SHAPES: &[(&str, Shape)] = &[
    ("list-incidents", Shape::answers_many(INCIDENT)),
    ("get-incident", Shape::answers_one(INCIDENT)),
    (
        "update-incident",
        Shape::sends(INCIDENT).answering_one(INCIDENT),
    ),
    (
        "create-incident-comment",
        Shape::sends(ALERT_COMMENT).answering_many(ALERT_COMMENT),
    ),
    (
        "run-hunting-query",
        Shape::action("runHuntingQuery").answering_one(HUNTING_RESULTS),
    ),
    ("list-detection-rules", Shape::answers_many(DETECTION_RULE)),
    ("get-detection-rule", Shape::answers_one(DETECTION_RULE)),
    (
        "create-detection-rule",
        Shape::sends(DETECTION_RULE).answering_one(DETECTION_RULE),
    ),
    (
        "update-detection-rule",
        Shape::sends(DETECTION_RULE).answering_one(DETECTION_RULE),
    ),
    ("delete-detection-rule", Shape::NOTHING),
];

const INCIDENT: &str = "microsoft.graph.security.incident";
const ALERT_COMMENT: &str = "microsoft.graph.security.alertComment";
const HUNTING_RESULTS: &str = "microsoft.graph.security.huntingQueryResults";
const DETECTION_RULE: &str = "microsoft.graph.security.detectionRule";

#[derive(Clone, Copy)]
struct Shape {
    request: Option<Sent>,
    response: Option<(&'static str, bool)>,
}

#[derive(Clone, Copy)]
enum Sent {
    Type(&'static str),
    Action(&'static str),
}

impl Shape {
    const NOTHING: Shape = Shape {
        request: None,
        response: None,
    };
    const fn answers_one(kind: &'static str) -> Self {
        Shape {
            request: None,
            response: Some((kind, false)),
        }
    }
    const fn answers_many(kind: &'static str) -> Self {
        Shape {
            request: None,
            response: Some((kind, true)),
        }
    }
    const fn sends(kind: &'static str) -> Self {
        Shape {
            request: Some(Sent::Type(kind)),
            response: None,
        }
    }
    const fn action(name: &'static str) -> Self {
        Shape {
            request: Some(Sent::Action(name)),
            response: None,
        }
    }
    const fn answering_one(self, kind: &'static str) -> Self {
        Shape {
            response: Some((kind, false)),
            ..self
        }
    }
    const fn answering_many(self, kind: &'static str) -> Self {
        Shape {
            response: Some((kind, true)),
            ..self
        }
    }
}

impl Sources {
    pub fn add(&mut self, file: &str, text: &str) -> Result<(), String> {
        if file == "permissions.json" {
            let parsed: PermissionsFile = serde_json::from_str(text)
                .map_err(|e| format!("msgraph-metadata/{file} does not parse: {e}"))?;
            self.operations = Some(parsed.operations);
        } else if let Some((version, "security.xml")) = file.split_once('/') {
            let types = parse_csdl(text).map_err(|e| format!("msgraph-metadata/{file}: {e}"))?;
            self.schemas.insert(version.to_string(), types);
        }
        Ok(())
    }

    pub fn build(self) -> Result<Schema, String> {
        let operations = self
            .operations
            .ok_or("definitions/msgraph-metadata/permissions.json is missing")?;
        for (id, _) in SHAPES {
            if !operations.iter().any(|o| o.id == *id) {
                return Err(format!("permissions.json has no operation {id}"));
            }
        }
        // The beta extract does not repeat `microsoft.graph.entity` (the base of every entity,
        // identical in both versions); it is taken from the v1.0 extract.
        let mut schemas = self.schemas;
        let shared: Vec<(String, Structured)> = schemas
            .values()
            .flat_map(|types| types.structured.iter())
            .filter(|(name, _)| {
                name.starts_with("microsoft.graph.")
                    && !name.starts_with("microsoft.graph.security.")
            })
            .map(|(name, structured)| (name.clone(), structured.clone()))
            .collect();
        for types in schemas.values_mut() {
            for (name, structured) in &shared {
                types
                    .structured
                    .entry(name.clone())
                    .or_insert_with(|| structured.clone());
            }
        }
        Ok(Schema {
            schemas,
            operations,
        })
    }
}

fn parse_csdl(text: &str) -> Result<Types, String> {
    let document = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let mut types = Types::default();
    for schema in document.descendants().filter(|n| n.has_tag_name("Schema")) {
        let namespace = schema.attribute("Namespace").unwrap_or_default();
        let alias = schema.attribute("Alias");
        let qualify = |name: &str| format!("{namespace}.{name}");
        let unalias = |kind: &str| unalias(kind, namespace, alias);
        for node in schema.children().filter(|n| n.is_element()) {
            let Some(name) = node.attribute("Name") else {
                continue;
            };
            match node.tag_name().name() {
                "EntityType" | "ComplexType" => {
                    let properties = node
                        .children()
                        .filter(|p| {
                            p.has_tag_name("Property") || p.has_tag_name("NavigationProperty")
                        })
                        .map(|p| Property {
                            name: p.attribute("Name").unwrap_or_default().to_string(),
                            kind: unalias(p.attribute("Type").unwrap_or_default()),
                            nullable: p.attribute("Nullable") != Some("false"),
                        })
                        .collect();
                    types.structured.insert(
                        qualify(name),
                        Structured {
                            base: node.attribute("BaseType").map(unalias),
                            open: node.attribute("OpenType") == Some("true"),
                            properties,
                        },
                    );
                }
                "EnumType" => {
                    let members = node
                        .children()
                        .filter(|m| m.has_tag_name("Member"))
                        .filter_map(|m| m.attribute("Name").map(str::to_string))
                        .collect();
                    types.enums.insert(qualify(name), members);
                }
                "Action" => {
                    let parameters = node
                        .children()
                        .filter(|p| p.has_tag_name("Parameter"))
                        .filter(|p| p.attribute("Name") != Some("bindingParameter"))
                        .map(|p| Parameter {
                            name: p.attribute("Name").unwrap_or_default().to_string(),
                            kind: unalias(p.attribute("Type").unwrap_or_default()),
                            optional: p.children().any(|a| {
                                a.attribute("Term") == Some("Org.OData.Core.V1.OptionalParameter")
                            }),
                        })
                        .collect();
                    types.actions.insert(name.to_string(), parameters);
                }
                _ => {}
            }
        }
    }
    Ok(types)
}

/// `graph.entity` → `microsoft.graph.entity`; `self.x` → `<namespace>.x`; collections kept.
fn unalias(kind: &str, namespace: &str, alias: Option<&str>) -> String {
    if let Some(inner) = kind
        .strip_prefix("Collection(")
        .and_then(|k| k.strip_suffix(')'))
    {
        return format!("Collection({})", unalias(inner, namespace, alias));
    }
    if let Some(rest) = kind.strip_prefix("graph.") {
        return format!("microsoft.graph.{rest}");
    }
    if let (Some(alias), Some((prefix, rest))) = (alias, kind.split_once('.'))
        && prefix == alias
    {
        return format!("{namespace}.{rest}");
    }
    kind.to_string()
}

pub struct Schema {
    schemas: BTreeMap<String, Types>,
    operations: Vec<OperationSpec>,
}

/// An operation a request matched.
pub struct Operation<'a> {
    spec: &'a OperationSpec,
    shape: Shape,
    types: &'a Types,
    accepted: Vec<String>,
    version: &'static str,
}

impl Schema {
    pub fn permissions(&self) -> Vec<String> {
        self.operations
            .iter()
            .flat_map(|o| {
                let p = &o.permissions.application;
                p.least_privileged
                    .iter()
                    .chain(&p.higher_privileged)
                    .cloned()
            })
            .collect()
    }

    #[cfg(test)]
    pub fn has_operation(&self, id: &str) -> bool {
        self.operations.iter().any(|o| o.id == id)
    }

    pub fn find(&self, method: &str, path: &str) -> Option<Operation<'_>> {
        let spec = self.operations.iter().find(|o| {
            o.method.eq_ignore_ascii_case(method) && super::path_matches(&o.path, path)
        })?;
        let shape = SHAPES.iter().find(|(id, _)| *id == spec.id)?.1;
        let version = path.trim_start_matches('/').split('/').next()?;
        let types = self.schemas.get(version)?;
        let p = &spec.permissions.application;
        let accepted = p
            .least_privileged
            .iter()
            .chain(&p.higher_privileged)
            .cloned()
            .collect();
        Some(Operation {
            spec,
            shape,
            types,
            accepted,
            version: if version == "beta" { "beta" } else { "v1.0" },
        })
    }
}

impl Operation<'_> {
    pub fn name(&self) -> &str {
        &self.spec.id
    }

    pub fn permissions(&self) -> &[String] {
        &self.accepted
    }

    pub fn version(&self) -> &'static str {
        self.version
    }

    pub fn quota(&self) -> Option<super::defender::Quota> {
        self.spec.quota
    }

    pub fn method(&self) -> &str {
        &self.spec.method
    }

    pub fn path(&self) -> &str {
        &self.spec.path
    }

    pub fn check_request(
        &self,
        query: &[(String, String)],
        body: Option<&Value>,
        violations: &mut Violations,
    ) {
        let documented = self.spec.query.as_ref();
        for (name, value) in query {
            if !name.starts_with('$') {
                continue;
            }
            let supported = documented.is_some_and(|q| q.supported.iter().any(|s| s == name));
            if !supported {
                violations.push(
                    name.clone(),
                    format!("Query option '{name}' is not supported by {}", self.spec.id),
                );
                continue;
            }
            match name.as_str() {
                "$filter" => {
                    let filterable = &documented.map(|q| q.filter.as_slice()).unwrap_or(&[]);
                    for property in super::defender::filter_properties(value) {
                        if !filterable
                            .iter()
                            .any(|f| f.split('/').next() == Some(property.as_str()))
                        {
                            violations.push(
                                "$filter".into(),
                                format!(
                                    "'{property}' is not a filterable property of {} (the page lists: {})",
                                    self.spec.id,
                                    filterable.join(", ")
                                ),
                            );
                        }
                    }
                }
                "$top" => {
                    let max = documented.and_then(|q| q.top_max);
                    match value.parse::<u64>() {
                        Ok(top) if max.is_none_or(|m| top <= m) => {}
                        _ => violations.push(
                            "$top".into(),
                            format!(
                                "'{value}' is not a page size the page allows{}",
                                max.map(|m| format!(" (at most {m})")).unwrap_or_default()
                            ),
                        ),
                    }
                }
                _ => {}
            }
        }
        match (self.shape.request, body) {
            (None, Some(body)) if !body.is_null() => {
                violations.push("body".into(), format!("{} takes no body", self.spec.id))
            }
            (Some(_), None) => violations.push("body".into(), "is required".into()),
            (Some(Sent::Type(kind)), Some(body)) => {
                if let Some(updatable) = self.spec.body.as_ref().and_then(|b| b.updatable.as_ref())
                {
                    check_updatable(updatable, "", body, violations);
                }
                self.check_value(kind, body, "body", true, violations);
            }
            (Some(Sent::Action(action)), Some(body)) => self.check_action(action, body, violations),
            _ => {}
        }
    }

    pub fn check_response(&self, body: &Value, violations: &mut Violations) {
        let Some((kind, many)) = self.shape.response else {
            return;
        };
        if many {
            match body.get("value").and_then(Value::as_array) {
                Some(items) => {
                    for (index, item) in items.iter().enumerate() {
                        self.check_value(
                            kind,
                            item,
                            &format!("response.value[{index}]"),
                            false,
                            violations,
                        );
                    }
                }
                None => violations.push("response.value".into(), "is required".into()),
            }
        } else {
            self.check_value(kind, body, "response", false, violations);
        }
    }

    fn check_action(&self, action: &str, body: &Value, violations: &mut Violations) {
        let Some(parameters) = self.types.actions.get(action) else {
            violations.push("body".into(), format!("the schema has no action {action}"));
            return;
        };
        let Some(object) = body.as_object() else {
            violations.push("body".into(), "must be a JSON object".into());
            return;
        };
        // Graph reads action parameters without regard to case (its pages write `Query`).
        for (name, value) in object {
            match parameters
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(name))
            {
                Some(parameter) => self.check_value(
                    &parameter.kind,
                    value,
                    &format!("body.{name}"),
                    true,
                    violations,
                ),
                None => violations.push(
                    format!("body.{name}"),
                    format!(
                        "is not a parameter of {action} (it takes: {})",
                        parameters
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        for parameter in parameters.iter().filter(|p| !p.optional) {
            if !object
                .keys()
                .any(|k| k.eq_ignore_ascii_case(&parameter.name))
            {
                violations.push(format!("body.{}", parameter.name), "is required".into());
            }
        }
    }

    /// `value` as an instance of the CSDL type `kind`.
    fn check_value(
        &self,
        kind: &str,
        value: &Value,
        at: &str,
        request: bool,
        violations: &mut Violations,
    ) {
        if value.is_null() {
            return;
        }
        if let Some(inner) = kind
            .strip_prefix("Collection(")
            .and_then(|k| k.strip_suffix(')'))
        {
            match value.as_array() {
                Some(items) => {
                    for (index, item) in items.iter().enumerate() {
                        self.check_value(
                            inner,
                            item,
                            &format!("{at}[{index}]"),
                            request,
                            violations,
                        );
                    }
                }
                None => violations.push(at.into(), format!("must be an array of {inner}")),
            }
            return;
        }
        let fits = match kind {
            "Edm.String" | "Edm.Guid" | "Edm.Binary" => value.is_string(),
            "Edm.Boolean" => value.is_boolean(),
            "Edm.Int32" | "Edm.Int64" | "Edm.Int16" | "Edm.Byte" => {
                value.is_i64() || value.is_u64()
            }
            "Edm.Double" | "Edm.Single" | "Edm.Decimal" => value.is_number(),
            "Edm.DateTimeOffset" => value.as_str().is_some_and(|text| {
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            }),
            "Edm.Duration" => value.as_str().is_some_and(super::iso_duration),
            _ => true,
        };
        if !fits {
            violations.push(at.into(), format!("{value} is not a valid {kind}"));
            return;
        }
        if let Some(members) = self.types.enums.get(kind) {
            match value.as_str() {
                // Flags enums are written as a comma-separated list of members.
                Some(text)
                    if text
                        .split(',')
                        .all(|m| members.iter().any(|member| member == m.trim())) => {}
                _ => violations.push(
                    at.into(),
                    format!("{value} is not a member of {kind} ({})", members.join(", ")),
                ),
            }
            return;
        }
        if self.types.structured.contains_key(kind) {
            self.check_structured(kind, value, at, request, violations);
        }
    }

    fn check_structured(
        &self,
        kind: &str,
        value: &Value,
        at: &str,
        request: bool,
        violations: &mut Violations,
    ) {
        let Some(object) = value.as_object() else {
            violations.push(at.into(), format!("must be a {kind} object"));
            return;
        };
        // A derived type named by `@odata.type` (`#microsoft.graph.security.x`) is checked as such.
        let kind = match object.get("@odata.type").and_then(Value::as_str) {
            Some(named) => {
                let named = named.trim_start_matches('#');
                if self.derives_from(named, kind) {
                    named.to_string()
                } else {
                    violations.push(
                        format!("{at}.@odata.type"),
                        format!("'{named}' is not a {kind}"),
                    );
                    return;
                }
            }
            None => kind.to_string(),
        };
        let (properties, open) = self.properties(&kind);
        for (name, value) in object {
            if name.contains('@') {
                continue;
            }
            let found = properties.iter().find(|p| {
                if request {
                    p.name.eq_ignore_ascii_case(name)
                } else {
                    p.name == *name
                }
            });
            match found {
                Some(property) => {
                    if value.is_null() && !property.nullable {
                        violations.push(format!("{at}.{name}"), "cannot be null".into());
                    } else {
                        self.check_value(
                            &property.kind,
                            value,
                            &format!("{at}.{name}"),
                            request,
                            violations,
                        );
                    }
                }
                None if open => {}
                None => violations.push(
                    format!("{at}.{name}"),
                    format!("is not a property of {kind}"),
                ),
            }
        }
    }

    /// Own and inherited properties, and whether the type (or a base) is open.
    fn properties(&self, kind: &str) -> (Vec<&Property>, bool) {
        let mut out = Vec::new();
        let mut open = false;
        let mut seen = BTreeSet::new();
        let mut current = Some(kind.to_string());
        while let Some(name) = current.take() {
            if !seen.insert(name.clone()) {
                break;
            }
            if let Some(structured) = self.types.structured.get(&name) {
                out.extend(structured.properties.iter());
                open |= structured.open;
                current = structured.base.clone();
            }
        }
        (out, open)
    }

    fn derives_from(&self, kind: &str, base: &str) -> bool {
        let mut current = Some(kind.to_string());
        let mut steps = 0;
        while let Some(name) = current.take() {
            if name == base {
                return true;
            }
            steps += 1;
            if steps > 16 {
                break;
            }
            current = self
                .types
                .structured
                .get(&name)
                .and_then(|s| s.base.clone());
        }
        false
    }
}

/// Refuses a PATCH property the page does not list as updatable. `a/b/c` in the list allows
/// `c` under `b` under `a`; a listed leaf allows everything below it.
fn check_updatable(updatable: &[String], prefix: &str, body: &Value, violations: &mut Violations) {
    let Some(object) = body.as_object() else {
        return;
    };
    for (name, value) in object {
        if name.starts_with('@') {
            continue;
        }
        let path = format!("{prefix}{name}");
        if updatable.contains(&path) {
            continue;
        }
        let nested = format!("{path}/");
        if updatable.iter().any(|u| u.starts_with(&nested)) && value.is_object() {
            check_updatable(updatable, &nested, value, violations);
            continue;
        }
        violations.push(
            format!("body.{}", path.replace('/', ".")),
            format!(
                "is not updatable (the page lists: {})",
                updatable.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> &'static super::super::Contract {
        super::super::contract()
    }

    fn check(method: &str, path: &str, query: &[(&str, &str)], body: Option<Value>) -> Vec<String> {
        let operation = schema()
            .graph
            .find(method, path)
            .expect("a documented operation");
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut violations = Violations::default();
        operation.check_request(&query, body.as_ref(), &mut violations);
        violations.into_lines()
    }

    #[test]
    fn an_incident_update_is_held_to_the_v1_enums_and_updatable_properties() {
        assert!(check("PATCH", "/v1.0/security/incidents/1", &[], Some(json!({"status": "resolved", "classification": "truePositive", "determination": "malware"}))).is_empty());
        let wrong = check(
            "PATCH",
            "/v1.0/security/incidents/1",
            &[],
            Some(json!({"determination": "confirmedUserActivity", "severity": "high"})),
        );
        let text = wrong.join("\n");
        assert!(text.contains("body.determination: \"confirmedUserActivity\" is not a member of microsoft.graph.security.alertDetermination"), "{text}");
        assert!(text.contains("body.severity: is not updatable"), "{text}");
    }

    #[test]
    fn filters_and_query_options_are_the_documented_ones() {
        assert!(
            check(
                "GET",
                "/v1.0/security/incidents",
                &[("$filter", "status eq 'active'"), ("$top", "50")],
                None
            )
            .is_empty()
        );
        let text = check(
            "GET",
            "/v1.0/security/incidents",
            &[
                ("$filter", "displayName eq 'x'"),
                ("$orderby", "createdDateTime"),
            ],
            None,
        )
        .join("\n");
        assert!(
            text.contains("'displayName' is not a filterable property"),
            "{text}"
        );
        assert!(
            text.contains("Query option '$orderby' is not supported"),
            "{text}"
        );
    }

    #[test]
    fn hunting_takes_query_and_an_optional_timespan() {
        assert!(
            check(
                "POST",
                "/v1.0/security/runHuntingQuery",
                &[],
                Some(json!({"Query": "DeviceInfo | take 1"}))
            )
            .is_empty()
        );
        let text = check(
            "POST",
            "/v1.0/security/runHuntingQuery",
            &[],
            Some(json!({"Timespan": "P1D", "Top": 5})),
        )
        .join("\n");
        assert!(
            text.contains("body.query: is required")
                && text.contains("body.Top: is not a parameter"),
            "{text}"
        );
    }
}
