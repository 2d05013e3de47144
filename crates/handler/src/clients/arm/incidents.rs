//! Sentinel incidents as the SecurityInsights definition has them (`Incidents.json`,
//! `IncidentProperties`): the closed sets Azure documents (read as [`crate::clients::Open`],
//! which keeps a value added later as Azure spells it; written only as members listed here),
//! and [`IncidentChanges`], the typed body of an update: what to change,
//! applied to the incident as read so that every property this server does not know stays as
//! it was.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::clients::odata;

/// `IncidentStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentStatus {
    New,
    Active,
    Closed,
}

/// `IncidentSeverity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentSeverity {
    High,
    Medium,
    Low,
    Informational,
}

/// `IncidentClassification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentClassification {
    Undetermined,
    TruePositive,
    BenignPositive,
    FalsePositive,
}

/// `IncidentClassificationReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentClassificationReason {
    SuspiciousActivity,
    SuspiciousButExpected,
    IncorrectAlertLogic,
    InaccurateData,
}

/// How `Incidents_List` orders (`$orderby`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncidentOrder {
    #[default]
    Newest,
    Oldest,
    LastModified,
    Number,
}

/// What `Incidents_List` is asked for (`$filter`, `$orderby`): any of the statuses, any of the
/// severities, created at or after `since`, and a caller's own OData clause.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    pub statuses: Vec<IncidentStatus>,
    pub severities: Vec<IncidentSeverity>,
    pub since: Option<OffsetDateTime>,
    /// OData the caller wrote, on one line; Azure judges it.
    pub filter: Option<String>,
    pub order: IncidentOrder,
}

impl IncidentQuery {
    /// The query parameters, in the order they are sent.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        let order = match self.order {
            IncidentOrder::Newest => "properties/createdTimeUtc desc",
            IncidentOrder::Oldest => "properties/createdTimeUtc asc",
            IncidentOrder::LastModified => "properties/lastModifiedTimeUtc desc",
            IncidentOrder::Number => "properties/incidentNumber desc",
        };
        let mut parameters = vec![("$orderby", order.to_owned())];
        let any_of = |field: &str, members: Vec<String>| {
            let each: Vec<String> = members
                .iter()
                .map(|member| format!("{field} eq {member}"))
                .collect();
            format!("({})", each.join(" or "))
        };
        let mut clauses = Vec::new();
        if !self.statuses.is_empty() {
            clauses.push(any_of(
                "properties/status",
                self.statuses.iter().copied().map(odata::member).collect(),
            ));
        }
        if !self.severities.is_empty() {
            clauses.push(any_of(
                "properties/severity",
                self.severities.iter().copied().map(odata::member).collect(),
            ));
        }
        if let Some(since) = self.since {
            clauses.push(format!(
                "properties/createdTimeUtc ge {}",
                odata::time(since)
            ));
        }
        if let Some(filter) = &self.filter {
            clauses.push(format!("({filter})"));
        }
        if !clauses.is_empty() {
            parameters.push(("$filter", clauses.join(" and ")));
        }
        parameters
    }
}

/// A classification with what goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationChange {
    pub classification: IncidentClassification,
    /// `None` for a classification without reasons (Undetermined): the property is then left
    /// out, never sent as `null` (it is not `x-nullable`).
    pub reason: Option<IncidentClassificationReason>,
    pub comment: Option<String>,
}

/// Who the incident is assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerChange {
    /// A user by UPN, with the object id when it is known.
    Assign {
        user_principal_name: String,
        object_id: Option<String>,
    },
    /// Nobody.
    Unassign,
}

/// The changes an update asks for; `Default` is no change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentChanges {
    pub status: Option<IncidentStatus>,
    pub severity: Option<IncidentSeverity>,
    pub classification: Option<ClassificationChange>,
    pub owner: Option<OwnerChange>,
    /// Labels to add; those the incident has already are left alone.
    pub add_labels: Vec<String>,
}

/// `IncidentProperties` members the service sets (`readOnly` in the definition).
const READ_ONLY: &[&str] = &[
    "additionalData",
    "createdTimeUtc",
    "incidentUrl",
    "providerName",
    "providerIncidentId",
    "incidentNumber",
    "lastModifiedTimeUtc",
    "relatedAnalyticRuleIds",
];

