//! The tiers of app roles a caller may hold. They sit below configuration (`AUTH_LOCAL_ROLE`, the
//! role names), inbound auth (a caller's tier) and the MCP surface (the least tier of each tool),
//! so that none of those reaches up into another for them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The least role a caller needs to use a tool (app roles of the inbound identity). Each tier
/// includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Reads.
    Reader,
    /// Response actions, indicators, incident updates, jobs.
    Responder,
    /// Rules, tables, data collection, offboarding, deletions.
    Admin,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Self::Reader, Self::Responder, Self::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Self::Reader => "Reader",
            Self::Responder => "Responder",
            Self::Admin => "Admin",
        }
    }

    /// Case-insensitive `reader`, `responder` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|tier| tier.name().eq_ignore_ascii_case(text.trim()))
    }
}
