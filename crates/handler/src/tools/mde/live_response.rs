//! Live response: the library of scripts and files, running them on devices, collecting files,
//! and reading results.

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bulk::{Bulk, DeviceAction};
use super::common;
use crate::clients::defender::{
    ActionId, ActionRequest, ActionStatus, ActionType, LibraryFile, LibraryFileName, LibraryUpload,
    LiveResponseCommand, MAX_LIBRARY_FILE_BYTES, is_settled,
};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListLibrary)
        .tool(UploadLibrary)
        .tool(DeleteLibrary)
        .tool(Bulk(RunScript))
        .tool(Bulk(PutFile))
        .tool(Bulk(GetFile))
        .tool(GetResult)
}

/// Script output returned inline; longer output is cut and says so.
const MAX_OUTPUT_CHARS: usize = 64 * 1024;
/// The most of a result file read to find its output.
const MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;
const MAX_ARGS_CHARS: usize = 2000;
const MAX_PATH_CHARS: usize = 1024;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TenantOnly {
    tenant_id: Option<TenantId>,
}

struct ListLibrary;

#[derive(Serialize, JsonSchema)]
struct LibraryOutput {
    tenant_id: TenantId,
    files: Vec<LibraryFile>,
}

impl Summary for LibraryOutput {
    fn summary(&self) -> String {
        let names: Vec<&str> = self.files.iter().map(|f| f.file_name.as_str()).collect();
        format!(
            "{} files in the live response library of tenant {}: {}",
            self.files.len(),
            self.tenant_id,
            names.join(", ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListLibrary {
    type Params = TenantOnly;
    type Output = LibraryOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_list_library_files",
            title: "List live response library files",
            description: "Lists the tenant's live response library: scripts and files that can be run or put on \
                         devices.",
            toolset: Toolset::LiveResponse,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: TenantOnly,
    ) -> Result<LibraryOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let files = context.services.defender.list_library(&tenant).await?;
        Ok(LibraryOutput {
            tenant_id: tenant,
            files,
        })
    }
}

struct UploadLibrary;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UploadParams {
    tenant_id: Option<TenantId>,
    /// The name the file gets in the library, e.g. Collect-Triage.ps1 (scripts must be .ps1 to run).
    file_name: LibraryFileName,
    /// The file's content, base64-encoded (standard alphabet). At most 20 MB decoded, and the whole request must fit
    /// this server's MCP request limit.
    content_base64: String,
    /// What the file is for, shown in the library.
    description: Option<String>,
    /// For scripts that take parameters: how to call them, e.g. `-OutputPath <path>`.
    parameters_description: Option<String>,
    /// true replaces a library file of the same name; false (default) refuses if one exists.
    #[serde(default)]
    override_if_exists: bool,
}

#[derive(Serialize, JsonSchema)]
struct UploadOutput {
    tenant_id: TenantId,
    file: LibraryFile,
    bytes: usize,
}

impl Summary for UploadOutput {
    fn summary(&self) -> String {
        format!(
            "uploaded {} ({} bytes) to the live response library of tenant {}",
            self.file.file_name, self.bytes, self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for UploadLibrary {
    type Params = UploadParams;
    type Output = UploadOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_upload_library_file",
            title: "Upload a live response library file",
            description: "Uploads a script or file (base64, up to 20 MB) to the tenant's live response library, \
                         from where responders can run it as SYSTEM on any device. override_if_exists replaces a \
                         same-named file.",
            toolset: Toolset::LiveResponse,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: UploadParams,
    ) -> Result<UploadOutput, ToolError> {
        let content = base64::engine::general_purpose::STANDARD
            .decode(params.content_base64.trim())
            .map_err(|error| {
                ToolError::invalid(format!(
                    "content_base64 is not valid base64 (standard alphabet, with padding): {error}"
                ))
            })?;
        if content.is_empty() {
            return Err(ToolError::invalid(
                "content_base64 decodes to an empty file",
            ));
        }
        if content.len() > MAX_LIBRARY_FILE_BYTES {
            return Err(ToolError::invalid(format!(
                "the file is {} bytes; Defender's library accepts at most {MAX_LIBRARY_FILE_BYTES} bytes (20 MB)",
                content.len()
            )));
        }
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let upload = LibraryUpload {
            file_name: &params.file_name,
            content: &content,
            description: params.description.as_deref().unwrap_or_default(),
            parameters_description: params
                .parameters_description
                .as_deref()
                .filter(|p| !p.trim().is_empty()),
            override_if_exists: params.override_if_exists,
        };
        let file = context
            .services
            .defender
            .upload_library(&tenant, &upload)
            .await?;
        Ok(UploadOutput {
            tenant_id: tenant,
            file,
            bytes: content.len(),
        })
    }
}

struct DeleteLibrary;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    tenant_id: Option<TenantId>,
    /// The library file to delete, by name (as mde_list_library_files shows it).
    file_name: LibraryFileName,
}

#[derive(Serialize, JsonSchema)]
struct DeleteOutput {
    tenant_id: TenantId,
    deleted: String,
}

impl Summary for DeleteOutput {
    fn summary(&self) -> String {
        format!(
            "deleted {} from the live response library of tenant {}",
            self.deleted, self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for DeleteLibrary {
    type Params = DeleteParams;
    type Output = DeleteOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_delete_library_file",
            title: "Delete a live response library file",
            description: "Deletes a file from the tenant's live response library.",
            toolset: Toolset::LiveResponse,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: DeleteParams,
    ) -> Result<DeleteOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        context
            .services
            .defender
            .delete_library(&tenant, &params.file_name)
            .await
            .map_err(|error| {
                common::not_found(error, || {
                    format!(
                        "no library file named {} in tenant {tenant}",
                        params.file_name.as_str()
                    )
                })
            })?;
        Ok(DeleteOutput {
            tenant_id: tenant,
            deleted: params.file_name.as_str().to_string(),
        })
    }
}

#[derive(Clone)]
struct RunScript;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunScriptOptions {
    /// The library script to run (see mde_list_library_files), e.g. Collect-Triage.ps1.
    script_name: LibraryFileName,
    /// Arguments passed to the script, e.g. `-OutputPath C:\temp`.
    args: Option<String>,
}

impl DeviceAction for RunScript {
    type Options = RunScriptOptions;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_live_response_run_script",
            title: "Run a live response script",
            description: targets!(
                "Runs a PowerShell script from the live response library on each device as SYSTEM (it can \
                change anything); 10 sessions a minute, 10-minute timeout. Output: \
                mde_get_live_response_result."
            ),
            toolset: Toolset::LiveResponse,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: &RunScriptOptions) -> Result<ActionRequest, ToolError> {
        let args = options
            .args
            .as_deref()
            .map(|args| args.trim().to_string())
            .filter(|args| !args.is_empty());
        if let Some(args) = &args {
            if args.chars().count() > MAX_ARGS_CHARS {
                return Err(ToolError::invalid(format!(
                    "args is longer than {MAX_ARGS_CHARS} characters"
                )));
            }
            if args.chars().any(char::is_control) {
                return Err(ToolError::invalid(
                    "args contains control characters (such as line breaks); write them on one line",
                ));
            }
        }
        Ok(ActionRequest::LiveResponse(vec![
            LiveResponseCommand::RunScript {
                script_name: options.script_name.as_str().to_string(),
                args,
            },
        ]))
    }
}

#[derive(Clone)]
struct PutFile;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PutFileOptions {
    /// The library file to copy (see mde_list_library_files).
    file_name: LibraryFileName,
}

impl DeviceAction for PutFile {
    type Options = PutFileOptions;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_live_response_put_file",
            title: "Copy a library file to devices",
            description: targets!(
                "Copies a live response library file to each device's live response download folder; it is not run."
            ),
            toolset: Toolset::LiveResponse,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: &PutFileOptions) -> Result<ActionRequest, ToolError> {
        Ok(ActionRequest::LiveResponse(vec![
            LiveResponseCommand::PutFile {
                file_name: options.file_name.as_str().to_string(),
            },
        ]))
    }
}

#[derive(Clone)]
struct GetFile;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetFileOptions {
    /// Full path of the file on the device, e.g. `C:\Users\alice\Downloads\invoice.docm`.
    path: String,
}

impl DeviceAction for GetFile {
    type Options = GetFileOptions;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_live_response_get_file",
            title: "Collect a file from devices",
            description: targets!(
                "Collects a file from each device (unchanged); mde_get_live_response_result then gives a download link."
            ),
            toolset: Toolset::LiveResponse,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: &GetFileOptions) -> Result<ActionRequest, ToolError> {
        let path = options.path.trim();
        if path.is_empty()
            || path.chars().count() > MAX_PATH_CHARS
            || path.chars().any(char::is_control)
        {
            return Err(ToolError::invalid(format!(
                "path must be a full file path on the device (1-{MAX_PATH_CHARS} characters, no control characters)"
            )));
        }
        Ok(ActionRequest::LiveResponse(vec![
            LiveResponseCommand::GetFile {
                path: path.to_string(),
            },
        ]))
    }
}

