//! Blob and queue storage for durable state and work hand-off.
//!
//! Thin layer over the official `azure_storage_blob` / `azure_storage_queue` 1.x clients that adds
//! what they lack for this product:
//! - connection settings in the Azure Functions convention ([`StorageConnection`]), covering
//!   Azurite / account keys (signed by the `shared_key` policy) and managed identity;
//! - one pooled HTTP client for the whole process (optional `reqwest::Client` transport);
//! - errors that say which operation on which resource failed and why ([`StorageError`]);
//! - typed helpers: [`JsonBlobStore`] (ETag-guarded JSON documents) and [`MessageQueue`]
//!   (messages encoded the way the Functions queue trigger expects).
//!
//! Everything that the SDK clients can do is done with them; only request signing and
//! connection-string parsing are hand-written.

mod connection;
mod deadline_policy;
pub mod quota;
mod shared_key;

use std::{fmt, num::NonZeroU32, sync::Arc, time::Duration};

use azure_core::{
    credentials::TokenCredential,
    error::ErrorKind,
    http::{
        ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, Transport,
        headers::HeaderName,
    },
    time::OffsetDateTime,
};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use azure_storage_blob::{
    BlobServiceClient, BlobServiceClientOptions,
    models::{
        BlobClientUploadOptions, BlobContainerClientListBlobsOptions, BlobItem,
        BlobServiceClientListContainersOptions,
    },
};
use azure_storage_queue::{
    QueueServiceClient, QueueServiceClientOptions,
    models::{
        QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions,
        QueueMessage as SdkQueueMessage, QueueServiceClientListQueuesOptions,
    },
};
use base64::Engine as _;
use futures::TryStreamExt as _;
use serde::{Serialize, de::DeserializeOwned};

pub use azure_core::http::Etag as ETag;
pub use azure_storage_blob::BlobContainerClient;
pub use azure_storage_queue::QueueClient;
pub use connection::StorageConnection;
pub use shared_key::AccountKey;

/// Everything that can go wrong in this module. Messages name the operation and the resource;
/// none of them ever contains the account key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("invalid storage connection string: {reason}")]
    InvalidConnectionString { reason: String },

    #[error("missing storage setting: {name}")]
    MissingSetting { name: String },

    #[error("invalid storage setting {name}: {reason}")]
    InvalidSetting { name: String, reason: String },

    #[error("cannot set up managed identity for storage: {source}")]
    Credential { source: Box<azure_core::Error> },

    #[error("cannot create the {service} client for {endpoint}: {source}")]
    Client {
        service: &'static str,
        endpoint: String,
        source: Box<azure_core::Error>,
    },

    /// The service answered with an error status.
    #[error(
        "{operation} {resource} failed: HTTP {status}{}: {message}{}",
        .code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
        auth_hint(*.status)
    )]
    Service {
        operation: &'static str,
        resource: String,
        status: u16,
        /// The storage error code (`x-ms-error-code`), e.g. `AuthenticationFailed`.
        code: Option<String>,
        message: String,
        request_id: Option<String>,
    },

    /// No token could be obtained for the request (managed identity unavailable or not allowed).
    #[error("{operation} {resource} failed: could not get a token: {source}")]
    Authentication {
        operation: &'static str,
        resource: String,
        source: Box<azure_core::Error>,
    },

    /// The request never got a response (connection refused, DNS, timeout, ...).
    #[error("{operation} {resource} failed: {source}")]
    Transport {
        operation: &'static str,
        resource: String,
        source: Box<azure_core::Error>,
    },

    #[error("{operation} {resource} failed: unexpected response: {reason}")]
    UnexpectedResponse {
        operation: &'static str,
        resource: String,
        reason: String,
    },

    /// `JsonBlobStore::create` found the blob already there.
    #[error("blob {name} already exists in container {container}")]
    AlreadyExists { container: String, name: String },

    /// `JsonBlobStore::replace` lost an optimistic-concurrency race: re-read and retry.
    #[error(
        "blob {name} in container {container} was changed since it was read (ETag no longer matches)"
    )]
    Conflict { container: String, name: String },

    /// `JsonBlobStore::replace` found no blob to replace.
    #[error("blob {name} does not exist in container {container}")]
    NotFound { container: String, name: String },

    #[error("cannot {action} JSON of blob {name} in container {container}: {source}")]
    Json {
        action: &'static str,
        container: String,
        name: String,
        source: serde_json::Error,
    },

    #[error("message {message_id} in queue {queue} cannot be decoded: {reason}")]
    InvalidMessage {
        queue: String,
        message_id: String,
        reason: String,
    },

    #[error("message for queue {queue} is {size} bytes once encoded; the service limit is {limit}")]
    MessageTooLarge {
        queue: String,
        size: usize,
        limit: usize,
    },

    #[error("invalid argument: {reason}")]
    InvalidArgument { reason: String },
}

