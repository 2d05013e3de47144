//! Entities (files, IP addresses, domains) and alerts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{DefenderClient, MachineId, ValueList, lowercase_hex, number_or_string};
use crate::clients::Open;
use crate::clients::odata;
use crate::outbound::{Api, ApiError, ApiRequest, Collected, ListPosition};
use crate::tenants::TenantId;

/// A file hash Defender can look up: SHA-1 or SHA-256. get-file-information.md, "API
/// description": "Retrieves a File by identifier Sha1, or Sha256"; MD5 is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct FileHash(String);

#[derive(Debug, thiserror::Error)]
pub enum InvalidFileHash {
    #[error(
        "'{0}' is an MD5: Defender's file API looks files up by SHA-1 or SHA-256 only; find the file's SHA-1 \
         with advanced hunting (DeviceFileEvents | where MD5 == '...' | project SHA1)"
    )]
    Md5(String),
    #[error(
        "'{0}' is not a file hash: expected a SHA-1 (40) or SHA-256 (64) in hexadecimal characters"
    )]
    Other(String),
}

impl TryFrom<String> for FileHash {
    type Error = InvalidFileHash;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let shown = || text.trim().chars().take(80).collect();
        match lowercase_hex(&text, &[32, 40, 64]) {
            Some(hash) if hash.len() == 32 => Err(InvalidFileHash::Md5(shown())),
            Some(hash) => Ok(Self(hash)),
            None => Err(InvalidFileHash::Other(shown())),
        }
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

    pub fn is_sha1(&self) -> bool {
        self.0.len() == 40
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    /// Not a property of files.md; read only in case the service still sends it.
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
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub global_first_observed: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub global_last_observed: Option<OffsetDateTime>,
}

/// How widely a file was seen in this organisation and worldwide (get-file-statistics.md,
/// "Response example", `InOrgFileStats`). The older revision of the page named the counts
/// `orgPrevalence`/`globalPrevalence` and printed them as strings; both are still read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileStats {
    /// Devices in the organisation that saw the file.
    #[serde(
        rename = "organizationPrevalence",
        alias = "orgPrevalence",
        default,
        deserialize_with = "number_or_string"
    )]
    pub org_prevalence: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub org_first_seen: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub org_last_seen: Option<OffsetDateTime>,
    /// Devices worldwide that saw the file.
    #[serde(
        rename = "globallyPrevalence",
        alias = "globalPrevalence",
        default,
        deserialize_with = "number_or_string"
    )]
    pub global_prevalence: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub global_first_observed: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub global_last_observed: Option<OffsetDateTime>,
    #[serde(default)]
    pub top_file_names: Vec<String>,
}

/// How widely an IP address or a domain was contacted in this organisation
/// (get-ip-statistics.md and get-domain-statistics.md, "Response example": `organizationPrevalence`,
/// a number; the older name `orgPrevalence` is still read).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgStats {
    /// Devices in the organisation that communicated with it.
    #[serde(
        rename = "organizationPrevalence",
        alias = "orgPrevalence",
        default,
        deserialize_with = "number_or_string"
    )]
    pub org_prevalence: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub org_first_seen: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub org_last_seen: Option<OffsetDateTime>,
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
    pub severity: Option<Open<AlertSeverity>>,
    pub status: Option<Open<AlertStatus>>,
    pub category: Option<String>,
    pub classification: Option<String>,
    pub determination: Option<String>,
    pub assigned_to: Option<String>,
    pub detection_source: Option<String>,
    pub threat_name: Option<String>,
    pub threat_family_name: Option<String>,
    #[serde(default)]
    pub mitre_techniques: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub alert_creation_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub first_event_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_event_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_update_time: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub resolved_time: Option<OffsetDateTime>,
    pub machine_id: Option<String>,
    pub computer_dns_name: Option<String>,
    pub rbac_group_name: Option<String>,
    pub investigation_state: Option<String>,
    /// Entities involved (files, processes, users, IPs, URLs), as Defender lists them.
    #[serde(default)]
    pub evidence: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// alerts.md `severity`: "Possible values are: 'UnSpecified', 'Informational', 'Low', 'Medium'
