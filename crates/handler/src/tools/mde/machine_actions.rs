//! Machine actions: what response actions are pending, running or done, their cancellation,
//! and the investigation packages they produce.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bulk::{MAX_WAIT_SECONDS, POLL_INTERVAL};
use super::common;
use crate::clients::Open;
use crate::clients::defender::{
    ActionFilter, ActionId, ActionStatus, ActionType, MachineAction, MachineId, is_settled,
};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;
use crate::tools::args::{Fields, Limit, Since, When};
use crate::tools::cursor;
use crate::tools::rows::{self, ListRow, Row, Rows};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListActions)
        .tool(GetAction)
        .tool(CancelAction)
        .tool(PackageUri)
}

impl ListRow for MachineAction {
    // What was done to which device, where it stands, who asked and why.
    const COMPACT: &'static [&'static str] = &[
        "id",
        "type",
        "status",
        "machineId",
        "computerDnsName",
        "requestor",
        "requestorComment",
        "creationDateTimeUtc",
    ];
    const FREE_TEXT: &'static [&'static str] = &["requestorComment", "cancellationComment"];
    const GET_TOOL: Option<&'static str> = Some("mde_get_machine_action");
}

struct ListActions;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListActionsParams {
    tenant_id: Option<TenantId>,
    /// Only actions on this device (Defender machine id).
    machine_id: Option<MachineId>,
    /// Only actions of this type.
    #[serde(rename = "type")]
    action_type: Option<ActionType>,
    /// Only actions in this status.
    status: Option<ActionStatus>,
    /// Only actions created at or after this time.
    since: Option<When<Since>>,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<25, 500>,
    cursor: Option<String>,
    /// Extra fields, e.g. ["lastUpdateDateTimeUtc", "commands"], or ["all"].
    /// mde_get_machine_action gives one action whole.
    fields: Option<Fields<MachineAction>>,
}

#[derive(Serialize, JsonSchema)]
struct ListActionsOutput {
    tenant_id: TenantId,
    actions: Vec<Row<MachineAction>>,
    /// Which free-text fields were cut short, and where to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    /// Present when more actions match: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for ListActionsOutput {
    fn summary(&self) -> String {
        let pending = self
            .actions
            .iter()
            .filter_map(|a| a.get("status")?.as_str())
            .filter(|status| !is_settled(&Open::reported(*status)))
            .count();
        let more = cursor::more_note(self.next_cursor.as_ref());
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} machine actions in tenant {} ({pending} pending or in progress){more}{cut}",
            self.actions.len(),
            self.tenant_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListActions {
    type Params = ListActionsParams;
    type Output = ListActionsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_list_machine_actions",
            title: "List machine actions",
            description: "Lists Defender response actions (isolation, scans, live response...) with status, \
                         requestor and comment, filtered by device, type, status and creation time: check what is \
                         pending before acting again.",
            toolset: Toolset::Response,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListActionsParams,
    ) -> Result<ListActionsOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let limit = params.limit.get();
        let defender = &context.services.defender;
        let filtered = params.machine_id.is_some()
            || params.action_type.is_some()
            || params.status.is_some()
            || params.since.is_some();
        let position = common::list_position(
            &tenant,
            params.cursor.as_deref(),
            filtered,
            |position| defender.check_position(position),
            || {
                let filter = ActionFilter {
                    machine_id: params.machine_id.clone(),
                    action_type: params.action_type,
                    status: params.status,
                    since: params.since.as_ref().map(When::at),
                };
                Ok(defender.actions_start(&filter))
            },
        )?;
        let collected = defender.list_actions(&tenant, position, limit).await?;
        let next_cursor = collected
            .next
            .map(|position| cursor::encode(&tenant, position));
        let Rows { rows, cut } = rows::rows(collected.items, params.fields.as_ref());
        Ok(ListActionsOutput {
            tenant_id: tenant,
            actions: rows,
            cut,
            next_cursor,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ActionParams {
    tenant_id: Option<TenantId>,
    /// The machine action id (a GUID) a response action returned.
    action_id: ActionId,
}

#[derive(Serialize, JsonSchema)]
struct ActionOutput {
    tenant_id: TenantId,
    action: MachineAction,
    /// Whether the status can still change (Pending or InProgress).
    settled: bool,
}

impl Summary for ActionOutput {
    fn summary(&self) -> String {
        let a = &self.action;
        format!(
            "{} action {} on {}: {}",
            a.action_type,
            a.id,
            a.computer_dns_name
                .as_deref()
                .or(a.machine_id.as_deref())
                .unwrap_or("unknown device"),
            a.status
        )
    }
}

fn no_action(id: &ActionId, tenant: &TenantId) -> String {
    format!("no machine action {} in tenant {tenant}", id.as_str())
}

struct GetAction;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetActionParams {
    tenant_id: Option<TenantId>,
    /// The machine action id (a GUID) a response action returned.
    action_id: ActionId,
    /// Seconds (0-60) to wait for the action to finish, looking every 2 seconds; 0 or absent answers at once.
    wait_seconds: Option<u32>,
}

#[async_trait::async_trait]
impl Tool for GetAction {
    type Params = GetActionParams;
    type Output = ActionOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_machine_action",
            title: "Get a machine action",
            description: "Gets one Defender response action: type, device, status, requestor, comment, live \
                         response command status. wait_seconds (up to 60) waits for it to finish.",
            toolset: Toolset::Response,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: GetActionParams,
    ) -> Result<ActionOutput, ToolError> {
        let wait = params.wait_seconds.unwrap_or(0);
        if wait > MAX_WAIT_SECONDS {
            return Err(ToolError::invalid(format!(
                "wait_seconds must be between 0 and {MAX_WAIT_SECONDS}, got {wait}"
            )));
        }
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let until =
            Instant::now() + crate::deadline::wait_budget(Duration::from_secs(u64::from(wait)));
        let defender = &context.services.defender;
        let fetch = || async {
            defender
                .get_action(&tenant, &params.action_id)
                .await
                .map_err(|error| common::not_found(error, || no_action(&params.action_id, &tenant)))
        };
        let mut action = fetch().await?;
        while !is_settled(&action.status) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL.min(until - now)).await;
            action = fetch().await?;
        }
        let settled = is_settled(&action.status);
        Ok(ActionOutput {
            tenant_id: tenant,
            action,
            settled,
        })
    }
}