fn auth_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            " (check the account key in the connection string, or the managed identity's \
             Storage Blob/Queue Data role assignments)"
        }
        _ => "",
    }
}

impl StorageError {
    /// HTTP status for errors the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The storage error code (`x-ms-error-code`) for errors the service answered, e.g.
    /// `PopReceiptMismatch`, `AuthenticationFailed`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// True when the service refused our credentials (wrong key, missing role assignment).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self.status(), Some(401 | 403)) || matches!(self, Self::Authentication { .. })
    }

    /// Turns an SDK error into a `StorageError` naming what was attempted.
    fn from_sdk(
        operation: &'static str,
        resource: impl Into<String>,
        err: azure_core::Error,
    ) -> Self {
        let resource = resource.into();
        match err.kind() {
            ErrorKind::HttpResponse {
                status,
                raw_response,
                error_code,
            } => {
                let status = u16::from(*status);
                let code = raw_response
                    .as_ref()
                    .and_then(|r| r.headers().get_optional_string(&ERROR_CODE))
                    .or_else(|| error_code.clone());
                let reason = status_reason(status);
                let fallback = err.to_string();
                // The blob crate's parser reads the XML error body shared by blob and queue.
                let (message, request_id) = match azure_storage_blob::StorageError::try_from(err) {
                    Ok(parsed) => {
                        let mut message = parsed
                            .message
                            .as_deref()
                            .map(first_line)
                            .unwrap_or_default();
                        if message.is_empty() {
                            message = reason;
                        }
                        if let Some(detail) = parsed.authentication_error_detail.as_deref() {
                            message = format!("{message} ({})", first_line(detail));
                        }
                        (message, parsed.request_id)
                    }
                    Err(_) => (fallback, None),
                };
                Self::Service {
                    operation,
                    resource,
                    status,
                    code,
                    message,
                    request_id,
                }
            }
            ErrorKind::Credential => Self::Authentication {
                operation,
                resource,
                source: Box::new(err),
            },
            _ => Self::Transport {
                operation,
                resource,
                source: Box::new(err),
            },
        }
    }
}

const ERROR_CODE: HeaderName = HeaderName::from_static("x-ms-error-code");

fn status_reason(status: u16) -> String {
    azure_core::http::StatusCode::from(status)
        .canonical_reason()
        .into_owned()
}

/// Storage error messages carry `RequestId:...` and `Time:...` on following lines; the request id
/// is kept separately and the time is noise in logs.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// The storage error code of an SDK error, if the service answered.
fn sdk_error_code(err: &azure_core::Error) -> Option<(u16, Option<String>)> {
    match err.kind() {
        ErrorKind::HttpResponse {
            status,
            raw_response,
            error_code,
        } => Some((
            u16::from(*status),
            raw_response
                .as_ref()
                .and_then(|r| r.headers().get_optional_string(&ERROR_CODE))
                .or_else(|| error_code.clone()),
        )),
        _ => None,
    }
}

fn is_error(err: &azure_core::Error, status: u16, code: &str) -> bool {
    matches!(sdk_error_code(err), Some((s, Some(c))) if s == status && c == code)
}

/// Authenticated blob and queue service clients for one storage account.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<StorageInner>,
}

struct StorageInner {
    description: String,
    blob_service: BlobServiceClient,
    queue_service: QueueServiceClient,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("connection", &self.inner.description)
            .finish()
    }
}

impl Storage {
    /// `transport`: an optional shared reqwest::Client to use as the azure_core transport (so the whole process uses one pooled client)
    ///
    /// Without one, each SDK client builds its own default HTTP client. With one, note that the
    /// blob SDK's own default disables automatic gzip decompression; that only matters for blobs
    /// stored with a `Content-Encoding`, which this module never writes.
    pub fn new(
        connection: StorageConnection,
        transport: Option<reqwest::Client>,
    ) -> Result<Self, StorageError> {
        Self::with_retry(connection, transport, default_retry())
    }

