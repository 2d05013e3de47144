//! Analytics rules: list, get, create (Scheduled or NRT, from a template or a definition),
//! enable/disable (etag-checked), delete; and the rule templates to create them from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Target, target};
use crate::approvals::{Change, Plan, PlanTarget};
use crate::clients::arm::{AlertRule, AlertRuleTemplate, ArmName, WorkspaceResource};
use crate::kql_guard;
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::ListPosition;
use crate::tenants::TenantId;
use crate::tools::args::{self, Fields, Limit};
use crate::tools::rows::{self, ListRow, Row, Rows};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListRules)
        .tool(GetRule)
        .tool(CreateRule)
        .tool(SetRuleEnabled)
        .tool(DeleteRule)
        .tool(ListTemplates)
}

/// Workspaces hold hundreds of rules and Content Hub a few thousand templates; all are read, then filtered.
const MAX_READ: usize = 5000;
/// Template properties a rule created from the template takes over (those the rule's kind
/// declares are kept, see [`RuleKind::writable`]).
const FROM_TEMPLATE: &[&str] = &[
    "displayName",
    "description",
    "severity",
    "query",
    "queryFrequency",
    "queryPeriod",
    "triggerOperator",
    "triggerThreshold",
    "tactics",
    "techniques",
    "subTechniques",
    "entityMappings",
    "customDetails",
    "alertDetailsOverride",
    "eventGroupingSettings",
];
/// Read-only properties of each alert rule kind at the alert-rules api-version
/// (`preview/2025-10-01-preview/openapi.json`, `#/definitions/<Kind>AlertRuleProperties/properties/*/readOnly`):
/// a rule read from the service is written back without them. Fusion rules take their name,
/// description, severity and MITRE mapping from their template, so only `alertRuleTemplateName`,
/// `enabled` and the source/scenario settings are theirs to write.
fn read_only_properties(kind: &str) -> &'static [&'static str] {
    match kind {
        "Fusion" => &[
            "description",
            "displayName",
            "lastModifiedUtc",
            "severity",
            "tactics",
            "techniques",
            "subTechniques",
        ],
        // Scheduled, NRT, MicrosoftSecurityIncidentCreation (and kinds this server does not
        // know, whose only documented read-only property is the same).
        _ => &["lastModifiedUtc"],
    }
}

