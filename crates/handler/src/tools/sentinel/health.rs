//! `sentinel_health_check`: per workspace, is it reachable, is data arriving (per table, and
//! per key table in detail), are analytics rules enabled and running without failures, how
//! large is the incident backlog, and did any table's ingestion drop or spike.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::find_workspace;
use crate::clients::arm::{AlertRule, ArmClient, Incident, Workspace, WorkspaceResource};
use crate::clients::log_analytics::{QueryResponse, ResultTable};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::ListPosition;
use crate::services::Services;
use crate::tenants::{TenantConfig, TenantId, WorkspaceConfig};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(HealthCheck)
}

/// A table whose newest row is older than this is reported as stale.
const STALE_AFTER_HOURS: i64 = 24;
/// Enough to count every rule and open incident of a real workspace, bounded so one call stays cheap.
const MAX_LISTED: usize = 5000;
/// Per table: newest row, rows in the last day and in the last week.
const INGESTION_QUERY: &str = "union withsource=TableName * | where TimeGenerated > ago(7d) | summarize LastIngestion = max(TimeGenerated), LastDay = countif(TimeGenerated > ago(1d)), Week = count() by TableName";
/// Analytics rule runs that failed in the last day (Sentinel health monitoring).
const RULE_FAILURES_QUERY: &str = "SentinelHealth | where TimeGenerated > ago(1d) | where SentinelResourceType == 'Analytics Rule' and Status == 'Failure' | summarize Failures = count(), LastFailure = max(TimeGenerated), Reason = any(Reason) by SentinelResourceId, SentinelResourceName";
/// Tables most SOCs rely on; the detailed check reports each, arriving or not.
const KEY_TABLES: &[&str] = &[
    "SecurityEvent",
    "SigninLogs",
    "AuditLogs",
    "AzureActivity",
    "CommonSecurityLog",
    "Syslog",
    "SecurityAlert",
    "OfficeActivity",
    "Heartbeat",
];
/// An ingestion anomaly needs a baseline of at least this many rows a day.
const MIN_DAILY_BASELINE: f64 = 10.0;

