//! Defender XDR incidents through Graph v1.0: list, read with alerts and evidence, update,
//! comment.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common;
use crate::clients::graph::{
    Classification, Determination, GraphAlert, Incident, IncidentComment, IncidentFilter,
    IncidentId, IncidentSeverity, IncidentStatus, IncidentUpdate,
};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
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
}

/// Incidents asked for per page (`$top`). Graph pages a collection with `@odata.nextLink` and
/// treats `$top` as the page size; the list page documents no maximum, so a moderate page is
/// asked for and the links are followed up to the caller's limit.
const PAGE: usize = 50;
const MAX_TEXT_CHARS: usize = 4000;

const DETERMINATIONS: &str = "unknown, apt, malware, securityPersonnel, securityTesting, unwantedSoftware, other, \
     multiStagedAttack, compromisedAccount, phishing, maliciousUserActivity, notMalicious, notEnoughDataToValidate, \
     confirmedActivity, lineOfBusinessApplication";

/// The properties security-incident-update.md lists as updatable.
const UPDATABLE: &str = "status, classification, determination, assigned_to, custom_tags";

/// An incident in a list.
#[derive(Serialize, JsonSchema)]
struct IncidentSummary {
    id: String,
    display_name: Option<String>,
    status: Option<String>,
    severity: Option<String>,
    classification: Option<String>,
    determination: Option<String>,
    assigned_to: Option<String>,
    created: Option<String>,
    last_update: Option<String>,
    custom_tags: Vec<String>,
    web_url: Option<String>,
}

impl From<&Incident> for IncidentSummary {
    fn from(incident: &Incident) -> Self {
        Self {
            id: incident.id.clone(),
            display_name: incident.display_name.clone(),
            status: incident.status.as_deref().map(str::to_owned),
            severity: incident.severity.as_deref().map(str::to_owned),
            classification: incident.classification.as_deref().map(str::to_owned),
            determination: incident.determination.as_deref().map(str::to_owned),
            assigned_to: incident.assigned_to.clone(),
            created: incident.created_date_time.map(args::rfc3339),
            last_update: incident.last_update_date_time.map(args::rfc3339),
            custom_tags: incident.custom_tags.clone(),
            web_url: incident.incident_web_url.clone(),
        }
    }
}

impl ListRow for Incident {
    // Enough to choose which incident to open: what, how bad, where it stands, whose it is.
    const COMPACT: &'static [&'static str] = &[
        "id",
        "displayName",
        "status",
        "severity",
        "classification",
        "assignedTo",
        "createdDateTime",
        "lastUpdateDateTime",
        "customTags",
    ];
    const FREE_TEXT: &'static [&'static str] = &["displayName", "description", "resolvingComment"];
    const GET_TOOL: Option<&'static str> = Some("mde_get_incident");
}

struct ListIncidents;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    tenant_id: Option<TenantId>,
    /// Only incidents in this status.
    status: Option<IncidentStatus>,
    /// Only incidents of this severity.
    severity: Option<IncidentSeverity>,
    /// Only incidents assigned to this user (UPN) or group.
    assigned_to: Option<String>,
    /// Only incidents created at or after this time.
    since: Option<When<Since>>,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<15, 200>,
    cursor: Option<String>,
    /// Extra fields, e.g. ["determination", "incidentWebUrl"], or ["all"].
    /// mde_get_incident gives one incident whole, with its alerts and evidence.
    fields: Option<Fields<Incident>>,
}

