//! Custom threat indicators: list, add many in one call (validated by type first), remove by id
//! or by value.

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::common;
use crate::approvals::{Change, Plan, PlanTarget};
use crate::clients::defender::{
    IMPORT_BATCH, ImportResult, Indicator, IndicatorAction, IndicatorFilter, IndicatorId,
    IndicatorType, NewIndicator, Severity,
};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::args::{Fields, Limit};
use crate::tools::cursor;
use crate::tools::rows::{self, ListRow, Row, Rows};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListIndicators)
        .tool(AddIndicators)
        .tool(RemoveIndicators)
}

const MAX_PER_CALL: usize = 1000;
const MAX_TEXT_CHARS: usize = 1000;
const CONCURRENCY: usize = 4;
/// Up to this many values are looked up with a filtered list each; more are matched against one
/// read of every indicator, which costs a call per page instead of one per value.
const LOOKUPS_BY_VALUE: usize = 10;
/// post-ti-indicator.md, "Limitations": "There's a limit of 15,000 active indicators per tenant."
const TENANT_INDICATORS: usize = 15_000;

impl ListRow for Indicator {
    // What is blocked or allowed, how, and until when.
    const COMPACT: &'static [&'static str] = &[
        "id",
        "indicatorValue",
        "indicatorType",
        "action",
        "title",
        "severity",
        "expirationTime",
    ];
    const FREE_TEXT: &'static [&'static str] = &["title", "description"];
    // Defender has no single-indicator read; the list filtered by value gives one whole.
    const GET_TOOL: Option<&'static str> = None;
}

struct ListIndicators;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    tenant_id: Option<TenantId>,
    /// Only indicators of this type.
    indicator_type: Option<IndicatorType>,
    /// Only indicators with this action.
    action: Option<IndicatorAction>,
    /// Only the indicator with exactly this value (a hash, IP, URL or domain).
    value: Option<String>,
    /// Only indicators whose title starts with this text.
    title_starts_with: Option<String>,
    /// Retired: Defender documents no contains() on indicator titles; refused with a pointer to title_starts_with.
    #[schemars(skip)]
    title_contains: Option<String>,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<25, 1000>,
    cursor: Option<String>,
    /// Extra fields, e.g. ["description", "rbacGroupNames"], or ["all"].
    fields: Option<Fields<Indicator>>,
}

#[derive(Serialize, JsonSchema)]
struct ListOutput {
    tenant_id: TenantId,
    indicators: Vec<Row<Indicator>>,
    /// Which free-text fields were cut short, and how to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    /// Present when more indicators match: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListOutput {
    fn summary(&self) -> String {
        let more = cursor::more_note(self.next_cursor.as_ref());
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} indicators in tenant {}{more}{cut}",
            self.indicators.len(),
            self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListIndicators {
    type Params = ListParams;
    type Output = ListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_list_indicators",
            title: "List threat indicators",
            description: "Lists custom threat indicators (value, type, action, severity, expiry), filtered by \
                         type, action, exact value or title prefix. An app with Ti.ReadWrite (not .All) sees only \
                         indicators it created.",
            toolset: Toolset::Indicators,
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
        let defender = &context.services.defender;
        if params.title_contains.is_some() {
            // get-ti-indicators-collection.md and exposed-apis-odata-samples.md show no
            // contains(); startswith is the documented function.
            return Err(ToolError::invalid(
                "title_contains is no longer accepted: Defender's indicator list documents no contains() filter; \
                 use title_starts_with (titles that start with the text)",
            ));
        }
        let filtered = params.indicator_type.is_some()
            || params.action.is_some()
            || params.value.is_some()
            || params.title_starts_with.is_some();
        let position = common::list_position(
            &tenant,
            params.cursor.as_deref(),
            filtered,
            |position| defender.check_position(position),
            || {
                let filter = IndicatorFilter {
                    indicator_type: params.indicator_type,
                    action: params.action,
                    value: params
                        .value
                        .as_deref()
                        .map(|v| common::one_line("value", v, MAX_TEXT_CHARS))
                        .transpose()?,
                    title_starts_with: params
                        .title_starts_with
                        .as_deref()
                        .map(|t| common::one_line("title_starts_with", t, MAX_TEXT_CHARS))
                        .transpose()?,
                };
                Ok(defender.indicators_start(&filter))
            },
        )?;
        let collected = defender.list_indicators(&tenant, position, limit).await?;
        let next_cursor = collected
            .next
            .map(|position| cursor::encode(&tenant, position));
        let Rows { rows, cut } = rows::rows(collected.items, params.fields.as_ref());
        Ok(ListOutput {
            tenant_id: tenant,
            indicators: rows,
            cut,
            next_cursor,
        })
    }
}

