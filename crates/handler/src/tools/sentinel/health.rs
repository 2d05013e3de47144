//! `sentinel_health_check`: per workspace, is it reachable, is data arriving, are analytics
//! rules enabled, and how many incidents are open.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::mcp::{CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset};
use crate::services::Services;
use crate::tenants::{TenantId, WorkspaceConfig};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(HealthCheck)
}

/// A table whose newest row is older than this is reported as stale.
const STALE_AFTER_HOURS: i64 = 24;
/// Enough to count every rule and open incident of a real workspace, bounded so one call stays cheap.
const MAX_LISTED: usize = 5000;
const FRESHNESS_QUERY: &str =
    "union withsource=TableName * | where TimeGenerated > ago(7d) | summarize LastIngestion = max(TimeGenerated) by TableName";

struct HealthCheck;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HealthCheckParams {
    /// Tenant whose workspaces to check (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// Name of one workspace to check; all of the tenant's workspaces when omitted.
    workspace: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct HealthCheckOutput {
    tenant_id: TenantId,
    /// True when every workspace is reachable, has fresh data in every table seen in the last 7 days, and no check failed.
    healthy: bool,
    workspaces: Vec<WorkspaceHealth>,
}

#[derive(Serialize, JsonSchema)]
struct WorkspaceHealth {
    workspace: String,
    reachable: bool,
    /// Newest ingestion time over all tables (RFC 3339), when any data arrived in the last 7 days.
    last_ingestion: Option<String>,
    /// Tables whose newest row is older than 24 hours.
    stale_tables: Vec<TableFreshness>,
    tables_seen: usize,
    analytics_rules: Option<RuleCounts>,
    open_incidents: Option<IncidentCounts>,
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
struct RuleCounts {
    enabled: usize,
    total: usize,
}

#[derive(Serialize, JsonSchema)]
struct IncidentCounts {
    total: usize,
    by_severity: BTreeMap<String, usize>,
    /// True when there were more open incidents than could be counted in one check.
    capped: bool,
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
                let rules = w.analytics_rules.as_ref().map(|r| format!("{}/{} rules enabled", r.enabled, r.total)).unwrap_or_else(|| "rules unknown".into());
                let incidents = w.open_incidents.as_ref().map(|i| format!("{} open incidents", i.total)).unwrap_or_else(|| "incidents unknown".into());
                format!("{}: {} stale of {} tables, {rules}, {incidents}", w.workspace, w.stale_tables.len(), w.tables_seen)
            })
            .collect();
        format!("{} ({})", if self.healthy { "healthy" } else { "needs attention" }, lines.join("; "))
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
            description: "Checks the Sentinel workspaces of a tenant: reachable through ARM, newest ingestion and tables with no data for 24 hours, \
                          analytics rules enabled vs total, and open incidents by severity. A failing check is reported per workspace, not as a failure of the call.",
            toolset: Toolset::Sentinel,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(&self, context: &ToolContext, params: HealthCheckParams) -> Result<HealthCheckOutput, ToolError> {
        let tenant = context.services.tenants.resolve(params.tenant_id.as_ref())?;
        let workspaces: Vec<&WorkspaceConfig> = match &params.workspace {
            None => tenant.workspaces.iter().collect(),
            Some(name) => {
                let found = tenant.workspaces.iter().find(|w| w.workspace_name.eq_ignore_ascii_case(name.trim()));
                let names: Vec<&str> = tenant.workspaces.iter().map(|w| w.workspace_name.as_str()).collect();
                vec![found.ok_or_else(|| {
                    ToolError::invalid(format!("workspace '{name}' is not configured for tenant {}; configured: {}", tenant.tenant_id, names.join(", ")))
                })?]
            }
        };
        if workspaces.is_empty() {
            return Err(ToolError::invalid(format!("tenant {} has no Sentinel workspaces configured", tenant.tenant_id)));
        }
        let now = OffsetDateTime::now_utc();
        let checks = workspaces.into_iter().map(|workspace| check_workspace(&context.services, &tenant.tenant_id, workspace, now));
        let workspaces = futures::future::join_all(checks).await;
        let healthy = workspaces.iter().all(|w| w.reachable && w.stale_tables.is_empty() && w.problems.is_empty());
        Ok(HealthCheckOutput { tenant_id: tenant.tenant_id.clone(), healthy, workspaces })
    }
}

