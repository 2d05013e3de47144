//! Seeded Sentinel content of a workspace beyond rules and incidents: analytics rule
//! templates, watchlists and their items, automation rules, saved searches (functions and
//! hunting queries), workbooks, data collection rules and endpoints with their associations,
//! the alerts and entities behind each incident, and the `SentinelHealth` table.
//!
//! It draws from its own RNG (seeded from the workspace's customer id) so that adding content
//! never shifts the data the main seed already produced.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::kql::{ColType, Column, Table, Value as K};
use crate::util::{fmt_time, guid_from, hex_from};

/// A user as the content needs it.
pub struct Person {
    pub upn: String,
    pub display: String,
    pub object_id: String,
}

/// A device as the content needs it.
pub struct Host {
    pub dns_name: String,
    pub ip: String,
    pub server: bool,
}

/// Everything in this module, for one workspace.
#[derive(Default)]
pub struct WorkspaceContent {
    pub alert_rule_templates: Vec<Value>,
    pub watchlists: Vec<Value>,
    /// Watchlist alias → items.
    pub watchlist_items: HashMap<String, Vec<Value>>,
    pub automation_rules: Vec<Value>,
    pub saved_searches: Vec<Value>,
    /// `Microsoft.Insights/workbooks` in the workspace's resource group.
    pub workbooks: Vec<Value>,
    /// `Microsoft.Insights/dataCollectionRules` in the workspace's resource group.
    pub dcrs: Vec<Value>,
    pub dces: Vec<Value>,
    /// Data collection rule associations (on virtual machines), by their full resource id.
    pub dcr_associations: Vec<Value>,
    /// Incident name → its alerts (`SecurityAlert` entities).
    pub incident_alerts: HashMap<String, Vec<Value>>,
    /// Incident name → its entities.
    pub incident_entities: HashMap<String, Vec<Value>>,
}

pub struct WorkspaceScope<'a> {
    pub workspace_id: &'a str,
    pub customer_id: &'a str,
    pub subscription_id: &'a str,
    pub location: &'a str,
}

fn rng_for(key: &str) -> StdRng {
    // FNV-1a: a stable seed from a string, independent of std's randomized hasher.
    let seed = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    StdRng::seed_from_u64(seed)
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    // The pools are non-empty constants.
    items.choose(rng).unwrap_or(&items[0])
}

fn etag(rng: &mut StdRng) -> String {
    format!("\"{}\"", guid_from(rng))
}

/// The name of Microsoft's "Advanced Multistage Attack Detection" (Fusion) rule template.
pub const FUSION_TEMPLATE: &str = "f71aba3d-28fb-450b-b192-4e76a83015c8";
/// Its description and tactics, which a Fusion rule made from it carries (read-only there).
pub const FUSION_DESCRIPTION: &str = "Microsoft Sentinel uses Fusion, a correlation engine based on scalable machine learning algorithms, to automatically detect multistage attacks.";
pub const FUSION_TACTICS: &[&str] = &[
    "Collection",
    "CommandAndControl",
    "CredentialAccess",
    "DefenseEvasion",
    "Discovery",
    "Execution",
    "Exfiltration",
    "Impact",
    "InitialAccess",
    "LateralMovement",
    "Persistence",
    "PrivilegeEscalation",
];

pub fn generate(
    scope: &WorkspaceScope<'_>,
    now: OffsetDateTime,
    people: &[Person],
    hosts: &[Host],
    alert_rules: &[Value],
    incidents: &[Value],
) -> WorkspaceContent {
    let mut rng = rng_for(scope.customer_id);
    let rng = &mut rng;
    let si = format!(
        "{}/providers/Microsoft.SecurityInsights",
        scope.workspace_id
    );
    let mut content = WorkspaceContent {
        alert_rule_templates: templates(rng, &si, now),
        ..Default::default()
    };
    watchlists(rng, &si, now, people, hosts, &mut content);
    content.automation_rules = automation_rules(rng, &si, now, people, alert_rules);
    content.saved_searches = saved_searches(rng, scope.workspace_id);
    content.workbooks = workbooks(rng, scope, now);
    data_collection(rng, scope, hosts, &mut content);
    for incident in incidents {
        let (alerts, entities) = incident_evidence(rng, &si, incident, people, hosts);
        let name = incident["name"].as_str().unwrap_or_default().to_string();
        content.incident_alerts.insert(name.clone(), alerts);
        content.incident_entities.insert(name, entities);
    }
    content
}