#[derive(Serialize, JsonSchema)]
struct ListOutput {
    tenant_id: TenantId,
    incidents: Vec<Row<Incident>>,
    /// Which free-text fields were cut short, and where to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    /// Present when more incidents match: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListOutput {
    fn summary(&self) -> String {
        let more = cursor::more_note(self.next_cursor.as_ref());
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} incidents in tenant {}{more}{cut}",
            self.incidents.len(),
            self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListIncidents {
    type Params = ListParams;
    type Output = ListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_list_incidents",
            title: "List Defender XDR incidents",
            description: "Lists Defender XDR incidents (correlated alerts across devices, identities, mail, cloud \
                         apps): name, status, severity, owner; filter by status, severity, owner, creation time.",
            toolset: Toolset::Incidents,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListParams,
    ) -> Result<ListOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let limit = params.limit.get();
        let graph = &context.services.graph;
        let filtered = params.status.is_some()
            || params.severity.is_some()
            || params.assigned_to.is_some()
            || params.since.is_some();
        let position = common::list_position(
            &tenant,
            params.cursor.as_deref(),
            filtered,
            |position| graph.check_position(position),
            || {
                let filter = IncidentFilter {
                    status: params.status,
                    severity: params.severity,
                    assigned_to: params
                        .assigned_to
                        .as_deref()
                        .map(|a| common::text("assigned_to", a, MAX_TEXT_CHARS))
                        .transpose()?,
                    since: params.since.as_ref().map(When::at),
                };
                Ok(graph.incidents_start(&filter, PAGE))
            },
        )?;
        let collected = graph.list_incidents(&tenant, position, limit).await?;
        let next_cursor = collected
            .next
            .map(|position| cursor::encode(&tenant, position));
        let Rows { rows, cut } = rows::rows(collected.items, params.fields.as_ref());
        Ok(ListOutput {
            tenant_id: tenant,
            incidents: rows,
            cut,
            next_cursor,
        })
    }
}

/// Evidence reduced to what identifies it.
#[derive(Serialize, JsonSchema)]
struct Evidence {
    /// device, user, file, process, ip, url, mailbox, ... (Graph's evidence type).
    kind: String,
    verdict: Option<String>,
    remediation_status: Option<String>,
    /// The identifying values: device name and id, user principal name, file name and hashes, IP, URL, command line.
    detail: String,
}

/// Where each kind of evidence keeps what identifies it.
const EVIDENCE_KEYS: &[&[&str]] = &[
    &["deviceDnsName"],
    &["mdeDeviceId"],
    &["userAccount", "userPrincipalName"],
    &["userAccount", "accountName"],
    &["fileDetails", "fileName"],
    &["fileDetails", "filePath"],
    &["fileDetails", "sha256"],
    &["fileDetails", "sha1"],
    &["imageFile", "fileName"],
    &["processCommandLine"],
    &["ipAddress"],
    &["url"],
    &["primaryAddress"],
    &["senderIp"],
    &["subject"],
];

impl From<&Map<String, Value>> for Evidence {
    fn from(raw: &Map<String, Value>) -> Self {
        let kind = raw
            .get("@odata.type")
            .and_then(Value::as_str)
            .map(|t| {
                t.trim_start_matches("#microsoft.graph.security.")
                    .trim_end_matches("Evidence")
                    .to_string()
            })
            .unwrap_or_else(|| "unknown".into());
        let string = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
        let detail: Vec<String> = EVIDENCE_KEYS
            .iter()
            .filter_map(|path| {
                let mut value = raw.get(path[0])?;
                for key in &path[1..] {
                    value = value.get(key)?;
                }
                value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
            })
            .collect();
        Self {
            kind,
            verdict: string("verdict"),
            remediation_status: string("remediationStatus"),
            detail: detail.join(", "),
        }
    }
}

#[derive(Serialize, JsonSchema)]
struct AlertDetail {
    id: String,
    title: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    category: Option<String>,
    service_source: Option<String>,
    threat: Option<String>,
    mitre_techniques: Vec<String>,
    created: Option<String>,
    first_activity: Option<String>,
    last_activity: Option<String>,
    evidence: Vec<Evidence>,
}

