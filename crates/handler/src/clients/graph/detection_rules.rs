//! Custom detection rules through Graph beta (`/beta/security/rules/detectionRules`).
//!
//! The model is the one of `microsoft.graph.security.detectionRule` in the beta CSDL
//! (`crates/sandbox/definitions/msgraph-metadata/beta/security.xml`): `status`,
//! `schedule.frequency`, `alertTemplate.tactics`/`entityMappings` and
//! `detectionAction.automatedActions`. The properties that schema marks "Deprecated … removed
//! from this resource on 2026-10-01" (`isEnabled`, `schedule.period`, `category`,
//! `mitreTechniques`, `impactedAssets`, `responseActions`, `lastRunDetails`) are never sent; they
//! are still read when a tenant answers with them, as fallbacks only.

use std::fmt;

use reqwest::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::GraphClient;
use crate::clients::Open;
use crate::outbound::{Api, ApiError, ApiRequest, Collected, ListPosition, Replay};
use crate::tenants::TenantId;

const RULES: &str = "/beta/security/rules/detectionRules";

/// Longest rule id accepted from a caller. Graph types the key as `Edm.String` and documents no
/// length; this bound only keeps absurd input out of URLs and logs.
const RULE_ID_MAX: usize = 256;

/// A detection rule id. `detectionRule` derives from `graph.entity`, whose key `id` is an
/// `Edm.String`; the create page calls it "the client-provided unique identifier of the rule"
/// (its example: `office-encoded-powershell`), and older rules carry digits (`7506`). So the id
/// is opaque text: any printable characters, percent-encoded when it becomes a path segment.
#[derive(Clone, PartialEq, Eq, JsonSchema)]
#[schemars(with = "String")]
pub struct RuleId(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a detection rule id: expected the id mde_list_detection_rules shows (1-{RULE_ID_MAX} characters, no control characters)"
)]
pub struct InvalidRuleId(String);

