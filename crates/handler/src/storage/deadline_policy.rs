//! Storage work done inside a tool call ends at the call's deadline: without this, a storage
//! account that accepts connections but never answers holds the call for the transport timeout
//! of every try the SDK's retry policy makes.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};

use crate::deadline;

/// A per-call policy: it wraps the SDK's retries, so the deadline bounds them all together.
#[derive(Debug)]
pub(crate) struct CallDeadlinePolicy;

#[async_trait]
impl Policy for CallDeadlinePolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let Some((head, rest)) = next.split_first() else {
            // The SDK pipeline always ends with its transport policy, so this means misuse.
            return Err(azure_core::Error::with_message(
                ErrorKind::Other,
                "CallDeadlinePolicy must not be the last policy in the pipeline",
            ));
        };
        match deadline::bounded(head.send(ctx, request, rest)).await {
            Ok(result) => result,
            Err(deadline::Passed) => Err(azure_core::Error::with_message(
                ErrorKind::Io,
                "storage did not answer before the tool call's deadline (MCP_CALL_DEADLINE_SECONDS)",
            )),
        }
    }
}
