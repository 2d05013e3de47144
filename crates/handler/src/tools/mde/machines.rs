//! Device inventory: `mde_list_machines`, `mde_get_machine`, `mde_get_logged_on_users`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::clients::defender::{LogonUser, Machine, MachineId};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::args::{self, Fields, Limit};
use crate::tools::cursor;
use crate::tools::rows::{self, ListRow, Row};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListMachines)
        .tool(GetMachine)
        .tool(GetLoggedOnUsers)
}

impl ListRow for Machine {
    // What a device is triaged by: which one, its OS, whether it reports, how exposed it is.
    const COMPACT: &'static [&'static str] = &[
        "id",
        "computerDnsName",
        "osPlatform",
        "healthStatus",
        "riskScore",
        "exposureLevel",
        "lastSeen",
        "lastIpAddress",
        "machineTags",
    ];
    const GET_TOOL: Option<&'static str> = Some("mde_get_machine");
}

struct ListMachines;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListMachinesParams {
    /// Tenant to list devices in (a GUID from tenants_list). Optional only when the server has one default tenant.
    tenant_id: Option<TenantId>,
    // The properties get-machines.md, "API description", lists as filterable.
    /// OData $filter on the Defender machine list, e.g. `healthStatus eq 'Active' and osPlatform eq 'Windows11'`
    /// or `riskScore eq 'High'`. Filterable (and only these): computerDnsName, id, version, deviceValue, aadDeviceId,
    /// machineTags, lastSeen, exposureLevel, onboardingStatus, lastIpAddress, healthStatus, osPlatform, riskScore,
    /// rbacGroupId (a device group by id; rbacGroupName is not filterable).
    filter: Option<String>,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<15, 500>,
    cursor: Option<String>,
    /// Extra fields, e.g. ["osBuild", "rbacGroupName"], or ["all"].
    /// mde_get_machine gives one device whole.
    fields: Option<Fields<Machine>>,
}

#[derive(Serialize, JsonSchema)]
struct ListMachinesOutput {
    tenant_id: TenantId,
    machines: Vec<Row<Machine>>,
    /// Present when more devices match: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListMachinesOutput {
    fn summary(&self) -> String {
        let more = cursor::more_note(self.next_cursor.as_ref());
        format!(
            "{} devices in tenant {}{more}",
            self.machines.len(),
            self.tenant_id
        )
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
            description: "Lists devices onboarded to Defender for Endpoint, optionally filtered with OData \
                         (health, OS, risk, exposure, name, IP, device group).",
            toolset: Toolset::Devices,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListMachinesParams,
    ) -> Result<ListMachinesOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let limit = params.limit.get();
        let defender = &context.services.defender;
        let position = common::list_position(
            &tenant,
            params.cursor.as_deref(),
            params.filter.is_some(),
            |position| defender.check_position(position),
            || {
                let filter = params
                    .filter
                    .as_deref()
                    .map(common::checked_filter)
                    .transpose()?;
                Ok(defender.machines_start(filter.as_deref()))
            },
        )?;
        let collected = defender.list_machines(&tenant, position, limit).await?;
        let next_cursor = collected
            .next
            .map(|position| cursor::encode(&tenant, position));
        Ok(ListMachinesOutput {
            tenant_id: tenant,
            machines: rows::rows(collected.items, params.fields.as_ref()).rows,
            next_cursor,
        })
    }
}

struct GetMachine;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetMachineParams {
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
            m.last_seen.map(args::rfc3339).as_deref().unwrap_or("never"),
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
            toolset: Toolset::Devices,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: GetMachineParams,
    ) -> Result<GetMachineOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let machine = context
            .services
            .defender
            .get_machine(&tenant, &params.machine_id)
            .await
            .map_err(|error| common::not_found(error, || no_device(&params.machine_id, &tenant)))?;
        Ok(GetMachineOutput {
            tenant_id: tenant,
            machine,
        })
    }
}

