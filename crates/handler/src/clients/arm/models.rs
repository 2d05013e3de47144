//! Typed views of the ARM resources the tools read. Each keeps the fields a person or a model
//! acts on; a full resource for export or re-import is handled as JSON, so nothing is lost.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::clients::Open;

use super::incidents::{
    IncidentClassification, IncidentClassificationReason, IncidentSeverity, IncidentStatus,
};

/// The envelope every ARM resource shares. Common-types `Resource` marks `id` and `name`
/// read-only without requiring them; every resource provider called here sends both on every
/// resource it answers, and the tools address resources by them, so they stay required: a
/// resource without them is reported as an undecodable answer rather than shown nameless.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Resource<P> {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub properties: P,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceProperties {
    pub customer_id: Option<String>,
    pub provisioning_state: Option<String>,
    pub retention_in_days: Option<i64>,
}
pub type Workspace = Resource<WorkspaceProperties>;

/// SecurityInsights `AlertSeverity`: the severity of an analytics rule's alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertSeverity {
    High,
    Medium,
    Low,
    Informational,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleProperties {
    pub display_name: Option<String>,
    /// Absent for rule kinds that cannot be disabled.
    pub enabled: Option<bool>,
    pub severity: Option<Open<AlertSeverity>>,
    #[serde(default)]
    pub tactics: Vec<String>,
    pub alert_rule_template_name: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_modified_utc: Option<OffsetDateTime>,
}
pub type AlertRule = Resource<AlertRuleProperties>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequiredConnector {
    pub connector_id: Option<String>,
    #[serde(default)]
    pub data_types: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleTemplateProperties {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub severity: Option<Open<AlertSeverity>>,
    #[serde(default)]
    pub tactics: Vec<String>,
    pub version: Option<String>,
    pub alert_rules_created_by_template_count: Option<i64>,
    #[serde(default)]
    pub required_data_connectors: Vec<RequiredConnector>,
}
pub type AlertRuleTemplate = Resource<AlertRuleTemplateProperties>;

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentOwner {
    pub object_id: Option<String>,
    pub email: Option<String>,
    pub assigned_to: Option<String>,
    pub user_principal_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentLabel {
    pub label_name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentAdditionalData {
    pub alerts_count: Option<i64>,
    pub comments_count: Option<i64>,
    #[serde(default)]
    pub tactics: Vec<String>,
    #[serde(default)]
    pub alert_product_names: Vec<String>,
}

/// `IncidentProperties` as this server reads them (an update writes the incident as read, see
/// [`super::IncidentChanges`], so nothing here is lost on the way back).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentProperties {
    pub title: Option<String>,
    pub severity: Option<Open<IncidentSeverity>>,
    pub status: Option<Open<IncidentStatus>>,
    pub incident_number: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_time_utc: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_modified_time_utc: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub first_activity_time_utc: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_activity_time_utc: Option<OffsetDateTime>,
    #[serde(default)]
    pub owner: IncidentOwner,
    #[serde(default)]
    pub labels: Vec<IncidentLabel>,
    pub classification: Option<Open<IncidentClassification>>,
    pub classification_reason: Option<Open<IncidentClassificationReason>>,
    pub classification_comment: Option<String>,
    #[serde(default)]
    pub additional_data: IncidentAdditionalData,
    pub incident_url: Option<String>,
    pub description: Option<String>,
}
pub type Incident = Resource<IncidentProperties>;

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentAuthor {
    pub name: Option<String>,
    pub email: Option<String>,
    pub user_principal_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentProperties {
    pub message: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub created_time_utc: Option<OffsetDateTime>,
    #[serde(default)]
    pub author: CommentAuthor,
}
pub type IncidentComment = Resource<CommentProperties>;

/// A Sentinel entity (an alert is an entity of kind `SecurityAlert`): its kind-specific
/// properties are kept as they come.
pub type Entity = Resource<serde_json::Map<String, Value>>;

/// The answer of `POST …/incidents/{id}/alerts`.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertList {
    #[serde(default)]
    pub value: Vec<Entity>,
}

/// The answer of `POST …/incidents/{id}/entities`.
#[derive(Debug, Clone, Deserialize)]
pub struct EntityList {
    #[serde(default)]
    pub entities: Vec<Entity>,
}

/// `Tables.json#/definitions/Column` requires nothing; a column without a name or type reads
/// as blank rather than failing the whole table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableColumn {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub column_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    pub name: Option<String>,
    /// `Microsoft`, `CustomLog`, `RestoredLogs` or `SearchResults`.
    pub table_type: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub columns: Vec<TableColumn>,
    #[serde(default)]
    pub standard_columns: Vec<TableColumn>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableProperties {
    pub plan: Option<String>,
    pub retention_in_days: Option<i64>,
    pub total_retention_in_days: Option<i64>,
    pub archive_retention_in_days: Option<i64>,
    pub retention_in_days_as_default: Option<bool>,
    pub total_retention_in_days_as_default: Option<bool>,
    /// Tables.json declares it a plain string, not `date-time`, and Microsoft's examples write
    /// it in other forms (`Mon, 01 Nov 2021 16:38:01 GMT`, `2022-01-01T14:34:04.37`): passed on
    /// as written.
    pub last_plan_modified_date: Option<String>,
    pub provisioning_state: Option<String>,
    pub schema: Option<TableSchema>,
}
pub type LogTable = Resource<TableProperties>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkbookProperties {
    pub display_name: Option<String>,
    pub category: Option<String>,
    pub source_id: Option<String>,
    pub description: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub time_modified: Option<OffsetDateTime>,
    pub version: Option<String>,
    /// The workbook content (Notebook JSON as a string), only when fetched with content.
    pub serialized_data: Option<String>,
    /// Not `x-nullable` in the definition, but a `null` is read as no tags rather than
    /// failing the whole list (workbooks restored by older versions may carry one).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
}
pub type Workbook = Resource<WorkbookProperties>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WatchlistProperties {
    pub display_name: Option<String>,
    pub provider: Option<String>,
    pub source: Option<String>,
    pub items_search_key: Option<String>,
    pub description: Option<String>,
    pub watchlist_alias: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub created: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub updated: Option<OffsetDateTime>,
}
pub type Watchlist = Resource<WatchlistProperties>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WatchlistItemProperties {
    #[serde(default)]
    pub items_key_value: serde_json::Map<String, Value>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub updated: Option<OffsetDateTime>,
}
pub type WatchlistItem = Resource<WatchlistItemProperties>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogAnalyticsDestination {
    pub workspace_resource_id: Option<String>,
    pub workspace_id: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DcrDestinations {
    #[serde(default)]
    pub log_analytics: Vec<LogAnalyticsDestination>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataFlow {
    #[serde(default)]
    pub streams: Vec<String>,
    #[serde(default)]
    pub destinations: Vec<String>,
    pub transform_kql: Option<String>,
    pub output_stream: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DcrEndpoints {
    pub logs_ingestion: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamDeclaration {
    #[serde(default)]
    pub columns: Vec<TableColumn>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DcrProperties {
    pub immutable_id: Option<String>,
    pub description: Option<String>,
    pub data_collection_endpoint_id: Option<String>,
    #[serde(default)]
    pub stream_declarations: BTreeMap<String, StreamDeclaration>,
    /// Agent data sources (Windows events, syslog, performance counters), as ARM returns them.
    pub data_sources: Option<Value>,
    #[serde(default)]
    pub destinations: DcrDestinations,
    #[serde(default)]
    pub data_flows: Vec<DataFlow>,
    /// The rule's own ingestion endpoint (kind `Direct`).
    #[serde(default)]
    pub endpoints: DcrEndpoints,
    pub provisioning_state: Option<String>,
}
pub type DataCollectionRule = Resource<DcrProperties>;

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Endpoint {
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAcls {
    pub public_network_access: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DceProperties {
    pub immutable_id: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub logs_ingestion: Endpoint,
    #[serde(default)]
    pub configuration_access: Endpoint,
    #[serde(default)]
    pub network_acls: NetworkAcls,
    pub provisioning_state: Option<String>,
}
pub type DataCollectionEndpoint = Resource<DceProperties>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssociationProperties {
    pub data_collection_rule_id: Option<String>,
    pub data_collection_endpoint_id: Option<String>,
    pub description: Option<String>,
    pub provisioning_state: Option<String>,
}
pub type DcrAssociation = Resource<AssociationProperties>;

/// `subscriptions.json#/definitions/Subscription`: every property is read-only and none is
/// required; one without an id reads as blank and is skipped by the tools that use it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(default)]
    pub subscription_id: String,
    pub display_name: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationDefinitionProperties {
    pub registration_definition_name: Option<String>,
    pub managed_by_tenant_id: Option<String>,
    pub managed_by_tenant_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegistrationDefinition {
    pub properties: RegistrationDefinitionProperties,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationAssignmentProperties {
    pub registration_definition: Option<RegistrationDefinition>,
}
pub type RegistrationAssignment = Resource<RegistrationAssignmentProperties>;

/// The body of an `Azure-AsyncOperation` status (`OperationStatuses.json#/definitions/
/// OperationStatus`, no property required: a missing `status` reads as still running).
#[derive(Debug, Clone, Deserialize)]
pub struct OperationStatus {
    #[serde(default)]
    pub status: Option<Open<OperationEnd>>,
    pub error: Option<OperationError>,
}

/// The statuses that end an asynchronous operation (ARM's asynchronous-operation convention:
/// `Succeeded`, `Failed`, `Canceled`; `Cancelled` is read too). Any other status (`InProgress`,
/// `Accepted`, a provider's own) means it is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationEnd {
    Succeeded,
    Failed,
    #[serde(alias = "Cancelled")]
    Canceled,
}

/// A failed operation's error. OperationalInsights declares it as common-types
/// `ErrorResponse`, `{"error": {"code", "message"}}`; the generic ARM `OperationStatusResult`
/// has it flat, `{"code", "message"}`. Both are read, the nested one first.
#[derive(Debug, Clone, Deserialize)]
pub struct OperationError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub error: Option<Box<OperationError>>,
}

impl OperationError {
    /// `message (code)`, from the nested detail when there is one.
    pub fn describe(&self) -> String {
        let detail = match &self.error {
            Some(inner) if inner.code.is_some() || inner.message.is_some() => inner.as_ref(),
            _ => self,
        };
        let message = detail.message.clone().unwrap_or_default();
        match &detail.code {
            Some(code) => format!("{message} ({code})"),
            None => message,
        }
    }
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}
