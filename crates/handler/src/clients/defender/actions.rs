//! Response actions on devices (`POST /api/machines/{id}/{action}`) and the machine actions they
//! create (`/api/machineactions`), including live response sessions and their results.

use reqwest::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{DefenderClient, MACHINES, MachineId, PACKAGE_URI, ValueString};
use crate::clients::Open;
use crate::clients::odata;
use crate::outbound::{Api, ApiError, ApiRequest, Bucket, Collected, ListPosition, Replay};
use crate::tenants::TenantId;

const LIVE_RESPONSE: &[Bucket] = &[Bucket::DefenderMachines, Bucket::DefenderLiveResponse];

/// A machine action id (a GUID), as returned by every response action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct ActionId(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a machine action id: expected a GUID as returned by a response action or mde_list_machine_actions"
)]
pub struct InvalidActionId(String);

impl TryFrom<String> for ActionId {
    type Error = InvalidActionId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let trimmed = text.trim();
        uuid::Uuid::try_parse(trimmed)
            .map(|guid| Self(guid.hyphenated().to_string()))
            .map_err(|_| InvalidActionId(trimmed.chars().take(64).collect()))
    }
}

impl From<ActionId> for String {
    fn from(id: ActionId) -> Self {
        id.0
    }
}

impl ActionId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The machine action types Defender reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ActionType {
    Isolate,
    Unisolate,
    RestrictCodeExecution,
    UnrestrictCodeExecution,
    RunAntiVirusScan,
    CollectInvestigationPackage,
    StopAndQuarantineFile,
    Offboard,
    LiveResponse,
}

/// Machine action statuses. Pending and InProgress are the only ones that still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ActionStatus {
    Pending,
    InProgress,
    Succeeded,
    Failed,
    TimeOut,
    Cancelled,
}

/// Whether a reported status can no longer change. Pending and InProgress still change; a
/// status Defender added after this server was written is taken as an end, so that nothing
/// follows an action forever.
pub fn is_settled(status: &Open<ActionStatus>) -> bool {
    !matches!(
        status.known(),
        Some(ActionStatus::Pending | ActionStatus::InProgress)
    )
}

/// isolate-machine.md, "Request body": "Allowed values are: 'Full' or 'Selective'".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IsolationType {
    Full,
    Selective,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScanType {
    Quick,
    Full,
}

/// One live response command. Defender runs them in order and stops at the first failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveResponseCommand {
    /// Runs a PowerShell script from the live response library.
    RunScript {
        script_name: String,
        args: Option<String>,
    },
    /// Copies a library file to the device.
    PutFile { file_name: String },
    /// Collects a file from the device.
    GetFile { path: String },
}

impl LiveResponseCommand {
    fn to_json(&self) -> Value {
        let (kind, params) = match self {
            Self::RunScript { script_name, args } => {
                let mut params = vec![json!({"key": "ScriptName", "value": script_name})];
                params.extend(
                    args.iter()
                        .map(|args| json!({"key": "Args", "value": args})),
                );
                ("RunScript", params)
            }
            Self::PutFile { file_name } => (
                "PutFile",
                vec![json!({"key": "FileName", "value": file_name})],
            ),
            Self::GetFile { path } => ("GetFile", vec![json!({"key": "Path", "value": path})]),
        };
        json!({"type": kind, "params": params})
    }
}

/// A response action to start on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRequest {
    Isolate(IsolationType),
    /// Containment of a device that is not onboarded: isolate-machine.md, "Calling this API on
    /// unmanaged devices triggers the contain device from the network action". Sent as an
    /// isolate with no IsolationType (the only documented values, Full and Selective, describe
    /// isolation of an onboarded device). The caller must make sure the device is not onboarded,
    /// since the same call isolates an onboarded one.
    Contain,
    Unisolate,
    RestrictCodeExecution,
    UnrestrictCodeExecution,
    RunAntiVirusScan(ScanType),
    CollectInvestigationPackage,
    /// A SHA-1 (40 hex characters, validated by the caller).
    StopAndQuarantineFile {
        sha1: String,
    },
    Offboard,
    LiveResponse(Vec<LiveResponseCommand>),
}

