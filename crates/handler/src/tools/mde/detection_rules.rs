//! Custom detection rules (Graph beta): list, read, create, update, delete. Reads only read.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::clients::graph::{DetectionRule, DetectionRuleChange, NewDetectionRule, RuleId};
use crate::kql_guard;
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::cursor;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListRules)
        .tool(GetRule)
        .tool(CreateRule)
        .tool(UpdateRule)
        .tool(DeleteRule)
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
const MAX_TEXT_CHARS: usize = 4000;

/// How often a rule runs.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
enum Period {
    /// Near real time (continuously).
    #[serde(rename = "0")]
    NearRealTime,
    #[serde(rename = "1H")]
    Hourly,
    #[serde(rename = "3H")]
    Every3Hours,
    #[serde(rename = "12H")]
    Every12Hours,
    #[serde(rename = "24H")]
    Daily,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Self::NearRealTime => "0",
            Self::Hourly => "1H",
            Self::Every3Hours => "3H",
            Self::Every12Hours => "12H",
            Self::Daily => "24H",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum RuleSeverity {
    Informational,
    Low,
    Medium,
    High,
}

impl RuleSeverity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "informational",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

fn query(text: &str) -> Result<String, ToolError> {
    Ok(kql_guard::check_query(text)?.to_string())
}

fn techniques(list: &[String]) -> Result<Vec<String>, ToolError> {
    list.iter()
        .map(|t| {
            let t = t.trim().to_ascii_uppercase();
            let valid = t.strip_prefix('T').is_some_and(|rest| {
                let (main, sub) = rest
                    .split_once('.')
                    .map_or((rest, None), |(m, s)| (m, Some(s)));
                main.len() == 4
                    && main.bytes().all(|b| b.is_ascii_digit())
                    && sub.is_none_or(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
            });
            if valid {
                Ok(t)
            } else {
                Err(ToolError::invalid(format!(
                    "'{t}' is not a MITRE ATT&CK technique id such as T1059 or T1059.001"
                )))
            }
        })
        .collect()
}

#[derive(Serialize, JsonSchema)]
struct RuleSummary {
    id: String,
    display_name: Option<String>,
    enabled: Option<bool>,
    /// 0 (near real time), 1H, 3H, 12H or 24H.
    period: Option<String>,
    severity: Option<String>,
    last_run: Option<String>,
    last_run_status: Option<String>,
    query: Option<String>,
}

impl From<DetectionRule> for RuleSummary {
    fn from(rule: DetectionRule) -> Self {
        let template = rule
            .detection_action
            .as_ref()
            .and_then(|a| a.alert_template.as_ref());
        Self {
            severity: template.and_then(|t| t.severity.clone()),
            period: rule.schedule.as_ref().and_then(|s| s.period.clone()),
            last_run: rule
                .last_run_details
                .as_ref()
                .and_then(|r| r.last_run_date_time.clone()),
            last_run_status: rule
                .last_run_details
                .as_ref()
                .and_then(|r| r.status.clone()),
            query: rule.query_condition.and_then(|q| q.query_text),
            id: rule.id,
            display_name: rule.display_name,
            enabled: rule.is_enabled,
        }
    }
}

struct ListRules;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// Most rules to return in this call (1-500, default 50). More are reached with `cursor`.
    limit: Option<u32>,
    /// `next_cursor` from a previous call, to continue that listing.
    cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ListOutput {
    tenant_id: TenantId,
    rules: Vec<RuleSummary>,
    /// Present when more rules exist: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListOutput {
    fn summary(&self) -> String {
        let enabled = self
            .rules
            .iter()
            .filter(|r| r.enabled == Some(true))
            .count();
        let more = if self.next_cursor.is_some() {
            "; more exist (use next_cursor)"
        } else {
            ""
        };
        format!(
            "{} custom detection rules in tenant {} ({enabled} enabled){more}",
            self.rules.len(),
            self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListRules {
    type Params = ListParams;
    type Output = ListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_list_detection_rules",
            title: "List custom detection rules",
            description: "Lists a tenant's Defender XDR custom detection rules: name, enabled, how often each runs, alert \
                          severity, last run and its status, and the KQL query. Reading changes nothing.",
            toolset: Toolset::Defender,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListParams,
    ) -> Result<ListOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let limit = common::limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        let graph = &context.services.graph;
        let position = common::list_position(
            &tenant,
            params.cursor.as_deref(),
            false,
            |position| graph.check_position(position),
            || Ok(graph.detection_rules_start()),
        )?;
        let collected = graph.list_detection_rules(&tenant, position, limit).await?;
        let next_cursor = collected
            .next
            .map(|position| cursor::encode(&tenant, position));
        Ok(ListOutput {
            tenant_id: tenant,
            rules: collected.items.into_iter().map(RuleSummary::from).collect(),
            next_cursor,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RuleRef {
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// The rule id (a number, from mde_list_detection_rules).
    rule_id: RuleId,
}

#[derive(Serialize, JsonSchema)]
struct RuleOutput {
    tenant_id: TenantId,
    rule: DetectionRule,
}

impl Summary for RuleOutput {
    fn summary(&self) -> String {
        let r = &self.rule;
        format!(
            "detection rule {} '{}' ({}, every {})",
            r.id,
            r.display_name.as_deref().unwrap_or(""),
            if r.is_enabled == Some(true) {
                "enabled"
            } else {
                "disabled"
            },
            r.schedule
                .as_ref()
                .and_then(|s| s.period.as_deref())
                .unwrap_or("?")
        )
    }
}

fn no_rule(id: &RuleId, tenant: &TenantId) -> String {
    format!("no detection rule {id} in tenant {tenant}")
}

struct GetRule;

#[async_trait::async_trait]
impl Tool for GetRule {
    type Params = RuleRef;
    type Output = RuleOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_detection_rule",
            title: "Get a custom detection rule",
            description: "Gets one custom detection rule in full: query, schedule, alert template (title, severity, category, \
                          MITRE techniques), automatic response actions, and its last run. Reading changes nothing.",
            toolset: Toolset::Defender,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(&self, context: &ToolContext, params: RuleRef) -> Result<RuleOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let rule = context
            .services
            .graph
            .get_detection_rule(&tenant, &params.rule_id)
            .await
            .map_err(|error| common::not_found(error, || no_rule(&params.rule_id, &tenant)))?;
        Ok(RuleOutput {
            tenant_id: tenant,
            rule,
        })
    }
}

struct CreateRule;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateParams {
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// The rule's name (unique in the tenant).
    display_name: String,
    /// The KQL query. Each row it returns raises an alert on the device in its DeviceId column, so it must return
    /// Timestamp, ReportId and DeviceId. Control commands are refused.
    query: String,
    /// How often the rule runs: 0 (near real time), 1H, 3H, 12H or 24H.
    period: Period,
    /// Whether the rule runs at once (default true).
    enabled: Option<bool>,
    /// Title of the alerts it raises (default: display_name).
    alert_title: Option<String>,
    /// Description of the alerts it raises.
    alert_description: String,
    /// Severity of the alerts it raises.
    severity: RuleSeverity,
    /// Alert category, e.g. Execution, Persistence, CredentialAccess, LateralMovement, Malware.
    category: String,
    /// MITRE ATT&CK technique ids, e.g. ["T1059.001"].
    mitre_techniques: Option<Vec<String>>,
    /// What an analyst should do with the alert.
    recommended_actions: Option<String>,
}

#[async_trait::async_trait]
impl Tool for CreateRule {
    type Params = CreateParams;
    type Output = RuleOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_create_detection_rule",
            title: "Create a custom detection rule",
            description: "Creates a Defender XDR custom detection rule: a KQL query that runs on a schedule and raises an alert \
                          for every row it returns, attached to the row's device. The rule takes no automatic response \
                          action. Enabled rules start running at once and their alerts reach every analyst of the tenant.",
            toolset: Toolset::Defender,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: CreateParams,
    ) -> Result<RuleOutput, ToolError> {
        let display_name = common::text("display_name", &params.display_name, MAX_TEXT_CHARS)?;
        let rule = NewDetectionRule {
            alert_title: params
                .alert_title
                .as_deref()
                .map(|t| common::text("alert_title", t, MAX_TEXT_CHARS))
                .transpose()?
                .unwrap_or_else(|| display_name.clone()),
            display_name,
            enabled: params.enabled.unwrap_or(true),
            query_text: query(&params.query)?,
            period: params.period.as_str().to_string(),
            alert_description: common::text(
                "alert_description",
                &params.alert_description,
                MAX_TEXT_CHARS,
            )?,
            severity: params.severity.as_str().to_string(),
            category: common::text("category", &params.category, MAX_TEXT_CHARS)?,
            recommended_actions: params
                .recommended_actions
                .as_deref()
                .map(|r| common::text("recommended_actions", r, MAX_TEXT_CHARS))
                .transpose()?,
            mitre_techniques: techniques(params.mitre_techniques.as_deref().unwrap_or_default())?,
        };
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let rule = context
            .services
            .graph
            .create_detection_rule(&tenant, &rule)
            .await?;
        Ok(RuleOutput {
            tenant_id: tenant,
            rule,
        })
    }
}

struct UpdateRule;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateParams {
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// The rule id (a number, from mde_list_detection_rules).
    rule_id: RuleId,
    /// New name.
    display_name: Option<String>,
    /// true runs the rule, false pauses it.
    enabled: Option<bool>,
    /// New KQL query (control commands are refused).
    query: Option<String>,
    /// New schedule: 0 (near real time), 1H, 3H, 12H or 24H.
    period: Option<Period>,
    alert_title: Option<String>,
    alert_description: Option<String>,
    severity: Option<RuleSeverity>,
    category: Option<String>,
    recommended_actions: Option<String>,
}

#[async_trait::async_trait]
impl Tool for UpdateRule {
    type Params = UpdateParams;
    type Output = RuleOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_update_detection_rule",
            title: "Update a custom detection rule",
            description: "Changes a custom detection rule: name, enabled (false pauses it), query, schedule or alert template. \
                          Only the fields given change; the next run uses them.",
            toolset: Toolset::Defender,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: UpdateParams,
    ) -> Result<RuleOutput, ToolError> {
        let optional = |field: &str, value: Option<&str>| {
            value
                .map(|v| common::text(field, v, MAX_TEXT_CHARS))
                .transpose()
        };
        let change = DetectionRuleChange {
            display_name: optional("display_name", params.display_name.as_deref())?,
            enabled: params.enabled,
            query_text: params.query.as_deref().map(query).transpose()?,
            period: params.period.map(|p| p.as_str().to_string()),
            alert_title: optional("alert_title", params.alert_title.as_deref())?,
            alert_description: optional("alert_description", params.alert_description.as_deref())?,
            severity: params.severity.map(|s| s.as_str().to_string()),
            category: optional("category", params.category.as_deref())?,
            recommended_actions: optional(
                "recommended_actions",
                params.recommended_actions.as_deref(),
            )?,
        };
        if change.is_empty() {
            return Err(ToolError::invalid(
                "nothing to change: give at least one field besides tenant_id and rule_id",
            ));
        }
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let rule = context
            .services
            .graph
            .update_detection_rule(&tenant, &params.rule_id, &change)
            .await
            .map_err(|error| common::not_found(error, || no_rule(&params.rule_id, &tenant)))?;
        Ok(RuleOutput {
            tenant_id: tenant,
            rule,
        })
    }
}

struct DeleteRule;

#[derive(Serialize, JsonSchema)]
struct DeleteOutput {
    tenant_id: TenantId,
    deleted_rule_id: String,
}

impl Summary for DeleteOutput {
    fn summary(&self) -> String {
        format!(
            "deleted detection rule {} in tenant {}",
            self.deleted_rule_id, self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for DeleteRule {
    type Params = RuleRef;
    type Output = DeleteOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_delete_detection_rule",
            title: "Delete a custom detection rule",
            description: "Deletes a custom detection rule: it stops running and raising alerts, and its definition is gone (to \
                          pause a rule instead, mde_update_detection_rule with enabled false). Alerts it already raised stay.",
            toolset: Toolset::Defender,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: RuleRef,
    ) -> Result<DeleteOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        context
            .services
            .graph
            .delete_detection_rule(&tenant, &params.rule_id)
            .await
            .map_err(|error| common::not_found(error, || no_rule(&params.rule_id, &tenant)))?;
        Ok(DeleteOutput {
            tenant_id: tenant,
            deleted_rule_id: params.rule_id.as_str().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn techniques_are_attack_ids() {
        assert_eq!(
            techniques(&["t1059.001".into(), "T1003".into()]).expect("valid"),
            vec!["T1059.001", "T1003"]
        );
        assert!(techniques(&["Execution".into()]).is_err());
        assert!(techniques(&["T1059.1".into()]).is_err());
    }
}
