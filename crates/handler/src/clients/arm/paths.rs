//! Every ARM path this server calls and the api-version each resource provider is called with.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tenants::WorkspaceConfig;

/// api-versions: the newest stable ones in `Azure/azure-rest-api-specs`, each the version of the
/// definition the sandbox vendors (`crates/sandbox/definitions/azure-rest-api-specs/PROVENANCE-arm.md`).
pub const OPERATIONAL_INSIGHTS_API_VERSION: &str = "2026-03-01";
pub const SECURITY_INSIGHTS_API_VERSION: &str = "2025-09-01";
/// Preview on purpose, for the `alertRules` operations only: the `NRT` rule kind exists only in
/// the preview definitions, and the service leaves NRT rules out of a stable `AlertRules_List`.
/// A rule read at this version is written back at it, so that no preview-only property is lost.
pub const SECURITY_INSIGHTS_ALERT_RULES_API_VERSION: &str = "2025-10-01-preview";
pub const WORKBOOKS_API_VERSION: &str = "2023-06-01";
pub const DATA_COLLECTION_API_VERSION: &str = "2024-03-11";
pub const SUBSCRIPTIONS_API_VERSION: &str = "2022-12-01";
pub const MANAGED_SERVICES_API_VERSION: &str = "2022-10-01";

/// The name of an ARM resource as it appears in its path (a rule id, a table, a watchlist
/// alias, a DCR name). Checked so that a name can never change which path is called.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct ArmName(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a resource name: use 1-260 letters, digits, '-', '_', '.' or '()', not starting with '.'"
)]
pub struct InvalidArmName(String);

impl TryFrom<String> for ArmName {
    type Error = InvalidArmName;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let trimmed = text.trim();
        let valid = (1..=260).contains(&trimmed.len())
            && !trimmed.starts_with('.')
            && trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
        if valid {
            Ok(Self(trimmed.to_string()))
        } else {
            Err(InvalidArmName(trimmed.chars().take(80).collect()))
        }
    }
}

impl From<ArmName> for String {
    fn from(name: ArmName) -> Self {
        name.0
    }
}

impl std::str::FromStr for ArmName {
    type Err = InvalidArmName;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::try_from(text.to_string())
    }
}

impl std::fmt::Display for ArmName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ArmName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A new random name in the GUID form Sentinel and workbooks use.
    pub fn new_guid() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

