//! Prompts that walk a model through the Sentinel tools in the right order.

use crate::mcp::{CatalogueBuilder, PromptDef};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.prompt(PromptDef {
        name: "sentinel-quick-status",
        description: "A short status of one tenant's Sentinel workspaces: reachable, fresh data, rules, open incidents.",
        arguments: &[("tenant_id", "Tenant to report on (from tenants_list)", true)],
        render: |arguments| {
            format!(
                "Give a short Sentinel status for tenant {tenant}. Call sentinel_health_check with tenant_id {tenant}. \
                 Then answer in at most five lines: overall state, any unreachable workspace, stale tables with how long they have been silent, \
                 analytics rules enabled versus total, and open incidents by severity. Do not change anything.",
                tenant = arguments.get("tenant_id").map(String::as_str).unwrap_or_default()
            )
        },
    })
}
