//! The in-memory backend: one process's blobs and queues in maps, for tests that need no
//! storage emulator. It answers as Azure Storage does where the product depends on it: a
//! missing container or queue is a 404 with the service's error code (never created behind the
//! caller's back), conditional writes refuse with the same outcomes, listings are in name order
//! and paged with a marker, and a received message stays hidden for its visibility timeout,
//! counts its deliveries and can be deleted only with its latest pop receipt.
//! `tests/integration/storage_azurite.rs` runs the same checks against Azurite and this backend.

use std::{
    collections::{BTreeMap, HashMap},
    num::NonZeroU32,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    BlobBackend, BlobEntry, BlobPage, ETag, QueueBackend, SendOptions, SentMessage, StorageError,
    StoredMessage, WriteCondition,
};

/// The service's page size when a listing names none.
const DEFAULT_PAGE_SIZE: u32 = 5000;
/// A message lives this long unless its sender says otherwise (the service default).
const DEFAULT_TIME_TO_LIVE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest visibility timeout the service accepts.
const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The whole account: shared by every [`super::Storage`] cloned from the one that made it, so
/// two app instances built on it see the same state, as two instances on one account do.
#[derive(Default)]
pub(super) struct MemoryAccount {
    containers: Mutex<HashMap<String, BTreeMap<String, Blob>>>,
    queues: Mutex<HashMap<String, Vec<Message>>>,
    /// ETags and message ids come from one counter, so no two writes ever share one.
    counter: AtomicU64,
}

struct Blob {
    body: Vec<u8>,
    etag: ETag,
    last_modified: OffsetDateTime,
}

struct Message {
    id: String,
    pop_receipt: String,
    text: String,
    dequeue_count: u64,
    inserted_on: OffsetDateTime,
    expires_on: OffsetDateTime,
    visible_on: OffsetDateTime,
}

impl MemoryAccount {
    pub(super) fn container(self: &Arc<Self>, name: &str) -> MemoryContainer {
        MemoryContainer {
            account: self.clone(),
            name: name.to_owned(),
        }
    }