impl ActionRequest {
    /// The machine action type this request creates.
    pub fn action_type(&self) -> ActionType {
        match self {
            Self::Isolate(_) | Self::Contain => ActionType::Isolate,
            Self::Unisolate => ActionType::Unisolate,
            Self::RestrictCodeExecution => ActionType::RestrictCodeExecution,
            Self::UnrestrictCodeExecution => ActionType::UnrestrictCodeExecution,
            Self::RunAntiVirusScan(_) => ActionType::RunAntiVirusScan,
            Self::CollectInvestigationPackage => ActionType::CollectInvestigationPackage,
            Self::StopAndQuarantineFile { .. } => ActionType::StopAndQuarantineFile,
            Self::Offboard => ActionType::Offboard,
            Self::LiveResponse(_) => ActionType::LiveResponse,
        }
    }

    fn path_segment(&self) -> &'static str {
        match self {
            Self::Isolate(_) | Self::Contain => "isolate",
            Self::Unisolate => "unisolate",
            Self::RestrictCodeExecution => "restrictCodeExecution",
            Self::UnrestrictCodeExecution => "unrestrictCodeExecution",
            Self::RunAntiVirusScan(_) => "runAntiVirusScan",
            Self::CollectInvestigationPackage => "collectInvestigationPackage",
            Self::StopAndQuarantineFile { .. } => "StopAndQuarantineFile",
            Self::Offboard => "offboard",
            Self::LiveResponse(_) => "runliveresponse",
        }
    }

    fn body(&self, comment: &str) -> Value {
        let mut body = json!({"Comment": comment});
        match self {
            Self::Isolate(isolation) => body["IsolationType"] = json!(isolation),
            Self::RunAntiVirusScan(scan) => body["ScanType"] = json!(scan),
            Self::StopAndQuarantineFile { sha1 } => body["Sha1"] = json!(sha1),
            Self::LiveResponse(commands) => {
                body["Commands"] = commands.iter().map(LiveResponseCommand::to_json).collect()
            }
            Self::Contain
            | Self::Unisolate
            | Self::RestrictCodeExecution
            | Self::UnrestrictCodeExecution
            | Self::CollectInvestigationPackage
            | Self::Offboard => {}
        }
        body
    }

    fn buckets(&self) -> &'static [Bucket] {
        match self {
            Self::LiveResponse(_) => LIVE_RESPONSE,
            _ => MACHINES,
        }
    }
}

