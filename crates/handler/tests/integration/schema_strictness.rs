//! Every schema in `tools/list` must be one any client accepts: JSON Schema 2020-12 with only the
//! formats the specification defines (schemars' `int64`, `uint32` ... make the MCP Inspector warn
//! and strict validators refuse the whole tool). Each schema is compiled by a validator that
//! refuses unknown formats; the PowerShell app's tools come from its manifest and are included.

use crate::common;

use common::*;

fn strict_validator(schema: &serde_json::Value) -> Result<(), String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .build(schema)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn every_schema_compiles_under_a_strict_validator() {
    let app = TestApp::start().await;
    let tools = app
        .client()
        .await
        .list_all_tools()
        .await
        .expect("tools/list");
    assert!(tools.len() > 50, "only {} tools listed", tools.len());
    let mut refused = Vec::new();
    for tool in &tools {
        let input = serde_json::Value::Object((*tool.input_schema).clone());
        if let Err(error) = strict_validator(&input) {
            refused.push(format!("{} input: {error}", tool.name));
        }
        if let Some(output) = &tool.output_schema {
            let output = serde_json::Value::Object((**output).clone());
            if let Err(error) = strict_validator(&output) {
                refused.push(format!("{} output: {error}", tool.name));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "{} schemas a strict validator refuses:\n{}",
        refused.len(),
        refused.join("\n")
    );
}

#[test]
fn the_strict_validator_refuses_a_format_json_schema_does_not_define() {
    let schema = serde_json::json!({"type": "integer", "format": "uint32"});
    assert!(strict_validator(&schema).is_err());
    let schema = serde_json::json!({"type": "string", "format": "date-time"});
    assert_eq!(strict_validator(&schema), Ok(()));
}