/// kind, display name, severity, query, tactics, data connector.
type TemplateDef = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

/// Analytics rule templates as Content Hub installs them.
fn templates(rng: &mut StdRng, si: &str, now: OffsetDateTime) -> Vec<Value> {
    let defs: &[TemplateDef] = &[
        (
            "Scheduled",
            "Multiple failed logons followed by a success",
            "Medium",
            "SecurityEvent | where EventID in (4625, 4624) | summarize Failures = countif(EventID == 4625), Successes = countif(EventID == 4624) by Account, Computer | where Failures > 5 and Successes > 0",
            &["CredentialAccess"],
            "SecurityEvents",
        ),
        (
            "Scheduled",
            "Sign-in from a TOR exit node",
            "High",
            "SigninLogs | where IPAddress startswith '185.220.' | project TimeGenerated, UserPrincipalName, IPAddress, AppDisplayName",
            &["InitialAccess"],
            "AzureActiveDirectory",
        ),
        (
            "Scheduled",
            "Rare administrative operation in Azure",
            "Low",
            "AzureActivity | where OperationNameValue endswith '/WRITE' and ActivityStatusValue == 'Success' | summarize count() by Caller, OperationNameValue | where count_ < 3",
            &["Persistence", "PrivilegeEscalation"],
            "AzureActivity",
        ),
        (
            "Scheduled",
            "Firewall allows traffic to a known C2 address",
            "High",
            "CommonSecurityLog | where DeviceAction == 'allow' and DestinationIP in ('203.0.113.50', '198.51.100.23') | summarize count() by SourceIP, DestinationIP",
            &["CommandAndControl"],
            "CEF",
        ),
        (
            "Scheduled",
            "Security event log cleared",
            "Medium",
            "SecurityEvent | where EventID == 1102 | project TimeGenerated, Computer, Account",
            &["DefenseEvasion"],
            "SecurityEvents",
        ),
        (
            "Scheduled",
            "User added to a privileged local group",
            "Medium",
            "SecurityEvent | where EventID == 4732 | project TimeGenerated, Computer, Account, TargetAccount",
            &["Persistence"],
            "SecurityEvents",
        ),
        (
            "Scheduled",
            "High volume of failed sign-ins for one user",
            "Low",
            "SigninLogs | where ResultType != '0' | summarize Failures = count() by UserPrincipalName | where Failures > 20",
            &["CredentialAccess"],
            "AzureActiveDirectory",
        ),
        // No NRT templates: templates are read at 2025-09-01, whose `AlertRuleTemplate` has no
        // NRT kind (only the preview definitions do).
        (
            "Fusion",
            "Advanced Multistage Attack Detection",
            "High",
            "",
            FUSION_TACTICS,
            "Fusion",
        ),
    ];
    defs.iter()
        .map(|(kind, name, severity, query, tactics, connector)| {
            let drawn = guid_from(rng);
            // The Fusion template has one well-known name in every workspace, the one the seeded
            // Fusion rule names as its `alertRuleTemplateName` (the service fills the rule's
            // read-only members from it). The draw is kept so later records stay the same.
            let id = if *kind == "Fusion" {
                FUSION_TEMPLATE.to_string()
            } else {
                drawn
            };
            let created = now - Duration::days(rng.random_range(200..900));
            let updated = created + Duration::days(rng.random_range(1..150));
            let version = format!("1.{}.{}", rng.random_range(0..4), rng.random_range(0..10));
            let description = if *kind == "Fusion" {
                FUSION_DESCRIPTION.to_string()
            } else {
                format!("{name}. Installed from the Microsoft Sentinel Content Hub.")
            };
            let mut properties = json!({
                "displayName": name,
                "description": description,
                "severity": severity,
                "tactics": tactics,
                "techniques": [],
                "status": "Available",
                "alertRulesCreatedByTemplateCount": 0,
                "createdDateUTC": fmt_time(created),
                "lastUpdatedDateUTC": fmt_time(updated),
                "requiredDataConnectors": [{"connectorId": connector, "dataTypes": [query.split(' ').next().unwrap_or_default()]}],
            });
            if *kind != "Fusion" {
                properties["query"] = json!(query);
            }
            if *kind == "Scheduled" {
                // `version` is a member of `ScheduledAlertRuleTemplateProperties` only, not of
                // `FusionAlertRuleTemplateProperties`.
                properties["version"] = json!(version);
                properties["queryFrequency"] = json!("PT1H");
                properties["queryPeriod"] = json!("PT1H");
                properties["triggerOperator"] = json!("GreaterThan");
                properties["triggerThreshold"] = json!(0);
            }
            json!({
                "id": format!("{si}/alertRuleTemplates/{id}"),
                "name": id,
                "type": "Microsoft.SecurityInsights/AlertRuleTemplates",
                "kind": kind,
                "properties": properties,
            })
        })
        .collect()
}

