//! The Defender for Endpoint API (`https://api.securitycenter.microsoft.com/api`): devices,
//! response actions and machine actions, live response and its library, indicators, file/IP/
//! domain entities and alerts.
//!
//! Calls are counted against Microsoft's per-tenant rate buckets (see `outbound::Bucket`):
//! everything under `/api/machines` and `/api/machineactions` in the machine bucket (live
//! response sessions in their own as well), indicator imports in theirs, the rest in the general one.

mod actions;
mod entities;
mod indicators;
mod library;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::clients::Open;
use crate::outbound::{Api, ApiError, ApiRequest, Bucket, Collected, HttpCore, ListPosition};
use crate::tenants::TenantId;

pub use actions::{
    ActionFilter, ActionId, ActionRequest, ActionStatus, ActionType, IsolationType,
    LiveResponseCommand, MachineAction, ScanType, is_settled,
};
pub use entities::{
    Alert, AlertFilter, AlertSeverity, AlertStatus, DomainStats, FileHash, FileInfo, FileStats,
    IpStats,
};
pub use indicators::{
    IMPORT_BATCH, ImportResult, Indicator, IndicatorAction, IndicatorFilter, IndicatorId,
    IndicatorType, NewIndicator, Severity,
};
pub use library::{LibraryFile, LibraryFileName, LibraryUpload, MAX_LIBRARY_FILE_BYTES};

const MACHINES: &[Bucket] = &[Bucket::DefenderMachines];
/// Records asked for per page of a Defender list (the pages allow up to 10,000: "$top with max
/// value of 10,000", get-machines.md and the other list pages).
const LIST_PAGE: usize = 200;
const PACKAGE_URI: &[Bucket] = &[Bucket::DefenderMachines, Bucket::DefenderPackageUri];

/// A machine id: the 40-character hexadecimal id Defender assigns to a device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct MachineId(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a Defender machine id: expected 40 hexadecimal characters, as returned by mde_list_machines"
)]
pub struct InvalidMachineId(String);

/// `text` trimmed and lower-cased, if it is hexadecimal of one of `lengths` (machine ids and file
/// hashes are; Defender compares them case-insensitively but the lower-case form is canonical).
pub fn lowercase_hex(text: &str, lengths: &[usize]) -> Option<String> {
    let trimmed = text.trim();
    (lengths.contains(&trimmed.len()) && trimmed.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| trimmed.to_ascii_lowercase())
}

impl TryFrom<String> for MachineId {
    type Error = InvalidMachineId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        lowercase_hex(&text, &[40])
            .map(Self)
            .ok_or_else(|| InvalidMachineId(text.trim().chars().take(64).collect()))
    }
}

impl From<MachineId> for String {
    fn from(id: MachineId) -> Self {
        id.0
    }
}

impl MachineId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A device as the Defender API describes it (the fields a responder needs; others are dropped).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub id: String,
    pub computer_dns_name: Option<String>,
    pub os_platform: Option<String>,
    /// machine.md: the operating system version is `version`. (`osVersion`, which this read before,
    /// is on no page; it is not kept as an alias, as a record carrying both would fail to decode.)
    #[serde(rename = "version")]
    pub os_version: Option<String>,
    /// machine.md: "Operating system build number" (a nullable long).
    pub os_build: Option<i64>,
    pub health_status: Option<Open<HealthStatus>>,
    pub onboarding_status: Option<Open<OnboardingStatus>>,
    pub risk_score: Option<String>,
    pub exposure_level: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_seen: Option<OffsetDateTime>,
    pub last_ip_address: Option<String>,
    pub last_external_ip_address: Option<String>,
    pub rbac_group_name: Option<String>,
    #[serde(default)]
    pub machine_tags: Vec<String>,
    pub is_aad_joined: Option<bool>,
    pub aad_device_id: Option<String>,
}

/// machine.md `healthStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthStatus {
    Active,
    Inactive,
    ImpairedCommunication,
    NoSensorData,
    NoSensorDataImpairedCommunication,
    Unknown,
}

/// machine.md `onboardingStatus`: "Possible values are: `onboarded`, `CanBeOnboarded`,
/// `Unsupported`, and `InsufficientInfo`" (the page writes the first in lower case, its
/// examples and the other values in Pascal case: both are read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnboardingStatus {
    #[serde(alias = "onboarded")]
    Onboarded,
    CanBeOnboarded,
    Unsupported,
    InsufficientInfo,
}

/// A user seen logging on to a device.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogonUser {
    pub id: String,
    pub account_name: Option<String>,
    pub account_domain: Option<String>,
    pub account_sid: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub first_seen: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_seen: Option<OffsetDateTime>,
    pub logon_types: Option<String>,
    pub is_domain_admin: Option<bool>,
    pub is_only_network_user: Option<bool>,
}

#[derive(Clone)]
pub struct DefenderClient {
    http: Arc<HttpCore>,
}

impl DefenderClient {
    pub fn new(http: Arc<HttpCore>) -> Self {
        Self { http }
    }

    /// The first page of the machine list, with an optional OData `$filter`.
    pub fn machines_start(&self, filter: Option<&str>) -> ListPosition {
        self.list_start("/api/machines", filter)
    }

    /// Deletes the resource at `path` (an indicator, a library file): a DELETE is safe to repeat.
    async fn delete(&self, tenant: &TenantId, path: &str) -> Result<(), ApiError> {
        let url = self.http.url(Api::Defender, path, &[]);
        self.http
            .send(&ApiRequest::bodiless(
                Api::Defender,
                tenant,
                reqwest::Method::DELETE,
                url,
                crate::outbound::Replay::Safe,
            ))
            .await
            .map(drop)
    }