    /// Like [`Storage::new`] with an explicit retry policy (e.g. `RetryOptions::none()` in tests,
    /// or longer backoff for background jobs).
    pub fn with_retry(
        connection: StorageConnection,
        transport: Option<reqwest::Client>,
        retry: RetryOptions,
    ) -> Result<Self, StorageError> {
        let transport = transport.map(|client| Transport::new(Arc::new(client)));
        let mut client_options = ClientOptions {
            transport: transport.clone(),
            retry,
            per_call_policies: vec![Arc::new(deadline_policy::CallDeadlinePolicy)],
            ..Default::default()
        };

        let credential: Option<Arc<dyn TokenCredential>> = match &connection {
            StorageConnection::SharedKey { account, key, .. } => {
                client_options
                    .per_try_policies
                    .push(shared_key::SharedKeyPolicy::new(account, key));
                None
            }
            StorageConnection::Identity { client_id, .. } => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: ClientOptions {
                        transport,
                        ..Default::default()
                    },
                };
                let credential =
                    ManagedIdentityCredential::new(Some(options)).map_err(|source| {
                        StorageError::Credential {
                            source: Box::new(source),
                        }
                    })?;
                Some(credential)
            }
        };

        // Variants can be built directly, bypassing the parser's normalisation, so redo it here.
        let blob_service = BlobServiceClient::new(
            connection::without_trailing_slash(connection.blob_endpoint()),
            credential.clone(),
            Some(BlobServiceClientOptions {
                client_options: client_options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|source| StorageError::Client {
            service: "blob",
            endpoint: connection.blob_endpoint().to_string(),
            source: Box::new(source),
        })?;
        let queue_service = QueueServiceClient::new(
            connection::without_trailing_slash(connection.queue_endpoint()),
            credential,
            Some(QueueServiceClientOptions {
                client_options,
                ..Default::default()
            }),
        )
        .map_err(|source| StorageError::Client {
            service: "queue",
            endpoint: connection.queue_endpoint().to_string(),
            source: Box::new(source),
        })?;

        Ok(Self {
            inner: Arc::new(StorageInner {
                description: connection.describe(),
                blob_service,
                queue_service,
            }),
        })
    }

    /// The connection this was built from, safe for logs.
    pub fn describe(&self) -> &str {
        &self.inner.description
    }

    /// An SDK container client sharing this account's pipeline (auth, retries, transport).
    pub fn blob_container(&self, name: &str) -> BlobContainerClient {
        self.inner.blob_service.blob_container_client(name)
    }

    /// An SDK queue client sharing this account's pipeline (auth, retries, transport).
    pub fn queue(&self, name: &str) -> QueueClient {
        // `queue_client` only fails for endpoints that cannot be a base URL, and
        // `StorageConnection` only ever holds http(s) URLs with a host, so this cannot fail.
        self.inner
            .queue_service
            .queue_client(name)
            .expect("queue endpoint was validated as a base URL")
    }

    /// Cheap reachability + auth check of both services: lists at most one container and one
    /// queue, which needs only the data-plane read permission the product needs anyway.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let blob = async {
            let resource = format!("blob service {}", self.inner.blob_service.url());
            let options = BlobServiceClientListContainersOptions {
                maxresults: Some(1),
                ..Default::default()
            };
            let mut pages = self
                .inner
                .blob_service
                .list_containers(Some(options))
                .map_err(|e| StorageError::from_sdk("list containers on", resource.clone(), e))?
                .into_pages();
            pages
                .try_next()
                .await
                .map_err(|e| StorageError::from_sdk("list containers on", resource, e))?;
            Ok::<_, StorageError>(())
        };
        let queue = async {
            let resource = format!("queue service {}", self.inner.queue_service.url());
            let options = QueueServiceClientListQueuesOptions {
                maxresults: Some(1),
                ..Default::default()
            };
            let mut pages = self
                .inner
                .queue_service
                .list_queues(Some(options))
                .map_err(|e| StorageError::from_sdk("list queues on", resource.clone(), e))?
                .into_pages();
            pages
                .try_next()
                .await
                .map_err(|e| StorageError::from_sdk("list queues on", resource, e))?;
            Ok::<_, StorageError>(())
        };
        let (blob, queue) = tokio::join!(blob, queue);
        blob.and(queue)
    }
}

