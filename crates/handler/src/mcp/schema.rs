//! Tool schemas as a model pays for them. schemars writes schemas for Rust readers: every
//! `Option` as `anyOf [T, null]`, integer widths as formats, each type's doc comment on its
//! definition, one `$defs` entry per named type. A client hands all of it to the model in every
//! conversation, so the catalogue rewrites each schema once, at start, into the same contract
//! in fewer bytes:
//!
//! - input schemas keep every description a model reads at the property, drop the ones on
//!   definitions the properties already describe, say "optional" by leaving a property out of
//!   `required` (the server accepts `null` too), and inline definitions used once or tiny;
//! - output schemas keep only the top level of a result (each field's type, which fields are
//!   always there); nested objects are said to be objects. Clients validate results against
//!   them and models read the result itself, so the detail would be paid for and never used.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// Integer and float widths schemars records as `format`; JSON Schema validators ignore them.
const WIDTH_FORMATS: [&str; 11] = [
    "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float",
    "double",
];

/// A definition this small is cheaper written out at each use than referenced.
const INLINE_BELOW_BYTES: usize = 80;

/// Keywords only people read, and bounds only inputs need; output schemas drop them.
const PROSE: [&str; 6] = [
    "description",
    "title",
    "examples",
    "default",
    "minimum",
    "maximum",
];

/// The input schema of `T`, compact: JSON Schema 2020-12 of what `T` accepts, root `type: object`
/// as MCP requires. schemars is called here rather than through rmcp's helpers, which keep every
/// schema they make in per-thread caches: the catalogue would hold each full schema twice beside
/// its compact one for the life of the process.
pub fn input<T: JsonSchema>() -> Result<Map<String, Value>, String> {
    let schema = root(
        SchemaSettings::draft2020_12(),
        schemars::SchemaGenerator::into_root_schema_for::<T>,
    );
    match schema.get("type") {
        Some(Value::String(kind)) if kind == "object" => Ok(compact_input(schema)),
        other => Err(format!(
            "{}: MCP needs an input schema of type object, this one has type {other:?}",
            T::schema_name()
        )),
    }
}

/// The output schema of `T`, compact: what `T` writes when serialised.
pub fn output<T: JsonSchema>() -> Map<String, Value> {
    compact_output(root(
        SchemaSettings::draft2020_12().for_serialize(),
        schemars::SchemaGenerator::into_root_schema_for::<T>,
    ))
}

/// A root schema without its title and description: the wrapper type's name and doc comment
/// say nothing a model needs (the tool's description does).
fn root(
    settings: SchemaSettings,
    generate: fn(schemars::SchemaGenerator) -> schemars::Schema,
) -> Map<String, Value> {
    let mut schema = match generate(settings.into_generator()).to_value() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    schema.remove("title");
    schema.remove("description");
    schema
}

fn compact_input(schema: Map<String, Value>) -> Map<String, Value> {
    let mut schema = Value::Object(schema);
    drop_keyword(&mut schema, "$schema");
    walk(&mut schema, &mut |node| {
        drop_width_format(node);
        drop_unsigned_minimum(node);
        collapse_null(node);
        // Unknown arguments are refused by the server with a message naming them; the
        // property list already tells a model what exists.
        if node.get("additionalProperties") == Some(&Value::Bool(false)) {
            node.remove("additionalProperties");
        }
        untype_constants(node);
    });
    drop_described_definition_prose(&mut schema);
    inline_definitions(&mut schema, |uses, size| {
        uses <= 1 || size < INLINE_BELOW_BYTES
    });
    into_object(rebuilt(schema))
}

fn compact_output(schema: Map<String, Value>) -> Map<String, Value> {
    let mut schema = Value::Object(schema);
    drop_keyword(&mut schema, "$schema");
    walk(&mut schema, &mut |node| {
        drop_width_format(node);
        // Property maps are never visited, so a field named `description` is safe.
        for keyword in PROSE {
            node.remove(keyword);
        }
    });
    inline_definitions(&mut schema, |_, _| true);
    flatten_nested_objects(&mut schema, 0);
    into_object(rebuilt(schema))
}

