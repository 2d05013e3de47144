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

#[cfg(test)]
mod tests {
    use sandbox::{Fault, FaultKind};
    use serde_json::{Value, json};
    use time::Duration;

    use super::*;
    use crate::testing::Harness;

    fn row(
        table: &str,
        age: Duration,
        last_day: i64,
        week: i64,
        now: OffsetDateTime,
    ) -> TableIngestion {
        TableIngestion {
            table: table.into(),
            last: now - age,
            last_day,
            week,
        }
    }

    fn empty_health() -> WorkspaceHealth {
        WorkspaceHealth {
            tenant_id: "11111111-1111-4111-8111-111111111111"
                .parse()
                .expect("tenant"),
            workspace: "w".into(),
            reachable: true,
            last_ingestion: None,
            stale_tables: Vec::new(),
            tables_seen: 0,
            analytics_rules: None,
            open_incidents: None,
            key_tables: None,
            ingestion_anomalies: None,
            problems: Vec::new(),
        }
    }

    #[test]
    fn tables_silent_for_a_day_are_stale_and_only_the_detailed_check_looks_further() {
        let now = OffsetDateTime::now_utc();
        let rows = [
            row("SecurityEvent", Duration::hours(2), 100, 700, now),
            row("CommonSecurityLog", Duration::hours(72), 0, 90, now),
            row("Edge_CL", Duration::hours(24), 0, 0, now),
            row(
                "Fresh_CL",
                Duration::hours(23) + Duration::minutes(59),
                0,
                0,
                now,
            ),
        ];
        let mut quick = empty_health();
        apply_ingestion(&mut quick, &rows, false, now);
        assert_eq!(quick.tables_seen, 4);
        assert_eq!(
            quick.last_ingestion,
            Some(format_time(now - Duration::hours(2)))
        );
        let stale: Vec<(&str, i64)> = quick
            .stale_tables
            .iter()
            .map(|t| (t.table.as_str(), t.hours_since))
            .collect();
        assert_eq!(stale, [("CommonSecurityLog", 72), ("Edge_CL", 24)]);
        assert!(quick.key_tables.is_none() && quick.ingestion_anomalies.is_none());

        let mut detailed = empty_health();
        apply_ingestion(&mut detailed, &rows, true, now);
        let key_tables = detailed.key_tables.expect("detailed");
        let seen = |name: &str| {
            key_tables
                .iter()
                .find(|k| k.table == name)
                .map(|k| k.hours_since)
        };
        assert_eq!(seen("SecurityEvent"), Some(Some(2)));
        assert_eq!(
            seen("Syslog"),
            Some(None),
            "a key table with no data is listed as such"
        );
        assert_eq!(seen("Fresh_CL"), None, "other tables are not key tables");
    }

    #[test]
    fn an_ingestion_anomaly_is_a_sharp_change_from_a_real_baseline() {
        let now = OffsetDateTime::now_utc();
        let hour = Duration::hours(1);
        let rows = [
            // A daily average of 100 over the six days before.
            row("Steady", hour, 100, 700, now),
            row("Dropped", hour, 24, 624, now),
            row("Barely", hour, 25, 625, now),
            row("Spiked", hour, 401, 1001, now),
            row("Busy", hour, 400, 1000, now),
            // An average of 108.33: reported to one decimal.
            row("Silent", hour, 0, 650, now),
            // Under ten rows a day there is no baseline to judge by.
            row("Tiny", hour, 0, 54, now),
        ];
        let mut health = empty_health();
        apply_ingestion(&mut health, &rows, true, now);
        let anomalies: Vec<(&str, &str, i64, f64)> = health
            .ingestion_anomalies
            .as_ref()
            .expect("detailed")
            .iter()
            .map(|a| {
                (
                    a.table.as_str(),
                    a.kind.as_str(),
                    a.rows_last_day,
                    a.daily_average_before,
                )
            })
            .collect();
        assert_eq!(
            anomalies,
            [
                ("Dropped", "drop", 24, 100.0),
                ("Spiked", "spike", 401, 100.0),
                ("Silent", "drop", 0, 108.3)
            ]
        );
    }

    fn incident(
        severity: Option<&str>,
        owner: Value,
        created_hours_ago: i64,
        now: OffsetDateTime,
    ) -> Incident {
        let mut properties = json!({
            "owner": owner,
            "createdTimeUtc": format_time(now - Duration::hours(created_hours_ago)),
        });
        if let Some(severity) = severity {
            properties["severity"] = json!(severity);
        }
        serde_json::from_value(
            json!({"id": "/x/incidents/i", "name": "i", "properties": properties}),
        )
        .expect("an incident")
    }