/// A rule as read from the service, made into a body the same api-version accepts on PUT:
/// the envelope's read-only `systemData` and the kind's read-only properties are removed
/// (`CT /definitions/Resource/properties/systemData/readOnly`; see [`read_only_properties`]).
pub(super) fn writable_rule(rule: &mut Value) {
    if let Some(envelope) = rule.as_object_mut() {
        envelope.remove("systemData");
    }
    let kind = rule["kind"].as_str().unwrap_or_default().to_string();
    let Some(properties) = rule.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for key in read_only_properties(&kind) {
        properties.remove(*key);
    }
    // `FusionSourceSubTypeSetting.sourceSubTypeDisplayName` and
    // `FusionSubTypeSeverityFilter.isSupported` are read-only too.
    for source in properties
        .get_mut("sourceSettings")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for sub in source
            .get_mut("sourceSubTypes")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(sub) = sub.as_object_mut() {
                sub.remove("sourceSubTypeDisplayName");
                if let Some(filters) = sub
                    .get_mut("severityFilters")
                    .and_then(Value::as_object_mut)
                {
                    filters.remove("isSupported");
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
enum RuleKind {
    /// Runs a query on a schedule (queryFrequency over queryPeriod) and alerts on a threshold.
    Scheduled,
    /// Near-real-time: runs about every minute over the newest data.
    #[serde(rename = "NRT")]
    Nrt,
}

impl RuleKind {
    fn name(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::Nrt => "NRT",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Scheduled, Self::Nrt]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(text))
    }

    /// Required by `#/definitions/ScheduledAlertRuleProperties/required` and
    /// `#/definitions/NrtAlertRuleProperties/required` of the alert-rules api-version, less
    /// `enabled`, `suppressionDuration` and `suppressionEnabled`, which this tool always sets.
    fn required(self) -> &'static [&'static str] {
        match self {
            Self::Scheduled => &[
                "displayName",
                "severity",
                "query",
                "queryFrequency",
                "queryPeriod",
                "triggerOperator",
                "triggerThreshold",
            ],
            Self::Nrt => &["displayName", "severity", "query"],
        }
    }

    /// The writable properties of the kind: `#/definitions/ScheduledAlertRuleProperties` (with
    /// `ScheduledAlertRuleCommonProperties`) and `#/definitions/NrtAlertRuleProperties` of
    /// `preview/2025-10-01-preview/openapi.json`, without the read-only `lastModifiedUtc`.
    fn writable(self) -> Vec<&'static str> {
        const SHARED: &[&str] = &[
            "alertRuleTemplateName",
            "templateVersion",
            "description",
            "displayName",
            "enabled",
            "query",
            "severity",
            "tactics",
            "techniques",
            "subTechniques",
            "suppressionDuration",
            "suppressionEnabled",
            "incidentConfiguration",
            "customDetails",
            "entityMappings",
            "alertDetailsOverride",
            "eventGroupingSettings",
            "sentinelEntitiesMappings",
        ];
        // Scheduled rules add the schedule to what NRT rules take.
        const SCHEDULE: &[&str] = &[
            "queryFrequency",
            "queryPeriod",
            "triggerOperator",
            "triggerThreshold",
        ];
        match self {
            Self::Scheduled => [SHARED, SCHEDULE].concat(),
            Self::Nrt => SHARED.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
enum Severity {
    High,
    Medium,
    Low,
    Informational,
}

#[derive(Serialize, JsonSchema)]
struct RuleInfo {
    rule_id: String,
    kind: Option<String>,
    display_name: Option<String>,
    enabled: Option<bool>,
    severity: Option<String>,
    tactics: Vec<String>,
    /// The template the rule was created from, if any.
    template_id: Option<String>,
    last_modified: Option<String>,
}

impl From<AlertRule> for RuleInfo {
    fn from(rule: AlertRule) -> Self {
        let p = rule.properties;
        Self {
            rule_id: rule.name,
            kind: rule.kind,
            display_name: p.display_name,
            enabled: p.enabled,
            severity: p.severity.as_deref().map(str::to_owned),
            tactics: p.tactics,
            template_id: p.alert_rule_template_name,
            last_modified: p.last_modified_utc.map(args::rfc3339),
        }
    }
}

impl ListRow for RuleInfo {
    const COMPACT: &'static [&'static str] =
        &["rule_id", "kind", "display_name", "enabled", "severity"];
    const FREE_TEXT: &'static [&'static str] = &["display_name"];
    const GET_TOOL: Option<&'static str> = Some("sentinel_get_analytics_rule");
}

impl ListRow for TemplateInfo {
    const COMPACT: &'static [&'static str] = &[
        "template_id",
        "kind",
        "display_name",
        "severity",
        "tactics",
        "rules_created",
    ];
    const FREE_TEXT: &'static [&'static str] = &["display_name"];
    // Templates have no get tool; the list with `search` and `fields` shows one whole.
    const GET_TOOL: Option<&'static str> = None;
}

fn describe(rule: &RuleInfo) -> String {
    format!(
        "{} rule '{}' ({}), {}",
        rule.kind.as_deref().unwrap_or("?"),
        rule.display_name.as_deref().unwrap_or(&rule.rule_id),
        rule.rule_id,
        state(rule)
    )
}

/// Whether the rule runs; kinds without `enabled` always do.
fn state(rule: &RuleInfo) -> &'static str {
    match rule.enabled {
        Some(true) => "enabled",
        Some(false) => "disabled",
        None => "always on",
    }
}

struct ListRules;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListRulesParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Only rules of this kind: Scheduled, NRT, Fusion, MicrosoftSecurityIncidentCreation, MLBehaviorAnalytics, ThreatIntelligence.
    kind: Option<String>,
    /// Only enabled (true) or disabled (false) rules.
    enabled: Option<bool>,
    /// Only rules whose display name contains this text (case-insensitive).
    name_contains: Option<String>,
    /// Most rules to return; the output gives the total that matched.
    #[serde(default)]
    limit: Limit<30, 500>,
    /// Extra fields, e.g. ["tactics", "template_id"], or ["all"].
    /// sentinel_get_analytics_rule gives one rule whole, with its query.
    fields: Option<Fields<RuleInfo>>,
}

