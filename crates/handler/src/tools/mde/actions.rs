//! Response actions on devices: isolation, containment, app restriction, antivirus scans,
//! investigation packages, stop-and-quarantine and offboarding. Every one targets devices the
//! same way (see `bulk`), returns at once with one action per device, and never sends an action
//! twice.

use schemars::JsonSchema;
use serde::Deserialize;

use super::bulk::{Bulk, DeviceAction, NoOptions};
use crate::clients::defender::{ActionRequest, IsolationType, ScanType, lowercase_hex};
use crate::mcp::{CatalogueBuilder, Effect, Tier, ToolError, ToolSpec, Toolset};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(Bulk(Isolate))
        .tool(Bulk(Simple::UNISOLATE))
        .tool(Bulk(Simple::CONTAIN))
        .tool(Bulk(Simple::UNCONTAIN))
        .tool(Bulk(Simple::RESTRICT))
        .tool(Bulk(Simple::UNRESTRICT))
        .tool(Bulk(Scan))
        .tool(Bulk(Simple::COLLECT_PACKAGE))
        .tool(Bulk(StopAndQuarantine))
        .tool(Bulk(Simple::OFFBOARD))
}

/// An action whose only input is the targets.
#[derive(Clone)]
struct Simple {
    spec: ToolSpec,
    request: fn() -> ActionRequest,
}

impl Simple {
    const UNISOLATE: Self = Self {
        spec: ToolSpec {
            name: "mde_unisolate_machines",
            title: "Release devices from isolation",
            description: targets!(
                "Releases devices from network isolation; connectivity returns within minutes."
            ),
            toolset: Toolset::Response,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        },
        request: || ActionRequest::Unisolate,
    };

    const CONTAIN: Self = Self {
        spec: ToolSpec {
            name: "mde_contain_devices",
            title: "Contain unmanaged devices",
            description: targets!(
                "Contains unmanaged devices (NOT onboarded, discovered on the network): onboarded devices stop \
                          talking to them until mde_uncontain_devices. Onboarded devices are refused (use \
                          mde_isolate_machines)."
            ),
            toolset: Toolset::Response,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        },
        request: || ActionRequest::Contain,
    };

    const UNCONTAIN: Self = Self {
        spec: ToolSpec {
            name: "mde_uncontain_devices",
            title: "Release contained devices",
            description: targets!("Lifts the containment set by mde_contain_devices."),
            toolset: Toolset::Response,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        },
        request: || ActionRequest::Unisolate,
    };

    const RESTRICT: Self = Self {
        spec: ToolSpec {
            name: "mde_restrict_app_execution",
            title: "Restrict app execution",
            description: targets!(
                "Lets devices run only Microsoft-signed files: every other application (line-of-business too) is \
                          blocked until mde_unrestrict_app_execution."
            ),
            toolset: Toolset::Response,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        },
        request: || ActionRequest::RestrictCodeExecution,
    };

    const UNRESTRICT: Self = Self {
        spec: ToolSpec {
            name: "mde_unrestrict_app_execution",
            title: "Remove app execution restriction",
            description: targets!("Removes the restriction set by mde_restrict_app_execution."),
            toolset: Toolset::Response,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        },
        request: || ActionRequest::UnrestrictCodeExecution,
    };

    const COLLECT_PACKAGE: Self = Self {
        spec: ToolSpec {
            name: "mde_collect_investigation_package",
            title: "Collect investigation packages",
            description: targets!(
                "Collects a forensic investigation package (processes, services, autoruns, connections, event \
                          logs, ...) from each device without changing it; then mde_get_investigation_package_uri."
            ),
            toolset: Toolset::Response,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        },
        request: || ActionRequest::CollectInvestigationPackage,
    };

    const OFFBOARD: Self = Self {
        spec: ToolSpec {
            name: "mde_offboard_machines",
            title: "Offboard devices",
            description: targets!(
                "Offboards devices: no more EDR detection, response or hunting data. Cannot be undone through the \
                          API (the onboarding package must be run on the device)."
            ),
            toolset: Toolset::Response,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Admin,
        },
        request: || ActionRequest::Offboard,
    };
}

impl DeviceAction for Simple {
    type Options = NoOptions;

    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn request(&self, _options: &NoOptions) -> Result<ActionRequest, ToolError> {
        Ok((self.request)())
    }
}

#[derive(Clone)]
struct Isolate;

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
enum IsolationScope {
    /// All network traffic is blocked except the device's connection to Defender.
    #[default]
    Full,
    /// Like Full, but Outlook, Teams and Skype for Business keep working so the user can be reached.
    Selective,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IsolateOptions {
    /// Full (default) or Selective.
    #[serde(default)]
    isolation_type: IsolationScope,
}

impl DeviceAction for Isolate {
    type Options = IsolateOptions;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_isolate_machines",
            title: "Isolate devices",
            description: targets!(
                "Isolates onboarded devices from the network (only the Defender connection stays; Selective also \
                          keeps Outlook and Teams) until mde_unisolate_machines. Unmanaged devices: mde_contain_devices."
            ),
            toolset: Toolset::Response,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: &IsolateOptions) -> Result<ActionRequest, ToolError> {
        Ok(ActionRequest::Isolate(match options.isolation_type {
            IsolationScope::Full => IsolationType::Full,
            IsolationScope::Selective => IsolationType::Selective,
        }))
    }
}

