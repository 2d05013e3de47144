//! Azure Resource Manager for Sentinel: the Log Analytics workspace and its tables and saved
//! searches, its `Microsoft.SecurityInsights` resources, the `Microsoft.Insights` workbooks and
//! data collection resources, and Lighthouse delegations.
//!
//! Paths and api-versions live in [`paths`]; the verbs here are generic over the resource
//! type. Two behaviours are written once for every resource:
//! - [`ArmClient::update`]: GET, change, PUT with the etag (in the body and as `If-Match`); a
//!   `409`/`412` means someone else changed the resource in between and is reported as
//!   [`ArmError::Conflict`], never retried over their change.
//! - [`ArmClient::run_operation`]: an `x-ms-long-running-operation` answered `202` is polled
//!   through `Azure-AsyncOperation` (the `final-state-via` of every operation run this way) or,
//!   failing that, `Location`, honouring `Retry-After`, until it ends or the caller's bound runs
//!   out. A `202` with neither header is reported as still running, never as done.

mod incidents;
mod models;
mod paths;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ETAG, HeaderMap, HeaderName, HeaderValue, IF_MATCH, LOCATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

pub use incidents::{
    ClassificationChange, IncidentChanges, IncidentClassification, IncidentClassificationReason,
    IncidentOrder, IncidentQuery, IncidentSeverity, IncidentStatus, OwnerChange,
};
pub use models::*;
pub use paths::{ArmName, GroupResource, SubscriptionResource, WorkspaceResource};

use crate::outbound::{
    Api, ApiError, ApiRequest, ApiResponse, Collected, HttpCore, ListPosition, Replay, decode,
    retry_after,
};
use crate::tenants::{TenantId, WorkspaceConfig};

#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "{resource} was changed by someone else after it was read ({detail}); nothing was overwritten: read it again and decide whether the change is still wanted"
    )]
    Conflict { resource: String, detail: String },
    #[error("the operation on {resource} ended {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    OperationFailed {
        resource: String,
        status: String,
        message: Option<String>,
    },
}

/// Where a long-running operation stood when the call stopped waiting.
#[derive(Debug, Clone)]
pub enum OperationOutcome {
    Succeeded {
        waited: Duration,
    },
    /// Still running when the wait bound was reached; Azure carries on with it.
    Running {
        waited: Duration,
        status: String,
        /// Where to follow it, when Azure said (a `202` with neither header has nothing).
        poll: Option<OperationPoll>,
    },
}

/// Where a long-running operation is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationPoll {
    pub url: Url,
    /// `Location` polling (`202` while running, then the final status) rather than an
    /// `Azure-AsyncOperation` status resource.
    pub via_location: bool,
}

/// What one read of a long-running operation said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollState {
    Running {
        status: String,
        /// Where to read next (a `Location` poll may move), and when Azure asked to be read again.
        next: OperationPoll,
        retry_after: Option<Duration>,
    },
    Succeeded,
}

/// The state of a resource before and after an etag-checked update.
#[derive(Debug, Clone)]
pub struct Updated {
    pub before: Value,
    pub after: Value,
    /// False when the change asked for was already in place (nothing was sent).
    pub changed: bool,
}

/// Polls without `Retry-After` wait this long; Azure's own guidance for operations without it.
const DEFAULT_POLL: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct ArmClient {
    http: Arc<HttpCore>,
}

impl ArmClient {
    pub fn new(http: Arc<HttpCore>) -> Self {
        Self { http }
    }

    pub fn workspace_url(
        &self,
        workspace: &WorkspaceConfig,
        resource: WorkspaceResource<'_>,
    ) -> Url {
        let (path, version) = resource.path(workspace);
        self.http.url(Api::Arm, &path, &[("api-version", version)])
    }

    pub fn group_url(
        &self,
        subscription: &str,
        resource_group: &str,
        resource: GroupResource<'_>,
    ) -> Url {
        let (path, version, query) = resource.path(subscription, resource_group);
        let mut all = vec![("api-version", version)];
        all.extend(query.iter().map(|(k, v)| (*k, v.as_str())));
        self.http.url(Api::Arm, &path, &all)
    }

    pub fn subscription_url(
        &self,
        subscription: Option<&str>,
        resource: SubscriptionResource,
    ) -> Url {
        let (path, version, query) = resource.path(subscription);
        let mut all = vec![("api-version", version)];
        all.extend_from_slice(query);
        self.http.url(Api::Arm, &path, &all)
    }

