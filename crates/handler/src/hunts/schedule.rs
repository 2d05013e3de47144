//! When a hunt is due: its schedule (cron in UTC, or every N minutes or hours) and the pure
//! computation of which occurrences a tick runs, catches up or skips. Nothing here reads a clock:
//! "now" is always passed in, so every case is tested with fixed times.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Where "now" comes from, so tests can move time instead of sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Hunts closer together than this would mostly run as catch-up of the timer's own period.
pub const MIN_INTERVAL: Duration = Duration::minutes(5);
/// Skipped occurrences are counted up to this many (a year of five-minute occurrences).
const MAX_COUNTED: u64 = 105_120;
/// How many consecutive cron occurrences are checked against [`MIN_INTERVAL`].
const INTERVAL_PROBES: usize = 400;

/// How often a hunt runs, always in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Five-field cron in UTC, e.g. `30 7 * * 1-5` (six-field NCRONTAB with seconds too).
    Cron(String),
    /// Every N minutes (5-1440), aligned to the hour: 15 runs at :00, :15, :30, :45.
    EveryMinutes(u32),
    /// Every N hours (1-168), aligned to UTC midnight: 6 runs at 00, 06, 12, 18.
    EveryHours(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "cron expression '{expression}' is not valid: {reason}; expected five fields (minute hour day-of-month month day-of-week) in UTC, e.g. '0 */6 * * *'"
    )]
    InvalidCron { expression: String, reason: String },
    #[error("cron expression '{0}' never occurs")]
    NeverOccurs(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("the schedule runs more often than every {} minutes (occurrences {first} and {second} are {gap_seconds} s apart); hunts may run at most every 5 minutes", MIN_INTERVAL.whole_minutes())]
    TooFrequent {
        first: String,
        second: String,
        gap_seconds: i64,
    },
}

impl Schedule {
    pub fn compile(&self) -> Result<CompiledSchedule, ScheduleError> {
        let kind = match self {
            Self::Cron(expression) => {
                let parser = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .year(Year::Disallowed)
                    .build();
                let cron = parser.parse(expression.trim()).map_err(|error| {
                    ScheduleError::InvalidCron {
                        expression: expression.clone(),
                        reason: error.to_string(),
                    }
                })?;
                let compiled = CompiledSchedule {
                    kind: Kind::Cron(Box::new(cron)),
                };
                compiled.check_cron_interval(expression)?;
                return Ok(compiled);
            }
            Self::EveryMinutes(minutes) => {
                if !(5..=1440).contains(minutes) {
                    return Err(ScheduleError::OutOfRange(format!(
                        "every_minutes must be between 5 and 1440, got {minutes}"
                    )));
                }
                Kind::Every(Duration::minutes(i64::from(*minutes)))
            }
            Self::EveryHours(hours) => {
                if !(1..=168).contains(hours) {
                    return Err(ScheduleError::OutOfRange(format!(
                        "every_hours must be between 1 and 168, got {hours}"
                    )));
                }
                Kind::Every(Duration::hours(i64::from(*hours)))
            }
        };
        Ok(CompiledSchedule { kind })
    }

    /// For people: `cron '0 */6 * * *' (UTC)`, `every 15 minutes`.
    pub fn describe(&self) -> String {
        match self {
            Self::Cron(expression) => format!("cron '{}' (UTC)", expression.trim()),
            Self::EveryMinutes(minutes) => format!("every {minutes} minutes"),
            Self::EveryHours(1) => "every hour".to_string(),
            Self::EveryHours(hours) => format!("every {hours} hours"),
        }
    }
}

enum Kind {
    Cron(Box<Cron>),
    /// Multiples of the period since the Unix epoch.
    Every(Duration),
}

pub struct CompiledSchedule {
    kind: Kind,
}

/// Occurrences older than the ones a tick runs: recorded, not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRange {
    pub first: OffsetDateTime,
    pub last: OffsetDateTime,
    /// Exact up to a year of five-minute occurrences; larger gaps report that many.
    pub count: u64,
}

/// What one tick does for one hunt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Due {
    /// Occurrences to run, oldest first. All but the last were missed (catch-up).
    pub run: Vec<OffsetDateTime>,
    /// Missed occurrences beyond the catch-up bound.
    pub skipped: Option<SkippedRange>,
}

impl Due {
    /// The newest occurrence this tick accounts for, run or skipped.
    pub fn latest(&self) -> Option<OffsetDateTime> {
        self.run
            .last()
            .copied()
            .or(self.skipped.as_ref().map(|s| s.last))
    }
}

