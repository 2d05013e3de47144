//! `hunt_create`, `hunt_list`, `hunt_get`, `hunt_update`, `hunt_delete`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tool_error;
use crate::approvals::{Change, Plan, PlanTarget};
use crate::hunts::definition::DEFAULT_RETENTION_DAYS;
use crate::hunts::store::RunSummary;
use crate::hunts::{
    AlertRule, HuntDefinition, HuntId, RunId, Schedule, Targets, format_time, resource_uri,
};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::args::{Lookback, Window};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(HuntCreate)
        .tool(HuntList)
        .tool(HuntGet)
        .tool(HuntUpdate)
        .tool(HuntDelete)
}

const UPCOMING: usize = 3;

/// A hunt as tools show it: the definition, what its schedule means and when it runs next.
#[derive(Serialize, JsonSchema)]
struct HuntView {
    hunt: HuntDefinition,
    /// The schedule in words, e.g. "every 15 minutes".
    schedule_description: String,
    /// The next scheduled runs (UTC); empty while disabled.
    next_runs: Vec<String>,
}

impl HuntView {
    fn of(context: &ToolContext, hunt: HuntDefinition) -> Self {
        let next_runs = match (hunt.enabled, hunt.schedule.compile()) {
            (true, Ok(schedule)) => schedule
                .upcoming(context.services.hunts.now(), UPCOMING)
                .into_iter()
                .map(format_time)
                .collect(),
            _ => Vec::new(),
        };
        Self {
            schedule_description: hunt.schedule.describe(),
            next_runs,
            hunt,
        }
    }

    fn line(&self) -> String {
        let state = if self.hunt.enabled {
            format!(
                "next run {}",
                self.next_runs.first().map_or("unknown", String::as_str)
            )
        } else {
            "disabled".into()
        };
        format!(
            "hunt {} '{}' ({}, {state})",
            self.hunt.id, self.hunt.name, self.schedule_description
        )
    }
}

/// Exactly one of `tenant_ids` and `all_tenants`; `None` when neither is given and that is allowed.
fn targets(
    tenant_ids: Option<Vec<TenantId>>,
    all_tenants: Option<bool>,
    required: bool,
) -> Result<Option<Targets>, ToolError> {
    match (tenant_ids, all_tenants) {
        (Some(_), Some(true)) => Err(ToolError::invalid(
            "pass either tenant_ids or all_tenants: true, not both",
        )),
        (Some(ids), _) => Ok(Some(Targets::Tenants(ids))),
        (None, Some(true)) => Ok(Some(Targets::AllEnabled)),
        (None, _) if required => Err(ToolError::invalid(
            "say which tenants to search: tenant_ids (GUIDs from tenants_list) or all_tenants: true for every enabled tenant",
        )),
        (None, _) => Ok(None),
    }
}

/// A run's window as the definition keeps it: whole minutes, at most the 30 days advanced
/// hunting holds.
fn lookback_minutes(lookback: Window<Lookback>) -> Result<u32, ToolError> {
    let lookback = lookback.at_most_days(30)?;
    let length = lookback.length();
    if length.whole_seconds() % 60 != 0 {
        return Err(ToolError::invalid(format!(
            "lookback '{}' is not a whole number of minutes",
            lookback.iso8601()
        )));
    }
    // At most 30 days, so the count fits.
    Ok(u32::try_from(length.whole_minutes()).unwrap_or(u32::MAX))
}

struct HuntCreate;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HuntCreateParams {
    /// Short unique name, e.g. "Encoded PowerShell" (1-100 characters).
    name: String,
    /// What the hunt looks for and what an analyst should do with a hit.
    description: Option<String>,
    /// Advanced hunting KQL, without a time filter: each run searches its own window (lookback).
    query: String,
    /// Tenants to search (GUIDs from tenants_list). Give this or all_tenants.
    tenant_ids: Option<Vec<TenantId>>,
    /// true: search every tenant enabled on this server at the time of each run.
    all_tenants: Option<bool>,
    /// When to run: {"every_minutes": 30}, {"every_hours": 6} or {"cron": "30 7 * * 1-5"} (UTC).
    schedule: Schedule,
    /// How far back each run searches from its scheduled time, up to 30 days; default the schedule's period
    /// (no gaps).
    lookback: Option<Window<Lookback>>,
    /// false creates the hunt paused (default true).
    enabled: Option<bool>,
    /// Days runs and results are kept (1-365, default 30).
    retention_days: Option<u32>,
    /// Post to a webhook when a run finds more rows than a threshold.
    alert: Option<AlertRule>,
}

