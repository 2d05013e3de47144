//! Indicators of compromise and the live response library.

use super::*;

/// The seeded indicators, the next indicator id, and the library's scripts.
pub(super) fn indicators(
    rng: &mut StdRng,
    now: OffsetDateTime,
    users: &[User],
    files: &[FileInfo],
) -> (Vec<Indicator>, u64, Vec<LibraryFile>) {
    let mut indicators = Vec::new();
    let mut next_indicator_id = 4000 + rng.random_range(0..1000u64);
    let seeded_iocs: Vec<(String, &str, &str, &str)> = vec![
        (
            MALICIOUS_REMOTE[0].0.to_string(),
            "IpAddress",
            "Block",
            "Known C2 server",
        ),
        (
            MALICIOUS_REMOTE[1].1.to_string(),
            "DomainName",
            "Block",
            "Payload staging domain",
        ),
        (
            files
                .iter()
                .find(|f| f.file_name == "mimikatz.exe")
                .map(|f| f.sha1.clone())
                .unwrap_or_default(),
            "FileSha1",
            "BlockAndRemediate",
            "Mimikatz",
        ),
        (
            "https://login-micros0ft.example/owa".to_string(),
            "Url",
            "Warn",
            "Phishing landing page",
        ),
    ];
    for (value, ty, action, title) in seeded_iocs {
        next_indicator_id += 1;
        let created = ago(rng, now, Duration::days(2), Duration::days(60));
        indicators.push(Indicator {
            id: next_indicator_id.to_string(),
            indicator_value: value,
            indicator_type: ty.into(),
            action: action.into(),
            application: None,
            source: users[0].upn.clone(),
            source_type: "User".into(),
            title: title.into(),
            creation_time_date_time_utc: created,
            created_by: users[0].upn.clone(),
            expiration_time: None,
            last_update_time: created,
            last_updated_by: users[0].upn.clone(),
            severity: "High".into(),
            description: format!("{title} (seeded)"),
            recommended_actions: Some("Investigate and isolate affected devices.".into()),
            rbac_group_names: Vec::new(),
            rbac_group_ids: Vec::new(),
            generate_alert: true,
            created_by_source: "Portal".into(),
            external_id: None,
        });
    }
    let library = [
        (
            "Collect-Triage.ps1",
            "Collects running processes, services, autoruns and network connections",
            true,
            Some("-OutputPath <path>"),
        ),
        (
            "Get-RunningProcesses.ps1",
            "Lists running processes with command lines",
            false,
            None,
        ),
        (
            "Remove-Persistence.ps1",
            "Removes a scheduled task or Run key by name",
            true,
            Some("-Name <task or value name>"),
        ),
    ]
    .into_iter()
    .map(|(name, desc, has_params, params)| {
        let content = format!("# {name}\n# {desc}\nWrite-Output 'sandbox'\n").into_bytes();
        let created = ago(rng, now, Duration::days(5), Duration::days(200));
        LibraryFile {
            file_name: name.into(),
            sha256: crate::defender::sha256_hex(&content),
            description: desc.into(),
            creation_time: created,
            last_updated_time: created,
            created_by: users[1].upn.clone(),
            has_parameters: has_params,
            parameters_description: params.map(str::to_string),
            content,
        }
    })
    .collect();
    (indicators, next_indicator_id, library)
}