/// Retries for transient failures (connection errors, 408/429/5xx), bounded to a few seconds.
///
/// The SDK default (8 retries, up to 60 s of backoff) made one storage call to an unreachable
/// endpoint take ~80 s, longer than an MCP client waits for a tool call; failing within seconds
/// with a clear error is more useful here than riding out a long outage.
fn default_retry() -> RetryOptions {
    RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(200),
        max_retries: 4,
        max_total_elapsed: azure_core::time::Duration::seconds(10),
        max_delay: azure_core::time::Duration::seconds(2),
    })
}

/// One blob as returned by [`JsonBlobStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub name: String,
    pub etag: Option<ETag>,
    pub last_modified: Option<OffsetDateTime>,
    pub size: Option<u64>,
}

/// One page of [`JsonBlobStore::list_page`]; pass `next_marker` back to get the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPage {
    pub entries: Vec<BlobEntry>,
    pub next_marker: Option<String>,
}

impl BlobEntry {
    fn from_item(item: BlobItem) -> Option<Self> {
        let name = item.name?;
        let properties = item.properties;
        Some(Self {
            name,
            etag: properties
                .as_ref()
                .and_then(|p| p.etag.as_ref())
                .map(quoted_etag),
            last_modified: properties.as_ref().and_then(|p| p.last_modified),
            size: properties.as_ref().and_then(|p| p.content_length),
        })
    }
}

/// Listings carry ETags without the quotes that the `ETag` response header has; quote them so a
/// listed ETag compares equal to the one `get` returns and can be passed to `replace` as is.
fn quoted_etag(etag: &ETag) -> ETag {
    let raw = etag.as_ref();
    if raw.starts_with('"') || raw.starts_with("W/") {
        etag.clone()
    } else {
        ETag::from(format!("\"{raw}\""))
    }
}

/// JSON documents in one container, with ETag-based optimistic concurrency.
#[derive(Clone)]
pub struct JsonBlobStore {
    container: Arc<BlobContainerClient>,
    container_name: String,
    list_page_size: Option<NonZeroU32>,
}

impl fmt::Debug for JsonBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonBlobStore")
            .field("container", &self.container.url().as_str())
            .finish()
    }
}

impl JsonBlobStore {
    pub fn new(storage: &Storage, container: &str) -> Self {
        Self {
            container: Arc::new(storage.blob_container(container)),
            container_name: container.to_owned(),
            list_page_size: None,
        }
    }

    /// Caps how many blobs `list` asks for per request (the service default is 5000).
    pub fn with_list_page_size(mut self, page_size: NonZeroU32) -> Self {
        self.list_page_size = Some(page_size);
        self
    }

    pub fn container_name(&self) -> &str {
        &self.container_name
    }

    fn resource(&self, name: &str) -> String {
        format!("blob {}/{}", self.container_name, name)
    }

    /// Creates the container if needed; returns whether it was created by this call.
    pub async fn ensure_container(&self) -> Result<bool, StorageError> {
        match self.container.create(None).await {
            Ok(_) => Ok(true),
            Err(e) if is_error(&e, 409, "ContainerAlreadyExists") => Ok(false),
            Err(e) => Err(StorageError::from_sdk(
                "create",
                format!("container {}", self.container_name),
                e,
            )),
        }
    }

    /// The document and its ETag, or `None` if there is no such blob.
    pub async fn get<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<(T, ETag)>, StorageError> {
        let blob = self.container.blob_client(name);
        let result = match blob.download(None).await {
            Ok(result) => result,
            Err(e) if is_error(&e, 404, "BlobNotFound") => return Ok(None),
            Err(e) => return Err(StorageError::from_sdk("read", self.resource(name), e)),
        };
        let etag = result
            .properties
            .etag
            .ok_or_else(|| StorageError::UnexpectedResponse {
                operation: "read",
                resource: self.resource(name),
                reason: "no ETag header".to_owned(),
            })?;
        let bytes = result
            .body
            .collect()
            .await
            .map_err(|e| StorageError::from_sdk("read", self.resource(name), e))?;
        let value = serde_json::from_slice(&bytes).map_err(|source| StorageError::Json {
            action: "parse",
            container: self.container_name.clone(),
            name: name.to_owned(),
            source,
        })?;
        Ok(Some((value, etag)))
    }