impl RuleId {
    pub fn parse(text: &str) -> Result<Self, InvalidRuleId> {
        let trimmed = text.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > RULE_ID_MAX
            || trimmed.chars().any(char::is_control)
        {
            return Err(InvalidRuleId(trimmed.chars().take(64).collect()));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one path segment: everything but RFC 3986 unreserved characters is
    /// percent-encoded, so `/`, `?`, `#` or `%` in an id can never change the URL's meaning.
    fn path_segment(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for byte in self.0.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }
}

impl fmt::Debug for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `detectionRuleStatus` (beta CSDL). Read as [`Open`]: a member added later is kept as Graph
/// spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RuleStatus {
    Enabled,
    Disabled,
    /// The service turned the rule off (for example after repeated failures).
    AutoDisabled,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionRule {
    pub id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub status: Option<Open<RuleStatus>>,
    pub created_by: Option<String>,
    pub created_date_time: Option<String>,
    pub last_modified_by: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub query_condition: Option<QueryCondition>,
    pub schedule: Option<Schedule>,
    pub detection_action: Option<DetectionAction>,
    /// Deprecated (removed 2026-10-01): read only when `status` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    /// Deprecated (removed 2026-10-01): kept when a tenant still reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_details: Option<LastRunDetails>,
}

impl DetectionRule {
    /// Whether the rule runs: `status`, or the deprecated `isEnabled` of an older answer.
    pub fn enabled(&self) -> Option<bool> {
        match &self.status {
            Some(status) => Some(status.is(&RuleStatus::Enabled)),
            None => self.is_enabled,
        }
    }

    /// `enabled`, `disabled`, `autoDisabled`, …; from `isEnabled` when only that is reported.
    pub fn status_name(&self) -> Option<String> {
        match &self.status {
            Some(status) => Some(status.as_str().to_string()),
            None => self
                .is_enabled
                .map(|on| if on { "enabled" } else { "disabled" }.to_string()),
        }
    }

    /// `schedule.frequency` (ISO 8601), or the deprecated `schedule.period` of an older answer.
    pub fn frequency(&self) -> Option<String> {
        let schedule = self.schedule.as_ref()?;
        schedule.frequency.clone().or_else(|| {
            schedule
                .period
                .as_deref()
                .and_then(frequency_of_period)
                .map(str::to_string)
        })
    }
}

/// The ISO 8601 duration of a deprecated `schedule.period` value (`ruleSchedule.period`: "0, 1H,
/// 3H, 12H, or 24H"). `0` (continuous) has no documented `frequency` equivalent.
pub fn frequency_of_period(period: &str) -> Option<&'static str> {
    match period {
        "1H" => Some("PT1H"),
        "3H" => Some("PT3H"),
        "12H" => Some("PT12H"),
        "24H" => Some("P1D"),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryCondition {
    pub query_text: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// How often the rule runs, an ISO 8601 duration (PT1H, PT3H, PT12H, P1D).
    pub frequency: Option<String>,
    /// Deprecated (removed 2026-10-01): 0, 1H, 3H, 12H or 24H.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastRunDetails {
    pub last_run_date_time: Option<String>,
    pub status: Option<String>,
    pub failure_reason: Option<String>,
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionAction {
    pub alert_template: Option<AlertTemplate>,
    /// Automated actions (`automatedActionSet`: isolate devices, collect investigation packages,
    /// disable users, …) the rule takes on a match, each naming the query column it acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated_actions: Option<Map<String, Value>>,
    /// Deprecated (removed 2026-10-01) predecessor of `automatedActions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_actions: Vec<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertTemplate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub recommended_actions: Option<String>,
    /// MITRE ATT&CK tactics with their techniques.
    #[serde(default)]
    pub tactics: Vec<MitreTactic>,
    /// Which query columns become the alert's entities (hosts, accounts, files, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_mappings: Option<Map<String, Value>>,
    /// Deprecated (removed 2026-10-01) predecessor of `tactics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Deprecated (removed 2026-10-01) predecessor of `tactics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre_techniques: Vec<String>,
}

/// `mitreTactic`: a tactic (`Execution`) and the techniques observed within it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MitreTactic {
    pub tactic: String,
    #[serde(default)]
    pub techniques: Vec<MitreTechnique>,
}

/// `mitreTechnique`: `technique` is a technique id (`T1059`), `subTechniques` its
/// sub-technique ids (`T1059.001`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MitreTechnique {
    pub technique: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_techniques: Vec<String>,
}

impl MitreTactic {
    /// One tactic holding `ids` (`T1059`, `T1059.001`), each sub-technique under its technique as
    /// the CSDL describes `mitreTechnique` ("technique … for example, T1059"; "subTechniques …
    /// for example, T1059.001").
    pub fn with_techniques(tactic: &str, ids: &[String]) -> Self {
        let mut techniques: Vec<MitreTechnique> = Vec::new();
        for id in ids {
            let (technique, sub) = match id.split_once('.') {
                Some((main, _)) => (main.to_string(), Some(id.clone())),
                None => (id.clone(), None),
            };
            let entry = match techniques.iter_mut().position(|t| t.technique == technique) {
                Some(index) => &mut techniques[index],
                None => {
                    techniques.push(MitreTechnique {
                        technique,
                        sub_techniques: Vec::new(),
                    });
                    techniques.last_mut().expect("just pushed")
                }
            };
            if let Some(sub) = sub
                && !entry.sub_techniques.contains(&sub)
            {
                entry.sub_techniques.push(sub);
            }
        }
        Self {
            tactic: tactic.to_string(),
            techniques,
        }
    }
}

/// The entity mapping every rule created here uses: the row's `DeviceId` column is the alert's
/// host (`entityMappingConfiguration.hosts[hostEntityMapping.deviceIdColumn]`), which is why
/// the create tool asks for queries that return DeviceId.
fn device_entity_mappings() -> Value {
    json!({ "hosts": [{ "deviceIdColumn": "DeviceId" }] })
}

/// A rule to create. Alerts are attached to the device the query row names (`DeviceId`), and
/// the rule takes no automated action.
#[derive(Debug, Clone)]
pub struct NewDetectionRule {
    /// Client-provided id (the create page: "id … Required").
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub status: RuleStatus,
    pub query_text: String,
    /// ISO 8601 duration (`ruleSchedule.frequency`).
    pub frequency: String,
    pub alert_title: String,
    pub alert_description: String,
    pub severity: String,
    pub tactics: Vec<MitreTactic>,
    pub recommended_actions: Option<String>,
}

impl NewDetectionRule {
    /// The body of the create page (ms.date 05/25/2026): required `id`, `displayName`,
    /// `queryCondition`, `schedule`, `status`; no deprecated property.
    fn to_json(&self) -> Value {
        let mut rule = json!({
            "id": self.id,
            "displayName": self.display_name,
            "status": self.status,
            "queryCondition": { "queryText": self.query_text },
            "schedule": { "frequency": self.frequency },
            "detectionAction": {
                "alertTemplate": {
                    "title": self.alert_title,
                    "description": self.alert_description,
                    "severity": self.severity,
                    "recommendedActions": self.recommended_actions,
                    "tactics": self.tactics,
                    "entityMappings": device_entity_mappings(),
                },
            },
        });
        if let Some(description) = &self.description {
            rule["description"] = json!(description);
        }
        rule
    }
}

/// The parts of a rule an update changes; the others stay.
#[derive(Debug, Clone, Default)]
pub struct DetectionRuleChange {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub status: Option<RuleStatus>,
    pub query_text: Option<String>,
    /// ISO 8601 duration (`ruleSchedule.frequency`).
    pub frequency: Option<String>,
    pub alert_title: Option<String>,
    pub alert_description: Option<String>,
    pub severity: Option<String>,
    /// Replaces the alert template's tactics.
    pub tactics: Option<Vec<MitreTactic>>,
    pub recommended_actions: Option<String>,
}

impl DetectionRuleChange {
    pub fn is_empty(&self) -> bool {
        self.to_json().as_object().is_none_or(Map::is_empty)
    }

    fn to_json(&self) -> Value {
        let mut patch = Map::new();
        let set = |object: &mut Map<String, Value>, key: &str, value: Option<Value>| {
            if let Some(value) = value {
                object.insert(key.to_string(), value);
            }
        };
        set(
            &mut patch,
            "displayName",
            self.display_name.clone().map(Value::from),
        );
        set(
            &mut patch,
            "description",
            self.description.clone().map(Value::from),
        );
        set(&mut patch, "status", self.status.map(|s| json!(s)));
        set(
            &mut patch,
            "queryCondition",
            self.query_text.clone().map(|q| json!({ "queryText": q })),
        );
        set(
            &mut patch,
            "schedule",
            self.frequency.clone().map(|f| json!({ "frequency": f })),
        );
        let mut template = Map::new();
        set(
            &mut template,
            "title",
            self.alert_title.clone().map(Value::from),
        );
        set(
            &mut template,
            "description",
            self.alert_description.clone().map(Value::from),
        );
        set(
            &mut template,
            "severity",
            self.severity.clone().map(Value::from),
        );
        set(
            &mut template,
            "tactics",
            self.tactics.as_ref().map(|t| json!(t)),
        );
        set(
            &mut template,
            "recommendedActions",
            self.recommended_actions.clone().map(Value::from),
        );
        if !template.is_empty() {
            patch.insert(
                "detectionAction".into(),
                json!({ "alertTemplate": template }),
            );
        }
        Value::Object(patch)
    }
}

impl GraphClient {
    pub fn detection_rules_start(&self) -> ListPosition {
        ListPosition::start(self.http.url(Api::Graph, RULES, &[]))
    }

    pub async fn list_detection_rules(
        &self,
        tenant: &TenantId,
        from: ListPosition,
        max: usize,
    ) -> Result<Collected<DetectionRule>, ApiError> {
        self.http
            .collect(Api::Graph, from, max, |page| {
                ApiRequest::get(Api::Graph, tenant, page)
            })
            .await
    }

    fn rule_url(&self, id: &RuleId) -> reqwest::Url {
        self.http
            .url(Api::Graph, &format!("{RULES}/{}", id.path_segment()), &[])
    }

    pub async fn get_detection_rule(
        &self,
        tenant: &TenantId,
        id: &RuleId,
    ) -> Result<DetectionRule, ApiError> {
        self.http
            .json(&ApiRequest::get(Api::Graph, tenant, self.rule_url(id)))
            .await
    }

    pub async fn create_detection_rule(
        &self,
        tenant: &TenantId,
        rule: &NewDetectionRule,
    ) -> Result<DetectionRule, ApiError> {
        let url = self.http.url(Api::Graph, RULES, &[]);
        // A resend after a lost answer would meet the id the first attempt created (a 409), not
        // create a second rule; it is still not replayed so the caller sees the lost answer.
        self.http
            .json(&ApiRequest::send_json(
                Api::Graph,
                tenant,
                Method::POST,
                url,
                &rule.to_json(),
                Replay::Unsafe,
            ))
            .await
    }

    pub async fn update_detection_rule(
        &self,
        tenant: &TenantId,
        id: &RuleId,
        change: &DetectionRuleChange,
    ) -> Result<DetectionRule, ApiError> {
        self.http
            .json(&ApiRequest::send_json(
                Api::Graph,
                tenant,
                Method::PATCH,
                self.rule_url(id),
                &change.to_json(),
                Replay::Safe,
            ))
            .await
    }

    pub async fn delete_detection_rule(
        &self,
        tenant: &TenantId,
        id: &RuleId,
    ) -> Result<(), ApiError> {
        self.http
            .send(&ApiRequest::bodiless(
                Api::Graph,
                tenant,
                Method::DELETE,
                self.rule_url(id),
                Replay::Safe,
            ))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_patch_only_what_is_given() {
        let change = DetectionRuleChange {
            status: Some(RuleStatus::Disabled),
            severity: Some("high".into()),
            frequency: Some("P1D".into()),
            ..DetectionRuleChange::default()
        };
        assert_eq!(
            change.to_json(),
            json!({"status": "disabled", "schedule": {"frequency": "P1D"}, "detectionAction": {"alertTemplate": {"severity": "high"}}})
        );
        assert!(DetectionRuleChange::default().is_empty());
    }

    #[test]
    fn a_new_rule_carries_the_required_properties_and_no_deprecated_one() {
        let rule = NewDetectionRule {
            id: "office-encoded-powershell".into(),
            display_name: "Encoded PowerShell".into(),
            description: None,
            status: RuleStatus::Enabled,
            query_text: "DeviceProcessEvents".into(),
            frequency: "PT1H".into(),
            alert_title: "t".into(),
            alert_description: "d".into(),
            severity: "high".into(),
            tactics: vec![MitreTactic::with_techniques(
                "Execution",
                &["T1059.001".into(), "T1059".into(), "T1204".into()],
            )],
            recommended_actions: None,
        }
        .to_json();
        for required in ["id", "displayName", "queryCondition", "schedule", "status"] {
            assert!(rule.get(required).is_some(), "{required}: {rule}");
        }
        let text = rule.to_string();
        for deprecated in [
            "isEnabled",
            "period",
            "category",
            "mitreTechniques",
            "impactedAssets",
            "responseActions",
        ] {
            assert!(!text.contains(deprecated), "{deprecated}: {text}");
        }
        assert_eq!(
            rule["detectionAction"]["alertTemplate"]["tactics"],
            json!([{"tactic": "Execution", "techniques": [
                {"technique": "T1059", "subTechniques": ["T1059.001"]},
                {"technique": "T1204"}
            ]}])
        );
        assert_eq!(
            rule["detectionAction"]["alertTemplate"]["entityMappings"],
            json!({"hosts": [{"deviceIdColumn": "DeviceId"}]})
        );
    }

    #[test]
    fn rule_ids_are_opaque_strings_kept_inside_one_path_segment() {
        let id = RuleId::parse(" office-encoded-powershell ").expect("valid");
        assert_eq!(id.as_str(), "office-encoded-powershell");
        assert_eq!(id.path_segment(), "office-encoded-powershell");
        assert_eq!(RuleId::parse("7506").expect("valid").path_segment(), "7506");
        assert_eq!(
            RuleId::parse("a/../b?c#d%").expect("valid").path_segment(),
            "a%2F..%2Fb%3Fc%23d%25"
        );
        assert!(RuleId::parse("").is_err());
        assert!(RuleId::parse("a\nb").is_err());
        assert!(RuleId::parse(&"x".repeat(RULE_ID_MAX + 1)).is_err());
    }

    #[test]
    fn status_keeps_members_added_later_and_deprecated_fields_are_fallbacks() {
        let rule: DetectionRule = serde_json::from_value(json!({
            "id": "r", "status": "autoDisabled", "schedule": {"frequency": "PT3H"}
        }))
        .expect("rule");
        assert_eq!(rule.enabled(), Some(false));
        assert_eq!(rule.status_name().as_deref(), Some("autoDisabled"));
        assert_eq!(rule.frequency().as_deref(), Some("PT3H"));
        let newer: DetectionRule =
            serde_json::from_value(json!({"id": "r", "status": "paused"})).expect("rule");
        let status = newer.status.expect("read");
        assert_eq!((status.known(), status.as_str()), (None, "paused"));
        let older: DetectionRule = serde_json::from_value(json!({
            "id": "7506", "isEnabled": true, "schedule": {"period": "24H"}
        }))
        .expect("rule");
        assert_eq!(older.enabled(), Some(true));
        assert_eq!(older.frequency().as_deref(), Some("P1D"));
    }
}
