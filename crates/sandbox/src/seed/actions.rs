//! The machine-action history Defender shows before anyone acts.

use super::*;

/// Five finished actions (scans, a package, a cancelled isolation) on active devices.
pub(super) fn machine_actions(
    rng: &mut StdRng,
    now: OffsetDateTime,
    machines: &[Machine],
    users: &[User],
) -> Vec<MachineAction> {
    let active: Vec<&Machine> = machines
        .iter()
        .filter(|m| m.onboarding_status == "Onboarded" && m.health_status != "Inactive")
        .collect();
    let mut actions = Vec::new();
    for (kind, scope, status) in [
        ("RunAntiVirusScan", Some("Quick"), "Succeeded"),
        ("RunAntiVirusScan", Some("Full"), "Failed"),
        ("CollectInvestigationPackage", None, "Succeeded"),
        ("Isolate", Some("Selective"), "Cancelled"),
        ("RunAntiVirusScan", Some("Quick"), "TimeOut"),
    ] {
        let m = *pick(rng, &active);
        let created = ago(rng, now, Duration::days(1), Duration::days(20));
        let updated = created + Duration::minutes(rng.random_range(2..90));
        let cancellation = (status == "Cancelled").then(|| crate::defender::Cancellation {
            requestor: users[0].upn.clone(),
            comment: "Raised in error".into(),
            at: created + Duration::minutes(1),
        });
        actions.push(MachineAction {
            id: guid_from(rng),
            action_type: kind.into(),
            scope: scope.map(str::to_string),
            title: format!("{kind} on {}", m.computer_dns_name),
            requestor: users[0].upn.clone(),
            requestor_comment: "Routine response".into(),
            machine_id: m.id.clone(),
            computer_dns_name: m.computer_dns_name.clone(),
            created,
            created_at: None,
            fixed: Some((status.into(), updated)),
            cancellation,
            related_file_info: None,
            commands: Vec::new(),
            external_id: None,
            applied: true,
        });
    }
    actions.sort_by_key(|a| a.created);
    actions
}