#[derive(Serialize, JsonSchema)]
struct ListRulesOutput {
    tenant_id: TenantId,
    workspace: String,
    rules: Vec<Row<RuleInfo>>,
    /// Which free-text fields were cut short, and where to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    total_matching: usize,
    enabled: usize,
    disabled: usize,
}

impl Summary for ListRulesOutput {
    fn summary(&self) -> String {
        let first = rows::first_note(
            self.rules.len(),
            self.total_matching,
            "kind, enabled or name_contains",
        );
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} analytics rules in {} ({} enabled, {} disabled){first}{cut}",
            self.total_matching, self.workspace, self.enabled, self.disabled
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListRules {
    type Params = ListRulesParams;
    type Output = ListRulesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_analytics_rules",
            title: "List Sentinel analytics rules",
            description: "Lists a workspace's analytics rules (id, kind, name, enabled, severity), filtered by \
                         kind, enabled state or name.",
            toolset: Toolset::SentinelRules,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListRulesParams,
    ) -> Result<ListRulesOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let limit = params.limit.get();
        let arm = &context.services.arm;
        let all = arm
            .list::<AlertRule>(
                target.tenant_id(),
                ListPosition::start(
                    arm.workspace_url(target.workspace, WorkspaceResource::AlertRules),
                ),
                MAX_READ,
            )
            .await?;
        let needle = params.name_contains.map(|n| n.trim().to_lowercase());
        let matching: Vec<RuleInfo> = all
            .items
            .into_iter()
            .filter(|r| {
                params.kind.as_deref().is_none_or(|k| {
                    r.kind
                        .as_deref()
                        .is_some_and(|kind| kind.eq_ignore_ascii_case(k.trim()))
                })
            })
            .filter(|r| {
                params
                    .enabled
                    .is_none_or(|e| r.properties.enabled == Some(e))
            })
            .filter(|r| {
                needle.as_deref().is_none_or(|n| {
                    r.properties
                        .display_name
                        .as_deref()
                        .is_some_and(|d| d.to_lowercase().contains(n))
                })
            })
            .map(RuleInfo::from)
            .collect();
        let enabled = matching.iter().filter(|r| r.enabled == Some(true)).count();
        let disabled = matching.iter().filter(|r| r.enabled == Some(false)).count();
        let total_matching = matching.len();
        let page = matching.into_iter().take(limit).collect();
        let Rows { rows, cut } = rows::rows(page, params.fields.as_ref());
        Ok(ListRulesOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            rules: rows,
            cut,
            total_matching,
            enabled,
            disabled,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RuleParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The rule id (a GUID, as sentinel_list_analytics_rules returns it).
    rule_id: ArmName,
}

/// The rule as JSON, or a not-found error naming the workspace.
async fn read_rule(
    context: &ToolContext,
    target: &Target<'_>,
    id: &ArmName,
) -> Result<Value, ToolError> {
    let arm = &context.services.arm;
    arm.find::<Value>(
        target.tenant_id(),
        arm.workspace_url(target.workspace, WorkspaceResource::AlertRule(id)),
    )
    .await?
    .ok_or_else(|| {
        ToolError::NotFound(format!(
            "no analytics rule '{id}' in workspace {}; sentinel_list_analytics_rules lists them",
            target.workspace.workspace_name
        ))
    })
}

fn rule_info(rule: &Value) -> Result<RuleInfo, ToolError> {
    serde_json::from_value::<AlertRule>(rule.clone())
        .map(RuleInfo::from)
        .map_err(|e| ToolError::Failed(format!("the rule could not be read: {e}")))
}

struct GetRule;

#[derive(Serialize, JsonSchema)]
struct GetRuleOutput {
    tenant_id: TenantId,
    workspace: String,
    rule: RuleInfo,
    etag: Option<String>,
    /// Every property of the rule (query, schedule, thresholds, entity mappings, incident settings ...),
    /// usable as sentinel_create_analytics_rule's definition.
    properties: Map<String, Value>,
}

impl Summary for GetRuleOutput {
    fn summary(&self) -> String {
        describe(&self.rule)
    }
}

#[async_trait::async_trait]
impl Tool for GetRule {
    type Params = RuleParams;
    type Output = GetRuleOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_get_analytics_rule",
            title: "Get a Sentinel analytics rule",
            description: "Gets one analytics rule with all its properties: query, schedule, threshold, tactics, entity mappings, incident settings.",
            toolset: Toolset::SentinelRules,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: RuleParams,
    ) -> Result<GetRuleOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let rule = read_rule(context, &target, &params.rule_id).await?;
        Ok(GetRuleOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            rule: rule_info(&rule)?,
            etag: rule["etag"].as_str().map(str::to_string),
            properties: rule["properties"].as_object().cloned().unwrap_or_default(),
        })
    }
}

