//! Entities (files, IP addresses, domains) and alerts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefenderClient, MachineId, ValueList, lowercase_hex, number_or_string, odata_string};
use crate::outbound::{Api, ApiError, ApiRequest, Collected, ListPosition};
use crate::tenants::TenantId;

/// A file hash Defender can look up: SHA-1, SHA-256 or MD5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct FileHash(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a file hash: expected a SHA-1 (40), SHA-256 (64) or MD5 (32) in hexadecimal characters"
)]
pub struct InvalidFileHash(String);

impl TryFrom<String> for FileHash {
    type Error = InvalidFileHash;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        lowercase_hex(&text, &[32, 40, 64])
            .map(Self)
            .ok_or_else(|| InvalidFileHash(text.trim().chars().take(80).collect()))
    }
}

impl From<FileHash> for String {
    fn from(hash: FileHash) -> Self {
        hash.0
    }
}

impl FileHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub size: Option<i64>,
    pub file_type: Option<String>,
    pub is_pe_file: Option<bool>,
    pub file_publisher: Option<String>,
    pub file_product_name: Option<String>,
    pub signer: Option<String>,
    pub issuer: Option<String>,
    pub is_valid_certificate: Option<bool>,
    /// Clean, Malware, Pua, ... as Microsoft's intelligence judges the file.
    pub determination_type: Option<String>,
    /// The threat name, when the file is detected.
    pub determination_value: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    pub global_prevalence: Option<i64>,
    pub global_first_observed: Option<String>,
    pub global_last_observed: Option<String>,
}

/// How widely a file was seen in this organisation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileStats {
    /// Devices in the organisation that saw the file.
    #[serde(default, deserialize_with = "number_or_string")]
    pub org_prevalence: Option<i64>,
    pub org_first_seen: Option<String>,
    pub org_last_seen: Option<String>,
    #[serde(default)]
    pub top_file_names: Vec<String>,
}

/// How widely an IP address or a domain was contacted in this organisation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgStats {
    /// Devices in the organisation that communicated with it.
    #[serde(default, deserialize_with = "number_or_string")]
    pub org_prevalence: Option<i64>,
    pub org_first_seen: Option<String>,
    pub org_last_seen: Option<String>,
}

pub type IpStats = OrgStats;
pub type DomainStats = OrgStats;

/// A Defender for Endpoint alert.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: String,
    pub incident_id: Option<i64>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub category: Option<String>,
    pub classification: Option<String>,
    pub determination: Option<String>,
    pub assigned_to: Option<String>,
    pub detection_source: Option<String>,
    pub threat_name: Option<String>,
    pub threat_family_name: Option<String>,
    #[serde(default)]
    pub mitre_techniques: Vec<String>,
    pub alert_creation_time: Option<String>,
    pub first_event_time: Option<String>,
    pub last_event_time: Option<String>,
    pub last_update_time: Option<String>,
    pub resolved_time: Option<String>,
    pub machine_id: Option<String>,
    pub computer_dns_name: Option<String>,
    pub rbac_group_name: Option<String>,
    pub investigation_state: Option<String>,
    /// Entities involved (files, processes, users, IPs, URLs), as Defender lists them.
    #[serde(default)]
    pub evidence: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub severity: Option<String>,
    pub status: Option<String>,
    pub machine_id: Option<MachineId>,
    /// RFC 3339: alerts created at or after it.
    pub since: Option<String>,
}

impl AlertFilter {
    fn odata(&self) -> Option<String> {
        let mut clauses = Vec::new();
        if let Some(severity) = &self.severity {
            clauses.push(format!("severity eq {}", odata_string(severity)));
        }
        if let Some(status) = &self.status {
            clauses.push(format!("status eq {}", odata_string(status)));
        }
        if let Some(machine) = &self.machine_id {
            clauses.push(format!("machineId eq {}", odata_string(machine.as_str())));
        }
        if let Some(since) = &self.since {
            clauses.push(format!("alertCreationTime ge {since}"));
        }
        (!clauses.is_empty()).then(|| clauses.join(" and "))
    }
}

impl DefenderClient {
    pub async fn get_file(&self, tenant: &TenantId, hash: &FileHash) -> Result<FileInfo, ApiError> {
        self.get_entity(tenant, &format!("/api/files/{}", hash.as_str()))
            .await
    }

    pub async fn file_stats(
        &self,
        tenant: &TenantId,
        hash: &FileHash,
    ) -> Result<FileStats, ApiError> {
        self.get_entity(tenant, &format!("/api/files/{}/stats", hash.as_str()))
            .await
    }

    pub async fn file_alerts(
        &self,
        tenant: &TenantId,
        hash: &FileHash,
    ) -> Result<Vec<Alert>, ApiError> {
        Ok(self
            .get_entity::<ValueList<Alert>>(tenant, &format!("/api/files/{}/alerts", hash.as_str()))
            .await?
            .value)
    }

    /// `ip` must be a parsed address (it becomes a path segment).
    pub async fn ip_stats(
        &self,
        tenant: &TenantId,
        ip: std::net::IpAddr,
    ) -> Result<IpStats, ApiError> {
        self.get_entity(tenant, &format!("/api/ips/{ip}/stats"))
            .await
    }

    /// `domain` must be a checked domain name (it becomes a path segment).
    pub async fn domain_stats(
        &self,
        tenant: &TenantId,
        domain: &str,
    ) -> Result<DomainStats, ApiError> {
        self.get_entity(tenant, &format!("/api/domains/{domain}/stats"))
            .await
    }

    pub fn alerts_start(&self, filter: &AlertFilter) -> ListPosition {
        let filter = filter.odata();
        let query: Vec<(&str, &str)> = filter
            .as_deref()
            .map(|f| ("$filter", f))
            .into_iter()
            .collect();
        ListPosition::start(self.http.url(Api::Defender, "/api/alerts", &query))
    }

    pub async fn list_alerts(
        &self,
        tenant: &TenantId,
        from: ListPosition,
        max: usize,
    ) -> Result<Collected<Alert>, ApiError> {
        self.collect(
            tenant,
            from,
            max,
            &[crate::outbound::Bucket::DefenderGeneral],
        )
        .await
    }

    /// `id` must be a checked alert id (it becomes a path segment).
    pub async fn get_alert(&self, tenant: &TenantId, id: &str) -> Result<Alert, ApiError> {
        self.get_entity(tenant, &format!("/api/alerts/{id}")).await
    }

    async fn get_entity<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &TenantId,
        path: &str,
    ) -> Result<T, ApiError> {
        let url = self.http.url(Api::Defender, path, &[]);
        self.http
            .json(&ApiRequest::get(Api::Defender, tenant, url))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hashes_are_sha1_sha256_or_md5() {
        for ok in ["a".repeat(32), "B".repeat(40), "c".repeat(64)] {
            assert!(FileHash::try_from(ok.clone()).is_ok(), "{ok}");
        }
        assert!(FileHash::try_from("a".repeat(41)).is_err());
        assert!(FileHash::try_from("mimikatz.exe".to_string()).is_err());
    }

    #[test]
    fn prevalence_arrives_as_a_number_or_a_string() {
        let stats: FileStats =
            serde_json::from_str(r#"{"orgPrevalence":"14","topFileNames":["a.exe"]}"#)
                .expect("string");
        assert_eq!(stats.org_prevalence, Some(14));
        let stats: OrgStats = serde_json::from_str(r#"{"orgPrevalence":3}"#).expect("number");
        assert_eq!(stats.org_prevalence, Some(3));
    }
}
