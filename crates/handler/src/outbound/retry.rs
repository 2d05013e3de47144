//! When a failed request may be sent again, and how long to wait first.
//!
//! The rule that matters most: a request that is not safe to replay (an isolation, an
//! indicator, a live response) is only repeated when the server certainly did not act on it:
//! the connection never opened, or the server answered 429 (a throttled request is refused
//! before it runs). A timeout or a 5xx after sending might hide an action that did happen.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Whether sending a request twice can do harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads, and writes that set a state (PUT, DELETE, PATCH of fields): repeating them is harmless.
    Safe,
    /// Actions that create something or start something (isolate, scan, add comment).
    Unsafe,
    /// Reads that spend the tenant's quota on Microsoft's side (an advanced hunting or Log
    /// Analytics query runs for minutes and counts against the tenant's CPU allocation). They
    /// change nothing, but a query that timed out or failed after it was sent is not sent again:
    /// a heavy query repeated is what exhausts hunting for the next quota cycle.
    Costly,
}

impl Replay {
    /// Whether a request that may have reached the server may be sent again.
    fn after_sending(self) -> bool {
        self == Replay::Safe
    }
}

/// What happened on one try.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The connection was never established: nothing reached the server.
    ConnectFailed,
    /// The request may have reached the server (timeout, reset mid-flight).
    LostInFlight,
    Answered {
        status: StatusCode,
        headers: &'a HeaderMap,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Done,
    RetryAfter(Duration),
    /// Throttled for longer than this server will hold a request open.
    GiveUpThrottled(Duration),
    GiveUp,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest Retry-After this server waits out inside one tool call.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: Duration::from_millis(400),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }

    /// `retries_done` counts the retries already made (0 after the first try).
    pub fn decide(&self, replay: Replay, outcome: &Outcome<'_>, retries_done: u32) -> Decision {
        let throttle = match outcome {
            Outcome::Answered { status, headers }
                if *status == StatusCode::TOO_MANY_REQUESTS
                    || (*status == StatusCode::SERVICE_UNAVAILABLE
                        && headers.contains_key(RETRY_AFTER)) =>
            {
                Some(retry_after(headers).unwrap_or(self.backoff(retries_done)))
            }
            _ => None,
        };
        if let Some(wait) = throttle
            && wait > self.max_retry_after
        {
            return Decision::GiveUpThrottled(wait);
        }
        let retryable = match outcome {
            Outcome::ConnectFailed => true,
            Outcome::LostInFlight => replay.after_sending(),
            Outcome::Answered { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => true,
            Outcome::Answered { status, .. } if status.is_server_error() => replay.after_sending(),
            Outcome::Answered { .. } => return Decision::Done,
        };
        if !retryable || retries_done >= self.max_retries {
            return match throttle {
                Some(wait) => Decision::GiveUpThrottled(wait),
                None if matches!(outcome, Outcome::Answered { .. }) => Decision::Done,
                None => Decision::GiveUp,
            };
        }
        Decision::RetryAfter(throttle.unwrap_or_else(|| self.backoff(retries_done)))
    }

    /// Exponential backoff with jitter, so that many callers throttled together do not return together.
    fn backoff(&self, retries_done: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << retries_done.min(16))
            .min(self.max_delay);
        let jitter = rand::rng().random_range(0.5..=1.0);
        exponential.mul_f64(jitter)
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn answered(status: u16, retry_after: Option<&str>) -> (StatusCode, HeaderMap) {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("header"));
        }
        (StatusCode::from_u16(status).expect("status"), headers)
    }

    fn decide(
        replay: Replay,
        status: u16,
        retry_after: Option<&str>,
        retries_done: u32,
    ) -> Decision {
        let (status, headers) = answered(status, retry_after);
        RetryPolicy::new(3).decide(
            replay,
            &Outcome::Answered {
                status,
                headers: &headers,
            },
            retries_done,
        )
    }

    #[test]
    fn throttling_honours_retry_after_for_every_request() {
        assert_eq!(
            decide(Replay::Unsafe, 429, Some("2"), 0),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            decide(Replay::Safe, 503, Some("1"), 0),
            Decision::RetryAfter(Duration::from_secs(1))
        );
    }

    #[test]
    fn long_throttles_are_reported_not_waited_out() {
        assert_eq!(
            decide(Replay::Safe, 429, Some("600"), 0),
            Decision::GiveUpThrottled(Duration::from_secs(600))
        );
    }

    #[test]
    fn server_errors_are_retried_only_when_replay_is_safe() {
        assert!(matches!(
            decide(Replay::Safe, 500, None, 0),
            Decision::RetryAfter(_)
        ));
        assert_eq!(decide(Replay::Unsafe, 500, None, 0), Decision::Done);
        assert_eq!(decide(Replay::Unsafe, 502, None, 0), Decision::Done);
    }

    #[test]
    fn lost_requests_are_never_resent_when_unsafe() {
        let policy = RetryPolicy::new(3);
        assert_eq!(
            policy.decide(Replay::Unsafe, &Outcome::LostInFlight, 0),
            Decision::GiveUp
        );
        assert!(matches!(
            policy.decide(Replay::Safe, &Outcome::LostInFlight, 0),
            Decision::RetryAfter(_)
        ));
        assert!(matches!(
            policy.decide(Replay::Unsafe, &Outcome::ConnectFailed, 0),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn costly_queries_are_never_resent_once_they_may_have_run() {
        let policy = RetryPolicy::new(3);
        assert_eq!(
            policy.decide(Replay::Costly, &Outcome::LostInFlight, 0),
            Decision::GiveUp
        );
        assert_eq!(decide(Replay::Costly, 500, None, 0), Decision::Done);
        assert!(matches!(
            policy.decide(Replay::Costly, &Outcome::ConnectFailed, 0),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            decide(Replay::Costly, 429, Some("2"), 0),
            Decision::RetryAfter(Duration::from_secs(2))
        );
    }

    #[test]
    fn retries_stop_at_the_limit() {
        assert_eq!(decide(Replay::Safe, 500, None, 3), Decision::Done);
        assert_eq!(
            decide(Replay::Safe, 429, Some("1"), 3),
            Decision::GiveUpThrottled(Duration::from_secs(1))
        );
        assert_eq!(decide(Replay::Safe, 404, None, 0), Decision::Done);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::new(10);
        assert!(policy.backoff(0) <= Duration::from_millis(400));
        assert!(policy.backoff(10) <= Duration::from_secs(8));
        assert!(policy.backoff(10) >= Duration::from_secs(4));
    }

    #[test]
    fn retry_after_accepts_http_dates() {
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
        let text = later
            .format(&time::format_description::well_known::Rfc2822)
            .expect("format");
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&text).expect("header"));
        let wait = retry_after(&headers).expect("parsed");
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28),
            "{wait:?}"
        );
    }
}
