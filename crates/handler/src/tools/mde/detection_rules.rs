//! Custom detection rules (Graph beta): list, read, create, update, delete. Reads only read.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::approvals::{Change, Plan, PlanTarget};
use crate::clients::graph::{
    DetectionRule, DetectionRuleChange, MitreTactic, NewDetectionRule, RuleId, RuleStatus,
};
use crate::kql_guard;
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::args::{Fields, Limit};
use crate::tools::cursor;
use crate::tools::rows::{self, ListRow, Row, Rows};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListRules)
        .tool(GetRule)
        .tool(CreateRule)
        .tool(UpdateRule)
        .tool(DeleteRule)
}

const MAX_TEXT_CHARS: usize = 4000;
/// Longest id this tool makes up or accepts for a new rule.
const NEW_ID_MAX: usize = 64;

/// How often a rule runs. The argument keeps the names of the retired `schedule.period`
/// (`ruleSchedule.period`: 0, 1H, 3H, 12H, 24H); what is sent is `schedule.frequency`, the ISO 8601
/// duration the beta CSDL replaced it with.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
enum Period {
    /// Continuous runs: `period` 0 had no documented `frequency` equivalent, so it is refused
    /// with the accepted values instead of being guessed.
    #[serde(rename = "0")]
    #[schemars(skip)]
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
    fn frequency(self) -> Result<&'static str, ToolError> {
        match self {
            Self::NearRealTime => Err(ToolError::invalid(
                "period 0 (near real time) is no longer accepted: Graph schedules rules with schedule.frequency, \
                 which has no documented continuous value; use 1H, 3H, 12H or 24H",
            )),
            Self::Hourly => Ok("PT1H"),
            Self::Every3Hours => Ok("PT3H"),
            Self::Every12Hours => Ok("PT12H"),
            Self::Daily => Ok("P1D"),
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

/// `alertTemplate.tactics` from the `category` (the tactic) and `mitre_techniques` arguments.
fn tactics(category: Option<&str>, list: Option<&[String]>) -> Result<Vec<MitreTactic>, ToolError> {
    let techniques = techniques(list.unwrap_or_default())?;
    match category {
        Some(category) => {
            let tactic = common::one_line("category", category, MAX_TEXT_CHARS)?;
            Ok(vec![MitreTactic::with_techniques(&tactic, &techniques)])
        }
        None if techniques.is_empty() => Ok(Vec::new()),
        None => Err(ToolError::invalid(
            "mitre_techniques need category: the MITRE ATT&CK tactic they belong to (e.g. Execution)",
        )),
    }
}

/// The id of a new rule: the caller's, or one made from the display name (`Encoded PowerShell`
/// → `encoded-powershell`), as the create page's example does (`office-encoded-powershell`).
/// Kept to letters, digits, `-`, `_` and `.` so it reads the same in every URL and log.
fn new_rule_id(given: Option<&str>, display_name: &str) -> Result<String, ToolError> {
    if let Some(given) = given {
        let given = given.trim();
        let valid = !given.is_empty()
            && given.len() <= NEW_ID_MAX
            && given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        return if valid {
            Ok(given.to_string())
        } else {
            Err(ToolError::invalid(format!(
                "rule_id must be 1-{NEW_ID_MAX} characters of letters, digits, '-', '_' and '.' (e.g. office-encoded-powershell)"
            )))
        };
    }
    let mut id = String::new();
    for c in display_name.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.is_empty() && !id.ends_with('-') {
            id.push('-');
        }
    }
    let id: String = id.chars().take(NEW_ID_MAX).collect();
    let id = id.trim_end_matches('-').to_string();
    if id.is_empty() {
        return Err(ToolError::invalid(
            "display_name has no letters or digits to make a rule id from: give rule_id",
        ));
    }
    Ok(id)
}

#[derive(Serialize, JsonSchema)]
struct RuleSummary {
    id: String,
    display_name: Option<String>,
    /// enabled, disabled or autoDisabled (turned off by the service).
    status: Option<String>,
    enabled: Option<bool>,
    /// How often it runs, an ISO 8601 duration (PT1H, PT3H, PT12H, P1D).
    frequency: Option<String>,
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
            status: rule.status_name(),
            enabled: rule.enabled(),
            frequency: rule.frequency(),
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
        }
    }
}

impl ListRow for RuleSummary {
    const COMPACT: &'static [&'static str] = &[
        "id",
        "display_name",
        "status",
        "enabled",
        "frequency",
        "severity",
        "last_run",
        "last_run_status",
        "query",
    ];
    const FREE_TEXT: &'static [&'static str] = &["query"];
    const GET_TOOL: Option<&'static str> = Some("mde_get_detection_rule");
}