/// The schema read back from its own text. Removing keywords and clearing nested objects leaves
/// each map the capacity of the original (serde_json's index maps keep it); maps built from
/// text are sized to what they hold, and the catalogue keeps them for the life of the process.
fn rebuilt(schema: Value) -> Value {
    serde_json::to_vec(&schema)
        .and_then(|text| serde_json::from_slice(&text))
        .unwrap_or(schema)
}

fn into_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn drop_keyword(schema: &mut Value, keyword: &str) {
    if let Value::Object(map) = schema {
        map.remove(keyword);
    }
}

/// Calls `visit` on every schema object below `value` (and `value` itself), children first.
/// Property maps are entered but not visited: their keys are names, not keywords.
fn walk(value: &mut Value, visit: &mut impl FnMut(&mut Map<String, Value>)) {
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            for item in items {
                walk(item, visit);
            }
        }
        return;
    };
    for (key, child) in map.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "definitions" | "patternProperties" => {
                if let Value::Object(named) = child {
                    for schema in named.values_mut() {
                        walk(schema, visit);
                    }
                }
            }
            "enum" | "const" | "required" | "examples" | "default" => {}
            _ => walk(child, visit),
        }
    }
    visit(map);
}

/// `minimum: 0` is how schemars says "unsigned"; descriptions give the real range.
fn drop_unsigned_minimum(node: &mut Map<String, Value>) {
    if node.get("minimum").and_then(Value::as_u64) == Some(0) {
        node.remove("minimum");
    }
}

fn drop_width_format(node: &mut Map<String, Value>) {
    if node
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| WIDTH_FORMATS.contains(&format))
    {
        node.remove("format");
    }
}

/// `type: [T, "null"]` becomes `type: T`; `anyOf: [S, {type: null}]` becomes S merged into the
/// node (the node's own keywords, such as its description, win).
fn collapse_null(node: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = node.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            node.insert("type".into(), only);
        }
    }
    let Some(Value::Array(variants)) = node.get("anyOf") else {
        return;
    };
    let is_null = |v: &Value| {
        v.get("type").is_some_and(|t| t == "null") && v.as_object().is_some_and(|o| o.len() == 1)
    };
    if variants.len() != 2 || !variants.iter().any(is_null) {
        return;
    }
    let Some(Value::Array(variants)) = node.remove("anyOf") else {
        return;
    };
    if let Some(Value::Object(kept)) = variants.into_iter().find(|v| !is_null(v)) {
        for (key, value) in kept {
            node.entry(key).or_insert(value);
        }
    }
}

/// `oneOf: [{const: "a", type: "string"}, ...]`: a constant already says its type.
fn untype_constants(node: &mut Map<String, Value>) {
    for keyword in ["oneOf", "anyOf"] {
        if let Some(Value::Array(variants)) = node.get_mut(keyword) {
            for variant in variants.iter_mut().filter_map(Value::as_object_mut) {
                if variant.contains_key("const") {
                    variant.remove("type");
                }
            }
        }
    }
}

fn definition_name(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/$defs/")
}

/// A definition's own description goes when every use of it already says what it is (a
/// property with a description, or the items of one), and always when the definition is only a
/// type (an id newtype, say): what an argument means is said where it is used, or once in the
/// server's instructions (`tenant_id`, `workspace`, `cursor`).
fn drop_described_definition_prose(schema: &mut Value) {
    let mut undescribed_uses = BTreeSet::new();
    collect_undescribed_uses(schema, false, &mut undescribed_uses);
    let Some(Value::Object(definitions)) = schema.get_mut("$defs") else {
        return;
    };
    for (name, definition) in definitions.iter_mut() {
        if let Value::Object(definition) = definition {
            let only_a_type = definition
                .keys()
                .all(|key| matches!(key.as_str(), "type" | "description" | "format"));
            if only_a_type || !undescribed_uses.contains(name) {
                definition.remove("description");
            }
        }
    }
}

fn collect_undescribed_uses(value: &Value, parent_described: bool, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            let described = map.contains_key("description");
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(definition_name)
                && !(described || parent_described)
            {
                out.insert(name.to_string());
            }
            for (key, child) in map {
                let carried = key == "items" && described;
                collect_undescribed_uses(child, carried, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_undescribed_uses(item, parent_described, out);
            }
        }
        _ => {}
    }
}

