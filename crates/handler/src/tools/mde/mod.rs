//! Defender for Endpoint / Defender XDR tools, one module per sub-family.

/// Appends what every device action says about targeting, outcomes and retries to its description.
macro_rules! targets {
    ($text:expr) => {
        concat!(
            $text,
            " Reports each device's outcome; an action whose answer was lost is never re-sent."
        )
    };
}

mod actions;
mod alerts;
mod bulk;
mod common;
mod detection_rules;
mod entities;
mod hunting;
mod incidents;
mod indicators;
mod live_response;
mod machine_actions;
mod machines;

use crate::mcp::CatalogueBuilder;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    let builder = machines::register(builder);
    let builder = actions::register(builder);
    let builder = machine_actions::register(builder);
    let builder = live_response::register(builder);
    let builder = indicators::register(builder);
    let builder = entities::register(builder);
    let builder = alerts::register(builder);
    let builder = hunting::register(builder);
    let builder = incidents::register(builder);
    detection_rules::register(builder)
}