/// and 'High'".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertSeverity {
    UnSpecified,
    Informational,
    Low,
    Medium,
    High,
}

/// alerts.md `status`: "Possible values are: 'Unknown', 'New', 'InProgress' and 'Resolved'".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertStatus {
    Unknown,
    New,
    InProgress,
    Resolved,
}

/// What to list alerts by. `machineId` is not filterable on `/api/alerts` (get-alerts.md, "API
/// description"), so a device's alerts come from `/api/machines/{id}/alerts` instead
/// ([`DefenderClient::machine_alerts`]) and are filtered with [`AlertFilter::matches`].
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub severity: Option<AlertSeverity>,
    pub status: Option<AlertStatus>,
    /// Alerts created at or after it.
    pub since: Option<OffsetDateTime>,
}

impl AlertFilter {
    fn odata(&self) -> Option<String> {
        let mut clauses = Vec::new();
        if let Some(severity) = self.severity {
            clauses.push(format!("severity eq {}", odata::member(severity)));
        }
        if let Some(status) = self.status {
            clauses.push(format!("status eq {}", odata::member(status)));
        }
        if let Some(since) = self.since {
            clauses.push(format!("alertCreationTime ge {}", odata::time(since)));
        }
        (!clauses.is_empty()).then(|| clauses.join(" and "))
    }

