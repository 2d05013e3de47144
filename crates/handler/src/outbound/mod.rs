//! The outbound HTTP core every Microsoft API client shares: one pooled reqwest client (rustls,
//! timeouts), a bearer token per tenant and API, the retry policy, and `@odata.nextLink` paging.

mod credentials;
mod error;
mod limiter;
mod retry;

use std::fmt;
use std::time::Duration;

use tracing::Instrument;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

pub use credentials::Credentials;
pub use error::ApiError;
use limiter::RateLimiter;
pub use limiter::{Bucket, RateLimits, SharedQuota, Window, current_deadline, with_deadline};
use retry::{Decision, Outcome};
pub use retry::{Replay, RetryPolicy, retry_after};

use crate::config::{Config, Endpoints, OutboundConfig};
use crate::deadline;
use crate::telemetry;
use crate::tenants::TenantId;

/// The Microsoft APIs this server calls. Each has its own base URL and token audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Defender,
    Graph,
    Arm,
    LogAnalytics,
}

impl Api {
    /// The token scope. It stays the real resource even when the base URL points at the sandbox.
    pub fn scope(self) -> &'static str {
        match self {
            Self::Defender => "https://api.securitycenter.microsoft.com/.default",
            Self::Graph => "https://graph.microsoft.com/.default",
            Self::Arm => "https://management.azure.com/.default",
            Self::LogAnalytics => "https://api.loganalytics.io/.default",
        }
    }

    /// The rate bucket a call to this API counts against unless its client says otherwise.
    fn default_buckets(self) -> &'static [Bucket] {
        match self {
            Self::Defender => &[Bucket::DefenderGeneral],
            Self::Graph | Self::Arm | Self::LogAnalytics => &[],
        }
    }

    pub fn base_url(self, endpoints: &Endpoints) -> &Url {
        match self {
            Self::Defender => &endpoints.defender,
            Self::Graph => &endpoints.graph,
            Self::Arm => &endpoints.arm,
            Self::LogAnalytics => &endpoints.log_analytics,
        }
    }
}

impl Api {
    /// A short stable name for telemetry.
    pub fn name(self) -> &'static str {
        match self {
            Self::Defender => "defender",
            Self::Graph => "graph",
            Self::Arm => "arm",
            Self::LogAnalytics => "log_analytics",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Defender => "the Defender for Endpoint API",
            Self::Graph => "Microsoft Graph",
            Self::Arm => "Azure Resource Manager",
            Self::LogAnalytics => "the Log Analytics query API",
        })
    }
}

/// One request to a Microsoft API on behalf of one tenant.
pub struct ApiRequest<'a> {
    pub api: Api,
    pub tenant: &'a TenantId,
    pub method: Method,
    pub url: Url,
    pub body: Option<RequestBody>,
    pub replay: Replay,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The rate buckets this call counts against (see [`Bucket`]).
    pub buckets: &'static [Bucket],
    /// How long this call may take, when it is not the client-wide `OUTBOUND_TIMEOUT_SECONDS`
    /// (queries that Microsoft lets run for minutes, see [`ApiRequest::query_timeout`]).
    pub timeout: Option<Duration>,
}

/// The longest a single advanced hunting request runs on Microsoft's side: 3 minutes
/// (defender-xdr/api-advanced-hunting.md, "Each request can be executed for a maximum of 3
/// minutes"), and the default server timeout of the Log Analytics query API is the same. The
/// margin lets Microsoft's own time-out answer arrive before ours.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(180 + 15);

pub enum RequestBody {
    Json(serde_json::Value),
    /// A body already encoded, such as a multipart form.
    Encoded {
        content_type: HeaderValue,
        bytes: bytes::Bytes,
    },
}

impl<'a> ApiRequest<'a> {
    pub fn get(api: Api, tenant: &'a TenantId, url: Url) -> Self {
        Self::new(api, tenant, Method::GET, url, None, Replay::Safe)
    }

    /// A request without a body other than GET (DELETE, or a POST the API wants empty).
    pub fn bodiless(
        api: Api,
        tenant: &'a TenantId,
        method: Method,
        url: Url,
        replay: Replay,
    ) -> Self {
        Self::new(api, tenant, method, url, None, replay)
    }