struct CreateRule;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateRuleParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Create from this template (an id from sentinel_list_rule_templates). Give this or definition.
    template_id: Option<ArmName>,
    /// The rule's properties, e.g. {"displayName", "severity", "query", "queryFrequency": "PT1H", "queryPeriod": "PT1H",
    /// "triggerOperator": "GreaterThan", "triggerThreshold": 0, "tactics": [...]} (sentinel_get_analytics_rule's properties work).
    definition: Option<Map<String, Value>>,
    /// Scheduled or NRT; required with definition, taken from the template otherwise.
    kind: Option<RuleKind>,
    /// Overrides the display name.
    display_name: Option<String>,
    /// Overrides the severity.
    severity: Option<Severity>,
    /// Whether the rule starts enabled (default true).
    enabled: Option<bool>,
    /// Id for the new rule (a GUID is generated when omitted); refused if a rule has it already.
    rule_id: Option<ArmName>,
}

#[derive(Serialize, JsonSchema)]
struct CreateRuleOutput {
    tenant_id: TenantId,
    workspace: String,
    rule: RuleInfo,
}

impl Summary for CreateRuleOutput {
    fn summary(&self) -> String {
        format!("created {} in {}", describe(&self.rule), self.workspace)
    }
}

#[async_trait::async_trait]
impl Tool for CreateRule {
    type Params = CreateRuleParams;
    type Output = CreateRuleOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_create_analytics_rule",
            title: "Create a Sentinel analytics rule",
            description: "Creates a Scheduled or NRT analytics rule from a template id or a full definition, \
                         optionally overriding name, severity and enabled; the query is checked first.",
            toolset: Toolset::SentinelRules,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: CreateRuleParams,
    ) -> Result<CreateRuleOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let arm = &context.services.arm;
        let (kind, mut properties) = match (params.template_id, params.definition) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "give either template_id or definition, not both",
                ));
            }
            (None, None) => {
                return Err(ToolError::invalid(
                    "give template_id (from sentinel_list_rule_templates) or definition",
                ));
            }
            (Some(template_id), None) => {
                let url = arm.workspace_url(
                    target.workspace,
                    WorkspaceResource::AlertRuleTemplate(&template_id),
                );
                let template: Value = arm.find(target.tenant_id(), url).await?.ok_or_else(|| {
                    ToolError::NotFound(format!("no rule template '{template_id}' in workspace {}; sentinel_list_rule_templates lists them", target.workspace.workspace_name))
                })?;
                from_template(&template, params.kind)?
            }
            (None, Some(definition)) => {
                let kind = params.kind.ok_or_else(|| {
                    ToolError::invalid("kind (Scheduled or NRT) is required with a definition")
                })?;
                (kind, definition)
            }
        };
        if let Some(name) = params.display_name {
            properties.insert(
                "displayName".into(),
                json!(super::one_line("display_name", &name, 256)?),
            );
        }
        if let Some(severity) = params.severity {
            properties.insert("severity".into(), json!(severity));
        }
        properties.insert("enabled".into(), json!(params.enabled.unwrap_or(true)));
        // A definition copied from sentinel_get_analytics_rule carries what the service set.
        for key in read_only_properties(kind.name()) {
            properties.remove(*key);
        }
        properties
            .entry("suppressionDuration")
            .or_insert(json!("PT5H"));
        properties
            .entry("suppressionEnabled")
            .or_insert(json!(false));
        check_definition(kind, &properties)?;
        let rule_id = params.rule_id.unwrap_or_else(ArmName::new_guid);
        let url = arm.workspace_url(target.workspace, WorkspaceResource::AlertRule(&rule_id));
        if arm
            .find::<Value>(target.tenant_id(), url.clone())
            .await?
            .is_some()
        {
            return Err(ToolError::Conflict(format!(
                "a rule with id {rule_id} already exists in workspace {}",
                target.workspace.workspace_name
            )));
        }
        let created: AlertRule = arm
            .put(
                target.tenant_id(),
                url,
                &json!({"kind": kind.name(), "properties": properties}),
            )
            .await?;
        Ok(CreateRuleOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            rule: RuleInfo::from(created),
        })
    }
}

