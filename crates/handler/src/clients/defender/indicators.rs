//! Custom threat indicators (`/api/indicators`): submit one, import many, list, delete, and the
//! value rules Defender applies, checked before anything is sent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefenderClient, ValueList};
use crate::clients::ids::{NumericId, NumericIdKind};
use crate::clients::odata;
use crate::outbound::{Api, ApiError, ApiRequest, Bucket, Collected, ListPosition, Replay};
use crate::tenants::TenantId;

/// Most indicators one import call takes (Defender's documented batch size).
pub const IMPORT_BATCH: usize = 500;

/// What kind of value an indicator matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum IndicatorType {
    /// SHA-1 of a file (40 hex characters).
    FileSha1,
    /// SHA-256 of a file (64 hex characters).
    FileSha256,
    /// MD5 of a file (32 hex characters).
    FileMd5,
    /// A public IPv4 or IPv6 address (no ranges).
    IpAddress,
    /// A full http(s) URL.
    Url,
    /// A domain name such as evil.example.com (no scheme, no path).
    DomainName,
    /// The SHA-1 thumbprint of a signing certificate (40 hex characters).
    CertificateThumbprint,
}

impl IndicatorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FileSha1 => "FileSha1",
            Self::FileSha256 => "FileSha256",
            Self::FileMd5 => "FileMd5",
            Self::IpAddress => "IpAddress",
            Self::Url => "Url",
            Self::DomainName => "DomainName",
            Self::CertificateThumbprint => "CertificateThumbprint",
        }
    }

    fn is_file_or_certificate(self) -> bool {
        matches!(
            self,
            Self::FileSha1 | Self::FileSha256 | Self::FileMd5 | Self::CertificateThumbprint
        )
    }

    /// The value as Defender stores it, or why Defender would refuse it (or why it must not be
    /// blocked: an indicator on a private address would act on the customer's own network).
    pub fn check(self, value: &str) -> Result<String, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("the value is empty".into());
        }
        match self {
            Self::FileSha1 | Self::CertificateThumbprint => hex(value, 40, "SHA-1"),
            Self::FileSha256 => hex(value, 64, "SHA-256"),
            Self::FileMd5 => hex(value, 32, "MD5"),
            Self::IpAddress => public_ip(value),
            Self::Url => url(value),
            Self::DomainName => domain(value).map(|()| value.to_ascii_lowercase()),
        }
    }
}

fn hex(value: &str, length: usize, name: &str) -> Result<String, String> {
    if value.len() != length {
        return Err(format!(
            "a {name} is {length} hexadecimal characters; this is {} characters long",
            value.chars().count()
        ));
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "a {name} is hexadecimal; '{bad}' is not a hexadecimal digit"
        ));
    }
    Ok(value.to_ascii_lowercase())
}

fn public_ip(value: &str) -> Result<String, String> {
    if value.contains('/') {
        return Err(
            "CIDR ranges are not accepted by Defender indicators; give single addresses".into(),
        );
    }
    let address: IpAddr = value
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    let refused = match address {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_v4(v4),
            None => private_v6(v6),
        },
    };
    match refused {
        Some(range) => Err(format!(
            "{address} is {range}: an indicator on it would act on internal traffic, and Defender only matches public addresses"
        )),
        None => Ok(address.to_string()),
    }
}

fn private_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_private() {
        Some("a private address (RFC 1918: 10/8, 172.16/12, 192.168/16)")
    } else if ip.is_loopback() {
        Some("a loopback address (127/8)")
    } else if ip.is_link_local() {
        Some("a link-local address (169.254/16)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address (100.64/10)")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 || a >= 240 {
        Some("not a unicast host address")
    } else {
        None
    }
}

fn private_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("the loopback address (::1)")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("not a unicast host address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address (fe80::/10)")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique local (private) address (fc00::/7)")
    } else {
        None
    }
}

fn url(value: &str) -> Result<String, String> {
    let parsed = url::Url::parse(value).map_err(|error| {
        format!("not a URL ({error}); give a full URL such as https://evil.example.com/path")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme is {}; only http and https URLs can be indicators",
            parsed.scheme()
        ));
    }
    match parsed.host() {
        Some(url::Host::Domain(host)) => domain(host)?,
        Some(url::Host::Ipv4(v4)) => public_ip(&v4.to_string()).map(|_| ())?,
        Some(url::Host::Ipv6(v6)) => public_ip(&v6.to_string()).map(|_| ())?,
        None => return Err("the URL has no host".into()),
    }
    Ok(value.to_string())
}