struct AddIndicators;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IndicatorInput {
    /// Kind of value.
    indicator_type: IndicatorType,
    /// Hex hash, public IP, http(s) URL, domain, or certificate SHA-1 thumbprint.
    value: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddParams {
    tenant_id: Option<TenantId>,
    /// The indicators (1-1000).
    indicators: Vec<IndicatorInput>,
    /// What Defender does on a match.
    action: IndicatorAction,
    /// Title shown with the indicators and their alerts (campaign, incident).
    title: String,
    /// Longer description (defaults to the title).
    description: Option<String>,
    /// Severity of the alerts the indicators raise (default Medium).
    severity: Option<Severity>,
    /// Whether a match raises an alert (default true except for Allowed).
    generate_alert: Option<bool>,
    /// Expiry, RFC 3339; absent: never.
    expiration_time: Option<String>,
    /// Device group names to limit them to; absent: all devices.
    device_groups: Option<Vec<String>>,
    /// What an analyst should do when an indicator matches.
    recommended_actions: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Submitted {
    indicator_type: IndicatorType,
    value: String,
    /// The indicator's id when Defender accepted it.
    id: Option<String>,
    ok: bool,
    failure_reason: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct AddOutput {
    tenant_id: TenantId,
    action: IndicatorAction,
    submitted: Vec<Submitted>,
    succeeded: usize,
    failed: usize,
    /// Duplicates in the request, submitted once.
    duplicates_dropped: usize,
}

impl Summary for AddOutput {
    fn summary(&self) -> String {
        format!(
            "{} indicators submitted with action {} in tenant {}: {} accepted, {} failed",
            self.submitted.len(),
            self.action.as_str(),
            self.tenant_id,
            self.succeeded,
            self.failed
        )
    }
}

#[async_trait::async_trait]
impl Tool for AddIndicators {
    type Params = AddParams;
    type Output = AddOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_add_indicators",
            title: "Add threat indicators",
            description: "Adds or updates custom threat indicators (hashes, IPs, URLs, domains, certificates): Block stops \
                          matching files and connections on every device in scope within minutes; Allowed excludes them \
                          from detection. One invalid value refuses the whole call, naming each problem.",
            toolset: Toolset::Indicators,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Responder,
        }
    }

    /// Each value with its type and what happens to it: added with the action, or, where the
    /// tenant has an indicator with the same value and type (Defender then updates it), its
    /// current action and the new one. An app with Ti.ReadWrite (not .All) sees only the
    /// indicators it created, so one a person made shows as added.
    async fn plan(&self, context: &ToolContext, params: &AddParams) -> Result<Plan, ToolError> {
        let (indicators, _) = checked_indicators(params)?;
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let wanted: Vec<Requested> = indicators
            .iter()
            .map(|i| Requested::Value(i.indicator_value.clone()))
            .collect();
        let existing = find_indicators(context, &tenant, &wanted).await?;
        let action = params.action.as_str();
        let mut updates = 0;
        let targets = indicators
            .iter()
            .map(|new| {
                let id = format!("{} {}", new.indicator_type.as_str(), new.indicator_value);
                let current = existing.iter().find(|e| {
                    e.indicator_type == new.indicator_type.as_str()
                        && e.indicator_value.eq_ignore_ascii_case(&new.indicator_value)
                });
                match current {
                    Some(current) => {
                        updates += 1;
                        let before = current.action.as_deref().unwrap_or("no action");
                        PlanTarget::new("indicator", id, None, Change::from_to(before, action))
                            .fact("existing id", Some(current.id.as_str()))
                            .fact("title", current.title.as_deref())
                    }
                    None => PlanTarget::new(
                        "indicator",
                        id,
                        None,
                        Change::to(format!("added as {action}")),
                    ),
                }
            })
            .collect();
        let mut plan =
            Plan::action(format!("{}: {action}", self.spec().title)).with_targets(targets);
        if updates > 0 {
            plan = plan.note(format!(
                "Where an indicator exists already ({updates} here), Defender updates it: its title, description, \
                 severity, expiry and device groups become this call's."
            ));
        }
        Ok(plan)
    }

    async fn call(&self, context: &ToolContext, params: AddParams) -> Result<AddOutput, ToolError> {
        let (indicators, duplicates_dropped) = checked_indicators(&params)?;
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let defender = &context.services.defender;
        let mut submitted = Vec::with_capacity(indicators.len());
        if let [single] = indicators.as_slice() {
            let result = defender.submit_indicator(&tenant, single).await;
            submitted.push(match result {
                Ok(indicator) => accepted(single, Some(indicator.id)),
                Err(error) => refused(single, error.to_string()),
            });
        } else {
            for batch in indicators.chunks(IMPORT_BATCH) {
                match defender.import_indicators(&tenant, batch).await {
                    Ok(results) => submitted.extend(
                        batch
                            .iter()
                            .enumerate()
                            .map(|(index, indicator)| imported(indicator, index, &results)),
                    ),
                    Err(error) => submitted.extend(
                        batch
                            .iter()
                            .map(|i| refused(i, format!("the import call failed: {error}"))),
                    ),
                }
            }
        }
        let succeeded = submitted.iter().filter(|s| s.ok).count();
        Ok(AddOutput {
            tenant_id: tenant,
            action: params.action,
            failed: submitted.len() - succeeded,
            succeeded,
            submitted,
            duplicates_dropped,
        })
    }
}

/// What the import said of the `index`-th indicator of its batch: the result at the same position
/// when it names this value (or no value), else the result that names it.
fn imported(indicator: &NewIndicator, index: usize, results: &[ImportResult]) -> Submitted {
    let result = results
        .get(index)
        .filter(|r| {
            r.indicator
                .as_deref()
                .is_none_or(|v| v.eq_ignore_ascii_case(&indicator.indicator_value))
        })
        .or_else(|| {
            results
                .iter()
                .find(|r| r.indicator.as_deref() == Some(indicator.indicator_value.as_str()))
        });
    match result {
        Some(r) if !r.is_failed => accepted(indicator, r.id.clone()),
        Some(r) => refused(
            indicator,
            r.failure_reason
                .clone()
                .unwrap_or_else(|| "Defender gave no reason".into()),
        ),
        None => refused(
            indicator,
            "Defender's answer did not mention this value".into(),
        ),
    }
}

fn accepted(indicator: &NewIndicator, id: Option<String>) -> Submitted {
    Submitted {
        indicator_type: indicator.indicator_type,
        value: indicator.indicator_value.clone(),
        id,
        ok: true,
        failure_reason: None,
    }
}

fn refused(indicator: &NewIndicator, reason: String) -> Submitted {
    Submitted {
        indicator_type: indicator.indicator_type,
        value: indicator.indicator_value.clone(),
        id: None,
        ok: false,
        failure_reason: Some(reason),
    }
}

/// Every indicator checked and normalised, duplicates dropped; or every problem at once.
fn checked_indicators(params: &AddParams) -> Result<(Vec<NewIndicator>, usize), ToolError> {
    if params.indicators.is_empty() || params.indicators.len() > MAX_PER_CALL {
        return Err(ToolError::invalid(format!(
            "indicators must hold 1 to {MAX_PER_CALL} entries, got {}",
            params.indicators.len()
        )));
    }
    let title = common::one_line("title", &params.title, MAX_TEXT_CHARS)?;
    let generate_alert = params
        .generate_alert
        .unwrap_or(params.action != IndicatorAction::Allowed);
    if let Some(reason) = params.action.refuses_alert_setting(generate_alert) {
        return Err(ToolError::invalid(reason));
    }
    let description = match &params.description {
        Some(text) if text.trim().chars().count() > MAX_TEXT_CHARS => {
            return Err(ToolError::invalid(format!(
                "description is longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        Some(text) if !text.trim().is_empty() => text.trim().to_string(),
        _ => title.clone(),
    };
    let expiration_time = params
        .expiration_time
        .as_deref()
        .map(future_instant)
        .transpose()?;
    let device_groups: Vec<String> = match &params.device_groups {
        Some(groups) => groups
            .iter()
            .map(|g| common::one_line("device_groups entry", g, MAX_TEXT_CHARS))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut indicators = Vec::new();
    for (index, input) in params.indicators.iter().enumerate() {
        let checked = input.indicator_type.check(&input.value).and_then(|value| {
            match params.action.refuses(input.indicator_type) {
                Some(reason) => Err(reason),
                None => Ok(value),
            }
        });
        match checked {
            Err(reason) => problems.push(format!(
                "indicators[{index}] ({} '{}'): {reason}",
                input.indicator_type.as_str(),
                input.value.trim().chars().take(120).collect::<String>()
            )),
            Ok(value) if seen.insert((input.indicator_type, value.clone())) => {
                indicators.push(NewIndicator {
                    indicator_value: value,
                    indicator_type: input.indicator_type,
                    action: params.action,
                    title: title.clone(),
                    description: description.clone(),
                    severity: params.severity.unwrap_or(Severity::Medium),
                    generate_alert,
                    expiration_time: expiration_time.clone(),
                    recommended_actions: params
                        .recommended_actions
                        .as_deref()
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(str::to_string),
                    rbac_group_names: device_groups.clone(),
                })
            }
            Ok(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(ToolError::invalid(format!(
            "{} of {} indicators are invalid, so none was submitted: {}",
            problems.len(),
            params.indicators.len(),
            problems.join("; ")
        )));
    }
    let duplicates = params.indicators.len() - indicators.len();
    Ok((indicators, duplicates))
}

fn future_instant(text: &str) -> Result<String, ToolError> {
    let instant = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        ToolError::invalid(format!(
            "expiration_time '{text}' is not an RFC 3339 date-time such as 2024-12-31T00:00:00Z"
        ))
    })?;
    if instant <= OffsetDateTime::now_utc() {
        return Err(ToolError::invalid(format!(
            "expiration_time '{text}' is in the past; the indicators would expire at once"
        )));
    }
    instant
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|error| ToolError::invalid(format!("expiration_time '{text}': {error}")))
}

struct RemoveIndicators;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RemoveParams {
    tenant_id: Option<TenantId>,
    /// Indicators to remove by id (from mde_list_indicators). Give ids or values.
    ids: Option<Vec<IndicatorId>>,
    /// Indicators to remove by value (a hash, IP, URL or domain): every indicator with that value is removed,
    /// whatever its type.
    values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum RemoveOutcome {
    Removed,
    NotFound,
    Failed,
}

#[derive(Serialize, JsonSchema)]
struct Removal {
    /// The id or value as given.
    requested: String,
    outcome: RemoveOutcome,
    removed_ids: Vec<String>,
    detail: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct RemoveOutput {
    tenant_id: TenantId,
    results: Vec<Removal>,
    removed: usize,
}

impl Summary for RemoveOutput {
    fn summary(&self) -> String {
        let missing = self
            .results
            .iter()
            .filter(|r| r.outcome == RemoveOutcome::NotFound)
            .count();
        let failed = self
            .results
            .iter()
            .filter(|r| r.outcome == RemoveOutcome::Failed)
            .count();
        format!(
            "{} indicators removed in tenant {}; {missing} not found, {failed} failed",
            self.removed, self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for RemoveIndicators {
    type Params = RemoveParams;
    type Output = RemoveOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_remove_indicators",
            title: "Remove threat indicators",
            description: "Removes custom threat indicators by id or value; what they blocked or allowed stops \
                         within minutes. Reports per entry: removed, not found or failed.",
            toolset: Toolset::Indicators,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Responder,
        }
    }

    /// Every indicator the ids and values name, with its value, type and current action, read
    /// first: entries that name none are reported as not found, and a call where none names
    /// one is refused before anyone is asked.
    async fn plan(&self, context: &ToolContext, params: &RemoveParams) -> Result<Plan, ToolError> {
        let requests = requests(params)?;
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let found = find_indicators(context, &tenant, &requests).await?;
        let missing: Vec<&str> = requests
            .iter()
            .filter(|r| !found.iter().any(|i| r.names(&i.id, &i.indicator_value)))
            .map(Requested::as_str)
            .collect();
        if found.is_empty() {
            return Err(ToolError::NotFound(format!(
                "no indicator in tenant {tenant} matches the {} given ({}); nothing to remove (mde_list_indicators lists them)",
                if params.ids.is_some() {
                    "ids"
                } else {
                    "values"
                },
                missing.join(", ")
            )));
        }
        // An indicator named twice (by a value and its duplicate) is one target.
        let targets: BTreeMap<String, PlanTarget> = found
            .into_iter()
            .map(|indicator| {
                let before = indicator.action.as_deref().unwrap_or("no action");
                let target = PlanTarget::new(
                    "indicator",
                    indicator.id.clone(),
                    Some(indicator.indicator_value.clone()),
                    Change::from_to(before, "removed"),
                )
                .fact("type", Some(indicator.indicator_type.as_str()))
                .fact("title", indicator.title.as_deref())
                .fact("expires", indicator.expiration_time.as_deref());
                (indicator.id, target)
            })
            .collect();
        let mut plan =
            Plan::action(self.spec().title).with_targets(targets.into_values().collect());
        if !missing.is_empty() {
            plan = plan.note(format!(
                "No indicator has {}: reported as not found, nothing is done for them.",
                missing.join(", ")
            ));
        }
        Ok(plan)
    }

    /// Removes exactly the indicators of the approved plan (not a new reading of the values),
    /// reported per id or value as given.
    async fn execute(
        &self,
        context: &ToolContext,
        params: RemoveParams,
        plan: Plan,
    ) -> Result<RemoveOutput, ToolError> {
        let requests = requests(&params)?;
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let planned = plan
            .targets
            .into_iter()
            .map(|target| {
                let id = IndicatorId::parse(&target.id)
                    .map_err(|error| ToolError::invalid(error.to_string()))?;
                Ok((id, target.name.unwrap_or_default()))
            })
            .collect::<Result<Vec<_>, ToolError>>()?;
        let (tenant_ref, planned) = (&tenant, &planned);
        let results: Vec<Removal> = futures::stream::iter(requests)
            .map(|request| async move {
                let ids = planned
                    .iter()
                    .filter(|(id, value)| request.names(id.as_str(), value))
                    .map(|(id, _)| id.clone())
                    .collect();
                remove(context, tenant_ref, request.as_str().to_string(), ids).await
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let removed = results.iter().map(|r| r.removed_ids.len()).sum();
        Ok(RemoveOutput {
            tenant_id: tenant,
            results,
            removed,
        })
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: RemoveParams,
    ) -> Result<RemoveOutput, ToolError> {
        let plan = self.plan(context, &params).await?;
        self.execute(context, params, plan).await
    }
}

/// An indicator a call names: by Defender's id, or by value (any type).
enum Requested {
    Id(IndicatorId),
    Value(String),
}

impl Requested {
    fn as_str(&self) -> &str {
        match self {
            Self::Id(id) => id.as_str(),
            Self::Value(value) => value,
        }
    }

    /// Whether the indicator with this id and value is one this entry names. Values compare
    /// without ASCII case: hashes are stored in lower case (see `IndicatorType::check`), and a
    /// person may paste one in capitals.
    fn names(&self, id: &str, value: &str) -> bool {
        match self {
            Self::Id(wanted) => wanted.as_str() == id,
            Self::Value(wanted) => wanted.eq_ignore_ascii_case(value),
        }
    }
}

/// The ids or values of a removal, checked.
fn requests(params: &RemoveParams) -> Result<Vec<Requested>, ToolError> {
    let requests: Vec<Requested> = match (&params.ids, &params.values) {
        (Some(_), Some(_)) => {
            return Err(ToolError::invalid("give either ids or values, not both"));
        }
        (None, None) => {
            return Err(ToolError::invalid(
                "nothing to remove: give ids (from mde_list_indicators) or values",
            ));
        }
        (Some(ids), None) => ids.iter().cloned().map(Requested::Id).collect(),
        (None, Some(values)) => values
            .iter()
            .map(|v| common::one_line("values entry", v, MAX_TEXT_CHARS).map(Requested::Value))
            .collect::<Result<_, _>>()?,
    };
    if requests.is_empty() || requests.len() > MAX_PER_CALL {
        return Err(ToolError::invalid(format!(
            "give 1 to {MAX_PER_CALL} ids or values, got {}",
            requests.len()
        )));
    }
    Ok(requests)
}

/// The tenant's indicators that the entries name, read only. Defender has no read of one
/// indicator by id, so ids, and values too many to look up one by one, are matched against the
/// whole list.
async fn find_indicators(
    context: &ToolContext,
    tenant: &TenantId,
    requested: &[Requested],
) -> Result<Vec<Indicator>, ToolError> {
    let defender = &context.services.defender;
    let values: Option<Vec<&str>> = requested
        .iter()
        .map(|r| match r {
            Requested::Value(value) => Some(value.as_str()),
            Requested::Id(_) => None,
        })
        .collect();
    let listed = match values {
        Some(values) if values.len() <= LOOKUPS_BY_VALUE => {
            // Owned values: a stream of borrowed ones is not provably Send inside the async trait.
            let values: Vec<String> = values.into_iter().map(str::to_string).collect();
            let lists: Vec<_> = futures::stream::iter(values)
                .map(|value| async move {
                    let filter = IndicatorFilter {
                        value: Some(value),
                        ..IndicatorFilter::default()
                    };
                    defender
                        .list_indicators(tenant, defender.indicators_start(&filter), MAX_PER_CALL)
                        .await
                })
                .buffered(CONCURRENCY)
                .collect()
                .await;
            let mut listed = Vec::new();
            for list in lists {
                listed.extend(list?.items);
            }
            listed
        }
        _ => {
            let everything = defender.indicators_start(&IndicatorFilter::default());
            defender
                .list_indicators(tenant, everything, TENANT_INDICATORS)
                .await?
                .items
        }
    };
    Ok(listed
        .into_iter()
        .filter(|i| requested.iter().any(|r| r.names(&i.id, &i.indicator_value)))
        .collect())
}

/// Deletes the indicators one entry resolved to; one Defender no longer has counts as not found.
async fn remove(
    context: &ToolContext,
    tenant: &TenantId,
    requested: String,
    ids: Vec<IndicatorId>,
) -> Removal {
    let defender = &context.services.defender;
    let mut removal = Removal {
        requested,
        outcome: RemoveOutcome::NotFound,
        removed_ids: Vec::new(),
        detail: None,
    };
    for id in ids {
        match defender.delete_indicator(tenant, &id).await {
            Ok(()) => removal.removed_ids.push(id.as_str().to_string()),
            Err(error) if error.is_not_found() => {}
            Err(error) => {
                removal.outcome = RemoveOutcome::Failed;
                removal.detail = Some(format!("indicator {id}: {error}"));
                return removal;
            }
        }
    }
    if !removal.removed_ids.is_empty() {
        removal.outcome = RemoveOutcome::Removed;
    }
    removal
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn added_indicators_are_listed_by_value_and_removed_by_value() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let hash = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
        let added = harness
            .ok(
                &AddIndicators,
                json!({"tenant_id": tenant, "action": "Block", "title": "INC-7 dropper",
                "indicators": [
                    {"indicator_type": "FileSha256", "value": hash},
                    {"indicator_type": "FileSha256", "value": hash.to_uppercase()},
                    {"indicator_type": "DomainName", "value": "bad.example.net"}
                ]}),
            )
            .await;
        assert_eq!(added["succeeded"], 2, "{added}");
        assert_eq!(
            added["duplicates_dropped"], 1,
            "one hash in two cases: {added}"
        );

        let listed = harness
            .ok(&ListIndicators, json!({"tenant_id": tenant, "value": hash}))
            .await;
        let indicators = listed["indicators"].as_array().expect("indicators");
        assert_eq!(indicators.len(), 1, "{listed}");
        assert_eq!(indicators[0]["title"], "INC-7 dropper");

        let removed = harness
            .ok(
                &RemoveIndicators,
                json!({"tenant_id": tenant, "values": [hash, "never-added.example.org"]}),
            )
            .await;
        assert_eq!(removed["results"][0]["outcome"], "removed", "{removed}");
        assert_eq!(removed["results"][1]["outcome"], "not_found", "{removed}");
        let listed = harness
            .ok(&ListIndicators, json!({"tenant_id": tenant, "value": hash}))
            .await;
        assert_eq!(listed["indicators"], json!([]));
    }

    #[tokio::test]
    async fn values_that_are_not_their_type_are_refused_naming_the_value() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let message = harness
            .refusal(
                &AddIndicators,
                json!({"tenant_id": tenant, "action": "Block", "title": "x",
                       "indicators": [{"indicator_type": "FileSha256", "value": "abc123"}]}),
            )
            .await;
        assert!(message.contains("abc123"), "{message}");
        let message = harness
            .refusal(
                &AddIndicators,
                json!({"tenant_id": tenant, "action": "Quarantine", "title": "x",
                       "indicators": [{"indicator_type": "DomainName", "value": "bad.example.net"}]}),
            )
            .await;
        assert!(message.contains("Quarantine"), "{message}");
        let message = harness
            .refusal(
                &ListIndicators,
                json!({"tenant_id": tenant, "title_contains": "INC"}),
            )
            .await;
        assert!(message.contains("title_starts_with"), "{message}");
        let message = harness
            .refusal(&RemoveIndicators, json!({"tenant_id": tenant}))
            .await;
        assert!(
            message.contains("ids") && message.contains("values"),
            "{message}"
        );
    }
}
