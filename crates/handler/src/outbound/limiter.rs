//! Rate governance: Microsoft throttles each tenant per API family (Defender machine and
//! machine-action endpoints: 100 calls a minute and 1,500 an hour). Bulk work that ignores this
//! storms into 429s and then waits blindly; this limiter instead keeps a sliding log of calls per
//! (tenant, bucket) and holds each call until it fits every window, so a 500-device isolation
//! paces itself and the service never has to refuse it.
//!
//! Waiting is bounded: one tool call waits at most until its pacing deadline (set for the whole
//! call with [`with_deadline`]); a call that would have to wait longer fails at once with the
//! time it would have needed, so bulk tools can report the devices they did not reach.
//!
//! The log lives in this process; what several instances of a scaled-out app send together is
//! coordinated through a [`SharedQuota`] (see [`crate::quota`]: batches claimed from a ledger in
//! the app's storage account), so N instances together stay under Microsoft's limits. When the
//! ledger cannot be reached, each instance falls back to a quarter of every limit on its own log
//! until it can.
//! 429s from Microsoft are still honoured (and teach the limiter to hold the bucket for the
//! `Retry-After` time).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use std::time::Instant;

pub use crate::limits::{Bucket, RateLimits};
use crate::quota::{Admission, SharedAllowances};
pub use crate::quota::{SharedQuota, Window};
use crate::tenants::TenantId;

/// Without the ledger, an instance keeps to this fraction of every limit.
const FALLBACK_SHARE: u32 = 4;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with a pacing deadline: no call inside it waits for a rate-limit slot past `deadline`.
pub async fn with_deadline<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The pacing deadline of the running tool call, if one was set.
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// The limiter refused to wait: the next slot is `wait` away, past the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub bucket: Bucket,
    pub wait: Duration,
}

