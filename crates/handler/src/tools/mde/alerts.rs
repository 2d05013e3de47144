//! Defender for Endpoint alerts: `mde_list_alerts`, `mde_get_alert`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::clients::defender::{self, Alert, AlertFilter, MachineId};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::args::{Fields, Limit, Since, When};
use crate::tools::cursor;
use crate::tools::rows::{self, ListRow, Row, Rows};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(ListAlerts).tool(GetAlert)
}

/// The most alerts of one device read to filter on our side ("$top with max value of 10,000").
const MAX_DEVICE_ALERTS: usize = 10_000;

impl ListRow for Alert {
    // Enough to choose which alert to open, and to group them by device and incident.
    const COMPACT: &'static [&'static str] = &[
        "id",
        "incidentId",
        "title",
        "severity",
        "status",
        "category",
        "machineId",
        "computerDnsName",
        "alertCreationTime",
    ];
    const FREE_TEXT: &'static [&'static str] = &["title", "description"];
    const GET_TOOL: Option<&'static str> = Some("mde_get_alert");
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

impl From<AlertSeverity> for defender::AlertSeverity {
    fn from(severity: AlertSeverity) -> Self {
        match severity {
            AlertSeverity::Informational => Self::Informational,
            AlertSeverity::Low => Self::Low,
            AlertSeverity::Medium => Self::Medium,
            AlertSeverity::High => Self::High,
        }
    }
}

impl From<AlertStatus> for defender::AlertStatus {
    fn from(status: AlertStatus) -> Self {
        match status {
            AlertStatus::New => Self::New,
            AlertStatus::InProgress => Self::InProgress,
            AlertStatus::Resolved => Self::Resolved,
        }
    }
}

struct ListAlerts;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    tenant_id: Option<TenantId>,
    /// Only alerts of this severity.
    severity: Option<AlertSeverity>,
    /// Only alerts in this status.
    status: Option<AlertStatus>,
    /// Only alerts on this device (Defender machine id). Read from the device's own alert list, which is not paged
    /// with a cursor: the other filters are applied to it here.
    machine_id: Option<MachineId>,
    /// Only alerts created at or after this time.
    since: Option<When<Since>>,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<15, 500>,
    cursor: Option<String>,
    /// Extra fields, e.g. ["assignedTo", "mitreTechniques"], or ["all"].
    /// mde_get_alert gives one alert whole.
    fields: Option<Fields<Alert>>,
}

#[derive(Serialize, JsonSchema)]
struct ListOutput {
    tenant_id: TenantId,
    alerts: Vec<Row<Alert>>,
    /// Which free-text fields were cut short, and where to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
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
            .filter(|a| a.get("severity") == Some(&"High".into()))
            .count();
        let more = match self.more_on_device {
            Some(more) if more > 0 => {
                format!("; {more} more on the device (raise limit or narrow the filters)")
            }
            _ => cursor::more_note(self.next_cursor.as_ref()).to_string(),
        };
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} alerts in tenant {} ({high} high severity){more}{cut}",
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
            description: "Lists Defender alerts (title, severity, status, category, device, incident), filtered by \
                         severity, status, device and creation time; mde_get_alert gives description and \
                         evidence.",
            toolset: Toolset::Alerts,
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
        let filtered = params.severity.is_some()
            || params.status.is_some()
            || params.machine_id.is_some()
            || params.since.is_some();
        let filter = AlertFilter {
            severity: params.severity.map(Into::into),
            status: params.status.map(Into::into),
            since: params.since.as_ref().map(When::at),
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
            let Rows { rows, cut } = rows::rows(matching, params.fields.as_ref());
            return Ok(ListOutput {
                tenant_id: tenant,
                alerts: rows,
                cut,
                next_cursor: None,
                more_on_device: Some(more),
            });
        }
        let position = common::list_position(
            &tenant,
            params.cursor.as_deref(),
            filtered,
            |position| defender.check_position(position),
            || Ok(defender.alerts_start(&filter)),
        )?;
        let collected = defender.list_alerts(&tenant, position, limit).await?;
        let next_cursor = collected
            .next
            .map(|position| cursor::encode(&tenant, position));
        let Rows { rows, cut } = rows::rows(collected.items, params.fields.as_ref());
        Ok(ListOutput {
            tenant_id: tenant,
            alerts: rows,
            cut,
            next_cursor,
            more_on_device: None,
        })
    }
}

struct GetAlert;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetParams {
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
            description: "Gets one Defender alert with description, MITRE techniques, timeline, device, \
                         classification and evidence (files, processes, users, IPs, URLs).",
            toolset: Toolset::Alerts,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn listed_alerts_match_their_filters_and_read_whole_by_id() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let listed = harness
            .ok(
                &ListAlerts,
                json!({"tenant_id": tenant, "severity": "High", "since": "30d", "limit": 5}),
            )
            .await;
        let alerts = listed["alerts"].as_array().expect("alerts");
        assert!(
            !alerts.is_empty(),
            "the sandbox has high-severity alerts: {listed}"
        );
        for alert in alerts {
            assert_eq!(alert["severity"], "High", "{alert}");
        }
        let id = alerts[0]["id"].as_str().expect("id");
        let whole = harness
            .ok(&GetAlert, json!({"tenant_id": tenant, "alert_id": id}))
            .await;
        assert_eq!(whole["alert"]["id"], json!(id));
        assert_eq!(whole["alert"]["severity"], "High");
    }

    #[tokio::test]
    async fn unknown_alerts_and_values_are_refused_by_name() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let message = harness
            .refusal(
                &GetAlert,
                json!({"tenant_id": tenant, "alert_id": "da000000000000000000_0000000000"}),
            )
            .await;
        assert!(
            message.contains("da000000000000000000_0000000000"),
            "{message}"
        );
        let message = harness
            .refusal(
                &ListAlerts,
                json!({"tenant_id": tenant, "severity": "Critical"}),
            )
            .await;
        assert!(message.contains("Critical"), "{message}");
        let message = harness
            .refusal(
                &ListAlerts,
                json!({"tenant_id": tenant, "since": "yesterday"}),
            )
            .await;
        assert!(
            message.contains("since") && message.contains("RFC 3339"),
            "{message}"
        );
    }
}
