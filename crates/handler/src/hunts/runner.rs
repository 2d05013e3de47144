//! How a tick runs hunts, exactly once per occurrence across overlapping invocations:
//!
//! 1. For each enabled hunt, the due occurrences (see `schedule::due`) are claimed by creating
//!    their run records with create-if-absent: one invocation wins each occurrence, the others get
//!    "already exists". The winner holds the record's lease.
//! 2. Open runs (claimed now or left unfinished by an earlier tick) are worked on by whoever holds
//!    or can take the lease: taking it is an ETag-guarded write, so only one invocation does.
//! 3. Tenants are searched in parallel within `HUNT_TENANT_CONCURRENCY`. The tick's deadline
//!    (`HUNT_TICK_BUDGET_SECONDS`) stops the search; tenants not finished stay pending and the
//!    lease is released, so the next tick continues the run instead of this one blocking.
//! 4. A finished run is settled (status, rows), its alert posted at most once, and it leaves
//!    the hunt's open runs. Retention deletes old runs hourly.

use futures::StreamExt;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use tokio::time::Instant;

use super::definition::{HuntDefinition, HuntId, Targets};
use super::notifier::alert_payload;
use super::run::{
    AlertOutcome, AlertState, Lease, RunId, RunKind, RunRecord, RunStatus, SkippedOccurrences,
    TenantRun, TenantStatus,
};
use super::schedule::{self, CompiledSchedule, SkippedRange};
use super::store::{HuntState, RunSummary};
use super::{HuntError, Hunts, not_found};
use crate::kql_guard;
use crate::storage::StorageError;
use crate::tenants::TenantId;

/// A lease outlives the holder's deadline by this much, for its final writes.
const LEASE_GRACE: Duration = Duration::minutes(2);
/// After this many interrupted attempts a tenant is recorded as failed instead of retried.
const MAX_INTERRUPTIONS: u32 = 3;
/// hunt_run_now waits at most this long for results; the rest continues on the timer.
const RUN_NOW_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);
const RETENTION_SWEEP_EVERY: Duration = Duration::hours(1);

/// What one tick did, returned to the host as the invocation's ReturnValue.
#[derive(Debug, Default, Serialize)]
pub struct TickReport {
    pub hunts: usize,
    /// `hunt/run` of each run this tick claimed.
    pub runs_started: Vec<String>,
    pub runs_finished: usize,
    /// Runs with tenants still pending after this tick's deadline: continued next tick.
    pub runs_continuing: usize,
    /// Open runs another invocation holds the lease on.
    pub runs_busy_elsewhere: usize,
    pub occurrences_skipped: u64,
    /// Hunts not looked at because the deadline came first; the next tick starts with them.
    pub hunts_deferred: usize,
    pub runs_deleted_by_retention: usize,
    pub errors: Vec<String>,
}

impl TickReport {
    pub fn summary(&self) -> String {
        format!(
            "{} hunts: {} runs started, {} finished, {} continuing next tick, {} held elsewhere, {} occurrences skipped, {} hunts deferred, {} old runs deleted, {} errors",
            self.hunts,
            self.runs_started.len(),
            self.runs_finished,
            self.runs_continuing,
            self.runs_busy_elsewhere,
            self.occurrences_skipped,
            self.hunts_deferred,
            self.runs_deleted_by_retention,
            self.errors.len()
        )
    }
}

enum Progress {
    Finished,
    Continuing,
    Busy,
}

enum TenantOutcome {
    Done {
        rows: u64,
        stored: u64,
        truncated: bool,
    },
    Failed(String),
    Interrupted,
    NotStarted,
}

