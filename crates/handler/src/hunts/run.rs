//! The record of one run of a hunt: what it searched, per tenant how it went, and its alert.
//! A run record doubles as the lease on its occurrence (see `runner`).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

use super::definition::{AlertRule, AlertScope, HuntId};
use crate::tenants::TenantId;

/// `20260302T101500Z` for a scheduled occurrence, with a suffix for manual (`-m1a2b3c`) and
/// skipped (`-skipped`) records. Sorting ids sorts runs by time.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct RunId(String);

#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "'{0}' is not a run id: expected a time such as 20260302T101500Z, optionally with a suffix such as -m1a2b3c, as returned by hunt_list_runs"
)]
pub struct InvalidRunId(String);

const STAMP_LEN: usize = 16;

impl RunId {
    pub fn scheduled(occurrence: OffsetDateTime) -> Self {
        Self(stamp(occurrence))
    }

    pub fn manual(at: OffsetDateTime) -> Self {
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self(format!("{}-m{}", stamp(at), &random[..6]))
    }

    /// Named after the newest skipped occurrence, so a second tick that finds the same gap
    /// collides with it instead of recording it twice.
    pub fn skipped(last: OffsetDateTime) -> Self {
        Self(format!("{}-skipped", stamp(last)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The time the id was made for.
    pub fn time(&self) -> Option<OffsetDateTime> {
        time::PrimitiveDateTime::parse(&self.0[..STAMP_LEN], STAMP)
            .ok()
            .map(|t| t.assume_utc())
    }
}

const STAMP: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

fn stamp(t: OffsetDateTime) -> String {
    t.format(STAMP).unwrap_or_default()
}

impl FromStr for RunId {
    type Err = InvalidRunId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let invalid = || InvalidRunId(text.chars().take(64).collect());
        if text.len() < STAMP_LEN || !text.is_char_boundary(STAMP_LEN) {
            return Err(invalid());
        }
        let suffix_ok = match &text[STAMP_LEN..] {
            "" => true,
            rest => rest.strip_prefix('-').is_some_and(|s| {
                !s.is_empty()
                    && s.len() <= 16
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            }),
        };
        let id = Self(text.to_string());
        if suffix_ok && id.time().is_some() {
            Ok(id)
        } else {
            Err(invalid())
        }
    }
}

impl TryFrom<String> for RunId {
    type Error = InvalidRunId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> Self {
        id.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// The occurrence the timer found due.
    Scheduled,
    /// A missed occurrence run late (the app was down or the timer did not fire).
    CatchUp,
    /// Started with hunt_run_now.
    Manual,
    /// Missed occurrences beyond the catch-up bound: recorded, not run.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Some tenants are still to be searched (possibly by the next timer tick).
    Running,
    Succeeded,
    /// At least one tenant failed and at least one succeeded.
    PartiallyFailed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Pending,
    Succeeded,
    Failed,
}

/// How one tenant's search went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantRun {
    pub tenant_id: TenantId,
    pub status: TenantStatus,
    /// Rows advanced hunting returned.
    pub rows: Option<u64>,
    /// Rows kept in storage (at most the per-tenant cap).
    pub stored_rows: u64,
    /// True when more rows were returned than the per-tenant cap, so results are incomplete.
    pub truncated: bool,
    pub error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<OffsetDateTime>,
    /// Times a timer invocation's deadline stopped this tenant before it finished.
    #[serde(default)]
    pub interrupted: u32,
}

impl TenantRun {
    pub fn pending(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            status: TenantStatus::Pending,
            rows: None,
            stored_rows: 0,
            truncated: false,
            error: None,
            finished_at: None,
            interrupted: 0,
        }
    }

    pub fn fail(&mut self, error: String, at: OffsetDateTime) {
        self.status = TenantStatus::Failed;
        self.error = Some(error);
        self.finished_at = Some(at);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Being posted; if the poster stops now, the next tick records `unconfirmed` and does not post again.
    Sending,
    Delivered,
    Failed,
    /// The invocation posting it stopped before it knew the answer; not re-sent, to avoid a duplicate.
    Unconfirmed,
}

/// A fired alert and whether the webhook took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertOutcome {
    pub state: AlertState,
    /// Why it fired, e.g. "42 rows in total, threshold 10".
    pub reason: String,
    pub error: Option<String>,
}

/// Missed occurrences that were recorded instead of run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedOccurrences {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub first: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub last: OffsetDateTime,
    pub count: u64,
    pub reason: String,
}

