//! `sentinel_list_workspaces`: the workspaces configured for a tenant, and optionally what
//! ARM shows of the tenant's subscriptions, their Azure Lighthouse delegations and workspaces.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clients::arm::{RegistrationAssignment, Subscription, SubscriptionResource, Workspace};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::ListPosition;
use crate::tenants::{TenantConfig, TenantId};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(ListWorkspaces)
}

/// More subscriptions than one tenant delegates to an MSSP in practice.
const MAX_SUBSCRIPTIONS: usize = 200;
const MAX_WORKSPACES: usize = 500;

struct ListWorkspaces;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListWorkspacesParams {
    tenant_id: Option<TenantId>,
    /// Also ask ARM which subscriptions the tenant shows this server, their Lighthouse delegations, and the workspaces in
    /// them (default false). Discovered workspaces that are not configured cannot be used until they are added to TENANTS.
    discover: Option<bool>,
}

#[derive(Serialize, JsonSchema)]
struct ListWorkspacesOutput {
    tenant_id: TenantId,
    display_name: String,
    /// The workspaces tools can act on (from the TENANTS setting).
    configured: Vec<ConfiguredWorkspace>,
    /// With discover: every subscription visible in the tenant.
    discovered: Option<Vec<DiscoveredSubscription>>,
}

#[derive(Serialize, JsonSchema)]
struct ConfiguredWorkspace {
    workspace: String,
    subscription_id: String,
    resource_group: String,
    /// The customer id the Log Analytics query API uses.
    workspace_id: String,
}