struct HealthCheck;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Scope {
    /// One tenant: `tenant_id`, or the default tenant.
    #[default]
    One,
    /// Every enabled tenant on the allow-list.
    All,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Depth {
    /// Reachability, stale tables, rules enabled, open incidents by severity.
    #[default]
    Quick,
    /// Also: each key table's freshness, analytics rules failing in the last day, the age of the
    /// oldest open incident and unassigned incidents, and tables whose ingestion dropped or spiked.
    Detailed,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HealthCheckParams {
    /// Tenant whose workspaces to check (a GUID from tenants_list). Optional only when the server has one default tenant; not allowed with scope "all".
    tenant_id: Option<TenantId>,
    /// "one" (default): one tenant; "all": every enabled tenant this server manages.
    scope: Option<Scope>,
    /// Name of one workspace to check; all of the tenant's workspaces when omitted. Only with scope "one".
    workspace: Option<String>,
    /// "quick" (default) or "detailed".
    depth: Option<Depth>,
}

#[derive(Serialize, JsonSchema)]
struct HealthCheckOutput {
    scope: Scope,
    depth: Depth,
    /// True when every workspace is reachable, every table seen in the last 7 days is fresh, no check failed,
    /// and (detailed) no analytics rule failed and no ingestion anomaly was found.
    healthy: bool,
    tenants_checked: Vec<TenantId>,
    workspaces: Vec<WorkspaceHealth>,
    /// Tenants skipped and checks that were not possible, with the reason.
    notes: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
struct WorkspaceHealth {
    tenant_id: TenantId,
    workspace: String,
    reachable: bool,
    /// Newest ingestion time over all tables (RFC 3339), when any data arrived in the last 7 days.
    last_ingestion: Option<String>,
    /// Tables whose newest row is older than 24 hours.
    stale_tables: Vec<TableFreshness>,
    tables_seen: usize,
    analytics_rules: Option<RuleCounts>,
    open_incidents: Option<IncidentCounts>,
    /// Detailed: each key table, with its newest row or none in the last 7 days.
    key_tables: Option<Vec<KeyTable>>,
    /// Detailed: tables whose last day differs sharply from their daily average of the 6 days before.
    ingestion_anomalies: Option<Vec<IngestionAnomaly>>,
    /// Checks that could not be completed, with the reason.
    problems: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
struct TableFreshness {
    table: String,
    last_ingestion: String,
    hours_since: i64,
}

#[derive(Serialize, JsonSchema)]
struct KeyTable {
    table: String,
    last_ingestion: Option<String>,
    hours_since: Option<i64>,
}

#[derive(Serialize, JsonSchema)]
struct IngestionAnomaly {
    table: String,
    /// "drop" or "spike".
    kind: String,
    rows_last_day: i64,
    daily_average_before: f64,
}

#[derive(Serialize, JsonSchema)]
struct RuleCounts {
    enabled: usize,
    total: usize,
    /// Detailed: rules with failed runs in the last day (from SentinelHealth); absent when unknown.
    failing: Option<Vec<FailingRule>>,
}

#[derive(Serialize, JsonSchema)]
struct FailingRule {
    rule_id: String,
    display_name: String,
    failures_last_day: i64,
    last_failure: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct IncidentCounts {
    total: usize,
    by_severity: BTreeMap<String, usize>,
    /// True when there were more open incidents than could be counted in one check.
    capped: bool,
    /// Detailed: hours since the oldest open incident was created.
    oldest_open_hours: Option<i64>,
    /// Detailed: open incidents without an owner.
    unassigned: Option<usize>,
}

impl Summary for HealthCheckOutput {
    fn summary(&self) -> String {
        let lines: Vec<String> = self
            .workspaces
            .iter()
            .map(|w| {
                if !w.reachable {
                    return format!("{}: unreachable", w.workspace);
                }
                let rules = w.analytics_rules.as_ref().map_or_else(
                    || "rules unknown".into(),
                    |r| {
                        let failing = r
                            .failing
                            .as_ref()
                            .map(|f| format!(", {} failing", f.len()))
                            .unwrap_or_default();
                        format!("{}/{} rules enabled{failing}", r.enabled, r.total)
                    },
                );
                let incidents = w.open_incidents.as_ref().map_or_else(
                    || "incidents unknown".into(),
                    |i| format!("{} open incidents", i.total),
                );
                let anomalies = w
                    .ingestion_anomalies
                    .as_ref()
                    .map(|a| format!(", {} ingestion anomalies", a.len()))
                    .unwrap_or_default();
                format!(
                    "{}: {} stale of {} tables, {rules}, {incidents}{anomalies}",
                    w.workspace,
                    w.stale_tables.len(),
                    w.tables_seen
                )
            })
            .collect();
        format!(
            "{} ({})",
            if self.healthy {
                "healthy"
            } else {
                "needs attention"
            },
            lines.join("; ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for HealthCheck {
    type Params = HealthCheckParams;
    type Output = HealthCheckOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_health_check",
            title: "Sentinel health check",
            description: "Checks Sentinel workspaces of one tenant or all (scope all): ARM reachability, newest \
                         ingestion and tables silent for 24 h, rules enabled, open incidents by severity; depth \
                         detailed adds table freshness, failing rules, oldest and unassigned incidents, ingestion \
                         anomalies.",
            toolset: Toolset::SentinelWorkspaces,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: HealthCheckParams,
    ) -> Result<HealthCheckOutput, ToolError> {
        let scope = params.scope.unwrap_or_default();
        let depth = params.depth.unwrap_or_default();
        let mut notes = Vec::new();
        let targets: Vec<(&TenantConfig, &WorkspaceConfig)> = match scope {
            Scope::One => {
                let tenant = context
                    .services
                    .tenants
                    .resolve(params.tenant_id.as_ref())?;
                match &params.workspace {
                    Some(name) => vec![(tenant, find_workspace(tenant, Some(name))?)],
                    None if tenant.workspaces.is_empty() => {
                        return Err(ToolError::invalid(format!(
                            "tenant {} has no Sentinel workspaces configured",
                            tenant.tenant_id
                        )));
                    }
                    None => tenant.workspaces.iter().map(|w| (tenant, w)).collect(),
                }
            }
            Scope::All => {
                if params.tenant_id.is_some() || params.workspace.is_some() {
                    return Err(ToolError::invalid(
                        "scope \"all\" checks every tenant: leave tenant_id and workspace out, or use scope \"one\"",
                    ));
                }
                let mut targets = Vec::new();
                for tenant in context.services.tenants.all().iter().filter(|t| t.enabled) {
                    // Resolved through the allow-list like any other call.
                    let tenant = context.services.tenants.resolve(Some(&tenant.tenant_id))?;
                    if tenant.workspaces.is_empty() {
                        notes.push(format!(
                            "tenant {} ({}) has no Sentinel workspaces configured",
                            tenant.tenant_id, tenant.display_name
                        ));
                    }
                    targets.extend(tenant.workspaces.iter().map(|w| (tenant, w)));
                }
                targets
            }
        };
        let mut tenants_checked: Vec<TenantId> =
            targets.iter().map(|(t, _)| t.tenant_id.clone()).collect();
        tenants_checked.dedup();
        let now = OffsetDateTime::now_utc();
        let checks = targets.into_iter().map(|(tenant, workspace)| {
            check_workspace(&context.services, &tenant.tenant_id, workspace, depth, now)
        });
        let mut workspaces = Vec::new();
        for (health, note) in futures::future::join_all(checks).await {
            notes.extend(note);
            workspaces.push(health);
        }
        let healthy = workspaces.iter().all(|w| {
            w.reachable
                && w.stale_tables.is_empty()
                && w.problems.is_empty()
                && w.ingestion_anomalies.as_ref().is_none_or(Vec::is_empty)
                && w.analytics_rules
                    .as_ref()
                    .and_then(|r| r.failing.as_ref())
                    .is_none_or(Vec::is_empty)
        });
        Ok(HealthCheckOutput {
            scope,
            depth,
            healthy,
            tenants_checked,
            workspaces,
            notes,
        })
    }
}

async fn check_workspace(
    services: &Services,
    tenant: &TenantId,
    workspace: &WorkspaceConfig,
    depth: Depth,
    now: OffsetDateTime,
) -> (WorkspaceHealth, Option<String>) {
    let mut health = WorkspaceHealth {
        tenant_id: tenant.clone(),
        workspace: workspace.workspace_name.clone(),
        reachable: false,
        last_ingestion: None,
        stale_tables: Vec::new(),
        tables_seen: 0,
        analytics_rules: None,
        open_incidents: None,
        key_tables: None,
        ingestion_anomalies: None,
        problems: Vec::new(),
    };
    let arm = &services.arm;
    if let Err(error) = arm
        .get::<Workspace>(
            tenant,
            arm.workspace_url(workspace, WorkspaceResource::Workspace),
        )
        .await
    {
        health.problems.push(format!("workspace: {error}"));
        return (health, None);
    }
    health.reachable = true;
    let detailed = depth == Depth::Detailed;
    let open = ArmClient::with_query(
        arm.workspace_url(workspace, WorkspaceResource::Incidents),
        &[("$filter", "properties/status ne 'Closed'")],
    );
    let failures = async {
        if detailed {
            Some(
                services
                    .log_analytics
                    .query(
                        tenant,
                        &workspace.workspace_id,
                        RULE_FAILURES_QUERY,
                        Some("P1D"),
                    )
                    .await,
            )
        } else {
            None
        }
    };
    let (ingestion, rules, incidents, failures) = tokio::join!(
        services.log_analytics.query(
            tenant,
            &workspace.workspace_id,
            INGESTION_QUERY,
            Some("P7D")
        ),
        arm.list::<AlertRule>(
            tenant,
            ListPosition::start(arm.workspace_url(workspace, WorkspaceResource::AlertRules)),
            MAX_LISTED
        ),
        arm.list::<Incident>(tenant, ListPosition::start(open), MAX_LISTED),
        failures,
    );
    match ingestion.map_err(|e| e.to_string()).and_then(|r| {
        // A 200 can still carry `queryResults.error`: the figures below are then incomplete.
        if let Some(partial) = &r.error {
            health
                .problems
                .push(format!("data freshness: partial query result: {partial}"));
        }
        ingestion_rows(&r)
    }) {
        Ok(rows) => apply_ingestion(&mut health, &rows, detailed, now),
        Err(problem) => health.problems.push(format!("data freshness: {problem}")),
    }
    let mut note = None;
    match rules {
        Ok(rules) => {
            let enabled = rules
                .items
                .iter()
                .filter(|r| r.properties.enabled == Some(true))
                .count();
            let failing = match failures {
                None => None,
                Some(Ok(response)) => {
                    if let Some(partial) = &response.error {
                        health
                            .problems
                            .push(format!("rule failures: partial query result: {partial}"));
                    }
                    failing_rules(&response)
                        .map_err(|p| health.problems.push(format!("rule failures: {p}")))
                        .ok()
                }
                Some(Err(error)) => {
                    // Without health monitoring there is no SentinelHealth table: a recommendation, not a fault.
                    note = Some(format!(
                        "{}: analytics rule run health unavailable (is Sentinel health monitoring enabled?): {error}",
                        workspace.workspace_name
                    ));
                    None
                }
            };
            health.analytics_rules = Some(RuleCounts {
                enabled,
                total: rules.items.len(),
                failing,
            });
        }
        Err(error) => health.problems.push(format!("analytics rules: {error}")),
    }
    match incidents {
        Ok(incidents) => {
            health.open_incidents = Some(backlog(
                &incidents.items,
                incidents.next.is_some(),
                detailed,
                now,
            ))
        }
        Err(error) => health.problems.push(format!("incidents: {error}")),
    }
    (health, note)
}

struct TableIngestion {
    table: String,
    last: OffsetDateTime,
    last_day: i64,
    week: i64,
}

fn ingestion_rows(response: &QueryResponse) -> Result<Vec<TableIngestion>, String> {
    let table = response
        .tables
        .first()
        .ok_or("the query returned no result table")?;
    let column = |name: &str| {
        table
            .column_index(name)
            .ok_or_else(|| format!("the result lacks the {name} column"))
    };
    let (name, last, day, week) = (
        column("TableName")?,
        column("LastIngestion")?,
        column("LastDay")?,
        column("Week")?,
    );
    Ok(table
        .rows
        .iter()
        .filter_map(|row| {
            Some(TableIngestion {
                table: row.get(name)?.as_str()?.to_string(),
                last: OffsetDateTime::parse(row.get(last)?.as_str()?, &Rfc3339).ok()?,
                last_day: row.get(day)?.as_i64()?,
                week: row.get(week)?.as_i64()?,
            })
        })
        .collect())
}

fn apply_ingestion(
    health: &mut WorkspaceHealth,
    rows: &[TableIngestion],
    detailed: bool,
    now: OffsetDateTime,
) {
    health.tables_seen = rows.len();
    health.last_ingestion = rows.iter().map(|r| r.last).max().map(format_time);
    health.stale_tables = rows
        .iter()
        .filter(|r| (now - r.last).whole_hours() >= STALE_AFTER_HOURS)
        .map(|r| TableFreshness {
            table: r.table.clone(),
            last_ingestion: format_time(r.last),
            hours_since: (now - r.last).whole_hours(),
        })
        .collect();
    if !detailed {
        return;
    }
    health.key_tables = Some(
        KEY_TABLES
            .iter()
            .map(|name| {
                let seen = rows.iter().find(|r| r.table == *name);
                KeyTable {
                    table: name.to_string(),
                    last_ingestion: seen.map(|r| format_time(r.last)),
                    hours_since: seen.map(|r| (now - r.last).whole_hours()),
                }
            })
            .collect(),
    );
    health.ingestion_anomalies = Some(
        rows.iter()
            .filter_map(|r| {
                let average = (r.week - r.last_day) as f64 / 6.0;
                let kind = if average < MIN_DAILY_BASELINE {
                    return None;
                } else if (r.last_day as f64) < average * 0.25 {
                    "drop"
                } else if r.last_day as f64 > average * 4.0 {
                    "spike"
                } else {
                    return None;
                };
                Some(IngestionAnomaly {
                    table: r.table.clone(),
                    kind: kind.into(),
                    rows_last_day: r.last_day,
                    daily_average_before: (average * 10.0).round() / 10.0,
                })
            })
            .collect(),
    );
}

fn failing_rules(response: &QueryResponse) -> Result<Vec<FailingRule>, String> {
    let table: &ResultTable = response
        .tables
        .first()
        .ok_or("the query returned no result table")?;
    let column = |name: &str| {
        table
            .column_index(name)
            .ok_or_else(|| format!("the result lacks the {name} column"))
    };
    let (id, name, failures, last, reason) = (
        column("SentinelResourceId")?,
        column("SentinelResourceName")?,
        column("Failures")?,
        column("LastFailure")?,
        column("Reason")?,
    );
    let text = |row: &Vec<serde_json::Value>, i: usize| {
        row.get(i).and_then(|v| v.as_str()).map(str::to_string)
    };
    Ok(table
        .rows
        .iter()
        .map(|row| FailingRule {
            rule_id: text(row, id)
                .map(|full| full.rsplit('/').next().unwrap_or_default().to_string())
                .unwrap_or_default(),
            display_name: text(row, name).unwrap_or_default(),
            failures_last_day: row
                .get(failures)
                .and_then(|v| v.as_i64())
                .unwrap_or_default(),
            last_failure: text(row, last),
            reason: text(row, reason),
        })
        .collect())
}

fn backlog(
    incidents: &[Incident],
    capped: bool,
    detailed: bool,
    now: OffsetDateTime,
) -> IncidentCounts {
    let mut by_severity = BTreeMap::new();
    for incident in incidents {
        *by_severity
            .entry(
                incident
                    .properties
                    .severity
                    .as_ref()
                    .map_or("Unknown", |severity| severity.as_str())
                    .to_owned(),
            )
            .or_insert(0) += 1;
    }
    let oldest = incidents
        .iter()
        .filter_map(|i| i.properties.created_time_utc)
        .min()
        .map(|created| (now - created).whole_hours());
    let unassigned = incidents
        .iter()
        .filter(|i| {
            i.properties.owner.object_id.is_none()
                && i.properties.owner.user_principal_name.is_none()
        })
        .count();
    IncidentCounts {
        total: incidents.len(),
        by_severity,
        capped,
        oldest_open_hours: oldest.filter(|_| detailed),
        unassigned: detailed.then_some(unassigned),
    }
}

fn format_time(when: OffsetDateTime) -> String {
    when.format(&Rfc3339).unwrap_or_default()
}