pub fn watchlist_item_json(
    watchlist_path: &str,
    item_id: &str,
    etag: &str,
    values: Value,
    author: &str,
    at: &str,
) -> Value {
    json!({
        "id": format!("{watchlist_path}/watchlistItems/{item_id}"),
        "name": item_id,
        "type": "Microsoft.SecurityInsights/Watchlists/WatchlistItems",
        "etag": etag,
        "properties": {
            "watchlistItemType": "custom",
            "watchlistItemId": item_id,
            "isDeleted": false,
            "created": at,
            "updated": at,
            "createdBy": {"objectId": author},
            "updatedBy": {"objectId": author},
            "itemsKeyValue": values,
            "entityMapping": {},
        },
    })
}

fn watchlists(
    rng: &mut StdRng,
    si: &str,
    now: OffsetDateTime,
    people: &[Person],
    hosts: &[Host],
    content: &mut WorkspaceContent,
) {
    let author = people
        .first()
        .map(|p| p.object_id.clone())
        .unwrap_or_default();
    let servers: Vec<Value> = hosts
        .iter()
        .filter(|h| h.server)
        .map(|h| json!({"Hostname": h.dns_name, "IPAddress": h.ip, "Tier": "0"}))
        .collect();
    let vips: Vec<Value> = people.iter().take(5).map(|p| json!({"UserPrincipalName": p.upn, "DisplayName": p.display, "Reason": "Executive"})).collect();
    // More items than one server page, so listing them exercises paging.
    let tor: Vec<Value> = (0..40).map(|i| json!({"IPAddress": format!("185.220.101.{}", 10 + i), "FirstSeen": fmt_time(now - Duration::days(i))})).collect();
    let lists: [(&str, &str, &str, &str, Vec<Value>); 3] = [
        (
            "HighValueAssets",
            "High value assets",
            "Hostname",
            "Tier-0 servers: escalate any incident touching them.",
            servers,
        ),
        (
            "VIPUsers",
            "VIP users",
            "UserPrincipalName",
            "Executives and their assistants.",
            vips,
        ),
        (
            "TorExitNodes",
            "TOR exit nodes",
            "IPAddress",
            "Known TOR exit nodes, refreshed weekly.",
            tor,
        ),
    ];
    for (alias, display, key, description, items) in lists {
        let created = fmt_time(now - Duration::days(rng.random_range(30..300)));
        let path = format!("{si}/watchlists/{alias}");
        content.watchlists.push(json!({
            "id": path,
            "name": alias,
            "type": "Microsoft.SecurityInsights/Watchlists",
            "etag": etag(rng),
            "properties": {
                "watchlistId": guid_from(rng),
                "displayName": display,
                "provider": "Microsoft",
                "source": format!("{alias}.csv"),
                // `SourceType` declares `Local` and `AzureStorage`.
                "sourceType": "Local",
                "itemsSearchKey": key,
                "description": description,
                "watchlistAlias": alias,
                "watchlistType": "watchlist",
                "isDeleted": false,
                "labels": [],
                "defaultDuration": "P1000Y",
                "numberOfLinesToSkip": 0,
                "contentType": "text/csv",
                "uploadStatus": "Complete",
                // A watchlist the service finished creating (`Watchlists_CreateOrUpdate` is
                // long-running and answers this read-only state).
                "provisioningState": "Succeeded",
                "created": created,
                "updated": created,
                "createdBy": {"objectId": author},
                "updatedBy": {"objectId": author},
            },
        }));
        let items = items
            .into_iter()
            .map(|values| {
                let item_id = guid_from(rng);
                let item_etag = etag(rng);
                watchlist_item_json(&path, &item_id, &item_etag, values, &author, &created)
            })
            .collect();
        content.watchlist_items.insert(alias.to_string(), items);
    }
}

