//! Sentinel incidents: list (filters, order, paging), get (with alerts and entities), update
//! (status, classification, owner, severity, labels; etag-checked), comments.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Target, one_line, page, target};
use crate::clients::arm::{
    AlertList, ArmClient, ArmError, ArmName, ClassificationChange, EntityList, Incident,
    IncidentChanges, IncidentClassification, IncidentClassificationReason, IncidentComment,
    IncidentOrder, IncidentQuery, IncidentSeverity, IncidentStatus, OwnerChange, WorkspaceResource,
};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::ListPosition;
use crate::tenants::TenantId;
use crate::tools::args::{self, Fields, Limit, Since, When};
use crate::tools::cursor;
use crate::tools::rows::{self, ListRow, Row, Rows};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListIncidents)
        .tool(GetIncident)
        .tool(UpdateIncident)
        .tool(AddComment)
        .tool(ListComments)
}

const MAX_COMMENT_CHARS: usize = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
enum Status {
    New,
    Active,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
enum Severity {
    High,
    Medium,
    Low,
    Informational,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
enum Classification {
    TruePositive,
    BenignPositive,
    FalsePositive,
    Undetermined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
enum ClassificationReason {
    /// With TruePositive.
    SuspiciousActivity,
    /// With BenignPositive.
    SuspiciousButExpected,
    /// With FalsePositive.
    IncorrectAlertLogic,
    /// With FalsePositive.
    InaccurateData,
}

impl Classification {
    /// The reasons Sentinel accepts for a classification; the first is the default.
    fn reasons(self) -> &'static [ClassificationReason] {
        use ClassificationReason::*;
        match self {
            Self::TruePositive => &[SuspiciousActivity],
            Self::BenignPositive => &[SuspiciousButExpected],
            Self::FalsePositive => &[IncorrectAlertLogic, InaccurateData],
            Self::Undetermined => &[],
        }
    }
}

// What a model may ask for is a closed set; what Azure answers may hold more (the client's
// open enums), so each input converts into its wire value.
impl From<Status> for IncidentStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::New => Self::New,
            Status::Active => Self::Active,
            Status::Closed => Self::Closed,
        }
    }
}

impl From<Severity> for IncidentSeverity {
    fn from(severity: Severity) -> Self {
        match severity {
            Severity::High => Self::High,
            Severity::Medium => Self::Medium,
            Severity::Low => Self::Low,
            Severity::Informational => Self::Informational,
        }
    }
}

impl From<Classification> for IncidentClassification {
    fn from(classification: Classification) -> Self {
        match classification {
            Classification::TruePositive => Self::TruePositive,
            Classification::BenignPositive => Self::BenignPositive,
            Classification::FalsePositive => Self::FalsePositive,
            Classification::Undetermined => Self::Undetermined,
        }
    }
}

