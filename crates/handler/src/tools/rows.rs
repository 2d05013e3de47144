//! List rows sized for a context window. A tool answer carries its structured content twice
//! (as JSON text and as `structuredContent`), so a list row carries only the fields an analyst
//! triages by; `fields` asks for more, and the item's get tool gives one item whole. Free text
//! (descriptions, comments, command lines) is cut in list rows, with a marker, unless `fields`
//! names it, and the answer says what was cut and how to have it whole.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::args::Fields;

/// Characters of a free-text field a list row keeps.
pub const TEXT_CAP: usize = 160;
/// Ends a free-text field that was cut.
pub const CUT_MARKER: &str = "…[cut]";

/// An item a list tool returns, and how its rows are cut down.
pub trait ListRow: Serialize + JsonSchema {
    /// Fields every row carries (JSON names): what an analyst triages by.
    const COMPACT: &'static [&'static str];
    /// Free-text fields (JSON names), cut to [`TEXT_CAP`] characters in list rows unless
    /// `fields` names them.
    const FREE_TEXT: &'static [&'static str] = &[];
    /// The tool that returns one item whole, when there is one.
    const GET_TOOL: Option<&'static str>;

    /// Every field a row can carry, read from the item's own output schema.
    fn field_names() -> Vec<String> {
        let schema = SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator()
            .into_root_schema_for::<Self>();
        schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// One item as a list row: its compact fields, and the extra ones asked for.
pub struct Row<T> {
    fields: Map<String, Value>,
    item: PhantomData<T>,
}

impl<T> Row<T> {
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }
}

impl<T> Serialize for Row<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(serializer)
    }
}

/// The item's schema, in which only the compact fields the item always writes are required:
/// any other field is there only when asked for.
impl<T: ListRow> JsonSchema for Row<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}Row", T::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("{}::Row<{}>", module_path!(), T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = T::json_schema(generator);
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.retain(|name| name.as_str().is_some_and(|name| T::COMPACT.contains(&name)));
        }
        schema
    }
}

/// A page of rows, and what was cut from them.
pub struct Rows<T> {
    pub rows: Vec<Row<T>>,
    /// Says which free-text fields were cut and how to read them whole; `None` when none was.
    pub cut: Option<String>,
}

/// `items` as list rows: compact fields, the extra ones `fields` names, free text cut.
pub fn rows<T: ListRow>(items: Vec<T>, fields: Option<&Fields<T>>) -> Rows<T> {
    let mut cut_counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let rows = items
        .into_iter()
        .map(|item| {
            let Ok(Value::Object(mut all)) = serde_json::to_value(&item) else {
                unreachable!("list items serialize as JSON objects");
            };
            all.retain(|name, _| {
                T::COMPACT.contains(&name.as_str()) || fields.is_some_and(|f| f.includes(name))
            });
            for name in T::FREE_TEXT {
                if fields.is_some_and(|f| f.names(name)) {
                    continue;
                }
                if let Some(Value::String(text)) = all.get_mut(*name)
                    && cut(text)
                {
                    *cut_counts.entry(name).or_default() += 1;
                }
            }
            Row {
                fields: all,
                item: PhantomData,
            }
        })
        .collect();
    let cut = (!cut_counts.is_empty()).then(|| {
        let which: Vec<String> = cut_counts
            .iter()
            .map(|(name, count)| format!("{name} in {count}"))
            .collect();
        let get = T::GET_TOOL
            .map(|tool| format!(", or {tool} for one item"))
            .unwrap_or_default();
        format!(
            "free text cut at {TEXT_CAP} characters (ends '{CUT_MARKER}'): {}; name the field in fields to have it whole{get}",
            which.join(", "),
        )
    });
    Rows { rows, cut }
}

/// The end of the summary of a list that is read whole and has no cursor, when `limit` cut it:
/// how to see the rest.
pub fn first_note(shown: usize, total: usize, narrow_with: &str) -> String {
    if total > shown {
        format!(" (first {shown}: raise limit or narrow with {narrow_with})")
    } else {
        String::new()
    }
}

