//! Blob and queue storage for durable state and work hand-off.
//!
//! [`Storage`] is one account: Azure Storage (or Azurite) through the official
//! `azure_storage_blob` / `azure_storage_queue` 1.x clients (`azure`), or an account in memory
//! for tests that need no emulator (`memory`). On top, for the product:
//! - connection settings in the Azure Functions convention ([`StorageConnection`]), covering
//!   Azurite / account keys (signed by the `shared_key` policy) and managed identity;
//! - one pooled HTTP client for the whole process (optional `reqwest::Client` transport);
//! - errors that say which operation on which resource failed and why ([`StorageError`]);
//! - typed helpers: [`JsonBlobStore`] (ETag-guarded JSON documents) and [`MessageQueue`]
//!   (messages encoded the way the Functions queue trigger expects).
//!
//! Everything that the SDK clients can do is done with them; only request signing and
//! connection-string parsing are hand-written.

mod azure;
mod connection;
mod deadline_policy;
mod memory;
pub mod quota;
mod shared_key;

use std::{fmt, num::NonZeroU32, sync::Arc, time::Duration};

use async_trait::async_trait;
use azure_core::time::OffsetDateTime;
use base64::Engine as _;
use serde::{Serialize, de::DeserializeOwned};

pub use azure_core::http::Etag as ETag;
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
}

/// One storage account: Azure Storage (or Azurite), or the in-memory account tests use.
/// Clones share the account.
#[derive(Clone)]
pub struct Storage {
    description: Arc<str>,
    account: Account,
}

#[derive(Clone)]
enum Account {
    Azure(Arc<azure::AzureAccount>),
    Memory(Arc<memory::MemoryAccount>),
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("connection", &self.description)
            .finish()
    }
}

impl Storage {
    /// `transport`: an optional shared reqwest::Client to use as the azure_core transport (so
    /// the whole process uses one pooled client).
    pub fn new(
        connection: StorageConnection,
        transport: Option<reqwest::Client>,
    ) -> Result<Self, StorageError> {
        Self::with_retry(connection, transport, azure::default_retry())
    }

    /// Like [`Storage::new`] with an explicit retry policy (e.g. `RetryOptions::none()` in tests,
    /// or longer backoff for background jobs).
    pub fn with_retry(
        connection: StorageConnection,
        transport: Option<reqwest::Client>,
        retry: azure_core::http::RetryOptions,
    ) -> Result<Self, StorageError> {
        let account = azure::AzureAccount::connect(&connection, transport, retry)?;
        Ok(Self {
            description: connection.describe().into(),
            account: Account::Azure(Arc::new(account)),
        })
    }

    /// An empty account held in this process's memory, behaving as Azure Storage does (see
    /// [`memory`]): for tests that need no storage emulator. Nothing in it outlives the process.
    pub fn in_memory() -> Self {
        Self {
            description: "in-memory storage (this process only)".into(),
            account: Account::Memory(Arc::default()),
        }
    }

    /// The connection this was built from, safe for logs.
    pub fn describe(&self) -> &str {
        &self.description
    }

    fn container(&self, name: &str) -> Arc<dyn BlobBackend> {
        match &self.account {
            Account::Azure(account) => Arc::new(account.container(name)),
            Account::Memory(account) => Arc::new(account.container(name)),
        }
    }

    fn queue(&self, name: &str) -> Arc<dyn QueueBackend> {
        match &self.account {
            Account::Azure(account) => Arc::new(account.queue(name)),
            Account::Memory(account) => Arc::new(account.queue(name)),
        }
    }

    /// Cheap reachability + auth check of both services.
    pub async fn ping(&self) -> Result<(), StorageError> {
        match &self.account {
            Account::Azure(account) => account.ping().await,
            Account::Memory(_) => Ok(()),
        }
    }
}

/// How a write is conditioned on what is there.
enum WriteCondition {
    /// Last writer wins.
    Always,
    /// Only if there is no such blob ([`StorageError::AlreadyExists`] otherwise).
    IfAbsent,
    /// Only if the blob still has this ETag ([`StorageError::Conflict`] otherwise, also when it
    /// is gone).
    IfMatch(ETag),
}

/// One container's blobs as an account holds them. Implemented by the Azure SDK backend and
/// the in-memory one; conditional-write outcomes come back as the typed errors
/// ([`StorageError::AlreadyExists`], [`StorageError::Conflict`], [`StorageError::NotFound`]).
#[async_trait]
trait BlobBackend: Send + Sync {
    /// Where the container is, for logs (its URL).
    fn location(&self) -> String;
    /// Whether this call created it.
    async fn create_container(&self) -> Result<bool, StorageError>;
    /// Whether it existed.
    async fn delete_container(&self) -> Result<bool, StorageError>;
    /// The blob's bytes and ETag; `None` when there is no such blob.
    async fn download(&self, name: &str) -> Result<Option<(Vec<u8>, ETag)>, StorageError>;
    async fn upload(
        &self,
        operation: &'static str,
        name: &str,
        body: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<ETag, StorageError>;
    /// Whether it existed.
    async fn delete(&self, name: &str) -> Result<bool, StorageError>;
    /// One page of blobs whose names start with `prefix`, in name order; `max_results` `None`
    /// is the service's default page size.
    async fn list_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max_results: Option<NonZeroU32>,
    ) -> Result<BlobPage, StorageError>;
}

