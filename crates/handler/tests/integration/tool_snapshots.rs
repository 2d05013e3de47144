//! Every tool as a model sees it (name, title, description, input and output schemas,
//! annotations) is kept in `tests/__toolsnaps__/<tool>.snap.json`, like GitHub's MCP server
//! keeps its `__toolsnaps__`: a change to what a model reads fails here until its snapshot is
//! updated, so it shows in review. `UPDATE_TOOLSNAPS=1 cargo nextest run -p handler -E
//! 'test(/^tool_snapshots::/)'` writes the snapshots anew (and removes those of tools that are gone).

use crate::common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/__toolsnaps__")
}

/// What is kept of a tool: everything `tools/list` sends, keys sorted, pretty-printed.
fn snapshot(tool: &rmcp::model::Tool) -> String {
    let value = serde_json::to_value(tool).expect("a tool is JSON");
    let mut text = serde_json::to_string_pretty(&sorted(value)).expect("JSON");
    text.push('\n');
    text
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let entries: std::collections::BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            json!(entries)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[tokio::test]
async fn every_tool_matches_its_snapshot() {
    let app = TestApp::start().await;
    let tools = app
        .client()
        .await
        .list_all_tools()
        .await
        .expect("tools/list");
    let dir = snapshot_dir();
    let update = std::env::var("UPDATE_TOOLSNAPS").is_ok_and(|v| v == "1");
    if update {
        std::fs::create_dir_all(&dir).expect("snapshot folder");
    }
    let mut changed = Vec::new();
    let mut names = BTreeSet::new();
    for tool in &tools {
        let name = tool.name.to_string();
        let file = dir.join(format!("{name}.snap.json"));
        let now = snapshot(tool);
        names.insert(format!("{name}.snap.json"));
        let kept = std::fs::read_to_string(&file).ok();
        if kept.as_deref() == Some(now.as_str()) {
            continue;
        }
        if update {
            std::fs::write(&file, &now).expect("snapshot written");
        } else {
            changed.push(match kept {
                Some(_) => format!("{name} (changed)"),
                None => format!("{name} (new: no snapshot)"),
            });
        }
    }
    let stale: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(".snap.json") && !names.contains(n))
                })
                .collect()
        })
        .unwrap_or_default();
    for path in &stale {
        if update {
            std::fs::remove_file(path).expect("stale snapshot removed");
        } else {
            changed.push(format!("{} (the tool is gone)", path.display()));
        }
    }
    assert!(
        changed.is_empty(),
        "what a model sees changed for {} tools: {}. If the change is meant, run \
         UPDATE_TOOLSNAPS=1 cargo nextest run -p handler -E 'test(/^tool_snapshots::/)' and commit \
         tests/__toolsnaps__ with it",
        changed.len(),
        changed.join(", ")
    );
    assert!(tools.len() > 80, "every tool is listed: {}", tools.len());
}

/// The words of a text that look like tool names (`mde_…`, `sentinel_…`, …).
fn tool_like_words(text: &str) -> impl Iterator<Item = &str> {
    const PREFIXES: [&str; 6] = ["mde_", "sentinel_", "job_", "audit_", "hunt_", "tenants_"];
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| PREFIXES.iter().any(|prefix| word.starts_with(prefix)))
}

/// Every `description` and `title` string in a schema, and every property name.
fn schema_texts_and_properties(
    schema: &Value,
    texts: &mut Vec<String>,
    properties: &mut BTreeSet<String>,
) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("description" | "title", Value::String(text)) => texts.push(text.clone()),
                    ("properties", Value::Object(named)) => {
                        properties.extend(named.keys().cloned())
                    }
                    _ => {}
                }
                schema_texts_and_properties(value, texts, properties);
            }
        }
        Value::Array(items) => {
            for item in items {
                schema_texts_and_properties(item, texts, properties);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn tool_texts_name_only_tools_and_fields_that_exist() {
    let app = TestApp::start().await;
    let tools = app
        .client()
        .await
        .list_all_tools()
        .await
        .expect("tools/list");
    let names: BTreeSet<String> = tools.iter().map(|tool| tool.name.to_string()).collect();
    let mut stale = BTreeSet::new();
    for tool in &tools {
        let mut texts = vec![tool.description.as_deref().unwrap_or_default().to_owned()];
        let mut properties = BTreeSet::new();
        let value = serde_json::to_value(tool).expect("a tool is JSON");
        schema_texts_and_properties(&value["inputSchema"], &mut texts, &mut properties);
        schema_texts_and_properties(&value["outputSchema"], &mut texts, &mut properties);
        for text in &texts {
            for word in tool_like_words(text) {
                if !names.contains(word) && !properties.contains(word) {
                    stale.insert(format!("{}: `{word}`", tool.name));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "tool texts name tools that do not exist (nor fields of the tool): {stale:?}"
    );
}