fn automation_rules(
    rng: &mut StdRng,
    si: &str,
    now: OffsetDateTime,
    people: &[Person],
    alert_rules: &[Value],
) -> Vec<Value> {
    let lead = &people[0];
    let noisy_rule = alert_rules
        .iter()
        .find(|r| r["properties"]["severity"] == "Informational")
        .or(alert_rules.first())
        .map(|r| r["id"].clone())
        .unwrap_or(Value::Null);
    let rules = [
        json!({
            "displayName": "Assign high severity incidents to the SOC lead",
            "order": 1,
            "triggeringLogic": {
                "isEnabled": true,
                "triggersOn": "Incidents",
                "triggersWhen": "Created",
                "conditions": [{"conditionType": "Property", "conditionProperties": {"propertyName": "IncidentSeverity", "operator": "Equals", "propertyValues": ["High"]}}],
            },
            "actions": [{"order": 1, "actionType": "ModifyProperties", "actionConfiguration": {"owner": {"objectId": lead.object_id, "email": lead.upn, "assignedTo": lead.display, "userPrincipalName": lead.upn}}}],
        }),
        json!({
            "displayName": "Close informational incidents of a noisy rule",
            "order": 2,
            "triggeringLogic": {
                "isEnabled": true,
                "triggersOn": "Incidents",
                "triggersWhen": "Created",
                "expirationTimeUtc": fmt_time(now + Duration::days(90)),
                "conditions": [{"conditionType": "Property", "conditionProperties": {"propertyName": "IncidentRelatedAnalyticRuleIds", "operator": "Contains", "propertyValues": [noisy_rule]}}],
            },
            "actions": [{"order": 1, "actionType": "ModifyProperties", "actionConfiguration": {"status": "Closed", "classification": "BenignPositive", "classificationReason": "SuspiciousButExpected", "classificationComment": "Closed by automation: known noisy rule"}}],
        }),
    ];
    rules
        .into_iter()
        .map(|mut properties| {
            let id = guid_from(rng);
            let at = fmt_time(now - Duration::days(rng.random_range(5..120)));
            let who = json!({"objectId": lead.object_id, "email": lead.upn, "name": lead.display, "userPrincipalName": lead.upn});
            properties["createdTimeUtc"] = json!(at);
            properties["lastModifiedTimeUtc"] = json!(at);
            properties["createdBy"] = who.clone();
            properties["lastModifiedBy"] = who;
            json!({
                "id": format!("{si}/automationRules/{id}"),
                "name": id,
                "type": "Microsoft.SecurityInsights/AutomationRules",
                "etag": etag(rng),
                "properties": properties,
            })
        })
        .collect()
}

/// The `W/"datetime'...'"` ETag form Log Analytics gives saved searches.
pub fn saved_search_etag(at: OffsetDateTime) -> String {
    format!("W/\"datetime'{}'\"", fmt_time(at).replace(':', "%3A"))
}

/// category, display name, query, function alias, tags.
type SavedSearchDef = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
);