    #[test]
    fn the_backlog_counts_by_severity_and_only_the_detailed_check_adds_age_and_owners() {
        let now = OffsetDateTime::now_utc();
        let incidents = [
            incident(
                Some("High"),
                json!({"userPrincipalName": "ana@contoso.com"}),
                5,
                now,
            ),
            incident(
                Some("High"),
                json!({"objectId": "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a"}),
                50,
                now,
            ),
            incident(Some("Medium"), json!({"assignedTo": "Ana"}), 10, now),
            incident(None, json!({}), 1, now),
        ];
        let quick = backlog(&incidents, true, false, now);
        assert_eq!(quick.total, 4);
        assert!(quick.capped);
        assert_eq!(
            quick.by_severity,
            BTreeMap::from([
                ("High".into(), 2),
                ("Medium".into(), 1),
                ("Unknown".into(), 1)
            ])
        );
        assert_eq!((quick.oldest_open_hours, quick.unassigned), (None, None));

        let detailed = backlog(&incidents, false, true, now);
        assert!(!detailed.capped);
        assert_eq!(detailed.oldest_open_hours, Some(50));
        // An owner is a user principal name or an object id; a display name alone is none.
        assert_eq!(detailed.unassigned, Some(2));
    }

    fn response(columns: &[&str], rows: Value) -> QueryResponse {
        serde_json::from_value(json!({"tables": [{
            "name": "PrimaryResult",
            "columns": columns.iter().map(|c| json!({"name": c, "type": "string"})).collect::<Vec<_>>(),
            "rows": rows,
        }]}))
        .expect("a query response")
    }