fn from_template(
    template: &Value,
    kind: Option<RuleKind>,
) -> Result<(RuleKind, Map<String, Value>), ToolError> {
    let template_kind = template["kind"].as_str().unwrap_or_default();
    let kind = match (RuleKind::parse(template_kind), kind) {
        (Some(from), Some(asked)) if from != asked => {
            return Err(ToolError::invalid(format!(
                "the template is a {template_kind} template; kind {} does not match",
                asked.name()
            )));
        }
        (Some(kind), _) => kind,
        (None, _) => {
            return Err(ToolError::invalid(format!(
                "the template is of kind {template_kind}; only Scheduled and NRT rules can be created here"
            )));
        }
    };
    let p = &template["properties"];
    let mut properties: Map<String, Value> = FROM_TEMPLATE
        .iter()
        .filter(|k| kind.writable().contains(k))
        .filter_map(|k| {
            p.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| ((*k).to_string(), v.clone()))
        })
        .collect();
    properties.insert("alertRuleTemplateName".into(), template["name"].clone());
    if let Some(version) = p.get("version").filter(|v| !v.is_null()) {
        properties.insert("templateVersion".into(), version.clone());
    }
    Ok((kind, properties))
}

fn check_definition(kind: RuleKind, properties: &Map<String, Value>) -> Result<(), ToolError> {
    let unknown: Vec<&str> = properties
        .keys()
        .map(String::as_str)
        .filter(|k| !kind.writable().contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(ToolError::invalid(format!(
            "a {} rule has no propert{} {}; it takes: {}",
            kind.name(),
            if unknown.len() == 1 { "y" } else { "ies" },
            unknown.join(", "),
            kind.writable().join(", ")
        )));
    }
    let missing: Vec<&str> = kind
        .required()
        .iter()
        .copied()
        .filter(|k| properties.get(*k).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(ToolError::invalid(format!(
            "a {} rule needs {}",
            kind.name(),
            missing.join(", ")
        )));
    }
    let query = properties
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::invalid("query must be a string"))?;
    kql_guard::check_query(query)
        .map_err(|refusal| ToolError::invalid(format!("query: {refusal}")))?;
    Ok(())
}

struct SetRuleEnabled;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SetRuleEnabledParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The rule id (a GUID, as sentinel_list_analytics_rules returns it).
    rule_id: ArmName,
    /// true to enable the rule, false to disable it.
    enabled: bool,
}

#[derive(Serialize, JsonSchema)]
struct SetRuleEnabledOutput {
    tenant_id: TenantId,
    workspace: String,
    rule: RuleInfo,
    was_enabled: Option<bool>,
    /// False when the rule was already in the requested state (nothing was sent).
    changed: bool,
}

impl Summary for SetRuleEnabledOutput {
    fn summary(&self) -> String {
        let change = if self.changed { "now" } else { "already" };
        format!("{} {change}", describe(&self.rule))
    }
}

#[async_trait::async_trait]
impl Tool for SetRuleEnabled {
    type Params = SetRuleEnabledParams;
    type Output = SetRuleEnabledOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_set_analytics_rule_enabled",
            title: "Enable or disable a Sentinel analytics rule",
            description: "Enables or disables an analytics rule, written only if nobody changed it meanwhile \
                         (etag).",
            toolset: Toolset::SentinelRules,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: SetRuleEnabledParams,
    ) -> Result<SetRuleEnabledOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        read_rule(context, &target, &params.rule_id).await?;
        let arm = &context.services.arm;
        let url = arm.workspace_url(
            target.workspace,
            WorkspaceResource::AlertRule(&params.rule_id),
        );
        let enabled = params.enabled;
        let updated = arm
            .update(
                target.tenant_id(),
                url,
                &format!("analytics rule {}", params.rule_id),
                |rule| {
                    if rule["properties"]["enabled"] == json!(enabled) {
                        return false;
                    }
                    writable_rule(rule);
                    rule["properties"]["enabled"] = json!(enabled);
                    true
                },
            )
            .await?;
        Ok(SetRuleEnabledOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            was_enabled: updated.before["properties"]["enabled"].as_bool(),
            rule: rule_info(&updated.after)?,
            changed: updated.changed,
        })
    }
}

