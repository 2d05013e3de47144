//! Microsoft Graph security (`https://graph.microsoft.com/{v1.0|beta}/security/...`): advanced
//! hunting, incidents with their alerts (v1.0) and custom detection rules (beta).

mod detection_rules;
mod incidents;

use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::outbound::{Api, ApiError, ApiRequest, Bucket, HttpCore, ListPosition, Replay};
use crate::tenants::TenantId;

pub use detection_rules::{
    DetectionRule, DetectionRuleChange, MitreTactic, NewDetectionRule, RuleId, RuleStatus,
    frequency_of_period,
};
pub use incidents::{
    Classification, Determination, GraphAlert, Incident, IncidentComment, IncidentFilter,
    IncidentId, IncidentSeverity, IncidentStatus, IncidentUpdate,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct HuntingQueryBody<'a> {
    query: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timespan: Option<&'a str>,
}

/// The answer of `runHuntingQuery`: column schema and rows as objects.
#[derive(Debug, Clone, Deserialize)]
pub struct HuntingQueryResult {
    #[serde(default)]
    pub schema: Vec<HuntingColumn>,
    #[serde(default)]
    pub results: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
pub struct HuntingColumn {
    /// `singlePropertySchema.name`; the runHuntingQuery page's last example writes `Name`.
    #[serde(alias = "Name")]
    pub name: String,
    #[serde(rename = "type", alias = "Type")]
    pub column_type: String,
}

#[derive(Clone)]
pub struct GraphClient {
    http: Arc<HttpCore>,
}

impl GraphClient {
    pub fn new(http: Arc<HttpCore>) -> Self {
        Self { http }
    }

    /// Advanced hunting (Defender XDR) through Graph, the replacement of the retiring Defender
    /// hunting API. `timespan` is an ISO 8601 duration such as `P7D`. Callers refuse KQL
    /// control commands first (`kql_guard`).
    pub async fn run_hunting_query(
        &self,
        tenant: &TenantId,
        query: &str,
        timespan: Option<&str>,
    ) -> Result<HuntingQueryResult, ApiError> {
        let url = self
            .http
            .url(Api::Graph, "/v1.0/security/runHuntingQuery", &[]);
        // A query changes nothing, but it spends the tenant's hunting CPU quota: it may run for
        // Microsoft's full 3 minutes and is not sent again once it may have run.
        let request = ApiRequest::send_json(
            Api::Graph,
            tenant,
            Method::POST,
            url,
            &HuntingQueryBody { query, timespan },
            Replay::Costly,
        )
        .query_timeout()
        .paced(&[Bucket::GraphHunting]);
        self.http.json(&request).await
    }

    /// Checks that a list position belongs to this API before a tool resumes from it.
    pub fn check_position(&self, position: &ListPosition) -> Result<(), ApiError> {
        self.http.ensure_own_origin(Api::Graph, &position.page)
    }
}
