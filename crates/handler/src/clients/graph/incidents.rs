//! Defender XDR incidents through Graph v1.0 (`/security/incidents`), with their alerts.

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::GraphClient;
use crate::clients::ids::{NumericId, NumericIdKind};
use crate::clients::{Open, odata};
use crate::outbound::{Api, ApiError, ApiRequest, Collected, ListPosition, Replay};
use crate::tenants::TenantId;

/// `awaitingAction` is an evolvable enum member: without this header Graph reports it as
/// `unknownFutureValue`.
fn prefer_unknown_members(request: ApiRequest<'_>) -> ApiRequest<'_> {
    request.with_header(
        HeaderName::from_static("prefer"),
        HeaderValue::from_static("include-unknown-enum-members"),
    )
}

/// An incident id (Graph numbers incidents).
pub type IncidentId = NumericId<IncidentIdKind>;

pub struct IncidentIdKind;

impl NumericIdKind for IncidentIdKind {
    const WHAT: &'static str = "an incident id";
    const SHOWN_BY: &'static str = "mde_list_incidents";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
/// `incidentStatus` (v1.0 CSDL).
pub enum IncidentStatus {
    Active,
    InProgress,
    Resolved,
    // Only Microsoft Defender Experts set this (security-incident.md); it can be read and
    // filtered on, not set. (`//`: the `status` argument says so to the model.)
    AwaitingAction,
    // Merged into another incident (redirectIncidentId); set by the service.
    Redirected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
/// `alertSeverity` (v1.0 CSDL), which incidents and alerts share; Graph's `unknown` is read
/// through [`Open`], never asked for.
pub enum IncidentSeverity {
    Informational,
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
/// `alertClassification` (v1.0 CSDL).
pub enum Classification {
    Unknown,
    FalsePositive,
    TruePositive,
    InformationalExpectedActivity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
/// `alertDetermination` (v1.0 CSDL).
pub enum Determination {
    Unknown,
    Apt,
    Malware,
    SecurityPersonnel,
    SecurityTesting,
    UnwantedSoftware,
    Other,
    MultiStagedAttack,
    CompromisedAccount,
    Phishing,
    MaliciousUserActivity,
    NotMalicious,
    NotEnoughDataToValidate,
    // `alertDetermination` member 130 in the v1.0 CSDL (the pages' prose still says
    // `confirmedUserActivity`, which the schema does not have).
    ConfirmedActivity,
    LineOfBusinessApplication,
    /// The pages' old spelling: read so the caller is told the current one, never sent.
    #[serde(rename = "confirmedUserActivity")]
    #[schemars(skip)]
    ConfirmedUserActivity,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub id: String,
    pub display_name: Option<String>,
    pub status: Option<Open<IncidentStatus>>,
    pub severity: Option<Open<IncidentSeverity>>,
    pub classification: Option<Open<Classification>>,
    pub determination: Option<Open<Determination>>,
    pub assigned_to: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub created_date_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_update_date_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub custom_tags: Vec<String>,
    #[serde(default)]
    pub system_tags: Vec<String>,
    pub description: Option<String>,
    pub resolving_comment: Option<String>,
    pub redirect_incident_id: Option<String>,
    pub incident_web_url: Option<String>,
    #[serde(default)]
    pub comments: Vec<IncidentComment>,
    /// Present when the incident was read with its alerts.
    #[serde(default)]
    pub alerts: Vec<GraphAlert>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentComment {
    pub comment: Option<String>,
    pub created_by_display_name: Option<String>,
    pub created_date_time: Option<String>,
}

/// An alert in Graph's (v2) shape, as an incident carries it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphAlert {
    pub id: String,
    pub title: Option<String>,
    pub severity: Option<Open<IncidentSeverity>>,
    pub status: Option<String>,
    pub category: Option<String>,
    pub service_source: Option<String>,
    pub detection_source: Option<String>,
    pub threat_display_name: Option<String>,
    #[serde(default)]
    pub mitre_techniques: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub created_date_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub first_activity_date_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_activity_date_time: Option<OffsetDateTime>,
    /// Entities the alert is about, each with an `@odata.type` naming its kind.
    #[serde(default)]
    pub evidence: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub severity: Option<IncidentSeverity>,
    pub assigned_to: Option<String>,
    /// Incidents created at or after it.
    pub since: Option<OffsetDateTime>,
}

impl IncidentFilter {
    fn odata(&self) -> Option<String> {
        let mut clauses = Vec::new();
        if let Some(status) = self.status {
            clauses.push(format!("status eq {}", odata::member(status)));
        }
        if let Some(severity) = self.severity {
            clauses.push(format!("severity eq {}", odata::member(severity)));
        }
        if let Some(assigned) = &self.assigned_to {
            clauses.push(format!("assignedTo eq {}", odata::string(assigned)));
        }
        if let Some(since) = self.since {
            clauses.push(format!("createdDateTime ge {}", odata::time(since)));
        }
        (!clauses.is_empty()).then(|| clauses.join(" and "))
    }
}

/// The fields an update sets; the others are left as they are.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<IncidentStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub determination: Option<Determination>,
    /// `Some(None)` is sent as `"assignedTo": null`: the update page's "Owner of the incident, or
    /// null if no owner is assigned" (`incident.assignedTo` is a nullable `Edm.String`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Comments {
    #[serde(default)]
    value: Vec<IncidentComment>,
}

impl GraphClient {
    /// The first page of a listing. `$top` is sent as a page size, not as a total: Graph answers
    /// a collection in pages joined by `@odata.nextLink` (security-list-incidents.md documents
    /// `$top` and paging but no maximum), so the client asks for `page` incidents at a time and
    /// follows the links until it has as many as the caller wants.
    pub fn incidents_start(&self, filter: &IncidentFilter, page: usize) -> ListPosition {
        let filter = filter.odata();
        let top = page.to_string();
        let mut query: Vec<(&str, &str)> = vec![("$top", top.as_str())];
        query.extend(filter.as_deref().map(|f| ("$filter", f)));
        ListPosition::start(
            self.http
                .url(Api::Graph, "/v1.0/security/incidents", &query),
        )
    }

    pub async fn list_incidents(
        &self,
        tenant: &TenantId,
        from: ListPosition,
        max: usize,
    ) -> Result<Collected<Incident>, ApiError> {
        self.http
            .collect(Api::Graph, from, max, |page| {
                prefer_unknown_members(ApiRequest::get(Api::Graph, tenant, page))
            })
            .await
    }

    pub async fn get_incident(
        &self,
        tenant: &TenantId,
        id: &IncidentId,
        with_alerts: bool,
    ) -> Result<Incident, ApiError> {
        let query: &[(&str, &str)] = if with_alerts {
            &[("$expand", "alerts")]
        } else {
            &[]
        };
        let url = self.http.url(
            Api::Graph,
            &format!("/v1.0/security/incidents/{}", id.as_str()),
            query,
        );
        self.http
            .json(&prefer_unknown_members(ApiRequest::get(
                Api::Graph,
                tenant,
                url,
            )))
            .await
    }

    /// PATCH sets fields to given values, so a resend after a lost answer does no harm.
    pub async fn update_incident(
        &self,
        tenant: &TenantId,
        id: &IncidentId,
        update: &IncidentUpdate,
    ) -> Result<Incident, ApiError> {
        let url = self.http.url(
            Api::Graph,
            &format!("/v1.0/security/incidents/{}", id.as_str()),
            &[],
        );
        let request =
            ApiRequest::send_json(Api::Graph, tenant, Method::PATCH, url, update, Replay::Safe);
        self.http.json(&prefer_unknown_members(request)).await
    }

    /// Adds a comment; the answer is the incident's comments, the new one last.
    pub async fn add_incident_comment(
        &self,
        tenant: &TenantId,
        id: &IncidentId,
        comment: &str,
    ) -> Result<Vec<IncidentComment>, ApiError> {
        let url = self.http.url(
            Api::Graph,
            &format!("/v1.0/security/incidents/{}/comments", id.as_str()),
            &[],
        );
        let body = serde_json::json!({ "@odata.type": "microsoft.graph.security.alertComment", "comment": comment });
        // A resend would post the comment twice.
        let request =
            ApiRequest::send_json(Api::Graph, tenant, Method::POST, url, &body, Replay::Unsafe);
        Ok(self.http.json::<Comments>(&request).await?.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_carry_only_what_is_set() {
        let update = IncidentUpdate {
            status: Some(IncidentStatus::Resolved),
            custom_tags: Some(vec![]),
            ..IncidentUpdate::default()
        };
        assert_eq!(
            serde_json::to_value(update).expect("json"),
            serde_json::json!({"status": "resolved", "customTags": []})
        );
    }

    #[test]
    fn members_are_sent_in_graph_spelling_and_read_when_added_later() {
        let update = IncidentUpdate {
            status: Some(IncidentStatus::InProgress),
            classification: Some(Classification::InformationalExpectedActivity),
            determination: Some(Determination::ConfirmedActivity),
            ..IncidentUpdate::default()
        };
        assert_eq!(
            serde_json::to_value(update).expect("json"),
            serde_json::json!({"status": "inProgress",
                               "classification": "informationalExpectedActivity",
                               "determination": "confirmedActivity"})
        );
        let incident: Incident = serde_json::from_value(serde_json::json!({
            "id": "42", "status": "awaitingAction", "severity": "unknownFutureValue",
            "createdDateTime": "2026-12-01T10:00:00.123Z"
        }))
        .expect("incident");
        assert!(
            incident
                .status
                .expect("read")
                .is(&IncidentStatus::AwaitingAction)
        );
        assert_eq!(
            incident.severity.expect("read").as_str(),
            "unknownFutureValue"
        );
        let filter = IncidentFilter {
            status: Some(IncidentStatus::InProgress),
            severity: Some(IncidentSeverity::High),
            assigned_to: Some("O'Brien".into()),
            since: incident.created_date_time,
        };
        assert_eq!(
            filter.odata().as_deref(),
            Some(
                "status eq 'inProgress' and severity eq 'high' and assignedTo eq 'O''Brien' and createdDateTime ge 2026-12-01T10:00:00Z"
            )
        );
    }

    #[test]
    fn unassigning_sends_null() {
        let update = IncidentUpdate {
            assigned_to: Some(None),
            ..IncidentUpdate::default()
        };
        assert_eq!(
            serde_json::to_value(update).expect("json"),
            serde_json::json!({"assignedTo": null})
        );
    }
}