struct DeleteRule;

#[derive(Serialize, JsonSchema)]
struct DeleteRuleOutput {
    tenant_id: TenantId,
    workspace: String,
    /// The rule as it was before it was deleted.
    deleted: RuleInfo,
}

impl Summary for DeleteRuleOutput {
    fn summary(&self) -> String {
        format!(
            "deleted {} from {}",
            describe(&self.deleted),
            self.workspace
        )
    }
}

#[async_trait::async_trait]
impl Tool for DeleteRule {
    type Params = RuleParams;
    type Output = DeleteRuleOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_delete_analytics_rule",
            title: "Delete a Sentinel analytics rule",
            description: "Deletes an analytics rule and reports what it was; disabling it \
                         (sentinel_set_analytics_rule_enabled) is the reversible alternative.",
            toolset: Toolset::SentinelRules,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Admin,
        }
    }

    /// The rule by name, kind and state, read first: a rule that is not there is refused
    /// before anyone is asked. `call` reads it again for its report.
    async fn plan(&self, context: &ToolContext, params: &RuleParams) -> Result<Plan, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let rule = rule_info(&read_rule(context, &target, &params.rule_id).await?)?;
        let kind = match &rule.kind {
            Some(kind) => format!("{kind} analytics rule"),
            None => "analytics rule".into(),
        };
        let planned = PlanTarget::new(
            &kind,
            rule.rule_id.clone(),
            rule.display_name.clone(),
            Change::from_to(state(&rule), "deleted"),
        )
        .fact("severity", rule.severity)
        .fact("last modified", rule.last_modified);
        Ok(Plan::action(format!(
            "{} in workspace {}",
            self.spec().title,
            target.workspace.workspace_name
        ))
        .with_targets(vec![planned]))
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: RuleParams,
    ) -> Result<DeleteRuleOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let rule = rule_info(&read_rule(context, &target, &params.rule_id).await?)?;
        let arm = &context.services.arm;
        arm.delete(
            target.tenant_id(),
            arm.workspace_url(
                target.workspace,
                WorkspaceResource::AlertRule(&params.rule_id),
            ),
        )
        .await?;
        Ok(DeleteRuleOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            deleted: rule,
        })
    }
}

struct ListTemplates;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListTemplatesParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Only templates of this kind (Scheduled, NRT, Fusion, ...).
    kind: Option<String>,
    /// Only templates whose name or description contains this text (case-insensitive).
    search: Option<String>,
    /// Only templates with this tactic, e.g. CredentialAccess.
    tactic: Option<String>,
    /// Most templates to return; the output gives the total that matched.
    #[serde(default)]
    limit: Limit<20, 500>,
    /// Extra fields, e.g. ["required_connectors"], or ["all"].
    fields: Option<Fields<TemplateInfo>>,
}

#[derive(Serialize, JsonSchema)]
struct TemplateInfo {
    template_id: String,
    kind: Option<String>,
    display_name: Option<String>,
    severity: Option<String>,
    tactics: Vec<String>,
    /// Data connectors the template's query needs.
    required_connectors: Vec<String>,
    version: Option<String>,
    /// How many rules in the workspace were created from it.
    rules_created: Option<i64>,
}

#[derive(Serialize, JsonSchema)]
struct ListTemplatesOutput {
    tenant_id: TenantId,
    workspace: String,
    templates: Vec<Row<TemplateInfo>>,
    /// Which free-text fields were cut short, and how to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    total_matching: usize,
}

impl Summary for ListTemplatesOutput {
    fn summary(&self) -> String {
        let first = rows::first_note(
            self.templates.len(),
            self.total_matching,
            "search, kind or tactic",
        );
        let cut = rows::cut_note(self.cut.as_ref());
        format!("{} rule templates{first}{cut}", self.total_matching)
    }
}

