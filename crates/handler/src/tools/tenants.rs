//! `tenants_list`: the tenants this deployment is configured for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(TenantsList)
}

struct TenantsList;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Serialize, JsonSchema)]
struct TenantsListOutput {
    tenants: Vec<TenantEntry>,
}

#[derive(Serialize, JsonSchema)]
struct TenantEntry {
    tenant_id: TenantId,
    display_name: String,
    enabled: bool,
    /// Names of the Sentinel workspaces configured for this tenant.
    workspaces: Vec<String>,
}

impl Summary for TenantsListOutput {
    fn summary(&self) -> String {
        let enabled = self.tenants.iter().filter(|t| t.enabled).count();
        format!(
            "{} tenants configured, {enabled} enabled",
            self.tenants.len()
        )
    }
}

#[async_trait::async_trait]
impl Tool for TenantsList {
    type Params = NoParams;
    type Output = TenantsListOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "tenants_list",
            title: "List tenants",
            description: "Lists the tenants this server may act in (id, name, enabled, Sentinel workspaces); every \
                         other tool takes one of these ids.",
            toolset: Toolset::Tenants,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        _params: NoParams,
    ) -> Result<TenantsListOutput, ToolError> {
        let tenants = context
            .services
            .tenants
            .all()
            .iter()
            .map(|tenant| TenantEntry {
                tenant_id: tenant.tenant_id.clone(),
                display_name: tenant.display_name.clone(),
                enabled: tenant.enabled,
                workspaces: tenant
                    .workspaces
                    .iter()
                    .map(|w| w.workspace_name.clone())
                    .collect(),
            })
            .collect();
        Ok(TenantsListOutput { tenants })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn the_configured_tenants_are_listed_with_their_workspaces() {
        let harness = Harness::start().await;
        let listed = harness.ok(&TenantsList, json!({})).await;
        let tenants = listed["tenants"].as_array().expect("tenants");
        assert_eq!(tenants.len(), harness.sandbox.tenants().len(), "{listed}");
        for (entry, tenant) in tenants.iter().zip(harness.sandbox.tenants()) {
            assert_eq!(entry["tenant_id"], json!(tenant.tenant_id));
            assert_eq!(entry["display_name"], json!(tenant.display_name));
            let names: Vec<&str> = tenant.workspaces.iter().map(|w| w.name.as_str()).collect();
            assert_eq!(entry["workspaces"], json!(names));
        }
        let message = harness
            .refusal(&TenantsList, json!({"tenant_id": harness.contoso()}))
            .await;
        assert!(message.contains("unknown field"), "{message}");
    }
}
