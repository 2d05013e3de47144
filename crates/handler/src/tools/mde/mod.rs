//! Defender for Endpoint / Defender XDR tools.

mod machines;

use crate::mcp::CatalogueBuilder;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    machines::register(builder)
}