impl IncidentChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Makes `incident` (as read) the body `Incidents_CreateOrUpdate` accepts with these
    /// changes, and says what changed (`severity: Low → High`, `label added: triaged`); an
    /// empty list means the incident already is as asked.
    pub fn apply(&self, incident: &mut Value) -> Vec<String> {
        writable(incident);
        let mut set: Vec<(&str, Value)> = Vec::new();
        if let Some(status) = &self.status {
            set.push(("status", json!(status)));
        }
        if let Some(severity) = &self.severity {
            set.push(("severity", json!(severity)));
        }
        if let Some(change) = &self.classification {
            set.push(("classification", json!(change.classification)));
            set.push((
                "classificationReason",
                change.reason.as_ref().map_or(Value::Null, |r| json!(r)),
            ));
            if let Some(comment) = &change.comment {
                set.push(("classificationComment", json!(comment)));
            }
        }
        match &self.owner {
            // `IncidentOwnerInfo` members are not `x-nullable`: only those with a value are sent.
            Some(OwnerChange::Assign {
                user_principal_name,
                object_id,
            }) => {
                let mut owner =
                    json!({"userPrincipalName": user_principal_name, "ownerType": "User"});
                if let Some(object_id) = object_id {
                    owner["objectId"] = json!(object_id);
                }
                set.push(("owner", owner));
            }
            // `IncidentOwnerInfo` has no documented "unassigned" value and none of its members
            // is `x-nullable`, so the owner is sent with no members at all (a valid, empty
            // `IncidentOwnerInfo`). Uncertain: the definition does not say that the service
            // reads an empty owner as "unassign"; the portal's own request is not documented.
            Some(OwnerChange::Unassign) => set.push(("owner", json!({}))),
            None => {}
        }

        let mut changes = Vec::new();
        let properties = &mut incident["properties"];
        for (key, value) in set {
            let before = properties.get(key).cloned().unwrap_or(Value::Null);
            if shown(&before) != shown(&value) {
                changes.push(format!("{key}: {} → {}", shown(&before), shown(&value)));
            }
            match (properties.as_object_mut(), value) {
                (Some(properties), Value::Null) => {
                    properties.remove(key);
                }
                (_, value) => properties[key] = value,
            }
        }
        let mut labels: Vec<Value> = properties["labels"].as_array().cloned().unwrap_or_default();
        for label in &self.add_labels {
            if !labels.iter().any(|l| l["labelName"] == json!(label)) {
                changes.push(format!("label added: {label}"));
                // `IncidentLabel.labelType` is read-only: the service sets `User`.
                labels.push(json!({"labelName": label}));
            }
        }
        properties["labels"] = Value::Array(labels);
        changes
    }
}

/// An incident as read, without what a write may not carry: its read-only properties, the
/// read-only `labelType` of each label and the envelope's `systemData`.
fn writable(incident: &mut Value) {
    if let Some(envelope) = incident.as_object_mut() {
        envelope.remove("systemData");
    }
    let Some(properties) = incident["properties"].as_object_mut() else {
        return;
    };
    for key in READ_ONLY {
        properties.remove(*key);
    }
    // An owner read with `null` members is written back without them (none is `x-nullable`).
    if let Some(owner) = properties.get_mut("owner").and_then(Value::as_object_mut) {
        owner.retain(|_, v| !v.is_null());
    }
    for label in properties
        .get_mut("labels")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(label) = label.as_object_mut() {
            label.remove("labelType");
        }
    }
}