#[derive(Clone)]
struct Scan;

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
enum ScanKind {
    /// Memory, startup locations and common malware folders: minutes.
    #[default]
    Quick,
    /// Every file on every fixed disk: can take hours and uses noticeable CPU and disk.
    Full,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScanOptions {
    /// Quick (default) or Full.
    #[serde(default)]
    scan_type: ScanKind,
}

impl DeviceAction for Scan {
    type Options = ScanOptions;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_run_antivirus_scan",
            title: "Run antivirus scans",
            description: targets!(
                "Starts a Defender Antivirus scan (Quick or Full); findings follow the antivirus policy and raise alerts."
            ),
            toolset: Toolset::Response,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: &ScanOptions) -> Result<ActionRequest, ToolError> {
        Ok(ActionRequest::RunAntiVirusScan(match options.scan_type {
            ScanKind::Quick => ScanType::Quick,
            ScanKind::Full => ScanType::Full,
        }))
    }
}

#[derive(Clone)]
struct StopAndQuarantine;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StopAndQuarantineOptions {
    /// SHA-1 of the file (40 hexadecimal characters). Defender only accepts SHA-1 here.
    sha1: String,
}

impl DeviceAction for StopAndQuarantine {
    type Options = StopAndQuarantineOptions;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_stop_and_quarantine_file",
            title: "Stop and quarantine a file",
            description: targets!(
                "Kills the file's processes and quarantines the file (by SHA-1) on each device; restorable. Not for \
                          Microsoft-signed or protected system files."
            ),
            toolset: Toolset::Response,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: &StopAndQuarantineOptions) -> Result<ActionRequest, ToolError> {
        let sha1 = lowercase_hex(&options.sha1, &[40]).ok_or_else(|| {
            ToolError::invalid(format!(
                "sha1 '{}' is not a SHA-1: expected 40 hexadecimal characters (Defender accepts no SHA-256 or MD5 here)",
                options.sha1.trim().chars().take(80).collect::<String>()
            ))
        })?;
        Ok(ActionRequest::StopAndQuarantineFile { sha1 })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::Harness;

    fn ids(devices: &Value) -> Vec<String> {
        devices
            .as_array()
            .expect("devices")
            .iter()
            .map(|device| device["machine_id"].as_str().expect("id").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_preview_names_the_devices_and_a_scan_reaches_each_once() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        // More Windows 11 devices match than two: refused, even as a preview, naming the limit.
        let message = harness
            .refusal(
                &Bulk(Scan),
                json!({"tenant_id": tenant, "filter": "osPlatform eq 'Windows11'", "max_devices": 2,
                       "preview": true}),
            )
            .await;
        assert!(
            message.contains("more than max_devices (2)") && message.contains("nothing was done"),
            "{message}"
        );

        let listed = harness
            .ok(
                &Bulk(Scan),
                json!({"tenant_id": tenant, "filter": "osPlatform eq 'Windows11'", "max_devices": 1000,
                       "preview": true}),
            )
            .await;
        let targets: Vec<String> = ids(&listed["resolved_devices"])
            .into_iter()
            .take(2)
            .collect();
        assert_eq!(targets.len(), 2, "{listed}");
        assert_eq!(listed["preview"], true);
        assert!(listed["results"].as_array().expect("results").is_empty());
        assert_eq!(
            harness
                .sandbox
                .stats()
                .count("POST", "/defender/api/machines/{id}/{sub}"),
            0,
            "a preview sends nothing"
        );

        let done = harness
            .ok(
                &Bulk(Scan),
                json!({"tenant_id": tenant, "machine_ids": targets, "scan_type": "Full",
                       "comment": "INC-7 sweep", "wait_seconds": 10}),
            )
            .await;
        assert_eq!(ids(&done["results"]), targets, "{done}");
        for result in done["results"].as_array().expect("results") {
            assert!(result["action_id"].is_string(), "{result}");
        }
        assert_eq!(done["operation_state"], "succeeded", "{done}");
        assert_eq!(
            harness
                .sandbox
                .stats()
                .count("POST", "/defender/api/machines/{id}/{sub}"),
            2,
            "one scan per device, none sent twice"
        );
    }

    #[tokio::test]
    async fn options_are_checked_before_anything_is_sent() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let message = harness
            .refusal(
                &Bulk(StopAndQuarantine),
                json!({"tenant_id": tenant, "machine_ids": ["a".repeat(40)], "sha1": sha256,
                       "comment": "INC-7"}),
            )
            .await;
        assert!(
            message.contains("is not a SHA-1") && message.contains("40 hexadecimal"),
            "{message}"
        );
        let message = harness
            .refusal(
                &Bulk(Scan),
                json!({"tenant_id": tenant, "machine_ids": ["a".repeat(40)], "scan_type": "Deep",
                       "comment": "INC-7"}),
            )
            .await;
        assert!(
            message.contains("Deep") && message.contains("Quick"),
            "{message}"
        );
        let message = harness
            .refusal(
                &Bulk(Isolate),
                json!({"tenant_id": tenant, "machine_ids": ["a".repeat(40)]}),
            )
            .await;
        assert!(message.contains("comment"), "{message}");
    }
}
