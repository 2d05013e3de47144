//! Storage layer against a real storage endpoint (Azurite in CI and locally), and the same
//! behaviour checks against the in-memory account (`Storage::in_memory`), so the account that
//! unit tests use answers as Azure Storage does.
//!
//! Needs `TEST_STORAGE_CONNECTION_STRING` (e.g. `UseDevelopmentStorage=true` with Azurite running).
//! The tests fail rather than skip when it is missing, so a CI run without Azurite cannot pass
//! silently. Every test uses its own container/queue names, so they can run in parallel.

use std::{num::NonZeroU32, time::Duration};

use handler::storage::{
    AccountKey, JsonBlobStore, MessageEncoding, MessageQueue, SendOptions, Storage,
    StorageConnection, StorageError,
};
use serde::{Deserialize, Serialize};

const ENV: &str = "TEST_STORAGE_CONNECTION_STRING";

fn connection() -> StorageConnection {
    let value = std::env::var(ENV).unwrap_or_else(|_| {
        panic!(
            "{ENV} is not set. These tests need a storage endpoint: start Azurite \
             (azurite --silent --location /tmp/azurite --skipApiVersionCheck) and set \
             {ENV}=UseDevelopmentStorage=true"
        )
    });
    StorageConnection::from_connection_string(&value)
        .unwrap_or_else(|e| panic!("{ENV} is not a usable connection string: {e}"))
}

/// Storage using the process-wide client, as production does.
fn storage() -> Storage {
    Storage::new(connection(), Some(reqwest::Client::new())).expect("storage client")
}

/// Container/queue names are 3-63 lowercase letters, digits and hyphens.
fn unique(tag: &str) -> String {
    format!("it-{tag}-{}", uuid::Uuid::new_v4().simple())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u32,
    state: String,
}

async fn drop_container(storage: &Storage, name: &str) {
    // Best effort: Azurite data is throwaway, but keep the account listing small.
    let _ = JsonBlobStore::new(storage, name).delete_container().await;
}

/// The accounts the behaviour checks run against: Azurite, and the in-memory account.
fn accounts() -> [Storage; 2] {
    [storage(), Storage::in_memory()]
}

#[tokio::test]
async fn ping_reaches_both_services() {
    let storage = storage();
    storage.ping().await.expect("ping");
}

#[tokio::test]
async fn create_then_conditional_replace_and_stale_etag_conflict() {
    for storage in accounts() {
        create_then_conditional_replace_and_stale_etag_conflict_on(&storage).await;
    }
}

async fn create_then_conditional_replace_and_stale_etag_conflict_on(storage: &Storage) {
    let container = unique("cas");
    let store = JsonBlobStore::new(storage, &container);
    assert!(store.ensure_container().await.expect("create container"));
    assert!(
        !store.ensure_container().await.expect("container exists"),
        "second call must report existing"
    );

    let name = "jobs/42.json";
    assert!(store.get::<Job>(name).await.expect("get missing").is_none());

    let v1 = Job {
        id: 42,
        state: "queued".into(),
    };
    let etag1 = store.create(name, &v1).await.expect("create");

    let err = store
        .create(name, &v1)
        .await
        .expect_err("second create must fail");
    assert!(
        matches!(&err, StorageError::AlreadyExists { name: n, .. } if n == name),
        "{err:?}"
    );

    let (read, read_etag) = store.get::<Job>(name).await.expect("get").expect("exists");
    assert_eq!(read, v1);
    assert_eq!(read_etag, etag1);

    let v2 = Job {
        id: 42,
        state: "running".into(),
    };
    let etag2 = store
        .replace(name, &v2, &etag1)
        .await
        .expect("replace with current etag");
    assert_ne!(etag2, etag1);

    // A writer still holding the first ETag must lose.
    let stale = Job {
        id: 42,
        state: "lost-update".into(),
    };
    let err = store
        .replace(name, &stale, &etag1)
        .await
        .expect_err("stale etag must conflict");
    assert!(
        matches!(&err, StorageError::Conflict { name: n, .. } if n == name),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("changed since it was read"),
        "{err}"
    );

    let (read, read_etag) = store.get::<Job>(name).await.expect("get").expect("exists");
    assert_eq!(read, v2, "the conflicting write must not have landed");
    assert_eq!(read_etag, etag2);

    // Wrong shape is a typed JSON error naming the blob, not a panic.
    let err = store.get::<Vec<u8>>(name).await.expect_err("type mismatch");
    assert!(
        matches!(
            err,
            StorageError::Json {
                action: "parse",
                ..
            }
        ),
        "{err:?}"
    );

    assert!(store.delete(name).await.expect("delete"));
    assert!(
        !store.delete(name).await.expect("delete again"),
        "second delete reports missing"
    );
    let err = store
        .replace(name, &v2, &etag2)
        .await
        .expect_err("replace of deleted blob");
    assert!(
        matches!(
            err,
            StorageError::NotFound { .. } | StorageError::Conflict { .. }
        ),
        "{err:?}"
    );

    // Unconditional write still works on a fresh name.
    store.upsert("misc.json", &v2).await.expect("upsert");
    store
        .upsert("misc.json", &v1)
        .await
        .expect("upsert over existing");
    assert_eq!(store.get::<Job>("misc.json").await.unwrap().unwrap().0, v1);

    drop_container(storage, &container).await;
}

