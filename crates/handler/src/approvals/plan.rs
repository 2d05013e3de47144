//! What a call that changes something will do, computed read-only before anyone approves it:
//! the resolved targets, what happens to each, and the tenant. An approval is bound to the
//! plan's digest, so a filter that resolves to other devices by the time the call runs cannot
//! ride on an approval given for the first set.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// What will happen, in words a person approving it reads first.
    pub action: String,
    pub tenant: Option<PlanTenant>,
    /// Everything the call acts on; empty when the call names no individual targets.
    pub targets: Vec<PlanTarget>,
    /// What else the person should know (cannot be undone, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanTenant {
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanTarget {
    /// device, indicator, analytics rule, table, ...
    pub kind: String,
    pub id: String,
    pub name: Option<String>,
    /// Shown beside the target but not bound by the approval, since they change on their own
    /// (OS, health, last seen).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, String>,
    pub change: Change,
}

/// What happens to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub before: Option<String>,
    pub after: String,
}

impl Change {
    pub fn to(after: impl Into<String>) -> Self {
        Self {
            before: None,
            after: after.into(),
        }
    }

    pub fn from_to(before: impl Into<String>, after: impl Into<String>) -> Self {
        Self {
            before: Some(before.into()),
            after: after.into(),
        }
    }
}

impl PlanTarget {
    pub fn new(kind: &str, id: impl Into<String>, name: Option<String>, change: Change) -> Self {
        Self {
            kind: kind.to_string(),
            id: id.into(),
            name,
            facts: BTreeMap::new(),
            change,
        }
    }

    pub fn fact(mut self, label: &str, value: Option<impl Into<String>>) -> Self {
        if let Some(value) = value {
            self.facts.insert(label.to_string(), value.into());
        }
        self
    }

    /// The name when there is one, else the id.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// The parts of a plan an approval is bound to.
#[derive(Serialize)]
struct Bound<'a> {
    tool: &'a str,
    action: &'a str,
    tenant: Option<&'a str>,
    targets: Vec<(&'a str, &'a str, Option<&'a str>, &'a Change)>,
}

impl Plan {
    /// A plan that names no targets: what the tool does, for calls whose arguments say it all.
    pub fn action(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            tenant: None,
            targets: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn with_targets(mut self, targets: Vec<PlanTarget>) -> Self {
        self.targets = targets;
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// A digest of what the approval covers: the tool, the action, the tenant and each target's
    /// identity and change, in a stable order. Facts are left out.
    pub fn digest(&self, tool: &str) -> String {
        let mut targets: Vec<_> = self
            .targets
            .iter()
            .map(|t| (t.kind.as_str(), t.id.as_str(), t.name.as_deref(), &t.change))
            .collect();
        targets.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let bound = Bound {
            tool,
            action: &self.action,
            tenant: self.tenant.as_ref().map(|t| t.id.as_str()),
            targets,
        };
        let bytes = serde_json::to_vec(&bound).unwrap_or_default();
        format!("{:x}", Sha256::digest(bytes))
    }

    /// The plan as text, every target named: what an elicitation, a confirmation or a log shows.
    pub fn describe(&self) -> String {
        let mut text = self.action.clone();
        if let Some(tenant) = &self.tenant {
            let _ = write!(text, "\nTenant: {} ({})", tenant.display_name, tenant.id);
        }
        if !self.targets.is_empty() {
            let _ = write!(text, "\n{} target(s):", self.targets.len());
            for target in &self.targets {
                let _ = write!(text, "\n- {} {}", target.kind, target.label());
                if target.name.is_some() {
                    let _ = write!(text, " (id {})", target.id);
                }
                let facts: Vec<String> = target
                    .facts
                    .iter()
                    .map(|(label, value)| format!("{label} {value}"))
                    .collect();
                if !facts.is_empty() {
                    let _ = write!(text, " [{}]", facts.join(", "));
                }
                match &target.change.before {
                    Some(before) => {
                        let _ = write!(text, ": {before} -> {}", target.change.after);
                    }
                    None => {
                        let _ = write!(text, ": {}", target.change.after);
                    }
                }
            }
        }
        for note in &self.notes {
            let _ = write!(text, "\nNote: {note}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, name: &str, health: &str) -> PlanTarget {
        PlanTarget::new(
            "device",
            id,
            Some(name.into()),
            Change::to("isolated (Full)"),
        )
        .fact("health", Some(health))
    }

    fn plan(targets: Vec<PlanTarget>) -> Plan {
        let mut plan = Plan::action("Isolate devices").with_targets(targets);
        plan.tenant = Some(PlanTenant {
            id: "t1".into(),
            display_name: "Contoso".into(),
        });
        plan
    }

    #[test]
    fn the_digest_covers_targets_and_changes_but_not_facts_or_order() {
        let a = plan(vec![
            device("1", "ws-1", "Active"),
            device("2", "ws-2", "Active"),
        ]);
        let reordered = plan(vec![
            device("2", "ws-2", "Inactive"),
            device("1", "ws-1", "Active"),
        ]);
        assert_eq!(a.digest("t"), reordered.digest("t"));
        let other = plan(vec![
            device("1", "ws-1", "Active"),
            device("3", "ws-3", "Active"),
        ]);
        assert_ne!(a.digest("t"), other.digest("t"));
        assert_ne!(a.digest("t"), a.digest("another_tool"));
        let mut elsewhere = a.clone();
        elsewhere.tenant = Some(PlanTenant {
            id: "t2".into(),
            display_name: "Contoso".into(),
        });
        assert_ne!(a.digest("t"), elsewhere.digest("t"));
    }

    #[test]
    fn the_text_names_every_target_and_the_tenant() {
        let text = plan(vec![
            device("1", "ws-1", "Active"),
            device("2", "ws-2", "Active"),
        ])
        .describe();
        assert!(text.contains("Tenant: Contoso (t1)"), "{text}");
        assert!(
            text.contains("device ws-1 (id 1) [health Active]: isolated (Full)"),
            "{text}"
        );
        assert!(text.contains("ws-2"), "{text}");
    }
}