fn saved_searches(rng: &mut StdRng, workspace_id: &str) -> Vec<Value> {
    let defs: &[SavedSearchDef] = &[
        (
            "Security",
            "Firewall events, parsed",
            "CommonSecurityLog | where DeviceVendor == 'Palo Alto Networks' | project TimeGenerated, SourceIP, DestinationIP, DestinationPort, DeviceAction",
            Some("FirewallEvents"),
            &[],
        ),
        (
            "Security",
            "Failed Windows logons",
            "SecurityEvent | where EventID == 4625 | project TimeGenerated, Computer, Account, IpAddress",
            Some("FailedLogons"),
            &[],
        ),
        (
            "Hunting Queries",
            "PowerShell download cradles",
            "SecurityEvent | where EventID == 4688 and CommandLine has 'DownloadString' | project TimeGenerated, Computer, Account, CommandLine",
            None,
            &[
                ("tactics", "Execution"),
                (
                    "description",
                    "PowerShell fetching and running remote code.",
                ),
            ],
        ),
        (
            "Hunting Queries",
            "Sign-ins from many countries",
            "SigninLogs | summarize Countries = dcount(Location) by UserPrincipalName | where Countries > 3",
            None,
            &[("tactics", "InitialAccess")],
        ),
        (
            "Log Management",
            "Heartbeats per computer",
            "Heartbeat | summarize LastSeen = max(TimeGenerated) by Computer",
            None,
            &[],
        ),
    ];
    defs.iter()
        .map(|(category, display, query, alias, tags)| {
            let id = guid_from(rng);
            let mut properties = json!({
                "category": category,
                "displayName": display,
                "query": query,
                "version": 2,
                "tags": tags.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            });
            if let Some(alias) = alias {
                properties["functionAlias"] = json!(alias);
                properties["functionParameters"] = json!("");
            }
            json!({
                "id": format!("{workspace_id}/savedSearches/{id}"),
                "etag": saved_search_etag(OffsetDateTime::UNIX_EPOCH + Duration::days(19_000 + rng.random_range(0..600))),
                "name": id,
                "type": "Microsoft.OperationalInsights/savedSearches",
                "properties": properties,
            })
        })
        .collect()
}

/// Workbook content in the Notebook/1.0 format the workbook editor writes.
pub fn notebook(title: &str, queries: &[&str], workspace_id: &str) -> String {
    let mut items =
        vec![json!({"type": 1, "content": {"json": format!("## {title}")}, "name": "title"})];
    for (i, q) in queries.iter().enumerate() {
        items.push(json!({
            "type": 3,
            "content": {"version": "KqlItem/1.0", "query": q, "size": 0, "queryType": 0, "resourceType": "microsoft.operationalinsights/workspaces"},
            "name": format!("query - {i}"),
        }));
    }
    json!({
        "version": "Notebook/1.0",
        "items": items,
        "fallbackResourceIds": [workspace_id],
        "fromTemplateId": "sentinel-UserWorkbook",
        "$schema": "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json",
    })
    .to_string()
}

pub fn workbook_json(
    resource_group_path: &str,
    name: &str,
    location: &str,
    etag: &str,
    properties: Value,
) -> Value {
    json!({
        "id": format!("{resource_group_path}/providers/microsoft.insights/workbooks/{name}"),
        "name": name,
        "type": "microsoft.insights/workbooks",
        "location": location,
        "kind": "shared",
        "etag": etag,
        "tags": {},
        "properties": properties,
    })
}

fn workbooks(rng: &mut StdRng, scope: &WorkspaceScope<'_>, now: OffsetDateTime) -> Vec<Value> {
    let rg_path = scope
        .workspace_id
        .split("/providers/")
        .next()
        .unwrap_or_default();
    let defs: [(&str, &[&str]); 2] = [
        (
            "Identity & Access",
            &[
                "SigninLogs | summarize count() by ResultType",
                "SigninLogs | summarize count() by Location",
            ],
        ),
        (
            "Firewall overview",
            &[
                "CommonSecurityLog | summarize count() by DeviceAction",
                "CommonSecurityLog | top 10 by DestinationPort",
            ],
        ),
    ];
    defs.iter()
        .map(|(title, queries)| {
            let name = guid_from(rng);
            let modified = fmt_time(now - Duration::days(rng.random_range(1..90)));
            let properties = json!({
                "displayName": title,
                "serializedData": notebook(title, queries, scope.workspace_id),
                "version": "Notebook/1.0", // the definition: "Workbook schema version format, like 'Notebook/1.0'"
                "timeModified": modified,
                "category": "sentinel",
                "tags": [],
                "userId": guid_from(rng),
                "sourceId": scope.workspace_id,
                "storageUri": Value::Null,
                "description": format!("{title} for the SOC."),
                "revision": hex_from(rng, 16),
            });
            let etag = format!("W/\"{}\"", hex_from(rng, 8));
            workbook_json(rg_path, &name, scope.location, &etag, properties)
        })
        .collect()
}

