//! What a hunt is: its id, query, targets, schedule, retention and alert rule, and the checks a
//! definition passes before it is stored.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::schedule::Schedule;
use crate::kql_guard;
use crate::tenants::{TenantId, TenantRegistry};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Advanced hunting keeps 30 days of data.
pub const MAX_LOOKBACK_MINUTES: u32 = 30 * 24 * 60;
pub const MAX_RETENTION_DAYS: u32 = 365;
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
const MAX_TARGET_TENANTS: usize = 500;

/// `h` and 12 hexadecimal characters, short enough for a resource URI a person can read.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct HuntId(String);

#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "'{0}' is not a hunt id: expected 'h' followed by 12 hexadecimal characters, as returned by hunt_create or hunt_list"
)]
pub struct InvalidHuntId(String);

impl HuntId {
    pub fn generate() -> Self {
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self(format!("h{}", &random[..12]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HuntId {
    type Err = InvalidHuntId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        let valid = text.len() == 13
            && text.starts_with('h')
            && text[1..].chars().all(|c| c.is_ascii_hexdigit());
        if valid {
            Ok(Self(text))
        } else {
            Err(InvalidHuntId(text.chars().take(64).collect()))
        }
    }
}

impl TryFrom<String> for HuntId {
    type Error = InvalidHuntId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<HuntId> for String {
    fn from(id: HuntId) -> Self {
        id.0
    }
}

impl fmt::Display for HuntId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which tenants a hunt searches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// Every tenant enabled on the allow-list when the run starts.
    AllEnabled,
    /// These tenants; one removed from the allow-list since is recorded as failed in each run.
    Tenants(Vec<TenantId>),
}

/// Whether the threshold applies to each tenant's rows or to the sum over tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertScope {
    /// Alert when any one tenant returns more rows than the threshold.
    PerTenant,
    /// Alert when all tenants together return more rows than the threshold.
    #[default]
    Total,
}

/// Notify a webhook when a run finds more rows than a threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Alert when the row count is greater than this (0 alerts on any row).
    pub threshold: u64,
    /// `total` (default) or `per_tenant`.
    #[serde(default)]
    pub scope: AlertScope,
    /// NAME of the Key Vault secret (locally the setting HUNT_SECRET_<NAME>) holding the webhook URL;
    /// never the URL itself.
    pub webhook_secret: String,
}

/// A stored hunt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HuntDefinition {
    pub id: HuntId,
    pub name: String,
    pub description: Option<String>,
    /// KQL for Defender XDR advanced hunting (Device*, Alert*, Email*, Identity* tables).
    pub query: String,
    pub targets: Targets,
    pub schedule: Schedule,
    /// How far back each run searches, ending at its scheduled time. Unset: the schedule's own
    /// period, so consecutive runs cover time without gaps or overlaps.
    pub lookback_minutes: Option<u32>,
    pub enabled: bool,
    /// Runs and their results older than this are deleted by the timer.
    pub retention_days: u32,
    pub alert: Option<AlertRule>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
    /// Occurrences at or before this time are never run: set when the hunt is created, enabled
    /// again or given a new schedule, so a paused hunt does not catch up on its pause.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub schedule_anchor: OffsetDateTime,
}

impl HuntDefinition {
    /// Everything a stored hunt must satisfy; the first problem found is reported, with what is
    /// accepted. `check_tenants`: whether the target tenants must be on the allow-list now; an
    /// update that leaves them alone skips it, so a hunt whose tenant was removed can still be
    /// paused or edited (its runs record that tenant as refused).
    pub fn validate(&self, tenants: &TenantRegistry, check_tenants: bool) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(format!(
                "name must be 1-{MAX_NAME_CHARS} characters on one line"
            ));
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            return Err(format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters"
            ));
        }
        kql_guard::check_query(&self.query)
            .map_err(|refusal| format!("query refused: {refusal}"))?;
        self.schedule
            .compile()
            .map_err(|error| format!("schedule: {error}"))?;
        if let Some(minutes) = self.lookback_minutes
            && !(1..=MAX_LOOKBACK_MINUTES).contains(&minutes)
        {
            return Err(format!(
                "lookback_minutes must be between 1 and {MAX_LOOKBACK_MINUTES} (30 days), got {minutes}"
            ));
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention_days) {
            return Err(format!(
                "retention_days must be between 1 and {MAX_RETENTION_DAYS}, got {}",
                self.retention_days
            ));
        }
        if let Targets::Tenants(ids) = &self.targets {
            if ids.is_empty() || ids.len() > MAX_TARGET_TENANTS {
                return Err(format!(
                    "tenant_ids must list 1-{MAX_TARGET_TENANTS} tenants, or set all_tenants: true"
                ));
            }
            let mut seen = BTreeSet::new();
            for id in ids {
                if !seen.insert(id) {
                    return Err(format!("tenant {id} is listed twice in tenant_ids"));
                }
                if check_tenants {
                    tenants
                        .resolve(Some(id))
                        .map_err(|refusal| refusal.to_string())?;
                }
            }
        }
        if let Some(alert) = &self.alert {
            check_secret_name(&alert.webhook_secret)?;
        }
        Ok(())
    }
}

/// Key Vault's rule for secret names, which also keeps them safe as app setting names.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 127
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else if name.contains("://") {
        Err("webhook_secret must be the NAME of a secret holding the webhook URL, not the URL itself; store the URL in Key Vault (or the app setting HUNT_SECRET_<NAME>) and pass its name".into())
    } else {
        Err(format!(
            "webhook_secret '{}' is not a secret name: use 1-127 letters, digits and dashes",
            name.chars().take(64).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunt_ids_are_short_lower_case_hex() {
        let id = HuntId::generate();
        assert_eq!(id.as_str().len(), 13);
        assert_eq!(id.as_str().parse::<HuntId>().expect("round trip"), id);
        assert_eq!(
            "H0123456789AB"
                .parse::<HuntId>()
                .expect("case-insensitive")
                .as_str(),
            "h0123456789ab"
        );
        assert!("hunt-1".parse::<HuntId>().is_err());
        assert!("h0123456789ag".parse::<HuntId>().is_err());
    }

    #[test]
    fn secret_names_follow_key_vault_rules_and_urls_are_refused() {
        assert!(check_secret_name("soc-teams-webhook").is_ok());
        let url = check_secret_name("https://prod.logic.azure.com/workflows/x").expect_err("a URL");
        assert!(url.contains("not the URL itself"), "{url}");
        assert!(check_secret_name("with space").is_err());
        assert!(check_secret_name("").is_err());
    }
}
