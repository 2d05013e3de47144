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
                "Releases devices from network isolation through Defender for Endpoint: their full network \
                          connectivity comes back once the device receives the action (usually within minutes)."
            ),
            toolset: Toolset::Defender,
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
                "Contains devices that are NOT onboarded to Defender for Endpoint (unmanaged devices Defender \
                          discovered on the network): every onboarded device stops communicating with them until \
                          mde_uncontain_devices. Each device is looked up first and an onboarded one is refused (the \
                          same Defender call would fully isolate it); isolate those with mde_isolate_machines."
            ),
            toolset: Toolset::Defender,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        },
        request: || ActionRequest::Contain,
    };

    const UNCONTAIN: Self = Self {
        spec: ToolSpec {
            name: "mde_uncontain_devices",
            title: "Release contained devices",
            description: targets!(
                "Lifts the containment of unmanaged devices (set by mde_contain_devices): onboarded devices may \
                          communicate with them again. Sent as Defender's release from isolation, which its API pages \
                          document for isolation only, not for containment."
            ),
            toolset: Toolset::Defender,
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
                "Restricts devices to running only files signed by Microsoft (a Defender code-integrity policy): \
                          any other application, including line-of-business software, is blocked from starting until \
                          mde_unrestrict_app_execution. The user sees a notification."
            ),
            toolset: Toolset::Defender,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        },
        request: || ActionRequest::RestrictCodeExecution,
    };

    const UNRESTRICT: Self = Self {
        spec: ToolSpec {
            name: "mde_unrestrict_app_execution",
            title: "Remove app execution restriction",
            description: targets!(
                "Removes the app execution restriction set by mde_restrict_app_execution: devices may run \
                          applications not signed by Microsoft again."
            ),
            toolset: Toolset::Defender,
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
                "Collects a forensic investigation package from each device (running processes, services, \
                          autoruns, scheduled tasks, network connections, event logs, installed software, ...); the \
                          device is not changed. When an action has succeeded, mde_get_investigation_package_uri gives \
                          a download link."
            ),
            toolset: Toolset::Defender,
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
                "Offboards devices from Defender for Endpoint: their sensor stops reporting, and from then on \
                          they have no EDR detection, no response actions and no hunting data. It cannot be undone \
                          through the API: bringing a device back needs the onboarding package run on it."
            ),
            toolset: Toolset::Defender,
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

    fn request(&self, _options: NoOptions) -> Result<ActionRequest, ToolError> {
        Ok((self.request)())
    }
}

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
                "Isolates onboarded devices from the network through Defender for Endpoint. Full isolation \
                          blocks all traffic except the Defender connection: the user loses network access, including \
                          remote sessions and file shares. Selective keeps Outlook, Teams and Skype for Business \
                          working. Devices stay isolated until mde_unisolate_machines. For devices not onboarded use \
                          mde_contain_devices."
            ),
            toolset: Toolset::Defender,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: IsolateOptions) -> Result<ActionRequest, ToolError> {
        Ok(ActionRequest::Isolate(match options.isolation_type {
            IsolationScope::Full => IsolationType::Full,
            IsolationScope::Selective => IsolationType::Selective,
        }))
    }
}

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
                "Starts a Microsoft Defender Antivirus scan on each device, Quick (default) or Full. What it \
                          finds is handled by the device's antivirus policy (threats are usually quarantined) and \
                          reported as alerts."
            ),
            toolset: Toolset::Defender,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: ScanOptions) -> Result<ActionRequest, ToolError> {
        Ok(ActionRequest::RunAntiVirusScan(match options.scan_type {
            ScanKind::Quick => ScanType::Quick,
            ScanKind::Full => ScanType::Full,
        }))
    }
}

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
                "On each device, kills every running process of the file with this SHA-1 and moves the file to \
                          quarantine wherever Defender finds it, so it cannot run again (it can be restored from \
                          quarantine). Does not work for files signed by Microsoft or protected system files."
            ),
            toolset: Toolset::Defender,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        }
    }

    fn request(&self, options: StopAndQuarantineOptions) -> Result<ActionRequest, ToolError> {
        let sha1 = lowercase_hex(&options.sha1, &[40]).ok_or_else(|| {
            ToolError::invalid(format!(
                "sha1 '{}' is not a SHA-1: expected 40 hexadecimal characters (Defender accepts no SHA-256 or MD5 here)",
                options.sha1.trim().chars().take(80).collect::<String>()
            ))
        })?;
        Ok(ActionRequest::StopAndQuarantineFile { sha1 })
    }
}