fn data_collection(
    rng: &mut StdRng,
    scope: &WorkspaceScope<'_>,
    hosts: &[Host],
    content: &mut WorkspaceContent,
) {
    let rg_path = scope
        .workspace_id
        .split("/providers/")
        .next()
        .unwrap_or_default();
    let ws_name = scope.workspace_id.rsplit('/').next().unwrap_or_default();
    let dce_name = format!("dce-{ws_name}");
    let dce_id =
        format!("{rg_path}/providers/Microsoft.Insights/dataCollectionEndpoints/{dce_name}");
    content.dces.push(dce_json(
        &dce_id,
        &dce_name,
        scope.location,
        &etag(rng),
        &hex_from(rng, 16),
        &hex_from(rng, 3),
        "Enabled",
        None,
    ));
    let dcr_name = "dcr-windows-security-events";
    let dcr_id = format!("{rg_path}/providers/Microsoft.Insights/dataCollectionRules/{dcr_name}");
    let properties = json!({
        "immutableId": format!("dcr-{}", hex_from(rng, 16)),
        "description": "Windows security events (common set) from the servers to Sentinel.",
        "dataCollectionEndpointId": dce_id,
        "dataSources": {
            "windowsEventLogs": [{"streams": ["Microsoft-SecurityEvent"], "xPathQueries": ["Security!*[System[(EventID=4624 or EventID=4625 or EventID=4688 or EventID=4672 or EventID=4732 or EventID=4740 or EventID=1102)]]"], "name": "eventLogsDataSource"}],
        },
        "destinations": {"logAnalytics": [{"workspaceResourceId": scope.workspace_id, "workspaceId": scope.customer_id, "name": "sentinel"}]},
        "dataFlows": [{"streams": ["Microsoft-SecurityEvent"], "destinations": ["sentinel"], "transformKql": "source", "outputStream": "Microsoft-SecurityEvent"}],
        "provisioningState": "Succeeded",
    });
    content.dcrs.push(dcr_json(
        &dcr_id,
        dcr_name,
        scope.location,
        Some("Windows"),
        &etag(rng),
        properties,
    ));
    for host in hosts.iter().filter(|h| h.server) {
        let vm = host.dns_name.split('.').next().unwrap_or_default();
        let resource = format!(
            "/subscriptions/{}/resourceGroups/rg-servers/providers/Microsoft.Compute/virtualMachines/{vm}",
            scope.subscription_id
        );
        content.dcr_associations.push(association_json(
            &resource,
            &format!("{dcr_name}-association"),
            &dcr_id,
            None,
        ));
    }
}

#[allow(clippy::too_many_arguments)]
pub fn dce_json(
    id: &str,
    name: &str,
    location: &str,
    etag: &str,
    immutable: &str,
    host_suffix: &str,
    public_access: &str,
    description: Option<&str>,
) -> Value {
    let region = location.replace(' ', "").to_lowercase();
    let mut dce = json!({
        "id": id,
        "name": name,
        "type": "Microsoft.Insights/dataCollectionEndpoints",
        "location": location,
        "etag": etag,
        "tags": {},
        "properties": {
            "immutableId": format!("dce-{immutable}"),
            "configurationAccess": {"endpoint": format!("https://{name}-{host_suffix}.{region}-1.handler.control.monitor.azure.com")},
            "logsIngestion": {"endpoint": format!("https://{name}-{host_suffix}.{region}-1.ingest.monitor.azure.com")},
            "metricsIngestion": {"endpoint": format!("https://{name}-{host_suffix}.{region}-1.metrics.ingest.monitor.azure.com")},
            "networkAcls": {"publicNetworkAccess": public_access},
            "provisioningState": "Succeeded",
        },
    });
    // `DataCollectionEndpoint.description` is a plain string (not `x-nullable`): absent when unset.
    if let Some(description) = description {
        dce["properties"]["description"] = json!(description);
    }
    dce
}

pub fn dcr_json(
    id: &str,
    name: &str,
    location: &str,
    kind: Option<&str>,
    etag: &str,
    properties: Value,
) -> Value {
    let mut dcr = json!({
        "id": id,
        "name": name,
        "type": "Microsoft.Insights/dataCollectionRules",
        "location": location,
        "etag": etag,
        "tags": {},
        "properties": properties,
    });
    if let Some(kind) = kind {
        dcr["kind"] = json!(kind);
    }
    dcr
}