#[tokio::test]
async fn a_missing_container_or_queue_is_a_404_naming_it_not_created_on_the_fly() {
    for storage in accounts() {
        let container = unique("absent");
        let store = JsonBlobStore::new(&storage, &container);
        let err = store.get::<Job>("a.json").await.expect_err("no container");
        assert_eq!(err.status(), Some(404), "{storage:?}: {err:?}");
        assert_eq!(err.code(), Some("ContainerNotFound"), "{storage:?}: {err}");
        let err = store
            .create(
                "a.json",
                &Job {
                    id: 1,
                    state: "queued".into(),
                },
            )
            .await
            .expect_err("no container");
        assert_eq!(err.code(), Some("ContainerNotFound"), "{storage:?}: {err}");
        assert!(err.to_string().contains(&container), "{err}");
        assert!(!store.delete_container().await.expect("delete absent"));

        let queue = MessageQueue::new(&storage, &unique("absent"), MessageEncoding::Base64);
        let err = queue.send("x").await.expect_err("no queue");
        assert_eq!(err.code(), Some("QueueNotFound"), "{storage:?}: {err}");
        assert!(!queue.delete_queue().await.expect("delete absent"));
    }
}

#[tokio::test]
async fn list_by_prefix_follows_pages() {
    for storage in accounts() {
        list_by_prefix_follows_pages_on(&storage).await;
    }
}

