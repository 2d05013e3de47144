//! The Log Analytics query API (`POST /v1/workspaces/{workspaceId}/query`).

use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::outbound::{Api, ApiError, ApiRequest, HttpCore, Replay};
use crate::tenants::TenantId;

#[derive(Debug, Serialize)]
struct QueryBody<'a> {
    query: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timespan: Option<&'a str>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueryResponse {
    pub tables: Vec<ResultTable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResultTable {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: String,
}

impl ResultTable {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

#[derive(Clone)]
pub struct LogAnalyticsClient {
    http: Arc<HttpCore>,
}

impl LogAnalyticsClient {
    pub fn new(http: Arc<HttpCore>) -> Self {
        Self { http }
    }

    /// Runs a KQL query. `timespan` is an ISO 8601 duration such as `P1D`.
    pub async fn query(
        &self,
        tenant: &TenantId,
        workspace_id: &str,
        query: &str,
        timespan: Option<&str>,
    ) -> Result<QueryResponse, ApiError> {
        let url = self.http.url(
            Api::LogAnalytics,
            &format!("/v1/workspaces/{workspace_id}/query"),
            &[],
        );
        // A query changes nothing, but a heavy one runs for minutes against the workspace's
        // query limits: it gets the API's own 3-minute server timeout and is not sent again once
        // it may have run.
        let request = ApiRequest::send_json(
            Api::LogAnalytics,
            tenant,
            Method::POST,
            url,
            &QueryBody { query, timespan },
            Replay::Costly,
        )
        .query();
        self.http.json(&request).await
    }
}
