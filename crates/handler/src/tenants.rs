//! The tenants this deployment may act in: the allow-list every tool call is checked against
//! before any token is requested.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An Entra tenant id, always a GUID in lower case: tenant names and domains are refused so
/// that the allow-list compares like with like.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct TenantId(String);

#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a tenant id: expected a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47")]
pub struct InvalidTenantId(String);

impl FromStr for TenantId {
    type Err = InvalidTenantId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        uuid::Uuid::try_parse(trimmed)
            .map(|guid| Self(guid.hyphenated().to_string()))
            .map_err(|_| InvalidTenantId(trimmed.chars().take(64).collect()))
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidTenantId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> Self {
        id.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TenantId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Log Analytics workspace with Sentinel, addressed both through ARM and the query API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceConfig {
    pub subscription_id: String,
    pub resource_group: String,
    pub workspace_name: String,
    /// The workspace's customer id (a GUID), used by the Log Analytics query API.
    pub workspace_id: String,
}

impl WorkspaceConfig {
    /// The ARM resource path, without the host.
    pub fn resource_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
            self.subscription_id, self.resource_group, self.workspace_name
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantConfig {
    pub tenant_id: TenantId,
    pub display_name: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub workspaces: Vec<WorkspaceConfig>,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum TenantRegistryError {
    #[error("tenant {0} is listed twice")]
    Duplicate(TenantId),
    #[error("the default tenant {0} is not in the list of tenants")]
    UnknownDefault(TenantId),
}

/// Why a tool call may not act in the tenant it asked for. The messages never say whether a
/// tenant exists in Entra: only whether this deployment is configured for it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TenantRefusal {
    #[error(
        "tenant_id is required: this server manages {count} tenants and has no default; call tenants_list to see them"
    )]
    NoTenantGiven { count: usize },
    #[error(
        "tenant {0} is not on this server's tenant allow-list; call tenants_list to see the tenants you can use"
    )]
    NotAllowed(TenantId),
    #[error("tenant {0} is configured but disabled on this server")]
    Disabled(TenantId),
}

#[derive(Debug, Clone, Default)]
pub struct TenantRegistry {
    tenants: Vec<TenantConfig>,
    default: Option<TenantId>,
}

impl TenantRegistry {
    pub fn new(
        tenants: Vec<TenantConfig>,
        default: Option<TenantId>,
    ) -> Result<Self, TenantRegistryError> {
        let mut seen = std::collections::HashSet::new();
        for tenant in &tenants {
            if !seen.insert(&tenant.tenant_id) {
                return Err(TenantRegistryError::Duplicate(tenant.tenant_id.clone()));
            }
        }
        if let Some(default) = &default
            && !seen.contains(default)
        {
            return Err(TenantRegistryError::UnknownDefault(default.clone()));
        }
        Ok(Self { tenants, default })
    }

    pub fn all(&self) -> &[TenantConfig] {
        &self.tenants
    }

    /// The tenant a call acts in: the one it names, or the default when exactly one applies.
    pub fn resolve(&self, requested: Option<&TenantId>) -> Result<&TenantConfig, TenantRefusal> {
        let enabled = || self.tenants.iter().filter(|t| t.enabled);
        let wanted = match (requested, &self.default) {
            (Some(id), _) => id,
            (None, Some(default)) => default,
            (None, None) => {
                let mut candidates = enabled();
                return match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Ok(only),
                    _ => Err(TenantRefusal::NoTenantGiven {
                        count: enabled().count(),
                    }),
                };
            }
        };
        let tenant = self
            .tenants
            .iter()
            .find(|t| &t.tenant_id == wanted)
            .ok_or_else(|| TenantRefusal::NotAllowed(wanted.clone()))?;
        if tenant.enabled {
            Ok(tenant)
        } else {
            Err(TenantRefusal::Disabled(wanted.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str, enabled: bool) -> TenantConfig {
        TenantConfig {
            tenant_id: id.parse().expect("guid"),
            display_name: id.into(),
            enabled,
            workspaces: vec![],
        }
    }

    const A: &str = "11111111-1111-4111-8111-111111111111";
    const B: &str = "22222222-2222-4222-8222-222222222222";

    #[test]
    fn tenant_ids_are_guids_in_lower_case() {
        let id: TenantId = "AAAAAAAA-1111-4111-8111-111111111111"
            .parse()
            .expect("guid");
        assert_eq!(id.as_str(), "aaaaaaaa-1111-4111-8111-111111111111");
        let error = "contoso.onmicrosoft.com"
            .parse::<TenantId>()
            .expect_err("domain refused");
        assert!(error.to_string().contains("expected a GUID"));
    }

    #[test]
    fn a_single_enabled_tenant_is_the_implicit_default() {
        let registry =
            TenantRegistry::new(vec![tenant(A, true), tenant(B, false)], None).expect("valid");
        assert_eq!(
            registry.resolve(None).expect("implicit").tenant_id.as_str(),
            A
        );
    }

    #[test]
    fn several_tenants_without_default_require_a_tenant() {
        let registry =
            TenantRegistry::new(vec![tenant(A, true), tenant(B, true)], None).expect("valid");
        assert_eq!(
            registry.resolve(None),
            Err(TenantRefusal::NoTenantGiven { count: 2 })
        );
    }

    #[test]
    fn unknown_and_disabled_tenants_are_refused() {
        let registry =
            TenantRegistry::new(vec![tenant(A, true), tenant(B, false)], None).expect("valid");
        let unknown: TenantId = "33333333-3333-4333-8333-333333333333"
            .parse()
            .expect("guid");
        assert!(matches!(
            registry.resolve(Some(&unknown)),
            Err(TenantRefusal::NotAllowed(_))
        ));
        assert!(matches!(
            registry.resolve(Some(&B.parse().expect("guid"))),
            Err(TenantRefusal::Disabled(_))
        ));
    }

    #[test]
    fn duplicates_and_unknown_default_are_configuration_errors() {
        assert!(TenantRegistry::new(vec![tenant(A, true), tenant(A, true)], None).is_err());
        assert!(
            TenantRegistry::new(vec![tenant(A, true)], Some(B.parse().expect("guid"))).is_err()
        );
    }
}