impl From<ClassificationReason> for IncidentClassificationReason {
    fn from(reason: ClassificationReason) -> Self {
        match reason {
            ClassificationReason::SuspiciousActivity => Self::SuspiciousActivity,
            ClassificationReason::SuspiciousButExpected => Self::SuspiciousButExpected,
            ClassificationReason::IncorrectAlertLogic => Self::IncorrectAlertLogic,
            ClassificationReason::InaccurateData => Self::InaccurateData,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Order {
    /// Newest first (default).
    #[default]
    Newest,
    Oldest,
    /// Most recently changed first.
    LastModified,
    /// Highest incident number first.
    Number,
}

impl From<Order> for IncidentOrder {
    fn from(order: Order) -> Self {
        match order {
            Order::Newest => Self::Newest,
            Order::Oldest => Self::Oldest,
            Order::LastModified => Self::LastModified,
            Order::Number => Self::Number,
        }
    }
}

#[derive(Serialize, JsonSchema)]
struct IncidentInfo {
    /// The incident's id (a GUID); tools also accept its number.
    incident_id: String,
    number: Option<i64>,
    title: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    /// Who it is assigned to (name or UPN), when assigned.
    owner: Option<String>,
    created: Option<String>,
    last_modified: Option<String>,
    alerts: Option<i64>,
    classification: Option<String>,
    classification_reason: Option<String>,
    labels: Vec<String>,
}

impl From<&Incident> for IncidentInfo {
    fn from(incident: &Incident) -> Self {
        let p = &incident.properties;
        Self {
            incident_id: incident.name.clone(),
            number: p.incident_number,
            title: p.title.clone(),
            severity: p.severity.as_ref().map(|s| s.as_str().to_owned()),
            status: p.status.as_ref().map(|s| s.as_str().to_owned()),
            owner: p
                .owner
                .user_principal_name
                .clone()
                .or_else(|| p.owner.assigned_to.clone())
                .or_else(|| p.owner.email.clone()),
            created: p.created_time_utc.map(args::rfc3339),
            last_modified: p.last_modified_time_utc.map(args::rfc3339),
            alerts: p.additional_data.alerts_count,
            classification: p.classification.as_ref().map(|c| c.as_str().to_owned()),
            classification_reason: p
                .classification_reason
                .as_ref()
                .map(|r| r.as_str().to_owned()),
            labels: p.labels.iter().map(|l| l.label_name.clone()).collect(),
        }
    }
}

impl ListRow for IncidentInfo {
    // Enough to choose which incident to open: what, how bad, where it stands, whose it is.
    const COMPACT: &'static [&'static str] = &[
        "incident_id",
        "number",
        "title",
        "severity",
        "status",
        "owner",
        "created",
        "alerts",
    ];
    const FREE_TEXT: &'static [&'static str] = &["title"];
    const GET_TOOL: Option<&'static str> = Some("sentinel_get_incident");
}

fn describe(i: &IncidentInfo) -> String {
    format!(
        "incident {} '{}': {}, {}, {}",
        i.number
            .map(|n| n.to_string())
            .unwrap_or_else(|| i.incident_id.clone()),
        i.title.as_deref().unwrap_or(""),
        i.severity.as_deref().unwrap_or("?"),
        i.status.as_deref().unwrap_or("?"),
        i.owner
            .as_deref()
            .map(|o| format!("owner {o}"))
            .unwrap_or_else(|| "unassigned".into())
    )
}

/// An incident as a person names it: its id (GUID) or its number.
async fn resolve_incident(
    context: &ToolContext,
    target: &Target<'_>,
    incident: &str,
) -> Result<ArmName, ToolError> {
    let text = incident.trim().trim_start_matches('#');
    let arm = &context.services.arm;
    if let Ok(number) = text.parse::<u64>() {
        let filter = format!("properties/incidentNumber eq {number}");
        let url = ArmClient::with_query(
            arm.workspace_url(target.workspace, WorkspaceResource::Incidents),
            &[("$filter", &filter)],
        );
        let found = arm
            .list::<Incident>(target.tenant_id(), ListPosition::start(url), 1)
            .await?;
        let incident = found
            .items
            .into_iter()
            .next()
            .ok_or_else(|| no_incident(target, text))?;
        return incident.name.parse().map_err(|_| {
            ToolError::Failed(format!(
                "incident {number} has an id this server cannot use: {}",
                incident.name
            ))
        });
    }
    text.parse().map_err(|_| {
        ToolError::invalid(format!(
            "incident '{text}' is neither an incident number nor an incident id (GUID)"
        ))
    })
}

fn no_incident(target: &Target<'_>, incident: &str) -> ToolError {
    ToolError::NotFound(format!(
        "no incident {incident} in workspace {}; sentinel_list_incidents lists them",
        target.workspace.workspace_name
    ))
}

async fn read_incident(
    context: &ToolContext,
    target: &Target<'_>,
    id: &ArmName,
) -> Result<Incident, ToolError> {
    let arm = &context.services.arm;
    arm.find::<Incident>(
        target.tenant_id(),
        arm.workspace_url(target.workspace, WorkspaceResource::Incident(id)),
    )
    .await?
    .ok_or_else(|| no_incident(target, id.as_str()))
}

struct ListIncidents;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListIncidentsParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Only these statuses (New, Active, Closed).
    status: Option<Vec<Status>>,
    /// Only these severities (High, Medium, Low, Informational).
    severity: Option<Vec<Severity>>,
    /// Only incidents created at or after this time.
    since: Option<When<Since>>,
    /// An extra OData $filter ANDed with the above, e.g. `properties/owner/userPrincipalName eq 'ana@contoso.com'`.
    filter: Option<String>,
    /// newest (default), oldest, last_modified or number.
    order_by: Option<Order>,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<20, 200>,
    cursor: Option<String>,
    /// Extra fields, e.g. ["labels", "classification"], or ["all"].
    /// sentinel_get_incident gives one incident whole, with its alerts and entities.
    fields: Option<Fields<IncidentInfo>>,
}

