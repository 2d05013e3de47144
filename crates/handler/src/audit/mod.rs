//! The durable audit trail: one JSON record per tool call (who, with which roles, in which tenant,
//! which tool with which arguments, the outcome, how long, the action ids it started, and how a
//! destructive call was approved), written as its own blob `yyyy/mm/dd/<time>-<id>.json` in the
//! `audit` container and emitted as a structured `audit` event. Blob names sort by time, so a
//! search lists one day's prefix in order and reads only the records it needs.
//!
//! A call that can change something is stored before its answer goes out, so no change is ever
//! answered without its record. A read-only call's record is stored just after its answer: a
//! storage write (5–15 ms in Azure) would otherwise be most of a read's latency. A search on the
//! same instance first waits for those writes and shutdown waits for them; a read finding
//! [`WRITES_BEHIND`] already in flight waits for one of them to land (so a storage slower than the
//! calls slows the calls instead of piling up records); a failed write logs the whole record. Only
//! a crash between a read's answer and its write loses that read's stored record (its `audit`
//! event has already gone out).

mod redact;

use std::num::NonZeroU32;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::sync::{OnceCell, Semaphore, watch};

pub use redact::{action_ids, redact_arguments, sensitive_fields};

use crate::mcp::{ApprovalDecision, Effect, Tier};
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
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Refused => "refused",
            Self::PendingApproval => "pending_approval",
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
#[error("audit storage: {0}")]
pub struct AuditError(#[from] StorageError);

pub struct AuditLog {
    trail: Arc<Trail>,
    /// One permit per record that may be in flight behind its answer.
    writes_behind: Arc<Semaphore>,
    in_flight: InFlight,
}

/// How many records are being stored after their answers. Kept apart from the permits so that a
/// flush waits for the writes without queueing for permits ahead of the reads.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn start(&self) -> InFlightWrite {
        self.0.send_modify(|count| *count += 1);
        InFlightWrite(self.0.clone())
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
    container_ready: OnceCell<()>,
}

/// Blobs listed per storage request during a search.
const LIST_PAGE: NonZeroU32 = NonZeroU32::new(250).expect("non-zero");

/// Read-only calls whose records may be in flight at once. Small: these are concurrent requests
/// to storage, and past the bound a read waits for one of them, which a crowd makes slower.
pub const WRITES_BEHIND: u32 = 32;

/// When a call's record is stored relative to its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storing {
    BeforeAnswer,
    AfterAnswer,
}

impl Storing {
    /// Only a read-only tool's record may wait for its answer to go out first.
    pub fn for_effect(effect: Effect) -> Self {
        match effect {
            Effect::Read => Self::AfterAnswer,
            Effect::Write { .. } | Effect::Destructive { .. } => Self::BeforeAnswer,
        }
    }
}

impl AuditLog {
    pub fn new(storage: &Storage) -> Self {
        Self {
            trail: Arc::new(Trail {
                store: JsonBlobStore::new(storage, CONTAINER),
                container_ready: OnceCell::new(),
            }),
            writes_behind: Arc::new(Semaphore::new(WRITES_BEHIND as usize)),
            in_flight: InFlight(Arc::new(watch::Sender::new(0))),
        }
    }

    /// Emits the `audit` event at once and stores the record, before returning or (for
    /// [`Storing::AfterAnswer`]) on a task of its own. A storage failure is logged with the whole
    /// record, so the trail survives in the log stream; the call's result is not changed by it.
    pub async fn append(&self, record: AuditRecord, storing: Storing) {
        emit(&record);
        // The semaphore is never closed, so a permit always comes; without one, store first.
        if storing == Storing::AfterAnswer
            && let Ok(permit) = self.writes_behind.clone().acquire_owned().await
        {
            let trail = self.trail.clone();
            let write = self.in_flight.start();
            tokio::spawn(async move {
                trail.store(&record).await;
                drop((permit, write));
            });
            return;
        }
        self.trail.store(&record).await;
    }

    /// Waits until every record this instance is writing after its answer is stored (or logged
    /// as failed).
    pub async fn flush(&self) {
        self.in_flight.none().await;
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
        // A search sees every call this instance answered before it, reads still being stored too.
        self.flush().await;
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
        "tool call"
    );
}

impl Trail {
    async fn ready(&self) -> Result<(), StorageError> {
        self.container_ready
            .get_or_try_init(|| async { self.store.ensure_container().await.map(|_| ()) })
            .await
            .copied()
    }

    async fn store(&self, record: &AuditRecord) {
        let stored = match self.ready().await {
            Ok(()) => self
                .store
                .create(&record.blob_name(), record)
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = stored {
            let json = serde_json::to_string(record).unwrap_or_default();
            tracing::error!(target: "audit", error = %error, record = %json, "the audit record could not be stored");
        }
    }
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
    fn only_read_only_calls_are_stored_after_their_answer() {
        assert_eq!(Storing::for_effect(Effect::Read), Storing::AfterAnswer);
        for effect in [
            Effect::Write { idempotent: true },
            Effect::Write { idempotent: false },
            Effect::Destructive { idempotent: true },
        ] {
            assert_eq!(
                Storing::for_effect(effect),
                Storing::BeforeAnswer,
                "{effect:?}"
            );
        }
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
