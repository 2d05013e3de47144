//! Response actions on many devices at once: one targeting model (explicit machine ids, or an
//! OData filter with a required cap and a preview), one runner, one per-device outcome.
//!
//! Each action is sent once per device and never again: a lost answer is reported as
//! unconfirmed, never re-sent (a second isolation request could act twice). The outbound
//! limiter paces the calls under Defender's per-tenant limits; devices the call's pacing budget
//! could not reach are returned as not started, with their ids, to pass to the next call.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::common;
use crate::approvals::{Change, Plan, PlanTarget};
use crate::clients::Open;
use crate::clients::defender::{
    ActionFilter, ActionRequest, ActionStatus, ActionType, DefenderClient, HealthStatus,
    MachineAction, MachineId, OnboardingStatus, is_settled,
};
use crate::jobs::operation::{TargetRecord, TargetState};
use crate::jobs::{JobRecord, JobState};
use crate::mcp::{Summary, Tool, ToolContext, ToolError, ToolSpec};
use crate::outbound::ApiError;
use crate::services::Services;
use crate::tenants::TenantId;

/// The most devices one call acts on.
pub const MAX_DEVICES: u32 = 1000;
/// The longest `wait_seconds`.
pub const MAX_WAIT_SECONDS: u32 = 60;
/// Per-device results one answer shows at most; job_get lists every device.
const MAX_RESULTS_SHOWN: usize = 100;
/// How often a wait looks at the actions again.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Action requests in flight at once; the limiter decides how fast they go out.
const CONCURRENCY: usize = 8;

/// Which devices an action targets, and how the call behaves. Shared by every device action.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targeting {
    pub tenant_id: Option<TenantId>,
    /// Defender machine ids (from mde_list_machines), or give filter.
    pub machine_ids: Option<Vec<MachineId>>,
    /// OData filter on mde_list_machines fields, e.g. `healthStatus eq 'Active'`; needs max_devices.
    pub filter: Option<String>,
    /// Most devices to act on (1-1000); if the filter matches more, nothing is done.
    pub max_devices: Option<u32>,
    /// true: only list the targeted devices; nothing is done.
    #[serde(default)]
    pub preview: bool,
    /// Why (incident, ticket); required unless preview, recorded by Defender.
    pub comment: Option<String>,
    /// Seconds (0-60) to wait for the actions to finish; absent returns once they are accepted.
    pub wait_seconds: Option<u32>,
}

const TARGETING_FIELDS: [&str; 7] = [
    "tenant_id",
    "machine_ids",
    "filter",
    "max_devices",
    "preview",
    "comment",
    "wait_seconds",
];

/// A device action's parameters: the shared targeting fields plus the action's own options,
/// flat in one object (serde's `flatten` cannot be combined with refusing unknown fields).
#[derive(Debug)]
pub struct ActionParams<O> {
    pub targeting: Targeting,
    pub options: O,
    /// The options as given, kept in the operation's record so any worker can rebuild them.
    pub raw_options: serde_json::Map<String, Value>,
}

impl<'de, O: DeserializeOwned> Deserialize<'de> for ActionParams<O> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let all = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let (shared, own): (
            serde_json::Map<String, Value>,
            serde_json::Map<String, Value>,
        ) = all
            .into_iter()
            .partition(|(key, _)| TARGETING_FIELDS.contains(&key.as_str()));
        let targeting = serde_json::from_value(Value::Object(shared)).map_err(D::Error::custom)?;
        let raw_options = own.clone();
        let options = serde_json::from_value(Value::Object(own)).map_err(|error| {
            D::Error::custom(format!(
                "{error} (besides the targeting fields {})",
                TARGETING_FIELDS.join(", ")
            ))
        })?;
        Ok(Self {
            targeting,
            options,
            raw_options,
        })
    }
}

impl<O: JsonSchema> JsonSchema for ActionParams<O> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}WithTargets", O::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = Targeting::json_schema(generator);
        let options = O::json_schema(generator);
        if let (Some(target), Some(extra)) = (schema.as_object_mut(), options.as_object()) {
            for key in ["properties", "required"] {
                match (target.get_mut(key), extra.get(key)) {
                    (Some(Value::Object(into)), Some(Value::Object(from))) => {
                        into.extend(from.clone())
                    }
                    (Some(Value::Array(into)), Some(Value::Array(from))) => {
                        into.extend(from.iter().cloned())
                    }
                    (None, Some(from)) => {
                        target.insert(key.to_string(), from.clone());
                    }
                    _ => {}
                }
            }
        }
        schema
    }
}