pub fn association_json(
    resource: &str,
    name: &str,
    dcr_id: &str,
    description: Option<&str>,
) -> Value {
    let mut association = json!({
        "id": format!("{resource}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{name}"),
        "name": name,
        "type": "Microsoft.Insights/dataCollectionRuleAssociations",
        "properties": {"dataCollectionRuleId": dcr_id, "provisioningState": "Succeeded"},
    });
    // `DataCollectionRuleAssociation.description` is not `x-nullable`: absent when unset.
    if let Some(description) = description {
        association["properties"]["description"] = json!(description);
    }
    association
}

/// The alerts and entities of one incident, consistent with its alert count and times.
fn incident_evidence(
    rng: &mut StdRng,
    si: &str,
    incident: &Value,
    people: &[Person],
    hosts: &[Host],
) -> (Vec<Value>, Vec<Value>) {
    let p = &incident["properties"];
    let count = p["additionalData"]["alertsCount"].as_u64().unwrap_or(0);
    let host = pick(rng, hosts);
    let person = pick(rng, people);
    let first = p["firstActivityTimeUtc"].clone();
    let last = p["lastActivityTimeUtc"].clone();
    let entity_id = |kind: &str, rng: &mut StdRng| {
        let id = guid_from(rng);
        (format!("{si}/entities/{id}"), id, kind.to_string())
    };
    let mut entities = Vec::new();
    let (id, name, kind) = entity_id("Host", rng);
    let short = host
        .dns_name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    entities.push(json!({"id": id, "name": name, "type": "Microsoft.SecurityInsights/Entities", "kind": kind, "properties": {"hostName": short, "dnsDomain": host.dns_name.split_once('.').map(|(_, d)| d).unwrap_or_default(), "osFamily": "Windows", "friendlyName": short}}));
    let (id, name, kind) = entity_id("Account", rng);
    let (account, domain) = person
        .upn
        .split_once('@')
        .unwrap_or((person.upn.as_str(), ""));
    entities.push(json!({"id": id, "name": name, "type": "Microsoft.SecurityInsights/Entities", "kind": kind, "properties": {"accountName": account, "upnSuffix": domain, "aadUserId": person.object_id, "displayName": person.display, "friendlyName": person.display}}));
    let (id, name, kind) = entity_id("Ip", rng);
    entities.push(json!({"id": id, "name": name, "type": "Microsoft.SecurityInsights/Entities", "kind": kind, "properties": {"address": host.ip, "friendlyName": host.ip}}));
    let alerts = (0..count)
        .map(|_| {
            let id = guid_from(rng);
            json!({
                "id": format!("{si}/entities/{id}"),
                "name": id,
                "type": "Microsoft.SecurityInsights/Entities",
                "kind": "SecurityAlert",
                "properties": {
                    "alertDisplayName": p["title"],
                    "friendlyName": p["title"],
                    "severity": p["severity"],
                    "status": "New",
                    "alertType": format!("{}_{}", "ad3abc06-6d15-4c0f-8f2e-4f3b2a1c0d9e", "rule"),
                    "productName": "Azure Sentinel",
                    "productComponentName": "Scheduled Alerts",
                    "providerAlertId": guid_from(rng),
                    "systemAlertId": id,
                    "confidenceLevel": "Unknown",
                    "startTimeUtc": first,
                    "endTimeUtc": last,
                    "timeGenerated": last,
                    "processingEndTime": last,
                    "tactics": p["additionalData"]["tactics"],
                    "compromisedEntity": short,
                    "resourceIdentifiers": [],
                    "additionalData": {},
                },
            })
        })
        .collect();
    (alerts, entities)
}

