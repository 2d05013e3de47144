//! `ps_<function>`: one tool per function the sibling PowerShell app allows, generated from the
//! manifest it publishes (`powershell/manifest.json` in the jobs container). A call validates
//! the arguments against the manifest, resolves the tenant through the allow-list, queues a job
//! and waits a bounded time for its result.
//!
//! The manifest is read again at most every `PS_MANIFEST_REFRESH_SECONDS`, when a client lists
//! or calls tools; schemas are rebuilt only when its ETag changed. So adding a function to the
//! PowerShell app's allow-list shows up here without a redeploy of the handler.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rmcp::model::JsonObject;
use serde_json::{Map, Value, json};

use super::job_output;
use crate::jobs::contract::{
    MANIFEST_BLOB, MAX_FUNCTION_NAME, ManifestEffect, ManifestFunction, ManifestParameter,
    ManifestTier, ParameterType, is_function_name,
};
use crate::jobs::{JobView, Manifest, NewJob};
use crate::mcp::{
    CatalogueBuilder, DynamicHandler, DynamicOutput, DynamicTool, Effect, Summary, Tier,
    ToolContext, ToolError, ToolSource, Toolset, annotate,
};
use crate::services::Services;
use crate::storage::ETag;
use crate::tenants::TenantId;

pub fn register(
    builder: CatalogueBuilder,
    services: Arc<Services>,
    refresh: Duration,
) -> CatalogueBuilder {
    builder.source(Arc::new(ManifestTools::new(services, refresh)))
}

const PREFIX: &str = "ps_";
/// MCP tool names are at most 128 characters of `A-Za-z0-9_-.`; the contract's function names fit.
const MAX_TOOL_NAME: usize = 128;
const _: () = assert!(PREFIX.len() + MAX_FUNCTION_NAME <= MAX_TOOL_NAME);
/// Arguments every ps_ tool takes besides the function's own parameters.
const TENANT_ARGUMENT: &str = "tenant_id";
const WAIT_ARGUMENT: &str = "wait_seconds";
/// Most calls finish quickly; waiting a little saves the model a job_get round trip.
const DEFAULT_WAIT_SECONDS: u32 = 10;
/// The manifest is read on the tools/list path: a slow storage account must not stall it.
const MANIFEST_READ_TIMEOUT: Duration = Duration::from_secs(3);

struct Snapshot {
    read_at: Option<Instant>,
    etag: Option<ETag>,
    tools: Arc<Vec<DynamicTool>>,
}

struct ManifestTools {
    services: Arc<Services>,
    refresh: Duration,
    current: RwLock<Snapshot>,
    /// One refresh at a time; concurrent callers wait for it and use its outcome.
    refreshing: tokio::sync::Mutex<()>,
}

