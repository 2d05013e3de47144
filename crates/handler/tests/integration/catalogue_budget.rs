//! What a model pays before the first question: the tool definitions a client hands it. Each
//! budget names the largest tools when it is exceeded, so whoever grew the catalogue sees where.
//! (Sizes are in bytes of compact JSON, 1 KB = 1,000 bytes; a token is about 4 bytes.)

use crate::common;

use common::*;
use rmcp::model::Tool;

/// The default connection (`/api/mcp`): the triage set.
const TRIAGE_BUDGET: usize = 32_000;
/// Every tool (`/api/mcp/x/all`): names, descriptions and input schemas.
const CATALOGUE_BUDGET: usize = 80_000;
/// Every tool's whole definition as `tools/list` sends it (output schemas, annotations, titles).
const FULL_LIST_BUDGET: usize = 150_000;

/// Name, description and input schema: what clients hand the model.
fn model_bytes(tool: &Tool) -> usize {
    tool.name.len()
        + tool.description.as_deref().map_or(0, str::len)
        + serde_json::to_vec(&*tool.input_schema).unwrap().len()
}

fn full_bytes(tool: &Tool) -> usize {
    serde_json::to_vec(tool).unwrap().len()
}

fn check(what: &str, tools: &[Tool], size: fn(&Tool) -> usize, budget: usize) {
    let total: usize = tools.iter().map(size).sum();
    let mut largest: Vec<(usize, &str)> =
        tools.iter().map(|t| (size(t), t.name.as_ref())).collect();
    largest.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<String> = largest
        .iter()
        .take(8)
        .map(|(bytes, name)| format!("{name} {bytes} B"))
        .collect();
    println!(
        "{what}: {} tools, {total} bytes (budget {budget}); largest: {}",
        tools.len(),
        top.join(", ")
    );
    assert!(
        total <= budget,
        "{what} is {total} bytes for {} tools, over its budget of {budget}; the largest: {}",
        tools.len(),
        top.join(", ")
    );
}

#[tokio::test]
async fn tool_definitions_stay_within_their_budgets() {
    let app = TestApp::start().await;
    let triage = connect(&format!("{}/api/mcp", app.base_url))
        .await
        .list_all_tools()
        .await
        .expect("tools/list");
    let all = app
        .client()
        .await
        .list_all_tools()
        .await
        .expect("tools/list");
    for tool in &all {
        let schemas = [Some(tool.input_schema.clone()), tool.output_schema.clone()];
        for schema in schemas.into_iter().flatten() {
            let schema = serde_json::Value::Object((*schema).clone());
            let text = schema.to_string();
            for (at, _) in text.match_indices("#/$defs/") {
                let name: String = text[at + 8..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    schema["$defs"][&name].is_object(),
                    "{}: a reference to {name} has no definition",
                    tool.name
                );
            }
            if let Err(error) = jsonschema::validator_for(&schema) {
                panic!(
                    "{}: a schema made smaller is no longer valid: {error}\n{schema}",
                    tool.name
                );
            }
        }
    }
    check(
        "the default (triage) set",
        &triage,
        model_bytes,
        TRIAGE_BUDGET,
    );
    check("the whole catalogue", &all, model_bytes, CATALOGUE_BUDGET);
    check(
        "the full tools/list answer",
        &all,
        full_bytes,
        FULL_LIST_BUDGET,
    );
}
