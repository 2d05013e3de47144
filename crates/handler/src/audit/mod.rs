//! The durable audit trail: one JSON record per tool call (who, with which roles, in which tenant,
//! which tool with which arguments, the outcome, how long, the action ids it started, and how a
//! destructive call was approved), written as its own blob `yyyy/mm/dd/<time>-<id>.json` in the
//! `audit` container and emitted as a structured `audit` event. Blob names sort by time, so a
//! search lists one day's prefix in order and reads only the records it needs.
//!
//! Nothing is lost while storage is away:
//! - A call that can change something stores an intent record (outcome `started`) before it
//!   sends anything, and is refused if that cannot be stored: no change without its record.
//!   Its outcome then overwrites the same blob.
//! - Every other record (reads, refusals, outcomes) that cannot be stored at once waits in a
//!   bounded backlog in memory and is retried until storage answers again; a search on the same
//!   instance first tries to store the backlog. What the bound drops is counted, logged with the
//!   whole record and shown by `/api/health`.
//! - A read-only call's record is stored just after its answer: a storage write (5–15 ms in
//!   Azure) would otherwise be most of a read's latency. Only a crash loses a record still
//!   waiting (its `audit` event and, once it waited, its whole JSON have gone to the log).

mod redact;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::sync::{Semaphore, watch};

pub use redact::{action_ids, redact_arguments, sensitive_fields};

use crate::roles::Tier;
use crate::storage::{JsonBlobStore, Storage, StorageError};

pub const CONTAINER: &str = "audit";

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The tool ran and succeeded.
    Ok,
    /// The tool ran (or tried to) and reported an error.
    Error,
    /// The call was refused before the tool ran (role, read-only mode, toolset, approval, input size).
    Refused,
    /// A destructive call is waiting for a person's approval; nothing was done yet.
    PendingApproval,
    /// Let through and running. If it stays so, the instance stopped before the call ended:
    /// check the target's state.
    Started,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Refused => "refused",
            Self::PendingApproval => "pending_approval",
            Self::Started => "started",
        }
    }
}

/// One audited tool call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecord {
    pub id: String,
    /// When the call arrived (UTC, RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub time: OffsetDateTime,
    /// The caller's object id (or `local` without inbound auth).
    pub caller: String,
    pub caller_name: Option<String>,
    /// The caller's home tenant.
    pub caller_tenant: Option<String>,
    pub roles: Vec<String>,
    pub tool: String,
    /// The tier the tool needs.
    pub tier: Option<Tier>,
    /// The tenant the call named (`tenant_id` argument), if any.
    pub tenant: Option<String>,
    /// The arguments, with secret values replaced by `[redacted]`.
    pub arguments: serde_json::Value,
    pub outcome: Outcome,
    /// The error or refusal message.
    pub error: Option<String>,
    pub duration_ms: u64,
    /// Ids of actions the call started (machine actions, jobs), as its output reports them.
    pub action_ids: Vec<String>,
    /// For destructive tools: how the call was approved, or why not.
    pub approval: Option<ApprovalDecision>,
    /// The approval page record this call asked for or was let through on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// Who approved on the page (for a decision record: who decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
}

impl AuditRecord {
    /// The blob name: the day as a folder, then a sortable time and the record id.
    fn blob_name(&self) -> String {
        let day = self.time.format(DAY_FORMAT).unwrap_or_default();
        let time = self.time.format(TIME_FORMAT).unwrap_or_default();
        format!("{day}/{time}-{}.json", self.id)
    }
}

const DAY_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]/[month]/[day]");
const TIME_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[hour][minute][second][subsecond digits:6]");

/// Which records a search wants.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditFilter {
    /// Case-insensitive part of the caller's object id or name.
    pub caller: Option<String>,
    pub tenant: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<Outcome>,
}

impl AuditFilter {
    fn matches(&self, record: &AuditRecord) -> bool {
        let contains =
            |haystack: &str, needle: &str| haystack.to_lowercase().contains(&needle.to_lowercase());
        self.caller.as_deref().is_none_or(|wanted| {
            contains(&record.caller, wanted)
                || record
                    .caller_name
                    .as_deref()
                    .is_some_and(|name| contains(name, wanted))
        }) && self.tenant.as_deref().is_none_or(|wanted| {
            record
                .tenant
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(wanted))
        }) && self
            .tool
            .as_deref()
            .is_none_or(|wanted| record.tool == wanted)
            && self.outcome.is_none_or(|wanted| record.outcome == wanted)
    }
}

