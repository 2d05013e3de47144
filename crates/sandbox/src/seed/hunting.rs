//! Advanced hunting tables (Device*, Alert*) drawn from the devices, users, files and alerts.

use super::*;

pub(super) fn hunting_tables(
    rng: &mut StdRng,
    now: OffsetDateTime,
    machines: &[Machine],
    users: &[User],
    spec: &TenantSpec,
    files: &[FileInfo],
    alerts: &[Alert],
) -> Database {
    let onboarded: Vec<&Machine> = machines
        .iter()
        .filter(|m| m.onboarding_status == "Onboarded")
        .collect();
    let windows: Vec<&Machine> = onboarded
        .iter()
        .copied()
        .filter(|m| m.os_platform.starts_with("Windows"))
        .collect();
    let report_id = |rng: &mut StdRng| K::Long(rng.random_range(1000..9_999_999));
    let mut db = Database::default();

    let mut info = Table::new(
        "DeviceInfo",
        vec![
            Column::new("Timestamp", ColType::DateTime),
            Column::new("DeviceId", ColType::String),
            Column::new("DeviceName", ColType::String),
            Column::new("OSPlatform", ColType::String),
            Column::new("OSVersion", ColType::String),
            Column::new("OSBuild", ColType::Long),
            Column::new("PublicIP", ColType::String),
            Column::new("MachineGroup", ColType::String),
            Column::new("OnboardingStatus", ColType::String),
            Column::new("DeviceType", ColType::String),
            Column::new("SensorHealthState", ColType::String),
            Column::new("ExposureLevel", ColType::String),
            Column::new("IsAzureADJoined", ColType::Bool),
            Column::new("ReportId", ColType::Long),
        ],
    );
    for m in machines {
        for days in [0i64, 3] {
            let ts = (m.last_seen - Duration::days(days)).max(now - Duration::days(7));
            info.push_named(vec![
                ("Timestamp", K::DateTime(ts)),
                ("DeviceId", s(&m.id)),
                ("DeviceName", s(&m.computer_dns_name)),
                ("OSPlatform", s(&m.os_platform)),
                (
                    "OSVersion",
                    m.os_version.clone().map(K::String).unwrap_or(K::Null),
                ),
                ("OSBuild", m.os_build.map(K::Long).unwrap_or(K::Null)),
                ("PublicIP", s(&m.last_external_ip_address)),
                ("MachineGroup", s(&m.rbac_group_name)),
                ("OnboardingStatus", s(&m.onboarding_status)),
                (
                    "DeviceType",
                    s(
                        if m.computer_dns_name.starts_with("srv")
                            || m.computer_dns_name.starts_with("lnx")
                        {
                            "Server"
                        } else {
                            "Workstation"
                        },
                    ),
                ),
                ("SensorHealthState", s(&m.health_status)),
                ("ExposureLevel", s(&m.exposure_level)),
                ("IsAzureADJoined", K::Bool(m.is_aad_joined)),
                ("ReportId", report_id(rng)),
            ]);
        }
    }
    db.insert(info);

    let file_of = |name: &str| files.iter().find(|f| f.file_name == name);
    let mut procs = Table::new(
        "DeviceProcessEvents",
        vec![
            Column::new("Timestamp", ColType::DateTime),
            Column::new("DeviceId", ColType::String),
            Column::new("DeviceName", ColType::String),
            Column::new("ActionType", ColType::String),
            Column::new("FileName", ColType::String),
            Column::new("FolderPath", ColType::String),
            Column::new("SHA1", ColType::String),
            Column::new("SHA256", ColType::String),
            Column::new("MD5", ColType::String),
            Column::new("ProcessCommandLine", ColType::String),
            Column::new("ProcessId", ColType::Long),
            Column::new("AccountDomain", ColType::String),
            Column::new("AccountName", ColType::String),
            Column::new("InitiatingProcessFileName", ColType::String),
            Column::new("InitiatingProcessCommandLine", ColType::String),
            Column::new("InitiatingProcessAccountName", ColType::String),
            Column::new("ReportId", ColType::Long),
        ],
    );
    let benign: Vec<&Proc> = PROCS
        .iter()
        .filter(|p| !p.malicious && p.name != "certutil.exe")
        .collect();
    for i in 0..230 {
        let m = *pick(rng, &windows);
        let u = &users[rng.random_range(0..users.len())];
        // Roughly one in twelve events is suspicious.
        let (p, cmd): (&Proc, String) = if i % 12 == 0 {
            let p = &PROCS[*pick(rng, &[5usize, 9, 10, 12, 13])];
            let cmd = if p.name == "powershell.exe" {
                "powershell.exe -NoP -W Hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA".to_string()
            } else {
                p.cmd.to_string()
            };
            (p, cmd)
        } else {
            let p = *pick(rng, &benign);
            (p, p.cmd.to_string())
        };
        let f = file_of(p.name);
        let parent = if p.name == "svchost.exe" {
            "services.exe"
        } else {
            *pick(
                rng,
                &["explorer.exe", "cmd.exe", "svchost.exe", "OUTLOOK.EXE"],
            )
        };
        procs.push_named(vec![
            (
                "Timestamp",
                K::DateTime(ago(rng, now, Duration::minutes(1), Duration::days(7))),
            ),
            ("DeviceId", s(&m.id)),
            ("DeviceName", s(&m.computer_dns_name)),
            ("ActionType", s("ProcessCreated")),
            (
                "FileName",
                s(if p.name == "wacatac.dll" {
                    "rundll32.exe"
                } else {
                    p.name
                }),
            ),
            ("FolderPath", s(format!("{}\\{}", p.folder, p.name))),
            ("SHA1", f.map(|f| s(&f.sha1)).unwrap_or(K::Null)),
            ("SHA256", f.map(|f| s(&f.sha256)).unwrap_or(K::Null)),
            ("MD5", f.map(|f| s(&f.md5)).unwrap_or(K::Null)),
            ("ProcessCommandLine", s(cmd)),
            ("ProcessId", K::Long(rng.random_range(400..30000))),
            ("AccountDomain", s(spec.netbios.to_lowercase())),
            ("AccountName", s(&u.account)),
            ("InitiatingProcessFileName", s(parent)),
            ("InitiatingProcessCommandLine", s(parent)),
            ("InitiatingProcessAccountName", s(&u.account)),
            ("ReportId", report_id(rng)),
        ]);
    }
    db.insert(procs);

    let mut net = Table::new(
        "DeviceNetworkEvents",
        vec![
            Column::new("Timestamp", ColType::DateTime),
            Column::new("DeviceId", ColType::String),
            Column::new("DeviceName", ColType::String),
            Column::new("ActionType", ColType::String),
            Column::new("RemoteIP", ColType::String),
            Column::new("RemotePort", ColType::Long),
            Column::new("RemoteUrl", ColType::String),
            Column::new("LocalIP", ColType::String),
            Column::new("LocalPort", ColType::Long),
            Column::new("Protocol", ColType::String),
            Column::new("InitiatingProcessFileName", ColType::String),
            Column::new("InitiatingProcessAccountName", ColType::String),
            Column::new("ReportId", ColType::Long),
        ],
    );
    for i in 0..170 {
        let m = *pick(rng, &onboarded);
        let (ip, url, port) = if i % 14 == 0 {
            *pick(rng, MALICIOUS_REMOTE)
        } else {
            *pick(rng, BENIGN_REMOTE)
        };
        let action = if rng.random_bool(0.9) {
            "ConnectionSuccess"
        } else {
            "ConnectionFailed"
        };
        let proc_name = if i % 14 == 0 {
            *pick(rng, &["svch0st.exe", "certutil.exe", "msedge.exe"])
        } else {
            *pick(
                rng,
                &[
                    "chrome.exe",
                    "msedge.exe",
                    "ms-teams.exe",
                    "OUTLOOK.EXE",
                    "svchost.exe",
                ],
            )
        };
        net.push_named(vec![
            (
                "Timestamp",
                K::DateTime(ago(rng, now, Duration::minutes(1), Duration::days(7))),
            ),
            ("DeviceId", s(&m.id)),
            ("DeviceName", s(&m.computer_dns_name)),
            ("ActionType", s(action)),
            ("RemoteIP", s(ip)),
            ("RemotePort", K::Long(port)),
            ("RemoteUrl", s(url)),
            ("LocalIP", s(&m.last_ip_address)),
            ("LocalPort", K::Long(rng.random_range(49152..65535))),
            ("Protocol", s("Tcp")),
            ("InitiatingProcessFileName", s(proc_name)),
            (
                "InitiatingProcessAccountName",
                s(&users[rng.random_range(0..users.len())].account),
            ),
            ("ReportId", report_id(rng)),
        ]);
    }
    db.insert(net);

    let mut logons = Table::new(
        "DeviceLogonEvents",
        vec![
            Column::new("Timestamp", ColType::DateTime),
            Column::new("DeviceId", ColType::String),
            Column::new("DeviceName", ColType::String),
            Column::new("ActionType", ColType::String),
            Column::new("LogonType", ColType::String),
            Column::new("AccountDomain", ColType::String),
            Column::new("AccountName", ColType::String),
            Column::new("AccountSid", ColType::String),
            Column::new("RemoteIP", ColType::String),
            Column::new("RemoteDeviceName", ColType::String),
            Column::new("FailureReason", ColType::String),
            Column::new("IsLocalAdmin", ColType::Bool),
            Column::new("ReportId", ColType::Long),
        ],
    );
    for _ in 0..130 {
        let m = *pick(rng, &windows);
        let u = &users[rng.random_range(0..users.len())];
        let failed = rng.random_bool(0.12);
        logons.push_named(vec![
            (
                "Timestamp",
                K::DateTime(ago(rng, now, Duration::minutes(1), Duration::days(7))),
            ),
            ("DeviceId", s(&m.id)),
            ("DeviceName", s(&m.computer_dns_name)),
            (
                "ActionType",
                s(if failed {
                    "LogonFailed"
                } else {
                    "LogonSuccess"
                }),
            ),
            (
                "LogonType",
                s(*pick(
                    rng,
                    &["Interactive", "RemoteInteractive", "Network", "Unlock"],
                )),
            ),
            ("AccountDomain", s(spec.netbios.to_lowercase())),
            ("AccountName", s(&u.account)),
            ("AccountSid", s(&u.sid)),
            (
                "RemoteIP",
                s(format!(
                    "10.{}.{}.{}",
                    spec.subnet,
                    rng.random_range(1..8),
                    rng.random_range(10..250)
                )),
            ),
            ("RemoteDeviceName", K::Null),
            (
                "FailureReason",
                if failed {
                    s("InvalidUserNameOrPassword")
                } else {
                    K::Null
                },
            ),
            ("IsLocalAdmin", K::Bool(u.admin)),
            ("ReportId", report_id(rng)),
        ]);
    }
    // A brute-force burst against a server from a malicious address.
    if let Some(target) = windows
        .iter()
        .find(|m| m.computer_dns_name.starts_with("srv"))
    {
        let start = ago(rng, now, Duration::hours(6), Duration::days(2));
        for k in 0..14 {
            logons.push_named(vec![
                ("Timestamp", K::DateTime(start + Duration::seconds(k * 7))),
                ("DeviceId", s(&target.id)),
                ("DeviceName", s(&target.computer_dns_name)),
                ("ActionType", s("LogonFailed")),
                ("LogonType", s("Network")),
                ("AccountDomain", s(spec.netbios.to_lowercase())),
                ("AccountName", s("administrator")),
                ("AccountSid", K::Null),
                ("RemoteIP", s(MALICIOUS_REMOTE[0].0)),
                ("RemoteDeviceName", K::Null),
                ("FailureReason", s("InvalidUserNameOrPassword")),
                ("IsLocalAdmin", K::Bool(false)),
                ("ReportId", report_id(rng)),
            ]);
        }
    }
    db.insert(logons);

    let mut fevents = Table::new(
        "DeviceFileEvents",
        vec![
            Column::new("Timestamp", ColType::DateTime),
            Column::new("DeviceId", ColType::String),
            Column::new("DeviceName", ColType::String),
            Column::new("ActionType", ColType::String),
            Column::new("FileName", ColType::String),
            Column::new("FolderPath", ColType::String),
            Column::new("SHA1", ColType::String),
            Column::new("SHA256", ColType::String),
            Column::new("MD5", ColType::String),
            Column::new("FileSize", ColType::Long),
            Column::new("InitiatingProcessFileName", ColType::String),
            Column::new("InitiatingProcessAccountName", ColType::String),
            Column::new("ReportId", ColType::Long),
        ],
    );
    for i in 0..110 {
        let m = *pick(rng, &windows);
        let p = if i % 9 == 0 {
            &PROCS[*pick(rng, &[10usize, 11, 12, 13])]
        } else {
            &PROCS[*pick(rng, &[0usize, 1, 3, 4, 7])]
        };
        let f = file_of(p.name);
        fevents.push_named(vec![
            (
                "Timestamp",
                K::DateTime(ago(rng, now, Duration::minutes(1), Duration::days(7))),
            ),
            ("DeviceId", s(&m.id)),
            ("DeviceName", s(&m.computer_dns_name)),
            (
                "ActionType",
                s(*pick(
                    rng,
                    &["FileCreated", "FileModified", "FileRenamed", "FileDeleted"],
                )),
            ),
            ("FileName", s(p.name)),
            ("FolderPath", s(format!("{}\\{}", p.folder, p.name))),
            ("SHA1", f.map(|f| s(&f.sha1)).unwrap_or(K::Null)),
            ("SHA256", f.map(|f| s(&f.sha256)).unwrap_or(K::Null)),
            ("MD5", f.map(|f| s(&f.md5)).unwrap_or(K::Null)),
            ("FileSize", f.map(|f| K::Long(f.size)).unwrap_or(K::Null)),
            (
                "InitiatingProcessFileName",
                s(*pick(
                    rng,
                    &[
                        "explorer.exe",
                        "msedge.exe",
                        "OUTLOOK.EXE",
                        "powershell.exe",
                    ],
                )),
            ),
            (
                "InitiatingProcessAccountName",
                s(&users[rng.random_range(0..users.len())].account),
            ),
            ("ReportId", report_id(rng)),
        ]);
    }
    db.insert(fevents);

    let mut ainfo = Table::new(
        "AlertInfo",
        vec![
            Column::new("Timestamp", ColType::DateTime),
            Column::new("AlertId", ColType::String),
            Column::new("Title", ColType::String),
            Column::new("Category", ColType::String),
            Column::new("Severity", ColType::String),
            Column::new("ServiceSource", ColType::String),
            Column::new("DetectionSource", ColType::String),
            Column::new("AttackTechniques", ColType::String),
        ],
    );
    let mut aevidence = Table::new(
        "AlertEvidence",
        vec![
            Column::new("Timestamp", ColType::DateTime),
            Column::new("AlertId", ColType::String),
            Column::new("Title", ColType::String),
            Column::new("EntityType", ColType::String),
            Column::new("EvidenceRole", ColType::String),
            Column::new("DeviceId", ColType::String),
            Column::new("DeviceName", ColType::String),
            Column::new("SHA1", ColType::String),
            Column::new("RemoteIP", ColType::String),
            Column::new("RemoteUrl", ColType::String),
        ],
    );
    for a in alerts {
        ainfo.push_named(vec![
            ("Timestamp", K::DateTime(a.alert_creation_time)),
            ("AlertId", s(&a.id)),
            ("Title", s(&a.title)),
            ("Category", s(&a.category)),
            ("Severity", s(&a.severity)),
            ("ServiceSource", s("Microsoft Defender for Endpoint")),
            (
                "DetectionSource",
                s(if a.detection_source == "WindowsDefenderAv" {
                    "Antivirus"
                } else {
                    "EDR"
                }),
            ),
            (
                "AttackTechniques",
                s(format!("[\"{}\"]", a.mitre_techniques.join("\",\""))),
            ),
        ]);
        aevidence.push_named(vec![
            ("Timestamp", K::DateTime(a.alert_creation_time)),
            ("AlertId", s(&a.id)),
            ("Title", s(&a.title)),
            ("EntityType", s("Machine")),
            ("EvidenceRole", s("Impacted")),
            ("DeviceId", s(&a.machine_id)),
            ("DeviceName", s(&a.computer_dns_name)),
            (
                "SHA1",
                a.related_sha1.clone().map(K::String).unwrap_or(K::Null),
            ),
            (
                "RemoteIP",
                a.related_ip.clone().map(K::String).unwrap_or(K::Null),
            ),
            (
                "RemoteUrl",
                a.related_domain.clone().map(K::String).unwrap_or(K::Null),
            ),
        ]);
    }
    db.insert(ainfo);
    db.insert(aevidence);
    db
}