/// Replaces each reference to a definition that `inline` picks (from its number of uses and
/// its size) by the definition itself (a use's own keywords win), one definition at a time,
/// and drops definitions no longer used. Definitions on a cycle stay referenced.
fn inline_definitions(schema: &mut Value, inline: impl Fn(usize, usize) -> bool) {
    loop {
        let Some(Value::Object(definitions)) = schema.get("$defs") else {
            return;
        };
        let mut uses = BTreeMap::<String, usize>::new();
        count_uses(schema, &mut uses);
        let picked = definitions.iter().find(|(name, definition)| {
            let size = serde_json::to_vec(definition).map_or(usize::MAX, |b| b.len());
            !on_cycle(name, definitions) && inline(uses.get(*name).copied().unwrap_or(0), size)
        });
        let Some((name, definition)) = picked.map(|(n, d)| (n.clone(), d.clone())) else {
            return;
        };
        if let Value::Object(root) = schema
            && let Some(Value::Object(definitions)) = root.get_mut("$defs")
        {
            definitions.remove(&name);
            if definitions.is_empty() {
                root.remove("$defs");
            }
        }
        replace_references(schema, &name, &definition);
    }
}

fn references(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(definition_name)
            {
                out.insert(name.to_string());
            }
            map.values().for_each(|child| references(child, out));
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

/// Whether `name` can reach itself through references.
fn on_cycle(name: &str, definitions: &Map<String, Value>) -> bool {
    let mut seen = BTreeSet::new();
    let mut pending: Vec<String> = definitions
        .get(name)
        .map(|definition| {
            let mut direct = BTreeSet::new();
            references(definition, &mut direct);
            direct.into_iter().collect()
        })
        .unwrap_or_default();
    while let Some(next) = pending.pop() {
        if next == name {
            return true;
        }
        if seen.insert(next.clone())
            && let Some(definition) = definitions.get(&next)
        {
            let mut direct = BTreeSet::new();
            references(definition, &mut direct);
            pending.extend(direct);
        }
    }
    false
}

fn count_uses(value: &Value, uses: &mut BTreeMap<String, usize>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(definition_name)
            {
                *uses.entry(name.to_string()).or_default() += 1;
            }
            map.values().for_each(|child| count_uses(child, uses));
        }
        Value::Array(items) => items.iter().for_each(|item| count_uses(item, uses)),
        _ => {}
    }
}

fn replace_references(value: &mut Value, name: &str, definition: &Value) {
    match value {
        Value::Object(map) => {
            let points_here = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(definition_name)
                == Some(name);
            if points_here && let Value::Object(keywords) = definition {
                map.remove("$ref");
                for (key, keyword) in keywords {
                    map.entry(key.clone()).or_insert_with(|| keyword.clone());
                }
            }
            map.values_mut()
                .for_each(|child| replace_references(child, name, definition));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_references(item, name, definition)),
        _ => {}
    }
}

