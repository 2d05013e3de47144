//! The written-down contract with the PowerShell app (`contracts/*.v1.schema.json`) and the Rust
//! types the handler reads and writes must agree: what Rust writes validates, every example in
//! the schemas deserializes, and what either side refuses the other refuses too.

use crate::common;

use common::contract::{Contract, validator};
use handler::jobs::contract::{JobMessage, JobRecord, Manifest};
use handler::jobs::{ErrorCode, JobError, JobId, JobKind, JobState};
use serde_json::{Value, json};
use time::OffsetDateTime;

fn examples(contract: Contract) -> Vec<Value> {
    contract.schema()["examples"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{contract:?} has examples"))
}

fn message(parameters: Option<Value>, parameters_blob: Option<String>) -> JobMessage {
    let now = OffsetDateTime::now_utc();
    JobMessage {
        version: 1,
        job_id: JobId::new(),
        kind: JobKind::Powershell,
        function: "Get-SentinelTables".into(),
        parameters: parameters.and_then(|p| p.as_object().cloned()),
        parameters_blob,
        tenant_id: common::CONTOSO.parse().expect("guid"),
        caller: "analyst@contoso.com".into(),
        created: now,
        deadline: now + time::Duration::hours(1),
        retry_interrupted: true,
    }
}

fn record(state: JobState) -> JobRecord {
    let now = OffsetDateTime::now_utc();
    let id = JobId::new();
    let finished = state.is_final().then_some(now);
    JobRecord {
        version: 1,
        job_id: id.clone(),
        kind: JobKind::Powershell,
        function: "Get-SentinelTables".into(),
        tenant_id: common::FABRIKAM.parse().expect("guid"),
        caller: "anonymous".into(),
        state,
        created: now,
        deadline: now + time::Duration::hours(1),
        updated: now,
        started: (state != JobState::Queued).then_some(now),
        finished,
        attempts: u32::from(state != JobState::Queued),
        cancel_requested: None,
        error: matches!(
            state,
            JobState::Failed | JobState::Cancelled | JobState::DeadLettered
        )
        .then(|| JobError {
            code: ErrorCode::FunctionFailed,
            message: "Workspace soc-prod was not found".into(),
        }),
        last_attempt_error: None,
        parameters_blob: None,
        result: (state == JobState::Succeeded).then(|| handler::jobs::contract::ResultRef {
            blob: format!("results/{id}.json"),
            bytes: 12,
        }),
        operation: None,
    }
}

#[test]
fn what_rust_writes_validates_against_the_schemas() {
    let messages = validator(Contract::JobMessage);
    for message in [
        message(Some(json!({"WorkspaceName": "soc-prod"})), None),
        message(None, Some(format!("parameters/{}.json", JobId::new()))),
    ] {
        let value = serde_json::to_value(&message).expect("json");
        let errors: Vec<String> = messages
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{value}: {errors:?}");
    }
    let records = validator(Contract::JobRecord);
    for state in JobState::ALL {
        let value = serde_json::to_value(record(state)).expect("json");
        let errors: Vec<String> = records.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{state:?} {value}: {errors:?}");
    }
}

#[test]
fn every_schema_example_is_valid_and_reads_as_the_rust_type() {
    for contract in [
        Contract::JobMessage,
        Contract::JobRecord,
        Contract::Manifest,
    ] {
        let validator = validator(contract);
        let examples = examples(contract);
        assert!(!examples.is_empty());
        for example in examples {
            let errors: Vec<String> = validator
                .iter_errors(&example)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{contract:?} example {example}: {errors:?}"
            );
            let read = match contract {
                Contract::JobMessage => {
                    serde_json::from_value::<JobMessage>(example.clone()).map(drop)
                }
                Contract::JobRecord => {
                    serde_json::from_value::<JobRecord>(example.clone()).map(drop)
                }
                Contract::Manifest => serde_json::from_value::<Manifest>(example.clone()).map(drop),
            };
            assert!(
                read.is_ok(),
                "{contract:?} example does not read as the Rust type: {read:?}\n{example}"
            );
        }
    }
}

#[test]
fn both_sides_refuse_the_same_mistakes() {
    let message_example = examples(Contract::JobMessage)[0].clone();
    let record_example = examples(Contract::JobRecord)[0].clone();
    let manifest_example = examples(Contract::Manifest)[0].clone();
    let mut both = message_example.clone();
    both["parameters_blob"] = json!(format!("parameters/{}.json", JobId::new()));
    let mut bad_tenant = message_example.clone();
    bad_tenant["tenant_id"] = json!("contoso.onmicrosoft.com");
    let mut bad_state = record_example.clone();
    bad_state["state"] = json!("done");
    let mut bad_code = record_example.clone();
    bad_code["state"] = json!("failed");
    bad_code["error"] = json!({"code": "oops", "message": "x"});
    let mut bad_type = manifest_example.clone();
    bad_type["functions"][0]["parameters"][0]["type"] = json!("hashtable");

    let cases = [
        (
            Contract::JobMessage,
            both.clone(),
            "both parameters and parameters_blob",
        ),
        (
            Contract::JobMessage,
            bad_tenant.clone(),
            "tenant that is not a GUID",
        ),
        (Contract::JobRecord, bad_state.clone(), "unknown state"),
        (Contract::JobRecord, bad_code.clone(), "unknown error code"),
        (
            Contract::Manifest,
            bad_type.clone(),
            "unknown parameter type",
        ),
    ];
    for (contract, value, what) in cases {
        assert!(
            !validator(contract).is_valid(&value),
            "the {contract:?} schema accepts a {what}"
        );
    }
    // Rust refuses what the schema refuses where it can tell (shape and values; the one-of rule
    // on parameters is the handler's own invariant, see Jobs::submit_powershell).
    assert!(serde_json::from_value::<JobMessage>(bad_tenant).is_err());
    assert!(serde_json::from_value::<JobRecord>(bad_state).is_err());
    assert!(serde_json::from_value::<JobRecord>(bad_code).is_err());
    assert!(serde_json::from_value::<Manifest>(bad_type).is_err());

    // A succeeded record must say where its result is; a failed one why.
    let mut no_result = serde_json::to_value(record(JobState::Succeeded)).expect("json");
    no_result["result"] = Value::Null;
    assert!(!validator(Contract::JobRecord).is_valid(&no_result));
    let mut no_error = serde_json::to_value(record(JobState::Failed)).expect("json");
    no_error["error"] = Value::Null;
    assert!(!validator(Contract::JobRecord).is_valid(&no_error));
}