async fn list_by_prefix_follows_pages_on(storage: &Storage) {
    let container = unique("list");
    let store = JsonBlobStore::new(storage, &container)
        .with_list_page_size(NonZeroU32::new(2).expect("non-zero"));
    store.ensure_container().await.expect("create container");

    let mut expected = Vec::new();
    for i in 0..5 {
        let name = format!("jobs/{i:02}.json");
        store
            .create(
                &name,
                &Job {
                    id: i,
                    state: "queued".into(),
                },
            )
            .await
            .expect("create");
        expected.push(name);
    }
    for name in ["other/a.json", "jobsx.json"] {
        store
            .create(
                name,
                &Job {
                    id: 99,
                    state: "noise".into(),
                },
            )
            .await
            .expect("create");
    }

    // `list` must walk all three 2-item pages and keep '/' in names.
    let listed = store.list("jobs/").await.expect("list");
    let names: Vec<_> = listed.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, expected);
    assert!(
        listed
            .iter()
            .all(|e| e.etag.is_some() && e.size.is_some_and(|s| s > 0)),
        "{listed:?}"
    );
    // A listed ETag is the same value `get` returns, so it can guard a replace directly.
    let (_, etag) = store
        .get::<Job>(&expected[0])
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(listed[0].etag.as_ref(), Some(&etag));
    store
        .replace(
            &expected[0],
            &Job {
                id: 0,
                state: "done".into(),
            },
            &etag,
        )
        .await
        .expect("replace with listed etag");

    // Manual paging hands out markers until the listing is exhausted.
    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_page(
                "jobs/",
                marker.as_deref(),
                NonZeroU32::new(2).expect("non-zero"),
            )
            .await
            .expect("list page");
        pages += 1;
        assert!(page.entries.len() <= 2);
        paged.extend(page.entries.into_iter().map(|e| e.name));
        match page.next_marker {
            Some(next) => marker = Some(next),
            None => break,
        }
        assert!(pages < 10, "paging does not terminate");
    }
    assert_eq!(paged, expected);
    assert_eq!(pages, 3);

    assert_eq!(store.list("").await.expect("list all").len(), 7);
    assert!(
        store
            .list("nothing-here/")
            .await
            .expect("list none")
            .is_empty()
    );

    drop_container(storage, &container).await;
}

#[tokio::test]
async fn queue_send_receive_delete() {
    for storage in accounts() {
        queue_send_receive_delete_on(&storage).await;
    }
}

async fn queue_send_receive_delete_on(storage: &Storage) {
    let name = unique("q");
    let queue = MessageQueue::new(storage, &name, MessageEncoding::Base64);
    assert!(queue.ensure_exists().await.expect("create queue"));
    assert!(!queue.ensure_exists().await.expect("queue exists"));

    assert!(
        queue
            .receive(1, Duration::from_secs(30))
            .await
            .expect("receive empty")
            .is_empty()
    );

    let text = r#"{"job":"7","note":"<ü & \"quotes\">"}"#;
    let sent = queue.send(text).await.expect("send");
    assert!(!sent.id.is_empty());

    let got = queue
        .receive(32, Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    let message = &got[0];
    assert_eq!(message.id, sent.id);
    assert_eq!(message.dequeue_count, 1);
    // On the wire it is base64, which is what a Functions queue trigger decodes by default.
    assert_eq!(
        message.raw_text,
        "eyJqb2IiOiI3Iiwibm90ZSI6IjzDvCAmIFwicXVvdGVzXCI+In0="
    );
    assert_eq!(message.text().expect("decode"), text);
    let parsed: serde_json::Value = message.json().expect("json");
    assert_eq!(parsed["job"], "7");

    // Invisible to others while leased.
    assert!(
        queue
            .receive(1, Duration::from_secs(30))
            .await
            .expect("receive while leased")
            .is_empty()
    );

    queue.delete(message).await.expect("delete");
    let err = queue
        .delete(message)
        .await
        .expect_err("second delete must fail");
    assert_eq!(err.status(), Some(404), "{err:?}");

    // Plain encoding round-trips XML-special characters unchanged.
    let plain = MessageQueue::new(storage, &name, MessageEncoding::PlainText);
    plain
        .send("<a href='x'>&amp;</a>")
        .await
        .expect("send plain");
    let got = plain
        .receive(1, Duration::from_secs(30))
        .await
        .expect("receive plain");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw_text, "<a href='x'>&amp;</a>");
    plain.delete(&got[0]).await.expect("delete plain");

    queue.delete_queue().await.expect("delete queue");
}

#[tokio::test]
async fn visibility_timeout_returns_unacknowledged_messages() {
    for storage in accounts() {
        visibility_timeout_returns_unacknowledged_messages_on(&storage).await;
    }
}

