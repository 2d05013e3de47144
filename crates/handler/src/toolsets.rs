//! Toolsets: the product's vocabulary for which tools are offered. Every tool belongs to
//! exactly one [`Toolset`]; the historic family names (`defender`, `sentinel`, ...) stay valid as
//! [`ToolsetGroup`]s; a [`Selection`] is what a comma list of names (`MCP_TOOLSETS`, a
//! connection's URL or header) selects. Kept below configuration and the MCP surface, which both
//! name toolsets: `MCP_TOOLSETS` is parsed into a `Selection` when the settings are read.

use std::collections::BTreeSet;
use std::fmt;

/// The smallest unit an operator or a connection can switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Toolset {
    Tenants,
    /// Device inventory: machines and who logs on to them.
    Devices,
    Alerts,
    /// Files, IPs and domains as Defender knows them.
    Entities,
    /// Defender XDR incidents.
    Incidents,
    /// Machine actions: isolation, containment, scans, quarantine, offboarding, packages.
    Response,
    LiveResponse,
    Indicators,
    /// Advanced hunting queries.
    Hunting,
    /// Custom detection rules.
    DetectionRules,
    SentinelWorkspaces,
    SentinelQuery,
    SentinelIncidents,
    SentinelRules,
    SentinelTables,
    SentinelWorkbooks,
    SentinelBackups,
    SentinelDataCollection,
    /// Scheduled hunts the server runs unattended.
    Hunts,
    /// `job_get`, `job_list`, `job_cancel`: long work of every kind, observed one way.
    Jobs,
    /// `ps_<function>` tools generated from the sibling PowerShell app's manifest.
    PowerShell,
    /// The audit trail (`audit_search`).
    Audit,
}

/// The families the product grew with; each name still selects all of its toolsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolsetGroup {
    Tenants,
    Defender,
    Sentinel,
    Hunts,
    Jobs,
    PowerShell,
    Audit,
}

impl ToolsetGroup {
    pub const ALL: [ToolsetGroup; 7] = [
        Self::Tenants,
        Self::Defender,
        Self::Sentinel,
        Self::Hunts,
        Self::Jobs,
        Self::PowerShell,
        Self::Audit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Tenants => "tenants",
            Self::Defender => "defender",
            Self::Sentinel => "sentinel",
            Self::Hunts => "hunts",
            Self::Jobs => "jobs",
            Self::PowerShell => "powershell",
            Self::Audit => "audit",
        }
    }

    pub fn toolsets(self) -> impl Iterator<Item = Toolset> {
        Toolset::ALL
            .into_iter()
            .filter(move |toolset| toolset.group() == self)
    }
}

impl Toolset {
    pub const ALL: [Toolset; 22] = [
        Self::Tenants,
        Self::Devices,
        Self::Alerts,
        Self::Entities,
        Self::Incidents,
        Self::Response,
        Self::LiveResponse,
        Self::Indicators,
        Self::Hunting,
        Self::DetectionRules,
        Self::SentinelWorkspaces,
        Self::SentinelQuery,
        Self::SentinelIncidents,
        Self::SentinelRules,
        Self::SentinelTables,
        Self::SentinelWorkbooks,
        Self::SentinelBackups,
        Self::SentinelDataCollection,
        Self::Hunts,
        Self::Jobs,
        Self::PowerShell,
        Self::Audit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Tenants => "tenants",
            Self::Devices => "devices",
            Self::Alerts => "alerts",
            Self::Entities => "entities",
            Self::Incidents => "incidents",
            Self::Response => "response",
            Self::LiveResponse => "live_response",
            Self::Indicators => "indicators",
            Self::Hunting => "hunting",
            Self::DetectionRules => "detection_rules",
            Self::SentinelWorkspaces => "sentinel_workspaces",
            Self::SentinelQuery => "sentinel_query",
            Self::SentinelIncidents => "sentinel_incidents",
            Self::SentinelRules => "sentinel_rules",
            Self::SentinelTables => "sentinel_tables",
            Self::SentinelWorkbooks => "sentinel_workbooks",
            Self::SentinelBackups => "sentinel_backups",
            Self::SentinelDataCollection => "sentinel_data_collection",
            Self::Hunts => "hunts",
            Self::Jobs => "jobs",
            Self::PowerShell => "powershell",
            Self::Audit => "audit",
        }
    }

    /// One line for `toolsets_list` and the README: what the toolset covers.
    pub fn summary(self) -> &'static str {
        match self {
            Self::Tenants => "the tenants this server manages",
            Self::Devices => "Defender device inventory, one device in full, logged-on users",
            Self::Alerts => "Defender alerts",
            Self::Entities => "what Defender knows about a file hash, an IP address or a domain",
            Self::Incidents => "Defender XDR incidents: read, update, comment",
            Self::Response => {
                "device response: isolate, contain, restrict apps, scan, quarantine a file, \
                 investigation packages, offboard; machine actions"
            }
            Self::LiveResponse => "live response scripts and files, and the script library",
            Self::Indicators => {
                "custom threat indicators (block or allow hashes, IPs, URLs, domains)"
            }
            Self::Hunting => "Defender XDR advanced hunting (KQL)",
            Self::DetectionRules => "Defender custom detection rules",
            Self::SentinelWorkspaces => "Sentinel workspaces and their health",
            Self::SentinelQuery => "Log Analytics KQL queries and Sentinel watchlists",
            Self::SentinelIncidents => "Sentinel incidents and their comments",
            Self::SentinelRules => "Sentinel analytics rules and rule templates",
            Self::SentinelTables => "Log Analytics tables: plans, retention, custom tables",
            Self::SentinelWorkbooks => "Sentinel workbooks: read, export, import, delete",
            Self::SentinelBackups => "backups of a workspace's Sentinel content and their restore",
            Self::SentinelDataCollection => "data collection rules, endpoints and associations",
            Self::Hunts => "scheduled hunts the server runs unattended, their runs and results",
            Self::Jobs => "long-running work (bulk actions, PowerShell jobs): status, list, cancel",
            Self::PowerShell => "functions of the sibling PowerShell app, from its manifest",
            Self::Audit => "the audit trail of every call",
        }
    }

    pub fn group(self) -> ToolsetGroup {
        match self {
            Self::Tenants => ToolsetGroup::Tenants,
            Self::Devices
            | Self::Alerts
            | Self::Entities
            | Self::Incidents
            | Self::Response
            | Self::LiveResponse
            | Self::Indicators
            | Self::Hunting
            | Self::DetectionRules => ToolsetGroup::Defender,
            Self::SentinelWorkspaces
            | Self::SentinelQuery
            | Self::SentinelIncidents
            | Self::SentinelRules
            | Self::SentinelTables
            | Self::SentinelWorkbooks
            | Self::SentinelBackups
            | Self::SentinelDataCollection => ToolsetGroup::Sentinel,
            Self::Hunts => ToolsetGroup::Hunts,
            Self::Jobs => ToolsetGroup::Jobs,
            Self::PowerShell => ToolsetGroup::PowerShell,
            Self::Audit => ToolsetGroup::Audit,
        }
    }
}

