//! Alerts grouped into incidents, and the Graph security incidents made of them.

use super::*;

/// Thirty alerts on active devices, with the incidents (number, alert indexes) they form.
pub(super) fn alerts(
    rng: &mut StdRng,
    spec: &TenantSpec,
    now: OffsetDateTime,
    machines: &[Machine],
    users: &[User],
    files: &[FileInfo],
) -> (Vec<Alert>, Vec<(i64, Vec<usize>)>) {
    let file_by_name = |n: &str| files.iter().find(|f| f.file_name == n);
    let active: Vec<&Machine> = machines
        .iter()
        .filter(|m| m.onboarding_status == "Onboarded" && m.health_status != "Inactive")
        .collect();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut incident_ids: Vec<(i64, Vec<usize>)> = Vec::new();
    let mut next_incident = 1000 + rng.random_range(0..9000) as i64 + (spec.subnet as i64) * 10_000;
    while alerts.len() < 30 {
        let machine = *pick(rng, &active);
        let n_alerts = rng.random_range(1..=3).min(30 - alerts.len());
        next_incident += rng.random_range(1..40);
        let mut idx = Vec::new();
        let status = *pick(rng, &["New", "New", "InProgress", "Resolved"]);
        let created_base = ago(rng, now, Duration::hours(1), Duration::days(7));
        for k in 0..n_alerts {
            let tpl = pick(rng, ALERT_TEMPLATES);
            let created = created_base + Duration::minutes(k as i64 * rng.random_range(1..30));
            let created = created.min(now - Duration::minutes(1));
            let user = &users[rng.random_range(0..users.len())];
            let sha1 = tpl.file.and_then(file_by_name).map(|f| f.sha1.clone());
            let remote = tpl.remote.map(|r| MALICIOUS_REMOTE[r]);
            let mut evidence = vec![json!({
                "entityType": "User",
                "evidenceCreationTime": fmt_time(created),
                "accountName": user.account,
                "domainName": spec.netbios,
                "userSid": user.sid,
                "aadUserId": user.object_id,
                "userPrincipalName": user.upn,
            })];
            if let Some(f) = tpl.file.and_then(file_by_name) {
                evidence.push(json!({
                    "entityType": "File",
                    "evidenceCreationTime": fmt_time(created),
                    "sha1": f.sha1,
                    "sha256": f.sha256,
                    "fileName": f.file_name,
                    "filePath": PROCS.iter().find(|p| p.name == f.file_name).map(|p| p.folder).unwrap_or_default(),
                    "detectionStatus": if tpl.family.is_some() { "Blocked" } else { "Detected" },
                }));
            }
            if let Some((ip, url, _)) = remote {
                evidence.push(json!({"entityType": "Ip", "evidenceCreationTime": fmt_time(created), "ipAddress": ip}));
                evidence.push(json!({"entityType": "Url", "evidenceCreationTime": fmt_time(created), "url": url}));
            }
            let resolved = status == "Resolved";
            alerts.push(Alert {
                id: format!(
                    "da{}_{}",
                    638_000_000_000_000_000u64 + rng.random_range(0..9_999_999_999_999u64),
                    rng.random_range(100_000_000..999_999_999)
                ),
                incident_id: next_incident,
                investigation_id: if rng.random_bool(0.5) {
                    Some(rng.random_range(1000..99999))
                } else {
                    None
                },
                assigned_to: if status == "New" {
                    None
                } else {
                    Some(users[0].upn.clone())
                },
                severity: tpl.severity.into(),
                status: status.into(),
                classification: if resolved {
                    Some("TruePositive".into())
                } else {
                    None
                },
                determination: if resolved {
                    Some(if tpl.family.is_some() {
                        "Malware".into()
                    } else {
                        "SecurityTesting".into()
                    })
                } else {
                    None
                },
                investigation_state: if resolved {
                    "Benign".into()
                } else {
                    "Running".into()
                },
                detection_source: tpl.source.into(),
                detector_id: guid_from(rng),
                category: tpl.category.into(),
                threat_family_name: tpl.family.map(str::to_string),
                title: tpl.title.into(),
                description: tpl.description.into(),
                alert_creation_time: created,
                first_event_time: created - Duration::minutes(rng.random_range(1..20)),
                last_event_time: created - Duration::seconds(rng.random_range(1..50)),
                last_update_time: created
                    + Duration::minutes(rng.random_range(0..60)).min(now - created),
                resolved_time: if resolved {
                    Some(created + Duration::minutes(30).min(now - created))
                } else {
                    None
                },
                machine_id: machine.id.clone(),
                computer_dns_name: machine.computer_dns_name.clone(),
                rbac_group_name: machine.rbac_group_name.clone(),
                aad_tenant_id: spec.id.into(),
                threat_name: tpl.family.map(|f| format!("{f} threat")),
                mitre_techniques: vec![tpl.technique.into()],
                related_user: Some(json!({"userName": user.account, "domainName": spec.netbios})),
                logged_on_users: vec![
                    json!({"accountName": user.account, "domainName": spec.netbios}),
                ],
                comments: Vec::new(),
                evidence,
                related_sha1: sha1,
                related_ip: remote.map(|r| r.0.to_string()),
                related_domain: remote.map(|r| r.1.to_string()),
            });
            idx.push(alerts.len() - 1);
        }
        incident_ids.push((next_incident, idx));
    }
    (alerts, incident_ids)
}