#[async_trait::async_trait]
impl Tool for ListTemplates {
    type Params = ListTemplatesParams;
    type Output = ListTemplatesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_rule_templates",
            title: "List Sentinel analytics rule templates",
            description: "Lists a workspace's analytics rule templates (id, kind, name, severity, rules made from \
                         each), searchable; sentinel_create_analytics_rule makes a rule from one.",
            toolset: Toolset::SentinelRules,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListTemplatesParams,
    ) -> Result<ListTemplatesOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let limit = params.limit.get();
        let arm = &context.services.arm;
        let all = arm
            .list::<AlertRuleTemplate>(
                target.tenant_id(),
                ListPosition::start(
                    arm.workspace_url(target.workspace, WorkspaceResource::AlertRuleTemplates),
                ),
                MAX_READ,
            )
            .await?;
        let search = params.search.map(|s| s.trim().to_lowercase());
        let matches_text = |t: &AlertRuleTemplate, needle: &str| {
            [&t.properties.display_name, &t.properties.description]
                .iter()
                .any(|field| {
                    field
                        .as_deref()
                        .is_some_and(|text| text.to_lowercase().contains(needle))
                })
        };
        let matching: Vec<TemplateInfo> = all
            .items
            .into_iter()
            .filter(|t| {
                params.kind.as_deref().is_none_or(|k| {
                    t.kind
                        .as_deref()
                        .is_some_and(|kind| kind.eq_ignore_ascii_case(k.trim()))
                })
            })
            .filter(|t| search.as_deref().is_none_or(|s| matches_text(t, s)))
            .filter(|t| {
                params.tactic.as_deref().is_none_or(|tactic| {
                    t.properties
                        .tactics
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(tactic.trim()))
                })
            })
            .map(|t| TemplateInfo {
                template_id: t.name,
                kind: t.kind,
                display_name: t.properties.display_name,
                severity: t.properties.severity.as_deref().map(str::to_owned),
                tactics: t.properties.tactics,
                required_connectors: t
                    .properties
                    .required_data_connectors
                    .into_iter()
                    .filter_map(|c| c.connector_id)
                    .collect(),
                version: t.properties.version,
                rules_created: t.properties.alert_rules_created_by_template_count,
            })
            .collect();
        let total_matching = matching.len();
        let page = matching.into_iter().take(limit).collect();
        let Rows { rows, cut } = rows::rows(page, params.fields.as_ref());
        Ok(ListTemplatesOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            templates: rows,
            cut,
            total_matching,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    const WORKSPACE: &str = "law-contoso-sentinel";

    #[tokio::test]
    async fn a_rule_is_disabled_then_listed_among_the_disabled_and_enabled_again() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let enabled = harness
            .ok(
                &ListRules,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "enabled": true,
                       "kind": "Scheduled"}),
            )
            .await;
        let rule = &enabled["rules"][0];
        let id = rule["rule_id"].as_str().expect("an enabled scheduled rule");
        assert!(
            enabled["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .all(|r| r["enabled"] == true && r["kind"] == "Scheduled"),
            "{enabled}"
        );

        let off =
            json!({"tenant_id": tenant, "workspace": WORKSPACE, "rule_id": id, "enabled": false});
        let first = harness.ok(&SetRuleEnabled, off.clone()).await;
        assert_eq!(
            (&first["was_enabled"], &first["changed"]),
            (&json!(true), &json!(true))
        );
        let again = harness.ok(&SetRuleEnabled, off).await;
        assert_eq!(again["changed"], false, "already disabled: nothing sent");
        let disabled = harness
            .ok(
                &ListRules,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "enabled": false}),
            )
            .await;
        assert!(
            disabled["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .any(|r| r["rule_id"] == json!(id)),
            "{disabled}"
        );
        harness
            .ok(
                &SetRuleEnabled,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "rule_id": id, "enabled": true}),
            )
            .await;
        let read = harness
            .ok(
                &GetRule,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "rule_id": id}),
            )
            .await;
        assert_eq!(read["rule"]["enabled"], true, "{read}");
    }

    #[tokio::test]
    async fn unknown_rules_are_named_in_the_refusal() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let unknown = "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a";
        let message = harness
            .refusal(
                &GetRule,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "rule_id": unknown}),
            )
            .await;
        assert!(message.contains(unknown), "{message}");
        let message = harness
            .refusal(
                &SetRuleEnabled,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "rule_id": unknown,
                       "enabled": false}),
            )
            .await;
        assert!(message.contains(unknown), "{message}");
    }
}