struct GetResult;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResultParams {
    tenant_id: Option<TenantId>,
    /// The live response action id (a GUID).
    action_id: ActionId,
    /// Which command of the session (0 for the first; default 0).
    #[serde(default)]
    command_index: u32,
}

#[derive(Serialize, JsonSchema)]
struct ScriptResult {
    script_name: Option<String>,
    exit_code: Option<i64>,
    /// What the script wrote (its transcript), cut at 64 KB.
    output: String,
    output_truncated: bool,
    errors: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ResultOutput {
    tenant_id: TenantId,
    action_id: String,
    command_index: u32,
    /// RunScript, PutFile or GetFile.
    command_type: String,
    action_status: String,
    command_status: Option<String>,
    /// Errors Defender reported for the command.
    command_errors: Vec<String>,
    /// RunScript: the script's output, exit code and errors.
    script: Option<ScriptResult>,
    /// GetFile: a short-lived pre-signed download link to the collected file (gzip). Do not store it.
    download_url: Option<String>,
    /// Why there is no result yet, or what to do next.
    note: Option<String>,
}

impl Summary for ResultOutput {
    fn summary(&self) -> String {
        let detail = match (&self.script, &self.download_url, &self.note) {
            (Some(script), _, _) => format!(
                "exit code {}",
                script.exit_code.map_or("unknown".into(), |c| c.to_string())
            ),
            (None, Some(_), _) => {
                "file ready to download (the link expires in minutes)".to_string()
            }
            (None, None, Some(note)) => note.clone(),
            (None, None, None) => "no result".to_string(),
        };
        format!(
            "{} command {} of action {} ({}): {detail}",
            self.command_type, self.command_index, self.action_id, self.action_status
        )
    }
}

/// The JSON a RunScript result link points at.
#[derive(Deserialize)]
struct ScriptTranscript {
    script_name: Option<String>,
    exit_code: Option<i64>,
    #[serde(default)]
    script_output: String,
    script_errors: Option<String>,
}

#[async_trait::async_trait]
impl Tool for GetResult {
    type Params = ResultParams;
    type Output = ResultOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_live_response_result",
            title: "Get a live response result",
            description: "Reads one command's result of a live response action: script output, exit code and \
                         errors, or a download link for a collected file. Says when the action is still running.",
            toolset: Toolset::LiveResponse,
            effect: Effect::Read,
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ResultParams,
    ) -> Result<ResultOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let defender = &context.services.defender;
        let action = defender
            .get_action(&tenant, &params.action_id)
            .await
            .map_err(|error| {
                common::not_found(error, || {
                    format!(
                        "no machine action {} in tenant {tenant}",
                        params.action_id.as_str()
                    )
                })
            })?;
        if !action.action_type.is(&ActionType::LiveResponse) {
            return Err(ToolError::invalid(format!(
                "action {} is a {} action, not a live response session",
                action.id, action.action_type
            )));
        }
        let count = action.commands.len();
        let Some(command) = action
            .commands
            .iter()
            .find(|c| c.index == params.command_index)
        else {
            return Err(ToolError::invalid(format!(
                "command_index {} is out of range: the session has {count} command(s), indexes 0 to {}",
                params.command_index,
                count.saturating_sub(1)
            )));
        };
        let command_type = command
            .command
            .as_ref()
            .map(|c| c.command_type.clone())
            .unwrap_or_default();
        let mut output = ResultOutput {
            tenant_id: tenant.clone(),
            action_id: action.id.clone(),
            command_index: params.command_index,
            command_type: command_type.clone(),
            action_status: action.status.to_string(),
            command_status: command.command_status.clone(),
            command_errors: command.errors.clone(),
            script: None,
            download_url: None,
            note: None,
        };
        if !is_settled(&action.status) {
            output.note = Some(format!(
                "the session is {}; wait with mde_get_machine_action (wait_seconds) and ask again",
                action.status
            ));
            return Ok(output);
        }
        if !action.status.is(&ActionStatus::Succeeded) {
            output.note = Some(format!(
                "the session ended {}; it produced no result",
                action.status
            ));
            return Ok(output);
        }
        match command_type.as_str() {
            "RunScript" => {
                let link = defender
                    .live_response_result_link(&tenant, &params.action_id, params.command_index)
                    .await?;
                let (bytes, cut) = defender.download(&link, MAX_RESULT_BYTES).await?;
                if cut {
                    return Err(ToolError::invalid(format!(
                        "the script's result is larger than {MAX_RESULT_BYTES} bytes; read it in the Defender portal (action center)"
                    )));
                }
                let transcript: ScriptTranscript =
                    serde_json::from_slice(&bytes).map_err(|error| {
                        ToolError::Api(crate::outbound::ApiError::Decode {
                            api: crate::outbound::Api::Defender,
                            detail: format!("script result: {error}"),
                        })
                    })?;
                let output_truncated = transcript.script_output.chars().count() > MAX_OUTPUT_CHARS;
                output.script = Some(ScriptResult {
                    script_name: transcript.script_name,
                    exit_code: transcript.exit_code,
                    output: transcript
                        .script_output
                        .chars()
                        .take(MAX_OUTPUT_CHARS)
                        .collect(),
                    output_truncated,
                    errors: transcript.script_errors.filter(|e| !e.is_empty()),
                });
            }
            "GetFile" => {
                output.download_url = Some(
                    defender
                        .live_response_result_link(&tenant, &params.action_id, params.command_index)
                        .await?,
                );
            }
            other => {
                output.note = Some(format!(
                    "a {other} command has no downloadable result; its status is the result"
                ))
            }
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn a_script_is_uploaded_listed_refused_twice_and_deleted() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let content =
            base64::engine::general_purpose::STANDARD.encode("Get-Process | Select -First 5");
        let upload = json!({"tenant_id": tenant, "file_name": "Top-Processes.ps1",
                            "content_base64": content, "description": "INC-7 triage"});
        let uploaded = harness.ok(&UploadLibrary, upload.clone()).await;
        assert_eq!(uploaded["bytes"], 29, "{uploaded}");
        let names = |listed: &serde_json::Value| -> Vec<String> {
            listed["files"]
                .as_array()
                .expect("files")
                .iter()
                .map(|f| f["fileName"].as_str().expect("name").to_owned())
                .collect()
        };
        let listed = harness.ok(&ListLibrary, json!({"tenant_id": tenant})).await;
        assert!(
            names(&listed).contains(&"Top-Processes.ps1".to_owned()),
            "{listed}"
        );

        let message = harness.refusal(&UploadLibrary, upload).await;
        // Defender's 409, naming the file.
        assert!(
            message.contains("Top-Processes.ps1") && message.contains("already exists"),
            "{message}"
        );

        harness
            .ok(
                &DeleteLibrary,
                json!({"tenant_id": tenant, "file_name": "Top-Processes.ps1"}),
            )
            .await;
        let listed = harness.ok(&ListLibrary, json!({"tenant_id": tenant})).await;
        assert!(!names(&listed).contains(&"Top-Processes.ps1".to_owned()));
    }

    #[tokio::test]
    async fn script_arguments_and_paths_are_checked_before_anything_is_sent() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let device = "a".repeat(40);
        let message = harness
            .refusal(
                &Bulk(RunScript),
                json!({"tenant_id": tenant, "machine_ids": [device], "comment": "INC-7",
                       "script_name": "Collect-Triage.ps1", "args": "-OutputPath C:\\x\n-Force"}),
            )
            .await;
        assert!(message.contains("one line"), "{message}");
        let message = harness
            .refusal(
                &Bulk(GetFile),
                json!({"tenant_id": tenant, "machine_ids": [device], "comment": "INC-7",
                       "path": "  "}),
            )
            .await;
        assert!(message.contains("full file path"), "{message}");
        let message = harness
            .refusal(
                &UploadLibrary,
                json!({"tenant_id": tenant, "file_name": "x.ps1", "content_base64": "not base64!"}),
            )
            .await;
        assert!(message.contains("base64"), "{message}");
        assert_eq!(
            harness
                .sandbox
                .stats()
                .count("POST", "/defender/api/machines/{id}/{sub}"),
            0,
            "no live response was started"
        );
    }
}