struct ListRules;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    tenant_id: Option<TenantId>,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<25, 500>,
    cursor: Option<String>,
    /// Fields each rule carries whole: ["query"] for the whole KQL (cut in the list otherwise).
    fields: Option<Fields<RuleSummary>>,
}

#[derive(Serialize, JsonSchema)]
struct ListOutput {
    tenant_id: TenantId,
    rules: Vec<Row<RuleSummary>>,
    /// Which free-text fields were cut short, and where to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    /// Present when more rules exist: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListOutput {
    fn summary(&self) -> String {
        let enabled = self
            .rules
            .iter()
            .filter(|r| r.get("enabled") == Some(&true.into()))
            .count();
        let more = cursor::more_note(self.next_cursor.as_ref());
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} custom detection rules in tenant {} ({enabled} enabled){more}{cut}",
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
            description: "Lists custom detection rules: name, status (enabled, disabled, autoDisabled), frequency, \
                         alert severity, query.",
            toolset: Toolset::DetectionRules,
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
        let limit = params.limit.get();
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
        let summaries = collected.items.into_iter().map(RuleSummary::from).collect();
        let Rows { rows, cut } = rows::rows(summaries, params.fields.as_ref());
        Ok(ListOutput {
            tenant_id: tenant,
            rules: rows,
            cut,
            next_cursor,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RuleRef {
    tenant_id: Option<TenantId>,
    /// The rule id (from mde_list_detection_rules), e.g. office-encoded-powershell or 7506.
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
            r.status_name().as_deref().unwrap_or("unknown status"),
            r.frequency().as_deref().unwrap_or("?")
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
            description: "Gets one custom detection rule in full: status, query, schedule, alert template \
                         (severity, MITRE, entity mappings) and automated actions.",
            toolset: Toolset::DetectionRules,
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
    tenant_id: Option<TenantId>,
    /// The rule's id, unique in the tenant: letters, digits, '-', '_' and '.' (default: made from display_name,
    /// e.g. "Encoded PowerShell" gives encoded-powershell).
    rule_id: Option<String>,
    /// The rule's name.
    display_name: String,
    /// What the rule detects and why.
    description: Option<String>,
    /// The KQL query. Each row it returns raises an alert on the device in its DeviceId column, so it must return
    /// Timestamp, ReportId and DeviceId. Control commands are refused.
    query: String,
    /// How often the rule runs: 1H, 3H, 12H or 24H.
    period: Period,
    /// Whether the rule runs at once (default true).
    enabled: Option<bool>,
    /// Title of the alerts it raises (default: display_name).
    alert_title: Option<String>,
    /// Description of the alerts it raises.
    alert_description: String,
    /// Severity of the alerts it raises.
    severity: RuleSeverity,
    /// MITRE ATT&CK tactic of the alerts, e.g. Execution, Persistence, CredentialAccess, LateralMovement.
    category: Option<String>,
    /// MITRE ATT&CK technique ids within that tactic, e.g. ["T1059.001"] (needs category).
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
            description: "Creates a Defender XDR custom detection rule: a scheduled KQL query raising an alert for \
                         each row, on the row's device. No automated action; enabled rules run at once.",
            toolset: Toolset::DetectionRules,
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
            id: new_rule_id(params.rule_id.as_deref(), &display_name)?,
            description: params
                .description
                .as_deref()
                .map(|d| common::text("description", d, MAX_TEXT_CHARS))
                .transpose()?,
            alert_title: params
                .alert_title
                .as_deref()
                .map(|t| common::text("alert_title", t, MAX_TEXT_CHARS))
                .transpose()?
                .unwrap_or_else(|| display_name.clone()),
            display_name,
            status: if params.enabled.unwrap_or(true) {
                RuleStatus::Enabled
            } else {
                RuleStatus::Disabled
            },
            query_text: query(&params.query)?,
            frequency: params.period.frequency()?.to_string(),
            alert_description: common::text(
                "alert_description",
                &params.alert_description,
                MAX_TEXT_CHARS,
            )?,
            severity: params.severity.as_str().to_string(),
            tactics: tactics(
                params.category.as_deref(),
                params.mitre_techniques.as_deref(),
            )?,
            recommended_actions: params
                .recommended_actions
                .as_deref()
                .map(|r| common::text("recommended_actions", r, MAX_TEXT_CHARS))
                .transpose()?,
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
    tenant_id: Option<TenantId>,
    /// The rule id (from mde_list_detection_rules), e.g. office-encoded-powershell or 7506.
    rule_id: RuleId,
    /// New name.
    display_name: Option<String>,
    /// New description of the rule.
    description: Option<String>,
    /// true runs the rule (status enabled), false pauses it (status disabled).
    enabled: Option<bool>,
    /// New KQL query (control commands are refused).
    query: Option<String>,
    /// New schedule: 1H, 3H, 12H or 24H.
    period: Option<Period>,
    alert_title: Option<String>,
    alert_description: Option<String>,
    severity: Option<RuleSeverity>,
    /// New MITRE ATT&CK tactic; with mitre_techniques it replaces the alert's tactics and techniques.
    category: Option<String>,
    /// New technique ids within category (needs category), e.g. ["T1059.001"].
    mitre_techniques: Option<Vec<String>>,
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
            description: "Changes a custom detection rule: name, description, enabled, query, schedule or alert \
                         template. Only the fields given change.",
            toolset: Toolset::DetectionRules,
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
        let tactics = if params.category.is_some() || params.mitre_techniques.is_some() {
            Some(tactics(
                params.category.as_deref(),
                params.mitre_techniques.as_deref(),
            )?)
        } else {
            None
        };
        let change = DetectionRuleChange {
            display_name: optional("display_name", params.display_name.as_deref())?,
            description: optional("description", params.description.as_deref())?,
            status: params.enabled.map(|on| {
                if on {
                    RuleStatus::Enabled
                } else {
                    RuleStatus::Disabled
                }
            }),
            query_text: params.query.as_deref().map(query).transpose()?,
            frequency: params
                .period
                .map(|p| p.frequency().map(str::to_string))
                .transpose()?,
            alert_title: optional("alert_title", params.alert_title.as_deref())?,
            alert_description: optional("alert_description", params.alert_description.as_deref())?,
            severity: params.severity.map(|s| s.as_str().to_string()),
            tactics,
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
            description: "Deletes a custom detection rule (to pause it: mde_update_detection_rule with enabled \
                         false). Alerts it raised stay.",
            toolset: Toolset::DetectionRules,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Admin,
        }
    }

    /// The rule by name with its state, read first: a rule that is not there is refused before
    /// anyone is asked. The delete itself (`call`) reads nothing.
    async fn plan(&self, context: &ToolContext, params: &RuleRef) -> Result<Plan, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let rule = context
            .services
            .graph
            .get_detection_rule(&tenant, &params.rule_id)
            .await
            .map_err(|error| common::not_found(error, || no_rule(&params.rule_id, &tenant)))?;
        let state = rule
            .status_name()
            .unwrap_or_else(|| "unknown status".into());
        let target = PlanTarget::new(
            "custom detection rule",
            rule.id.clone(),
            rule.display_name.clone(),
            Change::from_to(state, "deleted"),
        )
        .fact("runs every", rule.frequency())
        .fact("last modified", rule.last_modified_date_time);
        Ok(Plan::action(self.spec().title)
            .with_targets(vec![target])
            .note("Alerts the rule raised stay."))
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

    #[test]
    fn new_rule_ids_come_from_the_caller_or_the_name() {
        assert_eq!(
            new_rule_id(None, "Suspicious encoded PowerShell (Office)").expect("id"),
            "suspicious-encoded-powershell-office"
        );
        assert_eq!(
            new_rule_id(Some("office-encoded-powershell"), "x").expect("id"),
            "office-encoded-powershell"
        );
        assert!(new_rule_id(Some("a/b"), "x").is_err());
        assert!(new_rule_id(None, "***").is_err());
    }

    #[test]
    fn periods_become_frequencies_and_near_real_time_is_refused_by_name() {
        assert_eq!(Period::Daily.frequency().expect("daily"), "P1D");
        assert_eq!(Period::Every3Hours.frequency().expect("3h"), "PT3H");
        let refused = Period::NearRealTime.frequency().expect_err("0");
        assert!(
            refused.to_string().contains("1H, 3H, 12H or 24H"),
            "{refused}"
        );
    }

    #[test]
    fn techniques_need_their_tactic() {
        assert!(tactics(None, Some(&["T1059".into()])).is_err());
        assert!(tactics(None, None).expect("none").is_empty());
        assert_eq!(
            tactics(Some("Execution"), Some(&["T1059.001".into()])).expect("one")[0].tactic,
            "Execution"
        );
    }
}