    /// Writes a new document; fails with [`StorageError::AlreadyExists`] if the blob exists.
    pub async fn create<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<ETag, StorageError> {
        let options = BlobClientUploadOptions {
            if_none_match: Some(ETag::from("*")),
            ..Default::default()
        };
        match self.upload("create", name, value, options).await {
            Err(StorageError::Service {
                status: 409 | 412,
                code,
                ..
            }) if matches!(
                code.as_deref(),
                Some("BlobAlreadyExists" | "ConditionNotMet")
            ) =>
            {
                Err(StorageError::AlreadyExists {
                    container: self.container_name.clone(),
                    name: name.to_owned(),
                })
            }
            other => other,
        }
    }

    /// Overwrites a document only if it still has `etag`; [`StorageError::Conflict`] otherwise,
    /// including when the blob was deleted since it was read (the service answers 412 for both;
    /// [`StorageError::NotFound`] is kept for a 404 `BlobNotFound`, should a service send one).
    pub async fn replace<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
        etag: &ETag,
    ) -> Result<ETag, StorageError> {
        let options = BlobClientUploadOptions {
            if_match: Some(etag.clone()),
            ..Default::default()
        };
        match self.upload("replace", name, value, options).await {
            Err(StorageError::Service { status: 412, .. }) => Err(StorageError::Conflict {
                container: self.container_name.clone(),
                name: name.to_owned(),
            }),
            Err(StorageError::Service {
                status: 404, code, ..
            }) if code.as_deref() == Some("BlobNotFound") => Err(StorageError::NotFound {
                container: self.container_name.clone(),
                name: name.to_owned(),
            }),
            other => other,
        }
    }

    /// Writes a document unconditionally (last writer wins).
    pub async fn upsert<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<ETag, StorageError> {
        self.upload("write", name, value, BlobClientUploadOptions::default())
            .await
    }

    async fn upload<T: Serialize + ?Sized>(
        &self,
        operation: &'static str,
        name: &str,
        value: &T,
        mut options: BlobClientUploadOptions<'_>,
    ) -> Result<ETag, StorageError> {
        let body = serde_json::to_vec(value).map_err(|source| StorageError::Json {
            action: "serialize",
            container: self.container_name.clone(),
            name: name.to_owned(),
            source,
        })?;
        options.blob_content_type = Some("application/json".to_owned());
        // Documents fit one request. Left unset, the SDK sizes a parallel upload from the
        // machine's CPU count, which it reads from the cgroup files on every call.
        options.parallel = Some(std::num::NonZero::<usize>::MIN);
        let result = self
            .container
            .blob_client(name)
            .upload(RequestContent::from(body), Some(options))
            .await
            .map_err(|e| StorageError::from_sdk(operation, self.resource(name), e))?;
        result.etag.ok_or_else(|| StorageError::UnexpectedResponse {
            operation,
            resource: self.resource(name),
            reason: "no ETag header".to_owned(),
        })
    }

    /// Deletes a blob; returns whether it existed.
    pub async fn delete(&self, name: &str) -> Result<bool, StorageError> {
        match self.container.blob_client(name).delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if is_error(&e, 404, "BlobNotFound") => Ok(false),
            Err(e) => Err(StorageError::from_sdk("delete", self.resource(name), e)),
        }
    }

    /// All blobs whose name starts with `prefix`, following continuation markers.
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StorageError> {
        let resource = || format!("container {} (prefix {prefix:?})", self.container_name);
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            maxresults: self.page_size_i32()?,
            ..Default::default()
        };
        let mut items = self
            .container
            .list_blobs(Some(options))
            .map_err(|e| StorageError::from_sdk("list blobs in", resource(), e))?;
        let mut entries = Vec::new();
        while let Some(item) = items
            .try_next()
            .await
            .map_err(|e| StorageError::from_sdk("list blobs in", resource(), e))?
        {
            entries.extend(BlobEntry::from_item(item));
        }
        Ok(entries)
    }

    /// One page of blobs whose name starts with `prefix`, for callers that stream large listings.
    pub async fn list_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max_results: NonZeroU32,
    ) -> Result<BlobPage, StorageError> {
        let resource = || format!("container {} (prefix {prefix:?})", self.container_name);
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            marker: marker.map(str::to_owned),
            maxresults: Some(non_zero_to_i32(max_results)?),
            ..Default::default()
        };
        let mut pages = self
            .container
            .list_blobs(Some(options))
            .map_err(|e| StorageError::from_sdk("list blobs in", resource(), e))?
            .into_pages();
        let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| StorageError::from_sdk("list blobs in", resource(), e))?
        else {
            return Ok(BlobPage {
                entries: Vec::new(),
                next_marker: None,
            });
        };
        let page = page
            .into_model()
            .map_err(|e| StorageError::from_sdk("list blobs in", resource(), e))?;
        Ok(BlobPage {
            entries: page
                .blob_items
                .into_iter()
                .filter_map(BlobEntry::from_item)
                .collect(),
            next_marker: page.next_marker.filter(|m| !m.is_empty()),
        })
    }

    fn page_size_i32(&self) -> Result<Option<i32>, StorageError> {
        self.list_page_size.map(non_zero_to_i32).transpose()
    }
}

