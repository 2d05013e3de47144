//! The versioned contract with the sibling PowerShell app, as Rust types. The same contract is
//! written down as JSON Schema in `contracts/*.v1.schema.json`; a test checks that these types
//! and those schemas agree. Change both together, and bump [`CONTRACT_VERSION`] for anything a
//! deployed worker would misread.
//!
//! Storage layout (one blob container, `JOBS_CONTAINER`):
//! - `records/<job_id>.json`: the [`JobRecord`], the one source of truth about a job, updated
//!   with ETags by whoever changes it (handler: create, cancel, expire, dead-letter; worker:
//!   running, succeeded, failed).
//! - `parameters/<job_id>.json`: parameters too large for a queue message.
//! - `results/<job_id>.json`: the function's output as JSON, any size.
//! - `powershell/manifest.json`: the [`Manifest`] the PowerShell app publishes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::tenants::TenantId;

pub const CONTRACT_VERSION: u32 = 1;

pub const RECORDS_PREFIX: &str = "records/";
pub const MANIFEST_BLOB: &str = "powershell/manifest.json";

pub fn record_blob(id: &JobId) -> String {
    format!("{RECORDS_PREFIX}{id}.json")
}

/// The longest PowerShell function name the contract carries (`function_name` in
/// job-message.v1.schema.json), so that `ps_<name>` stays within MCP's 128-character tool names.
pub const MAX_FUNCTION_NAME: usize = 125;

/// A PowerShell function name as the contract allows it: `^[A-Za-z0-9_-]{1,125}$`.
pub fn is_function_name(name: &str) -> bool {
    (1..=MAX_FUNCTION_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub fn parameters_blob(id: &JobId) -> String {
    format!("parameters/{id}.json")
}

pub fn result_blob(id: &JobId) -> String {
    format!("results/{id}.json")
}

/// A job id: a UUID in lower-case hyphenated form. New ids are version 7 (time-ordered), so
/// record names sort by creation time and listings can stop early.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct JobId(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a job id: expected the UUID a job tool returned, such as 0192f4c2-7b1e-7c3a-9d2e-5f6a7b8c9d0e"
)]
pub struct InvalidJobId(String);

impl JobId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When a version-7 id was made (its first 48 bits are Unix milliseconds).
    pub fn created(&self) -> Option<OffsetDateTime> {
        let uuid = uuid::Uuid::parse_str(&self.0).ok()?;
        let (seconds, nanos) = uuid.get_timestamp()?.to_unix();
        OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).ok()?)
            .ok()
            .map(|t| t + time::Duration::nanoseconds(nanos.into()))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        uuid::Uuid::try_parse(trimmed)
            .map(|id| Self(id.hyphenated().to_string()))
            .map_err(|_| InvalidJobId(trimmed.chars().take(64).collect()))
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidJobId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// queued → running → succeeded | failed | cancelled | dead_lettered (and queued → cancelled,
/// queued → failed when the deadline passes or the message cannot be sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    DeadLettered,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::DeadLettered,
    ];

    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// What kind of work a job is; the worker that serves it depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Powershell,
    /// A device action on many devices, run by this app itself ([`super::operation`]).
    DeviceAction,
    /// An Azure long-running operation (a table change) this app follows to its end.
    AzureOperation,
    /// A hunt run this app follows to its end (the hunt timer does the searching).
    HuntRun,
}

/// Why a job did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The PowerShell function ran and threw (or wrote an error).
    FunctionFailed,
    /// The worker's allow-list does not contain the function (the manifest was out of date).
    NotAllowed,
    /// No worker started the job before its deadline.
    DeadlinePassed,
    /// An attempt started and never finished, and the function is not safe to run twice.
    Interrupted,
    /// The Functions host gave up on the message after its maximum delivery count.
    DeadLettered,
    /// A running job whose worker never reported back long after its deadline.
    Abandoned,
    /// The handler could not put the message on the queue.
    EnqueueFailed,
    /// The message could not be used (unknown contract version, missing parameters blob, no record).
    InvalidMessage,
    /// Cancelled with job_cancel.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
}

/// Where a job's result lives: a blob in the jobs container holding the function's output as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResultRef {
    pub blob: String,
    pub bytes: u64,
}

/// `records/<job_id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub version: u32,
    pub job_id: JobId,
    pub kind: JobKind,
    pub function: String,
    pub tenant_id: TenantId,
    pub caller: String,
    pub state: JobState,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished: Option<OffsetDateTime>,
    /// Attempts the worker started (a retry after a crash counts again).
    pub attempts: u32,
    /// Set by job_cancel on a running job: it is not interrupted, but never retried.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub cancel_requested: Option<OffsetDateTime>,
    #[serde(default)]
    pub error: Option<JobError>,
    /// The infrastructure error of the latest failed attempt, kept so a dead-lettered job says why.
    #[serde(default)]
    pub last_attempt_error: Option<String>,
    #[serde(default)]
    pub parameters_blob: Option<String>,
    #[serde(default)]
    pub result: Option<ResultRef>,
    /// Every kind but `powershell`: the targets, their outcomes and the worker's lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<super::operation::Operation>,
}