/// The end of a list tool's summary when free text was cut.
pub fn cut_note(cut: Option<&String>) -> String {
    cut.map(|cut| format!("; {cut}")).unwrap_or_default()
}

/// Cuts `text` to [`TEXT_CAP`] characters and marks it; says whether it did.
pub fn cut(text: &mut String) -> bool {
    match text.char_indices().nth(TEXT_CAP) {
        Some((end, _)) => {
            text.truncate(end);
            text.push_str(CUT_MARKER);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Serialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct Item {
        id: String,
        display_name: Option<String>,
        description: Option<String>,
        owner: Option<String>,
    }

    impl ListRow for Item {
        const COMPACT: &'static [&'static str] = &["id", "displayName", "description"];
        const FREE_TEXT: &'static [&'static str] = &["description"];
        const GET_TOOL: Option<&'static str> = Some("item_get");
    }

    fn items() -> Vec<Item> {
        vec![
            Item {
                id: "1".into(),
                display_name: Some("short".into()),
                description: Some("é".repeat(TEXT_CAP + 1)),
                owner: Some("ana".into()),
            },
            Item {
                id: "2".into(),
                display_name: None,
                description: Some("fits".into()),
                owner: None,
            },
        ]
    }

    fn fields(value: Value) -> Result<Fields<Item>, serde_json::Error> {
        Fields::deserialize(value)
    }

    #[test]
    fn rows_carry_compact_fields_and_cut_free_text_saying_so() {
        let Rows { rows: compact, cut } = rows(items(), None);
        let compact = serde_json::to_value(&compact).expect("rows");
        let expected_text = format!("{}{CUT_MARKER}", "é".repeat(TEXT_CAP));
        assert_eq!(
            compact,
            json!([
                {"id": "1", "displayName": "short", "description": expected_text},
                {"id": "2", "displayName": null, "description": "fits"},
            ])
        );
        let cut = cut.expect("a cut is stated");
        assert!(
            cut.contains("description in 1") && cut.contains("item_get"),
            "{cut}"
        );
    }

    #[test]
    fn fields_add_named_fields_or_all_and_refuse_unknown_ones() {
        let named = fields(json!(["owner"])).expect("known");
        let named_rows = rows(items(), Some(&named)).rows;
        assert_eq!(
            serde_json::to_value(&named_rows).expect("rows")[0]["owner"],
            "ana"
        );
        let all = fields(json!(["all"])).expect("all");
        let Rows {
            rows: all_rows,
            cut,
        } = rows(items(), Some(&all));
        assert!(cut.is_some(), "all still cuts free text");
        assert_eq!(
            serde_json::to_value(&all_rows).expect("rows")[1]
                .as_object()
                .expect("row")
                .len(),
            4
        );
        let whole = fields(json!(["description"])).expect("known");
        let Rows {
            rows: whole_rows,
            cut,
        } = rows(items(), Some(&whole));
        assert_eq!(cut, None, "free text named in fields is whole");
        assert_eq!(
            serde_json::to_value(&whole_rows).expect("rows")[0]["description"],
            "é".repeat(TEXT_CAP + 1)
        );
        let error = fields(json!(["owner", "colour"]))
            .err()
            .expect("unknown")
            .to_string();
        assert!(
            error.contains("[\"colour\"]")
                && error.contains("known fields: description, displayName, id, owner, or all"),
            "{error}"
        );
    }

    #[test]
    fn a_row_schema_requires_only_the_compact_fields() {
        let schema = SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator()
            .into_root_schema_for::<Row<Item>>();
        assert_eq!(
            schema.get("required"),
            Some(&json!(["id", "displayName", "description"]))
        );
        assert!(
            schema
                .get("properties")
                .and_then(|p| p.get("owner"))
                .is_some()
        );
    }
}