/// One page of a search, in time order.
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// The last blob looked at, when the range holds more: resume after it.
    pub resume_after: Option<String>,
    pub scanned: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit storage: {0}")]
    Storage(#[from] StorageError),
    #[error("audit storage did not answer within {} s", .0.as_secs())]
    NoAnswer(Duration),
    #[error("{WRITES_BEHIND} audit records are already being stored; this one waits its turn")]
    Busy,
    #[error(
        "{records} audit records of this instance still wait for storage ({last_error}), so a search would miss them"
    )]
    Waiting { records: usize, last_error: String },
}

pub struct AuditLog {
    trail: Arc<Trail>,
    /// One permit per record that may be in flight behind its answer.
    writes_behind: Arc<Semaphore>,
    in_flight: InFlight,
    backlog: Arc<Backlog>,
}

/// How many records are being stored after their answers. Kept apart from the permits so that a
/// flush waits for the writes without queueing for permits ahead of the reads.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn start(&self) -> InFlightWrite {
        self.0.send_modify(|count| *count += 1);
        InFlightWrite(self.0.clone())
    }

    fn count(&self) -> usize {
        *self.0.borrow()
    }

    async fn none(&self) {
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = self.0.subscribe().wait_for(|count| *count == 0).await;
    }
}

/// One write in flight; done when dropped, however its task ends.
struct InFlightWrite(Arc<watch::Sender<usize>>);

impl Drop for InFlightWrite {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count -= 1);
    }
}

struct Trail {
    store: JsonBlobStore,
}

/// Blobs listed per storage request during a search.
const LIST_PAGE: NonZeroU32 = NonZeroU32::new(250).expect("non-zero");

/// Read-only calls whose records may be in flight at once. Small: these are concurrent requests
/// to storage; past the bound a record goes to the backlog instead of holding a call.
pub const WRITES_BEHIND: u32 = 32;

/// Records waiting for storage, at most. A record is 1–2 KB, so the backlog stays under about
/// 10 MB; an outage longer than this many calls loses the oldest from storage (not from the log).
pub const BACKLOG_MAX: usize = 5_000;

/// The longest one attempt to store a record may take outside a call's deadline.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a changing call's answer waits for its outcome record before the record goes to
/// the backlog: the change is done and its intent is stored, the answer must not be held.
const OUTCOME_WAIT: Duration = Duration::from_secs(2);

/// Pauses between retries of the backlog while storage is away.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// How a destructive call was approved or why it was not, as the audit trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// The person approved in the client's elicitation prompt.
    ApprovedByElicitation,
    /// The call carried a valid confirmation token from a previous preview.
    ApprovedByConfirmation,
    /// A person approved on the approval page (see approval_id and approver).
    ApprovedOnPage,
    /// The person was asked (elicitation sent); nothing was done yet.
    Requested,
    /// A preview and confirmation token were returned; nothing was done yet.
    ConfirmationIssued,
    /// An approval page was opened for the call; nothing was done yet.
    PageRequested,
    /// The person declined or cancelled (in the client or on the page).
    Declined,
    /// No approval was possible, or it was invalid, expired, already used, or for another plan.
    Refused,
}

/// When a call's record is stored relative to its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storing {
    BeforeAnswer,
    AfterAnswer,
}

/// The backlog as `/api/health` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditHealth {
    /// Records waiting for storage on this instance.
    pub waiting: usize,
    /// Records dropped from the backlog since the instance started (each was logged whole).
    pub dropped: u64,
    /// Why the last attempt to store a record failed, while records wait.
    pub last_error: Option<String>,
}

/// Records that could not be stored yet, oldest first, and why the last try failed.
#[derive(Default)]
struct Backlog {
    state: Mutex<Waiting>,
    dropped: AtomicU64,
    retrying: AtomicBool,
}

#[derive(Default)]
struct Waiting {
    records: VecDeque<AuditRecord>,
    last_error: Option<String>,
}