impl From<&GraphAlert> for AlertDetail {
    fn from(alert: &GraphAlert) -> Self {
        Self {
            id: alert.id.clone(),
            title: alert.title.clone(),
            severity: alert.severity.as_deref().map(str::to_owned),
            status: alert.status.clone(),
            category: alert.category.clone(),
            service_source: alert.service_source.clone(),
            threat: alert.threat_display_name.clone(),
            mitre_techniques: alert.mitre_techniques.clone(),
            created: alert.created_date_time.map(args::rfc3339),
            first_activity: alert.first_activity_date_time.map(args::rfc3339),
            last_activity: alert.last_activity_date_time.map(args::rfc3339),
            evidence: alert.evidence.iter().map(Evidence::from).collect(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
struct IncidentOutput {
    tenant_id: TenantId,
    incident: IncidentSummary,
    description: Option<String>,
    resolving_comment: Option<String>,
    system_tags: Vec<String>,
    redirect_incident_id: Option<String>,
    comments: Vec<IncidentComment>,
    /// The incident's alerts with their evidence (when read with alerts).
    alerts: Vec<AlertDetail>,
}

impl IncidentOutput {
    fn new(tenant: TenantId, incident: &Incident) -> Self {
        Self {
            tenant_id: tenant,
            incident: IncidentSummary::from(incident),
            description: incident.description.clone(),
            resolving_comment: incident.resolving_comment.clone(),
            system_tags: incident.system_tags.clone(),
            redirect_incident_id: incident.redirect_incident_id.clone(),
            comments: incident.comments.clone(),
            alerts: incident.alerts.iter().map(AlertDetail::from).collect(),
        }
    }
}

impl Summary for IncidentOutput {
    fn summary(&self) -> String {
        let i = &self.incident;
        format!(
            "incident {} '{}': {}, {} severity, assigned to {}, {} alerts",
            i.id,
            i.display_name.as_deref().unwrap_or(""),
            i.status.as_deref().unwrap_or("unknown status"),
            i.severity.as_deref().unwrap_or("unknown"),
            i.assigned_to.as_deref().unwrap_or("nobody"),
            self.alerts.len()
        )
    }
}

fn no_incident(id: &IncidentId, tenant: &TenantId) -> String {
    format!("no incident {id} in tenant {tenant}")
}

struct GetIncident;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetParams {
    tenant_id: Option<TenantId>,
    /// The incident id (a number, from mde_list_incidents).
    incident_id: IncidentId,
    /// Include the incident's alerts and their evidence (default true).
    include_alerts: Option<bool>,
}

#[async_trait::async_trait]
impl Tool for GetIncident {
    type Params = GetParams;
    type Output = IncidentOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_incident",
            title: "Get a Defender XDR incident",
            description: "Gets one Defender XDR incident with comments and, by default, its alerts and their \
                         evidence (devices, users, files, processes, IPs, URLs, mailboxes) with verdicts.",
            toolset: Toolset::Incidents,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: GetParams,
    ) -> Result<IncidentOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let incident = context
            .services
            .graph
            .get_incident(
                &tenant,
                &params.incident_id,
                params.include_alerts.unwrap_or(true),
            )
            .await
            .map_err(|error| {
                common::not_found(error, || no_incident(&params.incident_id, &tenant))
            })?;
        Ok(IncidentOutput::new(tenant, &incident))
    }
}

struct UpdateIncident;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateParams {
    tenant_id: Option<TenantId>,
    /// The incident id (a number, from mde_list_incidents).
    incident_id: IncidentId,
    /// New status: active, inProgress or resolved (awaitingAction is set only by Defender Experts; redirected by merging).
    status: Option<IncidentStatus>,
    /// Whether the incident is a true positive, a false positive or expected activity.
    classification: Option<Classification>,
    /// What the incident turned out to be.
    determination: Option<Determination>,
    /// Owner: a user principal name or a group name; an empty string unassigns (sent as null).
    assigned_to: Option<String>,
    /// The incident's custom tags: this list replaces the current tags (read them with mde_get_incident first).
    custom_tags: Option<Vec<String>>,
    /// No longer accepted: the update page does not list resolvingComment as updatable. Read so the caller
    /// is pointed at mde_add_incident_comment.
    #[schemars(skip)]
    resolving_comment: Option<String>,
    /// No longer accepted: the update page does not list severity as updatable.
    #[schemars(skip)]
    severity: Option<IncidentSeverity>,
}

#[async_trait::async_trait]
impl Tool for UpdateIncident {
    type Params = UpdateParams;
    type Output = IncidentOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_update_incident",
            title: "Update a Defender XDR incident",
            description: "Updates a Defender XDR incident: status, classification, determination, owner, custom \
                         tags (replaced). Only the fields given change. Record why with mde_add_incident_comment.",
            toolset: Toolset::Incidents,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: UpdateParams,
    ) -> Result<IncidentOutput, ToolError> {
        match params.status {
            Some(IncidentStatus::Redirected) => {
                return Err(ToolError::invalid(
                    "status redirected cannot be set: Defender sets it when it merges incidents (accepted: active, inProgress, resolved)",
                ));
            }
            Some(IncidentStatus::AwaitingAction) => {
                return Err(ToolError::invalid(
                    "status awaitingAction cannot be set: only Microsoft Defender Experts set it (accepted: active, inProgress, resolved)",
                ));
            }
            _ => {}
        }
        if matches!(
            params.determination,
            Some(Determination::ConfirmedUserActivity)
        ) {
            return Err(ToolError::invalid(format!(
                "determination confirmedUserActivity is no longer accepted: Graph's alertDetermination calls it confirmedActivity (accepted: {DETERMINATIONS})"
            )));
        }
        if params.severity.is_some() {
            return Err(ToolError::invalid(format!(
                "severity is no longer accepted: Graph's incident update does not document it as updatable (accepted: {UPDATABLE})"
            )));
        }
        if params.resolving_comment.is_some() {
            return Err(ToolError::invalid(format!(
                "resolving_comment is no longer accepted: Graph's incident update does not document resolvingComment as updatable; \
                 record the reason with mde_add_incident_comment (accepted: {UPDATABLE})"
            )));
        }
        let custom_tags = match params.custom_tags {
            Some(tags) => Some(
                tags.iter()
                    .map(|t| common::text("custom_tags entry", t, MAX_TEXT_CHARS))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let update = IncidentUpdate {
            status: params.status,
            classification: params.classification,
            determination: params.determination,
            assigned_to: params
                .assigned_to
                .as_deref()
                .map(|a| {
                    let a = a.trim();
                    if a.is_empty() {
                        Ok(None)
                    } else {
                        common::text("assigned_to", a, MAX_TEXT_CHARS).map(Some)
                    }
                })
                .transpose()?,
            custom_tags,
        };
        if serde_json::to_value(&update)
            .ok()
            .and_then(|v| v.as_object().map(Map::len))
            == Some(0)
        {
            return Err(ToolError::invalid(
                "nothing to update: give at least one of status, classification, determination, assigned_to, custom_tags",
            ));
        }
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let incident = context
            .services
            .graph
            .update_incident(&tenant, &params.incident_id, &update)
            .await
            .map_err(|error| {
                common::not_found(error, || no_incident(&params.incident_id, &tenant))
            })?;
        Ok(IncidentOutput::new(tenant, &incident))
    }
}

struct AddComment;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CommentParams {
    tenant_id: Option<TenantId>,
    /// The incident id (a number, from mde_list_incidents).
    incident_id: IncidentId,
    /// The comment text (up to 4000 characters).
    comment: String,
}

#[derive(Serialize, JsonSchema)]
struct CommentOutput {
    tenant_id: TenantId,
    incident_id: String,
    /// All the incident's comments, the new one last.
    comments: Vec<IncidentComment>,
}

impl Summary for CommentOutput {
    fn summary(&self) -> String {
        format!(
            "comment added to incident {}; it now has {} comments",
            self.incident_id,
            self.comments.len()
        )
    }
}

#[async_trait::async_trait]
impl Tool for AddComment {
    type Params = CommentParams;
    type Output = CommentOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_add_incident_comment",
            title: "Comment on a Defender XDR incident",
            description: "Adds a comment to a Defender XDR incident, visible to everyone working it.",
            toolset: Toolset::Incidents,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: CommentParams,
    ) -> Result<CommentOutput, ToolError> {
        let comment = common::text("comment", &params.comment, MAX_TEXT_CHARS)?;
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let comments = context
            .services
            .graph
            .add_incident_comment(&tenant, &params.incident_id, &comment)
            .await
            .map_err(|error| {
                common::not_found(error, || no_incident(&params.incident_id, &tenant))
            })?;
        Ok(CommentOutput {
            tenant_id: tenant,
            incident_id: params.incident_id.as_str().to_string(),
            comments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_keeps_what_identifies_it() {
        let raw = serde_json::json!({
            "@odata.type": "#microsoft.graph.security.fileEvidence",
            "verdict": "malicious",
            "fileDetails": {"fileName": "mimikatz.exe", "sha1": "abc"}
        });
        let evidence = Evidence::from(raw.as_object().expect("object"));
        assert_eq!(evidence.kind, "file");
        assert_eq!(evidence.detail, "mimikatz.exe, abc");
        assert_eq!(evidence.verdict.as_deref(), Some("malicious"));
    }
}