fn non_zero_to_i32(value: NonZeroU32) -> Result<i32, StorageError> {
    i32::try_from(value.get()).map_err(|_| StorageError::InvalidArgument {
        reason: format!("page size {value} is too large"),
    })
}

/// How message text is put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageEncoding {
    /// Base64 of the UTF-8 text: what the Azure Functions queue trigger expects by default
    /// (`extensions.queues.messageEncoding` = `base64`). The Rust SDK itself sends text as is.
    #[default]
    Base64,
    /// The text itself (XML-escaped by the SDK); for consumers configured with
    /// `messageEncoding: none`.
    PlainText,
}

impl fmt::Display for MessageEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Base64 => "base64",
            Self::PlainText => "plain text",
        })
    }
}

/// Options for [`MessageQueue::send_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions {
    /// Keep the message invisible this long after sending (deferred work).
    pub initial_visibility_delay: Option<Duration>,
    /// How long the message lives if never deleted (service default: 7 days).
    pub time_to_live: Option<Duration>,
}

/// Identifies a message just sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub id: String,
    pub pop_receipt: Option<String>,
    pub inserted_on: Option<OffsetDateTime>,
    pub expires_on: Option<OffsetDateTime>,
}

/// A message taken from the queue. It stays invisible to other receivers until its visibility
/// timeout elapses; delete it with [`MessageQueue::delete`] once processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: String,
    pub pop_receipt: String,
    /// How many times the message has been received, including this time (poison detection).
    pub dequeue_count: u64,
    pub inserted_on: Option<OffsetDateTime>,
    pub next_visible_on: Option<OffsetDateTime>,
    /// The text as stored, before decoding.
    pub raw_text: String,
    queue: String,
    encoding: MessageEncoding,
}

impl ReceivedMessage {
    /// The message text decoded with the queue's encoding. Decoding is per message (not in
    /// `receive`) so an undecodable message can still be deleted with its pop receipt.
    pub fn text(&self) -> Result<String, StorageError> {
        let invalid = |reason: String| StorageError::InvalidMessage {
            queue: self.queue.clone(),
            message_id: self.id.clone(),
            reason,
        };
        match self.encoding {
            MessageEncoding::PlainText => Ok(self.raw_text.clone()),
            MessageEncoding::Base64 => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(self.raw_text.trim())
                    .map_err(|e| invalid(format!("not base64 ({e})")))?;
                String::from_utf8(bytes)
                    .map_err(|_| invalid("not UTF-8 once base64-decoded".to_owned()))
            }
        }
    }

    /// The decoded text parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, StorageError> {
        serde_json::from_str(&self.text()?).map_err(|e| StorageError::InvalidMessage {
            queue: self.queue.clone(),
            message_id: self.id.clone(),
            reason: format!("not the expected JSON ({e})"),
        })
    }
}

/// A queue carrying text messages in a fixed [`MessageEncoding`].
#[derive(Clone)]
pub struct MessageQueue {
    queue: Arc<QueueClient>,
    name: String,
    encoding: MessageEncoding,
}

impl fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageQueue")
            .field("queue", &self.queue.url().as_str())
            .field("encoding", &self.encoding)
            .finish()
    }
}

/// The service limit on a message, measured on the text as sent.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The service returns at most 32 messages per receive.
const MAX_RECEIVE_BATCH: u8 = 32;