async fn check_workspace(services: &Services, tenant: &TenantId, workspace: &WorkspaceConfig, now: OffsetDateTime) -> WorkspaceHealth {
    let mut health = WorkspaceHealth {
        workspace: workspace.workspace_name.clone(),
        reachable: false,
        last_ingestion: None,
        stale_tables: Vec::new(),
        tables_seen: 0,
        analytics_rules: None,
        open_incidents: None,
        problems: Vec::new(),
    };
    if let Err(error) = services.arm.get_workspace(tenant, workspace).await {
        health.problems.push(format!("workspace: {error}"));
        return health;
    }
    health.reachable = true;
    let (freshness, rules, incidents) = tokio::join!(
        services.log_analytics.query(tenant, &workspace.workspace_id, FRESHNESS_QUERY, Some("P7D")),
        services.arm.list_alert_rules(tenant, workspace, MAX_LISTED),
        services.arm.list_incidents(tenant, workspace, Some("properties/status ne 'Closed'"), MAX_LISTED),
    );
    match freshness {
        Ok(response) => match table_freshness(&response, now) {
            Ok((newest, stale, seen)) => {
                health.last_ingestion = newest;
                health.stale_tables = stale;
                health.tables_seen = seen;
            }
            Err(problem) => health.problems.push(format!("data freshness: {problem}")),
        },
        Err(error) => health.problems.push(format!("data freshness: {error}")),
    }
    match rules {
        Ok(rules) => {
            let enabled = rules.items.iter().filter(|r| r.properties.enabled == Some(true)).count();
            health.analytics_rules = Some(RuleCounts { enabled, total: rules.items.len() });
        }
        Err(error) => health.problems.push(format!("analytics rules: {error}")),
    }
    match incidents {
        Ok(incidents) => {
            let mut by_severity = BTreeMap::new();
            for incident in &incidents.items {
                *by_severity.entry(incident.properties.severity.clone().unwrap_or_else(|| "Unknown".into())).or_insert(0) += 1;
            }
            health.open_incidents = Some(IncidentCounts { total: incidents.items.len(), by_severity, capped: incidents.next.is_some() });
        }
        Err(error) => health.problems.push(format!("incidents: {error}")),
    }
    health
}

type Freshness = (Option<String>, Vec<TableFreshness>, usize);

fn table_freshness(response: &crate::clients::log_analytics::QueryResponse, now: OffsetDateTime) -> Result<Freshness, String> {
    let table = response.tables.first().ok_or("the query returned no result table")?;
    let (Some(name_col), Some(time_col)) = (table.column_index("TableName"), table.column_index("LastIngestion")) else {
        return Err("the result lacks the TableName and LastIngestion columns".into());
    };
    let mut newest: Option<OffsetDateTime> = None;
    let mut stale = Vec::new();
    for row in &table.rows {
        let (Some(name), Some(when)) = (row.get(name_col).and_then(|v| v.as_str()), row.get(time_col).and_then(|v| v.as_str())) else {
            continue;
        };
        let Ok(when) = OffsetDateTime::parse(when, &Rfc3339) else { continue };
        newest = Some(newest.map_or(when, |n| n.max(when)));
        let hours_since = (now - when).whole_hours();
        if hours_since >= STALE_AFTER_HOURS {
            stale.push(TableFreshness { table: name.to_string(), last_ingestion: format_time(when), hours_since });
        }
    }
    Ok((newest.map(format_time), stale, table.rows.len()))
}

fn format_time(when: OffsetDateTime) -> String {
    when.format(&Rfc3339).unwrap_or_default()
}