impl Hunts {
    /// One scheduler pass over every hunt, within the tick budget.
    pub async fn tick(&self) -> TickReport {
        let owner = format!("tick-{}", uuid::Uuid::new_v4().simple());
        let deadline = Instant::now() + self.settings.tick_budget;
        let now = self.clock.now();
        let mut report = TickReport::default();
        let definitions = match self.store.list_definitions().await {
            Ok(definitions) => definitions,
            Err(error) => {
                report
                    .errors
                    .push(format!("hunt definitions could not be read: {error}"));
                return report;
            }
        };
        report.hunts = definitions.len();
        for definition in &definitions {
            if Instant::now() >= deadline {
                report.hunts_deferred += 1;
                continue;
            }
            if let Err(error) = self
                .tick_hunt(definition, now, deadline, &owner, &mut report)
                .await
            {
                report.errors.push(format!(
                    "hunt {} ('{}'): {error}",
                    definition.id, definition.name
                ));
            }
        }
        report
    }

    async fn tick_hunt(
        &self,
        definition: &HuntDefinition,
        now: OffsetDateTime,
        deadline: Instant,
        owner: &str,
        report: &mut TickReport,
    ) -> Result<(), HuntError> {
        let mut state = self.store.state(&definition.id).await?;
        if definition.enabled {
            let schedule = definition
                .schedule
                .compile()
                .map_err(|error| HuntError::Invalid(format!("stored schedule: {error}")))?;
            let after = state
                .last_occurrence
                .map_or(definition.schedule_anchor, |last| {
                    last.max(definition.schedule_anchor)
                });
            let due = schedule::due(&schedule, after, now, self.settings.max_runs_per_tick);
            if let Some(latest) = due.latest() {
                let mut noted = Vec::new();
                if let Some(skipped) = &due.skipped {
                    let record = self.skipped_record(definition, skipped, now);
                    match self.store.create_run(&record).await {
                        Ok(_) => {
                            tracing::warn!(target: "hunts", hunt = %definition.id, first = %super::format_time(skipped.first), last = %super::format_time(skipped.last), count = skipped.count, "missed occurrences beyond the catch-up bound recorded as skipped");
                            report.occurrences_skipped += skipped.count;
                            noted.push(RunSummary::of(&record));
                        }
                        Err(StorageError::AlreadyExists { .. }) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                // Every due run goes into the open set, claimed here or not: if an earlier
                // invocation created a record and stopped before noting it, this finds it again.
                let mut open = Vec::new();
                for (index, occurrence) in due.run.iter().enumerate() {
                    let kind = if index + 1 == due.run.len() {
                        RunKind::Scheduled
                    } else {
                        RunKind::CatchUp
                    };
                    let record = self.new_run(
                        definition,
                        &schedule,
                        RunId::scheduled(*occurrence),
                        kind,
                        Some(*occurrence),
                        owner,
                        now,
                    );
                    match self.store.create_run(&record).await {
                        Ok(_) => {
                            tracing::info!(target: "hunts", hunt = %definition.id, run = %record.run_id, kind = ?kind, tenants = record.tenants.len(), "run claimed");
                            report
                                .runs_started
                                .push(format!("{}/{}", definition.id, record.run_id));
                            noted.push(RunSummary::of(&record));
                        }
                        Err(StorageError::AlreadyExists { .. }) => {
                            tracing::debug!(target: "hunts", hunt = %definition.id, run = %record.run_id, "occurrence already claimed by another invocation");
                        }
                        Err(error) => return Err(error.into()),
                    }
                    open.push(record.run_id);
                }
                state = self
                    .store
                    .update_state(&definition.id, |state| {
                        state.last_occurrence = Some(
                            state
                                .last_occurrence
                                .map_or(latest, |last| last.max(latest)),
                        );
                        state.open_runs.extend(open.iter().cloned());
                        for summary in &noted {
                            state.note_run(summary.clone());
                        }
                    })
                    .await?;
            }
        }
        for run in state.open_runs.clone() {
            if Instant::now() >= deadline {
                report.runs_continuing += 1;
                continue;
            }
            match self
                .work_on_run(&definition.id, &run, deadline, owner)
                .await?
            {
                Progress::Finished => report.runs_finished += 1,
                Progress::Continuing => report.runs_continuing += 1,
                Progress::Busy => report.runs_busy_elsewhere += 1,
            }
        }
        if Instant::now() < deadline {
            report.runs_deleted_by_retention +=
                self.sweep(definition, &state, now, deadline).await?;
        }
        Ok(())
    }

    /// Starts a run now, outside the schedule, and waits up to a minute for it; what is not
    /// finished by then continues on the timer.
    pub async fn run_now(&self, hunt: &HuntId) -> Result<RunRecord, HuntError> {
        let (definition, _) = self
            .store
            .get_definition(hunt)
            .await?
            .ok_or_else(|| not_found(hunt))?;
        let schedule = definition
            .schedule
            .compile()
            .map_err(|error| HuntError::Invalid(format!("stored schedule: {error}")))?;
        let now = self.clock.now();
        let owner = format!("run-now-{}", uuid::Uuid::new_v4().simple());
        let record = self.new_run(
            &definition,
            &schedule,
            RunId::manual(now),
            RunKind::Manual,
            None,
            &owner,
            now,
        );
        self.store.create_run(&record).await?;
        let summary = RunSummary::of(&record);
        self.store
            .update_state(hunt, |state| {
                if summary.status == RunStatus::Running {
                    state.open_runs.insert(summary.run_id.clone());
                }
                state.note_run(summary.clone());
            })
            .await?;
        tracing::info!(target: "hunts", hunt = %hunt, run = %record.run_id, "manual run started");
        let deadline = Instant::now() + self.settings.tick_budget.min(RUN_NOW_BUDGET);
        self.work_on_run(hunt, &record.run_id, deadline, &owner)
            .await?;
        Ok(self
            .store
            .get_run(hunt, &record.run_id)
            .await?
            .map_or(record, |(record, _)| record))
    }

    #[allow(clippy::too_many_arguments)]
    fn new_run(
        &self,
        definition: &HuntDefinition,
        schedule: &CompiledSchedule,
        run_id: RunId,
        kind: RunKind,
        occurrence: Option<OffsetDateTime>,
        owner: &str,
        now: OffsetDateTime,
    ) -> RunRecord {
        let window_end = occurrence.unwrap_or(now);
        let lookback = definition.lookback_minutes.map_or_else(
            || schedule.period_ending_at(window_end),
            |minutes| Duration::minutes(i64::from(minutes)),
        );
        let mut record = RunRecord {
            hunt_id: definition.id.clone(),
            hunt_name: definition.name.clone(),
            run_id,
            kind,
            status: RunStatus::Running,
            occurrence,
            window_start: Some(window_end - lookback),
            window_end: Some(window_end),
            query: definition.query.clone(),
            started_at: now,
            finished_at: None,
            tenants: self.targets(definition, now),
            rows_total: 0,
            row_cap_per_tenant: self.settings.max_rows_per_tenant as u64,
            error: None,
            alert_rule: definition.alert.clone(),
            alert: None,
            skipped: None,
            lease: Some(self.lease(owner, now)),
        };
        if record.tenants.is_empty() {
            record.error = Some("no tenant is enabled on this server's allow-list (TENANTS), so there was nothing to search".into());
            record.finish(now);
            record.lease = None;
        }
        record
    }

    fn skipped_record(
        &self,
        definition: &HuntDefinition,
        skipped: &SkippedRange,
        now: OffsetDateTime,
    ) -> RunRecord {
        RunRecord {
            hunt_id: definition.id.clone(),
            hunt_name: definition.name.clone(),
            run_id: RunId::skipped(skipped.last),
            kind: RunKind::Skipped,
            status: RunStatus::Skipped,
            occurrence: Some(skipped.last),
            window_start: None,
            window_end: None,
            query: definition.query.clone(),
            started_at: now,
            finished_at: Some(now),
            tenants: Vec::new(),
            rows_total: 0,
            row_cap_per_tenant: self.settings.max_rows_per_tenant as u64,
            error: None,
            alert_rule: None,
            alert: None,
            skipped: Some(SkippedOccurrences {
                first: skipped.first,
                last: skipped.last,
                count: skipped.count,
                reason: format!(
                    "the timer did not run these occurrences in time (the app was stopped or ticks were missed); only the newest {} missed occurrences are caught up (HUNT_MAX_CATCH_UP)",
                    self.settings.max_runs_per_tick
                ),
            }),
            lease: None,
        }
    }

    fn targets(&self, definition: &HuntDefinition, now: OffsetDateTime) -> Vec<TenantRun> {
        match &definition.targets {
            Targets::AllEnabled => self
                .tenants
                .all()
                .iter()
                .filter(|t| t.enabled)
                .map(|t| TenantRun::pending(t.tenant_id.clone()))
                .collect(),
            Targets::Tenants(ids) => ids
                .iter()
                .map(|id| {
                    let mut run = TenantRun::pending(id.clone());
                    if let Err(refusal) = self.tenants.resolve(Some(id)) {
                        run.fail(refusal.to_string(), now);
                    }
                    run
                })
                .collect(),
        }
    }

    fn lease(&self, owner: &str, now: OffsetDateTime) -> Lease {
        let budget = Duration::try_from(self.settings.tick_budget).unwrap_or(Duration::minutes(10));
        Lease {
            owner: owner.to_string(),
            until: now + budget + LEASE_GRACE,
        }
    }

    async fn work_on_run(
        &self,
        hunt: &HuntId,
        run: &RunId,
        deadline: Instant,
        owner: &str,
    ) -> Result<Progress, HuntError> {
        let Some((mut record, mut etag)) = self.store.get_run(hunt, run).await? else {
            // Deleted by retention or with its hunt: nothing left to continue.
            self.store
                .update_state(hunt, |state| {
                    state.open_runs.remove(run);
                })
                .await?;
            return Ok(Progress::Finished);
        };
        let now = self.clock.now();
        if record
            .lease
            .as_ref()
            .is_some_and(|lease| lease.owner != owner && lease.until > now)
        {
            return Ok(Progress::Busy);
        }
        if record.is_finished() {
            if record
                .alert
                .as_ref()
                .is_some_and(|alert| alert.state == AlertState::Sending)
            {
                // The invocation posting this alert stopped before it recorded the answer.
                if let Some(alert) = record.alert.as_mut() {
                    alert.state = AlertState::Unconfirmed;
                    alert.error = Some("the invocation posting this alert stopped before the webhook answered; not sent again, to avoid a duplicate".into());
                }
                record.lease = None;
                match self.store.replace_run(&record, &etag).await {
                    Ok(_) => {}
                    Err(StorageError::Conflict { .. }) => return Ok(Progress::Busy),
                    Err(error) => return Err(error.into()),
                }
            }
            self.close(&record).await?;
            return Ok(Progress::Finished);
        }
        if record
            .lease
            .as_ref()
            .is_none_or(|lease| lease.owner != owner)
        {
            record.lease = Some(self.lease(owner, now));
            etag = match self.store.replace_run(&record, &etag).await {
                Ok(etag) => etag,
                Err(StorageError::Conflict { .. }) => return Ok(Progress::Busy),
                Err(error) => return Err(error.into()),
            };
        }

        self.search_tenants(&mut record, deadline).await;

        let now = self.clock.now();
        let finished = record
            .tenants
            .iter()
            .all(|t| t.status != TenantStatus::Pending);
        let alert_reason = if finished {
            record.finish(now);
            record.alert_reason()
        } else {
            None
        };
        match &alert_reason {
            // The lease is kept while the alert is posted, so no one else marks it unconfirmed.
            Some(reason) => {
                record.alert = Some(AlertOutcome {
                    state: AlertState::Sending,
                    reason: reason.clone(),
                    error: None,
                })
            }
            None => record.lease = None,
        }
        etag = match self.store.replace_run(&record, &etag).await {
            Ok(etag) => etag,
            Err(StorageError::Conflict { .. }) => {
                tracing::warn!(target: "hunts", hunt = %hunt, run = %run, "the run's lease expired and another invocation took it over; its results stand");
                return Ok(Progress::Busy);
            }
            Err(error) => return Err(error.into()),
        };
        if !finished {
            let pending = record
                .tenants
                .iter()
                .filter(|t| t.status == TenantStatus::Pending)
                .count();
            tracing::info!(target: "hunts", hunt = %hunt, run = %run, pending, "deadline reached; the run continues on the next tick");
            return Ok(Progress::Continuing);
        }
        if let Some(reason) = alert_reason {
            self.deliver_alert(&mut record, reason).await;
            record.lease = None;
            self.store.replace_run(&record, &etag).await?;
        }
        tracing::info!(target: "hunts", hunt = %hunt, run = %run, status = ?record.status, rows = record.rows_total, "run finished");
        self.close(&record).await?;
        Ok(Progress::Finished)
    }

    /// Takes a finished run out of the hunt's open runs and refreshes its summary.
    async fn close(&self, record: &RunRecord) -> Result<HuntState, HuntError> {
        let summary = RunSummary::of(record);
        Ok(self
            .store
            .update_state(&record.hunt_id, |state| {
                state.open_runs.remove(&summary.run_id);
                state.note_run(summary.clone());
            })
            .await?)
    }

    async fn search_tenants(&self, record: &mut RunRecord, deadline: Instant) {
        let now = self.clock.now();
        let pending: Vec<usize> = (0..record.tenants.len())
            .filter(|&i| record.tenants[i].status == TenantStatus::Pending)
            .collect();
        // Checked before every run, not only when the hunt was saved: the guard may have learnt
        // of commands since, and a stored definition is not trusted blindly.
        if let Err(refusal) = kql_guard::check_query(&record.query) {
            let reason = format!("query refused: {refusal}");
            for i in pending {
                record.tenants[i].fail(reason.clone(), now);
            }
            record.error = Some(reason);
            return;
        }
        let (hunt, run, query, timespan, cap) = (
            record.hunt_id.clone(),
            record.run_id.clone(),
            record.query.clone(),
            record.timespan(),
            record.row_cap_per_tenant as usize,
        );
        let work: Vec<(usize, TenantId)> = pending
            .into_iter()
            .map(|i| (i, record.tenants[i].tenant_id.clone()))
            .collect();
        let outcomes: Vec<(usize, TenantOutcome)> = futures::stream::iter(work)
            .map(|(i, tenant)| {
                let (hunt, run, query, timespan) = (&hunt, &run, &query, timespan.as_deref());
                async move {
                    if Instant::now() >= deadline {
                        return (i, TenantOutcome::NotStarted);
                    }
                    match tokio::time::timeout_at(
                        deadline,
                        self.search_tenant(hunt, run, &tenant, query, timespan, cap),
                    )
                    .await
                    {
                        Ok(outcome) => (i, outcome),
                        Err(_) => (i, TenantOutcome::Interrupted),
                    }
                }
            })
            .buffer_unordered(self.settings.tenant_concurrency)
            .collect()
            .await;
        let now = self.clock.now();
        for (i, outcome) in outcomes {
            let tenant = &mut record.tenants[i];
            match outcome {
                TenantOutcome::Done {
                    rows,
                    stored,
                    truncated,
                } => {
                    tenant.status = TenantStatus::Succeeded;
                    tenant.rows = Some(rows);
                    tenant.stored_rows = stored;
                    tenant.truncated = truncated;
                    tenant.error = None;
                    tenant.finished_at = Some(now);
                }
                TenantOutcome::Failed(error) => {
                    tracing::warn!(target: "hunts", hunt = %hunt, run = %run, tenant = %tenant.tenant_id, error = %error, "tenant search failed; the other tenants carry on");
                    tenant.fail(error, now);
                }
                TenantOutcome::Interrupted => {
                    tenant.interrupted += 1;
                    if tenant.interrupted >= MAX_INTERRUPTIONS {
                        tenant.fail(
                            format!(
                                "did not finish within {MAX_INTERRUPTIONS} timer invocations of {} s each (HUNT_TICK_BUDGET_SECONDS)",
                                self.settings.tick_budget.as_secs()
                            ),
                            now,
                        );
                    }
                }
                TenantOutcome::NotStarted => {}
            }
        }
    }

    async fn search_tenant(
        &self,
        hunt: &HuntId,
        run: &RunId,
        tenant: &TenantId,
        query: &str,
        timespan: Option<&str>,
        cap: usize,
    ) -> TenantOutcome {
        // The allow-list may have changed since the run started; a removed tenant is never called.
        if let Err(refusal) = self.tenants.resolve(Some(tenant)) {
            return TenantOutcome::Failed(refusal.to_string());
        }
        let result = match self.graph.run_hunting_query(tenant, query, timespan).await {
            Ok(result) => result,
            Err(error) => return TenantOutcome::Failed(error.to_string()),
        };
        let rows = result.results.len();
        let mut kept = result.results;
        kept.truncate(cap);
        let stored = kept.len();
        match self
            .store
            .write_results(hunt, run, tenant, &result.schema, kept)
            .await
        {
            Ok(()) => TenantOutcome::Done {
                rows: rows as u64,
                stored: stored as u64,
                truncated: rows > cap,
            },
            Err(error) => TenantOutcome::Failed(format!(
                "{rows} rows were found but could not be stored: {error}"
            )),
        }
    }

    async fn deliver_alert(&self, record: &mut RunRecord, reason: String) {
        let Some(rule) = record.alert_rule.clone() else {
            return;
        };
        let payload = alert_payload(record, &reason);
        let outcome = self.notifier.post(&rule.webhook_secret, &payload).await;
        match &outcome {
            Ok(()) => {
                tracing::info!(target: "hunts", hunt = %record.hunt_id, run = %record.run_id, secret = %rule.webhook_secret, "alert delivered")
            }
            Err(error) => {
                tracing::warn!(target: "hunts", hunt = %record.hunt_id, run = %record.run_id, secret = %rule.webhook_secret, error = %error, "alert not delivered")
            }
        }
        record.alert = Some(AlertOutcome {
            state: if outcome.is_ok() {
                AlertState::Delivered
            } else {
                AlertState::Failed
            },
            reason,
            error: outcome.err(),
        });
    }

    /// Deletes runs (and their results) older than the hunt's retention, at most hourly per hunt.
    async fn sweep(
        &self,
        definition: &HuntDefinition,
        state: &HuntState,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Result<usize, HuntError> {
        if state
            .last_retention_sweep
            .is_some_and(|at| now - at < RETENTION_SWEEP_EVERY)
        {
            return Ok(0);
        }
        let cutoff = now - Duration::days(i64::from(definition.retention_days));
        let expired: Vec<RunId> = self
            .store
            .list_run_ids(&definition.id)
            .await?
            .into_iter()
            .filter(|run| run.time().is_some_and(|t| t < cutoff) && !state.open_runs.contains(run))
            .collect();
        let mut deleted = 0;
        for run in &expired {
            if Instant::now() >= deadline {
                break;
            }
            self.store.delete_run(&definition.id, run).await?;
            deleted += 1;
        }
        let complete = deleted == expired.len();
        self.store
            .update_state(&definition.id, |state| {
                if complete {
                    state.last_retention_sweep = Some(now);
                }
                state
                    .recent_runs
                    .retain(|r| r.run_id.time().is_none_or(|t| t >= cutoff));
            })
            .await?;
        if deleted > 0 {
            tracing::info!(target: "hunts", hunt = %definition.id, deleted, retention_days = definition.retention_days, "old runs deleted");
        }
        Ok(deleted)
    }
}