struct CancelAction;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CancelParams {
    tenant_id: Option<TenantId>,
    /// The machine action id (a GUID) to cancel.
    action_id: ActionId,
    /// Why it is cancelled; Defender records it with the action.
    comment: String,
}

#[async_trait::async_trait]
impl Tool for CancelAction {
    type Params = CancelParams;
    type Output = ActionOutput;

    fn spec(&self) -> ToolSpec {
        // cancel-machine-action.md: "Cancel an already launched machine action that isn't yet in
        // final state (completed, canceled, failed)".
        ToolSpec {
            name: "mde_cancel_machine_action",
            title: "Cancel a machine action",
            description: "Cancels a Defender response action still Pending or InProgress; a finished one is undone \
                         with its opposite (e.g. mde_unisolate_machines).",
            toolset: Toolset::Response,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: CancelParams,
    ) -> Result<ActionOutput, ToolError> {
        let comment = common::comment(Some(&params.comment))?;
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let action = context
            .services
            .defender
            .cancel_action(&tenant, &params.action_id, &comment)
            .await
            .map_err(|error| common::not_found(error, || no_action(&params.action_id, &tenant)))?;
        let settled = is_settled(&action.status);
        Ok(ActionOutput {
            tenant_id: tenant,
            action,
            settled,
        })
    }
}

struct PackageUri;

#[derive(Serialize, JsonSchema)]
struct PackageUriOutput {
    tenant_id: TenantId,
    action_id: String,
    /// A pre-signed download link to the package (a zip). It expires after a few minutes; do not store it.
    download_url: String,
}

impl Summary for PackageUriOutput {
    fn summary(&self) -> String {
        format!(
            "investigation package of action {} is ready to download (the link expires in minutes)",
            self.action_id
        )
    }
}

#[async_trait::async_trait]
impl Tool for PackageUri {
    type Params = ActionParams;
    type Output = PackageUriOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_investigation_package_uri",
            title: "Get an investigation package link",
            description: "Gets a short-lived download link to a succeeded mde_collect_investigation_package \
                         action's package (forensic data: share only with who needs it).",
            toolset: Toolset::Response,
            effect: Effect::Read,
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ActionParams,
    ) -> Result<PackageUriOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let download_url = context.services.defender.package_uri(&tenant, &params.action_id).await.map_err(|error| {
            common::not_found(error, || {
                format!(
                    "no package for action {}: the action does not exist in tenant {tenant}, or has not succeeded yet (check it with mde_get_machine_action)",
                    params.action_id.as_str()
                )
            })
        })?;
        Ok(PackageUriOutput {
            tenant_id: tenant,
            action_id: params.action_id.as_str().to_string(),
            download_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn finished_actions_are_listed_read_and_not_cancelled() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let listed = harness
            .ok(
                &ListActions,
                json!({"tenant_id": tenant, "status": "Succeeded", "limit": 3}),
            )
            .await;
        let actions = listed["actions"].as_array().expect("actions");
        assert!(
            !actions.is_empty(),
            "the sandbox has an action history: {listed}"
        );
        assert!(
            actions.iter().all(|a| a["status"] == "Succeeded"),
            "{listed}"
        );
        let id = actions[0]["id"].as_str().expect("id");

        let read = harness
            .ok(&GetAction, json!({"tenant_id": tenant, "action_id": id}))
            .await;
        assert_eq!(read["action"]["id"], json!(id), "{read}");

        let message = harness
            .refusal(
                &CancelAction,
                json!({"tenant_id": tenant, "action_id": id, "comment": "INC-7 mistaken"}),
            )
            .await;
        assert!(message.to_lowercase().contains("succeeded"), "{message}");
    }

    #[tokio::test]
    async fn unknown_actions_and_bad_waits_are_refused() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let unknown = "0b4c2c8e-66a8-4f3c-9b7a-1f2e3d4c5b6a";
        let message = harness
            .refusal(
                &GetAction,
                json!({"tenant_id": tenant, "action_id": unknown}),
            )
            .await;
        assert!(message.contains(unknown), "{message}");
        let message = harness
            .refusal(
                &GetAction,
                json!({"tenant_id": tenant, "action_id": unknown, "wait_seconds": 61}),
            )
            .await;
        assert!(message.contains("wait_seconds"), "{message}");
        let message = harness
            .refusal(&GetAction, json!({"tenant_id": tenant, "action_id": "42"}))
            .await;
        assert!(message.contains("42"), "{message}");
    }
}
