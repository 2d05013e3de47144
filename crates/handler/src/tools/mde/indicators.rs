//! Custom threat indicators: list, add many in one call (validated by type first), remove by id
//! or by value.

use std::collections::HashSet;

use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::common;
use crate::clients::defender::{
    IMPORT_BATCH, ImportResult, Indicator, IndicatorAction, IndicatorFilter, IndicatorId,
    IndicatorType, NewIndicator, Severity,
};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::cursor;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListIndicators)
        .tool(AddIndicators)
        .tool(RemoveIndicators)
}

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
const MAX_PER_CALL: usize = 1000;
const MAX_TEXT_CHARS: usize = 1000;
const CONCURRENCY: usize = 4;

struct ListIndicators;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
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
    /// Most indicators to return in this call (1-1000, default 100). More are reached with `cursor`.
    limit: Option<u32>,
    /// `next_cursor` from a previous call, to continue that listing (its filters are kept).
    cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ListOutput {
    tenant_id: TenantId,
    indicators: Vec<Indicator>,
    /// Present when more indicators match: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListOutput {
    fn summary(&self) -> String {
        let more = cursor::more_note(self.next_cursor.as_ref());
        format!(
            "{} indicators in tenant {}{more}",
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
            description: "Lists a tenant's custom threat indicators (file hashes, IPs, URLs, domains, certificates) with their \
                          action (block, audit, allow, ...), severity, expiry and device groups, filtered by type, action, \
                          exact value or title prefix. Paged with next_cursor. Defender shows an app with Ti.ReadWrite \
                          only the indicators it created; Ti.ReadWrite.All shows all.",
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
        Ok(ListOutput {
            tenant_id: tenant,
            indicators: collected.items,
            next_cursor,
        })
    }
}

struct AddIndicators;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IndicatorInput {
    /// FileSha1, FileSha256, FileMd5, IpAddress, Url, DomainName or CertificateThumbprint.
    indicator_type: IndicatorType,
    /// The value: a hash in hex, a public IP address, a full http(s) URL, a domain name, or a certificate's SHA-1 thumbprint.
    value: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddParams {
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// The indicators (1-1000), each a type and a value. All are checked first: if any is invalid, none is submitted.
    indicators: Vec<IndicatorInput>,
    /// What Defender does on a match: Block, BlockAndRemediate (files and certificates), Warn (Defender for Cloud Apps
    /// only), Audit (needs generate_alert true) or Allowed. Alert and AlertAndBlock were retired in January 2022.
    action: IndicatorAction,
    /// Title shown with every indicator and its alerts, e.g. the campaign or incident.
    title: String,
    /// Longer description (defaults to the title).
    description: Option<String>,
    /// Severity of the alerts the indicators raise (default Medium).
    severity: Option<Severity>,
    /// Whether a match raises an alert (default true, except for Allowed; must be true for Audit).
    generate_alert: Option<bool>,
    /// When the indicators expire, RFC 3339 (2024-12-31T00:00:00Z); absent means never.
    expiration_time: Option<String>,
    /// Limit the indicators to these device groups (names); absent means all devices.
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
            description: "Adds (or updates, for a value that already has one) custom threat indicators in one call: file \
                          hashes, IPs, URLs, domains, certificates. With Block/BlockAndRemediate, Defender \
                          blocks matching files and connections on every device in scope within minutes (remediation \
                          quarantines the file); Allowed excludes them from detection. Values are checked by type first \
                          (hash length and hex, public IPs only with private ranges refused, URL and domain syntax): one \
                          bad value refuses the whole call, naming each problem. Many values go through Defender's import.",
            toolset: Toolset::Defender,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Responder,
        }
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
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
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
            description: "Removes custom threat indicators by id or by value. What they blocked or allowed is no longer \
                          blocked or allowed once devices receive the change (minutes). Reports per entry: removed (with \
                          the ids), not found, or failed.",
            toolset: Toolset::Defender,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: RemoveParams,
    ) -> Result<RemoveOutput, ToolError> {
        let requests: Vec<Requested> = match (params.ids, params.values) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid("give either ids or values, not both"));
            }
            (None, None) => {
                return Err(ToolError::invalid(
                    "nothing to remove: give ids (from mde_list_indicators) or values",
                ));
            }
            (Some(ids), None) => ids.into_iter().map(Requested::Id).collect(),
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
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let tenant_ref = &tenant;
        let results: Vec<Removal> = futures::stream::iter(requests)
            .map(|request| async move { remove(context, tenant_ref, request).await })
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
}

enum Requested {
    Id(IndicatorId),
    Value(String),
}

async fn remove(context: &ToolContext, tenant: &TenantId, request: Requested) -> Removal {
    let defender = &context.services.defender;
    let (requested, ids) = match request {
        Requested::Id(id) => (id.as_str().to_string(), vec![id]),
        Requested::Value(value) => {
            let filter = IndicatorFilter {
                value: Some(value.clone()),
                ..IndicatorFilter::default()
            };
            match defender
                .list_indicators(tenant, defender.indicators_start(&filter), MAX_PER_CALL)
                .await
            {
                Ok(found) => (
                    value,
                    found
                        .items
                        .iter()
                        .filter_map(|i| IndicatorId::parse(&i.id).ok())
                        .collect(),
                ),
                Err(error) => {
                    return Removal {
                        requested: value,
                        outcome: RemoveOutcome::Failed,
                        removed_ids: Vec::new(),
                        detail: Some(error.to_string()),
                    };
                }
            }
        }
    };
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
