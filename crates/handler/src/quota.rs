//! Limits that every instance of a scaled-out app keeps together: Microsoft's per-tenant
//! quotas (the outbound limiter) and the per-caller request limit (inbound auth).
//!
//! The windows live in a [`SharedQuota`] (a ledger in the app's storage account). An instance
//! claims a small batch of calls at a time, in one conditional write, and spends it before it
//! claims again, so the coordination costs one storage round trip per batch, not per call; a
//! batch spent quickly makes the next claim twice as large (up to a tenth of the smallest
//! limit), an unspent one makes it small again. When the ledger cannot be reached within
//! [`LEDGER_TIMEOUT`], [`SharedAllowances`] says so and each user of it falls back to a local
//! rule (see theirs) for [`FALLBACK_FOR`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// At most `limit` calls in any `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub period: Duration,
}

impl Window {
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(60),
        }
    }

    pub const fn per_hour(limit: u32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(3600),
        }
    }

    /// A call admitted now reaches the service a little later than the one it replaces in the
    /// window did, or a little sooner; a tenth of the period absorbs that skew.
    pub fn span(&self) -> Duration {
        self.period + self.period / 10
    }
}

/// Calls granted to one instance by the [`SharedQuota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Calls granted now (0: the windows are full).
    pub granted: u32,
    /// When granted is 0: how long until the windows have room again.
    pub retry_after: Duration,
}

/// Windows as all instances see them: a ledger, per key, of the calls each instance claimed.
#[async_trait::async_trait]
pub trait SharedQuota: Send + Sync {
    /// Claims up to `want` calls under `key` (a path: `{tenant}/{bucket}`, `callers/{hash}`), to
    /// be sent within `validity`; a claim counts in every window for `validity` plus the
    /// window's span.
    async fn claim(
        &self,
        key: &str,
        windows: &[Window],
        want: u32,
        validity: Duration,
    ) -> Result<Claim, String>;
}

/// A batch of claimed calls is spent within this long (or a quarter of the shortest window).
const CLAIM_VALIDITY: Duration = Duration::from_secs(5);
/// The most calls one claim asks for (a tenth of the smallest limit, if smaller).
const MAX_CLAIM: u32 = 10;
/// A ledger that does not answer within this long counts as unreachable.
pub const LEDGER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an instance keeps to its fallback rule after the ledger failed.
pub const FALLBACK_FOR: Duration = Duration::from_secs(30);
/// Keys tracked before expired ones are dropped (one per tenant bucket, one per caller).
const MAX_TRACKED_KEYS: usize = 10_000;

/// How a call was admitted by [`SharedAllowances::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Out of a batch claimed from the ledger: every instance counted it.
    Shared,
    /// No ledger is set, or it could not be reached lately: the caller keeps to its own rule.
    Local,
}

/// Calls this instance holds from its latest claim under one key.
#[derive(Debug, Default)]
struct Allowance {
    remaining: u32,
    until: Option<Instant>,
    /// How many to ask for next: grows while claims are spent, falls back when they are not.
    next_want: u32,
}

/// This instance's side of a [`SharedQuota`]: the batches it holds, per key.
#[derive(Default)]
pub struct SharedAllowances {
    ledger: OnceLock<Arc<dyn SharedQuota>>,
    /// One claim at a time per key: concurrent calls wait for it and share what it got.
    claiming: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    allowances: Mutex<HashMap<String, Allowance>>,
    /// Until when this instance keeps to its fallback (the ledger failed).
    fallback_until: Mutex<Option<Instant>>,
}

impl SharedAllowances {
    /// Coordinates with the other instances through `ledger` from now on.
    pub fn share(&self, ledger: Arc<dyn SharedQuota>) {
        if self.ledger.set(ledger).is_err() {
            tracing::warn!("a shared quota ledger was already set; the first is kept");
        }
    }

    pub fn is_shared(&self) -> bool {
        self.ledger.get().is_some()
    }

    /// Whether the ledger failed within the last [`FALLBACK_FOR`].
    pub fn in_fallback(&self, now: Instant) -> bool {
        lock(&self.fallback_until).is_some_and(|until| until > now)
    }

