//! Scheduled hunts: stored KQL hunts that the `function-hunts` timer runs across tenants.
//!
//! - `definition`: what a hunt is and the checks it passes before it is stored;
//! - `schedule`: cron or every N minutes/hours (UTC) and the pure due / catch-up computation;
//! - `store`: definitions, per-hunt state, run records and result rows in blobs;
//! - `run` and `runner`: run records (each one the lease on its occurrence) and how a tick
//!   claims, continues and finishes runs within its time budget;
//! - `notifier`: alert posts to a webhook whose URL is a secret resolved at send time.
//!
//! The timer entry point ([`HuntTimer`]) and `handler --sandbox`'s in-process schedule
//! ([`spawn_local_schedule`]) call the same [`Hunts::tick`].

pub mod definition;
pub mod notifier;
pub mod run;
mod runner;
pub mod schedule;
pub mod store;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use definition::{AlertRule, AlertScope, HuntDefinition, HuntId, Targets};
pub use notifier::{AppSettingSecrets, SecretError, SecretResolver};
pub use run::{RunId, RunRecord};
pub use runner::TickReport;
pub use schedule::{Clock, Schedule, SystemClock};

use crate::clients::graph::GraphClient;
use crate::config::HuntsConfig;
use crate::host::{FunctionHandler, InvocationOutcome, InvocationRequest, InvocationResponse};
use crate::storage::{Storage, StorageError};
use crate::tenants::TenantRegistry;
use notifier::Notifier;
use store::HuntStore;

pub const FUNCTION_NAME: &str = "function-hunts";
/// The timer binding's `name` in function-hunts/function.json.
const TIMER_BINDING: &str = "timer";

/// The seeded example: encoded PowerShell command lines, a classic living-off-the-land sign.
const EXAMPLE_QUERY: &str = "DeviceProcessEvents | where FileName =~ 'powershell.exe' and ProcessCommandLine has '-enc' \
| project Timestamp, DeviceId, DeviceName, AccountName, ProcessCommandLine";

#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("hunt storage: {0}")]
    Storage(#[from] StorageError),
}

fn not_found(hunt: &HuntId) -> HuntError {
    HuntError::NotFound(format!(
        "no hunt with id {hunt}; hunt_list shows the hunts that exist"
    ))
}

pub fn format_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The MCP resource URI of a run.
pub fn resource_uri(hunt: &HuntId, run: &RunId) -> String {
    format!("hunt://{hunt}/runs/{run}")
}

/// Hunt definitions, runs and the scheduler, shared by the timer, the local schedule and the tools.
pub struct Hunts {
    store: HuntStore,
    graph: GraphClient,
    tenants: TenantRegistry,
    notifier: Notifier,
    settings: HuntsConfig,
    clock: Arc<dyn Clock>,
}

