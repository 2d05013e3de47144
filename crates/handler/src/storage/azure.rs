//! The Azure Storage backend: the official `azure_storage_blob` / `azure_storage_queue` 1.x
//! clients, with request signing for account keys (`shared_key`), managed identity, one pooled
//! transport, the call deadline, and service errors turned into [`StorageError`]s that name the
//! operation and the resource.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use async_trait::async_trait;
use azure_core::{
    credentials::TokenCredential,
    error::ErrorKind,
    http::{
        ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, Transport,
        headers::HeaderName,
    },
};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use azure_storage_blob::{
    BlobContainerClient, BlobServiceClient, BlobServiceClientOptions,
    models::{
        BlobClientUploadOptions, BlobContainerClientListBlobsOptions, BlobItem,
        BlobServiceClientListContainersOptions,
    },
};
use azure_storage_queue::{
    QueueClient, QueueServiceClient, QueueServiceClientOptions,
    models::{
        QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions,
        QueueMessage as SdkQueueMessage, QueueServiceClientListQueuesOptions,
    },
};
use futures::TryStreamExt as _;

use super::{
    BlobBackend, BlobEntry, BlobPage, ETag, QueueBackend, SendOptions, SentMessage,
    StorageConnection, StorageError, StoredMessage, WriteCondition, connection, deadline_policy,
    shared_key,
};

/// Authenticated blob and queue service clients for one storage account.
pub(super) struct AzureAccount {
    blob_service: BlobServiceClient,
    queue_service: QueueServiceClient,
}

impl AzureAccount {
    /// `transport`: the process's pooled reqwest client, if it has one. Without one, each SDK
    /// client builds its own. With one, note that the blob SDK's own default disables automatic
    /// gzip decompression; that only matters for blobs stored with a `Content-Encoding`, which
    /// this module never writes.
    pub(super) fn connect(
        connection: &StorageConnection,
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

        let credential: Option<Arc<dyn TokenCredential>> = match connection {
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
            blob_service,
            queue_service,
        })
    }

    pub(super) fn container(&self, name: &str) -> AzureContainer {
        AzureContainer {
            client: self.blob_service.blob_container_client(name),
            name: name.to_owned(),
        }
    }

    pub(super) fn queue(&self, name: &str) -> AzureQueue {
        AzureQueue {
            // `queue_client` only fails for endpoints that cannot be a base URL, and
            // `StorageConnection` only ever holds http(s) URLs with a host, so this cannot fail.
            client: self
                .queue_service
                .queue_client(name)
                .expect("queue endpoint was validated as a base URL"),
            name: name.to_owned(),
        }
    }

    /// Cheap reachability + auth check of both services: lists at most one container and one
    /// queue, which needs only the data-plane read permission the product needs anyway.
    pub(super) async fn ping(&self) -> Result<(), StorageError> {
        let blob = async {
            let resource = format!("blob service {}", self.blob_service.url());
            let options = BlobServiceClientListContainersOptions {
                maxresults: Some(1),
                ..Default::default()
            };
            let mut pages = self
                .blob_service
                .list_containers(Some(options))
                .map_err(|e| from_sdk("list containers on", resource.clone(), e))?
                .into_pages();
            pages
                .try_next()
                .await
                .map_err(|e| from_sdk("list containers on", resource, e))?;
            Ok::<_, StorageError>(())
        };
        let queue = async {
            let resource = format!("queue service {}", self.queue_service.url());
            let options = QueueServiceClientListQueuesOptions {
                maxresults: Some(1),
                ..Default::default()
            };
            let mut pages = self
                .queue_service
                .list_queues(Some(options))
                .map_err(|e| from_sdk("list queues on", resource.clone(), e))?
                .into_pages();
            pages
                .try_next()
                .await
                .map_err(|e| from_sdk("list queues on", resource, e))?;
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
pub(super) fn default_retry() -> RetryOptions {
    RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(200),
        max_retries: 4,
        max_total_elapsed: azure_core::time::Duration::seconds(10),
        max_delay: azure_core::time::Duration::seconds(2),
    })
}

pub(super) struct AzureContainer {
    client: BlobContainerClient,
    name: String,
}

impl AzureContainer {
    fn resource(&self, name: &str) -> String {
        format!("blob {}/{}", self.name, name)
    }
}

#[async_trait]
impl BlobBackend for AzureContainer {
    fn location(&self) -> String {
        self.client.url().to_string()
    }

    async fn create_container(&self) -> Result<bool, StorageError> {
        match self.client.create(None).await {
            Ok(_) => Ok(true),
            Err(e) if is_error(&e, 409, "ContainerAlreadyExists") => Ok(false),
            Err(e) => Err(from_sdk("create", format!("container {}", self.name), e)),
        }
    }