impl fmt::Display for Toolset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name that selects every toolset.
pub const ALL_TOOLSETS: &str = "all";
/// The name of the default set a connection gets when it names none.
pub const TRIAGE: &str = "triage";

/// A set of tools named by toolsets, groups, `all` or `triage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    toolsets: BTreeSet<Toolset>,
    /// Also the tools of the triage set, whatever their toolset.
    triage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown toolset(s) {}; known: {}", .unknown.join(", "), known_names())]
pub struct UnknownToolsets {
    pub unknown: Vec<String>,
}

/// Every name a selection accepts, for error messages.
pub fn known_names() -> String {
    let mut names = vec![ALL_TOOLSETS, TRIAGE];
    names.extend(
        ToolsetGroup::ALL
            .into_iter()
            .map(ToolsetGroup::name)
            .filter(|group| Toolset::ALL.iter().all(|t| t.name() != *group)),
    );
    names.extend(Toolset::ALL.map(Toolset::name));
    names.join(", ")
}

impl Selection {
    pub fn all() -> Self {
        Self {
            toolsets: Toolset::ALL.into_iter().collect(),
            triage: true,
        }
    }

    pub fn triage() -> Self {
        Self {
            toolsets: BTreeSet::new(),
            triage: true,
        }
    }

    /// A comma list such as `hunts,response` or `defender`; names are case-insensitive.
    pub fn parse(list: &str) -> Result<Self, UnknownToolsets> {
        Self::from_names(list.split(','))
    }

    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, UnknownToolsets> {
        let mut selection = Self {
            toolsets: BTreeSet::new(),
            triage: false,
        };
        let mut unknown = Vec::new();
        for name in names {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if name == ALL_TOOLSETS {
                selection = Self::all();
            } else if name == TRIAGE {
                selection.triage = true;
            } else if let Some(toolset) = Toolset::ALL.into_iter().find(|t| t.name() == name) {
                selection.toolsets.insert(toolset);
            } else if let Some(group) = ToolsetGroup::ALL.into_iter().find(|g| g.name() == name) {
                selection.toolsets.extend(group.toolsets());
            } else {
                unknown.push(name);
            }
        }
        if unknown.is_empty() {
            Ok(selection)
        } else {
            Err(UnknownToolsets { unknown })
        }
    }

    /// Whether a tool of `toolset` (in the triage set or not) is selected.
    pub fn contains(&self, toolset: Toolset, in_triage: bool) -> bool {
        self.toolsets.contains(&toolset) || (self.triage && in_triage)
    }

    /// Whether any tool of `toolset` can be selected (resources follow their toolset).
    pub fn touches(&self, toolset: Toolset) -> bool {
        self.toolsets.contains(&toolset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expand_to_their_toolsets_and_names_are_case_insensitive() {
        let selection = Selection::parse("Defender, hunts").unwrap();
        assert!(selection.contains(Toolset::Response, false));
        assert!(selection.contains(Toolset::Hunts, false));
        assert!(!selection.contains(Toolset::SentinelTables, false));
        assert!(!selection.contains(Toolset::SentinelTables, true));
    }

    #[test]
    fn unknown_names_are_refused_with_every_known_name() {
        let error = Selection::parse("hunts,respnse").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("respnse"), "{message}");
        for known in [
            "all",
            "triage",
            "defender",
            "sentinel",
            "live_response",
            "hunts",
        ] {
            assert!(message.contains(known), "{known} missing: {message}");
        }
        assert!(
            !message.contains(", hunts, hunts"),
            "groups named like a toolset are listed once"
        );
    }

    #[test]
    fn every_toolset_belongs_to_one_group_and_all_selects_everything() {
        let all = Selection::parse("all").unwrap();
        for toolset in Toolset::ALL {
            assert!(all.contains(toolset, false));
            assert!(ToolsetGroup::ALL.contains(&toolset.group()));
        }
    }
}
