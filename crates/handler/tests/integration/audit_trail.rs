//! When audit records reach storage (Azurite): a call that can change something before its
//! answer; a read-only call just after it, yet no read record is ever missing from a search,
//! a flush (what shutdown does), or a burst larger than the records allowed in flight.

use crate::common;

use handler::audit::{AuditFilter, AuditLog, AuditRecord, Outcome, Storing, WRITES_BEHIND};
use handler::mcp::Tier;
use handler::storage::{Storage, StorageConnection};
use time::{Duration, OffsetDateTime};

fn storage() -> Storage {
    let connection =
        StorageConnection::from_connection_string(&common::storage_connection_string())
            .expect("connection string");
    Storage::new(connection, Some(reqwest::Client::new())).expect("storage client")
}

fn record(caller: &str, tool: &str, tier: Tier) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::new_v4().to_string(),
        time: OffsetDateTime::now_utc(),
        caller: caller.to_string(),
        caller_name: None,
        caller_tenant: None,
        roles: vec![],
        tool: tool.to_string(),
        tier: Some(tier),
        tenant: Some(common::CONTOSO.to_string()),
        arguments: serde_json::json!({}),
        outcome: Outcome::Ok,
        error: None,
        duration_ms: 1,
        action_ids: vec![],
        approval: None,
        approval_id: None,
        approver: None,
    }
}

async fn found_for(log: &AuditLog, caller: &str, since: OffsetDateTime) -> Vec<AuditRecord> {
    let filter = AuditFilter {
        caller: Some(caller.to_string()),
        ..AuditFilter::default()
    };
    let page = log
        .search(
            since,
            OffsetDateTime::now_utc() + Duration::minutes(1),
            &filter,
            None,
            10_000,
            100_000,
        )
        .await
        .expect("search");
    page.records
}

#[tokio::test]
async fn a_burst_of_read_records_beyond_the_in_flight_bound_is_all_searchable() {
    let storage = storage();
    let log = AuditLog::new(&storage);
    let caller = format!("burst-{}", uuid::Uuid::new_v4());
    let since = OffsetDateTime::now_utc() - Duration::seconds(1);
    // More at once than may be in flight: the rest wait for a write to land before theirs starts.
    let count = WRITES_BEHIND as usize * 4;
    futures::future::join_all((0..count).map(|_| {
        log.append(
            record(&caller, "mde_list_machines", Tier::Reader),
            Storing::AfterAnswer,
        )
    }))
    .await;

    let found = found_for(&log, &caller, since).await;
    assert_eq!(
        found.len(),
        count,
        "every read record is found by a search right after the calls"
    );
}

#[tokio::test]
async fn a_flush_waits_for_read_records_and_a_change_is_stored_before_append_returns() {
    let storage = storage();
    let writer = AuditLog::new(&storage);
    // Another instance's view: it has no writes of its own to wait for.
    let other_instance = AuditLog::new(&storage);
    let caller = format!("flush-{}", uuid::Uuid::new_v4());
    let since = OffsetDateTime::now_utc() - Duration::seconds(1);

    writer
        .append(
            record(&caller, "mde_isolate_machines", Tier::Responder),
            Storing::BeforeAnswer,
        )
        .await;
    let found = found_for(&other_instance, &caller, since).await;
    assert_eq!(
        found.iter().map(|r| r.tool.as_str()).collect::<Vec<_>>(),
        ["mde_isolate_machines"],
        "stored before the answer"
    );

    for _ in 0..20 {
        writer
            .append(
                record(&caller, "mde_list_machines", Tier::Reader),
                Storing::AfterAnswer,
            )
            .await;
    }
    writer.flush().await;
    let found = found_for(&other_instance, &caller, since).await;
    assert_eq!(
        found.len(),
        21,
        "after a flush every read record is in storage"
    );
}