/// Short text of a property value for the change list.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("userPrincipalName")
            .or_else(|| o.get("assignedTo"))
            .map(shown)
            .unwrap_or_else(|| "none".into()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read() -> Value {
        json!({
            "id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.OperationalInsights/workspaces/w/providers/Microsoft.SecurityInsights/incidents/i",
            "name": "i",
            "etag": "\"0300bf09-0000-0000-0000-5c37296e0000\"",
            "systemData": {"createdBy": "x"},
            "properties": {
                "title": "Brute force", "status": "Active", "severity": "Low",
                "classificationReason": "SuspiciousActivity",
                "owner": {"objectId": null, "email": null, "userPrincipalName": "ana@contoso.com", "assignedTo": "Ana"},
                "labels": [{"labelName": "vip", "labelType": "User"}],
                "incidentNumber": 4711, "createdTimeUtc": "2026-12-01T10:00:00Z",
                "additionalData": {"alertsCount": 2},
                "providerName": "Azure Sentinel",
                "someNewProperty": {"kept": true}
            }
        })
    }

    #[test]
    fn closing_writes_the_wire_names_and_leaves_out_a_reason_it_has_none_for() {
        let mut incident = read();
        let changes = IncidentChanges {
            status: Some(IncidentStatus::Closed),
            classification: Some(ClassificationChange {
                classification: IncidentClassification::Undetermined,
                reason: None,
                comment: Some("no evidence either way".into()),
            }),
            ..IncidentChanges::default()
        };
        let said = changes.apply(&mut incident);
        let p = &incident["properties"];
        assert_eq!(p["status"], "Closed");
        assert_eq!(p["classification"], "Undetermined");
        assert!(p.get("classificationReason").is_none(), "never null: {p}");
        assert_eq!(p["classificationComment"], "no evidence either way");
        assert_eq!(
            said,
            [
                "status: Active → Closed",
                "classification: none → Undetermined",
                "classificationReason: SuspiciousActivity → none",
                "classificationComment: none → no evidence either way"
            ]
        );
    }

    #[test]
    fn what_a_write_may_not_carry_is_dropped_and_what_is_unknown_kept() {
        let mut incident = read();
        let said = IncidentChanges {
            severity: Some(IncidentSeverity::High),
            add_labels: vec!["vip".into(), "triaged".into()],
            ..IncidentChanges::default()
        }
        .apply(&mut incident);
        assert_eq!(said, ["severity: Low → High", "label added: triaged"]);
        let p = &incident["properties"];
        for read_only in [
            "incidentNumber",
            "createdTimeUtc",
            "additionalData",
            "providerName",
        ] {
            assert!(p.get(read_only).is_none(), "{read_only}: {p}");
        }
        assert!(incident.get("systemData").is_none());
        assert_eq!(incident["etag"], read()["etag"], "the etag goes back");
        assert_eq!(
            p["labels"],
            json!([{"labelName": "vip"}, {"labelName": "triaged"}])
        );
        assert_eq!(
            p["owner"],
            json!({"userPrincipalName": "ana@contoso.com", "assignedTo": "Ana"})
        );
        assert_eq!(p["someNewProperty"], json!({"kept": true}));
    }

    #[test]
    fn owners_are_set_by_upn_or_emptied() {
        let mut incident = read();
        IncidentChanges {
            owner: Some(OwnerChange::Assign {
                user_principal_name: "bo@contoso.com".into(),
                object_id: Some("11111111-1111-4111-8111-111111111111".into()),
            }),
            ..IncidentChanges::default()
        }
        .apply(&mut incident);
        assert_eq!(
            incident["properties"]["owner"],
            json!({"userPrincipalName": "bo@contoso.com", "ownerType": "User",
                   "objectId": "11111111-1111-4111-8111-111111111111"})
        );
        let mut incident = read();
        let said = IncidentChanges {
            owner: Some(OwnerChange::Unassign),
            ..IncidentChanges::default()
        }
        .apply(&mut incident);
        assert_eq!(incident["properties"]["owner"], json!({}));
        assert_eq!(said, ["owner: ana@contoso.com → none"]);
    }

    #[test]
    fn a_query_names_members_as_azure_spells_them() {
        let query = IncidentQuery {
            statuses: vec![IncidentStatus::New, IncidentStatus::Active],
            severities: vec![IncidentSeverity::High],
            since: Some(time::macros::datetime!(2026-12-01 11:00 +01:00)),
            filter: Some("properties/title eq 'x'".into()),
            order: IncidentOrder::Number,
        };
        assert_eq!(
            query.parameters(),
            [
                ("$orderby", "properties/incidentNumber desc".to_owned()),
                (
                    "$filter",
                    "(properties/status eq 'New' or properties/status eq 'Active') and \
                     (properties/severity eq 'High') and properties/createdTimeUtc ge \
                     2026-12-01T10:00:00Z and (properties/title eq 'x')"
                        .to_owned()
                )
            ]
        );
        assert_eq!(
            IncidentQuery::default().parameters(),
            [("$orderby", "properties/createdTimeUtc desc".to_owned())]
        );
    }

    #[test]
    fn values_azure_adds_later_are_read_and_kept_as_spelled() {
        let properties: super::super::IncidentProperties = serde_json::from_value(json!({
            "severity": "Critical", "status": "Active", "classification": "TruePositive"
        }))
        .unwrap();
        let severity = properties.severity.expect("read");
        assert_eq!(severity.known(), None);
        assert_eq!(severity.as_str(), "Critical");
        assert!(properties.status.expect("read").is(&IncidentStatus::Active));
        assert_eq!(
            properties.classification.expect("read").known(),
            Some(&IncidentClassification::TruePositive)
        );
    }
}