impl Backlog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Only pushes, pops and assignments happen under the lock; a panic cannot leave it half-changed.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn keep(&self, record: AuditRecord, error: &AuditError) {
        let json = serde_json::to_string(&record).unwrap_or_default();
        tracing::warn!(target: "audit", error = %error, record = %json, "the audit record waits for storage");
        let dropped = {
            let mut waiting = self.lock();
            waiting.last_error = Some(error.to_string());
            waiting.records.push_back(record);
            if waiting.records.len() > BACKLOG_MAX {
                waiting.records.pop_front()
            } else {
                None
            }
        };
        if let Some(dropped) = dropped {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let json = serde_json::to_string(&dropped).unwrap_or_default();
            tracing::error!(target: "audit", waiting = BACKLOG_MAX, record = %json, "the audit backlog is full: this record is dropped from storage and kept only in this log line");
        }
    }

    fn note_error(&self, error: &AuditError) {
        self.lock().last_error = Some(error.to_string());
    }

    fn oldest(&self) -> Option<AuditRecord> {
        self.lock().records.front().cloned()
    }

    /// Removes a stored record (a concurrent drain may have removed it already); returns how
    /// many still wait.
    fn stored(&self, stored: &AuditRecord) -> usize {
        let mut waiting = self.lock();
        if let Some(index) = waiting.records.iter().position(|kept| kept.id == stored.id) {
            waiting.records.remove(index);
        }
        if waiting.records.is_empty() {
            waiting.last_error = None;
        }
        waiting.records.len()
    }

    fn len(&self) -> usize {
        self.lock().records.len()
    }

    fn health(&self) -> AuditHealth {
        let waiting = self.lock();
        AuditHealth {
            waiting: waiting.records.len(),
            dropped: self.dropped.load(Ordering::Relaxed),
            last_error: waiting.last_error.clone(),
        }
    }
}

impl AuditLog {
    pub fn new(storage: &Storage) -> Self {
        Self {
            trail: Arc::new(Trail {
                store: JsonBlobStore::new(storage, CONTAINER),
            }),
            writes_behind: Arc::new(Semaphore::new(WRITES_BEHIND as usize)),
            in_flight: InFlight(Arc::new(watch::Sender::new(0))),
            backlog: Arc::new(Backlog::default()),
        }
    }

    /// Stores the intent of a call that is about to change something, before it sends anything.
    /// An error means the call must not run: its record could not be kept.
    pub async fn intent(&self, record: &AuditRecord) -> Result<(), AuditError> {
        emit(record);
        let timeout = crate::deadline::cap_timeout(STORE_TIMEOUT);
        let stored = self.trail.store_within(record, timeout).await;
        if let Err(error) = &stored {
            self.backlog.note_error(error);
        }
        stored
    }

    /// Emits the `audit` event at once and stores the record: before returning
    /// ([`Storing::BeforeAnswer`], waiting at most a moment), or on a task of its own. A record
    /// that cannot be stored now waits in the backlog; the call's result is not changed by it.
    pub async fn append(&self, record: AuditRecord, storing: Storing) {
        emit(&record);
        match storing {
            Storing::AfterAnswer => match self.writes_behind.clone().try_acquire_owned() {
                Ok(permit) => {
                    let trail = self.trail.clone();
                    let backlog = self.backlog.clone();
                    let write = self.in_flight.start();
                    tokio::spawn(async move {
                        if let Err(error) = trail.store_within(&record, STORE_TIMEOUT).await {
                            backlog.keep(record, &error);
                            retry_in_background(trail, backlog);
                        }
                        drop((permit, write));
                    });
                }
                Err(_) => self.keep(record, AuditError::Busy),
            },
            Storing::BeforeAnswer => {
                if let Err(error) = self.trail.store_within(&record, OUTCOME_WAIT).await {
                    self.keep(record, error);
                }
            }
        }
    }

    fn keep(&self, record: AuditRecord, error: AuditError) {
        self.backlog.keep(record, &error);
        retry_in_background(self.trail.clone(), self.backlog.clone());
    }

