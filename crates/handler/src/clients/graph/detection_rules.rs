//! Custom detection rules through Graph beta (`/beta/security/rules/detectionRules`).

use reqwest::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::GraphClient;
use crate::clients::ids::{NumericId, NumericIdKind};
use crate::outbound::{Api, ApiError, ApiRequest, Collected, ListPosition, Replay};
use crate::tenants::TenantId;

const RULES: &str = "/beta/security/rules/detectionRules";

/// A detection rule id (Graph numbers rules).
pub type RuleId = NumericId<RuleIdKind>;

pub struct RuleIdKind;

impl NumericIdKind for RuleIdKind {
    const WHAT: &'static str = "a detection rule id";
    const SHOWN_BY: &'static str = "mde_list_detection_rules";
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionRule {
    pub id: String,
    pub display_name: Option<String>,
    pub is_enabled: Option<bool>,
    pub created_by: Option<String>,
    pub created_date_time: Option<String>,
    pub last_modified_by: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub query_condition: Option<QueryCondition>,
    pub schedule: Option<Schedule>,
    pub last_run_details: Option<LastRunDetails>,
    pub detection_action: Option<DetectionAction>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryCondition {
    pub query_text: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// 0 (near real time), 1H, 3H, 12H or 24H.
    pub period: Option<String>,
    pub next_run_date_time: Option<String>,
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
    /// Automatic response actions (isolate, collect package, ...) the rule takes on a match.
    #[serde(default)]
    pub response_actions: Vec<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertTemplate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub category: Option<String>,
    pub recommended_actions: Option<String>,
    #[serde(default)]
    pub mitre_techniques: Vec<String>,
}

/// A rule to create. Alerts are attached to the device the query row names (`DeviceId`), and
/// the rule takes no automatic response action.
#[derive(Debug, Clone)]
pub struct NewDetectionRule {
    pub display_name: String,
    pub enabled: bool,
    pub query_text: String,
    pub period: String,
    pub alert_title: String,
    pub alert_description: String,
    pub severity: String,
    pub category: String,
    pub recommended_actions: Option<String>,
    pub mitre_techniques: Vec<String>,
}

impl NewDetectionRule {
    fn to_json(&self) -> Value {
        json!({
            "displayName": self.display_name,
            "isEnabled": self.enabled,
            "queryCondition": { "queryText": self.query_text },
            "schedule": { "period": self.period },
            "detectionAction": {
                "alertTemplate": {
                    "title": self.alert_title,
                    "description": self.alert_description,
                    "severity": self.severity,
                    "category": self.category,
                    "recommendedActions": self.recommended_actions,
                    "mitreTechniques": self.mitre_techniques,
                    "impactedAssets": [{ "@odata.type": "#microsoft.graph.security.impactedDeviceAsset", "identifier": "deviceId" }],
                },
                "organizationalScope": null,
                "responseActions": [],
            },
        })
    }
}

/// The parts of a rule an update changes; the others stay.
#[derive(Debug, Clone, Default)]
pub struct DetectionRuleChange {
    pub display_name: Option<String>,
    pub enabled: Option<bool>,
    pub query_text: Option<String>,
    pub period: Option<String>,
    pub alert_title: Option<String>,
    pub alert_description: Option<String>,
    pub severity: Option<String>,
    pub category: Option<String>,
    pub recommended_actions: Option<String>,
}

impl DetectionRuleChange {
    pub fn is_empty(&self) -> bool {
        self.to_json()
            .as_object()
            .is_none_or(serde_json::Map::is_empty)
    }

    fn to_json(&self) -> Value {
        let mut patch = serde_json::Map::new();
        let set = |object: &mut serde_json::Map<String, Value>, key: &str, value: Option<Value>| {
            if let Some(value) = value {
                object.insert(key.to_string(), value);
            }
        };
        set(
            &mut patch,
            "displayName",
            self.display_name.clone().map(Value::from),
        );
        set(&mut patch, "isEnabled", self.enabled.map(Value::from));
        set(
            &mut patch,
            "queryCondition",
            self.query_text.clone().map(|q| json!({ "queryText": q })),
        );
        set(
            &mut patch,
            "schedule",
            self.period.clone().map(|p| json!({ "period": p })),
        );
        let mut template = serde_json::Map::new();
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
            "category",
            self.category.clone().map(Value::from),
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

    pub async fn get_detection_rule(
        &self,
        tenant: &TenantId,
        id: &RuleId,
    ) -> Result<DetectionRule, ApiError> {
        let url = self.http.url(Api::Graph, &format!("{RULES}/{id}"), &[]);
        self.http
            .json(&ApiRequest::get(Api::Graph, tenant, url))
            .await
    }

    pub async fn create_detection_rule(
        &self,
        tenant: &TenantId,
        rule: &NewDetectionRule,
    ) -> Result<DetectionRule, ApiError> {
        let url = self.http.url(Api::Graph, RULES, &[]);
        // A resend could create the rule twice.
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
        let url = self.http.url(Api::Graph, &format!("{RULES}/{id}"), &[]);
        self.http
            .json(&ApiRequest::send_json(
                Api::Graph,
                tenant,
                Method::PATCH,
                url,
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
        let url = self.http.url(Api::Graph, &format!("{RULES}/{id}"), &[]);
        self.http
            .send(&ApiRequest::bodiless(
                Api::Graph,
                tenant,
                Method::DELETE,
                url,
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
            enabled: Some(false),
            severity: Some("high".into()),
            ..DetectionRuleChange::default()
        };
        assert_eq!(
            change.to_json(),
            json!({"isEnabled": false, "detectionAction": {"alertTemplate": {"severity": "high"}}})
        );
        assert!(DetectionRuleChange::default().is_empty());
    }
}