/// `SentinelHealth` rows for scheduled analytics rule runs over the last day (health
/// monitoring enabled): every enabled scheduled rule ran hourly; one rule's recent runs
/// failed, as a rule whose table went away would.
pub fn sentinel_health(
    now: OffsetDateTime,
    workspace_customer_id: &str,
    alert_rules: &[Value],
) -> Table {
    let mut table = Table::new(
        "SentinelHealth",
        vec![
            Column::new("TenantId", ColType::String),
            Column::new("TimeGenerated", ColType::DateTime),
            Column::new("OperationName", ColType::String),
            Column::new("SentinelResourceId", ColType::String),
            Column::new("SentinelResourceName", ColType::String),
            Column::new("SentinelResourceType", ColType::String),
            Column::new("SentinelResourceKind", ColType::String),
            Column::new("Status", ColType::String),
            Column::new("Description", ColType::String),
            Column::new("Reason", ColType::String),
            Column::new("Type", ColType::String),
        ],
    );
    let scheduled: Vec<&Value> = alert_rules
        .iter()
        .filter(|r| r["kind"] == "Scheduled" && r["properties"]["enabled"] == true)
        .collect();
    let failing = scheduled
        .iter()
        .position(|r| r["properties"]["displayName"] == "Firewall denies to known C2");
    for (i, rule) in scheduled.iter().enumerate() {
        for hour in 0..24 {
            let failed = Some(i) == failing && hour < 4;
            table.push_named(vec![
                ("TenantId", K::str(workspace_customer_id)),
                (
                    "TimeGenerated",
                    K::DateTime(now - Duration::hours(hour) - Duration::minutes(3)),
                ),
                ("OperationName", K::str("Scheduled analytics rule run")),
                (
                    "SentinelResourceId",
                    K::str(rule["id"].as_str().unwrap_or_default()),
                ),
                (
                    "SentinelResourceName",
                    K::str(
                        rule["properties"]["displayName"]
                            .as_str()
                            .unwrap_or_default(),
                    ),
                ),
                ("SentinelResourceType", K::str("Analytics Rule")),
                ("SentinelResourceKind", K::str("Scheduled")),
                ("Status", K::str(if failed { "Failure" } else { "Success" })),
                (
                    "Description",
                    K::str(if failed {
                        "The rule's query failed to run."
                    } else {
                        "Rule ran successfully."
                    }),
                ),
                (
                    "Reason",
                    if failed {
                        K::str("Query timed out after 10 minutes.")
                    } else {
                        K::Null
                    },
                ),
                ("Type", K::str("SentinelHealth")),
            ]);
        }
    }
    table
}

/// Azure Lighthouse registration assignments: every subscription of the tenant is delegated
/// to the MSSP that runs this server.
pub const MSSP_TENANT_ID: &str = "99999999-9999-4999-8999-999999999999";
pub const MSSP_TENANT_NAME: &str = "Northwind Security (MSSP)";

pub fn registration_assignments(subscription_id: &str, tenant_name: &str) -> Vec<Value> {
    let mut rng = rng_for(subscription_id);
    let assignment = guid_from(&mut rng);
    let definition = guid_from(&mut rng);
    let principal = guid_from(&mut rng);
    // Microsoft Sentinel Contributor and Log Analytics Reader.
    let authorizations = ["ab8e14d6-4a74-4a29-9ba8-549422addade", "73c42c96-874c-492b-b04d-ab87d138a893"]
        .map(|role| json!({"principalId": principal, "principalIdDisplayName": "SOC analysts", "roleDefinitionId": role}));
    vec![json!({
        "id": format!("/subscriptions/{subscription_id}/providers/Microsoft.ManagedServices/registrationAssignments/{assignment}"),
        "name": assignment,
        "type": "Microsoft.ManagedServices/registrationAssignments",
        "properties": {
            "registrationDefinitionId": format!("/subscriptions/{subscription_id}/providers/Microsoft.ManagedServices/registrationDefinitions/{definition}"),
            "provisioningState": "Succeeded",
            "registrationDefinition": {
                "id": format!("/subscriptions/{subscription_id}/providers/Microsoft.ManagedServices/registrationDefinitions/{definition}"),
                "name": definition,
                "type": "Microsoft.ManagedServices/registrationDefinitions",
                "properties": {
                    "registrationDefinitionName": format!("{MSSP_TENANT_NAME} SOC for {tenant_name}"),
                    "description": "Managed detection and response",
                    "managedByTenantId": MSSP_TENANT_ID,
                    "managedByTenantName": MSSP_TENANT_NAME,
                    "manageeTenantName": tenant_name,
                    "provisioningState": "Succeeded",
                    // Microsoft Sentinel Contributor and Log Analytics Reader.
                    "authorizations": authorizations,
                },
            },
        },
    })]
}
