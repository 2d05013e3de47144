//! The tool families. Each family is a module of its own and never reaches into another; this
//! file only assembles them into the catalogue.

mod args;
mod audit;
mod cursor;
mod hunts;
mod job_output;
mod jobs;
mod mde;
mod powershell;
mod rows;
mod sentinel;
mod tenants;

use std::sync::Arc;

use crate::config::JobsConfig;
use crate::mcp::{Catalogue, CatalogueBuilder, CatalogueFilter, Toolset};
use crate::services::Services;

pub use crate::mcp::ToolContext;

/// The default of a connection that names no toolset: the read tools an analyst starts a
/// triage with (`toolsets_list`, which leads to the rest, is always in it). Budget: the
/// definitions of these tools stay within 32 KB (`tests/integration/catalogue_budget.rs`).
const TRIAGE: &[&str] = &[
    "tenants_list",
    "mde_list_incidents",
    "mde_get_incident",
    "mde_list_alerts",
    "mde_get_alert",
    "mde_list_machines",
    "mde_get_machine",
    "mde_get_file_info",
    "mde_get_ip_info",
    "mde_get_domain_info",
    "mde_run_hunting_query",
    "mde_list_machine_actions",
    "sentinel_list_incidents",
    "sentinel_get_incident",
    "sentinel_run_query",
    "hunt_list",
    "job_get",
];

/// Every tool family of the product, then `extra` (tests add tools that are never shipped).
pub fn catalogue(
    filter: CatalogueFilter,
    services: &Arc<Services>,
    jobs: &JobsConfig,
    extra: impl FnOnce(CatalogueBuilder) -> CatalogueBuilder,
) -> Result<Catalogue, crate::mcp::CatalogueError> {
    let builder = Catalogue::builder().operations_on(services.clone());
    let builder = tenants::register(builder);
    let builder = mde::register(builder);
    let builder = sentinel::register(builder);
    let builder = hunts::register(builder);
    let builder = jobs::register(builder);
    let builder = audit::register(builder).triage(TRIAGE);
    // Only a server that offers the family reads the manifest at all.
    let builder = if filter.offers(Toolset::PowerShell) {
        powershell::register(builder, services.clone(), jobs.manifest_refresh)
    } else {
        builder
    };
    extra(builder).build(filter)
}
