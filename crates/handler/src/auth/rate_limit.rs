//! Per-caller request limits: a caller may send `burst` requests at once, then one every
//! `60 / per_minute` seconds (a token bucket on each instance), and at most `per_minute` in any
//! minute across all instances of the app (a window kept in the shared quota ledger, claimed
//! in batches; see [`crate::quota`]). While the ledger cannot be reached, each instance keeps to
//! its own bucket only: a runaway client is still bounded, by the instance count times the
//! limit, and nobody is refused because storage is slow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::RateLimit;
use crate::quota::{SharedAllowances, SharedQuota, Window};

/// Buckets kept before full (idle) ones are dropped.
const MAX_TRACKED_CALLERS: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// `per_minute` in any minute, for all instances together.
    window: Window,
    shared: SharedAllowances,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            per_second: f64::from(limit.per_minute) / 60.0,
            burst: f64::from(limit.burst),
            buckets: Mutex::new(HashMap::new()),
            window: Window::per_minute(limit.per_minute),
            shared: SharedAllowances::default(),
        }
    }

    /// Counts every caller's requests with the app's other instances through `ledger` from now on.
    pub fn share(&self, ledger: Arc<dyn SharedQuota>) {
        self.shared.share(ledger);
    }

    /// Admits one request of `caller`, or says how long until one would be admitted: this
    /// instance's bucket first, then the window all instances share (never waiting for it).
    pub async fn take(&self, caller: &str) -> Result<(), Duration> {
        self.take_local(caller)?;
        if !self.shared.is_shared() {
            return Ok(());
        }
        // Caller names stay out of blob names.
        let key = format!("callers/{:x}", Sha256::digest(caller.as_bytes()));
        match self.shared.take(&key, &[self.window], Instant::now()).await {
            Ok(_) => Ok(()),
            Err(wait) => {
                self.refund(caller);
                Err(wait)
            }
        }
    }

    /// The token of a request the shared window refused goes back to the caller's bucket.
    fn refund(&self, caller: &str) {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(bucket) = buckets.get_mut(caller) {
            bucket.tokens = (bucket.tokens + 1.0).min(self.burst);
        }
    }

    /// Takes one request's token from `caller`'s bucket on this instance.
    fn take_local(&self, caller: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_TRACKED_CALLERS && !buckets.contains_key(caller) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * per_second
                    < burst
            });
        }
        let bucket = buckets.entry(caller.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.tokens = (bucket.tokens
            + now.duration_since(bucket.updated).as_secs_f64() * self.per_second)
            .min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_allowed_then_the_pace_applies_per_caller() {
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 60,
            burst: 3,
        });
        for _ in 0..3 {
            limiter.take("alice").await.expect("within the burst");
        }
        let wait = limiter.take("alice").await.expect_err("burst used up");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        limiter
            .take("bob")
            .await
            .expect("another caller has their own bucket");
    }
}
