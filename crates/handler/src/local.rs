//! Local runs on the embedded sandbox: the settings that point the handler at a simulated
//! tenant instead of Microsoft's cloud, so `handler --sandbox` is a working product with no Azure.

use std::collections::HashMap;

use sandbox::RunningSandbox;

use crate::config::settings;
use crate::tenants::{TenantConfig, WorkspaceConfig};

/// App settings that route every Microsoft API and the token authority to the sandbox.
/// Anything the operator set explicitly in the environment still wins for the rest.
pub fn sandbox_settings(sandbox: &RunningSandbox) -> HashMap<&'static str, String> {
    let base = sandbox.base_url().trim_end_matches('/');
    let tenants: Vec<TenantConfig> = sandbox
        .tenants()
        .iter()
        .map(|tenant| TenantConfig {
            tenant_id: tenant.tenant_id.parse().expect("the sandbox's tenant ids are GUIDs"),
            display_name: tenant.display_name.clone(),
            enabled: true,
            workspaces: tenant
                .workspaces
                .iter()
                .map(|w| WorkspaceConfig {
                    subscription_id: w.subscription_id.clone(),
                    resource_group: w.resource_group.clone(),
                    workspace_name: w.name.clone(),
                    workspace_id: w.customer_id.clone(),
                })
                .collect(),
        })
        .collect();
    HashMap::from([
        (settings::AUTH_MODE, "client_secret".to_string()),
        (settings::AZURE_CLIENT_ID, sandbox.client_id().to_string()),
        (settings::AZURE_CLIENT_SECRET, sandbox.client_secret().to_string()),
        (settings::AZURE_AUTHORITY_HOST, base.to_string()),
        (settings::DEFENDER_API_BASE_URL, format!("{base}/defender")),
        (settings::GRAPH_BASE_URL, format!("{base}/graph")),
        (settings::ARM_BASE_URL, format!("{base}/arm")),
        (settings::LOG_ANALYTICS_BASE_URL, format!("{base}/loganalytics")),
        (settings::TENANTS, serde_json::to_string(&tenants).unwrap_or_default()),
    ])
}

/// Settings `--sandbox` assumes unless the environment sets them: no inbound identity, every
/// local caller an Admin (a demo on a simulated tenant), and destructive tools confirmed in two
/// steps for clients that cannot show an approval prompt.
pub fn sandbox_defaults() -> HashMap<&'static str, String> {
    HashMap::from([
        (settings::AUTH_INBOUND_MODE, "none".to_string()),
        (settings::AUTH_LOCAL_ROLE, "admin".to_string()),
        (settings::APPROVAL_FALLBACK, "confirm".to_string()),
    ])
}