/// Resources under a workspace.
#[derive(Debug, Clone, Copy)]
pub enum WorkspaceResource<'a> {
    Workspace,
    Tables,
    Table(&'a ArmName),
    SavedSearches,
    SavedSearch(&'a ArmName),
    AlertRules,
    AlertRule(&'a ArmName),
    AlertRuleTemplates,
    AlertRuleTemplate(&'a ArmName),
    Incidents,
    Incident(&'a ArmName),
    IncidentAlerts(&'a ArmName),
    IncidentEntities(&'a ArmName),
    IncidentComments(&'a ArmName),
    IncidentComment(&'a ArmName, &'a ArmName),
    Watchlists,
    Watchlist(&'a ArmName),
    WatchlistItems(&'a ArmName),
    WatchlistItem(&'a ArmName, &'a ArmName),
    AutomationRules,
    AutomationRule(&'a ArmName),
}

impl WorkspaceResource<'_> {
    pub fn path(self, workspace: &WorkspaceConfig) -> (String, &'static str) {
        use WorkspaceResource::*;
        let base = workspace.resource_path();
        let (suffix, version) = match self {
            Workspace => (String::new(), OPERATIONAL_INSIGHTS_API_VERSION),
            Tables => ("/tables".into(), OPERATIONAL_INSIGHTS_API_VERSION),
            Table(name) => (format!("/tables/{name}"), OPERATIONAL_INSIGHTS_API_VERSION),
            SavedSearches => ("/savedSearches".into(), OPERATIONAL_INSIGHTS_API_VERSION),
            SavedSearch(id) => (
                format!("/savedSearches/{id}"),
                OPERATIONAL_INSIGHTS_API_VERSION,
            ),
            AlertRules => (si("alertRules"), SECURITY_INSIGHTS_ALERT_RULES_API_VERSION),
            AlertRule(id) => (
                si(&format!("alertRules/{id}")),
                SECURITY_INSIGHTS_ALERT_RULES_API_VERSION,
            ),
            AlertRuleTemplates => (si("alertRuleTemplates"), SECURITY_INSIGHTS_API_VERSION),
            AlertRuleTemplate(id) => (
                si(&format!("alertRuleTemplates/{id}")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            Incidents => (si("incidents"), SECURITY_INSIGHTS_API_VERSION),
            Incident(id) => (
                si(&format!("incidents/{id}")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            IncidentAlerts(id) => (
                si(&format!("incidents/{id}/alerts")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            IncidentEntities(id) => (
                si(&format!("incidents/{id}/entities")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            IncidentComments(id) => (
                si(&format!("incidents/{id}/comments")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            IncidentComment(id, comment) => (
                si(&format!("incidents/{id}/comments/{comment}")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            Watchlists => (si("watchlists"), SECURITY_INSIGHTS_API_VERSION),
            Watchlist(alias) => (
                si(&format!("watchlists/{alias}")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            WatchlistItems(alias) => (
                si(&format!("watchlists/{alias}/watchlistItems")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            WatchlistItem(alias, item) => (
                si(&format!("watchlists/{alias}/watchlistItems/{item}")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
            AutomationRules => (si("automationRules"), SECURITY_INSIGHTS_API_VERSION),
            AutomationRule(id) => (
                si(&format!("automationRules/{id}")),
                SECURITY_INSIGHTS_API_VERSION,
            ),
        };
        (format!("{base}{suffix}"), version)
    }
}

fn si(rest: &str) -> String {
    format!("/providers/Microsoft.SecurityInsights/{rest}")
}

/// `Microsoft.Insights` resources in a resource group.
#[derive(Debug, Clone, Copy)]
pub enum GroupResource<'a> {
    /// Sentinel workbooks of one workspace (`sourceId`), without their content.
    Workbooks {
        source_id: &'a str,
    },
    /// One workbook; `content` asks a GET for its `serializedData`. `canFetchContent` is a
    /// parameter of `Workbooks_Get` only: `None` for the PUT and DELETE, which do not declare it.
    Workbook {
        name: &'a ArmName,
        content: Option<bool>,
    },
    DataCollectionRule(&'a ArmName),
    DataCollectionRuleAssociations(&'a ArmName),
    DataCollectionEndpoint(&'a ArmName),
}

impl GroupResource<'_> {
    pub fn path(
        self,
        subscription: &str,
        resource_group: &str,
    ) -> (String, &'static str, Vec<(&'static str, String)>) {
        use GroupResource::*;
        let base = format!(
            "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Insights"
        );
        match self {
            Workbooks { source_id } => (
                format!("{base}/workbooks"),
                WORKBOOKS_API_VERSION,
                vec![
                    ("category", "sentinel".into()),
                    ("sourceId", source_id.to_string()),
                    ("canFetchContent", "false".into()),
                ],
            ),
            Workbook { name, content } => (
                format!("{base}/workbooks/{name}"),
                WORKBOOKS_API_VERSION,
                content
                    .map(|c| vec![("canFetchContent", c.to_string())])
                    .unwrap_or_default(),
            ),
            DataCollectionRule(name) => (
                format!("{base}/dataCollectionRules/{name}"),
                DATA_COLLECTION_API_VERSION,
                vec![],
            ),
            DataCollectionRuleAssociations(name) => (
                format!("{base}/dataCollectionRules/{name}/associations"),
                DATA_COLLECTION_API_VERSION,
                vec![],
            ),
            DataCollectionEndpoint(name) => (
                format!("{base}/dataCollectionEndpoints/{name}"),
                DATA_COLLECTION_API_VERSION,
                vec![],
            ),
        }
    }
}

/// Lists at subscription scope (or the tenant's subscriptions).
#[derive(Debug, Clone, Copy)]
pub enum SubscriptionResource {
    /// The subscriptions the token's tenant can see (no subscription id).
    Subscriptions,
    RegistrationAssignments,
    Workspaces,
    DataCollectionRules,
    DataCollectionEndpoints,
}

impl SubscriptionResource {
    pub fn path(
        self,
        subscription: Option<&str>,
    ) -> (
        String,
        &'static str,
        &'static [(&'static str, &'static str)],
    ) {
        use SubscriptionResource::*;
        let base = format!("/subscriptions/{}", subscription.unwrap_or_default());
        match self {
            Subscriptions => ("/subscriptions".into(), SUBSCRIPTIONS_API_VERSION, &[]),
            RegistrationAssignments => (
                format!("{base}/providers/Microsoft.ManagedServices/registrationAssignments"),
                MANAGED_SERVICES_API_VERSION,
                &[("$expandRegistrationDefinition", "true")],
            ),
            Workspaces => (
                format!("{base}/providers/Microsoft.OperationalInsights/workspaces"),
                OPERATIONAL_INSIGHTS_API_VERSION,
                &[],
            ),
            DataCollectionRules => (
                format!("{base}/providers/Microsoft.Insights/dataCollectionRules"),
                DATA_COLLECTION_API_VERSION,
                &[],
            ),
            DataCollectionEndpoints => (
                format!("{base}/providers/Microsoft.Insights/dataCollectionEndpoints"),
                DATA_COLLECTION_API_VERSION,
                &[],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_change_the_path() {
        for good in [
            "0b6b5c11-1c2b-4b0f-9d0b-2f5f1c1a3e10",
            "AppAudit_CL",
            "dcr-windows.events",
            "BuiltInFusion",
            "VIP(Users)",
        ] {
            assert!(ArmName::try_from(good.to_string()).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../alertRules",
            "a/b",
            "x?api-version=1",
            "a%2Fb",
            ".hidden",
            "has space",
            &"x".repeat(261),
        ] {
            assert!(ArmName::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_and_versions() {
        let ws = WorkspaceConfig {
            subscription_id: "s".into(),
            resource_group: "rg".into(),
            workspace_name: "law".into(),
            workspace_id: "00000000-0000-0000-0000-000000000000".into(),
        };
        let id: ArmName = "r1".parse().expect("name");
        let (path, version) = WorkspaceResource::AlertRule(&id).path(&ws);
        assert_eq!(
            path,
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law/providers/Microsoft.SecurityInsights/alertRules/r1"
        );
        assert_eq!(version, SECURITY_INSIGHTS_ALERT_RULES_API_VERSION);
        let (_, version) = WorkspaceResource::Incident(&id).path(&ws);
        assert_eq!(version, SECURITY_INSIGHTS_API_VERSION);
        let (path, version, query) = GroupResource::Workbook {
            name: &id,
            content: Some(true),
        }
        .path("s", "rg");
        assert_eq!(
            path,
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/workbooks/r1"
        );
        assert_eq!(
            (version, query),
            (
                WORKBOOKS_API_VERSION,
                vec![("canFetchContent", "true".to_string())]
            )
        );
    }
}
