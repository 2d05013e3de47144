//! Defender for Endpoint / Defender XDR tools, one module per sub-family.

/// Appends what every device action says about targeting, outcomes and retries to its description.
macro_rules! targets {
    ($text:expr) => {
        concat!(
            $text,
            " Targets: machine_ids, or an OData filter with max_devices (preview: true lists the devices and does nothing). \
             comment (why) is required and recorded in Defender. Returns at once, per device: done with the action id, \
             already pending, failed with Defender's reason, unconfirmed (sent, answer lost, never re-sent) or not started \
             (rate-limit budget: pass remaining_machine_ids to continue). wait_seconds (up to 60) waits for the actions to finish."
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