fn domain(value: &str) -> Result<(), String> {
    if value.contains("://") || value.contains('/') {
        return Err("a domain name has no scheme or path; use the Url type for full URLs".into());
    }
    if value.starts_with("*.") {
        return Err(
            "wildcards are not accepted; give the domain itself (it also matches its subdomains)"
                .into(),
        );
    }
    if value.len() > 253 {
        return Err(format!(
            "a domain name is at most 253 characters; this is {}",
            value.len()
        ));
    }
    let labels: Vec<&str> = value.trim_end_matches('.').split('.').collect();
    if labels.len() < 2 {
        return Err("a domain name has at least two labels, such as example.com".into());
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(format!(
                "'{label}' is not a valid label: letters, digits and hyphens, 1-63 characters, not starting or ending with a hyphen"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("this looks like an IP address; use the IpAddress type".into());
    }
    Ok(())
}

/// What Defender does when an indicator matches: the action types ti-indicator.md, "Indicator
/// Types", lists as supported ("Allowed, Audit, Block, BlockAndRemediate, Warn").
///
/// The pages disagree on two more: post-ti-indicator.md still lists `Alert` and `AlertAndBlock`,
/// but ti-indicator.md, the newer guidance, says "The prior response actions (AlertAndBlock, and
/// Alert) will be supported until January 2022". We follow ti-indicator.md: they are refused with
/// a message naming the replacements (Block or Audit, with an alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum IndicatorAction {
    /// Block (network indicators: the connection; certificates: signed files).
    Block,
    /// Block the file and remediate it where found (file and certificate indicators only).
    BlockAndRemediate,
    /// Warn the user, who may bypass (Defender for Cloud Apps only, per ti-indicator.md).
    Warn,
    /// Audit: record matches and raise an alert (generate_alert must be true).
    Audit,
    /// Allow: exclude from detection.
    Allowed,
}

impl<'de> Deserialize<'de> for IndicatorAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or_else(|| serde::de::Error::custom(Self::unknown(&text)))
    }
}

impl IndicatorAction {
    pub const ALL: [Self; 5] = [
        Self::Block,
        Self::BlockAndRemediate,
        Self::Warn,
        Self::Audit,
        Self::Allowed,
    ];

    fn unknown(text: &str) -> String {
        let accepted = Self::ALL.map(Self::as_str).join(", ");
        match text {
            "Alert" | "AlertAndBlock" => format!(
                "indicator action '{text}' was retired by Microsoft in January 2022 (ti-indicator.md); use one of \
                 {accepted}: Block with generate_alert true for AlertAndBlock, Audit (which always alerts) for Alert"
            ),
            _ => format!("unknown indicator action '{text}': expected one of {accepted}"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "Block",
            Self::BlockAndRemediate => "BlockAndRemediate",
            Self::Warn => "Warn",
            Self::Audit => "Audit",
            Self::Allowed => "Allowed",
        }
    }

    /// Why this action cannot apply to this type, if it cannot.
    pub fn refuses(self, indicator_type: IndicatorType) -> Option<String> {
        (self == Self::BlockAndRemediate && !indicator_type.is_file_or_certificate()).then(|| {
            format!(
                "action BlockAndRemediate applies to file hashes and certificates, not {}",
                indicator_type.as_str()
            )
        })
    }

    /// Why this action cannot go with this `generateAlert`, if it cannot. post-ti-indicator.md,
    /// "Request body", action: "The `GenerateAlert` parameter must be set to `TRUE` when
    /// creating an action with `Audit`."
    pub fn refuses_alert_setting(self, generate_alert: bool) -> Option<&'static str> {
        (self == Self::Audit && !generate_alert).then_some(
            "action Audit requires generate_alert true (Defender refuses Audit without an alert)",
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
}

/// An indicator to submit (Defender's request shape).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewIndicator {
    pub indicator_value: String,
    pub indicator_type: IndicatorType,
    pub action: IndicatorAction,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub generate_alert: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended_actions: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rbac_group_names: Vec<String>,
}

/// An indicator as Defender reports it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    pub id: String,
    pub indicator_value: String,
    pub indicator_type: String,
    pub action: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub expiration_time: Option<String>,
    pub creation_time_date_time_utc: Option<String>,
    pub created_by: Option<String>,
    pub generate_alert: Option<bool>,
    #[serde(default)]
    pub rbac_group_names: Vec<String>,
}

