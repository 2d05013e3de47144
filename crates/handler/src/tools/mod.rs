//! The tool families. Each family is a module of its own and never reaches into another; this
//! file only assembles them into the catalogue.

mod cursor;
mod hunts;
mod mde;
mod sentinel;
mod tenants;

use crate::mcp::{Catalogue, CatalogueFilter};

pub use crate::mcp::ToolContext;

pub fn catalogue(filter: CatalogueFilter) -> Result<Catalogue, crate::mcp::CatalogueError> {
    let builder = Catalogue::builder();
    let builder = tenants::register(builder);
    let builder = mde::register(builder);
    let builder = sentinel::register(builder);
    let builder = hunts::register(builder);
    builder.build(filter)
}