    async fn delete_container(&self) -> Result<bool, StorageError> {
        match self.client.delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if is_error(&e, 404, "ContainerNotFound") => Ok(false),
            Err(e) => Err(from_sdk("delete", format!("container {}", self.name), e)),
        }
    }

    async fn download(&self, name: &str) -> Result<Option<(Vec<u8>, ETag)>, StorageError> {
        let result = match self.client.blob_client(name).download(None).await {
            Ok(result) => result,
            Err(e) if is_error(&e, 404, "BlobNotFound") => return Ok(None),
            Err(e) => return Err(from_sdk("read", self.resource(name), e)),
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
            .map_err(|e| from_sdk("read", self.resource(name), e))?;
        Ok(Some((bytes.to_vec(), etag)))
    }

    async fn upload(
        &self,
        operation: &'static str,
        name: &str,
        body: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<ETag, StorageError> {
        let mut options = BlobClientUploadOptions {
            blob_content_type: Some("application/json".to_owned()),
            // Documents fit one request. Left unset, the SDK sizes a parallel upload from the
            // machine's CPU count, which it reads from the cgroup files on every call.
            parallel: Some(std::num::NonZero::<usize>::MIN),
            ..Default::default()
        };
        match &condition {
            WriteCondition::Always => {}
            WriteCondition::IfAbsent => options.if_none_match = Some(ETag::from("*")),
            WriteCondition::IfMatch(etag) => options.if_match = Some(etag.clone()),
        }
        let result = self
            .client
            .blob_client(name)
            .upload(RequestContent::from(body), Some(options))
            .await;
        let error = match result {
            Ok(result) => {
                return result.etag.ok_or_else(|| StorageError::UnexpectedResponse {
                    operation,
                    resource: self.resource(name),
                    reason: "no ETag header".to_owned(),
                });
            }
            Err(e) => from_sdk(operation, self.resource(name), e),
        };
        let (container, blob) = (self.name.clone(), name.to_owned());
        Err(match (condition, error.status(), error.code()) {
            (
                WriteCondition::IfAbsent,
                Some(409 | 412),
                Some("BlobAlreadyExists" | "ConditionNotMet"),
            ) => StorageError::AlreadyExists {
                container,
                name: blob,
            },
            // The service answers 412 both for a changed blob and for one deleted since it was
            // read; a 404 `BlobNotFound` is kept apart should a service send one.
            (WriteCondition::IfMatch(_), Some(412), _) => StorageError::Conflict {
                container,
                name: blob,
            },
            (WriteCondition::IfMatch(_), Some(404), Some("BlobNotFound")) => {
                StorageError::NotFound {
                    container,
                    name: blob,
                }
            }
            _ => error,
        })
    }

    async fn delete(&self, name: &str) -> Result<bool, StorageError> {
        match self.client.blob_client(name).delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if is_error(&e, 404, "BlobNotFound") => Ok(false),
            Err(e) => Err(from_sdk("delete", self.resource(name), e)),
        }
    }

    async fn list_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max_results: Option<NonZeroU32>,
    ) -> Result<BlobPage, StorageError> {
        let resource = || format!("container {} (prefix {prefix:?})", self.name);
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            marker: marker.map(str::to_owned),
            maxresults: max_results.map(non_zero_to_i32).transpose()?,
            ..Default::default()
        };
        let mut pages = self
            .client
            .list_blobs(Some(options))
            .map_err(|e| from_sdk("list blobs in", resource(), e))?
            .into_pages();
        let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| from_sdk("list blobs in", resource(), e))?
        else {
            return Ok(BlobPage {
                entries: Vec::new(),
                next_marker: None,
            });
        };
        let page = page
            .into_model()
            .map_err(|e| from_sdk("list blobs in", resource(), e))?;
        Ok(BlobPage {
            entries: page.blob_items.into_iter().filter_map(entry).collect(),
            next_marker: page.next_marker.filter(|m| !m.is_empty()),
        })
    }
}