impl ManifestTools {
    fn new(services: Arc<Services>, refresh: Duration) -> Self {
        Self {
            services,
            refresh,
            current: RwLock::new(Snapshot {
                read_at: None,
                etag: None,
                tools: Arc::new(Vec::new()),
            }),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<Arc<Vec<DynamicTool>>> {
        let snapshot = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = snapshot
            .read_at
            .is_some_and(|at| at.elapsed() < self.refresh);
        fresh.then(|| snapshot.tools.clone())
    }

    fn store(&self, etag: Option<ETag>, tools: Option<Vec<DynamicTool>>) -> Arc<Vec<DynamicTool>> {
        let mut snapshot = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        snapshot.read_at = Some(Instant::now());
        if let Some(tools) = tools {
            snapshot.etag = etag;
            snapshot.tools = Arc::new(tools);
        }
        snapshot.tools.clone()
    }

    async fn refresh(&self) -> Arc<Vec<DynamicTool>> {
        let known = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .etag
            .clone();
        let read = tokio::time::timeout(
            MANIFEST_READ_TIMEOUT,
            self.services.jobs.blobs().get::<Value>(MANIFEST_BLOB),
        )
        .await;
        let Ok(read) = read else {
            tracing::warn!(
                "the PowerShell manifest was not read within {} s; keeping the previous ps_ tools",
                MANIFEST_READ_TIMEOUT.as_secs()
            );
            return self.store(None, None);
        };
        match read {
            Ok(Some((_, etag))) if Some(&etag) == known.as_ref() => self.store(None, None),
            Ok(Some((value, etag))) => match serde_json::from_value::<Manifest>(value) {
                Ok(manifest) if manifest.version == crate::jobs::contract::CONTRACT_VERSION => {
                    let tools = build_tools(manifest);
                    tracing::info!(tools = tools.len(), "PowerShell manifest read");
                    self.store(Some(etag), Some(tools))
                }
                Ok(manifest) => {
                    tracing::error!(
                        version = manifest.version,
                        "the PowerShell manifest has contract version {}, this handler reads version {}; keeping the previous ps_ tools",
                        manifest.version,
                        crate::jobs::contract::CONTRACT_VERSION
                    );
                    self.store(None, None)
                }
                Err(error) => {
                    tracing::error!(error = %error, "the PowerShell manifest {MANIFEST_BLOB} is not a valid manifest; keeping the previous ps_ tools");
                    self.store(None, None)
                }
            },
            // No manifest (or not even a container yet): the PowerShell app offers nothing.
            Ok(None) => self.store(None, Some(Vec::new())),
            Err(error) if error.status() == Some(404) => self.store(None, Some(Vec::new())),
            Err(error) => {
                tracing::warn!(error = %error, "the PowerShell manifest cannot be read; keeping the previous ps_ tools");
                self.store(None, None)
            }
        }
    }
}

#[async_trait::async_trait]
impl ToolSource for ManifestTools {
    async fn tools(&self) -> Arc<Vec<DynamicTool>> {
        if let Some(tools) = self.fresh() {
            return tools;
        }
        let _one_at_a_time = self.refreshing.lock().await;
        match self.fresh() {
            Some(tools) => tools,
            None => self.refresh().await,
        }
    }

    fn cached(&self) -> Arc<Vec<DynamicTool>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .tools
            .clone()
    }
}

/// One tool per usable function; a function that cannot be offered is left out with a log line
/// saying why, and the others are still offered.
fn build_tools(manifest: Manifest) -> Vec<DynamicTool> {
    let mut names = BTreeSet::new();
    manifest
        .functions
        .into_iter()
        .filter_map(|function| match tool_for(function) {
            Ok(tool) if names.insert(tool.name.to_ascii_lowercase()) => Some(tool),
            Ok(tool) => {
                tracing::error!(tool = %tool.name, "the PowerShell manifest lists this function twice; offering it once");
                None
            }
            Err(reason) => {
                tracing::error!("PowerShell manifest: {reason}; the function is not offered");
                None
            }
        })
        .collect()
}

fn tool_for(function: ManifestFunction) -> Result<DynamicTool, String> {
    let name = format!("{PREFIX}{}", function.name);
    if !is_function_name(&function.name) {
        return Err(format!(
            "function '{}' cannot be a tool name (letters, digits, - and _ only, at most {MAX_FUNCTION_NAME} characters)",
            function.name,
        ));
    }
    let mut seen = BTreeSet::new();
    for parameter in &function.parameters {
        let lower = parameter.name.to_ascii_lowercase();
        if lower == TENANT_ARGUMENT || lower == WAIT_ARGUMENT {
            return Err(format!(
                "function {} has a parameter named {}, which the ps_ tools use themselves",
                function.name, parameter.name
            ));
        }
        if !seen.insert(lower) {
            return Err(format!(
                "function {} lists parameter {} twice",
                function.name, parameter.name
            ));
        }
        if parameter.kind == ParameterType::Array && parameter.items == Some(ParameterType::Array) {
            return Err(format!(
                "parameter {} of {} is an array of arrays, which is not supported",
                parameter.name, function.name
            ));
        }
    }
    let effect = match function.effect {
        ManifestEffect::Read => Effect::Read,
        ManifestEffect::Write => Effect::Write { idempotent: false },
        ManifestEffect::Destructive => Effect::Destructive { idempotent: false },
    };
    let tier = match function.tier {
        ManifestTier::Reader => Tier::Reader,
        ManifestTier::Responder => Tier::Responder,
        ManifestTier::Admin => Tier::Admin,
    };
    let definition = rmcp::model::Tool::new(
        name.clone(),
        description(&function),
        input_schema(&function),
    )
    .with_output_schema::<JobView>();
    let definition = annotate(definition, &format!("PowerShell {}", function.name), effect);
    Ok(DynamicTool {
        name,
        toolset: Toolset::PowerShell,
        effect,
        tier,
        definition,
        // Running a destructive function twice because a worker died mid-way is never safe.
        handler: Arc::new(PsFunction {
            retry_interrupted: function.effect != ManifestEffect::Destructive,
            function,
        }),
    })
}

fn description(function: &ManifestFunction) -> String {
    let mut text = String::new();
    for part in [&function.synopsis, &function.description]
        .into_iter()
        .flatten()
    {
        let part = part.trim();
        if !part.is_empty() && !text.contains(part) {
            text.push_str(part);
            if !part.ends_with('.') {
                text.push('.');
            }
            text.push(' ');
        }
    }
    if text.is_empty() {
        text = format!("Runs the PowerShell function {}. ", function.name);
    }
    text.push_str(
        "Runs as a durable job in the PowerShell app: returns the job with its result if it finishes within wait_seconds, \
         otherwise the job id to follow with job_get.",
    );
    text
}

fn type_schema(
    kind: ParameterType,
    items: Option<ParameterType>,
    validate_set: &[String],
) -> Value {
    let mut schema = json!({ "type": kind.name() });
    let element_set = if kind == ParameterType::Array {
        let mut element = json!({ "type": items.unwrap_or(ParameterType::String).name() });
        if !validate_set.is_empty() {
            element["enum"] = json!(validate_set);
        }
        schema["items"] = element;
        true
    } else {
        false
    };
    if !validate_set.is_empty() && !element_set {
        schema["enum"] = json!(validate_set);
    }
    schema
}

fn input_schema(function: &ManifestFunction) -> JsonObject {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for parameter in offered(function) {
        let mut schema = type_schema(parameter.kind, parameter.items, &parameter.validate_set);
        let mut help = parameter.help.clone().unwrap_or_default().trim().to_owned();
        if let Some(ps_type) = &parameter.ps_type {
            help = if help.is_empty() {
                format!("PowerShell type {ps_type}.")
            } else {
                format!("{help} (PowerShell type {ps_type}.)")
            };
        }
        if !help.is_empty() {
            schema["description"] = json!(help);
        }
        properties.insert(parameter.name.clone(), schema);
        if parameter.mandatory {
            required.push(parameter.name.clone());
        }
    }
    properties.insert(
        TENANT_ARGUMENT.into(),
        json!({
            "type": ["string", "null"],
            "description": "Tenant the function acts in (a GUID from tenants_list). Optional only when the server has one default tenant."
        }),
    );
    properties.insert(
        WAIT_ARGUMENT.into(),
        json!({
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": job_output::MAX_WAIT_SECONDS,
            "description": format!("Seconds to wait for the result (0-{}, default {DEFAULT_WAIT_SECONDS}); 0 returns the job id at once.", job_output::MAX_WAIT_SECONDS)
        }),
    );
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// The parameters a caller may set: all but the one the worker fills with the tenant.
fn offered(function: &ManifestFunction) -> impl Iterator<Item = &ManifestParameter> {
    function.parameters.iter().filter(|parameter| {
        function
            .tenant_parameter
            .as_deref()
            .is_none_or(|tenant| !parameter.name.eq_ignore_ascii_case(tenant))
    })
}

struct PsFunction {
    function: ManifestFunction,
    retry_interrupted: bool,
}

impl PsFunction {
    /// The function's parameters from the call's arguments, checked against the manifest, with
    /// every problem named at once.
    fn parameters(&self, arguments: JsonObject) -> Result<Map<String, Value>, ToolError> {
        let function = &self.function;
        let accepted = || {
            let mut names: Vec<&str> = offered(function).map(|p| p.name.as_str()).collect();
            names.extend([TENANT_ARGUMENT, WAIT_ARGUMENT]);
            names.join(", ")
        };
        let mut problems = Vec::new();
        let mut parameters = Map::new();
        for (name, value) in arguments {
            if value.is_null() {
                continue;
            }
            let Some(parameter) = offered(function).find(|p| p.name == name) else {
                let tenant_parameter = function
                    .tenant_parameter
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(&name));
                let other_case = offered(function).find(|p| p.name.eq_ignore_ascii_case(&name));
                problems.push(match (tenant_parameter, other_case) {
                    (true, _) => format!("{name} is filled from tenant_id; pass tenant_id instead"),
                    (false, Some(p)) => {
                        format!("unknown parameter `{name}`: did you mean `{}`?", p.name)
                    }
                    (false, None) => format!(
                        "unknown parameter `{name}`; {PREFIX}{} accepts: {}",
                        function.name,
                        accepted()
                    ),
                });
                continue;
            };
            match checked(parameter, value) {
                Ok(value) => {
                    parameters.insert(name, value);
                }
                Err(problem) => problems.push(problem),
            }
        }
        for parameter in
            offered(function).filter(|p| p.mandatory && !parameters.contains_key(&p.name))
        {
            problems.push(format!("parameter `{}` is required", parameter.name));
        }
        if problems.is_empty() {
            Ok(parameters)
        } else {
            Err(ToolError::invalid(problems.join("; ")))
        }
    }
}

/// One argument checked against its parameter; ValidateSet values are matched the way
/// PowerShell does (ignoring case) and passed on in the set's own spelling.
fn checked(parameter: &ManifestParameter, value: Value) -> Result<Value, String> {
    let name = &parameter.name;
    let in_set = |value: Value| -> Result<Value, String> {
        if parameter.validate_set.is_empty() {
            return Ok(value);
        }
        let found = value.as_str().and_then(|text| {
            parameter
                .validate_set
                .iter()
                .find(|allowed| allowed.eq_ignore_ascii_case(text))
        });
        found.map(|allowed| json!(allowed)).ok_or_else(|| {
            format!(
                "`{name}` must be one of {}; got {value}",
                parameter.validate_set.join(", ")
            )
        })
    };
    let of_type = |kind: ParameterType, value: &Value| match kind {
        ParameterType::String => value.is_string(),
        ParameterType::Integer => value.is_i64() || value.is_u64(),
        ParameterType::Number => value.is_number(),
        ParameterType::Boolean => value.is_boolean(),
        ParameterType::Array => value.is_array(),
        ParameterType::Object => value.is_object(),
    };
    if !of_type(parameter.kind, &value) {
        return Err(format!(
            "`{name}` must be of type {}; got {value}",
            parameter.kind.name()
        ));
    }
    match (parameter.kind, value) {
        (ParameterType::Array, Value::Array(elements)) => {
            let kind = parameter.items.unwrap_or(ParameterType::String);
            let mut checked = Vec::with_capacity(elements.len());
            for element in elements {
                if !of_type(kind, &element) {
                    return Err(format!(
                        "every element of `{name}` must be of type {}; got {element}",
                        kind.name()
                    ));
                }
                checked.push(in_set(element)?);
            }
            Ok(Value::Array(checked))
        }
        (_, value) => in_set(value),
    }
}

#[async_trait::async_trait]
impl DynamicHandler for PsFunction {
    async fn call(
        &self,
        context: &ToolContext,
        mut arguments: JsonObject,
    ) -> Result<DynamicOutput, ToolError> {
        let tenant = match arguments.remove(TENANT_ARGUMENT) {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                serde_json::from_value::<TenantId>(value)
                    .map_err(|error| ToolError::invalid(format!("tenant_id: {error}")))?,
            ),
        };
        let wait = match arguments.remove(WAIT_ARGUMENT) {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|seconds| u32::try_from(seconds).ok())
                    .ok_or_else(|| {
                        ToolError::invalid(format!(
                            "wait_seconds must be a whole number of seconds; got {value}"
                        ))
                    })?,
            ),
        };
        let wait = job_output::wait(wait, DEFAULT_WAIT_SECONDS)?;
        let parameters = self.parameters(arguments)?;
        let tenant = context
            .services
            .tenants
            .resolve(tenant.as_ref())?
            .tenant_id
            .clone();
        let jobs = &context.services.jobs;
        let record = jobs
            .submit_powershell(NewJob {
                function: self.function.name.clone(),
                parameters,
                tenant_id: tenant,
                caller: context.caller.to_string(),
                retry_interrupted: self.retry_interrupted,
            })
            .await?;
        let record = if wait.is_zero() {
            record
        } else {
            jobs.wait(&record.job_id, wait).await?
        };
        let view = job_output::view(context, &record, true).await?;
        let summary = view.summary();
        let mut value = serde_json::to_value(&view).map_err(|error| {
            ToolError::Storage(format!("the job cannot be shown as JSON: {error}"))
        })?;
        // A job still queued or running is named the way every durable operation is, so that a
        // task-aware client gets it as a task.
        if !record.state.is_final()
            && let Some(answer) = value.as_object_mut()
        {
            answer.insert("operation_id".into(), json!(record.job_id.to_string()));
            answer.insert("operation_state".into(), json!("running"));
        }
        Ok(DynamicOutput { summary, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameter(
        name: &str,
        kind: ParameterType,
        mandatory: bool,
        validate_set: &[&str],
    ) -> ManifestParameter {
        ManifestParameter {
            name: name.into(),
            kind,
            items: None,
            ps_type: None,
            mandatory,
            validate_set: validate_set.iter().map(|s| s.to_string()).collect(),
            help: None,
        }
    }

    fn function(parameters: Vec<ManifestParameter>) -> ManifestFunction {
        ManifestFunction {
            name: "Update-TablePlan".into(),
            module: None,
            synopsis: Some("Changes a table's plan".into()),
            description: None,
            effect: ManifestEffect::Write,
            tier: ManifestTier::Responder,
            tenant_parameter: Some("TenantId".into()),
            parameters,
        }
    }

    fn arguments(value: Value) -> JsonObject {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn arguments_are_checked_against_the_manifest() {
        let ps = PsFunction {
            function: function(vec![
                parameter("TableName", ParameterType::String, true, &[]),
                parameter("Plan", ParameterType::String, true, &["Analytics", "Basic"]),
                parameter("RetentionDays", ParameterType::Integer, false, &[]),
                parameter("TenantId", ParameterType::String, true, &[]),
            ]),
            retry_interrupted: true,
        };
        let ok = ps
            .parameters(arguments(
                json!({"TableName": "Syslog", "Plan": "basic", "RetentionDays": null}),
            ))
            .expect("valid");
        assert_eq!(
            ok,
            arguments(json!({"TableName": "Syslog", "Plan": "Basic"})),
            "set spelling, nulls omitted"
        );

        let error = ps.parameters(arguments(json!({"tablename": "x", "Plan": "Cheap", "RetentionDays": "ten", "TenantId": "t", "Extra": 1}))).expect_err("bad");
        let text = error.to_string();
        for expected in [
            "did you mean `TableName`",
            "`Plan` must be one of Analytics, Basic",
            "`RetentionDays` must be of type integer",
            "TenantId is filled from tenant_id",
            "unknown parameter `Extra`; ps_Update-TablePlan accepts: TableName, Plan, RetentionDays, tenant_id, wait_seconds",
            "parameter `TableName` is required",
        ] {
            assert!(text.contains(expected), "{text} should contain {expected}");
        }
    }

    #[test]
    fn schemas_hide_the_tenant_parameter_and_forbid_extras() {
        let tool = tool_for(function(vec![
            parameter("TableName", ParameterType::String, true, &[]),
            parameter("TenantId", ParameterType::String, true, &[]),
            ManifestParameter {
                items: Some(ParameterType::String),
                ..parameter("Tables", ParameterType::Array, false, &["A", "B"])
            },
        ]))
        .expect("tool");
        assert_eq!(tool.name, "ps_Update-TablePlan");
        let schema = Value::Object((*tool.definition.input_schema).clone());
        assert_eq!(schema["required"], json!(["TableName"]));
        assert!(schema["properties"].get("TenantId").is_none());
        assert_eq!(
            schema["properties"]["Tables"]["items"]["enum"],
            json!(["A", "B"])
        );
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(tool.definition.output_schema.is_some());
    }

    #[test]
    fn unusable_functions_are_left_out_with_a_reason() {
        let mut bad = function(vec![parameter(
            "wait_seconds",
            ParameterType::Integer,
            false,
            &[],
        )]);
        assert!(
            tool_for(bad.clone())
                .err()
                .expect("refused")
                .contains("wait_seconds")
        );
        bad.parameters.clear();
        bad.name = "Get-Thing; rm".into();
        assert!(
            tool_for(bad)
                .err()
                .expect("refused")
                .contains("cannot be a tool name")
        );
    }
}
