//! The contract's JSON Schemas (`contracts/`), loaded for validation in tests.

use std::path::PathBuf;

use serde_json::Value;

#[derive(Debug, Clone, Copy)]
pub enum Contract {
    JobMessage,
    JobRecord,
    Manifest,
}

impl Contract {
    pub fn path(self) -> PathBuf {
        let file = match self {
            Self::JobMessage => "job-message.v1.schema.json",
            Self::JobRecord => "job-record.v1.schema.json",
            Self::Manifest => "manifest.v1.schema.json",
        };
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../contracts")
            .join(file)
    }

    pub fn schema(self) -> Value {
        let path = self.path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }
}

/// A validator that also checks `format` (date-time), which JSON Schema only annotates by default.
pub fn validator(contract: Contract) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&contract.schema())
        .unwrap_or_else(|error| panic!("{contract:?} is not a valid JSON Schema: {error}"))
}

pub fn assert_valid(contract: Contract, value: &Value) {
    let errors: Vec<String> = validator(contract)
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{contract:?} does not accept {value}: {errors:?}"
    );
}