/// Options of an action that has none.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// One kind of device action: its spec and how its options become a Defender request.
pub trait DeviceAction: Clone + Send + Sync + 'static {
    type Options: DeserializeOwned + JsonSchema + Send + Sync + 'static;

    fn spec(&self) -> ToolSpec;

    fn request(&self, options: &Self::Options) -> Result<ActionRequest, ToolError>;
}

/// The tool for a [`DeviceAction`].
pub struct Bulk<A>(pub A);

#[async_trait::async_trait]
impl<A: DeviceAction> Tool for Bulk<A> {
    type Params = ActionParams<A::Options>;
    type Output = BulkOutput;

    fn spec(&self) -> ToolSpec {
        self.0.spec()
    }

    /// A preview, or a call of a tool that is not destructive (no plan is approved first).
    async fn call(
        &self,
        context: &ToolContext,
        params: Self::Params,
    ) -> Result<BulkOutput, ToolError> {
        self.0.request(&params.options)?;
        let prepared = prepare(context, &params.targeting)?;
        let targets = resolve(context, &prepared.tenant, &params.targeting).await?;
        if params.targeting.preview {
            let mut output = BulkOutput::new(prepared.tenant.clone(), self.0.spec().name);
            output.preview = true;
            output.resolved_devices = preview(context, &prepared.tenant, targets).await?;
            return Ok(output);
        }
        let targets = targets
            .into_iter()
            .map(|target| TargetRecord::new(target.id.as_str().to_owned(), target.name))
            .collect();
        self.operate(context, params, prepared, targets).await
    }

    fn target_action(
        &self,
        services: &Arc<Services>,
    ) -> Option<Arc<dyn crate::operations::TargetAction>> {
        Some(Arc::new(DeviceSender {
            action: self.0.clone(),
            services: Arc::downgrade(services),
        }))
    }

    /// The devices the call resolves to, each with its name, OS and health: what the person
    /// approving sees and what the approval covers.
    async fn plan(&self, context: &ToolContext, params: &Self::Params) -> Result<Plan, ToolError> {
        let spec = self.0.spec();
        let request = self.0.request(&params.options)?;
        let prepared = prepare(context, &params.targeting)?;
        let targets = resolve(context, &prepared.tenant, &params.targeting).await?;
        let devices = preview(context, &prepared.tenant, targets).await?;
        let change = change_of(&request);
        let targets = devices
            .into_iter()
            .map(|device| {
                let target = PlanTarget::new(
                    "device",
                    device.machine_id,
                    device.computer_dns_name,
                    Change::to(change.clone()),
                );
                if !device.found {
                    return target.fact("found", Some("no such device in the tenant"));
                }
                target
                    .fact("os", device.os_platform)
                    .fact("health", device.health_status.map(|s| s.to_string()))
                    .fact(
                        "onboarding",
                        device.onboarding_status.map(|s| s.to_string()),
                    )
            })
            .collect();
        let mut plan = Plan::action(format!("{}: {change}", spec.title)).with_targets(targets);
        if let Some(comment) = &prepared.comment {
            plan = plan.note(format!(
                "Comment Defender records with each action: {comment}"
            ));
        }
        if request == ActionRequest::Offboard {
            plan = plan.note("Offboarding cannot be undone through the API: the onboarding package must be run on each device.");
        }
        Ok(plan)
    }

    fn is_preview(&self, params: &Self::Params) -> bool {
        params.targeting.preview
    }

    /// Acts on exactly the devices of the approved plan, not on a new resolution of the filter,
    /// as a durable operation: the call answers with the outcomes if it finishes within
    /// `OPS_INLINE_SECONDS`, otherwise with the operation id while it carries on.
    async fn execute(
        &self,
        context: &ToolContext,
        params: Self::Params,
        plan: Plan,
    ) -> Result<BulkOutput, ToolError> {
        let prepared = prepare(context, &params.targeting)?;
        let targets = plan
            .targets
            .into_iter()
            .map(|target| {
                MachineId::try_from(target.id.clone())
                    .map_err(|error| ToolError::invalid(error.to_string()))?;
                Ok(TargetRecord::new(target.id, target.name))
            })
            .collect::<Result<Vec<_>, ToolError>>()?;
        self.operate(context, params, prepared, targets).await
    }
}

