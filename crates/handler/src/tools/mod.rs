//! The tool families. Each family is a module of its own and never reaches into another; this
//! file only assembles them into the catalogue.

mod audit;
mod cursor;
mod mde;
mod sentinel;
mod tenants;

use crate::mcp::CatalogueBuilder;

pub use crate::mcp::ToolContext;

/// Every tool family of the product.
pub fn register_all(builder: CatalogueBuilder) -> CatalogueBuilder {
    let builder = tenants::register(builder);
    let builder = mde::register(builder);
    let builder = sentinel::register(builder);
    audit::register(builder)
}