impl Hunts {
    pub fn new(
        storage: &Storage,
        graph: GraphClient,
        tenants: TenantRegistry,
        http: reqwest::Client,
        secrets: Arc<dyn SecretResolver>,
        settings: HuntsConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store: HuntStore::new(storage, &settings.container),
            graph,
            tenants,
            notifier: Notifier::new(http, secrets),
            settings,
            clock,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn store(&self) -> &HuntStore {
        &self.store
    }

    /// Stores a new hunt after checking it (query, schedule, tenants, alert) and that no other
    /// hunt has the same name, so a repeated call does not schedule the same hunt twice.
    pub async fn create(&self, definition: HuntDefinition) -> Result<HuntDefinition, HuntError> {
        definition
            .validate(&self.tenants, true)
            .map_err(HuntError::Invalid)?;
        let existing = self.store.list_definitions().await?;
        if let Some(same) = existing
            .iter()
            .find(|h| h.name.trim().eq_ignore_ascii_case(definition.name.trim()))
        {
            return Err(HuntError::Conflict(format!(
                "a hunt named '{}' already exists (id {}); use hunt_update to change it or choose another name",
                same.name, same.id
            )));
        }
        self.store.create_definition(&definition).await?;
        tracing::info!(hunt = %definition.id, name = %definition.name, schedule = %definition.schedule.describe(), "hunt created");
        Ok(definition)
    }

    pub async fn get(&self, hunt: &HuntId) -> Result<HuntDefinition, HuntError> {
        Ok(self
            .store
            .get_definition(hunt)
            .await?
            .ok_or_else(|| not_found(hunt))?
            .0)
    }

    /// Applies `change` to the stored definition, guarded by its ETag. A new schedule or
    /// re-enabling moves the schedule anchor to now: no catch-up of time the hunt was off.
    pub async fn update(
        &self,
        hunt: &HuntId,
        change: impl FnOnce(&mut HuntDefinition) -> Result<(), String>,
    ) -> Result<HuntDefinition, HuntError> {
        let (mut definition, etag) = self
            .store
            .get_definition(hunt)
            .await?
            .ok_or_else(|| not_found(hunt))?;
        let before = definition.clone();
        change(&mut definition).map_err(HuntError::Invalid)?;
        definition
            .validate(&self.tenants, definition.targets != before.targets)
            .map_err(HuntError::Invalid)?;
        let now = self.clock.now();
        if definition.schedule != before.schedule || (definition.enabled && !before.enabled) {
            definition.schedule_anchor = now;
        }
        definition.updated_at = now;
        match self.store.replace_definition(&definition, &etag).await {
            Ok(_) => {
                tracing::info!(hunt = %hunt, enabled = definition.enabled, "hunt updated");
                Ok(definition)
            }
            Err(StorageError::Conflict { .. } | StorageError::NotFound { .. }) => {
                Err(HuntError::Conflict(format!(
                    "hunt {hunt} was changed or deleted by another call while this update was made; read it again with hunt_get and retry"
                )))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes the hunt, its runs and results. Returns how many runs were deleted.
    pub async fn delete(&self, hunt: &HuntId) -> Result<usize, HuntError> {
        let (existed, runs) = self.store.delete_hunt(hunt).await?;
        if !existed {
            return Err(not_found(hunt));
        }
        tracing::info!(hunt = %hunt, runs, "hunt deleted");
        Ok(runs)
    }

    /// Seeds one example hunt when none exist (`handler --sandbox` only), anchored one period in
    /// the past so the first local tick runs it.
    pub async fn seed_example(&self) -> Result<Option<HuntDefinition>, HuntError> {
        if !self.store.list_definitions().await?.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        let schedule = Schedule::EveryMinutes(5);
        let definition = HuntDefinition {
            id: HuntId::generate(),
            name: "Example: encoded PowerShell".into(),
            description: Some("Seeded by handler --sandbox: PowerShell started with an encoded command, in every enabled tenant, searching the last 7 days every 5 minutes.".into()),
            query: EXAMPLE_QUERY.into(),
            targets: Targets::AllEnabled,
            schedule,
            lookback_minutes: Some(7 * 24 * 60),
            enabled: true,
            retention_days: 7,
            alert: None,
            created_at: now,
            updated_at: now,
            schedule_anchor: now - time::Duration::minutes(5),
        };
        self.create(definition).await.map(Some)
    }
}

/// `handler --sandbox` without a Functions host: the same tick on a tokio interval.
pub fn spawn_local_schedule(hunts: Arc<Hunts>, every: StdDuration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let report = hunts.tick().await;
            tracing::info!(target: "hunts", "local schedule: {}", report.summary());
            for error in &report.errors {
                tracing::error!(target: "hunts", "local schedule: {error}");
            }
        }
    })
}

/// The host's serialized TimerInfo (PascalCase for non-JavaScript workers).
#[derive(Debug, Deserialize)]
pub struct TimerInfo {
    #[serde(rename = "IsPastDue", default)]
    pub is_past_due: bool,
    #[serde(rename = "ScheduleStatus", default)]
    pub schedule_status: Option<ScheduleStatus>,
}

#[derive(Debug, Deserialize)]
pub struct ScheduleStatus {
    #[serde(rename = "Last")]
    pub last: Option<String>,
    #[serde(rename = "Next")]
    pub next: Option<String>,
}

/// The `function-hunts` timer trigger.
pub struct HuntTimer {
    hunts: Arc<Hunts>,
}

impl HuntTimer {
    pub fn new(hunts: Arc<Hunts>) -> Self {
        Self { hunts }
    }
}

fn failed_invocation(log: String) -> InvocationOutcome {
    tracing::error!("{log}");
    InvocationOutcome {
        response: InvocationResponse {
            logs: vec![log],
            ..Default::default()
        },
        succeeded: false,
    }
}

#[async_trait::async_trait]
impl FunctionHandler for HuntTimer {
    async fn invoke(&self, request: InvocationRequest) -> InvocationOutcome {
        let timer = match request
            .binding(TIMER_BINDING)
            .map(serde_json::from_value::<TimerInfo>)
        {
            Some(Ok(timer)) => timer,
            Some(Err(error)) => {
                return failed_invocation(format!(
                    "{FUNCTION_NAME}: the '{TIMER_BINDING}' binding is not a timer payload: {error}"
                ));
            }
            None => {
                return failed_invocation(format!(
                    "{FUNCTION_NAME}: the invocation has no '{TIMER_BINDING}' binding in Data"
                ));
            }
        };
        let next = timer
            .schedule_status
            .as_ref()
            .and_then(|s| s.next.as_deref())
            .unwrap_or("unknown");
        if timer.is_past_due {
            // The host fires a missed tick once, late. Hunts do not depend on it: each hunt's own
            // record of its last occurrence decides what is caught up, within HUNT_MAX_CATCH_UP.
            tracing::warn!(target: "hunts", next, "{FUNCTION_NAME}: the timer is past due (ticks were missed); missed hunt occurrences are caught up or recorded as skipped");
        }
        let report = self.hunts.tick().await;
        let mut logs = vec![format!(
            "{FUNCTION_NAME}: {} (past due: {}, next tick: {next})",
            report.summary(),
            timer.is_past_due
        )];
        logs.extend(
            report
                .errors
                .iter()
                .map(|error| format!("{FUNCTION_NAME}: {error}")),
        );
        for line in &logs {
            if report.errors.is_empty() {
                tracing::info!(target: "hunts", "{line}");
            } else {
                tracing::error!(target: "hunts", "{line}");
            }
        }
        InvocationOutcome {
            succeeded: report.errors.is_empty(),
            response: InvocationResponse {
                logs,
                return_value: serde_json::to_value(&report).unwrap_or(serde_json::Value::Null),
                ..Default::default()
            },
        }
    }
}