impl MessageQueue {
    pub fn new(storage: &Storage, name: &str, encoding: MessageEncoding) -> Self {
        Self {
            queue: Arc::new(storage.queue(name)),
            name: name.to_owned(),
            encoding,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn encoding(&self) -> MessageEncoding {
        self.encoding
    }

    fn resource(&self) -> String {
        format!("queue {}", self.name)
    }

    /// The size `text` takes on the wire in this queue's encoding, to compare with
    /// [`MAX_MESSAGE_BYTES`] before sending.
    pub fn encoded_len(&self, text: &str) -> usize {
        match self.encoding {
            MessageEncoding::Base64 => text.len().div_ceil(3) * 4,
            MessageEncoding::PlainText => text.len(),
        }
    }

    /// Creates the queue if needed; returns whether it was created by this call.
    pub async fn ensure_exists(&self) -> Result<bool, StorageError> {
        match self.queue.create(None).await {
            // 201 = created; 204 = already existed with identical metadata.
            Ok(response) => Ok(u16::from(response.status()) == 201),
            Err(e) if is_error(&e, 409, "QueueAlreadyExists") => Ok(false),
            Err(e) => Err(StorageError::from_sdk("create", self.resource(), e)),
        }
    }

    pub async fn send(&self, text: &str) -> Result<SentMessage, StorageError> {
        self.send_with(text, SendOptions::default()).await
    }

    pub async fn send_with(
        &self,
        text: &str,
        options: SendOptions,
    ) -> Result<SentMessage, StorageError> {
        let encoded = match self.encoding {
            MessageEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(text),
            MessageEncoding::PlainText => text.to_owned(),
        };
        debug_assert_eq!(encoded.len(), self.encoded_len(text));
        if encoded.len() > MAX_MESSAGE_BYTES {
            return Err(StorageError::MessageTooLarge {
                queue: self.name.clone(),
                size: encoded.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let message = SdkQueueMessage {
            message_text: Some(encoded),
        };
        let content = message
            .try_into()
            .map_err(|e| StorageError::from_sdk("send to", self.resource(), e))?;
        let sdk_options = QueueClientSendMessageOptions {
            visibility_timeout: options
                .initial_visibility_delay
                .map(|d| seconds("initial_visibility_delay", d))
                .transpose()?,
            message_time_to_live: options
                .time_to_live
                .map(|d| seconds("time_to_live", d))
                .transpose()?,
            ..Default::default()
        };
        let sent = self
            .queue
            .send_message(content, Some(sdk_options))
            .await
            .and_then(|response| response.into_model())
            .and_then(|list| list.into_message())
            .map_err(|e| StorageError::from_sdk("send to", self.resource(), e))?;
        Ok(SentMessage {
            id: sent.message_id.unwrap_or_default(),
            pop_receipt: sent.pop_receipt,
            inserted_on: sent.insertion_time,
            expires_on: sent.expiration_time,
        })
    }

    /// Takes up to `max_messages` (1..=32) messages, hiding them from other receivers for
    /// `visibility_timeout` (at least 1 second, at most 7 days).
    pub async fn receive(
        &self,
        max_messages: u8,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, StorageError> {
        if !(1..=MAX_RECEIVE_BATCH).contains(&max_messages) {
            return Err(StorageError::InvalidArgument {
                reason: format!(
                    "max_messages must be between 1 and {MAX_RECEIVE_BATCH}, got {max_messages}"
                ),
            });
        }
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(i32::from(max_messages)),
            visibility_timeout: Some(seconds("visibility_timeout", visibility_timeout)?),
            ..Default::default()
        };
        let received = self
            .queue
            .receive_messages(Some(options))
            .await
            .and_then(|response| response.into_model())
            .map_err(|e| StorageError::from_sdk("receive from", self.resource(), e))?;
        received
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let (Some(id), Some(pop_receipt)) = (m.message_id, m.pop_receipt) else {
                    return Err(StorageError::UnexpectedResponse {
                        operation: "receive from",
                        resource: self.resource(),
                        reason: "message without id or pop receipt".to_owned(),
                    });
                };
                Ok(ReceivedMessage {
                    id,
                    pop_receipt,
                    dequeue_count: m.dequeue_count.map_or(0, |c| u64::try_from(c).unwrap_or(0)),
                    inserted_on: m.insertion_time,
                    next_visible_on: m.time_next_visible,
                    raw_text: m.message_text.unwrap_or_default(),
                    queue: self.name.clone(),
                    encoding: self.encoding,
                })
            })
            .collect()
    }

    /// Deletes a received message. If the visibility timeout elapsed and the message was received
    /// again, the old pop receipt is stale: the service answers 400 `PopReceiptMismatch` (or 404
    /// `MessageNotFound` once it is gone), see [`StorageError::code`]. The message is then owned
    /// by the newer receiver, so callers should log and move on.
    pub async fn delete(&self, message: &ReceivedMessage) -> Result<(), StorageError> {
        self.delete_by_receipt(&message.id, &message.pop_receipt)
            .await
    }

    pub async fn delete_by_receipt(
        &self,
        message_id: &str,
        pop_receipt: &str,
    ) -> Result<(), StorageError> {
        self.queue
            .delete_message(message_id, pop_receipt, None)
            .await
            .map_err(|e| {
                StorageError::from_sdk(
                    "delete message from",
                    format!("{} (message {message_id})", self.resource()),
                    e,
                )
            })?;
        Ok(())
    }
}

fn seconds(what: &str, duration: Duration) -> Result<i32, StorageError> {
    i32::try_from(duration.as_secs()).map_err(|_| StorageError::InvalidArgument {
        reason: format!("{what} of {duration:?} is too long"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_mode_builds_clients_on_the_configured_endpoints() {
        let conn = StorageConnection::Identity {
            blob_endpoint: url::Url::parse("https://mystore01.blob.core.windows.net").unwrap(),
            queue_endpoint: url::Url::parse("https://mystore01.queue.core.windows.net").unwrap(),
            client_id: Some("00000000-1111-2222-3333-444444444444".to_owned()),
        };
        // Building the credential makes no network call, so this runs anywhere.
        let storage = Storage::new(conn, Some(reqwest::Client::new())).unwrap();
        assert_eq!(
            storage.blob_container("state").url().as_str(),
            "https://mystore01.blob.core.windows.net/state"
        );
        assert_eq!(
            storage.queue("jobs").url().as_str(),
            "https://mystore01.queue.core.windows.net/jobs"
        );
        assert!(
            storage
                .describe()
                .contains("user-assigned managed identity")
        );
    }

    #[test]
    fn shared_key_mode_keeps_azurite_account_path() {
        let conn = StorageConnection::SharedKey {
            account: "devstoreaccount1".to_owned(),
            key: AccountKey::from_base64("AAAA").unwrap(),
            // Built directly (not parsed), with trailing slashes the parser would have removed.
            blob_endpoint: url::Url::parse("http://127.0.0.1:10000/devstoreaccount1/").unwrap(),
            queue_endpoint: url::Url::parse("http://127.0.0.1:10001/devstoreaccount1/").unwrap(),
        };
        let storage = Storage::new(conn, None).unwrap();
        assert_eq!(
            storage.blob_container("state").url().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/state"
        );
        assert_eq!(
            storage.queue("jobs").url().as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/jobs"
        );
        let printed = format!("{storage:?}");
        assert!(!printed.contains("AAAA"), "{printed}");
    }

    #[test]
    fn service_error_display_is_readable_and_hints_on_auth() {
        let err = StorageError::Service {
            operation: "list containers on",
            resource: "blob service http://127.0.0.1:10000/devstoreaccount1".to_owned(),
            status: 403,
            code: Some("AuthenticationFailed".to_owned()),
            message: "Server failed to authenticate the request.".to_owned(),
            request_id: None,
        };
        let text = err.to_string();
        assert!(
            text.starts_with("list containers on blob service http://127.0.0.1:10000/devstoreaccount1 failed: HTTP 403 AuthenticationFailed: Server failed"),
            "{text}"
        );
        assert!(text.contains("check the account key"), "{text}");
        assert!(err.is_auth_failure());
    }

    #[test]
    fn message_decoding_is_per_message() {
        let mut message = ReceivedMessage {
            id: "m1".to_owned(),
            pop_receipt: "r1".to_owned(),
            dequeue_count: 1,
            inserted_on: None,
            next_visible_on: None,
            raw_text: base64::engine::general_purpose::STANDARD.encode(r#"{"job":7}"#),
            queue: "q".to_owned(),
            encoding: MessageEncoding::Base64,
        };
        assert_eq!(message.text().unwrap(), r#"{"job":7}"#);
        let value: serde_json::Value = message.json().unwrap();
        assert_eq!(value["job"], 7);

        message.raw_text = "not base64 at all!".to_owned();
        let err = message.text().unwrap_err();
        assert!(
            matches!(&err, StorageError::InvalidMessage { message_id, .. } if message_id == "m1"),
            "{err:?}"
        );

        message.encoding = MessageEncoding::PlainText;
        assert_eq!(message.text().unwrap(), "not base64 at all!");
    }
}