    /// Takes one call under `key` from this instance's batch, claiming a new batch from the
    /// ledger when it is spent. When the windows are full across instances it waits for room
    /// until `deadline`; past that it answers `Err` with the wait that would have been needed.
    pub async fn take(
        &self,
        key: &str,
        windows: &[Window],
        deadline: Instant,
    ) -> Result<Admission, Duration> {
        let Some(ledger) = self.ledger.get() else {
            return Ok(Admission::Local);
        };
        let shortest = windows
            .iter()
            .map(|w| w.period)
            .min()
            .unwrap_or(CLAIM_VALIDITY);
        let validity = CLAIM_VALIDITY.min(shortest / 4);
        let max_claim = windows
            .iter()
            .map(|w| (w.limit / 10).max(1))
            .min()
            .unwrap_or(1)
            .min(MAX_CLAIM);
        let claiming = self.claim_lock(key);
        loop {
            let guard = claiming.lock().await;
            let now = Instant::now();
            if self.in_fallback(now) {
                return Ok(Admission::Local);
            }
            let want = {
                let mut allowances = lock(&self.allowances);
                if allowances.len() >= MAX_TRACKED_KEYS && !allowances.contains_key(key) {
                    allowances.retain(|_, allowance| allowance.until.is_some_and(|u| u > now));
                }
                let allowance = allowances.entry(key.to_owned()).or_default();
                if allowance.remaining > 0 && allowance.until.is_some_and(|until| until > now) {
                    allowance.remaining -= 1;
                    return Ok(Admission::Shared);
                }
                // A claim spent before it expired asks for twice as much next time.
                let spent =
                    allowance.remaining == 0 && allowance.until.is_some_and(|until| until > now);
                allowance.next_want = if spent {
                    (allowance.next_want * 2).clamp(1, max_claim)
                } else {
                    1
                };
                allowance.next_want
            };
            let claim =
                tokio::time::timeout(LEDGER_TIMEOUT, ledger.claim(key, windows, want, validity))
                    .await
                    .map_err(|_| format!("no answer within {} s", LEDGER_TIMEOUT.as_secs()))
                    .and_then(|claim| claim);
            match claim {
                Ok(claim) if claim.granted > 0 => {
                    let mut allowances = lock(&self.allowances);
                    let allowance = allowances.entry(key.to_owned()).or_default();
                    allowance.remaining = claim.granted - 1;
                    allowance.until = Some(Instant::now() + validity);
                    return Ok(Admission::Shared);
                }
                Ok(claim) => {
                    let ready_at =
                        Instant::now() + claim.retry_after.max(Duration::from_millis(20));
                    if ready_at > deadline {
                        return Err(claim.retry_after.max(Duration::from_millis(20)));
                    }
                    tracing::debug!(
                        key,
                        wait_ms = claim.retry_after.as_millis() as u64,
                        "windows full across instances; waiting"
                    );
                    drop(guard);
                    tokio::time::sleep_until(ready_at.into()).await;
                }
                Err(error) => {
                    tracing::warn!(
                        key,
                        "the shared quota ledger could not be used ({error}); each instance keeps to its own limits for {} s",
                        FALLBACK_FOR.as_secs()
                    );
                    *lock(&self.fallback_until) = Some(Instant::now() + FALLBACK_FOR);
                    return Ok(Admission::Local);
                }
            }
        }
    }

    fn claim_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut claiming = lock(&self.claiming);
        if claiming.len() >= MAX_TRACKED_KEYS && !claiming.contains_key(key) {
            // Nobody else holds the lock of an idle key.
            claiming.retain(|_, held| Arc::strong_count(held) > 1);
        }
        claiming.entry(key.to_owned()).or_default().clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters only: a panic elsewhere cannot leave them inconsistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger in memory, counting its claims (round trips).
    #[derive(Default)]
    struct Memory {
        granted: Mutex<HashMap<String, u32>>,
        claims: Mutex<u32>,
    }

    #[async_trait::async_trait]
    impl SharedQuota for Memory {
        async fn claim(
            &self,
            key: &str,
            windows: &[Window],
            want: u32,
            _validity: Duration,
        ) -> Result<Claim, String> {
            *lock(&self.claims) += 1;
            let mut granted = lock(&self.granted);
            let used = granted.entry(key.to_owned()).or_default();
            let free = windows[0].limit.saturating_sub(*used);
            let now = want.min(free);
            *used += now;
            Ok(Claim {
                granted: now,
                retry_after: if now == 0 {
                    Duration::from_secs(30)
                } else {
                    Duration::ZERO
                },
            })
        }
    }

    #[tokio::test]
    async fn instances_share_the_window_and_claims_grow_while_spent() {
        let ledger = Arc::new(Memory::default());
        let (one, two) = (SharedAllowances::default(), SharedAllowances::default());
        one.share(ledger.clone());
        two.share(ledger.clone());
        let windows = [Window::per_minute(100)];
        let now = Instant::now();
        let mut admitted = 0;
        let refused = loop {
            let instance = if admitted % 2 == 0 { &one } else { &two };
            match instance.take("t/bucket", &windows, now).await {
                Ok(admission) => {
                    assert_eq!(admission, Admission::Shared);
                    admitted += 1;
                }
                Err(wait) => break wait,
            }
        };
        // The other instance may still hold part of its last batch.
        assert!((90..=100).contains(&admitted), "{admitted} admitted");
        assert_eq!(
            refused,
            Duration::from_secs(30),
            "told when the window frees"
        );
        let claims = *lock(&ledger.claims);
        assert!(
            claims <= 20,
            "batches, not one round trip per call: {claims} claims"
        );
        assert_eq!(
            one.take("t/other", &windows, now).await,
            Ok(Admission::Shared),
            "keys are counted apart"
        );
    }

    struct Down;

    #[async_trait::async_trait]
    impl SharedQuota for Down {
        async fn claim(&self, _: &str, _: &[Window], _: u32, _: Duration) -> Result<Claim, String> {
            Err("storage is down".into())
        }
    }

    #[tokio::test]
    async fn an_unreachable_ledger_means_local_rules_for_a_while() {
        let allowances = SharedAllowances::default();
        assert_eq!(
            allowances
                .take("k", &[Window::per_minute(1)], Instant::now())
                .await,
            Ok(Admission::Local),
            "no ledger set"
        );
        allowances.share(Arc::new(Down));
        assert_eq!(
            allowances
                .take("k", &[Window::per_minute(1)], Instant::now())
                .await,
            Ok(Admission::Local)
        );
        assert!(allowances.in_fallback(Instant::now()));
    }
}