/// One row of an import answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    pub id: Option<String>,
    pub indicator: Option<String>,
    pub is_failed: bool,
    pub failure_reason: Option<String>,
}

/// An indicator id (Defender numbers them).
pub type IndicatorId = NumericId<IndicatorIdKind>;

pub struct IndicatorIdKind;

impl NumericIdKind for IndicatorIdKind {
    const WHAT: &'static str = "an indicator id";
    const SHOWN_BY: &'static str = "mde_list_indicators";
}

#[derive(Debug, Clone, Default)]
pub struct IndicatorFilter {
    pub indicator_type: Option<IndicatorType>,
    pub action: Option<IndicatorAction>,
    pub value: Option<String>,
    pub title_starts_with: Option<String>,
}

impl IndicatorFilter {
    fn odata(&self) -> Option<String> {
        let mut clauses = Vec::new();
        if let Some(kind) = self.indicator_type {
            clauses.push(format!("indicatorType eq {}", odata::string(kind.as_str())));
        }
        if let Some(action) = self.action {
            clauses.push(format!("action eq {}", odata::string(action.as_str())));
        }
        if let Some(value) = &self.value {
            clauses.push(format!("indicatorValue eq {}", odata::string(value)));
        }
        // get-ti-indicators-collection.md lists title as filterable; the only function the
        // pages show is startswith (exposed-apis-odata-samples.md), never contains.
        if let Some(title) = &self.title_starts_with {
            clauses.push(format!("startswith(title, {})", odata::string(title)));
        }
        (!clauses.is_empty()).then(|| clauses.join(" and "))
    }
}

impl DefenderClient {
    pub fn indicators_start(&self, filter: &IndicatorFilter) -> ListPosition {
        let filter = filter.odata();
        self.list_start("/api/indicators", filter.as_deref())
    }

    pub async fn list_indicators(
        &self,
        tenant: &TenantId,
        from: ListPosition,
        max: usize,
    ) -> Result<Collected<Indicator>, ApiError> {
        self.collect(tenant, from, max, &[Bucket::DefenderGeneral])
            .await
    }

    /// Submit-or-update: Defender keys indicators by value and type, so sending one twice
    /// updates it rather than making a second.
    pub async fn submit_indicator(
        &self,
        tenant: &TenantId,
        indicator: &NewIndicator,
    ) -> Result<Indicator, ApiError> {
        let url = self.http.url(Api::Defender, "/api/indicators", &[]);
        self.http
            .json(&ApiRequest::send_json(
                Api::Defender,
                tenant,
                Method::POST,
                url,
                indicator,
                Replay::Safe,
            ))
            .await
    }

    /// Imports up to [`IMPORT_BATCH`] indicators in one call (also submit-or-update per value).
    pub async fn import_indicators(
        &self,
        tenant: &TenantId,
        batch: &[NewIndicator],
    ) -> Result<Vec<ImportResult>, ApiError> {
        let url = self.http.url(Api::Defender, "/api/indicators/import", &[]);
        let body = serde_json::json!({ "Indicators": batch });
        let request = ApiRequest::send_json(
            Api::Defender,
            tenant,
            Method::POST,
            url,
            &body,
            Replay::Safe,
        )
        .paced(&[Bucket::DefenderIndicatorImport]);
        Ok(self
            .http
            .json::<ValueList<ImportResult>>(&request)
            .await?
            .value)
    }