/// Below the top level of a result, an object is only said to be one: what its fields are is
/// the tool's answer to show, and writing it out for every nested type would double the list.
fn flatten_nested_objects(value: &mut Value, depth: usize) {
    let Value::Object(node) = value else {
        if let Value::Array(variants) = value {
            variants
                .iter_mut()
                .for_each(|variant| flatten_nested_objects(variant, depth));
        }
        return;
    };
    if depth > 0 && node.contains_key("properties") {
        let kind = node.get("type").cloned().unwrap_or_else(|| "object".into());
        node.clear();
        node.insert("type".into(), kind);
        return;
    }
    for (key, child) in node.iter_mut() {
        match key.as_str() {
            "properties" => {
                if let Value::Object(fields) = child {
                    fields
                        .values_mut()
                        .for_each(|field| flatten_nested_objects(field, depth + 1));
                }
            }
            "$defs" => {
                if let Value::Object(definitions) = child {
                    definitions
                        .values_mut()
                        .for_each(|definition| flatten_nested_objects(definition, 1));
                }
            }
            "items" | "additionalProperties" | "anyOf" | "oneOf" | "allOf" => {
                flatten_nested_objects(child, depth)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn options_lose_their_null_and_definitions_their_repeated_prose() {
        let schema = object(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "tenant_id": {"anyOf": [{"$ref": "#/$defs/TenantId"}, {"type": "null"}], "description": "Tenant."},
                "tenant_ids": {"type": ["array", "null"], "items": {"$ref": "#/$defs/TenantId"}, "description": "Tenants."},
                "limit": {"type": ["integer", "null"], "format": "uint32", "minimum": 0},
                "scope": {"$ref": "#/$defs/Scope"},
                "other": {"$ref": "#/$defs/Scope", "description": "Other scope."}
            },
            "$defs": {
                "TenantId": {"type": "string", "description": "A long note for engineers about tenant ids."},
                "Scope": {"description": "What the scope is.", "oneOf": [
                    {"const": "a", "type": "string", "description": "first choice, explained at length"},
                    {"const": "b", "type": "string", "description": "second choice, explained at length"}
                ]}
            }
        }));
        let compact = Value::Object(compact_input(schema));
        assert_eq!(
            compact["properties"]["tenant_id"],
            json!({"type": "string", "description": "Tenant."}),
            "a tiny definition is inlined, its engineer prose dropped"
        );
        assert_eq!(compact["properties"]["tenant_ids"]["type"], "array");
        assert_eq!(
            compact["properties"]["tenant_ids"]["items"],
            json!({"type": "string"})
        );
        assert_eq!(compact["properties"]["limit"], json!({"type": "integer"}));
        assert!(compact.get("$schema").is_none());
        assert_eq!(
            compact["$defs"]["Scope"]["description"], "What the scope is.",
            "`scope` has no description of its own, so the definition keeps its"
        );
    }

    #[test]
    fn output_schemas_keep_the_top_level_of_a_result() {
        let schema = object(json!({
            "type": "object",
            "description": "A result.",
            "required": ["description"],
            "properties": {
                "description": {"type": ["string", "null"], "description": "The text."},
                "count": {"type": "integer", "format": "uint32", "minimum": 0},
                "rows": {"type": "array", "items": {"$ref": "#/$defs/Row"}},
                "first": {"anyOf": [{"$ref": "#/$defs/Row"}, {"type": "null"}]}
            },
            "$defs": {"Row": {"type": "object", "title": "Row", "properties": {"n": {"type": "integer"}}}}
        }));
        let compact = Value::Object(compact_output(schema));
        assert_eq!(
            compact,
            json!({
                "type": "object",
                "required": ["description"],
                "properties": {
                    "description": {"type": ["string", "null"]},
                    "count": {"type": "integer"},
                    "rows": {"type": "array", "items": {"type": "object"}},
                    "first": {"anyOf": [{"type": "object"}, {"type": "null"}]}
                }
            }),
            "a field named `description` stays; nullability stays, results may hold null"
        );
    }

    #[test]
    fn definitions_used_only_by_inlined_ones_still_resolve() {
        let schema = object(json!({
            "type": "object",
            "properties": {"alert": {"anyOf": [{"$ref": "#/$defs/Alert"}, {"type": "null"}], "description": "An alert."}},
            "$defs": {
                "Alert": {"type": "object", "properties": {"scope": {"$ref": "#/$defs/Scope"}, "other": {"$ref": "#/$defs/Scope"}}},
                "Scope": {"description": "Which rows count, with a long explanation of both choices.", "oneOf": [
                    {"const": "per_tenant", "description": "each tenant's rows on their own"},
                    {"const": "total", "description": "all tenants' rows added up"}
                ]}
            }
        }));
        let compact = Value::Object(compact_input(schema));
        let text = compact.to_string();
        for reference in text
            .match_indices("#/$defs/")
            .map(|(at, _)| &text[at + 8..])
        {
            let name: String = reference
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            assert!(
                compact["$defs"][&name].is_object(),
                "dangling reference to {name} in {text}"
            );
        }
        assert_eq!(compact["properties"]["alert"]["type"], "object");
    }

    #[test]
    fn recursive_definitions_stay_referenced() {
        let schema = object(json!({
            "type": "object",
            "properties": {"node": {"$ref": "#/$defs/Node"}},
            "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}}
        }));
        let compact = Value::Object(compact_output(schema));
        assert_eq!(compact["properties"]["node"]["$ref"], "#/$defs/Node");
        assert!(compact["$defs"]["Node"].is_object());
    }
}
