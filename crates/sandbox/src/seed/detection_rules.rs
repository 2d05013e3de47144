//! Custom detection rules (Graph beta).

use super::*;

/// Detection rules (Graph beta), in the shape of the beta CSDL's `detectionRule` without the
/// properties removed on 2026-10-01. Ids are client-provided strings (the create page's
/// example is `office-encoded-powershell`); one keeps the digits of older rules.
pub(super) fn detection_rules(rng: &mut StdRng, now: OffsetDateTime, users: &[User]) -> Vec<Value> {
    let mut detection_rules = Vec::new();
    let legacy_id = 100 + rng.random_range(0..800u64);
    for (id, name, query, frequency, severity, status, tactic, technique) in [
        (
            "encoded-powershell".to_string(),
            "Encoded PowerShell",
            "DeviceProcessEvents | where FileName =~ 'powershell.exe' and ProcessCommandLine has '-enc' | project Timestamp, DeviceId, DeviceName, ReportId, ProcessCommandLine",
            "PT1H",
            "medium",
            "enabled",
            "Execution",
            ("T1059", Some("T1059.001")),
        ),
        (
            "certutil-download".to_string(),
            "Certutil download",
            "DeviceProcessEvents | where FileName =~ 'certutil.exe' and ProcessCommandLine has 'urlcache' | project Timestamp, DeviceId, DeviceName, ReportId",
            "PT3H",
            "medium",
            "enabled",
            "CommandAndControl",
            ("T1105", None),
        ),
        (
            "known-c2-connection".to_string(),
            "Connection to known C2",
            "DeviceNetworkEvents | where RemoteIP in ('203.0.113.50', '203.0.113.77') | project Timestamp, DeviceId, DeviceName, ReportId, RemoteIP",
            "PT1H",
            "high",
            "autoDisabled",
            "CommandAndControl",
            ("T1071", None),
        ),
        (
            legacy_id.to_string(),
            "Legacy rule - disabled",
            "DeviceLogonEvents | where ActionType == 'LogonFailed' | summarize count() by DeviceId | where count_ > 50",
            "P1D",
            "low",
            "disabled",
            "CredentialAccess",
            ("T1110", None),
        ),
    ] {
        let created = ago(rng, now, Duration::days(10), Duration::days(120));
        let (technique, sub) = technique;
        detection_rules.push(json!({
            "id": id,
            "displayName": name,
            "description": format!("Custom detection: {name}"),
            "status": status,
            "createdBy": users[1].upn,
            "createdDateTime": fmt_time(created),
            "lastModifiedDateTime": fmt_time(created + Duration::days(1)),
            "lastModifiedBy": users[1].upn,
            "queryCondition": {"queryText": query},
            "schedule": {"frequency": frequency},
            "detectionAction": {
                "alertTemplate": {
                    "title": name,
                    "description": format!("Custom detection: {name}"),
                    "severity": severity,
                    "recommendedActions": Value::Null,
                    "tactics": [{"tactic": tactic, "techniques": [match sub {
                        Some(sub) => json!({"technique": technique, "subTechniques": [sub]}),
                        None => json!({"technique": technique}),
                    }]}],
                    "entityMappings": {"hosts": [{"deviceIdColumn": "DeviceId", "nameColumn": "DeviceName"}]},
                },
                "organizationalScope": Value::Null,
                "automatedActions": Value::Null,
            },
        }));
    }
    detection_rules
}