impl<A: DeviceAction> Bulk<A> {
    /// Sends the action to `targets` as a durable operation: the answer carries the outcomes if
    /// it finishes within `OPS_INLINE_SECONDS`, otherwise the operation id while it carries on.
    async fn operate(
        &self,
        context: &ToolContext,
        params: ActionParams<A::Options>,
        prepared: Prepared,
        targets: Vec<TargetRecord>,
    ) -> Result<BulkOutput, ToolError> {
        let request = self.0.request(&params.options)?;
        let Some(comment) = prepared.comment else {
            return Err(ToolError::invalid(
                "comment is required unless preview is true",
            ));
        };
        let started = Instant::now();
        let live = context
            .services
            .operations
            .start(
                self.0.spec().name,
                prepared.tenant.clone(),
                &context.caller.to_string(),
                params.raw_options,
                comment,
                targets,
            )
            .await
            .map_err(|error| ToolError::Storage(error.to_string()))?;
        let Some(record) = &live.record else {
            return Err(ToolError::Storage(
                "the operation was recorded but its run reported nothing".into(),
            ));
        };
        let mut record = record.clone();
        if prepared.wait > 0 && !record.state.is_final() && is_followed(&request) {
            // The operation follows the sessions itself; the call waits for its record (which
            // any instance may be writing) for what is left of wait_seconds.
            let left =
                Duration::from_secs(u64::from(prepared.wait)).saturating_sub(started.elapsed());
            if let Ok(waited) = context.services.jobs.wait(&record.job_id, left).await {
                record = waited;
            }
        }
        let mut output = BulkOutput::from_record(&record, self.0.spec().name);
        if let Some(error) = &live.error {
            output.notes.push(format!(
                "this server stopped running the operation: {error}. The outcomes shown are what it saw; a worker that \
                 takes the operation over reports the devices whose answers were not stored as unconfirmed and never \
                 sends them again"
            ));
        }
        if prepared.wait > 0 && record.state.is_final() {
            let until = started
                + crate::deadline::wait_budget(Duration::from_secs(u64::from(prepared.wait)));
            if let Err(error) = await_actions(
                context,
                &prepared.tenant,
                &request,
                &mut output.results,
                until,
            )
            .await
            {
                output
                    .notes
                    .push(format!("stopped waiting for the actions: {error}"));
            }
        }
        output.finish();
        Ok(output)
    }
}

/// What a device operation sends to one device, for whichever worker runs the operation.
struct DeviceSender<A> {
    action: A,
    /// Weak: the services hold the operations, which hold this.
    services: Weak<Services>,
}

#[async_trait::async_trait]
impl<A: DeviceAction> crate::operations::TargetAction for DeviceSender<A> {
    async fn send(
        &self,
        tenant: &TenantId,
        options: &serde_json::Map<String, Value>,
        comment: &str,
        target: TargetRecord,
    ) -> TargetRecord {
        let failed = |target: TargetRecord, detail: String| TargetRecord {
            state: TargetState::Failed,
            detail: Some(detail),
            ..target
        };
        let Some(services) = self.services.upgrade() else {
            return target; // shutting down: not sent, left for the next worker
        };
        let request = match self.request_of(options) {
            Ok(request) => request,
            Err(error) => {
                return failed(
                    target,
                    format!("the operation's options cannot be used: {error}"),
                );
            }
        };
        let id = match MachineId::try_from(target.id.clone()) {
            Ok(id) => id,
            Err(error) => return failed(target, error.to_string()),
        };
        let device = Target {
            id,
            name: target.name.clone(),
            listed: None,
        };
        let defender = &services.defender;
        if request == ActionRequest::Contain
            && let Some(refused) = onboarded(defender, tenant, &device).await
        {
            return refused.into_target();
        }
        let result = defender
            .start_action(tenant, &device.id, &request, comment)
            .await;
        let device = outcome(device, result);
        let running = device.outcome == Outcome::Done
            && device
                .action_status
                .as_ref()
                .is_some_and(|status| !is_settled(status));
        let mut target = device.into_target();
        if is_followed(&request) && running {
            target.state = TargetState::Running;
        }
        target
    }

    /// One listing of the action type's recent actions tells where each of them stands.
    async fn follow(
        &self,
        tenant: &TenantId,
        options: &serde_json::Map<String, Value>,
        targets: Vec<TargetRecord>,
    ) -> Vec<TargetRecord> {
        let Some(services) = self.services.upgrade() else {
            return targets;
        };
        let Ok(request) = self.request_of(options) else {
            return targets;
        };
        let created: Vec<DeviceOutcome> = targets.iter().map(DeviceOutcome::from_target).collect();
        let since = earliest_creation(&created);
        let statuses =
            match action_statuses(&services.defender, tenant, request.action_type(), since).await {
                Ok(statuses) => statuses,
                Err(error) => {
                    tracing::warn!(tenant = %tenant, "could not read the running actions: {error}");
                    return targets;
                }
            };
        targets
            .into_iter()
            .map(|mut target| {
                let Some(status) = target.reference.as_ref().and_then(|id| statuses.get(id)) else {
                    return target;
                };
                target.status = Some(status.to_string());
                if is_settled(status) {
                    if status.is(&ActionStatus::Succeeded) {
                        target.state = TargetState::Done;
                    } else {
                        target.state = TargetState::Failed;
                        target.detail = Some(format!(
                            "Defender ended the action {status} (mde_get_machine_action {} says more)",
                            target.reference.as_deref().unwrap_or_default()
                        ));
                    }
                }
                target
            })
            .collect()
    }
}