    #[test]
    fn failing_rules_are_named_by_their_rule_id_and_a_result_without_a_column_is_a_problem() {
        let columns = [
            "SentinelResourceId",
            "SentinelResourceName",
            "Failures",
            "LastFailure",
            "Reason",
        ];
        let failing = failing_rules(&response(
            &columns,
            json!([["/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w/providers/Microsoft.SecurityInsights/alertRules/5f0c8a4e-1b7d-4c1a-9d6e-2a3b4c5d6e7f",
                    "Firewall denies", 4, "2026-12-05T00:43:34Z", "Query timed out"]]),
        ))
        .expect("readable");
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].rule_id, "5f0c8a4e-1b7d-4c1a-9d6e-2a3b4c5d6e7f");
        assert_eq!(failing[0].display_name, "Firewall denies");
        assert_eq!(failing[0].failures_last_day, 4);
        assert_eq!(failing[0].reason.as_deref(), Some("Query timed out"));

        let problem = failing_rules(&response(&columns[..2], json!([])))
            .err()
            .expect("refused");
        assert!(problem.contains("Failures"), "{problem}");
        let problem = ingestion_rows(&response(
            &["TableName", "LastIngestion", "Week"],
            json!([]),
        ))
        .err()
        .expect("refused");
        assert!(problem.contains("LastDay"), "{problem}");
        let none: QueryResponse = serde_json::from_value(json!({"tables": []})).expect("empty");
        assert!(ingestion_rows(&none).is_err());
    }

    const PROD: &str = "law-contoso-sentinel";

    #[tokio::test]
    async fn a_workspace_whose_connector_broke_needs_attention_and_says_why() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let checked = harness
            .ok(
                &HealthCheck,
                json!({"tenant_id": tenant, "depth": "detailed"}),
            )
            .await;
        assert_eq!(checked["healthy"], false, "{checked}");
        let workspaces = checked["workspaces"].as_array().expect("workspaces");
        assert_eq!(workspaces.len(), 2, "every workspace of the tenant");
        let prod = workspaces
            .iter()
            .find(|w| w["workspace"] == PROD)
            .expect("checked");
        // The sandbox's broken connector: CommonSecurityLog's newest row is three days old.
        let stale = prod["stale_tables"].as_array().expect("stale");
        assert!(
            stale.iter().any(|t| t["table"] == "CommonSecurityLog"
                && t["hours_since"].as_i64().is_some_and(|h| h >= 72)),
            "{prod}"
        );
        assert!(
            prod["ingestion_anomalies"]
                .as_array()
                .expect("detailed")
                .iter()
                .any(|a| a["table"] == "CommonSecurityLog" && a["kind"] == "drop"),
            "{prod}"
        );
        let backlog = &prod["open_incidents"];
        let by_severity: u64 = backlog["by_severity"]
            .as_object()
            .expect("counts")
            .values()
            .map(|c| c.as_u64().expect("count"))
            .sum();
        assert_eq!(Some(by_severity), backlog["total"].as_u64(), "{backlog}");
        assert!(backlog["unassigned"].as_u64() <= backlog["total"].as_u64());
        assert!(backlog["oldest_open_hours"].is_u64(), "{backlog}");

        let quick = harness
            .ok(
                &HealthCheck,
                json!({"tenant_id": tenant, "workspace": PROD}),
            )
            .await;
        let only = &quick["workspaces"][0];
        assert_eq!(quick["workspaces"].as_array().map(Vec::len), Some(1));
        assert_eq!(only["stale_tables"], prod["stale_tables"]);
        for detail in ["key_tables", "ingestion_anomalies"] {
            assert!(only[detail].is_null(), "{detail}: {only}");
        }
        assert!(only["analytics_rules"]["failing"].is_null(), "{only}");
        assert!(only["open_incidents"]["unassigned"].is_null(), "{only}");
    }

    #[tokio::test]
    async fn scope_all_checks_every_tenant_and_takes_no_tenant_or_workspace() {
        let harness = Harness::start().await;
        let before = harness.sandbox.stats().count_method("GET");
        for arguments in [
            json!({"scope": "all", "tenant_id": harness.contoso()}),
            json!({"scope": "all", "workspace": PROD}),
        ] {
            let message = harness.refusal(&HealthCheck, arguments.clone()).await;
            assert!(message.contains("scope \"all\""), "{arguments}: {message}");
        }
        assert_eq!(harness.sandbox.stats().count_method("GET"), before);

        let all = harness.ok(&HealthCheck, json!({"scope": "all"})).await;
        let tenants = harness.tenant_ids();
        assert_eq!(all["tenants_checked"], json!(tenants), "{all}");
        let workspaces: usize = harness
            .sandbox
            .tenants()
            .iter()
            .map(|t| t.workspaces.len())
            .sum();
        assert_eq!(all["workspaces"].as_array().map(Vec::len), Some(workspaces));
    }

    #[tokio::test]
    async fn an_unreachable_workspace_is_reported_without_checking_further() {
        let harness = Harness::start_with(&[("OUTBOUND_MAX_RETRIES", "0")]).await;
        let tenant = harness.contoso();
        let workspace = &harness.sandbox.tenants()[0].workspaces[0];
        let path = format!(
            "/arm/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
            workspace.subscription_id, workspace.resource_group, workspace.name
        );
        let mut fault = Fault::new(path, FaultKind::ServerError, 1);
        fault.method = Some("GET".into());
        fault.status = Some(500);
        harness.sandbox.inject_fault(fault);
        // Log Analytics queries, and rules and incidents (Microsoft.SecurityInsights).
        let further = || -> u64 {
            harness
                .sandbox
                .stats()
                .requests
                .iter()
                .filter(|r| {
                    r.path_template.starts_with("/loganalytics/")
                        || r.path_template.contains("Microsoft.SecurityInsights")
                })
                .map(|r| r.count)
                .sum()
        };
        let before = further();
        let checked = harness
            .ok(
                &HealthCheck,
                json!({"tenant_id": tenant, "workspace": workspace.name}),
            )
            .await;
        assert_eq!(checked["healthy"], false, "{checked}");
        let only = &checked["workspaces"][0];
        assert_eq!(only["reachable"], false, "{only}");
        let problems = only["problems"].as_array().expect("problems");
        assert!(
            problems.len() == 1
                && problems[0]
                    .as_str()
                    .is_some_and(|p| p.starts_with("workspace: ")),
            "{only}"
        );
        assert!(only["analytics_rules"].is_null() && only["open_incidents"].is_null());
        assert_eq!(further(), before, "nothing else was asked");

        // The fault was a passing one: the next check reaches the workspace and goes on.
        let again = harness
            .ok(
                &HealthCheck,
                json!({"tenant_id": tenant, "workspace": workspace.name}),
            )
            .await;
        assert_eq!(again["workspaces"][0]["reachable"], true, "{again}");
        assert!(further() > before);
    }
}