#[derive(Serialize, JsonSchema)]
struct ListIncidentsOutput {
    tenant_id: TenantId,
    workspace: String,
    incidents: Vec<Row<IncidentInfo>>,
    /// Which free-text fields were cut short, and where to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    /// Present when more incidents match: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListIncidentsOutput {
    fn summary(&self) -> String {
        let more = cursor::more_note(self.next_cursor.as_ref());
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} incidents in {}{more}{cut}",
            self.incidents.len(),
            self.workspace
        )
    }
}

fn incident_query(params: &ListIncidentsParams) -> Result<IncidentQuery, ToolError> {
    Ok(IncidentQuery {
        statuses: params
            .status
            .iter()
            .flatten()
            .map(|&status| status.into())
            .collect(),
        severities: params
            .severity
            .iter()
            .flatten()
            .map(|&severity| severity.into())
            .collect(),
        since: params.since.as_ref().map(When::at),
        filter: params
            .filter
            .as_deref()
            .map(|filter| one_line("filter", filter, 2000))
            .transpose()?,
        order: params.order_by.unwrap_or_default().into(),
    })
}

#[async_trait::async_trait]
impl Tool for ListIncidents {
    type Params = ListIncidentsParams;
    type Output = ListIncidentsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_incidents",
            title: "List Sentinel incidents",
            description: "Lists a workspace's Sentinel incidents, filtered by status, severity, creation time or \
                         OData, ordered newest, oldest, last modified or by number.",
            toolset: Toolset::SentinelIncidents,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListIncidentsParams,
    ) -> Result<ListIncidentsOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let limit = params.limit.get();
        let filtered = params.status.is_some()
            || params.severity.is_some()
            || params.since.is_some()
            || params.filter.is_some()
            || params.order_by.is_some();
        if params.cursor.is_some() && filtered {
            return Err(ToolError::invalid(
                "pass either filters/order_by or cursor, not both: the cursor already carries them",
            ));
        }
        let parameters = incident_query(&params)?.parameters();
        let arm = &context.services.arm;
        let start = || {
            Ok(ArmClient::with_query(
                arm.workspace_url(target.workspace, WorkspaceResource::Incidents),
                &parameters,
            ))
        };
        let (incidents, next_cursor) = page::<Incident>(
            context,
            target.tenant_id(),
            start,
            params.cursor.as_deref(),
            limit,
        )
        .await?;
        let summaries = incidents.iter().map(IncidentInfo::from).collect();
        let Rows { rows, cut } = rows::rows(summaries, params.fields.as_ref());
        Ok(ListIncidentsOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            incidents: rows,
            cut,
            next_cursor,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IncidentParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The incident's number (e.g. 4711) or id (GUID).
    incident: String,
}

struct GetIncident;