impl<A: DeviceAction> DeviceSender<A> {
    /// The request the operation's options make (the same for every target).
    fn request_of(
        &self,
        options: &serde_json::Map<String, Value>,
    ) -> Result<ActionRequest, String> {
        serde_json::from_value::<A::Options>(Value::Object(options.clone()))
            .map_err(|error| error.to_string())
            .and_then(|options| self.action.request(&options).map_err(|e| e.to_string()))
    }
}

/// Actions whose results are the point (a session's output, a collected package) are followed
/// until Defender ends them; the others (isolation, a scan) end for the operation when Defender
/// accepts them, as a device may take days to check in.
fn is_followed(request: &ActionRequest) -> bool {
    matches!(
        request,
        ActionRequest::LiveResponse(_) | ActionRequest::CollectInvestigationPackage
    )
}

/// Defender's status of each action of `action_type` created since `since`, by action id: one
/// listing, not one read per action.
async fn action_statuses(
    defender: &DefenderClient,
    tenant: &TenantId,
    action_type: ActionType,
    since: Option<OffsetDateTime>,
) -> Result<HashMap<String, Open<ActionStatus>>, ApiError> {
    let filter = ActionFilter {
        action_type: Some(action_type),
        since,
        ..ActionFilter::default()
    };
    let listed = defender
        .list_actions(tenant, defender.actions_start(&filter), 10_000)
        .await?;
    Ok(listed
        .items
        .into_iter()
        .map(|action| (action.id, action.status))
        .collect())
}