#[derive(Serialize, JsonSchema)]
struct DiscoveredSubscription {
    subscription_id: String,
    display_name: Option<String>,
    state: Option<String>,
    /// Azure Lighthouse registrations that delegate this subscription to a managing tenant.
    delegations: Vec<Delegation>,
    workspaces: Vec<DiscoveredWorkspace>,
    /// A listing that failed for this subscription, with the reason.
    problem: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Delegation {
    managed_by_tenant_id: Option<String>,
    managed_by_tenant_name: Option<String>,
    definition: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct DiscoveredWorkspace {
    workspace: String,
    resource_group: String,
    workspace_id: Option<String>,
    location: Option<String>,
    /// True when this workspace is in the server's configuration (tools can use it).
    configured: bool,
}

impl Summary for ListWorkspacesOutput {
    fn summary(&self) -> String {
        let configured = self
            .configured
            .iter()
            .map(|w| w.workspace.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let discovered = self.discovered.as_ref().map(|subs| {
            let workspaces: usize = subs.iter().map(|s| s.workspaces.len()).sum();
            let unconfigured: usize = subs.iter().flat_map(|s| &s.workspaces).filter(|w| !w.configured).count();
            let delegated = subs.iter().filter(|s| !s.delegations.is_empty()).count();
            format!("; discovered {workspaces} workspaces ({unconfigured} not configured) in {} subscriptions, {delegated} delegated through Lighthouse", subs.len())
        });
        format!(
            "{}: configured {}{}",
            self.display_name,
            if configured.is_empty() {
                "none"
            } else {
                &configured
            },
            discovered.unwrap_or_default()
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListWorkspaces {
    type Params = ListWorkspacesParams;
    type Output = ListWorkspacesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_workspaces",
            title: "List Sentinel workspaces",
            description: "Lists the Sentinel workspaces configured for a tenant; discover: true also asks ARM for \
                         the subscriptions, Lighthouse delegations and workspaces the tenant shows this server.",
            toolset: Toolset::SentinelWorkspaces,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListWorkspacesParams,
    ) -> Result<ListWorkspacesOutput, ToolError> {
        let tenant = context
            .services
            .tenants
            .resolve(params.tenant_id.as_ref())?;
        let configured = tenant
            .workspaces
            .iter()
            .map(|w| ConfiguredWorkspace {
                workspace: w.workspace_name.clone(),
                subscription_id: w.subscription_id.clone(),
                resource_group: w.resource_group.clone(),
                workspace_id: w.workspace_id.clone(),
            })
            .collect();
        let discovered = if params.discover.unwrap_or(false) {
            Some(discover(context, tenant).await?)
        } else {
            None
        };
        Ok(ListWorkspacesOutput {
            tenant_id: tenant.tenant_id.clone(),
            display_name: tenant.display_name.clone(),
            configured,
            discovered,
        })
    }
}

async fn discover(
    context: &ToolContext,
    tenant: &TenantConfig,
) -> Result<Vec<DiscoveredSubscription>, ToolError> {
    let arm = &context.services.arm;
    let id = &tenant.tenant_id;
    let subscriptions = arm
        .list::<Subscription>(
            id,
            ListPosition::start(arm.subscription_url(None, SubscriptionResource::Subscriptions)),
            MAX_SUBSCRIPTIONS,
        )
        .await?;
    let lookups = subscriptions
        .items
        .into_iter()
        .map(|subscription| async move {
            let sub = subscription.subscription_id.as_str();
            let delegations = arm.list::<RegistrationAssignment>(
                id,
                ListPosition::start(
                    arm.subscription_url(Some(sub), SubscriptionResource::RegistrationAssignments),
                ),
                100,
            );
            let workspaces = arm.list::<Workspace>(
                id,
                ListPosition::start(
                    arm.subscription_url(Some(sub), SubscriptionResource::Workspaces),
                ),
                MAX_WORKSPACES,
            );
            let (delegations, workspaces) = tokio::join!(delegations, workspaces);
            let mut problems = Vec::new();
            let delegations = delegations
                .map_err(|e| problems.push(format!("delegations: {e}")))
                .map(|found| {
                    found
                        .items
                        .into_iter()
                        .map(|assignment| {
                            let definition = assignment
                                .properties
                                .registration_definition
                                .map(|d| d.properties);
                            Delegation {
                                managed_by_tenant_id: definition
                                    .as_ref()
                                    .and_then(|d| d.managed_by_tenant_id.clone()),
                                managed_by_tenant_name: definition
                                    .as_ref()
                                    .and_then(|d| d.managed_by_tenant_name.clone()),
                                definition: definition.and_then(|d| d.registration_definition_name),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let workspaces = workspaces
                .map_err(|e| problems.push(format!("workspaces: {e}")))
                .map(|found| {
                    found
                        .items
                        .into_iter()
                        .map(|w| {
                            let resource_group =
                                w.id.split('/')
                                    .skip_while(|s| !s.eq_ignore_ascii_case("resourceGroups"))
                                    .nth(1)
                                    .unwrap_or_default()
                                    .to_string();
                            let configured = tenant.workspaces.iter().any(|c| {
                                c.subscription_id.eq_ignore_ascii_case(sub)
                                    && c.resource_group.eq_ignore_ascii_case(&resource_group)
                                    && c.workspace_name.eq_ignore_ascii_case(&w.name)
                            });
                            DiscoveredWorkspace {
                                workspace: w.name,
                                resource_group,
                                workspace_id: w.properties.customer_id,
                                location: w.location,
                                configured,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            DiscoveredSubscription {
                subscription_id: subscription.subscription_id.clone(),
                display_name: subscription.display_name,
                state: subscription.state,
                delegations,
                workspaces,
                problem: (!problems.is_empty()).then(|| problems.join("; ")),
            }
        });
    Ok(futures::future::join_all(lookups).await)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn configured_workspaces_are_listed_and_discovery_marks_them() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let plain = harness
            .ok(&ListWorkspaces, json!({"tenant_id": tenant}))
            .await;
        let configured: Vec<&str> = plain["configured"]
            .as_array()
            .expect("configured")
            .iter()
            .map(|w| w["workspace"].as_str().expect("name"))
            .collect();
        assert_eq!(configured, ["law-contoso-sentinel", "law-contoso-dev"]);
        assert_eq!(plain["discovered"], json!(null), "discovery is asked for");

        let discovered = harness
            .ok(
                &ListWorkspaces,
                json!({"tenant_id": tenant, "discover": true}),
            )
            .await;
        let found: Vec<(String, bool)> = discovered["discovered"]
            .as_array()
            .expect("subscriptions")
            .iter()
            .flat_map(|subscription| subscription["workspaces"].as_array().expect("workspaces"))
            .map(|w| {
                (
                    w["workspace"].as_str().expect("name").to_owned(),
                    w["configured"].as_bool().expect("flag"),
                )
            })
            .collect();
        for name in configured {
            assert!(
                found.contains(&(name.to_owned(), true)),
                "{name} is found and marked configured: {found:?}"
            );
        }
    }
}
