//! The tool families. Each family is a module of its own and never reaches into another; this
//! file only assembles them into the catalogue.

mod audit;
mod cursor;
mod hunts;
mod job_output;
mod jobs;
mod mde;
mod powershell;
mod sentinel;
mod tenants;

use std::sync::Arc;

use crate::config::JobsConfig;
use crate::mcp::{Catalogue, CatalogueBuilder, CatalogueFilter, Toolset};
use crate::services::Services;

pub use crate::mcp::ToolContext;

/// Every tool family of the product, then `extra` (tests add tools that are never shipped).
pub fn catalogue(
    filter: CatalogueFilter,
    services: &Arc<Services>,
    jobs: &JobsConfig,
    extra: impl FnOnce(CatalogueBuilder) -> CatalogueBuilder,
) -> Result<Catalogue, crate::mcp::CatalogueError> {
    let builder = Catalogue::builder();
    let builder = tenants::register(builder);
    let builder = mde::register(builder);
    let builder = sentinel::register(builder);
    let builder = hunts::register(builder);
    let builder = jobs::register(builder);
    let builder = audit::register(builder);
    // Only a server that offers the family reads the manifest at all.
    let powershell_on = filter
        .toolsets
        .as_ref()
        .is_none_or(|enabled| enabled.contains(Toolset::PowerShell.name()));
    let builder = if powershell_on {
        powershell::register(builder, services.clone(), jobs.manifest_refresh)
    } else {
        builder
    };
    extra(builder).build(filter)
}