    /// Adds OData options (`$filter`, `$orderby`) to a list URL.
    pub fn with_query<V: AsRef<str>>(mut url: Url, query: &[(&str, V)]) -> Url {
        url.query_pairs_mut().extend_pairs(query);
        url
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        url: Url,
    ) -> Result<T, ArmError> {
        Ok(self
            .http
            .json(&ApiRequest::get(Api::Arm, tenant, url))
            .await?)
    }

    /// `None` when the resource does not exist.
    pub async fn find<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        url: Url,
    ) -> Result<Option<T>, ArmError> {
        match self.get(tenant, url).await {
            Ok(found) => Ok(Some(found)),
            Err(ArmError::Api(error)) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn list<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        from: ListPosition,
        max: usize,
    ) -> Result<Collected<T>, ArmError> {
        Ok(self
            .http
            .collect(Api::Arm, from, max, |page| {
                ApiRequest::get(Api::Arm, tenant, page)
            })
            .await?)
    }

    /// Checks that a list position belongs to ARM before a tool resumes from it.
    pub fn check_position(&self, position: &ListPosition) -> Result<(), ArmError> {
        Ok(self.http.ensure_own_origin(Api::Arm, &position.page)?)
    }

    /// A PUT that creates or replaces a resource at a name the caller chose. Repeating it
    /// writes the same resource again, so it may be retried after a lost answer.
    pub async fn put<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        url: Url,
        body: &Value,
    ) -> Result<T, ArmError> {
        let request = ApiRequest::send_json(Api::Arm, tenant, Method::PUT, url, body, Replay::Safe);
        Ok(self.http.json(&request).await?)
    }

    /// A POST that reads (Sentinel's incident alerts and entities are POSTs that change nothing).
    /// Sent without a body: `Incidents_ListAlerts` and `Incidents_ListEntities` declare no `in:
    /// body` parameter (the HTTP stack sends `Content-Length: 0`).
    pub async fn post_read<T: DeserializeOwned>(
        &self,
        tenant: &TenantId,
        url: Url,
    ) -> Result<T, ArmError> {
        let request = ApiRequest {
            method: Method::POST,
            ..ApiRequest::get(Api::Arm, tenant, url)
        };
        Ok(self.http.json(&request).await?)
    }

    /// Deletes a resource; false when there was nothing to delete (204 or 404).
    pub async fn delete(&self, tenant: &TenantId, url: Url) -> Result<bool, ArmError> {
        let request = ApiRequest {
            method: Method::DELETE,
            ..ApiRequest::get(Api::Arm, tenant, url)
        };
        match self.http.send(&request).await {
            Ok(response) => Ok(response.status != StatusCode::NO_CONTENT),
            Err(error) if error.is_not_found() => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// GET the resource, let `edit` change it, and PUT it back only if it still has the etag
    /// that was read. `edit` returns false when the wanted state is already there.
    pub async fn update(
        &self,
        tenant: &TenantId,
        url: Url,
        resource: &str,
        edit: impl FnOnce(&mut Value) -> bool,
    ) -> Result<Updated, ArmError> {
        let read = self
            .http
            .send(&ApiRequest::get(Api::Arm, tenant, url.clone()))
            .await?;
        let before: Value = decode(Api::Arm, &read.body)?;
        let mut after = before.clone();
        if !edit(&mut after) {
            return Ok(Updated {
                after: before.clone(),
                before,
                changed: false,
            });
        }
        let etag = before["etag"]
            .as_str()
            .map(str::to_string)
            .or_else(|| header_text(&read.headers, &ETAG));
        let mut request =
            ApiRequest::send_json(Api::Arm, tenant, Method::PUT, url, &after, Replay::Unsafe);
        // Replay::Unsafe: had a lost PUT been applied, a resend would meet the new etag and
        // be misreported as someone else's change; an unconfirmed write is reported instead.
        match etag.as_deref().map(HeaderValue::from_str) {
            Some(Ok(value)) => request.headers.push((IF_MATCH, value)),
            _ => tracing::warn!(
                resource,
                "resource has no etag; updating without a concurrency check"
            ),
        }
        match self.http.json::<Value>(&request).await {
            Ok(saved) => Ok(Updated {
                before,
                after: saved,
                changed: true,
            }),
            Err(error)
                if matches!(
                    error.status(),
                    Some(StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED)
                ) =>
            {
                Err(ArmError::Conflict {
                    resource: resource.to_string(),
                    detail: error.to_string(),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Sends a request that may run as a long-running operation and waits for it for at most
    /// `max_wait`. A request that sets a state (PUT, PATCH, DELETE) is safe to repeat.
    pub async fn run_operation(
        &self,
        tenant: &TenantId,
        method: Method,
        url: Url,
        body: Option<&Value>,
        resource: &str,
        max_wait: Duration,
    ) -> Result<OperationOutcome, ArmError> {
        let started = Instant::now();
        let max_wait = crate::deadline::wait_budget(max_wait);
        let mut request = ApiRequest {
            method,
            ..ApiRequest::get(Api::Arm, tenant, url)
        };
        request.body = body.cloned().map(crate::outbound::RequestBody::Json);
        let response = self.http.send(&request).await?;
        let Some((poll, via_location)) = operation_url(&response) else {
            if response.status == StatusCode::ACCEPTED {
                // Accepted and not finished, with nothing to follow it by: the caller reads the
                // resource to see it land.
                return Ok(OperationOutcome::Running {
                    waited: started.elapsed(),
                    status: "Accepted".into(),
                    poll: None,
                });
            }
            return Ok(OperationOutcome::Succeeded {
                waited: started.elapsed(),
            });
        };
        let url = Url::parse(&poll).map_err(|_| ApiError::Decode {
            api: Api::Arm,
            detail: format!("operation URL '{poll}' is not a URL"),
        })?;
        self.http.ensure_own_origin(Api::Arm, &url)?;
        let mut poll = OperationPoll { url, via_location };
        let mut wait = retry_after(&response.headers).unwrap_or(DEFAULT_POLL);
        let mut status = "InProgress".to_owned();
        loop {
            let waited = started.elapsed();
            if waited + wait > max_wait {
                return Ok(OperationOutcome::Running {
                    waited,
                    status,
                    poll: Some(poll),
                });
            }
            tokio::time::sleep(wait).await;
            match self.poll_operation(tenant, &poll, resource).await? {
                PollState::Succeeded => {
                    return Ok(OperationOutcome::Succeeded {
                        waited: started.elapsed(),
                    });
                }
                PollState::Running {
                    status: now,
                    next,
                    retry_after,
                } => {
                    status = now;
                    poll = next;
                    wait = retry_after.unwrap_or(DEFAULT_POLL);
                }
            }
        }
    }

    /// Reads a long-running operation once. A failed or cancelled one is
    /// [`ArmError::OperationFailed`]; reading it again is always safe.
    pub async fn poll_operation(
        &self,
        tenant: &TenantId,
        poll: &OperationPoll,
        resource: &str,
    ) -> Result<PollState, ArmError> {
        self.http.ensure_own_origin(Api::Arm, &poll.url)?;
        let answer = self
            .http
            .send(&ApiRequest::get(Api::Arm, tenant, poll.url.clone()))
            .await?;
        let retry = retry_after(&answer.headers);
        if poll.via_location {
            // Location polling (ARM's asynchronous-operation convention): 202 while running,
            // then the final 200/201/204; an error status has already come back as an error
            // from `send`.
            if answer.status != StatusCode::ACCEPTED {
                return Ok(PollState::Succeeded);
            }
            let mut next = poll.clone();
            if let Some(moved) =
                header_text(&answer.headers, &LOCATION).and_then(|l| Url::parse(&l).ok())
            {
                self.http.ensure_own_origin(Api::Arm, &moved)?;
                next.url = moved;
            }
            return Ok(PollState::Running {
                status: "InProgress".into(),
                next,
                retry_after: retry,
            });
        }
        let status: OperationStatus = decode(Api::Arm, &answer.body)?;
        // A missing status reads as still running (no property of the definition is required).
        let (end, said) = match &status.status {
            Some(reported) => (reported.known().copied(), reported.as_str()),
            None => (None, "InProgress"),
        };
        match end {
            Some(OperationEnd::Succeeded) => Ok(PollState::Succeeded),
            Some(OperationEnd::Failed | OperationEnd::Canceled) => Err(ArmError::OperationFailed {
                resource: resource.to_string(),
                status: said.to_string(),
                message: status.error.as_ref().map(OperationError::describe),
            }),
            None => Ok(PollState::Running {
                status: said.to_owned(),
                next: poll.clone(),
                retry_after: retry,
            }),
        }
    }
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The URL to poll, preferring `Azure-AsyncOperation`; true when it is a `Location` URL.
fn operation_url(response: &ApiResponse) -> Option<(String, bool)> {
    if response.status != StatusCode::ACCEPTED && response.status != StatusCode::CREATED {
        return None;
    }
    let async_operation = HeaderName::from_static("azure-asyncoperation");
    header_text(&response.headers, &async_operation)
        .map(|url| (url, false))
        .or_else(|| {
            (response.status == StatusCode::ACCEPTED)
                .then(|| header_text(&response.headers, &LOCATION).map(|url| (url, true)))
                .flatten()
        })
}