/// One queue as an account holds it; messages are text already encoded for the wire.
#[async_trait]
trait QueueBackend: Send + Sync {
    /// Where the queue is, for logs (its URL).
    fn location(&self) -> String;
    /// Whether this call created it.
    async fn create(&self) -> Result<bool, StorageError>;
    /// Whether it existed.
    async fn delete_queue(&self) -> Result<bool, StorageError>;
    async fn send(&self, text: String, options: SendOptions) -> Result<SentMessage, StorageError>;
    async fn receive(
        &self,
        max_messages: u8,
        visibility_timeout: Duration,
    ) -> Result<Vec<StoredMessage>, StorageError>;
    async fn delete(&self, message_id: &str, pop_receipt: &str) -> Result<(), StorageError>;
}

/// A message as the backend received it, before the queue's decoding.
struct StoredMessage {
    id: String,
    pop_receipt: String,
    dequeue_count: u64,
    inserted_on: Option<OffsetDateTime>,
    next_visible_on: Option<OffsetDateTime>,
    raw_text: String,
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

/// JSON documents in one container, with ETag-based optimistic concurrency.
#[derive(Clone)]
pub struct JsonBlobStore {
    container: Arc<dyn BlobBackend>,
    container_name: String,
    list_page_size: Option<NonZeroU32>,
    /// Set once the container is known to exist; shared by clones (they name the same one).
    created: Arc<tokio::sync::OnceCell<()>>,
}

impl fmt::Debug for JsonBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonBlobStore")
            .field("container", &self.container.location())
            .finish()
    }
}

impl JsonBlobStore {
    pub fn new(storage: &Storage, container: &str) -> Self {
        Self {
            container: storage.container(container),
            container_name: container.to_owned(),
            list_page_size: None,
            created: Arc::default(),
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

    /// Creates the container if needed; returns whether it was created by this call.
    pub async fn ensure_container(&self) -> Result<bool, StorageError> {
        self.container.create_container().await
    }

    /// Creates the container the first time this store (or a clone) needs it, and never asks
    /// again once it succeeded: stores call this before their first read or write, so a storage
    /// outage at start does not stop the handler, and a new account needs no setup step.
    pub async fn ensure_container_once(&self) -> Result<(), StorageError> {
        self.created
            .get_or_try_init(|| async { self.ensure_container().await.map(drop) })
            .await
            .map(drop)
    }

    /// Deletes the container and every blob in it; returns whether it existed.
    pub async fn delete_container(&self) -> Result<bool, StorageError> {
        self.container.delete_container().await
    }

    /// The document and its ETag, or `None` if there is no such blob.
    pub async fn get<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<(T, ETag)>, StorageError> {
        let Some((bytes, etag)) = self.container.download(name).await? else {
            return Ok(None);
        };
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
        self.upload("create", name, value, WriteCondition::IfAbsent)
            .await
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
        self.upload(
            "replace",
            name,
            value,
            WriteCondition::IfMatch(etag.clone()),
        )
        .await
    }

    /// Writes a document unconditionally (last writer wins).
    pub async fn upsert<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<ETag, StorageError> {
        self.upload("write", name, value, WriteCondition::Always)
            .await
    }

    async fn upload<T: Serialize + ?Sized>(
        &self,
        operation: &'static str,
        name: &str,
        value: &T,
        condition: WriteCondition,
    ) -> Result<ETag, StorageError> {
        let body = serde_json::to_vec(value).map_err(|source| StorageError::Json {
            action: "serialize",
            container: self.container_name.clone(),
            name: name.to_owned(),
            source,
        })?;
        self.container
            .upload(operation, name, body, condition)
            .await
    }

    /// Deletes a blob; returns whether it existed.
    pub async fn delete(&self, name: &str) -> Result<bool, StorageError> {
        self.container.delete(name).await
    }

    /// All blobs whose name starts with `prefix`, following continuation markers.
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StorageError> {
        let mut entries = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .container
                .list_page(prefix, marker.as_deref(), self.list_page_size)
                .await?;
            entries.extend(page.entries);
            match page.next_marker {
                Some(next) => marker = Some(next),
                None => return Ok(entries),
            }
        }
    }

    /// One page of blobs whose name starts with `prefix`, for callers that stream large listings.
    pub async fn list_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max_results: NonZeroU32,
    ) -> Result<BlobPage, StorageError> {
        self.container
            .list_page(prefix, marker, Some(max_results))
            .await
    }
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
    queue: Arc<dyn QueueBackend>,
    name: String,
    encoding: MessageEncoding,
}

impl fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageQueue")
            .field("queue", &self.queue.location())
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
            queue: storage.queue(name),
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
        self.queue.create().await
    }

    /// Deletes the queue and its messages; returns whether it existed.
    pub async fn delete_queue(&self) -> Result<bool, StorageError> {
        self.queue.delete_queue().await
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
        self.queue.send(encoded, options).await
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
        let received = self.queue.receive(max_messages, visibility_timeout).await?;
        Ok(received
            .into_iter()
            .map(|m| ReceivedMessage {
                id: m.id,
                pop_receipt: m.pop_receipt,
                dequeue_count: m.dequeue_count,
                inserted_on: m.inserted_on,
                next_visible_on: m.next_visible_on,
                raw_text: m.raw_text,
                queue: self.name.clone(),
                encoding: self.encoding,
            })
            .collect())
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
        self.queue.delete(message_id, pop_receipt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_key_never_shows_in_debug_output() {
        let connection = StorageConnection::SharedKey {
            account: "devstoreaccount1".to_owned(),
            key: AccountKey::from_base64("AAAA").unwrap(),
            blob_endpoint: url::Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap(),
            queue_endpoint: url::Url::parse("http://127.0.0.1:10001/devstoreaccount1").unwrap(),
        };
        let storage = Storage::new(connection, None).unwrap();
        let printed = format!("{storage:?}");
        assert!(!printed.contains("AAAA"), "{printed}");
        assert!(printed.contains("devstoreaccount1"), "{printed}");
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