/// A machine action as Defender reports it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineAction {
    pub id: String,
    #[serde(rename = "type")]
    pub action_type: Open<ActionType>,
    /// Pending, InProgress, Succeeded, Failed, TimeOut or Cancelled.
    pub status: Open<ActionStatus>,
    pub scope: Option<String>,
    pub machine_id: Option<String>,
    pub computer_dns_name: Option<String>,
    pub requestor: Option<String>,
    pub requestor_comment: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub creation_date_time_utc: Option<OffsetDateTime>,
    /// machineaction.md names it lastUpdateDateTimeUtc; the list examples of
    /// get-machineactions-collection.md print lastUpdateTimeUtc.
    #[serde(
        default,
        alias = "lastUpdateTimeUtc",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<String>")]
    pub last_update_date_time_utc: Option<OffsetDateTime>,
    pub cancellation_requestor: Option<String>,
    pub cancellation_comment: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub cancellation_date_time_utc: Option<OffsetDateTime>,
    pub related_file_info: Option<RelatedFileInfo>,
    /// Live response commands with their own status, by index.
    #[serde(default)]
    pub commands: Vec<CommandStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedFileInfo {
    pub file_identifier: Option<String>,
    pub file_identifier_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandStatus {
    pub index: u32,
    pub command_status: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub start_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub end_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub errors: Vec<String>,
    pub command: Option<CommandSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CommandSpec {
    #[serde(rename = "type")]
    pub command_type: String,
    #[serde(default)]
    pub params: Vec<CommandParam>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CommandParam {
    pub key: String,
    pub value: Option<String>,
}

/// What to list machine actions by (Defender filters on these server-side).
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    pub machine_id: Option<MachineId>,
    pub action_type: Option<ActionType>,
    pub status: Option<ActionStatus>,
    /// Actions created at or after it.
    pub since: Option<OffsetDateTime>,
}

impl ActionFilter {
    fn odata(&self) -> Option<String> {
        let mut clauses = Vec::new();
        if let Some(machine) = &self.machine_id {
            clauses.push(format!("machineId eq {}", odata::string(machine.as_str())));
        }
        if let Some(kind) = self.action_type {
            clauses.push(format!("type eq {}", odata::member(kind)));
        }
        if let Some(status) = self.status {
            clauses.push(format!("status eq {}", odata::member(status)));
        }
        if let Some(since) = self.since {
            clauses.push(format!("creationDateTimeUtc ge {}", odata::time(since)));
        }
        (!clauses.is_empty()).then(|| clauses.join(" and "))
    }
}

impl DefenderClient {
    /// Starts a response action on one device. Never repeated after a lost answer: the action
    /// may have been created, and a second one would act twice.
    pub async fn start_action(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
        action: &ActionRequest,
        comment: &str,
    ) -> Result<MachineAction, ApiError> {
        let url = self.http.url(
            Api::Defender,
            &format!(
                "/api/machines/{}/{}",
                machine.as_str(),
                action.path_segment()
            ),
            &[],
        );
        let request = ApiRequest::send_json(
            Api::Defender,
            tenant,
            Method::POST,
            url,
            &action.body(comment),
            Replay::Unsafe,
        )
        .paced(action.buckets());
        self.http.json(&request).await
    }

    pub async fn get_action(
        &self,
        tenant: &TenantId,
        id: &ActionId,
    ) -> Result<MachineAction, ApiError> {
        let url = self.http.url(
            Api::Defender,
            &format!("/api/machineactions/{}", id.as_str()),
            &[],
        );
        self.http
            .json(&ApiRequest::get(Api::Defender, tenant, url).paced(MACHINES))
            .await
    }

    pub fn actions_start(&self, filter: &ActionFilter) -> ListPosition {
        let filter = filter.odata();
        self.list_start("/api/machineactions", filter.as_deref())
    }

    pub async fn list_actions(
        &self,
        tenant: &TenantId,
        from: ListPosition,
        max: usize,
    ) -> Result<Collected<MachineAction>, ApiError> {
        self.collect(tenant, from, max, MACHINES).await
    }

    /// Cancels an action that is not yet final (cancel-machine-action.md: "Cancel an already
    /// launched machine action that isn't yet in final state (completed, canceled, failed)").
    pub async fn cancel_action(
        &self,
        tenant: &TenantId,
        id: &ActionId,
        comment: &str,
    ) -> Result<MachineAction, ApiError> {
        let url = self.http.url(
            Api::Defender,
            &format!("/api/machineactions/{}/cancel", id.as_str()),
            &[],
        );
        let request = ApiRequest::send_json(
            Api::Defender,
            tenant,
            Method::POST,
            url,
            &json!({"Comment": comment}),
            Replay::Unsafe,
        )
        .paced(MACHINES);
        self.http.json(&request).await
    }

    /// A short-lived download link to the investigation package a collection action produced.
    /// Paced by its own quota too: 2 calls a minute and 120 an hour (get-package-sas-uri.md).
    pub async fn package_uri(&self, tenant: &TenantId, id: &ActionId) -> Result<String, ApiError> {
        let url = self.http.url(
            Api::Defender,
            &format!("/api/machineactions/{}/getPackageUri", id.as_str()),
            &[],
        );
        let value = self
            .http
            .json::<ValueString>(&ApiRequest::get(Api::Defender, tenant, url).paced(PACKAGE_URI))
            .await?
            .value;
        package_link(&value).ok_or_else(|| ApiError::Decode {
            api: Api::Defender,
            detail: "the investigation package link Defender returned is not a URL".into(),
        })
    }

    /// A short-lived download link to the result of one live response command.
    pub async fn live_response_result_link(
        &self,
        tenant: &TenantId,
        id: &ActionId,
        index: u32,
    ) -> Result<String, ApiError> {
        let path = format!(
            "/api/machineactions/{}/GetLiveResponseResultDownloadLink(index={index})",
            id.as_str()
        );
        let url = self.http.url(Api::Defender, &path, &[]);
        Ok(self
            .http
            .json::<ValueString>(&ApiRequest::get(Api::Defender, tenant, url).paced(MACHINES))
            .await?
            .value)
    }

    /// Reads a result link (no token: the link is pre-signed). `Ok((bytes, cut))`.
    pub async fn download(
        &self,
        link: &str,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, bool), ApiError> {
        let link = url::Url::parse(link).map_err(|_| ApiError::Decode {
            api: Api::Defender,
            detail: "the download link Defender returned is not a URL".into(),
        })?;
        self.http
            .download_signed(Api::Defender, &link, max_bytes)
            .await
    }
}

/// get-package-sas-uri.md, "Response example", prints the link wrapped in literal quotes
/// (`"value": "\"https://...\""`): one surrounding pair is dropped and the rest must be a URL.
fn package_link(value: &str) -> Option<String> {
    let trimmed = value.trim();
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(trimmed);
    url::Url::parse(unquoted)
        .ok()
        .filter(|link| link.scheme() == "https" || link.scheme() == "http")
        .map(|_| unquoted.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_links_lose_the_quotes_the_page_shows() {
        let page = r#""https://userrequests-us.securitycenter.windows.com:443/safedownload/WDATP_Investigation_Package.zip?token=MIIFfAYJKoZIhvc""#;
        assert_eq!(
            package_link(page).as_deref(),
            Some(
                "https://userrequests-us.securitycenter.windows.com:443/safedownload/WDATP_Investigation_Package.zip?token=MIIFfAYJKoZIhvc"
            )
        );
        assert_eq!(
            package_link("https://example.com/p.zip").as_deref(),
            Some("https://example.com/p.zip")
        );
        assert_eq!(package_link("\"not a link\""), None);
    }

    #[test]
    fn containment_is_an_isolate_without_an_undocumented_type() {
        assert_eq!(ActionRequest::Contain.path_segment(), "isolate");
        assert_eq!(
            ActionRequest::Contain.body("rogue"),
            json!({"Comment": "rogue"})
        );
    }

    #[test]
    fn the_list_examples_last_update_name_is_read() {
        let action: MachineAction = serde_json::from_value(json!({
            "id": "7f1b2c3d-0000-4000-8000-000000000001", "type": "Isolate", "status": "Succeeded",
            "lastUpdateTimeUtc": "2019-01-02T14:39:38.1234567Z"
        }))
        .expect("action");
        assert_eq!(
            action.last_update_date_time_utc,
            Some(time::macros::datetime!(2019-01-02 14:39:38.1234567 UTC))
        );
        assert!(action.action_type.is(&ActionType::Isolate));
        assert!(is_settled(&action.status));
    }

    #[test]
    fn a_status_defender_adds_later_is_kept_and_ends_the_following() {
        let action: MachineAction = serde_json::from_value(json!({
            "id": "7f1b2c3d-0000-4000-8000-000000000001", "type": "Isolate", "status": "Queued"
        }))
        .expect("an unknown status is read, not refused");
        assert_eq!(action.status.as_str(), "Queued");
        assert!(is_settled(&action.status));
        for running in ["Pending", "InProgress"] {
            assert!(!is_settled(&Open::reported(running)), "{running}");
        }
    }

    #[test]
    fn bodies_carry_the_comment_and_the_action_options() {
        let body = ActionRequest::Isolate(IsolationType::Selective).body("ticket 42");
        assert_eq!(
            body,
            json!({"Comment": "ticket 42", "IsolationType": "Selective"})
        );
        let script = ActionRequest::LiveResponse(vec![LiveResponseCommand::RunScript {
            script_name: "Collect-Triage.ps1".into(),
            args: Some("-OutputPath C:\\temp".into()),
        }]);
        assert_eq!(
            script.body("triage")["Commands"],
            json!([{"type": "RunScript", "params": [
                {"key": "ScriptName", "value": "Collect-Triage.ps1"},
                {"key": "Args", "value": "-OutputPath C:\\temp"}
            ]}])
        );
    }

    #[test]
    fn filters_become_odata() {
        let filter = ActionFilter {
            machine_id: Some(MachineId::try_from("a".repeat(40)).expect("id")),
            action_type: Some(ActionType::Isolate),
            status: Some(ActionStatus::Pending),
            since: Some(time::macros::datetime!(2024-05-01 00:00:00.75 UTC)),
        };
        assert_eq!(
            filter.odata().as_deref(),
            Some(
                format!(
                    "machineId eq '{}' and type eq 'Isolate' and status eq 'Pending' and creationDateTimeUtc ge 2024-05-01T00:00:00Z",
                    "a".repeat(40)
                )
                .as_str()
            )
        );
        assert_eq!(ActionFilter::default().odata(), None);
    }

    #[test]
    fn action_ids_are_guids() {
        assert!(ActionId::try_from("7f1b2c3d-0000-4000-8000-000000000001".to_string()).is_ok());
        assert!(ActionId::try_from("isolate-1".to_string()).is_err());
    }
}