impl Summary for HuntView {
    fn summary(&self) -> String {
        self.line()
    }
}

#[async_trait::async_trait]
impl Tool for HuntCreate {
    type Params = HuntCreateParams;
    type Output = HuntView;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hunt_create",
            title: "Create a scheduled hunt",
            description: "Creates a scheduled advanced-hunting query the server runs unattended across tenants, \
                         recording each run's rows per tenant and optionally alerting a webhook over a threshold. \
                         Missed runs are caught up (a few) or recorded as skipped.",
            toolset: Toolset::Hunts,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntCreateParams,
    ) -> Result<HuntView, ToolError> {
        let hunts = &context.services.hunts;
        let targets = targets(params.tenant_ids, params.all_tenants, true)?
            .ok_or_else(|| ToolError::invalid("no tenants given"))?;
        let now = hunts.now();
        let definition = HuntDefinition {
            id: HuntId::generate(),
            name: params.name.trim().to_string(),
            description: params
                .description
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
            query: params.query.trim().to_string(),
            targets,
            schedule: params.schedule,
            lookback_minutes: params.lookback.map(lookback_minutes).transpose()?,
            enabled: params.enabled.unwrap_or(true),
            retention_days: params.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            alert: params.alert,
            created_at: now,
            updated_at: now,
            schedule_anchor: now,
        };
        let created = hunts.create(definition).await.map_err(tool_error)?;
        Ok(HuntView::of(context, created))
    }
}

struct HuntList;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HuntListParams {
    /// true: only enabled hunts; false: only disabled ones; omitted: all.
    enabled: Option<bool>,
}

#[derive(Serialize, JsonSchema)]
struct HuntListEntry {
    hunt_id: HuntId,
    name: String,
    enabled: bool,
    schedule: String,
    /// `all enabled tenants` or the number of tenants listed.
    targets: String,
    next_run: Option<String>,
    /// The newest run, if any.
    last_run: Option<RunSummary>,
    /// Runs started and not finished (continued by the timer).
    open_runs: usize,
    alert: bool,
}

#[derive(Serialize, JsonSchema)]
struct HuntListOutput {
    hunts: Vec<HuntListEntry>,
}

impl Summary for HuntListOutput {
    fn summary(&self) -> String {
        let enabled = self.hunts.iter().filter(|h| h.enabled).count();
        format!("{} hunts, {enabled} enabled", self.hunts.len())
    }
}

#[async_trait::async_trait]
impl Tool for HuntList {
    type Params = HuntListParams;
    type Output = HuntListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hunt_list",
            title: "List scheduled hunts",
            description: "Lists the scheduled hunts: id, name, enabled, schedule, targets, next run, the newest run's status and rows, and whether an alert is set.",
            toolset: Toolset::Hunts,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntListParams,
    ) -> Result<HuntListOutput, ToolError> {
        let hunts = &context.services.hunts;
        let definitions = hunts
            .store()
            .list_definitions()
            .await
            .map_err(|e| tool_error(e.into()))?;
        let wanted: Vec<HuntDefinition> = definitions
            .into_iter()
            .filter(|h| params.enabled.is_none_or(|enabled| h.enabled == enabled))
            .collect();
        let states =
            futures::future::try_join_all(wanted.iter().map(|h| hunts.store().state(&h.id)))
                .await
                .map_err(|e| tool_error(e.into()))?;
        let entries = wanted
            .into_iter()
            .zip(states)
            .map(|(hunt, state)| {
                let view = HuntView::of(context, hunt);
                HuntListEntry {
                    hunt_id: view.hunt.id.clone(),
                    name: view.hunt.name.clone(),
                    enabled: view.hunt.enabled,
                    targets: match &view.hunt.targets {
                        Targets::AllEnabled => "all enabled tenants".into(),
                        Targets::Tenants(ids) => format!("{} tenants", ids.len()),
                    },
                    next_run: view.next_runs.first().cloned(),
                    schedule: view.schedule_description,
                    last_run: state.recent_runs.first().cloned(),
                    open_runs: state.open_runs.len(),
                    alert: view.hunt.alert.is_some(),
                }
            })
            .collect();
        Ok(HuntListOutput { hunts: entries })
    }
}

