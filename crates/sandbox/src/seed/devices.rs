//! Defender devices: 50 machines of every platform and device group, and who logs on to them.

use super::*;

/// Workstations, Macs, servers, Linux hosts and a device that can be onboarded.
pub(super) fn machines(rng: &mut StdRng, spec: &TenantSpec, now: OffsetDateTime) -> Vec<Machine> {
    let fqdn = format!("{}.local", spec.domain);
    let groups: &[(&str, i64)] = &[
        ("Finance Workstations", 101),
        ("Corporate Workstations", 102),
        ("Engineering", 103),
        ("Servers - Production", 201),
        ("Linux Servers", 202),
        ("Mac Fleet", 301),
        ("UnassignedGroup", 0),
    ];
    let mut machines = Vec::new();
    let mut used_names = std::collections::HashSet::new();
    let server_roles = ["dc", "sql", "web", "file", "app", "ca", "rds", "exch"];
    let linux_roles = ["web", "k8s", "db", "proxy", "jump"];
    for i in 0..50 {
        let (prefix, platform, group) = match i {
            0..=27 => {
                let dept = *pick(rng, DEPTS);
                let platform = if rng.random_bool(0.6) {
                    "Windows11"
                } else {
                    "Windows10"
                };
                let group = match dept {
                    "fin" => groups[0],
                    "eng" => groups[2],
                    _ => groups[1],
                };
                (format!("ws-{dept}"), platform, group)
            }
            28..=33 => (format!("mac-{}", pick(rng, DEPTS)), "macOS", groups[5]),
            34..=41 => (
                format!("srv-{}", server_roles[i - 34]),
                if rng.random_bool(0.5) {
                    "WindowsServer2022"
                } else {
                    "WindowsServer2019"
                },
                groups[3],
            ),
            42..=46 => (format!("lnx-{}", linux_roles[i - 42]), "Linux", groups[4]),
            _ => ("ws-guest".to_string(), "Windows10", groups[6]),
        };
        let mut n = rng.random_range(1..200);
        while !used_names.insert(format!("{prefix}-{n:03}")) {
            n += 1;
        }
        let name = if (34..=46).contains(&i) {
            format!("{prefix}-{:02}", n % 100)
        } else {
            format!("{prefix}-{n:03}")
        };
        let onboarded = i < 47;
        let health = if !onboarded {
            "Inactive"
        } else {
            let r: f64 = rng.random();
            if r < 0.76 {
                "Active"
            } else if r < 0.86 {
                "Inactive"
            } else if r < 0.94 {
                "ImpairedCommunication"
            } else {
                "NoSensorData"
            }
        };
        let last_seen = match health {
            "Active" => ago(rng, now, Duration::minutes(1), Duration::hours(2)),
            "Inactive" => ago(rng, now, Duration::days(8), Duration::days(30)),
            _ => ago(rng, now, Duration::days(1), Duration::days(3)),
        };
        let (os_version, build, version) = match platform {
            "Windows10" => (Some("10.0.19045"), Some(19045), Some("22H2")),
            "Windows11" => (Some("10.0.22631"), Some(22631), Some("23H2")),
            "WindowsServer2019" => (Some("10.0.17763"), Some(17763), Some("1809")),
            "WindowsServer2022" => (Some("10.0.20348"), Some(20348), Some("21H2")),
            "Linux" => (Some("Ubuntu 22.04"), None, None),
            _ => (Some("14.4.1"), None, None),
        };
        let risk = if !onboarded {
            "None"
        } else {
            *pick(rng, &["None", "Low", "Low", "Medium", "Medium", "High"])
        };
        let exposure = if !onboarded {
            "None"
        } else {
            *pick(rng, &["Low", "Medium", "Medium", "High"])
        };
        let ip = format!(
            "10.{}.{}.{}",
            spec.subnet,
            rng.random_range(1..8),
            rng.random_range(10..250)
        );
        let is_server = (34..=46).contains(&i);
        let aad = !is_server && onboarded && platform != "Linux";
        let mut tags = Vec::new();
        if i < 3 {
            tags.push("VIP".to_string());
        }
        if name.starts_with("ws-fin") || name.starts_with("srv-sql") {
            tags.push("PCI".to_string());
        }
        if name.starts_with("srv-dc") {
            tags.push("Domain Controller".to_string());
        }
        let mac: String = (0..6)
            .map(|_| format!("{:02X}", rng.random::<u8>()))
            .collect();
        machines.push(Machine {
            id: hex_from(rng, 20),
            computer_dns_name: format!("{name}.{fqdn}"),
            first_seen: ago(rng, now, Duration::days(40), Duration::days(400)),
            last_seen,
            os_platform: platform.into(),
            os_version: os_version.map(str::to_string),
            os_processor: "x64".into(),
            version: version.map(str::to_string),
            last_ip_address: ip.clone(),
            last_external_ip_address: format!(
                "{}.{}.{}",
                spec.external_prefix,
                rng.random_range(1..250),
                rng.random_range(1..250)
            ),
            os_build: build,
            health_status: health.into(),
            device_value: if name.starts_with("srv-dc") {
                "High".into()
            } else {
                "Normal".into()
            },
            rbac_group_id: group.1,
            rbac_group_name: group.0.into(),
            risk_score: risk.into(),
            exposure_level: exposure.into(),
            is_aad_joined: aad,
            aad_device_id: if aad { Some(guid_from(rng)) } else { None },
            machine_tags: tags,
            defender_av_status: if !onboarded {
                "Unknown".into()
            } else if rng.random_bool(0.9) {
                "Updated".into()
            } else {
                "NotUpdated".into()
            },
            onboarding_status: if onboarded {
                "Onboarded".into()
            } else {
                "CanBeOnboarded".into()
            },
            os_architecture: "64-bit".into(),
            ip_addresses: vec![IpAddressInfo {
                ip_address: ip,
                mac_address: mac,
                kind: "Ethernet".into(),
                operational_status: "Up".into(),
            }],
            state: MachineState::default(),
        });
    }
    machines
}

/// The users seen on each onboarded device.
pub(super) fn logon_users(
    rng: &mut StdRng,
    spec: &TenantSpec,
    now: OffsetDateTime,
    machines: &[Machine],
    users: &[User],
) -> HashMap<String, Vec<LogonUser>> {
    let mut logon_users: HashMap<String, Vec<LogonUser>> = HashMap::new();
    for m in machines
        .iter()
        .filter(|m| m.onboarding_status == "Onboarded")
    {
        let count = if m.computer_dns_name.starts_with("srv") {
            3
        } else {
            rng.random_range(1..=2)
        };
        let mut list: Vec<LogonUser> = Vec::new();
        for _ in 0..count {
            let u = &users[rng.random_range(0..users.len())];
            if list.iter().any(|l| l.account_name == u.account) {
                continue;
            }
            list.push(LogonUser {
                id: format!("{}\\{}", spec.netbios.to_lowercase(), u.account),
                account_name: u.account.clone(),
                account_domain: spec.netbios.to_lowercase(),
                first_seen: ago(rng, now, Duration::days(20), Duration::days(90)),
                last_seen: ago(rng, now, Duration::hours(1), Duration::days(5)),
                logon_types: if m.computer_dns_name.starts_with("srv") {
                    "RemoteInteractive".into()
                } else {
                    "Interactive".into()
                },
                is_domain_admin: u.admin,
                is_only_network_user: false,
            });
        }
        logon_users.insert(m.id.clone(), list);
    }
    logon_users
}