#[derive(Serialize, JsonSchema)]
struct AlertInfo {
    alert_id: String,
    name: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    product: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    tactics: Option<Value>,
    compromised_entity: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct EntityInfo {
    /// Account, Host, Ip, File, Url, Process, MailMessage ...
    kind: Option<String>,
    friendly_name: Option<String>,
    /// The entity's properties (host name, UPN, address, hashes ...).
    properties: Map<String, Value>,
}

#[derive(Serialize, JsonSchema)]
struct GetIncidentOutput {
    tenant_id: TenantId,
    workspace: String,
    incident: IncidentInfo,
    description: Option<String>,
    first_activity: Option<String>,
    last_activity: Option<String>,
    tactics: Vec<String>,
    products: Vec<String>,
    classification_comment: Option<String>,
    comments: Option<i64>,
    /// Link to the incident in the portal.
    url: Option<String>,
    alerts: Vec<AlertInfo>,
    entities: Vec<EntityInfo>,
}

impl Summary for GetIncidentOutput {
    fn summary(&self) -> String {
        format!(
            "{}; {} alerts, {} entities",
            describe(&self.incident),
            self.alerts.len(),
            self.entities.len()
        )
    }
}

fn text(properties: &Map<String, Value>, key: &str) -> Option<String> {
    properties
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[async_trait::async_trait]
impl Tool for GetIncident {
    type Params = IncidentParams;
    type Output = GetIncidentOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_get_incident",
            title: "Get a Sentinel incident",
            description: "Gets one Sentinel incident by number or id, with its alerts, entities (accounts, hosts, \
                         IPs, files), tactics and classification.",
            toolset: Toolset::SentinelIncidents,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: IncidentParams,
    ) -> Result<GetIncidentOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let id = resolve_incident(context, &target, &params.incident).await?;
        let incident = read_incident(context, &target, &id).await?;
        let arm = &context.services.arm;
        let (alerts, entities) = tokio::join!(
            arm.post_read::<AlertList>(
                target.tenant_id(),
                arm.workspace_url(target.workspace, WorkspaceResource::IncidentAlerts(&id))
            ),
            arm.post_read::<EntityList>(
                target.tenant_id(),
                arm.workspace_url(target.workspace, WorkspaceResource::IncidentEntities(&id))
            ),
        );
        let alerts = alerts?
            .value
            .into_iter()
            .map(|a| AlertInfo {
                alert_id: a.name,
                name: text(&a.properties, "alertDisplayName"),
                severity: text(&a.properties, "severity"),
                status: text(&a.properties, "status"),
                product: text(&a.properties, "productName"),
                start_time: text(&a.properties, "startTimeUtc"),
                end_time: text(&a.properties, "endTimeUtc"),
                tactics: a.properties.get("tactics").cloned(),
                compromised_entity: text(&a.properties, "compromisedEntity"),
            })
            .collect();
        let entities = entities?
            .entities
            .into_iter()
            .map(|e| EntityInfo {
                kind: e.kind,
                friendly_name: text(&e.properties, "friendlyName"),
                properties: e.properties,
            })
            .collect();
        let p = &incident.properties;
        Ok(GetIncidentOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            incident: IncidentInfo::from(&incident),
            description: p.description.clone().filter(|d| !d.is_empty()),
            first_activity: p.first_activity_time_utc.map(args::rfc3339),
            last_activity: p.last_activity_time_utc.map(args::rfc3339),
            tactics: p.additional_data.tactics.clone(),
            products: p.additional_data.alert_product_names.clone(),
            classification_comment: p.classification_comment.clone(),
            comments: p.additional_data.comments_count,
            url: p.incident_url.clone(),
            alerts,
            entities,
        })
    }
}

struct UpdateIncident;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateIncidentParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The incident's number (e.g. 4711) or id (GUID).
    incident: String,
    /// New status. Closed needs a classification.
    status: Option<Status>,
    severity: Option<Severity>,
    /// Why it is closed: TruePositive, BenignPositive, FalsePositive or Undetermined.
    classification: Option<Classification>,
    /// TruePositive: SuspiciousActivity; BenignPositive: SuspiciousButExpected; FalsePositive: IncorrectAlertLogic or InaccurateData.
    /// Defaults to the only reason where there is one.
    classification_reason: Option<ClassificationReason>,
    /// Free text recorded with the classification.
    classification_comment: Option<String>,
    /// Assign to this user (UPN, e.g. ana@contoso.com).
    owner_upn: Option<String>,
    /// The owner's Entra object id, when known (makes the assignment exact).
    owner_object_id: Option<String>,
    /// true removes the owner.
    unassign: Option<bool>,
    /// Labels to add (existing labels are kept).
    add_labels: Option<Vec<String>>,
}