    pub fn send_json(
        api: Api,
        tenant: &'a TenantId,
        method: Method,
        url: Url,
        body: &impl Serialize,
        replay: Replay,
    ) -> Self {
        let body = RequestBody::Json(serde_json::to_value(body).unwrap_or(serde_json::Value::Null));
        Self::new(api, tenant, method, url, Some(body), replay)
    }

    pub fn send_encoded(
        api: Api,
        tenant: &'a TenantId,
        method: Method,
        url: Url,
        content_type: HeaderValue,
        bytes: bytes::Bytes,
        replay: Replay,
    ) -> Self {
        Self::new(
            api,
            tenant,
            method,
            url,
            Some(RequestBody::Encoded {
                content_type,
                bytes,
            }),
            replay,
        )
    }

    fn new(
        api: Api,
        tenant: &'a TenantId,
        method: Method,
        url: Url,
        body: Option<RequestBody>,
        replay: Replay,
    ) -> Self {
        Self {
            api,
            tenant,
            method,
            url,
            body,
            replay,
            headers: Vec::new(),
            buckets: api.default_buckets(),
            timeout: None,
        }
    }

    /// A hunting or log query may run for up to [`QUERY_TIMEOUT`] (send it as [`Replay::Costly`]).
    pub fn query_timeout(mut self) -> Self {
        self.timeout = Some(QUERY_TIMEOUT);
        self
    }

    /// Counts the call against these buckets instead of the API's default.
    pub fn paced(mut self, buckets: &'static [Bucket]) -> Self {
        self.buckets = buckets;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

/// A page of a list, as Microsoft APIs return it.
#[derive(Debug, serde::Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink", alias = "nextLink", default)]
    next_link: Option<String>,
}

/// Where a list continues: a page URL and how many of that page's items were already returned.
/// Resuming re-reads that page and skips them, so a cap that falls mid-page loses nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ListPosition {
    pub page: Url,
    pub skip: usize,
}

impl ListPosition {
    pub fn start(page: Url) -> Self {
        Self { page, skip: 0 }
    }
}

/// Items gathered over one or more pages, and where to continue if the cap was reached first.
#[derive(Debug)]
pub struct Collected<T> {
    pub items: Vec<T>,
    pub next: Option<ListPosition>,
}

pub struct HttpCore {
    client: reqwest::Client,
    credentials: Credentials,
    retry: RetryPolicy,
    endpoints: Endpoints,
    limiter: RateLimiter,
    /// How long a call outside any tool call's pacing deadline may wait for a rate-limit slot.
    max_pacing: Duration,
    /// One attempt's timeout unless the request sets its own (`OUTBOUND_TIMEOUT_SECONDS`).
    attempt_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpCoreError {
    #[error("the trusted CA certificate could not be read: {0}")]
    Certificate(reqwest::Error),
    #[error("the HTTP client could not be built: {0}")]
    Client(reqwest::Error),
}

impl HttpCore {
    pub fn new(config: &Config) -> Result<Self, HttpCoreError> {
        let client = http_client(&config.outbound)?;
        let credentials = Credentials::new(
            config.auth.clone(),
            &config.endpoints.authority_host,
            client.clone(),
        );
        Ok(Self {
            client,
            credentials,
            retry: RetryPolicy::new(config.outbound.max_retries),
            endpoints: config.endpoints.clone(),
            limiter: RateLimiter::new(config.outbound.rate_limits.clone()),
            max_pacing: config.outbound.max_pacing,
            attempt_timeout: config.outbound.timeout,
        })
    }

    /// Coordinates the rate limits with the app's other instances through `ledger`.
    pub fn share_quota(&self, ledger: std::sync::Arc<dyn SharedQuota>) {
        self.limiter.share(ledger);
    }