fn entry(item: BlobItem) -> Option<BlobEntry> {
    let name = item.name?;
    let properties = item.properties;
    Some(BlobEntry {
        name,
        etag: properties
            .as_ref()
            .and_then(|p| p.etag.as_ref())
            .map(quoted_etag),
        last_modified: properties.as_ref().and_then(|p| p.last_modified),
        size: properties.as_ref().and_then(|p| p.content_length),
    })
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

fn non_zero_to_i32(value: NonZeroU32) -> Result<i32, StorageError> {
    i32::try_from(value.get()).map_err(|_| StorageError::InvalidArgument {
        reason: format!("page size {value} is too large"),
    })
}

pub(super) struct AzureQueue {
    client: QueueClient,
    name: String,
}

impl AzureQueue {
    fn resource(&self) -> String {
        format!("queue {}", self.name)
    }
}

#[async_trait]
impl QueueBackend for AzureQueue {
    fn location(&self) -> String {
        self.client.url().to_string()
    }

    async fn create(&self) -> Result<bool, StorageError> {
        match self.client.create(None).await {
            // 201 = created; 204 = already existed with identical metadata.
            Ok(response) => Ok(u16::from(response.status()) == 201),
            Err(e) if is_error(&e, 409, "QueueAlreadyExists") => Ok(false),
            Err(e) => Err(from_sdk("create", self.resource(), e)),
        }
    }

    async fn delete_queue(&self) -> Result<bool, StorageError> {
        match self.client.delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if is_error(&e, 404, "QueueNotFound") => Ok(false),
            Err(e) => Err(from_sdk("delete", self.resource(), e)),
        }
    }

    async fn send(&self, text: String, options: SendOptions) -> Result<SentMessage, StorageError> {
        let message = SdkQueueMessage {
            message_text: Some(text),
        };
        let content = message
            .try_into()
            .map_err(|e| from_sdk("send to", self.resource(), e))?;
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
            .client
            .send_message(content, Some(sdk_options))
            .await
            .and_then(|response| response.into_model())
            .and_then(|list| list.into_message())
            .map_err(|e| from_sdk("send to", self.resource(), e))?;
        Ok(SentMessage {
            id: sent.message_id.unwrap_or_default(),
            pop_receipt: sent.pop_receipt,
            inserted_on: sent.insertion_time,
            expires_on: sent.expiration_time,
        })
    }

    async fn receive(
        &self,
        max_messages: u8,
        visibility_timeout: Duration,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(i32::from(max_messages)),
            visibility_timeout: Some(seconds("visibility_timeout", visibility_timeout)?),
            ..Default::default()
        };
        let received = self
            .client
            .receive_messages(Some(options))
            .await
            .and_then(|response| response.into_model())
            .map_err(|e| from_sdk("receive from", self.resource(), e))?;
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
                Ok(StoredMessage {
                    id,
                    pop_receipt,
                    dequeue_count: m.dequeue_count.map_or(0, |c| u64::try_from(c).unwrap_or(0)),
                    inserted_on: m.insertion_time,
                    next_visible_on: m.time_next_visible,
                    raw_text: m.message_text.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn delete(&self, message_id: &str, pop_receipt: &str) -> Result<(), StorageError> {
        self.client
            .delete_message(message_id, pop_receipt, None)
            .await
            .map_err(|e| {
                from_sdk(
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

/// Turns an SDK error into a `StorageError` naming what was attempted.
fn from_sdk(
    operation: &'static str,
    resource: impl Into<String>,
    err: azure_core::Error,
) -> StorageError {
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
            StorageError::Service {
                operation,
                resource,
                status,
                code,
                message,
                request_id,
            }
        }
        ErrorKind::Credential => StorageError::Authentication {
            operation,
            resource,
            source: Box::new(err),
        },
        _ => StorageError::Transport {
            operation,
            resource,
            source: Box::new(err),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::AccountKey;

    #[test]
    fn identity_mode_builds_clients_on_the_configured_endpoints() {
        let connection = StorageConnection::Identity {
            blob_endpoint: url::Url::parse("https://mystore01.blob.core.windows.net").unwrap(),
            queue_endpoint: url::Url::parse("https://mystore01.queue.core.windows.net").unwrap(),
            client_id: Some("00000000-1111-2222-3333-444444444444".to_owned()),
        };
        // Building the credential makes no network call, so this runs anywhere.
        let account =
            AzureAccount::connect(&connection, Some(reqwest::Client::new()), default_retry())
                .unwrap();
        assert_eq!(
            account.container("state").location(),
            "https://mystore01.blob.core.windows.net/state"
        );
        assert_eq!(
            account.queue("jobs").location(),
            "https://mystore01.queue.core.windows.net/jobs"
        );
    }

    #[test]
    fn shared_key_mode_keeps_azurite_account_path() {
        let connection = StorageConnection::SharedKey {
            account: "devstoreaccount1".to_owned(),
            key: AccountKey::from_base64("AAAA").unwrap(),
            // Built directly (not parsed), with trailing slashes the parser would have removed.
            blob_endpoint: url::Url::parse("http://127.0.0.1:10000/devstoreaccount1/").unwrap(),
            queue_endpoint: url::Url::parse("http://127.0.0.1:10001/devstoreaccount1/").unwrap(),
        };
        let account = AzureAccount::connect(&connection, None, default_retry()).unwrap();
        assert_eq!(
            account.container("state").location(),
            "http://127.0.0.1:10000/devstoreaccount1/state"
        );
        assert_eq!(
            account.queue("jobs").location(),
            "http://127.0.0.1:10001/devstoreaccount1/jobs"
        );
    }
}