    /// The first page of a list that takes `$filter`, `$top` and `$skip`. Without `$top` the
    /// service answers pages of up to 10,000 records; a tool wants far fewer, so pages of
    /// [`LIST_PAGE`] are asked for and [`HttpCore::collect`] moves on with `$skip`.
    fn list_start(&self, path: &str, filter: Option<&str>) -> ListPosition {
        let page = LIST_PAGE.to_string();
        let mut query: Vec<(&str, &str)> = vec![("$top", page.as_str())];
        query.extend(filter.map(|f| ("$filter", f)));
        ListPosition::start(self.http.url(Api::Defender, path, &query))
    }

    /// get-machines.md, "Response": "If there are no recent machines, you see `404 Not Found`",
    /// so a 404 on the list is an empty list, not an error.
    pub async fn list_machines(
        &self,
        tenant: &TenantId,
        from: ListPosition,
        max: usize,
    ) -> Result<Collected<Machine>, ApiError> {
        match self.collect(tenant, from, max, MACHINES).await {
            Err(error) if error.is_not_found() => Ok(Collected {
                items: Vec::new(),
                next: None,
            }),
            other => other,
        }
    }

    pub async fn get_machine(
        &self,
        tenant: &TenantId,
        id: &MachineId,
    ) -> Result<Machine, ApiError> {
        let url = self.http.url(
            Api::Defender,
            &format!("/api/machines/{}", id.as_str()),
            &[],
        );
        self.http
            .json(&ApiRequest::get(Api::Defender, tenant, url).paced(MACHINES))
            .await
    }

    pub async fn logon_users(
        &self,
        tenant: &TenantId,
        id: &MachineId,
    ) -> Result<Vec<LogonUser>, ApiError> {
        let url = self.http.url(
            Api::Defender,
            &format!("/api/machines/{}/logonusers", id.as_str()),
            &[],
        );
        Ok(self
            .http
            .json::<ValueList<LogonUser>>(
                &ApiRequest::get(Api::Defender, tenant, url).paced(MACHINES),
            )
            .await?
            .value)
    }

    async fn collect<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &TenantId,
        from: ListPosition,
        max: usize,
        buckets: &'static [Bucket],
    ) -> Result<Collected<T>, ApiError> {
        self.http
            .collect(Api::Defender, from, max, |page| {
                ApiRequest::get(Api::Defender, tenant, page).paced(buckets)
            })
            .await
    }

    /// Checks that a list position belongs to this API before a tool resumes from it.
    pub fn check_position(&self, position: &ListPosition) -> Result<(), ApiError> {
        self.http.ensure_own_origin(Api::Defender, &position.page)
    }
}

/// `{"value": [...]}` of endpoints that answer in one page.
#[derive(Deserialize)]
struct ValueList<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
}

/// `{"value": "..."}` of endpoints that answer with one string (download links).
#[derive(Deserialize)]
struct ValueString {
    value: String,
}

/// Defender reports some counts as numbers and others as strings of digits.
fn number_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(i64),
        Text(String),
    }
    Ok(match Option::<Either>::deserialize(deserializer)? {
        Some(Either::Number(n)) => Some(n),
        Some(Either::Text(text)) => text.trim().parse().ok(),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids_are_forty_hex_characters() {
        let id = MachineId::try_from("1E5BC9D7E413DDD7902C2932E418702B84D0CC07".to_string())
            .expect("valid");
        assert_eq!(id.as_str(), "1e5bc9d7e413ddd7902c2932e418702b84d0cc07");
        let error =
            MachineId::try_from("ws-fin-014".to_string()).expect_err("a host name is not an id");
        assert!(error.to_string().contains("40 hexadecimal"));
    }

    /// get-machines.md "Response example" fields: `version` and `osBuild`, no `osVersion`.
    #[test]
    fn machines_read_the_documented_version_fields() {
        let machine: Machine = serde_json::from_value(serde_json::json!({
            "id": "1e5bc9d7e413ddd7902c2932e418702b84d0cc07",
            "computerDnsName": "mymachine1.contoso.com",
            "osPlatform": "Windows10",
            "version": "1709",
            "osProcessor": "x64",
            "osBuild": 18209
        }))
        .expect("machine");
        assert_eq!(machine.os_version.as_deref(), Some("1709"));
        assert_eq!(machine.os_build, Some(18209));
    }

    #[test]
    fn machine_statuses_are_read_in_either_documented_spelling() {
        for spelling in ["Onboarded", "onboarded"] {
            let machine: Machine = serde_json::from_value(serde_json::json!({
                "id": "1e5bc9d7e413ddd7902c2932e418702b84d0cc07",
                "onboardingStatus": spelling,
                "healthStatus": "Inactive",
                "lastSeen": "2018-08-02T14:55:03.7791856Z"
            }))
            .expect("machine");
            let status = machine.onboarding_status.expect("read");
            assert!(status.is(&OnboardingStatus::Onboarded), "{spelling}");
            assert_eq!(status.as_str(), spelling, "kept as Defender wrote it");
            assert!(
                machine
                    .health_status
                    .expect("read")
                    .is(&HealthStatus::Inactive)
            );
            assert_eq!(
                machine.last_seen,
                Some(time::macros::datetime!(2018-08-02 14:55:03.7791856 UTC))
            );
        }
    }
}