    /// The shared client, for other Azure SDK clients that should use the same pool.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// `path` is appended to the API's base URL, keeping any path the base already has
    /// (the sandbox serves every API under its own prefix).
    pub fn url(&self, api: Api, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = api.base_url(&self.endpoints).clone();
        let joined = format!(
            "{}/{}",
            url.path().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        url.set_path(&joined);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends with auth and retries; any answer with a status below 400 is returned, others become
    /// errors. Inside a tool call everything (the token, pacing, each attempt and the pauses
    /// between them) ends by the call's deadline.
    pub async fn send(&self, request: &ApiRequest<'_>) -> Result<ApiResponse, ApiError> {
        let api = request.api;
        let token = match deadline::bounded(self.credentials.token(request.tenant, api.scope()))
            .await
        {
            Ok(Ok(token)) => token,
            Ok(Err(message)) => {
                return Err(ApiError::Token {
                    api,
                    tenant: request.tenant.clone(),
                    message,
                });
            }
            Err(deadline::Passed) => {
                return Err(ApiError::Token {
                    api,
                    tenant: request.tenant.clone(),
                    message: "the token endpoint did not answer before the call's deadline (MCP_CALL_DEADLINE_SECONDS); nothing was sent to the API".into(),
                });
            }
        };
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
            .map_err(|_| ApiError::Token {
                api,
                tenant: request.tenant.clone(),
                message: "the token is not a valid header value".into(),
            })?;
        authorization.set_sensitive(true);

        let pacing_deadline = deadline::cap(
            current_deadline().unwrap_or_else(|| std::time::Instant::now() + self.max_pacing),
        );
        let mut retries_done = 0;
        loop {
            self.limiter
                .acquire(request.tenant, request.buckets, pacing_deadline)
                .await
                .map_err(|over| ApiError::RateLimited {
                    api,
                    what: over.bucket.describe(),
                    retry_after: over.wait,
                })?;
            if deadline::passed() {
                return Err(ApiError::NotSent {
                    api,
                    reason: "the call's time (MCP_CALL_DEADLINE_SECONDS) ran out first".into(),
                });
            }
            let mut builder = self
                .client
                .request(request.method.clone(), request.url.clone())
                .header(AUTHORIZATION, authorization.clone())
                .timeout(deadline::cap_timeout(
                    request.timeout.unwrap_or(self.attempt_timeout),
                ));
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            match &request.body {
                Some(RequestBody::Json(body)) => builder = builder.json(body),
                Some(RequestBody::Encoded {
                    content_type,
                    bytes,
                }) => {
                    builder = builder
                        .header(reqwest::header::CONTENT_TYPE, content_type)
                        .body(bytes.clone());
                }
                None => {}
            }
            let span = dependency_span(request);
            let result = builder.send().instrument(span.clone()).await;
            let decision = match &result {
                Ok(response) => {
                    record_answer(&span, api, response.status());
                    self.retry.decide(
                        request.replay,
                        &Outcome::Answered {
                            status: response.status(),
                            headers: response.headers(),
                        },
                        retries_done,
                    )
                }
                Err(error) => {
                    telemetry::record_exception(&span, "TransportError", &without_url(error));
                    let outcome = if error.is_connect() {
                        Outcome::ConnectFailed
                    } else {
                        Outcome::LostInFlight
                    };
                    self.retry.decide(request.replay, &outcome, retries_done)
                }
            };
            if let (Ok(response), Decision::RetryAfter(wait) | Decision::GiveUpThrottled(wait)) =
                (&result, &decision)
                && response.status() == StatusCode::TOO_MANY_REQUESTS
            {
                self.limiter.hold(request.tenant, request.buckets, *wait);
            }
            drop(span);
            let decision = within_deadline(decision, &result);
            match (decision, result) {
                (Decision::RetryAfter(wait), _) => {
                    tracing::info!(api = ?api, path = request.url.path(), wait_ms = wait.as_millis() as u64, retry = retries_done + 1, "retrying microsoft api call");
                    tokio::time::sleep(wait).await;
                    retries_done += 1;
                }
                (Decision::GiveUpThrottled(retry_after), _) => {
                    return Err(ApiError::Throttled { api, retry_after });
                }
                (_, Ok(response)) => return read_response(api, response).await,
                (_, Err(error)) => {
                    let mut detail = without_url(&error);
                    if error.is_timeout() && deadline::passed() {
                        detail.push_str(" at the call's deadline (MCP_CALL_DEADLINE_SECONDS)");
                    }
                    return Err(if error.is_connect() || request.replay != Replay::Unsafe {
                        ApiError::Transport { api, detail }
                    } else {
                        ApiError::Unconfirmed { api, detail }
                    });
                }
            }
        }
    }

    pub async fn json<T: DeserializeOwned>(&self, request: &ApiRequest<'_>) -> Result<T, ApiError> {
        let response = self.send(request).await?;
        decode(request.api, &response.body)
    }

    /// Follows `@odata.nextLink` / `nextLink` until `max_items` are gathered or the list ends;
    /// `page` makes the request for one page URL (its tenant, rate buckets and headers).
    /// Links are only followed within the API's own origin, so a forged cursor cannot send a
    /// token elsewhere.
    pub async fn collect<'a, T: DeserializeOwned>(
        &self,
        api: Api,
        from: ListPosition,
        max_items: usize,
        page: impl Fn(Url) -> ApiRequest<'a>,
    ) -> Result<Collected<T>, ApiError> {
        let mut items = Vec::new();
        let mut position = Some(from);
        while let Some(ListPosition { page: url, skip }) = position.take() {
            self.ensure_own_origin(api, &url)?;
            let page: Page<T> = self.json(&page(url.clone())).await?;
            let page_len = page.value.len();
            let wanted = max_items - items.len();
            let available = page_len.saturating_sub(skip);
            items.extend(page.value.into_iter().skip(skip).take(wanted));
            if available > wanted {
                return Ok(Collected {
                    items,
                    next: Some(ListPosition {
                        page: url,
                        skip: skip + wanted,
                    }),
                });
            }
            let link = page
                .next_link
                .map(|link| {
                    Url::parse(&link).map_err(|_| ApiError::Decode {
                        api,
                        detail: format!("next link '{link}' is not a URL"),
                    })
                })
                .transpose()?;
            position = link
                .or_else(|| skip_past_full_page(api, &url, page_len))
                .map(ListPosition::start);
            if items.len() >= max_items {
                return Ok(Collected {
                    items,
                    next: position,
                });
            }
        }
        Ok(Collected { items, next: None })
    }

    /// Downloads a pre-signed link Microsoft handed out (a live response result, an investigation
    /// package): no token is sent, since the link carries its own signature and points at storage,
    /// not at the API. At most `max_bytes` are read; `Ok((bytes, true))` when the rest was cut.
    pub async fn download_signed(
        &self,
        api: Api,
        link: &Url,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, bool), ApiError> {
        if link.scheme() != "https" {
            return Err(ApiError::ForeignLink {
                api,
                link: format!("{} (not https)", without_query(link)),
            });
        }
        let mut response = self
            .client
            .get(link.clone())
            .send()
            .await
            .map_err(|error| ApiError::Transport {
                api,
                detail: without_url(&error),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ApiError::Status {
                api,
                status,
                code: None,
                message: format!(
                    "the download link {} could not be read (it may have expired)",
                    without_query(link)
                ),
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| ApiError::Transport {
                api,
                detail: without_url(&error),
            })?
        {
            let room = max_bytes.saturating_sub(bytes.len());
            if chunk.len() > room {
                bytes.extend_from_slice(&chunk[..room]);
                return Ok((bytes, true));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((bytes, false))
    }

    pub fn ensure_own_origin(&self, api: Api, url: &Url) -> Result<(), ApiError> {
        if url.origin() == api.base_url(&self.endpoints).origin() {
            Ok(())
        } else {
            Err(ApiError::ForeignLink {
                api,
                link: url.to_string(),
            })
        }
    }
}

async fn read_response(api: Api, response: reqwest::Response) -> Result<ApiResponse, ApiError> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|error| ApiError::Transport {
            api,
            detail: without_url(&error),
        })?;
    if status.is_client_error() || status.is_server_error() {
        return Err(error::status_error(api, status, &body));
    }
    Ok(ApiResponse {
        status,
        headers,
        body,
    })
}

pub fn decode<T: DeserializeOwned>(api: Api, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| ApiError::Decode {
        api,
        detail: error.to_string(),
    })
}

/// The Defender API's `$top` cuts a list rather than paging it: a page of exactly `$top` records
/// without `@odata.nextLink` may have more behind it, read with `$skip` (get-machines.md and the
/// other list pages document `$top` and `$skip`). Other APIs page with their next links.
fn skip_past_full_page(api: Api, url: &Url, page_len: usize) -> Option<Url> {
    if api != Api::Defender {
        return None;
    }
    let number = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.parse::<usize>().ok())
    };
    let top = number("$top").filter(|top| *top > 0 && page_len >= *top)?;
    let skip = number("$skip").unwrap_or(0) + top;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != "$skip")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let mut next = url.clone();
    next.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("$skip", &skip.to_string());
    Some(next)
}

