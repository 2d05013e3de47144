//! Prompts that walk a model through the Sentinel (and Defender) tools in the right order.

use std::collections::BTreeMap;

use crate::mcp::{CatalogueBuilder, PromptDef};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .prompt(PromptDef {
            name: "sentinel-quick-status",
            description: "A short status of one tenant's Sentinel workspaces: reachable, fresh data, rules, open incidents.",
            arguments: &[("tenant_id", "Tenant to report on (from tenants_list)", true)],
            render: |arguments| {
                format!(
                    "Give a short Sentinel status for tenant {tenant}. Call sentinel_health_check with tenant_id {tenant}. \
                     Then answer in at most five lines: overall state, any unreachable workspace, stale tables with how long they have been silent, \
                     analytics rules enabled versus total, and open incidents by severity. Do not change anything.",
                    tenant = argument(arguments, "tenant_id")
                )
            },
        })
        .prompt(PromptDef {
            name: "sentinel-health-report",
            description: "A full health report of the Sentinel workspaces of one tenant, or of every tenant: ingestion, analytics rules, incident backlog, recommendations.",
            arguments: &[("tenant_id", "Tenant to report on (from tenants_list); leave out to report on every tenant", false)],
            render: |arguments| {
                let call = match arguments.get("tenant_id").map(|t| t.trim()).filter(|t| !t.is_empty()) {
                    Some(tenant) => format!("sentinel_health_check with tenant_id {tenant} and depth \"detailed\""),
                    None => "sentinel_health_check with scope \"all\" and depth \"detailed\"".to_string(),
                };
                format!(
                    "Write a Sentinel health report. Change nothing: every step below only reads.\n\
                     1. Call {call}.\n\
                     2. For each workspace with analytics rules failing, call sentinel_get_analytics_rule for each failing rule to show its query and schedule.\n\
                     3. For each workspace with open incidents, call sentinel_list_incidents with status [\"New\"] and order_by \"oldest\" (limit 10) to name the oldest untouched ones.\n\
                     4. If a table is stale or shows an ingestion drop, call sentinel_list_dcrs for that workspace to see which data collection rule feeds it.\n\
                     Then write the report with these sections: Overview (one line per workspace: healthy or needs attention, and why); \
                     Data ingestion (stale tables with hours silent, key tables with no data, drops and spikes with numbers); \
                     Analytics rules (enabled of total, failing rules with their failure reason); \
                     Incident backlog (open by severity, oldest open in hours, unassigned, the oldest untouched incidents by number and title); \
                     Recommendations (concrete next steps, most urgent first, naming the tool that would carry each out). \
                     Report checks that could not run (problems and notes) as such; do not guess their result."
                )
            },
        })
        .prompt(PromptDef {
            name: "incident-triage",
            description: "Triage one Sentinel incident: evidence, scope, related activity, a recommendation; changes only after confirmation.",
            arguments: &[
                ("tenant_id", "Tenant of the incident (from tenants_list)", true),
                ("incident", "Incident number (e.g. 4711) or id", true),
                ("workspace", "Workspace name (from sentinel_list_workspaces) when the tenant has several", false),
            ],
            render: |arguments| {
                let tenant = argument(arguments, "tenant_id");
                let incident = argument(arguments, "incident");
                let workspace = arguments.get("workspace").filter(|w| !w.trim().is_empty()).map(|w| format!(", workspace \"{w}\"")).unwrap_or_default();
                let scope = format!("tenant_id {tenant}{workspace}");
                format!(
                    "Triage Sentinel incident {incident} ({scope}). Read first, act only with the person's confirmation.\n\
                     1. sentinel_get_incident ({scope}, incident \"{incident}\"): note title, severity, status, owner, tactics, each alert and every entity (hosts, accounts, IPs, files).\n\
                     2. sentinel_list_incident_comments for the same incident: what has already been done.\n\
                     3. For each entity, sentinel_run_query ({scope}) over the incident's time window (timespan P1D or tighter, max_rows 50), e.g. \
                     hosts: SecurityEvent | where Computer has '<host>' | summarize count() by EventID, Activity; \
                     accounts: SigninLogs | where UserPrincipalName =~ '<upn>' | project TimeGenerated, IPAddress, Location, ResultType, AppDisplayName; \
                     IPs: CommonSecurityLog | where SourceIP == '<ip>' or DestinationIP == '<ip>' | summarize count() by DeviceAction, DestinationPort.\n\
                     4. sentinel_list_incidents ({scope}, since a week before this incident) to find related incidents with the same entities or title.\n\
                     5. sentinel_list_watchlists and sentinel_get_watchlist_items for watchlists such as high value assets or VIP users: does the incident touch them?\n\
                     6. If a device is involved, follow the device-investigation prompt for it (Defender for Endpoint tools).\n\
                     Then give: a verdict (true positive, benign positive, false positive, or undetermined) with the evidence for it, the scope (which hosts and accounts), \
                     and recommended actions. Propose a comment summarising the findings and, if warranted, an update (status, owner, severity, or closing with a \
                     classification and reason). Only after the person agrees: sentinel_add_incident_comment, then sentinel_update_incident."
                )
            },
        })
        .prompt(PromptDef {
            name: "device-investigation",
            description: "Investigate one device with Defender for Endpoint and Sentinel: identity, alerts, activity, indicators; containment only after confirmation.",
            arguments: &[
                ("tenant_id", "Tenant of the device (from tenants_list)", true),
                ("device", "Device name (e.g. ws-fin-014) or Defender machine id", true),
                ("incident", "Sentinel incident number or id to record the findings on", false),
            ],
            render: |arguments| {
                let tenant = argument(arguments, "tenant_id");
                let device = argument(arguments, "device");
                let record = match arguments.get("incident").filter(|i| !i.trim().is_empty()) {
                    Some(incident) => format!("sentinel_add_incident_comment (tenant_id {tenant}, incident \"{incident}\") with the findings and any action taken"),
                    None => "a written summary of the findings and any action taken".to_string(),
                };
                format!(
                    "Investigate device {device} in tenant {tenant}. Read first; contain only with the person's explicit confirmation of the exact device.\n\
                     1. mde_list_machines (tenant_id {tenant}, filter \"startswith(computerDnsName,'{device}')\") to find its machine id, unless {device} already is one; then mde_get_machine: \
                     OS, health, risk, exposure, last seen, IPs, device group, tags.\n\
                     2. mde_get_logged_on_users: who uses it.\n\
                     3. mde_list_alerts for the machine, and mde_get_alert for each recent one: what Defender saw.\n\
                     4. mde_run_hunting_query over the last day, e.g. DeviceProcessEvents | where DeviceName startswith '{device}' | summarize count() by FileName, ProcessCommandLine | top 20 by count_; \
                     DeviceNetworkEvents | where DeviceName startswith '{device}' | summarize count() by RemoteIP, RemotePort | top 20 by count_; \
                     DeviceLogonEvents | where DeviceName startswith '{device}' | summarize count() by AccountName, LogonType, ActionType.\n\
                     5. For suspicious hashes, IPs and domains found: mde_get_file_info, mde_get_ip_info, mde_get_domain_info.\n\
                     6. mde_list_machine_actions for the machine: earlier isolations, scans or packages.\n\
                     7. Sentinel's view: sentinel_run_query (tenant_id {tenant}) with SecurityEvent | where Computer has '{device}' | summarize count() by EventID, Activity, and Heartbeat | where Computer has '{device}' | summarize max(TimeGenerated).\n\
                     Then summarise: what happened, since when, which accounts and remote addresses are involved, and the risk. Recommend response actions. \
                     Only after the person confirms the device and the action: mde_isolate_machines (Selective keeps Outlook and Teams working; Full cuts everything), \
                     mde_run_antivirus_scan, mde_collect_investigation_package (then mde_get_investigation_package_uri), mde_stop_and_quarantine_file for a confirmed malicious file, \
                     mde_add_indicators to block confirmed indicators tenant-wide; follow each with mde_get_machine_action until it completes. \
                     Finally, {record}."
                )
            },
        })
}

