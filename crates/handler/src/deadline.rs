//! One deadline per tool call (`MCP_CALL_DEADLINE_SECONDS`). MCP clients give up on a request
//! after about a minute and send it again; an answer that comes later is worse than a clear
//! "not finished" because the retry may repeat a write. So every wait inside a call (token
//! acquisition, each HTTP attempt and the pauses between them, rate-limit pacing, storage,
//! polling for an action to finish) is bounded by the same instant, set once by the catalogue.
//!
//! The deadline is a task-local: work spawned onto another task (a record stored after its
//! answer) is outside the call and bounds itself.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static CALL: Instant;
}

/// Runs `work` with `deadline` as the call's deadline.
pub async fn scope<F: Future>(deadline: Instant, work: F) -> F::Output {
    CALL.scope(deadline, work).await
}

/// The running call's deadline, if this task runs inside a tool call.
pub fn current() -> Option<Instant> {
    CALL.try_with(|deadline| *deadline).ok()
}

/// Time left before the call's deadline (zero once passed); `None` outside a tool call.
pub fn remaining() -> Option<Duration> {
    current().map(|deadline| deadline.saturating_duration_since(Instant::now()))
}

/// Whether this task runs inside a tool call whose deadline has passed.
pub fn passed() -> bool {
    remaining().is_some_and(|left| left.is_zero())
}

/// `until`, or the call's deadline if that comes first.
pub fn cap(until: Instant) -> Instant {
    current().map_or(until, |deadline| deadline.min(until))
}

/// `timeout`, or the time left in the call if that is shorter.
pub fn cap_timeout(timeout: Duration) -> Duration {
    remaining().map_or(timeout, |left| left.min(timeout))
}

/// Room left after a wait for the request that follows it (one more poll, the answer).
pub const ROOM_AFTER_WAIT: Duration = Duration::from_secs(3);

/// How long a wait for something to finish may last: `wanted`, or less so that the call still
/// has [`ROOM_AFTER_WAIT`] before its deadline.
pub fn wait_budget(wanted: Duration) -> Duration {
    remaining().map_or(wanted, |left| {
        wanted.min(left.saturating_sub(ROOM_AFTER_WAIT))
    })
}

/// The call's deadline passed before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the call's time ran out")]
pub struct Passed;

/// Runs `work` until the call's deadline; without one (outside a tool call), to its end.
pub async fn bounded<F: Future>(work: F) -> Result<F::Output, Passed> {
    match current() {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), work)
            .await
            .map_err(|_| Passed),
        None => Ok(work.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outside_a_call_nothing_is_bounded() {
        assert_eq!(current(), None);
        assert!(!passed());
        assert_eq!(
            cap_timeout(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(bounded(async { 7 }).await, Ok(7));
        assert_eq!(
            wait_budget(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }

    #[tokio::test]
    async fn inside_a_call_waits_end_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(50);
        scope(deadline, async {
            assert!(cap_timeout(Duration::from_secs(30)) <= Duration::from_millis(50));
            assert_eq!(cap(deadline + Duration::from_secs(1)), deadline);
            assert_eq!(wait_budget(Duration::from_secs(60)), Duration::ZERO);
            let slow = bounded(tokio::time::sleep(Duration::from_secs(60))).await;
            assert_eq!(slow, Err(Passed));
            assert_eq!(remaining(), Some(Duration::ZERO));
            assert!(passed());
        })
        .await;
    }
}