#[derive(Default)]
struct Log {
    calls: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

pub struct RateLimiter {
    limits: RateLimits,
    /// Per tenant, then per bucket: a call looks its tenant up by reference, so admitting one
    /// allocates nothing once the tenant has been seen.
    logs: Mutex<HashMap<TenantId, HashMap<Bucket, Log>>>,
    /// The batches this instance holds of what all instances may send.
    shared: SharedAllowances,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            logs: Mutex::new(HashMap::new()),
            shared: SharedAllowances::default(),
        }
    }

    /// Coordinates with the other instances through `ledger` from now on.
    pub fn share(&self, ledger: std::sync::Arc<dyn SharedQuota>) {
        self.shared.share(ledger);
    }

    /// Waits until one call fits every window of every bucket, for this instance and (with a
    /// ledger) for all of them, then records it.
    pub async fn acquire(
        &self,
        tenant: &TenantId,
        buckets: &[Bucket],
        deadline: Instant,
    ) -> Result<(), OverBudget> {
        for bucket in buckets {
            let key = format!("{tenant}/{bucket:?}");
            match self
                .shared
                .take(&key, self.limits.windows(*bucket), deadline)
                .await
            {
                Ok(Admission::Shared | Admission::Local) => {}
                Err(wait) => {
                    return Err(OverBudget {
                        bucket: *bucket,
                        wait,
                    });
                }
            }
        }
        loop {
            let now = Instant::now();
            let Err((bucket, ready_at)) = self.try_admit(tenant, buckets, now) else {
                return Ok(());
            };
            if ready_at > deadline {
                return Err(OverBudget {
                    bucket,
                    wait: ready_at - now,
                });
            }
            tracing::debug!(tenant = %tenant, bucket = ?bucket, wait_ms = (ready_at - now).as_millis() as u64, "pacing a Microsoft API call");
            tokio::time::sleep_until(ready_at.into()).await;
        }
    }

    /// Records a call at `now` if it fits; otherwise the fullest bucket and when it frees up.
    fn try_admit(
        &self,
        tenant: &TenantId,
        buckets: &[Bucket],
        now: Instant,
    ) -> Result<(), (Bucket, Instant)> {
        let fallback = self.shared.is_shared() && self.shared.in_fallback(now);
        let mut logs = self.lock();
        let logs = tenant_logs(&mut logs, tenant);
        let fullest = buckets
            .iter()
            .map(|bucket| {
                (
                    *bucket,
                    self.ready_at(*bucket, logs.entry(*bucket).or_default(), now, fallback),
                )
            })
            .max_by_key(|(_, ready_at)| *ready_at);
        match fullest {
            Some((bucket, ready_at)) if ready_at > now => Err((bucket, ready_at)),
            _ => {
                for bucket in buckets {
                    let calls = &mut logs.entry(*bucket).or_default().calls;
                    // Callers read the clock before taking the lock, so `now` can trail the newest
                    // entry by a moment; recording the later of the two keeps the log sorted,
                    // which `ready_at` searches rely on.
                    let at = calls.back().map_or(now, |newest| now.max(*newest));
                    calls.push_back(at);
                }
                Ok(())
            }
        }
    }

    /// The service throttled a call anyway (another instance, another app): hold the buckets.
    pub fn hold(&self, tenant: &TenantId, buckets: &[Bucket], retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut logs = self.lock();
        let logs = tenant_logs(&mut logs, tenant);
        for bucket in buckets {
            let log = logs.entry(*bucket).or_default();
            log.blocked_until = Some(
                log.blocked_until
                    .map_or(until, |current| current.max(until)),
            );
        }
    }

    /// When the next call fits this bucket; forgets calls older than its longest window.
    fn ready_at(&self, bucket: Bucket, log: &mut Log, now: Instant, fallback: bool) -> Instant {
        let windows = self.limits.windows(bucket);
        let longest = windows.iter().map(Window::span).max().unwrap_or_default();
        while log
            .calls
            .front()
            .is_some_and(|call| now.saturating_duration_since(*call) >= longest)
        {
            log.calls.pop_front();
        }
        let mut ready = log
            .blocked_until
            .filter(|until| *until > now)
            .unwrap_or(now);
        for window in windows {
            let limit = if fallback {
                (window.limit / FALLBACK_SHARE).max(1) as usize
            } else {
                window.limit as usize
            };
            // The log is sorted: a binary search finds the first call still inside the window,
            // so a busy tenant's hour of calls costs a few comparisons, not a scan.
            let first_inside = log
                .calls
                .partition_point(|call| now.saturating_duration_since(*call) >= window.span());
            let inside = log.calls.len() - first_inside;
            if inside >= limit {
                // The call that must leave the window before another fits; a limit of zero never frees.
                let frees = match log.calls.get(first_inside + (inside - limit)) {
                    Some(oldest) if limit > 0 => *oldest + window.span(),
                    _ => now + window.span(),
                };
                ready = ready.max(frees);
            }
        }
        ready
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, HashMap<Bucket, Log>>> {
        // The log is only ever appended to or trimmed; a panic elsewhere cannot leave it inconsistent.
        self.logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The tenant's logs, created the first time the tenant is seen (the only time its id is cloned).
fn tenant_logs<'a>(
    logs: &'a mut HashMap<TenantId, HashMap<Bucket, Log>>,
    tenant: &TenantId,
) -> &'a mut HashMap<Bucket, Log> {
    if !logs.contains_key(tenant) {
        logs.insert(tenant.clone(), HashMap::new());
    }
    // `entry` would take an owned id on every call; this lookup borrows it.
    logs.get_mut(tenant)
        .expect("the tenant's logs exist: inserted just above")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        "11111111-1111-4111-8111-111111111111"
            .parse()
            .expect("guid")
    }

    fn limiter(windows: Vec<Window>) -> RateLimiter {
        let mut limits = RateLimits::documented(100, 1500);
        limits.defender_machines = windows;
        RateLimiter::new(limits)
    }

    /// Admits calls one after another on a simulated clock, each as soon as it fits; returns
    /// the offsets (seconds from the start) at which they were admitted.
    fn admission_times(limiter: &RateLimiter, buckets: &[Bucket], calls: usize) -> Vec<u64> {
        let start = Instant::now();
        let mut now = start;
        (0..calls)
            .map(|_| {
                loop {
                    match limiter.try_admit(&tenant(), buckets, now) {
                        Ok(()) => break (now - start).as_secs(),
                        Err((_, ready_at)) => now = ready_at,
                    }
                }
            })
            .collect()
    }

    #[test]
    fn calls_beyond_the_minute_limit_wait_for_the_window() {
        let limiter = limiter(vec![Window::per_minute(3)]);
        // Calls 4-6 wait one window (66 s with the skew margin), call 7 a second one.
        assert_eq!(
            admission_times(&limiter, &[Bucket::DefenderMachines], 7),
            vec![0, 0, 0, 66, 66, 66, 132]
        );
    }

    #[test]
    fn the_hour_limit_paces_even_when_minutes_have_room() {
        let limiter = limiter(vec![Window::per_minute(100), Window::per_hour(5)]);
        assert_eq!(
            admission_times(&limiter, &[Bucket::DefenderMachines], 6),
            vec![0, 0, 0, 0, 0, 3960]
        );
    }

    #[test]
    fn a_call_in_two_buckets_waits_for_the_fuller_one() {
        let mut limits = RateLimits::documented(100, 1500);
        limits.defender_live_response = vec![Window::per_minute(1)];
        let limiter = RateLimiter::new(limits);
        let both = [Bucket::DefenderMachines, Bucket::DefenderLiveResponse];
        assert_eq!(admission_times(&limiter, &both, 2), vec![0, 66]);
    }

    #[test]
    fn tenants_and_buckets_are_counted_apart() {
        let limiter = limiter(vec![Window::per_minute(1)]);
        let other: TenantId = "22222222-2222-4222-8222-222222222222"
            .parse()
            .expect("guid");
        let now = Instant::now();
        assert!(
            limiter
                .try_admit(&tenant(), &[Bucket::DefenderMachines], now)
                .is_ok()
        );
        assert!(
            limiter
                .try_admit(&other, &[Bucket::DefenderMachines], now)
                .is_ok(),
            "another tenant fits"
        );
        assert!(
            limiter
                .try_admit(&tenant(), &[Bucket::DefenderGeneral], now)
                .is_ok(),
            "another bucket fits"
        );
        assert!(
            limiter
                .try_admit(&tenant(), &[Bucket::DefenderMachines], now)
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_wait_past_the_deadline_is_refused_at_once() {
        let limiter = limiter(vec![Window::per_minute(1)]);
        let start = Instant::now();
        limiter
            .acquire(&tenant(), &[Bucket::DefenderMachines], start)
            .await
            .expect("the first call fits");
        let refused = limiter
            .acquire(
                &tenant(),
                &[Bucket::DefenderMachines],
                start + Duration::from_secs(10),
            )
            .await
            .expect_err("the next slot is a minute away");
        assert_eq!(refused.bucket, Bucket::DefenderMachines);
        assert!(refused.wait > Duration::from_secs(60), "{refused:?}");
    }

    #[tokio::test]
    async fn a_throttle_from_the_service_holds_the_bucket() {
        let limiter = limiter(vec![Window::per_minute(100)]);
        limiter.hold(
            &tenant(),
            &[Bucket::DefenderMachines],
            Duration::from_secs(30),
        );
        let refused = limiter
            .acquire(
                &tenant(),
                &[Bucket::DefenderMachines],
                Instant::now() + Duration::from_secs(5),
            )
            .await
            .expect_err("held for 30 s");
        assert!(refused.wait > Duration::from_secs(25), "{refused:?}");
    }

    #[test]
    fn scaling_shortens_every_period() {
        let scaled = RateLimits::documented(100, 1500).with_periods_divided_by(60);
        assert_eq!(
            scaled.defender_machines,
            vec![
                Window {
                    limit: 100,
                    period: Duration::from_secs(1)
                },
                Window {
                    limit: 1500,
                    period: Duration::from_secs(60)
                }
            ]
        );
    }
}