/// A link without its query string, which holds the signature of a pre-signed link.
fn without_query(link: &Url) -> String {
    let mut shown = link.clone();
    shown.set_query(None);
    shown.to_string()
}

/// A retry whose pause would end past the call's deadline is not made: the last answer (or
/// failure) is what the call reports.
fn within_deadline(
    decision: Decision,
    result: &Result<reqwest::Response, reqwest::Error>,
) -> Decision {
    match decision {
        Decision::RetryAfter(wait) if deadline::remaining().is_some_and(|left| left <= wait) => {
            match result {
                Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    Decision::GiveUpThrottled(wait)
                }
                _ => Decision::GiveUp,
            }
        }
        other => other,
    }
}

/// reqwest errors print the URL, which can carry query text a user typed; keep only the kind.
pub(crate) fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the answer was cut off"
    } else {
        "request failed"
    };
    let source = std::error::Error::source(error)
        .map(|source| format!(": {source}"))
        .unwrap_or_default();
    format!("{kind}{source}")
}

/// A dependency (client span) per attempt, so retries and their 429s show up one by one. The
/// URL is recorded without its query, which can hold text a person typed (filters, KQL).
fn dependency_span(request: &ApiRequest<'_>) -> tracing::Span {
    let url = &request.url;
    tracing::info_span!(
        target: telemetry::DEPENDENCY_TARGET,
        "microsoft api call",
        otel.name = %format_args!("{} {}", request.method, url.path()),
        otel.kind = "client",
        http.request.method = %request.method,
        server.address = url.host_str().unwrap_or_default(),
        url.full = %format_args!("{}://{}{}", url.scheme(), url.host_str().unwrap_or_default(), url.path()),
        http.response.status_code = tracing::field::Empty,
        api = request.api.name(),
        tenant.id = %request.tenant,
    )
}

