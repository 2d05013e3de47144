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

/// `queryResults` of `Query_Execute` (data-plane `stable/2022-10-27`): the tables, and an
/// `error` beside them when the result is partial (cut at a limit, or a part of the query
/// failed) although the answer is a 200.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryResponse {
    pub tables: Vec<ResultTable>,
    #[serde(default)]
    pub error: Option<PartialError>,
}

/// `errorInfo`: `code` and `message` are required; `innererror` says what went wrong in detail.
#[derive(Debug, Clone, Deserialize)]
pub struct PartialError {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub innererror: Option<Box<PartialError>>,
}

impl std::fmt::Display for PartialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(inner) = &self.innererror {
            write!(f, ": {inner}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResultTable {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// `column` has no required property in either definition; a blank name or type is kept rather
/// than failing the whole result.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Column {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
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
        .query_timeout();
        self.http.json(&request).await
    }
}