impl JobRecord {
    /// The `queued` record of a job as its message describes it.
    pub fn queued(message: &JobMessage, now: OffsetDateTime) -> Self {
        Self {
            version: CONTRACT_VERSION,
            job_id: message.job_id.clone(),
            kind: message.kind,
            function: message.function.clone(),
            tenant_id: message.tenant_id.clone(),
            caller: message.caller.clone(),
            state: JobState::Queued,
            created: message.created,
            deadline: message.deadline,
            updated: now,
            started: None,
            finished: None,
            attempts: 0,
            cancel_requested: None,
            error: None,
            last_attempt_error: None,
            parameters_blob: message.parameters_blob.clone(),
            result: None,
            operation: None,
        }
    }
}

/// The queue message (`PS_JOBS_QUEUE`), base64-encoded on the wire as the Functions queue
/// trigger expects. Exactly one of `parameters` and `parameters_blob` is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    pub version: u32,
    pub job_id: JobId,
    pub kind: JobKind,
    pub function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_blob: Option<String>,
    pub tenant_id: TenantId,
    pub caller: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// Whether a redelivered message whose earlier attempt started but never finished may run
    /// the function again. False for destructive functions: those end as `interrupted`.
    pub retry_interrupted: bool,
}

/// The most characters `caller` may have (job-message.v1.schema.json).
const MAX_CALLER_CHARS: usize = 256;

impl JobMessage {
    /// What the contract says beyond the types (job-message.v1.schema.json): a message read back
    /// from a queue anyone with the storage key can write to is checked before it is believed.
    pub fn check(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!(
                "version is {}; this handler knows version 1",
                self.version
            ));
        }
        if !is_function_name(&self.function) {
            return Err(format!(
                "function '{}' is not a PowerShell function name (1-{MAX_FUNCTION_NAME} letters, digits, '_' or '-')",
                self.function
                    .chars()
                    .take(MAX_FUNCTION_NAME + 15)
                    .collect::<String>()
            ));
        }
        match (&self.parameters, &self.parameters_blob) {
            (Some(_), None) => {}
            (None, Some(blob)) if *blob == parameters_blob(&self.job_id) => {}
            (None, Some(blob)) => {
                return Err(format!(
                    "parameters_blob is '{blob}'; for this job it can only be '{}'",
                    parameters_blob(&self.job_id)
                ));
            }
            _ => {
                return Err(
                    "exactly one of parameters and parameters_blob must be present".to_owned(),
                );
            }
        }
        let caller = self.caller.chars().count();
        if caller == 0 || caller > MAX_CALLER_CHARS {
            return Err(format!(
                "caller has {caller} characters; 1 to {MAX_CALLER_CHARS} are accepted"
            ));
        }
        if self.deadline < self.created {
            return Err("deadline is before created".to_owned());
        }
        Ok(())
    }
}

/// `powershell/manifest.json`: the functions the PowerShell app allows, described from
/// `Get-Command` and comment-based help, so the handler can offer them as `ps_<name>` tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub generated: OffsetDateTime,
    pub functions: Vec<ManifestFunction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFunction {
    pub name: String,
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default)]
    pub synopsis: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub effect: ManifestEffect,
    pub tier: ManifestTier,
    /// A parameter the worker fills with the job's (allow-listed) tenant; never offered to callers.
    #[serde(default)]
    pub tenant_parameter: Option<String>,
    pub parameters: Vec<ManifestParameter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestEffect {
    Read,
    Write,
    Destructive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestTier {
    Reader,
    Responder,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    /// The element type of an `array` parameter.
    #[serde(default)]
    pub items: Option<ParameterType>,
    /// The .NET type PowerShell declares, for people reading the schema.
    #[serde(default)]
    pub ps_type: Option<String>,
    pub mandatory: bool,
    #[serde(default)]
    pub validate_set: Vec<String>,
    #[serde(default)]
    pub help: Option<String>,
}

/// The JSON type a PowerShell parameter accepts, decided by the publisher from its .NET type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

impl ParameterType {
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_job_ids_sort_by_creation_time_and_carry_it() {
        let first = JobId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = JobId::new();
        assert!(first < second, "{first} < {second}");
        let created = second.created().expect("v7 timestamp");
        assert!((OffsetDateTime::now_utc() - created).whole_seconds().abs() < 5);
        assert!(
            "not-a-job"
                .parse::<JobId>()
                .expect_err("refused")
                .to_string()
                .contains("expected the UUID")
        );
        assert_eq!(first.as_str().parse::<JobId>().expect("round trip"), first);
    }
}