fn record_answer(span: &tracing::Span, api: Api, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status == StatusCode::TOO_MANY_REQUESTS
        && let Some(metrics) = telemetry::metrics()
    {
        metrics.throttled(api.name());
    }
    if status.is_client_error() || status.is_server_error() {
        telemetry::record_failure(span, status.as_str());
    }
}

/// The one way outbound HTTP clients are built (Microsoft APIs, Key Vault, telemetry), so an
/// extra trusted CA or a timeout applies everywhere.
pub fn http_client(config: &OutboundConfig) -> Result<reqwest::Client, HttpCoreError> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("defender-sentinel-mcp/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = config.trusted_ca_pem.as_deref() {
        let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(HttpCoreError::Certificate)?;
        builder = builder.tls_certs_merge(certificates);
    }
    builder.build().map_err(HttpCoreError::Client)
}

#[cfg(test)]
mod paging_tests {
    use super::*;

    #[test]
    fn a_full_defender_page_continues_with_skip_and_a_short_one_ends() {
        let url = Url::parse("https://api.test/api/machines?%24top=200&%24filter=x").unwrap();
        let next = skip_past_full_page(Api::Defender, &url, 200).expect("a full page continues");
        let pairs: Vec<(String, String)> = next.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("$skip".into(), "200".into())), "{pairs:?}");
        let after = skip_past_full_page(Api::Defender, &next, 200).expect("and again");
        assert!(after.query_pairs().any(|(k, v)| k == "$skip" && v == "400"));
        assert_eq!(skip_past_full_page(Api::Defender, &url, 199), None);
        assert_eq!(skip_past_full_page(Api::Graph, &url, 200), None);
    }
}