fn argument<'a>(arguments: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    arguments.get(name).map(|v| v.trim()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::config::JobsConfig;
    use crate::mcp::{Catalogue, CatalogueFilter};
    use crate::testing::Harness;

    fn render(name: &str, arguments: &[(&str, &str)]) -> String {
        let catalogue = register(Catalogue::builder())
            .build(CatalogueFilter::default())
            .expect("the prompts build");
        let prompt = catalogue.prompt(name).expect("registered");
        let arguments: BTreeMap<String, String> = arguments
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        (prompt.render)(&arguments)
    }

    const TENANT: &str = "11111111-1111-4111-8111-111111111111";

    #[test]
    fn the_health_report_covers_the_tenant_named_or_else_every_tenant() {
        let one = render(
            "sentinel-health-report",
            &[("tenant_id", &format!(" {TENANT} "))],
        );
        assert!(
            one.contains(&format!(
                "sentinel_health_check with tenant_id {TENANT} and depth \"detailed\""
            )),
            "{one}"
        );
        assert!(!one.contains("scope \"all\""));
        for arguments in [&[][..], &[("tenant_id", "  ")][..]] {
            let all = render("sentinel-health-report", arguments);
            assert!(
                all.contains("sentinel_health_check with scope \"all\" and depth \"detailed\""),
                "{arguments:?}: {all}"
            );
            assert!(!all.contains("tenant_id"), "{all}");
        }
    }

    #[test]
    fn optional_arguments_appear_only_when_given() {
        let plain = render(
            "incident-triage",
            &[("tenant_id", TENANT), ("incident", "4711")],
        );
        assert!(
            plain.contains(&format!("incident 4711 (tenant_id {TENANT})")),
            "{plain}"
        );
        assert!(!plain.contains("workspace \""), "{plain}");
        let named = render(
            "incident-triage",
            &[
                ("tenant_id", TENANT),
                ("incident", "4711"),
                ("workspace", "law-contoso-dev"),
            ],
        );
        assert!(
            named.contains(&format!(
                "(tenant_id {TENANT}, workspace \"law-contoso-dev\")"
            )),
            "{named}"
        );
        let blank = render(
            "incident-triage",
            &[
                ("tenant_id", TENANT),
                ("incident", "4711"),
                ("workspace", " "),
            ],
        );
        assert_eq!(blank, plain, "a blank workspace is none");

        let recorded = render(
            "device-investigation",
            &[
                ("tenant_id", TENANT),
                ("device", "ws-fin-014"),
                ("incident", "4711"),
            ],
        );
        assert!(
            recorded.contains(&format!(
                "sentinel_add_incident_comment (tenant_id {TENANT}, incident \"4711\")"
            )),
            "{recorded}"
        );
        let unrecorded = render(
            "device-investigation",
            &[("tenant_id", TENANT), ("device", "ws-fin-014")],
        );
        assert!(
            !unrecorded.contains("sentinel_add_incident_comment")
                && unrecorded.contains("a written summary of the findings"),
            "{unrecorded}"
        );
        assert!(unrecorded.contains("startswith(computerDnsName,'ws-fin-014')"));
    }

    /// Tool names the text mentions: words of the tool families' prefixes.
    fn tools_named(text: &str) -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| {
                ["mde_", "sentinel_", "hunt_", "job_", "tenants_"]
                    .iter()
                    .any(|prefix| word.starts_with(prefix))
            })
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn every_tool_a_prompt_sends_the_model_to_exists_with_the_arguments_it_names() {
        let harness = Harness::start().await;
        let jobs = JobsConfig {
            container: "jobs".into(),
            powershell_queue: "powershell-jobs".into(),
            manifest_refresh: Duration::from_secs(60),
            deadline: Duration::from_secs(600),
            operations_queue: None,
            operation_lease: Duration::from_secs(60),
            operation_inline: Duration::from_secs(5),
            operation_slice: Duration::from_secs(60),
        };
        let catalogue = crate::tools::catalogue(
            CatalogueFilter::default(),
            &harness.context.services,
            &jobs,
            |builder| builder,
        )
        .expect("the catalogue builds");
        let arguments: BTreeMap<String, String> = [
            ("tenant_id", TENANT),
            ("incident", "4711"),
            ("workspace", "law-contoso-sentinel"),
            ("device", "ws-fin-014"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut named = BTreeSet::new();
        for prompt in catalogue.prompts() {
            let text = (prompt.render)(&arguments);
            for tool in tools_named(&text) {
                assert!(
                    catalogue.get_tool(&tool).is_some(),
                    "prompt {} names {tool}, which is no tool",
                    prompt.name
                );
                named.insert(tool);
            }
        }
        assert!(named.len() > 20, "{named:?}");

        // The arguments the prompts tell the model to pass, as the prompts spell them.
        for (tool, argument) in [
            ("sentinel_health_check", "tenant_id"),
            ("sentinel_health_check", "depth"),
            ("sentinel_health_check", "scope"),
            ("sentinel_list_incidents", "status"),
            ("sentinel_list_incidents", "order_by"),
            ("sentinel_list_incidents", "limit"),
            ("sentinel_list_incidents", "since"),
            ("sentinel_get_incident", "incident"),
            ("sentinel_run_query", "timespan"),
            ("sentinel_run_query", "max_rows"),
            ("mde_list_machines", "filter"),
        ] {
            let definition = catalogue.get_tool(tool).expect("a tool");
            let schema = serde_json::to_value(&definition.input_schema).expect("a schema");
            assert!(
                schema["properties"].get(argument).is_some(),
                "{tool} has no argument {argument}"
            );
        }
    }
}