struct HuntGet;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HuntIdParams {
    /// Hunt id from hunt_list or hunt_create ('h' and 12 hexadecimal characters).
    hunt_id: HuntId,
}

#[derive(Serialize, JsonSchema)]
struct HuntGetOutput {
    #[serde(flatten)]
    view: HuntView,
    /// Runs started and not finished; the timer continues them.
    open_runs: Vec<RunId>,
    /// The newest runs (up to 20); hunt_list_runs pages through all of them.
    recent_runs: Vec<RunSummary>,
    /// MCP resources of the recent runs.
    resources: Vec<String>,
}

impl Summary for HuntGetOutput {
    fn summary(&self) -> String {
        let last = self
            .recent_runs
            .first()
            .map(|r| {
                format!(
                    "; last run {} {:?}, {} rows",
                    r.run_id, r.status, r.rows_total
                )
            })
            .unwrap_or_default();
        format!("{}{last}", self.view.line())
    }
}

#[async_trait::async_trait]
impl Tool for HuntGet {
    type Params = HuntIdParams;
    type Output = HuntGetOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hunt_get",
            title: "Get a scheduled hunt",
            description: "Gets one hunt: its definition (query, targets, schedule, lookback, retention, alert rule), the next run times, open runs and the newest runs.",
            toolset: Toolset::Hunts,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntIdParams,
    ) -> Result<HuntGetOutput, ToolError> {
        let hunts = &context.services.hunts;
        let hunt = hunts.get(&params.hunt_id).await.map_err(tool_error)?;
        let state = hunts
            .store()
            .state(&hunt.id)
            .await
            .map_err(|e| tool_error(e.into()))?;
        let resources = state
            .recent_runs
            .iter()
            .map(|r| resource_uri(&hunt.id, &r.run_id))
            .collect();
        Ok(HuntGetOutput {
            view: HuntView::of(context, hunt),
            open_runs: state.open_runs.into_iter().collect(),
            recent_runs: state.recent_runs,
            resources,
        })
    }
}

struct HuntUpdate;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HuntUpdateParams {
    /// Hunt id from hunt_list or hunt_create.
    hunt_id: HuntId,
    /// false pauses the hunt; true resumes it from now on (time it was paused is not caught up).
    enabled: Option<bool>,
    /// New name (1-100 characters, unique).
    name: Option<String>,
    description: Option<String>,
    /// New KQL; runs already started keep the query they started with.
    query: Option<String>,
    /// New tenant list (GUIDs from tenants_list); or all_tenants: true.
    tenant_ids: Option<Vec<TenantId>>,
    all_tenants: Option<bool>,
    /// New schedule, e.g. {"every_hours": 1}; occurrences count from now.
    schedule: Option<Schedule>,
    /// New lookback: whole minutes, up to 30 days.
    lookback: Option<Window<Lookback>>,
    /// New retention in days (1-365).
    retention_days: Option<u32>,
    /// New alert rule (replaces the old one).
    alert: Option<AlertRule>,
    /// true removes the alert rule.
    clear_alert: Option<bool>,
}