/// The occurrences in `(after, now]`: the newest `max_runs` are run, older ones are skipped.
/// `after` is the later of the hunt's schedule anchor (created, re-enabled or rescheduled) and
/// the last occurrence already accounted for, so nothing is run twice or before it was wanted.
pub fn due(
    schedule: &CompiledSchedule,
    after: OffsetDateTime,
    now: OffsetDateTime,
    max_runs: usize,
) -> Due {
    let mut newest_first = Vec::new();
    let mut cursor = schedule.latest_at_or_before(now);
    while let Some(occurrence) = cursor {
        if occurrence <= after || newest_first.len() == max_runs.max(1) {
            break;
        }
        newest_first.push(occurrence);
        cursor = schedule.latest_at_or_before(occurrence - Duration::SECOND);
    }
    let skipped = cursor
        .filter(|last| *last > after && newest_first.len() == max_runs.max(1))
        .and_then(|last| {
            let first = schedule.next_after(after)?;
            Some(SkippedRange {
                first,
                last,
                count: schedule.count_between(first, last),
            })
        });
    newest_first.reverse();
    Due {
        run: newest_first,
        skipped,
    }
}

impl CompiledSchedule {
    /// The first occurrence strictly after `t`.
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match &self.kind {
            Kind::Cron(cron) => cron
                .find_next_occurrence(&to_chrono(t)?, false)
                .ok()
                .and_then(from_chrono),
            Kind::Every(period) => {
                let step = period.whole_seconds();
                let next = (t.unix_timestamp().div_euclid(step) + 1) * step;
                OffsetDateTime::from_unix_timestamp(next).ok()
            }
        }
    }

    /// The latest occurrence at or before `t`.
    pub fn latest_at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match &self.kind {
            Kind::Cron(cron) => cron
                .find_previous_occurrence(&to_chrono(t)?, true)
                .ok()
                .and_then(from_chrono),
            Kind::Every(period) => {
                let step = period.whole_seconds();
                OffsetDateTime::from_unix_timestamp(t.unix_timestamp().div_euclid(step) * step).ok()
            }
        }
    }

    /// The schedule's period as of `t`: from the occurrence before the latest one at or before
    /// `t` to that one. A hunt without an explicit lookback searches this window, so consecutive
    /// runs cover time without gaps or overlaps.
    pub fn period_ending_at(&self, t: OffsetDateTime) -> Duration {
        match &self.kind {
            Kind::Every(period) => *period,
            Kind::Cron(_) => {
                let latest = self.latest_at_or_before(t);
                let before =
                    latest.and_then(|latest| self.latest_at_or_before(latest - Duration::SECOND));
                match (latest, before) {
                    (Some(latest), Some(before)) => latest - before,
                    _ => MIN_INTERVAL,
                }
            }
        }
    }

    /// The next `n` occurrences after `t`, for people planning around a hunt.
    pub fn upcoming(&self, t: OffsetDateTime, n: usize) -> Vec<OffsetDateTime> {
        std::iter::successors(self.next_after(t), |previous| self.next_after(*previous))
            .take(n)
            .collect()
    }

    fn count_between(&self, first: OffsetDateTime, last: OffsetDateTime) -> u64 {
        match &self.kind {
            Kind::Every(period) => {
                u64::try_from((last - first).whole_seconds() / period.whole_seconds() + 1)
                    .unwrap_or(0)
            }
            Kind::Cron(_) => {
                let mut count = 0;
                let mut cursor = Some(first);
                while let Some(occurrence) = cursor.filter(|o| *o <= last) {
                    count += 1;
                    if count == MAX_COUNTED {
                        break;
                    }
                    cursor = self.next_after(occurrence);
                }
                count
            }
        }
    }

    fn check_cron_interval(&self, expression: &str) -> Result<(), ScheduleError> {
        // A fixed reference keeps validation deterministic; the probes span every weekday and,
        // for frequent schedules, the hour boundaries where cron gaps are shortest.
        let reference = OffsetDateTime::from_unix_timestamp(1_735_689_600)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let occurrences = self.upcoming(reference, INTERVAL_PROBES);
        if occurrences.is_empty() {
            return Err(ScheduleError::NeverOccurs(expression.to_string()));
        }
        for pair in occurrences.windows(2) {
            let gap = pair[1] - pair[0];
            if gap < MIN_INTERVAL {
                return Err(ScheduleError::TooFrequent {
                    first: super::format_time(pair[0]),
                    second: super::format_time(pair[1]),
                    gap_seconds: gap.whole_seconds(),
                });
            }
        }
        Ok(())
    }
}

fn to_chrono(t: OffsetDateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), 0)
}

fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// `every 15m`, `every 6h`, anything else is cron.
    fn parse(text: &str) -> Schedule {
        let every = |suffix: char| {
            text.strip_prefix("every ")
                .and_then(|rest| rest.strip_suffix(suffix))
                .and_then(|n| n.parse::<u32>().ok())
        };
        match (every('m'), every('h')) {
            (Some(minutes), _) => Schedule::EveryMinutes(minutes),
            (_, Some(hours)) => Schedule::EveryHours(hours),
            _ => Schedule::Cron(text.to_string()),
        }
    }

    fn compiled(text: &str) -> CompiledSchedule {
        parse(text).compile().expect("compiles")
    }

    #[test]
    fn not_due_before_the_first_occurrence_after_the_anchor() {
        let every_15 = compiled("every 15m");
        let created = datetime!(2026-03-02 10:07:00 UTC);
        assert_eq!(
            due(&every_15, created, datetime!(2026-03-02 10:14:59 UTC), 3),
            Due::default()
        );
        let at = due(&every_15, created, datetime!(2026-03-02 10:15:00 UTC), 3);
        assert_eq!(at.run, vec![datetime!(2026-03-02 10:15:00 UTC)]);
        assert_eq!(at.skipped, None);
    }

    #[test]
    fn an_occurrence_already_accounted_for_is_not_due_again() {
        let every_15 = compiled("every 15m");
        let last = datetime!(2026-03-02 10:15:00 UTC);
        assert!(
            due(&every_15, last, datetime!(2026-03-02 10:29:00 UTC), 3)
                .run
                .is_empty()
        );
        assert_eq!(
            due(&every_15, last, datetime!(2026-03-02 10:31:00 UTC), 3).run,
            vec![datetime!(2026-03-02 10:30:00 UTC)]
        );
    }

    #[test]
    fn missed_occurrences_are_caught_up_within_the_bound_and_the_rest_skipped() {
        let hourly = compiled("0 * * * *");
        let last = datetime!(2026-03-02 03:00:00 UTC);
        // Down from 03:10 to 09:20: 04:00 … 09:00 were missed (six occurrences).
        let due = due(&hourly, last, datetime!(2026-03-02 09:20:00 UTC), 3);
        assert_eq!(
            due.run,
            vec![
                datetime!(2026-03-02 07:00:00 UTC),
                datetime!(2026-03-02 08:00:00 UTC),
                datetime!(2026-03-02 09:00:00 UTC)
            ]
        );
        assert_eq!(
            due.skipped,
            Some(SkippedRange {
                first: datetime!(2026-03-02 04:00:00 UTC),
                last: datetime!(2026-03-02 06:00:00 UTC),
                count: 3
            })
        );
        assert_eq!(due.latest(), Some(datetime!(2026-03-02 09:00:00 UTC)));
    }

    #[test]
    fn catch_up_within_the_bound_skips_nothing() {
        let every_5 = compiled("every 5m");
        let due = due(
            &every_5,
            datetime!(2026-03-02 10:00:00 UTC),
            datetime!(2026-03-02 10:12:00 UTC),
            3,
        );
        assert_eq!(
            due.run,
            vec![
                datetime!(2026-03-02 10:05:00 UTC),
                datetime!(2026-03-02 10:10:00 UTC)
            ]
        );
        assert_eq!(due.skipped, None);
    }

    #[test]
    fn cron_days_of_week_are_honoured() {
        // Weekdays at 07:30 UTC; 2026-03-06 is a Friday.
        let weekdays = compiled("30 7 * * 1-5");
        let friday_evening = datetime!(2026-03-06 18:00:00 UTC);
        assert!(
            due(
                &weekdays,
                friday_evening,
                datetime!(2026-03-09 07:29:00 UTC),
                3
            )
            .run
            .is_empty(),
            "nothing at the weekend"
        );
        assert_eq!(
            due(
                &weekdays,
                friday_evening,
                datetime!(2026-03-09 07:31:00 UTC),
                3
            )
            .run,
            vec![datetime!(2026-03-09 07:30:00 UTC)]
        );
        assert_eq!(
            weekdays.period_ending_at(datetime!(2026-03-09 07:30:00 UTC)),
            Duration::days(3)
        );
    }

    #[test]
    fn six_field_ncrontab_is_accepted() {
        let every_5 = compiled("0 */5 * * * *");
        assert_eq!(
            every_5.next_after(datetime!(2026-03-02 10:01:00 UTC)),
            Some(datetime!(2026-03-02 10:05:00 UTC))
        );
    }

    #[test]
    fn periods_align_to_utc() {
        let every_6h = compiled("every 6h");
        assert_eq!(
            every_6h.next_after(datetime!(2026-03-02 13:00:00 UTC)),
            Some(datetime!(2026-03-02 18:00:00 UTC))
        );
        assert_eq!(
            every_6h.period_ending_at(datetime!(2026-03-02 13:00:00 UTC)),
            Duration::hours(6)
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        let cases = [
            ("every 1m", "between 5 and 1440"),
            ("every 0h", "between 1 and 168"),
            ("* * * * *", "at most every 5 minutes"),
            ("0,2 * * * *", "at most every 5 minutes"),
            ("61 * * * *", "not valid"),
            ("hourly please", "not valid"),
        ];
        for (text, expected) in cases {
            let error = parse(text)
                .compile()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| panic!("{text} must be refused"));
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
