//! Approvals a person gives on a page: the durable record of each request (who asked, the exact
//! plan, who decided and when), shared by every instance through blob storage with ETags, and
//! the per-tenant hourly budget of destructive targets.
//!
//! The MCP layer creates a record when a destructive call needs approval and redeems it when the
//! call comes back with its `approval_id`; the page ([`page`]) shows it and records the
//! decision. A record moves `pending -> approved | denied`, and `approved -> used` exactly once.

pub mod page;
pub mod plan;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::storage::{ETag, JsonBlobStore, Storage, StorageError};

pub use plan::{Change, Plan, PlanTarget, PlanTenant};

/// The blob container of approval records, used-token markers and target budgets.
pub const CONTAINER: &str = "approvals";

/// Someone as an approval record names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Person {
    /// Entra object id (or `local` without sign-in).
    pub subject: String,
    pub name: Option<String>,
}

impl Person {
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.subject)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    /// Approved, and the call it approved has been let through (once).
    Used,
}

/// One request for approval, as stored and as the page shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub id: String,
    pub tool: String,
    pub title: String,
    /// The least tier the tool needs (`reader`, `responder`, `admin`).
    pub tier: String,
    pub requester: Person,
    /// SHA-256 of the exact arguments (without approval arguments).
    pub arguments_digest: String,
    /// The arguments as shown, secrets redacted.
    pub arguments: serde_json::Value,
    pub plan: Plan,
    pub plan_digest: String,
    /// Whether the requester is barred from approving (four eyes).
    pub second_person: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Until when the page accepts a decision; after a decision, the call has as long again.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    pub state: ApprovalState,
    pub decided_by: Option<Person>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
}

impl ApprovalRecord {
    /// Whether a decision can still be made.
    pub fn open_for_decision(&self, now: OffsetDateTime) -> bool {
        self.state == ApprovalState::Pending && now < self.expires
    }

    /// Until when an approved record lets its call through.
    pub fn usable_until(&self) -> Option<OffsetDateTime> {
        let ttl = self.expires - self.created;
        self.decided_at.map(|decided| decided + ttl)
    }
}

/// Approval records and budgets in blob storage.
pub struct ApprovalStore {
    blobs: JsonBlobStore,
}

/// Refused: the targets would pass the tenant's hourly budget.
#[derive(Debug)]
pub struct BudgetExceeded {
    pub used: u32,
    pub limit: u32,
}

#[derive(Serialize, Deserialize, Default)]
struct BudgetCount {
    targets: u32,
}

impl ApprovalStore {
    pub fn new(storage: &Storage) -> Self {
        Self {
            blobs: JsonBlobStore::new(storage, CONTAINER),
        }
    }

    /// The blob store itself, for markers kept beside the records.
    pub async fn blobs(&self) -> Result<&JsonBlobStore, StorageError> {
        self.blobs.ensure_container_once().await?;
        Ok(&self.blobs)
    }

    fn name(id: &str) -> String {
        format!("requests/{id}.json")
    }

    pub async fn create(&self, record: &ApprovalRecord) -> Result<(), StorageError> {
        self.blobs()
            .await?
            .create(&Self::name(&record.id), record)
            .await
            .map(|_| ())
    }

    /// `id` is checked to be a UUID first, so no caller-chosen text becomes a blob name.
    pub async fn get(&self, id: &str) -> Result<Option<(ApprovalRecord, ETag)>, StorageError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Ok(None);
        }
        self.blobs().await?.get(&Self::name(id)).await
    }

    /// Replaces the record only if it is unchanged since it was read.
    pub async fn replace(&self, record: &ApprovalRecord, etag: &ETag) -> Result<(), StorageError> {
        self.blobs()
            .await?
            .replace(&Self::name(&record.id), record, etag)
            .await
            .map(|_| ())
    }

    fn budget_name(tenant: &str, now: OffsetDateTime) -> String {
        format!(
            "budgets/{tenant}/{:04}-{:02}-{:02}T{:02}.json",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour()
        )
    }

    /// How many destructive targets the tenant has used this clock hour.
    pub async fn budget_used(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> Result<u32, StorageError> {
        let current: Option<(BudgetCount, ETag)> = self
            .blobs()
            .await?
            .get(&Self::budget_name(tenant, now))
            .await?;
        Ok(current.map_or(0, |(count, _)| count.targets))
    }

    /// Adds `targets` to the tenant's count for this clock hour unless that passes `limit`;
    /// concurrent instances are serialised by the blob's ETag.
    pub async fn charge(
        &self,
        tenant: &str,
        targets: u32,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Result<u32, BudgetExceeded>, StorageError> {
        let blobs = self.blobs().await?;
        let name = Self::budget_name(tenant, now);
        for _ in 0..8 {
            let current: Option<(BudgetCount, ETag)> = blobs.get(&name).await?;
            let used = current.as_ref().map_or(0, |(count, _)| count.targets);
            let total = used.saturating_add(targets);
            if total > limit {
                return Ok(Err(BudgetExceeded { used, limit }));
            }
            let next = BudgetCount { targets: total };
            let written = match &current {
                Some((_, etag)) => blobs.replace(&name, &next, etag).await.map(|_| ()),
                None => blobs.create(&name, &next).await.map(|_| ()),
            };
            match written {
                Ok(()) => return Ok(Ok(total)),
                Err(StorageError::Conflict { .. } | StorageError::AlreadyExists { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StorageError::UnexpectedResponse {
            operation: "update",
            resource: name,
            reason: "the budget kept changing under concurrent writers; try again".into(),
        })
    }
}
