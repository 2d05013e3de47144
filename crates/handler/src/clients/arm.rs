//! Azure Resource Manager for Sentinel: the Log Analytics workspace and its
//! `Microsoft.SecurityInsights` resources.

use std::sync::Arc;

use serde::Deserialize;

use crate::outbound::{Api, ApiError, ApiRequest, Collected, HttpCore, ListPosition};
use crate::tenants::{TenantId, WorkspaceConfig};

/// api-versions, newest stable at the time of writing (see the reference notes).
pub const OPERATIONAL_INSIGHTS_API_VERSION: &str = "2025-02-01";
pub const SECURITY_INSIGHTS_API_VERSION: &str = "2025-09-01";

#[derive(Debug, Clone, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub location: Option<String>,
    pub properties: WorkspaceProperties,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceProperties {
    pub customer_id: Option<String>,
    pub provisioning_state: Option<String>,
    pub retention_in_days: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertRule {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub etag: Option<String>,
    pub properties: AlertRuleProperties,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleProperties {
    pub display_name: Option<String>,
    /// Absent for rule kinds that cannot be disabled.
    pub enabled: Option<bool>,
    pub severity: Option<String>,
    pub last_modified_utc: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Incident {
    pub id: String,
    pub name: String,
    pub etag: Option<String>,
    pub properties: IncidentProperties,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentProperties {
    pub title: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub incident_number: Option<i64>,
    pub created_time_utc: Option<String>,
}

#[derive(Clone)]
pub struct ArmClient {
    http: Arc<HttpCore>,
}

impl ArmClient {
    pub fn new(http: Arc<HttpCore>) -> Self {
        Self { http }
    }

    pub async fn get_workspace(&self, tenant: &TenantId, workspace: &WorkspaceConfig) -> Result<Workspace, ApiError> {
        let url = self.http.url(Api::Arm, &workspace.resource_path(), &[("api-version", OPERATIONAL_INSIGHTS_API_VERSION)]);
        self.http.json(&ApiRequest::get(Api::Arm, tenant, url)).await
    }

    pub async fn list_alert_rules(&self, tenant: &TenantId, workspace: &WorkspaceConfig, max: usize) -> Result<Collected<AlertRule>, ApiError> {
        let url = self.security_insights(workspace, "alertRules", &[]);
        self.http.collect(Api::Arm, ListPosition::start(url), max, |page| ApiRequest::get(Api::Arm, tenant, page)).await
    }

    pub async fn list_incidents(
        &self,
        tenant: &TenantId,
        workspace: &WorkspaceConfig,
        filter: Option<&str>,
        max: usize,
    ) -> Result<Collected<Incident>, ApiError> {
        let query: Vec<(&str, &str)> = filter.map(|f| ("$filter", f)).into_iter().collect();
        let url = self.security_insights(workspace, "incidents", &query);
        self.http.collect(Api::Arm, ListPosition::start(url), max, |page| ApiRequest::get(Api::Arm, tenant, page)).await
    }

    fn security_insights(&self, workspace: &WorkspaceConfig, resource: &str, query: &[(&str, &str)]) -> url::Url {
        let path = format!("{}/providers/Microsoft.SecurityInsights/{resource}", workspace.resource_path());
        let mut all = vec![("api-version", SECURITY_INSIGHTS_API_VERSION)];
        all.extend_from_slice(query);
        self.http.url(Api::Arm, &path, &all)
    }
}