pub(super) fn graph_incidents(
    rng: &mut StdRng,
    now: OffsetDateTime,
    spec: &TenantSpec,
    alerts: &[Alert],
    groups: &[(i64, Vec<usize>)],
    users: &[User],
) -> Vec<Value> {
    let rank = |s: &str| match s {
        "High" => 3,
        "Medium" => 2,
        "Low" => 1,
        _ => 0,
    };
    groups
        .iter()
        .map(|(id, idx)| {
            let group: Vec<&Alert> = idx.iter().map(|i| &alerts[*i]).collect();
            let first = group[0];
            let severity = group.iter().map(|a| a.severity.as_str()).max_by_key(|s| rank(s)).unwrap_or("Informational").to_lowercase();
            let status = match first.status.as_str() {
                "Resolved" => "resolved",
                "InProgress" => "inProgress",
                _ => "active",
            };
            let categories: Vec<String> = {
                let mut c: Vec<String> = group.iter().map(|a| a.category.clone()).collect();
                c.dedup();
                c
            };
            let display = if group.len() > 1 {
                format!("Multi-stage incident involving {} on one endpoint", categories.join(" & "))
            } else {
                format!("{} on one endpoint", first.title)
            };
            let created = group.iter().map(|a| a.alert_creation_time).min().unwrap_or(now);
            let updated = group.iter().map(|a| a.last_update_time).max().unwrap_or(now);
            json!({
                "id": id.to_string(),
                "tenantId": spec.id,
                "status": status,
                "incidentWebUrl": format!("https://security.microsoft.com/incidents/{id}?tid={}", spec.id),
                "redirectIncidentId": Value::Null,
                "displayName": display,
                "createdDateTime": fmt_time(created),
                "lastUpdateDateTime": fmt_time(updated),
                "assignedTo": first.assigned_to,
                "classification": if status == "resolved" { "truePositive" } else { "unknown" },
                "determination": if status == "resolved" { "malware" } else { "unknown" },
                "severity": severity,
                "customTags": if rng.random_bool(0.3) { vec!["sandbox"] } else { Vec::new() },
                "systemTags": [],
                "comments": [],
                "summary": Value::Null,
                "description": Value::Null,
                "resolvingComment": if status == "resolved" { Value::String("Remediated by the SOC".into()) } else { Value::Null },
                "lastModifiedBy": users.first().map(|u| u.upn.clone()).unwrap_or_default(),
            })
        })
        .collect()
}