    /// Waits until every record this instance is writing after its answer is stored (or in the
    /// backlog), then tries once to store the backlog; the records still waiting are counted.
    pub async fn flush(&self) -> usize {
        // Inside a call, a write held by a storage that does not answer must not hold the call:
        // it ends in the backlog anyway, which the count below reports.
        let _ = crate::deadline::bounded(self.in_flight.none()).await;
        drain(&self.trail, &self.backlog).await + self.in_flight.count()
    }

    /// The backlog, for `/api/health`.
    pub fn health(&self) -> AuditHealth {
        self.backlog.health()
    }

    /// At shutdown: stores what it can; every record still waiting is logged whole.
    pub async fn close(&self) {
        if self.flush().await == 0 {
            return;
        }
        let left: Vec<AuditRecord> = self.backlog.lock().records.drain(..).collect();
        for record in left {
            let json = serde_json::to_string(&record).unwrap_or_default();
            tracing::error!(target: "audit", record = %json, "the instance stops before storage took this audit record: it is kept only in this log line");
        }
    }

    /// Records with `from <= time < to` matching `filter`, in time order, at most `limit`, looking
    /// at no more than `max_scan` records; resume with `resume_after` from the previous page.
    pub async fn search(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        filter: &AuditFilter,
        resume_after: Option<&str>,
        limit: usize,
        max_scan: usize,
    ) -> Result<AuditPage, AuditError> {
        // A search sees every call this instance answered before it, reads still being stored
        // and the backlog too, once storage takes them.
        let waiting = self.flush().await;
        if waiting > 0 {
            return Err(AuditError::Waiting {
                records: waiting,
                last_error: self
                    .backlog
                    .health()
                    .last_error
                    .unwrap_or_else(|| "storage is not taking records".into()),
            });
        }
        self.trail.ready().await?;
        let first_name = resume_after.map(str::to_owned);
        let mut records = Vec::new();
        let mut scanned = 0;
        let mut day = from.date();
        let last_day = to.date();
        let lower = from_bound(from);
        let upper = from_bound(to);
        while day <= last_day {
            let prefix = OffsetDateTime::new_utc(day, time::Time::MIDNIGHT)
                .format(DAY_FORMAT)
                .unwrap_or_default()
                + "/";
            let mut marker: Option<String> = None;
            loop {
                let page = self
                    .trail
                    .store
                    .list_page(&prefix, marker.as_deref(), LIST_PAGE)
                    .await?;
                for entry in page.entries {
                    // Blob names sort like their times: skip what lies before the range or the cursor.
                    if entry.name.as_str() < lower.as_str()
                        || first_name
                            .as_deref()
                            .is_some_and(|after| entry.name.as_str() <= after)
                    {
                        continue;
                    }
                    if entry.name.as_str() >= upper.as_str() {
                        return Ok(AuditPage {
                            records,
                            resume_after: None,
                            scanned,
                        });
                    }
                    if records.len() >= limit || scanned >= max_scan {
                        return Ok(AuditPage {
                            records,
                            resume_after: Some(previous_name(&entry.name)),
                            scanned,
                        });
                    }
                    scanned += 1;
                    if let Some((record, _)) =
                        self.trail.store.get::<AuditRecord>(&entry.name).await?
                        && filter.matches(&record)
                    {
                        records.push(record);
                    }
                }
                match page.next_marker {
                    Some(next) => marker = Some(next),
                    None => break,
                }
            }
            day = match day.next_day() {
                Some(next) => next,
                None => break,
            };
        }
        Ok(AuditPage {
            records,
            resume_after: None,
            scanned,
        })
    }
}

/// The structured `audit` event of a call, emitted whether or not storage is reachable.
fn emit(record: &AuditRecord) {
    tracing::info!(
        target: "audit",
        id = %record.id,
        caller = %record.caller,
        caller_tenant = record.caller_tenant.as_deref(),
        roles = ?record.roles,
        tool = %record.tool,
        tenant = record.tenant.as_deref(),
        outcome = record.outcome.name(),
        duration_ms = record.duration_ms,
        action_ids = ?record.action_ids,
        approval = ?record.approval,
        approval_id = record.approval_id.as_deref(),
        approver = record.approver.as_deref(),
        "tool call"
    );
}