#[derive(Serialize, JsonSchema)]
struct UpdateIncidentOutput {
    tenant_id: TenantId,
    workspace: String,
    incident: IncidentInfo,
    /// What changed, as "field: before → after".
    changes: Vec<String>,
}

impl Summary for UpdateIncidentOutput {
    fn summary(&self) -> String {
        if self.changes.is_empty() {
            format!(
                "{}: already as requested, nothing changed",
                describe(&self.incident)
            )
        } else {
            format!(
                "{}; changed {}",
                describe(&self.incident),
                self.changes.join(", ")
            )
        }
    }
}

/// The changes an update asks for, checked before anything is read.
fn requested_changes(params: &UpdateIncidentParams) -> Result<IncidentChanges, ToolError> {
    let classification = match (params.classification, params.classification_reason) {
        (None, Some(_)) => {
            return Err(ToolError::invalid(
                "classification_reason needs a classification",
            ));
        }
        (Some(classification), reason) => {
            if params.status != Some(Status::Closed) {
                return Err(ToolError::invalid(
                    "a classification is given when closing: add status Closed",
                ));
            }
            let allowed = classification.reasons();
            let reason = match reason {
                Some(r) if allowed.contains(&r) => Some(r),
                Some(r) => {
                    return Err(ToolError::invalid(format!(
                        "classification_reason {r:?} does not go with {classification:?}; accepted: {allowed:?}"
                    )));
                }
                None if allowed.len() == 1 => Some(allowed[0]),
                None if allowed.is_empty() => None,
                None => {
                    return Err(ToolError::invalid(format!(
                        "{classification:?} needs a classification_reason: one of {allowed:?}"
                    )));
                }
            };
            Some(ClassificationChange {
                classification: classification.into(),
                reason: reason.map(Into::into),
                comment: params
                    .classification_comment
                    .as_deref()
                    .map(|comment| one_line("classification_comment", comment, 4000))
                    .transpose()?,
            })
        }
        (None, None) if params.status == Some(Status::Closed) => {
            return Err(ToolError::invalid(
                "closing an incident needs a classification (TruePositive, BenignPositive, FalsePositive or Undetermined)",
            ));
        }
        (None, None) => None,
    };
    if params.classification_comment.is_some() && params.classification.is_none() {
        return Err(ToolError::invalid(
            "classification_comment goes with a classification",
        ));
    }
    let owner = match (&params.owner_upn, params.unassign.unwrap_or(false)) {
        (Some(_), true) => return Err(ToolError::invalid("give owner_upn or unassign, not both")),
        (Some(upn), false) => {
            let upn = one_line("owner_upn", upn, 256)?;
            if !upn.contains('@') {
                return Err(ToolError::invalid(format!(
                    "owner_upn '{upn}' is not a user principal name such as ana@contoso.com"
                )));
            }
            let object_id = match &params.owner_object_id {
                Some(id) => Some(
                    uuid::Uuid::try_parse(id.trim())
                        .map_err(|_| {
                            ToolError::invalid(format!("owner_object_id '{id}' is not a GUID"))
                        })?
                        .to_string(),
                ),
                None => None,
            };
            Some(OwnerChange::Assign {
                user_principal_name: upn,
                object_id,
            })
        }
        (None, true) => Some(OwnerChange::Unassign),
        (None, false) if params.owner_object_id.is_some() => {
            return Err(ToolError::invalid("owner_object_id goes with owner_upn"));
        }
        (None, false) => None,
    };
    Ok(IncidentChanges {
        status: params.status.map(Into::into),
        severity: params.severity.map(Into::into),
        classification,
        owner,
        add_labels: params
            .add_labels
            .iter()
            .flatten()
            .map(|label| one_line("label", label, 256))
            .collect::<Result<_, _>>()?,
    })
}