    /// The same test on our side, for lists the service does not filter
    /// (get-machine-related-alerts.md documents no `$filter`).
    pub fn matches(&self, alert: &Alert) -> bool {
        /// No member asked for, or the member reported.
        fn wanted<T: PartialEq>(wanted: Option<T>, reported: Option<&Open<T>>) -> bool {
            wanted.is_none_or(|member| reported.is_some_and(|r| r.is(&member)))
        }
        // An alert without a creation time is kept rather than hidden.
        let recent = match (self.since, alert.alert_creation_time) {
            (Some(since), Some(created)) => created >= since,
            _ => true,
        };
        wanted(self.severity, alert.severity.as_ref())
            && wanted(self.status, alert.status.as_ref())
            && recent
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

    /// The alerts of a file, by its SHA-1: get-file-related-alerts.md, "Limitations": "Only
    /// SHA-1 Hash Function is supported (not MD5 or SHA-256)". An unknown file is an empty list.
    pub async fn file_alerts(
        &self,
        tenant: &TenantId,
        sha1: &FileHash,
    ) -> Result<Vec<Alert>, ApiError> {
        debug_assert!(sha1.is_sha1(), "file alerts take a SHA-1");
        Ok(self
            .get_entity::<ValueList<Alert>>(tenant, &format!("/api/files/{}/alerts", sha1.as_str()))
            .await?
            .value)
    }

    /// Every alert of one device, up to `max` (get-machine-related-alerts.md; 404 when the
    /// device is unknown). Paced with the machine calls, as it is under `/api/machines`.
    pub async fn machine_alerts(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
        max: usize,
    ) -> Result<Collected<Alert>, ApiError> {
        let start = ListPosition::start(self.http.url(
            Api::Defender,
            &format!("/api/machines/{}/alerts", machine.as_str()),
            &[],
        ));
        self.collect(tenant, start, max, super::MACHINES).await
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
        self.list_start("/api/alerts", filter.as_deref())
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
    fn file_hashes_are_sha1_or_sha256() {
        for ok in ["B".repeat(40), "c".repeat(64)] {
            assert!(FileHash::try_from(ok.clone()).is_ok(), "{ok}");
        }
        let md5 = FileHash::try_from("a".repeat(32)).expect_err("MD5 is not an identifier");
        assert!(md5.to_string().contains("SHA-1 or SHA-256 only"), "{md5}");
        assert!(FileHash::try_from("a".repeat(41)).is_err());
        assert!(FileHash::try_from("mimikatz.exe".to_string()).is_err());
    }

    /// get-file-statistics.md, "Response example", verbatim.
    #[test]
    fn file_statistics_page_example_decodes() {
        let stats: FileStats = serde_json::from_str(
            r#"{
                "@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#microsoft.windowsDefenderATP.api.InOrgFileStats",
                "sha1": "0991a395da64e1c5fbe8732ed11e6be064081d9f",
                "organizationPrevalence": 14850,
                "orgFirstSeen": "2019-12-07T13:44:16Z",
                "orgLastSeen": "2020-01-06T13:39:36Z",
                "globallyPrevalence": 705012,
                "globalFirstObserved": "2015-11-19T03:47:50.2005009Z",
                "globalLastObserved": "2020-01-06T13:39:36Z",
                "topFileNames": ["MREMOTENG.EXE", "mRemoteNG.exe"]
            }"#,
        )
        .expect("the page's example");
        assert_eq!(stats.org_prevalence, Some(14850));
        assert_eq!(stats.global_prevalence, Some(705012));
        assert_eq!(stats.top_file_names.len(), 2);
    }

    /// get-ip-statistics.md and get-domain-statistics.md, "Response example".
    #[test]
    fn ip_and_domain_statistics_page_examples_decode() {
        let ip: OrgStats = serde_json::from_str(
            r#"{"@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#microsoft.windowsDefenderATP.api.InOrgIPStats",
                "ipAddress": "10.53.1.1", "organizationPrevalence": 63515,
                "orgFirstSeen": "2020-01-05T08:27:40Z", "orgLastSeen": "2020-01-05T08:27:40Z"}"#,
        )
        .expect("ip example");
        assert_eq!(ip.org_prevalence, Some(63515));
        let domain: OrgStats = serde_json::from_str(
            r#"{"@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#microsoft.windowsDefenderATP.api.InOrgDomainStats",
                "host": "example.com", "organizationPrevalence": 4070,
                "orgFirstSeen": "2017-07-30T13:23:48Z", "orgLastSeen": "2017-08-29T13:09:05Z"}"#,
        )
        .expect("domain example");
        assert_eq!(domain.org_prevalence, Some(4070));
    }

    #[test]
    fn the_older_prevalence_names_and_strings_are_still_read() {
        let stats: FileStats = serde_json::from_str(
            r#"{"orgPrevalence":"14","globalPrevalence":"9","topFileNames":["a.exe"]}"#,
        )
        .expect("string");
        assert_eq!(stats.org_prevalence, Some(14));
        assert_eq!(stats.global_prevalence, Some(9));
        let stats: OrgStats = serde_json::from_str(r#"{"orgPrevalence":3}"#).expect("number");
        assert_eq!(stats.org_prevalence, Some(3));
    }

    #[test]
    fn device_alerts_are_filtered_on_our_side() {
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "id": "da1", "severity": "High", "status": "New",
            "alertCreationTime": "2024-05-02T10:00:00.1234567Z"
        }))
        .expect("alert");
        let filter = |severity, since| AlertFilter {
            severity,
            status: None,
            since,
        };
        let may_first = time::macros::datetime!(2024-05-01 00:00 UTC);
        let may_third = time::macros::datetime!(2024-05-03 00:00 UTC);
        assert!(filter(Some(AlertSeverity::High), Some(may_first)).matches(&alert));
        assert!(!filter(Some(AlertSeverity::Low), None).matches(&alert));
        assert!(!filter(None, Some(may_third)).matches(&alert));
        assert!(filter(None, None).matches(&alert));
        let resolved = AlertFilter {
            status: Some(AlertStatus::Resolved),
            ..AlertFilter::default()
        };
        assert!(!resolved.matches(&alert));
        assert_eq!(
            AlertFilter {
                severity: Some(AlertSeverity::High),
                status: Some(AlertStatus::InProgress),
                since: Some(may_first),
            }
            .odata()
            .as_deref(),
            Some(
                "severity eq 'High' and status eq 'InProgress' and alertCreationTime ge 2024-05-01T00:00:00Z"
            )
        );
    }
}