    pub(super) fn queue(self: &Arc<Self>, name: &str) -> MemoryQueue {
        MemoryQueue {
            account: self.clone(),
            name: name.to_owned(),
        }
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn etag(&self) -> ETag {
        ETag::from(format!("\"0x{:016X}\"", self.next()))
    }

    fn token(&self, kind: &str) -> String {
        format!("{kind}-{:016x}", self.next())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; later calls can still use it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The service's answer for a request it refuses: the status, its error code and its message.
fn refused(
    operation: &'static str,
    resource: String,
    status: u16,
    code: &str,
    message: &str,
) -> StorageError {
    StorageError::Service {
        operation,
        resource,
        status,
        code: Some(code.to_owned()),
        message: message.to_owned(),
        request_id: None,
    }
}

pub(super) struct MemoryContainer {
    account: Arc<MemoryAccount>,
    name: String,
}

impl MemoryContainer {
    fn resource(&self, name: &str) -> String {
        format!("blob {}/{}", self.name, name)
    }

    /// Runs `f` on the container's blobs, or answers 404 `ContainerNotFound` as the service does.
    fn with_blobs<T>(
        &self,
        operation: &'static str,
        resource: String,
        f: impl FnOnce(&mut BTreeMap<String, Blob>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut containers = lock(&self.account.containers);
        match containers.get_mut(&self.name) {
            Some(blobs) => f(blobs),
            None => Err(refused(
                operation,
                resource,
                404,
                "ContainerNotFound",
                "The specified container does not exist.",
            )),
        }
    }
}

#[async_trait]
impl BlobBackend for MemoryContainer {
    fn location(&self) -> String {
        format!("memory:///{}", self.name)
    }

    async fn create_container(&self) -> Result<bool, StorageError> {
        let mut containers = lock(&self.account.containers);
        if containers.contains_key(&self.name) {
            return Ok(false);
        }
        containers.insert(self.name.clone(), BTreeMap::new());
        Ok(true)
    }

    async fn delete_container(&self) -> Result<bool, StorageError> {
        Ok(lock(&self.account.containers).remove(&self.name).is_some())
    }

    async fn download(&self, name: &str) -> Result<Option<(Vec<u8>, ETag)>, StorageError> {
        self.with_blobs("read", self.resource(name), |blobs| {
            Ok(blobs
                .get(name)
                .map(|blob| (blob.body.clone(), blob.etag.clone())))
        })
    }

    async fn upload(
        &self,
        operation: &'static str,
        name: &str,
        body: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<ETag, StorageError> {
        let etag = self.account.etag();
        self.with_blobs(operation, self.resource(name), |blobs| {
            let current = blobs.get(name).map(|blob| &blob.etag);
            match (&condition, current) {
                (WriteCondition::IfAbsent, Some(_)) => {
                    return Err(StorageError::AlreadyExists {
                        container: self.name.clone(),
                        name: name.to_owned(),
                    });
                }
                // A blob deleted since it was read fails the same way as a changed one (412).
                (WriteCondition::IfMatch(expected), current) if current != Some(expected) => {
                    return Err(StorageError::Conflict {
                        container: self.name.clone(),
                        name: name.to_owned(),
                    });
                }
                _ => {}
            }
            blobs.insert(
                name.to_owned(),
                Blob {
                    body,
                    etag: etag.clone(),
                    last_modified: OffsetDateTime::now_utc(),
                },
            );
            Ok(etag)
        })
    }

    async fn delete(&self, name: &str) -> Result<bool, StorageError> {
        self.with_blobs("delete", self.resource(name), |blobs| {
            Ok(blobs.remove(name).is_some())
        })
    }

    async fn list_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max_results: Option<NonZeroU32>,
    ) -> Result<BlobPage, StorageError> {
        let resource = format!("container {} (prefix {prefix:?})", self.name);
        let page_size = max_results.map_or(DEFAULT_PAGE_SIZE, NonZeroU32::get) as usize;
        self.with_blobs("list blobs in", resource, |blobs| {
            // The marker is the name the next page starts at.
            let start = marker.unwrap_or(prefix);
            let mut matching = blobs
                .range(start.to_owned()..)
                .take_while(|(name, _)| name.starts_with(prefix));
            let entries: Vec<BlobEntry> = matching
                .by_ref()
                .take(page_size)
                .map(|(name, blob)| BlobEntry {
                    name: name.clone(),
                    etag: Some(blob.etag.clone()),
                    last_modified: Some(blob.last_modified),
                    size: Some(blob.body.len() as u64),
                })
                .collect();
            let next_marker = matching.next().map(|(name, _)| name.clone());
            Ok(BlobPage {
                entries,
                next_marker,
            })
        })
    }
}

pub(super) struct MemoryQueue {
    account: Arc<MemoryAccount>,
    name: String,
}

impl MemoryQueue {
    fn resource(&self) -> String {
        format!("queue {}", self.name)
    }

    /// Runs `f` on the queue's messages, or answers 404 `QueueNotFound` as the service does.
    fn with_messages<T>(
        &self,
        operation: &'static str,
        resource: String,
        f: impl FnOnce(&mut Vec<Message>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut queues = lock(&self.account.queues);
        match queues.get_mut(&self.name) {
            Some(messages) => f(messages),
            None => Err(refused(
                operation,
                resource,
                404,
                "QueueNotFound",
                "The specified queue does not exist.",
            )),
        }
    }
}

fn after(now: OffsetDateTime, duration: Duration) -> OffsetDateTime {
    now + time::Duration::try_from(duration).unwrap_or(time::Duration::MAX)
}

#[async_trait]
impl QueueBackend for MemoryQueue {
    fn location(&self) -> String {
        format!("memory:///queues/{}", self.name)
    }

    async fn create(&self) -> Result<bool, StorageError> {
        let mut queues = lock(&self.account.queues);
        if queues.contains_key(&self.name) {
            return Ok(false);
        }
        queues.insert(self.name.clone(), Vec::new());
        Ok(true)
    }

    async fn delete_queue(&self) -> Result<bool, StorageError> {
        Ok(lock(&self.account.queues).remove(&self.name).is_some())
    }

    async fn send(&self, text: String, options: SendOptions) -> Result<SentMessage, StorageError> {
        let delay = options.initial_visibility_delay.unwrap_or_default();
        let time_to_live = options.time_to_live.unwrap_or(DEFAULT_TIME_TO_LIVE);
        if delay > MAX_VISIBILITY || delay >= time_to_live {
            return Err(refused(
                "send to",
                self.resource(),
                400,
                "OutOfRangeQueryParameterValue",
                "The visibility timeout must be at most 7 days and less than the time to live.",
            ));
        }
        let (id, pop_receipt) = (self.account.token("message"), self.account.token("pop"));
        let now = OffsetDateTime::now_utc();
        let message = Message {
            id: id.clone(),
            pop_receipt: pop_receipt.clone(),
            text,
            dequeue_count: 0,
            inserted_on: now,
            expires_on: after(now, time_to_live),
            visible_on: after(now, delay),
        };
        let sent = SentMessage {
            id,
            pop_receipt: Some(pop_receipt),
            inserted_on: Some(message.inserted_on),
            expires_on: Some(message.expires_on),
        };
        self.with_messages("send to", self.resource(), |messages| {
            messages.push(message);
            Ok(sent)
        })
    }

    async fn receive(
        &self,
        max_messages: u8,
        visibility_timeout: Duration,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        if visibility_timeout < Duration::from_secs(1) || visibility_timeout > MAX_VISIBILITY {
            return Err(refused(
                "receive from",
                self.resource(),
                400,
                "OutOfRangeQueryParameterValue",
                "The visibility timeout must be between 1 second and 7 days.",
            ));
        }
        let now = OffsetDateTime::now_utc();
        self.with_messages("receive from", self.resource(), |messages| {
            messages.retain(|message| message.expires_on > now);
            let visible = messages
                .iter_mut()
                .filter(|message| message.visible_on <= now)
                .take(usize::from(max_messages));
            Ok(visible
                .map(|message| {
                    message.dequeue_count += 1;
                    message.visible_on = after(now, visibility_timeout);
                    message.pop_receipt = self.account.token("pop");
                    StoredMessage {
                        id: message.id.clone(),
                        pop_receipt: message.pop_receipt.clone(),
                        dequeue_count: message.dequeue_count,
                        inserted_on: Some(message.inserted_on),
                        next_visible_on: Some(message.visible_on),
                        raw_text: message.text.clone(),
                    }
                })
                .collect())
        })
    }

    async fn delete(&self, message_id: &str, pop_receipt: &str) -> Result<(), StorageError> {
        let resource = format!("{} (message {message_id})", self.resource());
        let now = OffsetDateTime::now_utc();
        self.with_messages("delete message from", resource.clone(), |messages| {
            let Some(index) = messages
                .iter()
                .position(|m| m.id == message_id && m.expires_on > now)
            else {
                return Err(refused(
                    "delete message from",
                    resource,
                    404,
                    "MessageNotFound",
                    "The specified message does not exist.",
                ));
            };
            if messages[index].pop_receipt != pop_receipt {
                return Err(refused(
                    "delete message from",
                    resource,
                    400,
                    "PopReceiptMismatch",
                    "The specified pop receipt did not match the pop receipt for a dequeued message.",
                ));
            }
            messages.remove(index);
            Ok(())
        })
    }
}