#[async_trait::async_trait]
impl Tool for UpdateIncident {
    type Params = UpdateIncidentParams;
    type Output = UpdateIncidentOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_update_incident",
            title: "Update a Sentinel incident",
            description: "Changes a Sentinel incident: status (closing needs classification and reason), severity, \
                         owner, labels. Written only if nobody changed it meanwhile (etag); a conflict is \
                         reported.",
            toolset: Toolset::SentinelIncidents,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: UpdateIncidentParams,
    ) -> Result<UpdateIncidentOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let wanted = requested_changes(&params)?;
        if wanted.is_empty() {
            return Err(ToolError::invalid(
                "nothing to change: give status, severity, classification, owner_upn, unassign or add_labels",
            ));
        }
        let id = resolve_incident(context, &target, &params.incident).await?;
        let arm = &context.services.arm;
        let url = arm.workspace_url(target.workspace, WorkspaceResource::Incident(&id));
        let mut changes = Vec::new();
        let updated = arm
            .update(
                target.tenant_id(),
                url,
                &format!("incident {}", params.incident.trim()),
                |incident| {
                    changes = wanted.apply(incident);
                    !changes.is_empty()
                },
            )
            .await
            .map_err(|error| match error {
                // The update's own read is the existence check.
                ArmError::Api(api) if api.is_not_found() => no_incident(&target, id.as_str()),
                other => other.into(),
            })?;
        let incident: Incident = serde_json::from_value(updated.after).map_err(|e| {
            ToolError::Failed(format!("the updated incident could not be read: {e}"))
        })?;
        Ok(UpdateIncidentOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            incident: IncidentInfo::from(&incident),
            changes,
        })
    }
}

struct AddComment;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddCommentParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The incident's number (e.g. 4711) or id (GUID).
    incident: String,
    /// The comment (up to 30,000 characters; line breaks are kept).
    message: String,
}

#[derive(Serialize, JsonSchema)]
struct CommentInfo {
    comment_id: String,
    message: String,
    author: Option<String>,
    created: Option<String>,
}

impl ListRow for CommentInfo {
    const COMPACT: &'static [&'static str] = &["comment_id", "message", "author", "created"];
    const FREE_TEXT: &'static [&'static str] = &["message"];
    const GET_TOOL: Option<&'static str> = None;
}

impl From<IncidentComment> for CommentInfo {
    fn from(comment: IncidentComment) -> Self {
        let p = comment.properties;
        Self {
            comment_id: comment.name,
            message: p.message,
            author: p
                .author
                .user_principal_name
                .or(p.author.name)
                .or(p.author.email),
            created: p.created_time_utc.map(args::rfc3339),
        }
    }
}

#[derive(Serialize, JsonSchema)]
struct AddCommentOutput {
    tenant_id: TenantId,
    workspace: String,
    incident_id: String,
    comment: CommentInfo,
}

impl Summary for AddCommentOutput {
    fn summary(&self) -> String {
        format!(
            "comment {} added to incident {}",
            self.comment.comment_id, self.incident_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for AddComment {
    type Params = AddCommentParams;
    type Output = AddCommentOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_add_incident_comment",
            title: "Comment on a Sentinel incident",
            description: "Adds a comment to a Sentinel incident (by number or id), e.g. triage findings or the reason for a decision.",
            toolset: Toolset::SentinelIncidents,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: AddCommentParams,
    ) -> Result<AddCommentOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let message = params.message.trim();
        if message.is_empty() {
            return Err(ToolError::invalid("message is empty"));
        }
        if message.chars().count() > MAX_COMMENT_CHARS {
            return Err(ToolError::invalid(format!(
                "message is {} characters; at most {MAX_COMMENT_CHARS} are accepted",
                message.chars().count()
            )));
        }
        let id = resolve_incident(context, &target, &params.incident).await?;
        read_incident(context, &target, &id).await?;
        let arm = &context.services.arm;
        // The comment id is chosen here, so a resent PUT after a lost answer writes the same comment once.
        let comment_id = ArmName::new_guid();
        let url = arm.workspace_url(
            target.workspace,
            WorkspaceResource::IncidentComment(&id, &comment_id),
        );
        let comment: IncidentComment = arm
            .put(
                target.tenant_id(),
                url,
                &json!({"properties": {"message": message}}),
            )
            .await?;
        Ok(AddCommentOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            incident_id: id.to_string(),
            comment: comment.into(),
        })
    }
}

