//! Per-caller token buckets: a caller may send `burst` requests at once, then one every
//! `60 / per_minute` seconds. Per instance: a scaled-out app multiplies the allowance by its
//! instance count, which bounds a runaway client without shared state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

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
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            per_second: f64::from(limit.per_minute) / 60.0,
            burst: f64::from(limit.burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `caller`, or says how long until one is available.
    pub fn take(&self, caller: &str) -> Result<(), Duration> {
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

    #[test]
    fn a_burst_is_allowed_then_the_pace_applies_per_caller() {
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 60,
            burst: 3,
        });
        for _ in 0..3 {
            limiter.take("alice").expect("within the burst");
        }
        let wait = limiter.take("alice").expect_err("burst used up");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        limiter
            .take("bob")
            .expect("another caller has their own bucket");
    }
}