/// What happens to each device, in words a person approving reads.
fn change_of(request: &ActionRequest) -> String {
    match request {
        ActionRequest::Isolate(kind) => format!("isolated from the network ({kind:?})"),
        ActionRequest::Contain => "contained (onboarded devices stop talking to it)".into(),
        ActionRequest::Unisolate => "released from isolation".into(),
        ActionRequest::RestrictCodeExecution => "only Microsoft-signed applications may run".into(),
        ActionRequest::UnrestrictCodeExecution => "application restriction removed".into(),
        ActionRequest::RunAntiVirusScan(kind) => format!("antivirus scan ({kind:?})"),
        ActionRequest::CollectInvestigationPackage => "investigation package collected".into(),
        ActionRequest::StopAndQuarantineFile { sha1 } => {
            format!("processes of file {sha1} stopped, the file quarantined")
        }
        ActionRequest::Offboard => "offboarded (no more detection or response)".into(),
        ActionRequest::LiveResponse(commands) => {
            let commands: Vec<String> = commands
                .iter()
                .map(|command| format!("{command:?}"))
                .collect();
            format!("live response as SYSTEM: {}", commands.join("; "))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Defender accepted the action; see action_id and action_status.
    Done,
    /// The same kind of action is already pending or running on this device; nothing new was started.
    AlreadyPending,
    /// Defender refused the action for this device (detail says why).
    Failed,
    /// The request was sent but its answer was lost; it may have been carried out and was not repeated.
    Unconfirmed,
    /// Not sent yet: a running operation still sends it; one that ended (cancelled) never will.
    NotStarted,
    /// Its request is in flight; the operation records the answer (job_get shows it).
    Sending,
    /// Accepted, and Defender is still carrying it out (a live response session, a package
    /// collection); the operation follows it until it ends.
    Running,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeviceOutcome {
    pub machine_id: String,
    pub computer_dns_name: Option<String>,
    pub outcome: Outcome,
    pub action_id: Option<String>,
    /// Pending, InProgress, Succeeded, Failed, TimeOut or Cancelled, as last seen.
    pub action_status: Option<Open<ActionStatus>>,
    pub detail: Option<String>,
    /// Defender's creation time of the action, to bound the listing a wait polls.
    #[serde(skip)]
    #[schemars(skip)]
    pub created: Option<OffsetDateTime>,
}

impl DeviceOutcome {
    fn from_target(target: &TargetRecord) -> Self {
        Self {
            machine_id: target.id.clone(),
            computer_dns_name: target.name.clone(),
            outcome: match target.state {
                TargetState::NotStarted => Outcome::NotStarted,
                TargetState::Sending => Outcome::Sending,
                TargetState::Running => Outcome::Running,
                TargetState::Done => Outcome::Done,
                TargetState::AlreadyPending => Outcome::AlreadyPending,
                TargetState::Failed => Outcome::Failed,
                TargetState::Unconfirmed => Outcome::Unconfirmed,
            },
            action_id: target.reference.clone(),
            action_status: target.status.as_deref().map(Open::reported),
            detail: target.detail.clone(),
            created: target.created,
        }
    }

    fn into_target(self) -> TargetRecord {
        TargetRecord {
            id: self.machine_id,
            name: self.computer_dns_name,
            state: match self.outcome {
                Outcome::NotStarted => TargetState::NotStarted,
                Outcome::Sending => TargetState::Sending,
                Outcome::Running => TargetState::Running,
                Outcome::Done => TargetState::Done,
                Outcome::AlreadyPending => TargetState::AlreadyPending,
                Outcome::Failed => TargetState::Failed,
                Outcome::Unconfirmed => TargetState::Unconfirmed,
            },
            reference: self.action_id,
            status: self.action_status.map(|status| status.to_string()),
            detail: self.detail,
            created: self.created,
        }
    }
}

/// A device as resolved for a preview.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ResolvedDevice {
    pub machine_id: String,
    pub computer_dns_name: Option<String>,
    pub os_platform: Option<String>,
    pub health_status: Option<Open<HealthStatus>>,
    pub onboarding_status: Option<Open<OnboardingStatus>>,
    /// false when an explicit machine id does not exist in the tenant.
    pub found: bool,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct OutcomeCounts {
    pub running: usize,
    pub done: usize,
    pub sending: usize,
    pub already_pending: usize,
    pub failed: usize,
    pub unconfirmed: usize,
    pub not_started: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BulkOutput {
    pub tenant_id: TenantId,
    pub tool: String,
    pub preview: bool,
    /// The durable operation sending the actions: job_get shows it, job_cancel stops it.
    pub operation_id: Option<String>,
    /// running (it goes on in the background), succeeded (every device has its outcome),
    /// cancelled or dead_lettered.
    pub operation_state: Option<JobState>,
    /// Preview only: the devices the action would target.
    pub resolved_devices: Vec<ResolvedDevice>,
    /// One entry per targeted device (empty in a preview).
    pub results: Vec<DeviceOutcome>,
    pub counts: OutcomeCounts,
    /// Devices a finished operation did not send (it was cancelled): pass them as machine_ids to act on them.
    pub remaining_machine_ids: Vec<String>,
    /// What to do next, when something needs attention.
    pub notes: Vec<String>,
}

impl BulkOutput {
    fn new(tenant_id: TenantId, tool: &str) -> Self {
        Self {
            tenant_id,
            tool: tool.to_string(),
            preview: false,
            operation_id: None,
            operation_state: None,
            resolved_devices: Vec::new(),
            results: Vec::new(),
            counts: OutcomeCounts::default(),
            remaining_machine_ids: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The operation as its record stands: the outcomes so far, one per device.
    fn from_record(record: &JobRecord, tool: &str) -> Self {
        let mut output = Self::new(record.tenant_id.clone(), tool);
        output.operation_id = Some(record.job_id.to_string());
        output.operation_state = Some(record.state);
        if let Some(operation) = &record.operation {
            output.results = operation
                .targets
                .iter()
                .map(DeviceOutcome::from_target)
                .collect();
        }
        output
    }

    /// Counts the outcomes and says what needs attention. Devices not sent yet are still being
    /// sent by a running operation; only a final one leaves them for a new call.
    fn finish(&mut self) {
        let running = self.operation_state.is_some_and(|state| !state.is_final());
        let counts = &mut self.counts;
        for device in &self.results {
            match device.outcome {
                Outcome::Done => counts.done += 1,
                Outcome::AlreadyPending => counts.already_pending += 1,
                Outcome::Failed => counts.failed += 1,
                Outcome::Unconfirmed => counts.unconfirmed += 1,
                Outcome::Sending => counts.sending += 1,
                Outcome::Running => counts.running += 1,
                Outcome::NotStarted => {
                    counts.not_started += 1;
                    if !running {
                        self.remaining_machine_ids.push(device.machine_id.clone());
                    }
                }
            }
        }
        if let (true, Some(id)) = (running, &self.operation_id) {
            let sent = self.results.len() - counts.not_started - counts.sending;
            self.notes.push(if sent == self.results.len() && counts.running > 0 {
                format!(
                    "every device was sent; the operation follows the {} still running in Defender until they end; \
                     follow it with job_get (job_id {id}); do not call this tool again for these devices",
                    counts.running
                )
            } else {
                format!(
                    "the operation goes on in the background ({sent} of {} devices sent so far, paced under Defender's \
                     limits); follow it with job_get (job_id {id}); do not call this tool again for these devices",
                    self.results.len()
                )
            });
        } else if counts.not_started > 0 {
            self.notes.push(format!(
                "{} devices were not sent because the operation ended first (see job_get); call the tool again with \
                 machine_ids = remaining_machine_ids to act on them",
                counts.not_started
            ));
        }
        if counts.unconfirmed > 0 {
            self.notes.push(format!(
                "{} requests got no answer and were not repeated; check mde_list_machine_actions for those devices before retrying",
                counts.unconfirmed
            ));
        }
        if self.results.len() > MAX_RESULTS_SHOWN {
            // Problems first, so what needs attention is never cut off.
            self.results
                .sort_by_key(|device| device.outcome == Outcome::Done);
            self.results.truncate(MAX_RESULTS_SHOWN);
            self.notes.push(format!(
                "results shows {MAX_RESULTS_SHOWN} of the devices (those needing attention first); job_get lists every device"
            ));
        }
    }
}

impl Summary for BulkOutput {
    fn summary(&self) -> String {
        if self.preview {
            return format!(
                "preview of {}: {} devices would be targeted in tenant {}; nothing was done",
                self.tool,
                self.resolved_devices.len(),
                self.tenant_id
            );
        }
        let c = &self.counts;
        let mut text = format!(
            "{} on {} devices in tenant {}: {}{} done, {} already pending, {} failed, {} unconfirmed, {} not started",
            self.tool,
            c.running
                + c.done
                + c.already_pending
                + c.failed
                + c.unconfirmed
                + c.sending
                + c.not_started,
            self.tenant_id,
            if c.running > 0 {
                format!("{} running in Defender, ", c.running)
            } else {
                String::new()
            },
            c.done,
            c.already_pending,
            c.failed,
            c.unconfirmed,
            c.not_started
        );
        for note in &self.notes {
            text.push_str("; ");
            text.push_str(note);
        }
        text
    }
}

struct Target {
    id: MachineId,
    name: Option<String>,
    /// What a listing already said about the device, so that planning need not read it again
    /// (every read counts against Defender's per-tenant machine quota).
    listed: Option<ResolvedDevice>,
}

/// A call's checked settings: how long to wait, the comment (none in a preview) and the tenant.
struct Prepared {
    wait: u32,
    comment: Option<String>,
    tenant: TenantId,
}

fn prepare(context: &ToolContext, targeting: &Targeting) -> Result<Prepared, ToolError> {
    let wait = targeting.wait_seconds.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ToolError::invalid(format!(
            "wait_seconds must be between 0 and {MAX_WAIT_SECONDS}, got {wait}"
        )));
    }
    let comment = if targeting.preview {
        None
    } else {
        Some(common::comment(targeting.comment.as_deref())?)
    };
    let tenant = common::tenant(context, targeting.tenant_id.as_ref())?;
    Ok(Prepared {
        wait,
        comment,
        tenant,
    })
}

/// For containment: the outcome refusing `target` when it is onboarded (or cannot be looked up).
/// isolate-machine.md: isolate on an unmanaged device contains it, but on an onboarded device
/// it isolates it, so containment must never reach an onboarded device.
async fn onboarded(
    defender: &DefenderClient,
    tenant: &TenantId,
    target: &Target,
) -> Option<DeviceOutcome> {
    let machine = defender.get_machine(tenant, &target.id).await;
    let refused = |target: &Target, detail: String| DeviceOutcome {
        machine_id: target.id.as_str().to_string(),
        computer_dns_name: target.name.clone(),
        outcome: Outcome::Failed,
        action_id: None,
        action_status: None,
        detail: Some(detail),
        created: None,
    };
    match machine {
        Ok(machine)
            if machine
                .onboarding_status
                .as_ref()
                .is_some_and(|status| status.is(&OnboardingStatus::Onboarded)) =>
        {
            Some(refused(
            target,
            "the device is onboarded: containment is for devices that are not, and Defender would isolate this one \
             instead; use mde_isolate_machines"
                .into(),
            ))
        }
        Ok(_) => None,
        Err(error) => Some(outcome(
            Target {
                id: target.id.clone(),
                name: target.name.clone(),
                listed: None,
            },
            Err(error),
        )),
    }
}

fn outcome(target: Target, result: Result<MachineAction, ApiError>) -> DeviceOutcome {
    let mut device = DeviceOutcome {
        machine_id: target.id.as_str().to_string(),
        computer_dns_name: target.name,
        outcome: Outcome::Failed,
        action_id: None,
        action_status: None,
        detail: None,
        created: None,
    };
    match result {
        Ok(action) => {
            device.outcome = Outcome::Done;
            device.computer_dns_name = action.computer_dns_name.or(device.computer_dns_name);
            device.action_id = Some(action.id);
            device.action_status = Some(action.status);
            device.created = action.creation_date_time_utc;
        }
        Err(error) if error.code() == Some("ActiveRequestAlreadyExists") => {
            device.outcome = Outcome::AlreadyPending;
            device.detail = Some(error.to_string());
        }
        Err(error @ ApiError::Unconfirmed { .. }) => {
            device.outcome = Outcome::Unconfirmed;
            device.detail = Some(format!(
                "{error}. Look for this device's action with mde_list_machine_actions (machine_id {}) before sending it again",
                device.machine_id
            ));
        }
        Err(
            error @ (ApiError::RateLimited { .. }
            | ApiError::Throttled { .. }
            | ApiError::NotSent { .. }),
        ) => {
            device.outcome = Outcome::NotStarted;
            device.detail = Some(error.to_string());
        }
        Err(error) if error.is_not_found() => {
            device.detail = Some(format!(
                "no device with this machine id in the tenant ({error})"
            ));
        }
        Err(error) => device.detail = Some(error.to_string()),
    }
    device
}

/// The devices a call targets, refusing anything ambiguous before any device is touched.
async fn resolve(
    context: &ToolContext,
    tenant: &TenantId,
    targeting: &Targeting,
) -> Result<Vec<Target>, ToolError> {
    let cap = match targeting.max_devices {
        Some(cap) if !(1..=MAX_DEVICES).contains(&cap) => {
            return Err(ToolError::invalid(format!(
                "max_devices must be between 1 and {MAX_DEVICES}, got {cap}"
            )));
        }
        cap => cap,
    };
    match (&targeting.machine_ids, &targeting.filter) {
        (Some(_), Some(_)) => Err(ToolError::invalid(
            "give either machine_ids or filter, not both",
        )),
        (None, None) => Err(ToolError::invalid(
            "no devices given: pass machine_ids (from mde_list_machines), or a filter with max_devices",
        )),
        (Some(ids), None) => {
            let mut seen = HashSet::new();
            let unique: Vec<Target> = ids
                .iter()
                .filter(|id| seen.insert(id.as_str()))
                .map(|id| Target {
                    id: id.clone(),
                    name: None,
                    listed: None,
                })
                .collect();
            let limit = cap.unwrap_or(MAX_DEVICES) as usize;
            if unique.is_empty() {
                return Err(ToolError::invalid("machine_ids is empty"));
            }
            if unique.len() > limit {
                return Err(ToolError::invalid(format!(
                    "{} machine ids given, more than max_devices ({limit}); nothing was done",
                    unique.len()
                )));
            }
            Ok(unique)
        }
        (None, Some(filter)) => {
            let Some(cap) = cap else {
                return Err(ToolError::invalid(
                    "max_devices is required with filter: the most devices you expect it to match (run with preview: true to see them)",
                ));
            };
            let filter = common::checked_filter(filter)?;
            let defender = &context.services.defender;
            let found = defender
                .list_machines(
                    tenant,
                    defender.machines_start(Some(&filter)),
                    cap as usize + 1,
                )
                .await?;
            if found.items.len() > cap as usize {
                return Err(ToolError::invalid(format!(
                    "the filter matches more than max_devices ({cap}) devices; nothing was done. Narrow the filter, or raise \
                     max_devices (at most {MAX_DEVICES}) after checking the devices with preview: true"
                )));
            }
            if found.items.is_empty() {
                return Err(ToolError::NotFound(format!(
                    "the filter matches no device in tenant {tenant}; nothing was done"
                )));
            }
            found
                .items
                .into_iter()
                .map(|machine| {
                    let id = MachineId::try_from(machine.id.clone()).map_err(|error| {
                        ToolError::Api(ApiError::Decode {
                            api: crate::outbound::Api::Defender,
                            detail: error.to_string(),
                        })
                    })?;
                    Ok(Target {
                        listed: Some(ResolvedDevice {
                            machine_id: machine.id,
                            computer_dns_name: machine.computer_dns_name.clone(),
                            os_platform: machine.os_platform,
                            health_status: machine.health_status,
                            onboarding_status: machine.onboarding_status,
                            found: true,
                        }),
                        id,
                        name: machine.computer_dns_name,
                    })
                })
                .collect()
        }
    }
}

async fn preview(
    context: &ToolContext,
    tenant: &TenantId,
    targets: Vec<Target>,
) -> Result<Vec<ResolvedDevice>, ToolError> {
    let defender = &context.services.defender;
    let resolved = futures::stream::iter(targets)
        .map(|target| async move {
            if let Some(listed) = target.listed {
                return Ok(listed);
            }
            match defender.get_machine(tenant, &target.id).await {
                Ok(machine) => Ok(ResolvedDevice {
                    machine_id: machine.id,
                    computer_dns_name: machine.computer_dns_name,
                    os_platform: machine.os_platform,
                    health_status: machine.health_status,
                    onboarding_status: machine.onboarding_status,
                    found: true,
                }),
                Err(error) if error.is_not_found() => Ok(ResolvedDevice {
                    machine_id: target.id.as_str().to_string(),
                    computer_dns_name: target.name,
                    os_platform: None,
                    health_status: None,
                    onboarding_status: None,
                    found: false,
                }),
                Err(error) => Err(ToolError::from(error)),
            }
        })
        .buffered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    resolved.into_iter().collect()
}

/// Polls the started actions until all have settled or `until`, through one listing per round.
async fn await_actions(
    context: &ToolContext,
    tenant: &TenantId,
    request: &ActionRequest,
    results: &mut [DeviceOutcome],
    until: Instant,
) -> Result<(), ToolError> {
    let unsettled = |results: &[DeviceOutcome]| -> HashSet<String> {
        results
            .iter()
            .filter(|d| {
                d.outcome == Outcome::Done
                    && d.action_status.as_ref().is_some_and(|s| !is_settled(s))
            })
            .filter_map(|d| d.action_id.clone())
            .collect()
    };
    // Defender's own creation times bound the listing; seconds are dropped so none is missed.
    let since = earliest_creation(results);
    loop {
        let waiting = unsettled(results);
        let now = Instant::now();
        if waiting.is_empty() || now >= until {
            return Ok(());
        }
        tokio::time::sleep(POLL_INTERVAL.min(until - now)).await;
        let status = action_statuses(
            &context.services.defender,
            tenant,
            request.action_type(),
            since,
        )
        .await?;
        for device in results.iter_mut() {
            if let Some(current) = device.action_id.as_ref().and_then(|id| status.get(id)) {
                device.action_status = Some(current.clone());
            }
        }
    }
}

fn earliest_creation(results: &[DeviceOutcome]) -> Option<OffsetDateTime> {
    results.iter().filter_map(|d| d.created).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targeting_field_list_matches_the_struct() {
        let schema = schemars::schema_for!(Targeting);
        let mut properties: Vec<&str> = schema
            .get("properties")
            .and_then(Value::as_object)
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        let mut listed = TARGETING_FIELDS.to_vec();
        properties.sort_unstable();
        listed.sort_unstable();
        assert_eq!(properties, listed);
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct ScanOptions {
        /// Quick or Full.
        scan_type: String,
    }

    #[test]
    fn parameters_are_one_flat_object_refusing_unknown_fields() {
        let params: ActionParams<ScanOptions> =
            serde_json::from_value(serde_json::json!({"machine_ids": ["a".repeat(40)], "comment": "x", "scan_type": "Full"}))
                .expect("valid");
        assert_eq!(params.options.scan_type, "Full");
        assert_eq!(params.targeting.comment.as_deref(), Some("x"));
        let error = serde_json::from_value::<ActionParams<ScanOptions>>(
            serde_json::json!({"scan_type": "Full", "machine_idz": []}),
        )
        .expect_err("unknown field");
        assert!(error.to_string().contains("machine_idz"), "{error}");
        let missing = serde_json::from_value::<ActionParams<ScanOptions>>(
            serde_json::json!({"comment": "x"}),
        )
        .expect_err("required option");
        assert!(missing.to_string().contains("scan_type"), "{missing}");
    }

    #[test]
    fn the_schema_merges_targeting_and_options() {
        let schema = schemars::schema_for!(ActionParams<ScanOptions>);
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .expect("properties");
        assert!(properties.contains_key("machine_ids") && properties.contains_key("scan_type"));
        assert_eq!(
            schema.get("required"),
            Some(&serde_json::json!(["scan_type"]))
        );
        assert_eq!(
            schema.get("additionalProperties"),
            Some(&Value::Bool(false))
        );
    }
}