struct ListComments;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListCommentsParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The incident's number (e.g. 4711) or id (GUID).
    incident: String,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<20, 200>,
    /// `next_cursor` from a previous call for the same incident.
    cursor: Option<String>,
    /// ["message"] for each comment's whole text (cut in the list otherwise).
    fields: Option<Fields<CommentInfo>>,
}

#[derive(Serialize, JsonSchema)]
struct ListCommentsOutput {
    tenant_id: TenantId,
    workspace: String,
    incident_id: String,
    comments: Vec<Row<CommentInfo>>,
    /// Which comments were cut short, and how to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    /// Present when more comments exist: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListCommentsOutput {
    fn summary(&self) -> String {
        let more = cursor::more_note(self.next_cursor.as_ref());
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} comments on incident {}{more}{cut}",
            self.comments.len(),
            self.incident_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListComments {
    type Params = ListCommentsParams;
    type Output = ListCommentsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_incident_comments",
            title: "List a Sentinel incident's comments",
            description: "Lists the comments on a Sentinel incident (by number or id): text, author, time.",
            toolset: Toolset::SentinelIncidents,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListCommentsParams,
    ) -> Result<ListCommentsOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let limit = params.limit.get();
        let id = resolve_incident(context, &target, &params.incident).await?;
        read_incident(context, &target, &id).await?;
        let arm = &context.services.arm;
        let start =
            || Ok(arm.workspace_url(target.workspace, WorkspaceResource::IncidentComments(&id)));
        let (comments, next_cursor) = page::<IncidentComment>(
            context,
            target.tenant_id(),
            start,
            params.cursor.as_deref(),
            limit,
        )
        .await?;
        let comments = comments.into_iter().map(CommentInfo::from).collect();
        let Rows { rows, cut } = rows::rows(comments, params.fields.as_ref());
        Ok(ListCommentsOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            incident_id: id.to_string(),
            comments: rows,
            cut,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(arguments: Value) -> UpdateIncidentParams {
        let mut arguments = arguments;
        arguments["incident"] = json!("4711");
        serde_json::from_value(arguments).expect("valid parameters")
    }

    fn changes(arguments: Value) -> Result<IncidentChanges, String> {
        requested_changes(&params(arguments)).map_err(|error| error.to_string())
    }

    #[test]
    fn closing_takes_the_only_reason_by_default_and_none_where_there_is_none() {
        let wanted =
            changes(json!({"status": "Closed", "classification": "TruePositive"})).expect("valid");
        assert_eq!(wanted.status, Some(IncidentStatus::Closed));
        assert_eq!(
            wanted.classification,
            Some(ClassificationChange {
                classification: IncidentClassification::TruePositive,
                reason: Some(IncidentClassificationReason::SuspiciousActivity),
                comment: None,
            })
        );
        // Undetermined has no reason: none is sent (the client leaves the property out).
        let wanted = changes(json!({"status": "Closed", "classification": "Undetermined",
                                     "classification_comment": "no evidence either way"}))
        .expect("valid");
        let classification = wanted.classification.expect("classified");
        assert_eq!(classification.reason, None);
        assert_eq!(
            classification.comment.as_deref(),
            Some("no evidence either way")
        );
    }

    #[test]
    fn classifications_and_reasons_are_refused_where_they_do_not_fit() {
        for (arguments, expected) in [
            (
                json!({"status": "Closed"}),
                "closing an incident needs a classification",
            ),
            (
                json!({"classification": "TruePositive"}),
                "add status Closed",
            ),
            (
                json!({"status": "Closed", "classification": "FalsePositive"}),
                "needs a classification_reason",
            ),
            (
                json!({"status": "Closed", "classification": "TruePositive", "classification_reason": "InaccurateData"}),
                "does not go with TruePositive",
            ),
            (
                json!({"classification_reason": "InaccurateData"}),
                "classification_reason needs a classification",
            ),
            (
                json!({"classification_comment": "why"}),
                "classification_comment goes with a classification",
            ),
        ] {
            let error = changes(arguments.clone()).expect_err("refused");
            assert!(error.contains(expected), "{arguments}: {error}");
        }
    }

    #[test]
    fn owners_are_assigned_by_upn_or_removed_but_not_both() {
        let wanted = changes(json!({"owner_upn": "ana@contoso.com", "owner_object_id": "11111111-1111-4111-8111-111111111111"}))
            .expect("valid");
        assert_eq!(
            wanted.owner,
            Some(OwnerChange::Assign {
                user_principal_name: "ana@contoso.com".into(),
                object_id: Some("11111111-1111-4111-8111-111111111111".into()),
            })
        );
        assert_eq!(
            changes(json!({"unassign": true})).expect("valid").owner,
            Some(OwnerChange::Unassign)
        );
        for (arguments, expected) in [
            (
                json!({"owner_upn": "ana@contoso.com", "unassign": true}),
                "not both",
            ),
            (json!({"owner_upn": "ana"}), "not a user principal name"),
            (
                json!({"owner_upn": "ana@contoso.com", "owner_object_id": "nope"}),
                "is not a GUID",
            ),
            (
                json!({"owner_object_id": "11111111-1111-4111-8111-111111111111"}),
                "goes with owner_upn",
            ),
        ] {
            let error = changes(arguments.clone()).expect_err("refused");
            assert!(error.contains(expected), "{arguments}: {error}");
        }
    }

    #[test]
    fn nothing_asked_is_no_change() {
        assert!(changes(json!({})).expect("valid").is_empty());
    }

    const WORKSPACE: &str = "law-contoso-sentinel";

    /// GETs the sandbox answered on incident paths, by route.
    fn incident_reads(harness: &crate::testing::Harness) -> u64 {
        harness
            .sandbox
            .stats()
            .requests
            .iter()
            .filter(|r| r.method == "GET" && r.path_template.contains("incidents"))
            .map(|r| r.count)
            .sum()
    }

    #[tokio::test]
    async fn an_update_reads_the_incident_once_and_reports_each_change() {
        let harness = crate::testing::Harness::start().await;
        let tenant = harness.contoso();
        let listed = harness
            .ok(
                &ListIncidents,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "status": ["New", "Active"]}),
            )
            .await;
        let first = &listed["incidents"][0];
        let id = first["incident_id"].as_str().expect("an open incident");
        let severity = if first["severity"] == "High" {
            "Low"
        } else {
            "High"
        };

        let reads = incident_reads(&harness);
        let updated = harness
            .ok(
                &UpdateIncident,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "incident": id,
                       "severity": severity, "add_labels": ["triaged"]}),
            )
            .await;
        assert_eq!(
            incident_reads(&harness) - reads,
            1,
            "one read, the one the etag comes from"
        );
        assert_eq!(updated["incident"]["severity"], severity, "{updated}");
        let changes = updated["changes"].as_array().expect("changes");
        assert!(
            changes
                .iter()
                .any(|c| c.as_str().is_some_and(|c| c.starts_with("severity:")))
                && changes.contains(&json!("label added: triaged")),
            "{updated}"
        );

        let again = harness
            .refusal(
                &UpdateIncident,
                json!({"tenant_id": tenant, "workspace": WORKSPACE,
                       "incident": "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a", "severity": "Low"}),
            )
            .await;
        assert!(
            again.contains("0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a"),
            "an unknown incident is named: {again}"
        );
    }
}