/// Who is working on a run, until when. Another invocation may take over once it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Lease {
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub until: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunRecord {
    pub hunt_id: HuntId,
    pub hunt_name: String,
    pub run_id: RunId,
    pub kind: RunKind,
    pub status: RunStatus,
    /// The scheduled time this run is for (absent for manual runs).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub occurrence: Option<OffsetDateTime>,
    /// The time range searched: [window_start, window_end].
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub window_start: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub window_end: Option<OffsetDateTime>,
    /// The query as it was when the run started (later edits do not change a started run).
    pub query: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<OffsetDateTime>,
    pub tenants: Vec<TenantRun>,
    /// Rows returned over all tenants that succeeded.
    pub rows_total: u64,
    /// Rows kept per tenant; more are counted but not stored (`truncated`).
    pub row_cap_per_tenant: u64,
    /// Why the whole run failed, when it failed before searching any tenant.
    pub error: Option<String>,
    pub alert_rule: Option<AlertRule>,
    pub alert: Option<AlertOutcome>,
    pub skipped: Option<SkippedOccurrences>,
    pub lease: Option<Lease>,
}

impl RunRecord {
    pub fn is_finished(&self) -> bool {
        self.status != RunStatus::Running
    }

    /// Settles the status once no tenant is pending.
    pub fn finish(&mut self, at: OffsetDateTime) {
        let succeeded = self
            .tenants
            .iter()
            .filter(|t| t.status == TenantStatus::Succeeded)
            .count();
        let failed = self
            .tenants
            .iter()
            .filter(|t| t.status == TenantStatus::Failed)
            .count();
        self.rows_total = self.tenants.iter().filter_map(|t| t.rows).sum();
        self.status = match (succeeded, failed) {
            (_, 0) if self.error.is_none() && succeeded > 0 => RunStatus::Succeeded,
            (0, _) => RunStatus::Failed,
            _ => RunStatus::PartiallyFailed,
        };
        self.finished_at = Some(at);
    }

    /// Why the alert rule fires for this finished run, if it does.
    pub fn alert_reason(&self) -> Option<String> {
        let rule = self.alert_rule.as_ref()?;
        match rule.scope {
            AlertScope::Total => (self.rows_total > rule.threshold).then(|| {
                format!(
                    "{} rows in total, threshold {}",
                    self.rows_total, rule.threshold
                )
            }),
            AlertScope::PerTenant => {
                let over: Vec<String> = self
                    .tenants
                    .iter()
                    .filter_map(|t| {
                        t.rows
                            .filter(|rows| *rows > rule.threshold)
                            .map(|rows| format!("{}: {rows} rows", t.tenant_id))
                    })
                    .collect();
                (!over.is_empty()).then(|| {
                    format!(
                        "{} (threshold {} per tenant)",
                        over.join(", "),
                        rule.threshold
                    )
                })
            }
        }
    }

    /// `start/end` in the form Graph's runHuntingQuery accepts as its Timespan.
    pub fn timespan(&self) -> Option<String> {
        Some(format!(
            "{}/{}",
            super::format_time(self.window_start?),
            super::format_time(self.window_end?)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn run_ids_sort_by_time_and_parse_back() {
        let scheduled = RunId::scheduled(datetime!(2026-03-02 10:15:00 UTC));
        assert_eq!(scheduled.as_str(), "20260302T101500Z");
        assert_eq!(scheduled.time(), Some(datetime!(2026-03-02 10:15:00 UTC)));
        let manual = RunId::manual(datetime!(2026-03-02 10:16:07 UTC));
        assert!(manual > scheduled);
        assert_eq!(manual.as_str().parse::<RunId>().expect("parses"), manual);
        assert_eq!(
            RunId::skipped(datetime!(2026-03-02 09:00:00 UTC)).as_str(),
            "20260302T090000Z-skipped"
        );
        for bad in [
            "",
            "yesterday",
            "20261302T101500Z",
            "20260302T101500Z-",
            "20260302T101500Z-UPPER",
            "20260302T101500Z/../x",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }
}