async fn visibility_timeout_returns_unacknowledged_messages_on(storage: &Storage) {
    let name = unique("vis");
    let queue = MessageQueue::new(storage, &name, MessageEncoding::Base64);
    queue.ensure_exists().await.expect("create queue");

    // A deferred message is not visible right away.
    queue
        .send_with(
            "later",
            SendOptions {
                initial_visibility_delay: Some(Duration::from_secs(60)),
                ..Default::default()
            },
        )
        .await
        .expect("send deferred");
    queue.send("now").await.expect("send");

    let first = queue
        .receive(32, Duration::from_secs(1))
        .await
        .expect("receive");
    assert_eq!(first.len(), 1, "only the non-deferred message is visible");
    assert_eq!(first[0].text().unwrap(), "now");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = queue
        .receive(32, Duration::from_secs(30))
        .await
        .expect("receive again");
    assert_eq!(again.len(), 1, "unacknowledged message must come back");
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].dequeue_count, 2);

    // The first receiver's pop receipt is no longer valid.
    let err = queue
        .delete(&first[0])
        .await
        .expect_err("stale pop receipt");
    assert_eq!(err.code(), Some("PopReceiptMismatch"), "{err:?}");
    queue
        .delete(&again[0])
        .await
        .expect("delete with current receipt");

    let err = queue
        .receive(33, Duration::from_secs(1))
        .await
        .expect_err("batch too big");
    assert!(
        matches!(err, StorageError::InvalidArgument { .. }),
        "{err:?}"
    );

    queue.delete_queue().await.expect("delete queue");
}

#[tokio::test]
async fn wrong_account_key_is_a_readable_403() {
    let StorageConnection::SharedKey {
        account,
        blob_endpoint,
        queue_endpoint,
        ..
    } = connection()
    else {
        panic!("{ENV} must be an account-key / development connection string for this test");
    };
    // Valid base64, wrong key: the request is well-formed but the signature cannot match.
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let storage = Storage::new(
        StorageConnection::SharedKey {
            account,
            key: AccountKey::from_base64(wrong_key).expect("base64"),
            blob_endpoint,
            queue_endpoint,
        },
        None,
    )
    .expect("storage client");

    let err = storage
        .ping()
        .await
        .expect_err("wrong key must be rejected");
    assert_eq!(err.status(), Some(403), "{err:?}");
    assert!(err.is_auth_failure());
    let text = err.to_string();
    assert!(text.contains("HTTP 403"), "{text}");
    // Azure says AuthenticationFailed, Azurite AuthorizationFailure; both mean "bad signature".
    assert!(
        matches!(
            err.code(),
            Some("AuthenticationFailed" | "AuthorizationFailure")
        ),
        "{err:?}"
    );
    assert!(text.contains(err.code().unwrap_or("?")), "{text}");
    assert!(text.contains("check the account key"), "{text}");
    assert!(!text.contains(wrong_key), "{text}");
    assert!(!format!("{err:?}").contains(wrong_key));

    let store = JsonBlobStore::new(&storage, &unique("denied"));
    let err = store
        .ensure_container()
        .await
        .expect_err("wrong key must be rejected");
    assert!(
        matches!(
            &err,
            StorageError::Service {
                status: 403,
                operation: "create",
                ..
            }
        ),
        "{err:?}"
    );

    let queue = MessageQueue::new(&storage, &unique("denied"), MessageEncoding::Base64);
    let err = queue
        .send("x")
        .await
        .expect_err("wrong key must be rejected");
    assert_eq!(err.status(), Some(403), "{err:?}");
}

#[tokio::test]
async fn unreachable_endpoint_is_a_transport_error() {
    // Nothing listens on port 9 (discard) locally; the error must say what was attempted.
    let conn = StorageConnection::from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
         AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\
         BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1",
    )
    .expect("connection string");
    let storage = Storage::new(conn, None).expect("storage client");
    let store = JsonBlobStore::new(&storage, "state");
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(60), store.get::<Job>("x.json"))
        .await
        .expect("retries must give up")
        .expect_err("nothing listens there");
    assert!(matches!(err, StorageError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("read blob state/x.json failed"),
        "{err}"
    );
    // Bounded retries: an outage must surface within seconds, not the SDK's default ~80 s.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