#[async_trait::async_trait]
impl Tool for HuntUpdate {
    type Params = HuntUpdateParams;
    type Output = HuntView;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hunt_update",
            title: "Update a scheduled hunt",
            description: "Changes a hunt: enabled, name, query, tenants, schedule, lookback, retention or alert \
                         rule; only the fields given change. Re-enabling or rescheduling counts occurrences from \
                         now.",
            toolset: Toolset::Hunts,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntUpdateParams,
    ) -> Result<HuntView, ToolError> {
        let hunts = &context.services.hunts;
        let targets = targets(params.tenant_ids, params.all_tenants, false)?;
        let lookback = params.lookback.map(lookback_minutes).transpose()?;
        if params.alert.is_some() && params.clear_alert == Some(true) {
            return Err(ToolError::invalid(
                "pass either alert or clear_alert: true, not both",
            ));
        }
        let changes = [
            params.enabled.is_some(),
            params.name.is_some(),
            params.description.is_some(),
            params.query.is_some(),
            targets.is_some(),
            params.schedule.is_some(),
            lookback.is_some(),
            params.retention_days.is_some(),
            params.alert.is_some(),
            params.clear_alert == Some(true),
        ];
        if !changes.contains(&true) {
            return Err(ToolError::invalid(
                "nothing to change: give at least one of enabled, name, description, query, tenant_ids/all_tenants, schedule, lookback, retention_days, alert, clear_alert",
            ));
        }
        if let Some(name) = &params.name {
            let others = hunts
                .store()
                .list_definitions()
                .await
                .map_err(|e| tool_error(e.into()))?;
            if let Some(same) = others
                .iter()
                .find(|h| h.id != params.hunt_id && h.name.trim().eq_ignore_ascii_case(name.trim()))
            {
                return Err(ToolError::Conflict(format!(
                    "another hunt is named '{}' (id {}); choose another name",
                    same.name, same.id
                )));
            }
        }
        let updated = hunts
            .update(&params.hunt_id, |hunt| {
                if let Some(enabled) = params.enabled {
                    hunt.enabled = enabled;
                }
                if let Some(name) = params.name {
                    hunt.name = name.trim().to_string();
                }
                if let Some(description) = params.description {
                    hunt.description =
                        Some(description.trim().to_string()).filter(|d| !d.is_empty());
                }
                if let Some(query) = params.query {
                    hunt.query = query.trim().to_string();
                }
                if let Some(targets) = targets {
                    hunt.targets = targets;
                }
                if let Some(schedule) = params.schedule {
                    hunt.schedule = schedule;
                }
                if let Some(lookback) = lookback {
                    hunt.lookback_minutes = Some(lookback);
                }
                if let Some(days) = params.retention_days {
                    hunt.retention_days = days;
                }
                if params.clear_alert == Some(true) {
                    hunt.alert = None;
                }
                if let Some(alert) = params.alert {
                    hunt.alert = Some(alert);
                }
                Ok(())
            })
            .await
            .map_err(tool_error)?;
        Ok(HuntView::of(context, updated))
    }
}

struct HuntDelete;

#[derive(Serialize, JsonSchema)]
struct HuntDeleteOutput {
    hunt_id: HuntId,
    name: String,
    /// Run records deleted with their results.
    runs_deleted: usize,
}

impl Summary for HuntDeleteOutput {
    fn summary(&self) -> String {
        format!(
            "deleted hunt {} '{}' and {} runs with their results",
            self.hunt_id, self.name, self.runs_deleted
        )
    }
}

#[async_trait::async_trait]
impl Tool for HuntDelete {
    type Params = HuntIdParams;
    type Output = HuntDeleteOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hunt_delete",
            title: "Delete a scheduled hunt",
            description: "Deletes a hunt with every run and stored result; to pause it and keep its history, \
                         hunt_update with enabled false.",
            toolset: Toolset::Hunts,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Admin,
        }
    }

    /// The hunt by name with its schedule and tenants, read first: a hunt that is not there is
    /// refused before anyone is asked.
    async fn plan(&self, context: &ToolContext, params: &HuntIdParams) -> Result<Plan, ToolError> {
        let hunt = context
            .services
            .hunts
            .get(&params.hunt_id)
            .await
            .map_err(tool_error)?;
        let state = if hunt.enabled { "enabled" } else { "disabled" };
        let target = PlanTarget::new(
            "hunt",
            hunt.id.to_string(),
            Some(hunt.name),
            Change::from_to(state, "deleted with its runs and results"),
        )
        .fact("schedule", Some(hunt.schedule.describe()))
        .fact("tenants", Some(tenant_names(context, &hunt.targets)));
        Ok(Plan::action(self.spec().title).with_targets(vec![target]))
    }

    /// Deletes the hunt of the approved plan, which read it (and its name) already.
    async fn execute(
        &self,
        context: &ToolContext,
        params: HuntIdParams,
        plan: Plan,
    ) -> Result<HuntDeleteOutput, ToolError> {
        let name = plan
            .targets
            .into_iter()
            .find_map(|target| target.name)
            .unwrap_or_default();
        let runs_deleted = context
            .services
            .hunts
            .delete(&params.hunt_id)
            .await
            .map_err(tool_error)?;
        Ok(HuntDeleteOutput {
            hunt_id: params.hunt_id,
            name,
            runs_deleted,
        })
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HuntIdParams,
    ) -> Result<HuntDeleteOutput, ToolError> {
        let plan = self.plan(context, &params).await?;
        self.execute(context, params, plan).await
    }
}

