//! The shared quota ledger ([`crate::quota::SharedQuota`]): one blob per key (a tenant's API
//! family, a caller) in the app's storage account, holding the batches of calls each instance
//! claimed.
//! A claim is one read and one conditional write (If-Match), so instances racing for the last
//! calls of a window never both get them; a batch is spent by its instance before it claims
//! again, so the cost is one round trip per batch, not per call.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{JsonBlobStore, Storage, StorageError};
use crate::quota::{Claim, SharedQuota, Window};

/// Conditional-write retries before a claim reports the ledger as contended.
const MAX_ATTEMPTS: usize = 8;

/// The ledger of one tenant's API family.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    grants: Vec<Grant>,
}

/// Calls claimed by one instance at `at`, to be sent within `valid_ms`.
#[derive(Debug, Serialize, Deserialize)]
struct Grant {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    count: u32,
    valid_ms: u64,
}

impl Grant {
    /// Until when the grant counts in a window: its calls may be sent until the end of its
    /// validity, and each counts for the window's length after that.
    fn counts_until(&self, window: &Window) -> OffsetDateTime {
        self.at + time::Duration::milliseconds(self.valid_ms as i64) + to_time(window.span())
    }
}

pub struct QuotaLedger {
    blobs: JsonBlobStore,
}

impl QuotaLedger {
    pub fn new(storage: &Storage, container: &str) -> Self {
        Self {
            blobs: JsonBlobStore::new(storage, container),
        }
    }

    async fn ensure_container(&self) -> Result<(), StorageError> {
        self.blobs.ensure_container_once().await
    }
}

fn to_time(duration: Duration) -> time::Duration {
    time::Duration::try_from(duration).unwrap_or(time::Duration::DAY)
}

/// What can be granted now out of `want`, given the ledger; the ledger is trimmed of grants no
/// window counts any more.
fn decide(ledger: &mut Ledger, windows: &[Window], want: u32, now: OffsetDateTime) -> Claim {
    ledger.grants.retain(|grant| {
        windows
            .iter()
            .any(|window| grant.counts_until(window) > now)
    });
    let mut granted = want;
    let mut retry_after = Duration::ZERO;
    for window in windows {
        let counted = ledger
            .grants
            .iter()
            .filter(|grant| grant.counts_until(window) > now);
        let used: u32 = counted.clone().map(|grant| grant.count).sum();
        let free = window.limit.saturating_sub(used);
        granted = granted.min(free);
        if free == 0 {
            let frees = counted
                .map(|grant| grant.counts_until(window) - now)
                .min()
                .unwrap_or(time::Duration::ZERO);
            retry_after = retry_after.max(frees.unsigned_abs());
        }
    }
    Claim {
        granted,
        retry_after,
    }
}

#[async_trait::async_trait]
impl SharedQuota for QuotaLedger {
    async fn claim(
        &self,
        key: &str,
        windows: &[Window],
        want: u32,
        validity: Duration,
    ) -> Result<Claim, String> {
        self.ensure_container()
            .await
            .map_err(|error| error.to_string())?;
        let name = format!("{key}.json");
        for _ in 0..MAX_ATTEMPTS {
            let (mut ledger, etag) = match self.blobs.get::<Ledger>(&name).await {
                Ok(Some((ledger, etag))) => (ledger, Some(etag)),
                Ok(None) => (Ledger::default(), None),
                Err(error) => return Err(error.to_string()),
            };
            let now = OffsetDateTime::now_utc();
            let claim = decide(&mut ledger, windows, want, now);
            if claim.granted == 0 {
                return Ok(claim);
            }
            ledger.grants.push(Grant {
                at: now,
                count: claim.granted,
                valid_ms: validity.as_millis() as u64,
            });
            let written = match &etag {
                Some(etag) => self.blobs.replace(&name, &ledger, etag).await.map(drop),
                None => self.blobs.create(&name, &ledger).await.map(drop),
            };
            match written {
                Ok(()) => return Ok(claim),
                Err(StorageError::Conflict { .. } | StorageError::AlreadyExists { .. }) => continue,
                Err(error) => return Err(error.to_string()),
            }
        }
        Err(format!(
            "the ledger {name} kept changing under this claim ({MAX_ATTEMPTS} attempts)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(limit: u32, seconds: u64) -> Window {
        Window {
            limit,
            period: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn grants_stop_at_the_limit_and_say_when_the_window_frees() {
        let now = OffsetDateTime::now_utc();
        let mut ledger = Ledger::default();
        let windows = [window(10, 60)];
        let mut total = 0;
        for _ in 0..4 {
            let claim = decide(&mut ledger, &windows, 4, now);
            total += claim.granted;
            if claim.granted > 0 {
                ledger.grants.push(Grant {
                    at: now,
                    count: claim.granted,
                    valid_ms: 5_000,
                });
            } else {
                // The first grant counts for its 5 s validity and the window's 66 s span.
                assert_eq!(claim.retry_after, Duration::from_secs(71));
            }
        }
        assert_eq!(total, 10, "4 + 4 + 2, then nothing");
        // Once the window has passed, the ledger is trimmed and grants again.
        let later = now + time::Duration::seconds(72);
        assert_eq!(decide(&mut ledger, &windows, 4, later).granted, 4);
        assert!(ledger.grants.is_empty(), "old grants are dropped");
    }

    #[test]
    fn the_fullest_window_decides() {
        let now = OffsetDateTime::now_utc();
        let mut ledger = Ledger {
            grants: vec![Grant {
                at: now - time::Duration::seconds(120),
                count: 5,
                valid_ms: 5_000,
            }],
        };
        // The minute window has forgotten the old grant; the hour window has not.
        let claim = decide(&mut ledger, &[window(100, 60), window(6, 3600)], 4, now);
        assert_eq!(claim.granted, 1);
    }
}
