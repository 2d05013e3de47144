//! Device inventory: `mde_list_machines`, `mde_get_machine`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clients::defender::{Machine, MachineId};
use crate::mcp::{CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset};
use crate::tenants::TenantId;
use crate::tools::cursor;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(ListMachines).tool(GetMachine)
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
const MAX_FILTER_CHARS: usize = 2000;

struct ListMachines;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListMachinesParams {
    /// Tenant to list devices in (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// OData $filter on the Defender machine list, e.g. `healthStatus eq 'Active' and osPlatform eq 'Windows11'`
    /// or `riskScore eq 'High'`. Filterable: computerDnsName, osPlatform, healthStatus, onboardingStatus,
    /// riskScore, exposureLevel, lastSeen, lastIpAddress, rbacGroupName, id.
    filter: Option<String>,
    /// Most devices to return in this call (1-500, default 50). More are reached with `cursor`.
    limit: Option<u32>,
    /// `next_cursor` from a previous call, to continue that listing (its filter is kept).
    cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ListMachinesOutput {
    tenant_id: TenantId,
    machines: Vec<Machine>,
    /// Present when more devices match: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListMachinesOutput {
    fn summary(&self) -> String {
        let more = if self.next_cursor.is_some() { "; more match (use next_cursor)" } else { "" };
        format!("{} devices in tenant {}{more}", self.machines.len(), self.tenant_id)
    }
}

#[async_trait::async_trait]
impl Tool for ListMachines {
    type Params = ListMachinesParams;
    type Output = ListMachinesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_list_machines",
            title: "List Defender devices",
            description: "Lists devices onboarded to Defender for Endpoint in a tenant, optionally filtered with OData \
                          (health, OS, risk, exposure, name, IP, device group). Paged: returns next_cursor when more match.",
            toolset: Toolset::Defender,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(&self, context: &ToolContext, params: ListMachinesParams) -> Result<ListMachinesOutput, ToolError> {
        let tenant = context.services.tenants.resolve(params.tenant_id.as_ref())?.tenant_id.clone();
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ToolError::invalid(format!("limit must be between 1 and {MAX_LIMIT}, got {limit}")));
        }
        let defender = &context.services.defender;
        let position = match (params.cursor, params.filter) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid("pass either filter or cursor, not both: the cursor already carries its filter"));
            }
            (Some(text), None) => {
                let position = cursor::decode(&tenant, &text)?;
                defender.check_position(&position)?;
                position
            }
            (None, Some(filter)) => defender.machines_start(Some(checked_filter(&filter)?)),
            (None, None) => defender.machines_start(None),
        };
        let collected = defender.list_machines(&tenant, position, limit as usize).await?;
        let next_cursor = collected.next.map(|position| cursor::encode(&tenant, position));
        Ok(ListMachinesOutput { tenant_id: tenant, machines: collected.items, next_cursor })
    }
}

/// Defender validates the OData itself and its message is passed on; this only refuses what
/// could never be a filter.
fn checked_filter(filter: &str) -> Result<&str, ToolError> {
    let filter = filter.trim();
    if filter.is_empty() {
        return Err(ToolError::invalid("filter is empty; omit it to list every device"));
    }
    if filter.len() > MAX_FILTER_CHARS {
        return Err(ToolError::invalid(format!("filter is {} characters; at most {MAX_FILTER_CHARS} are accepted", filter.len())));
    }
    if filter.chars().any(char::is_control) {
        return Err(ToolError::invalid("filter contains control characters (such as line breaks); write it on one line"));
    }
    Ok(filter)
}

struct GetMachine;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetMachineParams {
    /// Tenant of the device (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    /// Defender machine id (40 hexadecimal characters), as returned by mde_list_machines.
    machine_id: MachineId,
}

#[derive(Serialize, JsonSchema)]
struct GetMachineOutput {
    tenant_id: TenantId,
    machine: Machine,
}

impl Summary for GetMachineOutput {
    fn summary(&self) -> String {
        let m = &self.machine;
        format!(
            "{} ({}) health {}, risk {}, last seen {}",
            m.computer_dns_name.as_deref().unwrap_or(&m.id),
            m.os_platform.as_deref().unwrap_or("unknown OS"),
            m.health_status.as_deref().unwrap_or("unknown"),
            m.risk_score.as_deref().unwrap_or("unknown"),
            m.last_seen.as_deref().unwrap_or("never"),
        )
    }
}

#[async_trait::async_trait]
impl Tool for GetMachine {
    type Params = GetMachineParams;
    type Output = GetMachineOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_machine",
            title: "Get a Defender device",
            description: "Gets one device by its Defender machine id: name, OS, health, onboarding, risk, exposure, last seen, IPs, device group and tags.",
            toolset: Toolset::Defender,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(&self, context: &ToolContext, params: GetMachineParams) -> Result<GetMachineOutput, ToolError> {
        let tenant = context.services.tenants.resolve(params.tenant_id.as_ref())?.tenant_id.clone();
        match context.services.defender.get_machine(&tenant, &params.machine_id).await {
            Ok(machine) => Ok(GetMachineOutput { tenant_id: tenant, machine }),
            Err(error) if error.is_not_found() => Err(ToolError::NotFound(format!(
                "no device with machine id {} in tenant {tenant}",
                params.machine_id.as_str()
            ))),
            Err(error) => Err(error.into()),
        }
    }
}