/// The tenants a hunt searches, by display name where the allow-list knows them.
fn tenant_names(context: &ToolContext, targets: &Targets) -> String {
    let registry = &context.services.tenants;
    let name = |id: &TenantId| {
        registry
            .all()
            .iter()
            .find(|t| &t.tenant_id == id)
            .map_or_else(|| id.to_string(), |t| t.display_name.clone())
    };
    match targets {
        Targets::AllEnabled => {
            let enabled: Vec<String> = registry
                .all()
                .iter()
                .filter(|t| t.enabled)
                .map(|t| t.display_name.clone())
                .collect();
            format!("every enabled tenant (now {})", enabled.join(", "))
        }
        Targets::Tenants(ids) => ids.iter().map(name).collect::<Vec<_>>().join(", "),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    const QUERY: &str = "DeviceProcessEvents | where ProcessCommandLine has '-enc' | take 10";

    #[tokio::test]
    async fn a_hunt_is_created_listed_paused_and_deleted() {
        let harness = Harness::start().await;
        let created = harness
            .ok(
                &HuntCreate,
                json!({"name": "Encoded PowerShell", "query": QUERY, "all_tenants": true,
                       "schedule": {"every_hours": 6}}),
            )
            .await;
        let id = created["hunt"]["id"].as_str().expect("hunt id").to_owned();
        assert_eq!(
            created["schedule_description"], "every 6 hours",
            "{created}"
        );
        let message = harness
            .refusal(
                &HuntCreate,
                json!({"name": "encoded powershell", "query": QUERY, "all_tenants": true,
                       "schedule": {"every_hours": 6}}),
            )
            .await;
        assert!(
            message.contains("Encoded PowerShell"),
            "names are unique: {message}"
        );

        let paused = harness
            .ok(&HuntUpdate, json!({"hunt_id": id, "enabled": false}))
            .await;
        assert_eq!(paused["hunt"]["enabled"], false, "{paused}");
        assert_eq!(
            paused["next_runs"],
            json!([]),
            "a paused hunt has no next runs"
        );
        let enabled = harness.ok(&HuntList, json!({"enabled": true})).await;
        assert_eq!(enabled["hunts"], json!([]), "{enabled}");
        let disabled = harness.ok(&HuntList, json!({"enabled": false})).await;
        assert_eq!(disabled["hunts"][0]["hunt_id"], json!(id), "{disabled}");

        harness.ok(&HuntDelete, json!({"hunt_id": id})).await;
        let message = harness.refusal(&HuntGet, json!({"hunt_id": id})).await;
        assert!(message.contains(&id), "{message}");
    }

    #[tokio::test]
    async fn definitions_are_checked_before_anything_is_stored() {
        let harness = Harness::start().await;
        let create = |extra: serde_json::Value| {
            let mut arguments = json!({"name": "x", "query": QUERY, "all_tenants": true,
                                       "schedule": {"every_hours": 6}});
            for (key, value) in extra.as_object().expect("object") {
                arguments[key] = value.clone();
            }
            arguments
        };
        for (extra, expected) in [
            (
                json!({"query": ".drop table DeviceEvents"}),
                "control command",
            ),
            (json!({"schedule": {"cron": "61 * * * *"}}), "cron"),
            (json!({"tenant_ids": [harness.contoso()]}), "all_tenants"),
            (json!({"lookback": "45d"}), "30 days"),
            (json!({"retention_days": 0}), "365"),
        ] {
            let message = harness.refusal(&HuntCreate, create(extra.clone())).await;
            assert!(message.contains(expected), "{extra}: {message}");
        }
        let listed = harness.ok(&HuntList, json!({})).await;
        assert_eq!(listed["hunts"], json!([]), "nothing was stored");
    }
}