impl Trail {
    async fn ready(&self) -> Result<(), StorageError> {
        self.store.ensure_container_once().await
    }

    /// Stores (or overwrites: an outcome replaces its intent, a retry its first try) one record.
    async fn store(&self, record: &AuditRecord) -> Result<(), StorageError> {
        self.ready().await?;
        self.store
            .upsert(&record.blob_name(), record)
            .await
            .map(|_| ())
    }

    async fn store_within(
        &self,
        record: &AuditRecord,
        timeout: Duration,
    ) -> Result<(), AuditError> {
        match tokio::time::timeout(timeout, self.store(record)).await {
            Ok(stored) => stored.map_err(AuditError::from),
            Err(_) => Err(AuditError::NoAnswer(timeout)),
        }
    }
}

/// Stores the backlog, oldest first, until it is empty or storage fails; returns how many wait.
async fn drain(trail: &Trail, backlog: &Backlog) -> usize {
    while let Some(record) = backlog.oldest() {
        let timeout = crate::deadline::cap_timeout(STORE_TIMEOUT);
        match trail.store_within(&record, timeout).await {
            Ok(()) => {
                if backlog.stored(&record) == 0 {
                    return 0;
                }
            }
            Err(error) => {
                backlog.note_error(&error);
                break;
            }
        }
    }
    backlog.len()
}

/// One task per instance retries the backlog, with growing pauses, until it is empty.
fn retry_in_background(trail: Arc<Trail>, backlog: Arc<Backlog>) {
    if backlog.retrying.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async move {
        let mut pause = RETRY_FIRST;
        loop {
            if drain(&trail, &backlog).await == 0 {
                backlog.retrying.store(false, Ordering::Release);
                // A record kept between the drain and the flag would have found the flag set.
                if backlog.len() == 0 || backlog.retrying.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    });
}

/// The smallest blob name at or after `time`.
fn from_bound(time: OffsetDateTime) -> String {
    format!(
        "{}/{}",
        time.format(DAY_FORMAT).unwrap_or_default(),
        time.format(TIME_FORMAT).unwrap_or_default()
    )
}

/// A name sorting just before `name`, so that resuming after it starts at `name` itself.
fn previous_name(name: &str) -> String {
    let mut previous = name.to_string();
    previous.pop();
    previous
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn record(time: OffsetDateTime) -> AuditRecord {
        AuditRecord {
            id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            time,
            caller: "alice-oid".into(),
            caller_name: Some("alice@contoso.com".into()),
            caller_tenant: None,
            roles: vec![],
            tool: "mde_list_machines".into(),
            tier: Some(Tier::Reader),
            tenant: Some("11111111-1111-4111-8111-111111111111".into()),
            arguments: serde_json::json!({}),
            outcome: Outcome::Ok,
            error: None,
            duration_ms: 3,
            action_ids: vec![],
            approval: None,
            approval_id: None,
            approver: None,
        }
    }

    #[test]
    fn blob_names_sort_by_time_within_and_across_days() {
        let a = record(datetime!(2026-03-09 23:59:59.999 UTC)).blob_name();
        let b = record(datetime!(2026-03-10 00:00:00.001 UTC)).blob_name();
        let c = record(datetime!(2026-03-10 09:15:00 UTC)).blob_name();
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(b.starts_with("2026/03/10/"), "{b}");
        assert!(from_bound(datetime!(2026-03-10 00:00:00 UTC)) <= b);
    }

    #[test]
    fn filters_match_caller_by_id_or_name_and_exact_tool() {
        let r = record(datetime!(2026-03-10 09:15:00 UTC));
        assert!(
            AuditFilter {
                caller: Some("ALICE@".into()),
                ..Default::default()
            }
            .matches(&r)
        );
        assert!(
            AuditFilter {
                tool: Some("mde_list_machines".into()),
                outcome: Some(Outcome::Ok),
                ..Default::default()
            }
            .matches(&r)
        );
        assert!(
            !AuditFilter {
                tool: Some("mde_list".into()),
                ..Default::default()
            }
            .matches(&r)
        );
        assert!(
            !AuditFilter {
                tenant: Some("22222222-2222-4222-8222-222222222222".into()),
                ..Default::default()
            }
            .matches(&r)
        );
    }
}
