//! Defender for Endpoint alerts: `mde_list_alerts`, `mde_get_alert`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::clients::defender::{Alert, AlertFilter, MachineId};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::cursor;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(ListAlerts).tool(GetAlert)
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// The most alerts of one device read to filter on our side ("$top with max value of 10,000").
const MAX_DEVICE_ALERTS: usize = 10_000;

/// An alert in a list: enough to choose which to open.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertSummary {
    pub id: String,
    pub incident_id: Option<i64>,
    pub title: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub category: Option<String>,
    pub threat_name: Option<String>,
    pub machine_id: Option<String>,
    pub computer_dns_name: Option<String>,
    pub assigned_to: Option<String>,
    pub alert_creation_time: Option<String>,
}

impl From<Alert> for AlertSummary {
    fn from(alert: Alert) -> Self {
        Self {
            id: alert.id,
            incident_id: alert.incident_id,
            title: alert.title,
            severity: alert.severity,
            status: alert.status,
            category: alert.category,
            threat_name: alert.threat_name,
            machine_id: alert.machine_id,
            computer_dns_name: alert.computer_dns_name,
            assigned_to: alert.assigned_to,
            alert_creation_time: alert.alert_creation_time,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
enum AlertSeverity {
    Informational,
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
enum AlertStatus {
    New,
    InProgress,
    Resolved,
}

struct ListAlerts;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// Only alerts of this severity.
    severity: Option<AlertSeverity>,
    /// Only alerts in this status.
    status: Option<AlertStatus>,
    /// Only alerts on this device (Defender machine id). Read from the device's own alert list, which is not paged
    /// with a cursor: the other filters are applied to it here.
    machine_id: Option<MachineId>,
    /// Only alerts created since then: RFC 3339 (2024-05-01T08:00:00Z) or an ISO 8601 duration back from now (PT24H, P7D).
    since: Option<String>,
    /// Most alerts to return in this call (1-500, default 50). More are reached with `cursor`.
    limit: Option<u32>,
    /// `next_cursor` from a previous call, to continue that listing (its filters are kept).
    cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ListOutput {
    tenant_id: TenantId,
    alerts: Vec<AlertSummary>,
    /// Present when more alerts match: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
    /// With machine_id only: how many more of the device's alerts match but are not shown (raise limit or narrow
    /// the filters; this list has no cursor).
    #[serde(skip_serializing_if = "Option::is_none")]
    more_on_device: Option<usize>,
}

impl Summary for ListOutput {
    fn summary(&self) -> String {
        let high = self
            .alerts
            .iter()
            .filter(|a| a.severity.as_deref() == Some("High"))
            .count();
        let more = match self.more_on_device {
            Some(more) if more > 0 => {
                format!("; {more} more on the device (raise limit or narrow the filters)")
            }
            _ => cursor::more_note(self.next_cursor.as_ref()).to_string(),
        };
        format!(
            "{} alerts in tenant {} ({high} high severity){more}",
            self.alerts.len(),
            self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListAlerts {
    type Params = ListParams;
    type Output = ListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_list_alerts",
            title: "List Defender alerts",
            description: "Lists Defender for Endpoint alerts (title, severity, status, category, threat, device, incident), \
                          filtered by severity, status, device and creation time. Paged with next_cursor; open one with \
                          mde_get_alert for its description and evidence.",
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
        let filtered = params.severity.is_some()
            || params.status.is_some()
            || params.machine_id.is_some()
            || params.since.is_some();
        let filter = || -> Result<AlertFilter, ToolError> {
            Ok(AlertFilter {
                severity: params.severity.map(|s| format!("{s:?}")),
                status: params.status.map(|s| format!("{s:?}")),
                since: params.since.as_deref().map(common::since).transpose()?,
            })
        };
        if let Some(machine) = &params.machine_id {
            // get-alerts.md does not list machineId among the $filter properties; a device's
            // alerts are GET /api/machines/{id}/alerts (get-machine-related-alerts.md), which
            // documents no $filter, so the other filters apply here.
            if params.cursor.is_some() {
                return Err(ToolError::invalid(
                    "pass either machine_id or cursor, not both: a device's alerts are returned in one list",
                ));
            }
            let filter = filter()?;
            let all = defender
                .machine_alerts(&tenant, machine, MAX_DEVICE_ALERTS)
                .await
                .map_err(|error| {
                    common::not_found(error, || {
                        format!("no device {} in tenant {tenant}", machine.as_str())
                    })
                })?;
            let mut matching: Vec<Alert> = all
                .items
                .into_iter()
                .filter(|alert| filter.matches(alert))
                .collect();
            let more = matching.len().saturating_sub(limit);
            matching.truncate(limit);
            return Ok(ListOutput {
                tenant_id: tenant,
                alerts: matching.into_iter().map(AlertSummary::from).collect(),
                next_cursor: None,
                more_on_device: Some(more),
            });
        }
        let position = common::list_position(
            &tenant,
            params.cursor.as_deref(),
            filtered,
            |position| defender.check_position(position),
            || Ok(defender.alerts_start(&filter()?)),
        )?;
        let collected = defender.list_alerts(&tenant, position, limit).await?;
        let next_cursor = collected
            .next
            .map(|position| cursor::encode(&tenant, position));
        Ok(ListOutput {
            tenant_id: tenant,
            alerts: collected
                .items
                .into_iter()
                .map(AlertSummary::from)
                .collect(),
            next_cursor,
            more_on_device: None,
        })
    }
}

struct GetAlert;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetParams {
    /// Tenant (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// The alert id, as mde_list_alerts shows it (e.g. da638...).
    alert_id: String,
}

#[derive(Serialize, JsonSchema)]
struct GetOutput {
    tenant_id: TenantId,
    alert: Alert,
}

impl Summary for GetOutput {
    fn summary(&self) -> String {
        let a = &self.alert;
        format!(
            "{} ({} severity, {}) on {}",
            a.title.as_deref().unwrap_or(&a.id),
            a.severity.as_deref().unwrap_or("unknown"),
            a.status.as_deref().unwrap_or("unknown status"),
            a.computer_dns_name.as_deref().unwrap_or("unknown device")
        )
    }
}

#[async_trait::async_trait]
impl Tool for GetAlert {
    type Params = GetParams;
    type Output = GetOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_alert",
            title: "Get a Defender alert",
            description: "Gets one Defender for Endpoint alert with its description, MITRE techniques, timeline, device, \
                          classification and evidence (files, processes, users, IPs, URLs).",
            toolset: Toolset::Defender,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(&self, context: &ToolContext, params: GetParams) -> Result<GetOutput, ToolError> {
        let id = params.alert_id.trim();
        if id.is_empty()
            || id.len() > 128
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ToolError::invalid(format!(
                "'{}' is not an alert id: expected letters, digits, _ and - as mde_list_alerts shows (e.g. da638...)",
                id.chars().take(64).collect::<String>()
            )));
        }
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let alert = context
            .services
            .defender
            .get_alert(&tenant, id)
            .await
            .map_err(|error| {
                common::not_found(error, || format!("no alert {id} in tenant {tenant}"))
            })?;
        Ok(GetOutput {
            tenant_id: tenant,
            alert,
        })
    }
}