    pub async fn delete_indicator(
        &self,
        tenant: &TenantId,
        id: &IndicatorId,
    ) -> Result<(), ApiError> {
        self.delete(tenant, &format!("/api/indicators/{}", id.as_str()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_checked_for_length_and_hex() {
        assert_eq!(
            IndicatorType::FileSha256.check(&"AB".repeat(32)),
            Ok("ab".repeat(32))
        );
        assert!(
            IndicatorType::FileSha1
                .check("abc")
                .unwrap_err()
                .contains("40 hexadecimal characters")
        );
        assert!(
            IndicatorType::FileMd5
                .check(&"g".repeat(32))
                .unwrap_err()
                .contains("'g' is not a hexadecimal digit")
        );
        assert!(
            IndicatorType::CertificateThumbprint
                .check(&"a".repeat(64))
                .unwrap_err()
                .contains("SHA-1")
        );
    }

    #[test]
    fn private_and_special_addresses_are_refused_with_the_range() {
        for (address, range) in [
            ("10.1.2.3", "RFC 1918"),
            ("172.20.0.1", "RFC 1918"),
            ("192.168.1.1", "RFC 1918"),
            ("127.0.0.1", "loopback"),
            ("169.254.10.1", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fd00::1", "unique local"),
            ("::ffff:10.0.0.1", "RFC 1918"),
            ("224.0.0.1", "unicast"),
        ] {
            let reason = IndicatorType::IpAddress.check(address).expect_err(address);
            assert!(reason.contains(range), "{address}: {reason}");
        }
        assert!(
            IndicatorType::IpAddress
                .check("10.0.0.0/8")
                .unwrap_err()
                .contains("CIDR")
        );
        assert_eq!(
            IndicatorType::IpAddress.check("203.0.113.50"),
            Ok("203.0.113.50".into())
        );
        assert_eq!(
            IndicatorType::IpAddress.check("2001:4860:4860::8888"),
            Ok("2001:4860:4860::8888".into())
        );
    }

    #[test]
    fn urls_and_domains_are_checked_for_syntax() {
        assert!(
            IndicatorType::Url
                .check("https://evil.example.com/payload")
                .is_ok()
        );
        assert!(
            IndicatorType::Url
                .check("ftp://evil.example.com")
                .unwrap_err()
                .contains("scheme")
        );
        assert!(
            IndicatorType::Url
                .check("evil.example.com")
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(
            IndicatorType::Url
                .check("http://10.0.0.5/x")
                .unwrap_err()
                .contains("RFC 1918")
        );
        assert_eq!(
            IndicatorType::DomainName.check("Evil.Example.com"),
            Ok("evil.example.com".into())
        );
        assert!(
            IndicatorType::DomainName
                .check("https://evil.example.com")
                .unwrap_err()
                .contains("no scheme")
        );
        assert!(
            IndicatorType::DomainName
                .check("localhost")
                .unwrap_err()
                .contains("two labels")
        );
        assert!(
            IndicatorType::DomainName
                .check("bad_label.example.com")
                .unwrap_err()
                .contains("bad_label")
        );
        assert!(
            IndicatorType::DomainName
                .check("*.example.com")
                .unwrap_err()
                .contains("wildcards")
        );
    }

    #[test]
    fn remediation_applies_only_to_files_and_certificates() {
        assert!(
            IndicatorAction::BlockAndRemediate
                .refuses(IndicatorType::DomainName)
                .is_some()
        );
        assert!(
            IndicatorAction::BlockAndRemediate
                .refuses(IndicatorType::FileSha256)
                .is_none()
        );
        assert!(
            IndicatorAction::Block
                .refuses(IndicatorType::IpAddress)
                .is_none()
        );
    }

    #[test]
    fn retired_actions_are_refused_naming_the_supported_ones() {
        for retired in ["Alert", "AlertAndBlock"] {
            let error = serde_json::from_value::<IndicatorAction>(serde_json::json!(retired))
                .expect_err("retired in January 2022");
            let text = error.to_string();
            assert!(text.contains("January 2022"), "{text}");
            assert!(
                text.contains("Block, BlockAndRemediate, Warn, Audit, Allowed"),
                "{text}"
            );
        }
        let audit: IndicatorAction =
            serde_json::from_value(serde_json::json!("Audit")).expect("supported");
        assert_eq!(audit, IndicatorAction::Audit);
    }

    #[test]
    fn audit_requires_an_alert() {
        assert!(
            IndicatorAction::Audit
                .refuses_alert_setting(false)
                .is_some()
        );
        assert!(IndicatorAction::Audit.refuses_alert_setting(true).is_none());
        assert!(
            IndicatorAction::Allowed
                .refuses_alert_setting(false)
                .is_none()
        );
    }

    #[test]
    fn title_filters_use_startswith() {
        let filter = IndicatorFilter {
            title_starts_with: Some("Emotet".into()),
            ..IndicatorFilter::default()
        };
        assert_eq!(
            filter.odata().as_deref(),
            Some("startswith(title, 'Emotet')")
        );
    }
}