fn no_device(id: &MachineId, tenant: &TenantId) -> String {
    format!(
        "no device with machine id {} in tenant {tenant}",
        id.as_str()
    )
}

struct GetLoggedOnUsers;

#[derive(Serialize, JsonSchema)]
struct LoggedOnUsersOutput {
    tenant_id: TenantId,
    machine_id: String,
    users: Vec<LogonUser>,
}

impl Summary for LoggedOnUsersOutput {
    fn summary(&self) -> String {
        let names: Vec<String> = self
            .users
            .iter()
            .map(|u| {
                format!(
                    "{}\\{}",
                    u.account_domain.as_deref().unwrap_or("?"),
                    u.account_name.as_deref().unwrap_or(&u.id)
                )
            })
            .collect();
        format!(
            "{} users seen on device {}: {}",
            self.users.len(),
            self.machine_id,
            names.join(", ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for GetLoggedOnUsers {
    type Params = GetMachineParams;
    type Output = LoggedOnUsersOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_logged_on_users",
            title: "Users who logged on to a device",
            description: "Lists users Defender saw logging on to a device (account, first and last seen, logon \
                         types, domain admin): whom to contact, whose credentials may be exposed.",
            toolset: Toolset::Devices,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: GetMachineParams,
    ) -> Result<LoggedOnUsersOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let users = context
            .services
            .defender
            .logon_users(&tenant, &params.machine_id)
            .await
            .map_err(|error| common::not_found(error, || no_device(&params.machine_id, &tenant)))?;
        Ok(LoggedOnUsersOutput {
            tenant_id: tenant,
            machine_id: params.machine_id.as_str().to_string(),
            users,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn a_filtered_listing_pages_with_a_cursor_that_keeps_its_filter() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let filter = "osPlatform eq 'Windows11'";
        let first = harness
            .ok(
                &ListMachines,
                json!({"tenant_id": tenant, "filter": filter, "limit": 3}),
            )
            .await;
        let machines = first["machines"].as_array().expect("machines");
        assert_eq!(machines.len(), 3, "{first}");
        let cursor = first["next_cursor"]
            .as_str()
            .expect("more Windows 11 devices");

        let next = harness
            .ok(
                &ListMachines,
                json!({"tenant_id": tenant, "cursor": cursor, "limit": 3}),
            )
            .await;
        let ids = |page: &serde_json::Value| -> Vec<String> {
            page["machines"]
                .as_array()
                .expect("machines")
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_owned())
                .collect()
        };
        assert!(
            ids(&next).iter().all(|id| !ids(&first).contains(id)),
            "the next page continues: {next}"
        );
        for id in ids(&first).iter().chain(ids(&next).iter()) {
            let whole = harness
                .ok(&GetMachine, json!({"tenant_id": tenant, "machine_id": id}))
                .await;
            assert_eq!(
                whole["machine"]["osPlatform"], "Windows11",
                "the cursor kept the filter: {whole}"
            );
        }
    }

    #[tokio::test]
    async fn bad_filters_and_limits_are_refused_with_what_is_accepted() {
        let harness = Harness::start().await;
        // Defender refuses it (400); the model reads Defender's reason.
        let message = harness
            .refusal(
                &ListMachines,
                json!({"tenant_id": harness.contoso(), "filter": "rbacGroupName eq 'Finance'"}),
            )
            .await;
        assert!(message.contains("rbacGroupName"), "{message}");

        // Refused here, before any call.
        let message = harness
            .refusal(
                &ListMachines,
                json!({"tenant_id": harness.contoso(), "filter": "riskScore eq 'High'\nor 1 eq 1"}),
            )
            .await;
        assert!(message.contains("on one line"), "{message}");

        let message = harness
            .refusal(
                &ListMachines,
                json!({"tenant_id": harness.contoso(), "limit": 501}),
            )
            .await;
        assert!(message.contains("500"), "{message}");
    }
}
