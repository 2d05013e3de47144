//! Microsoft Sentinel tools (ARM and the Log Analytics query API).

mod health;
mod prompts;

use crate::mcp::CatalogueBuilder;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    prompts::register(health::register(builder))
}
