//! Where hunts live, in one blob container:
//!
//! | blob | holds |
//! |---|---|
//! | `definitions/<hunt>.json` | the definition (replaced only with its ETag) |
//! | `state/<hunt>.json` | last occurrence accounted for, open runs, recent runs (ETag read-modify-write) |
//! | `runs/<hunt>/<run>.json` | the run record, created only if absent: the lease on its occurrence |
//! | `results/<hunt>/<run>/<tenant>/<chunk>.json` | result rows, [`RESULT_CHUNK_ROWS`] per blob |

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::definition::{HuntDefinition, HuntId};
use super::run::{AlertState, RunId, RunKind, RunRecord, RunStatus};
use crate::clients::graph::HuntingColumn;
use crate::storage::{ETag, JsonBlobStore, Storage, StorageError};
use crate::tenants::TenantId;

/// Rows per results blob: a page of `hunt_get_results` reads one or two blobs.
pub const RESULT_CHUNK_ROWS: usize = 1000;
/// Runs kept in a hunt's state for quick listing (newest first).
const RECENT_RUNS: usize = 20;
/// Concurrent reads or deletes when one call touches many blobs.
const STORAGE_CONCURRENCY: usize = 16;
/// Read-modify-write attempts on a hunt's state before giving up on contention.
const STATE_ATTEMPTS: usize = 8;

/// A run at a glance, kept in the hunt's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    pub run_id: RunId,
    pub kind: RunKind,
    pub status: RunStatus,
    pub rows_total: u64,
    pub alert: Option<AlertState>,
}

impl RunSummary {
    pub fn of(record: &RunRecord) -> Self {
        Self {
            run_id: record.run_id.clone(),
            kind: record.kind,
            status: record.status,
            rows_total: record.rows_total,
            alert: record.alert.as_ref().map(|a| a.state),
        }
    }
}

/// What the scheduler knows about one hunt between ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HuntState {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_occurrence: Option<OffsetDateTime>,
    /// Runs started and not finished: continued by the next tick.
    #[serde(default)]
    pub open_runs: BTreeSet<RunId>,
    /// Newest first.
    #[serde(default)]
    pub recent_runs: Vec<RunSummary>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_retention_sweep: Option<OffsetDateTime>,
}

impl HuntState {
    /// Adds or refreshes a run's summary, keeping the newest [`RECENT_RUNS`].
    pub fn note_run(&mut self, summary: RunSummary) {
        self.recent_runs.retain(|r| r.run_id != summary.run_id);
        self.recent_runs.push(summary);
        self.recent_runs.sort_by(|a, b| b.run_id.cmp(&a.run_id));
        self.recent_runs.truncate(RECENT_RUNS);
    }
}

/// One blob of result rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultChunk {
    pub schema: Vec<HuntingColumn>,
    pub rows: Vec<Map<String, Value>>,
}

#[derive(Clone)]
pub struct HuntStore {
    blobs: JsonBlobStore,
}

fn definition_blob(hunt: &HuntId) -> String {
    format!("definitions/{hunt}.json")
}
fn state_blob(hunt: &HuntId) -> String {
    format!("state/{hunt}.json")
}
fn runs_prefix(hunt: &HuntId) -> String {
    format!("runs/{hunt}/")
}
fn run_blob(hunt: &HuntId, run: &RunId) -> String {
    format!("runs/{hunt}/{run}.json")
}
fn results_prefix(hunt: &HuntId, run: &RunId) -> String {
    format!("results/{hunt}/{run}/")
}
fn chunk_blob(hunt: &HuntId, run: &RunId, tenant: &TenantId, chunk: usize) -> String {
    format!("results/{hunt}/{run}/{tenant}/{chunk:05}.json")
}

impl HuntStore {
    pub fn new(storage: &Storage, container: &str) -> Self {
        Self {
            blobs: JsonBlobStore::new(storage, container),
        }
    }

    /// Creates the container on first use, so a storage outage at start does not stop the handler.
    async fn ready(&self) -> Result<&JsonBlobStore, StorageError> {
        self.blobs.ensure_container_once().await?;
        Ok(&self.blobs)
    }

    pub async fn list_definitions(&self) -> Result<Vec<HuntDefinition>, StorageError> {
        let blobs = self.ready().await?;
        let entries = blobs.list("definitions/").await?;
        let definitions: Vec<Option<(HuntDefinition, ETag)>> = futures::stream::iter(entries)
            .map(|entry| async move { blobs.get(&entry.name).await })
            .buffered(STORAGE_CONCURRENCY)
            .try_collect()
            .await?;
        let mut definitions: Vec<HuntDefinition> = definitions
            .into_iter()
            .flatten()
            .map(|(definition, _)| definition)
            .collect();
        definitions.sort_by_key(|definition| definition.name.to_lowercase());
        Ok(definitions)
    }

    pub async fn get_definition(
        &self,
        hunt: &HuntId,
    ) -> Result<Option<(HuntDefinition, ETag)>, StorageError> {
        self.ready().await?.get(&definition_blob(hunt)).await
    }

    pub async fn create_definition(
        &self,
        definition: &HuntDefinition,
    ) -> Result<ETag, StorageError> {
        self.ready()
            .await?
            .create(&definition_blob(&definition.id), definition)
            .await
    }

    pub async fn replace_definition(
        &self,
        definition: &HuntDefinition,
        etag: &ETag,
    ) -> Result<ETag, StorageError> {
        self.ready()
            .await?
            .replace(&definition_blob(&definition.id), definition, etag)
            .await
    }

    /// Deletes the definition first (so no tick starts another run), then runs, results and state.
    /// Returns whether the hunt existed and how many runs were deleted.
    pub async fn delete_hunt(&self, hunt: &HuntId) -> Result<(bool, usize), StorageError> {
        let blobs = self.ready().await?;
        let existed = blobs.delete(&definition_blob(hunt)).await?;
        let runs = self.list_run_ids(hunt).await?;
        self.delete_prefix(&format!("results/{hunt}/")).await?;
        self.delete_prefix(&runs_prefix(hunt)).await?;
        blobs.delete(&state_blob(hunt)).await?;
        Ok((existed, runs.len()))
    }

    pub async fn state(&self, hunt: &HuntId) -> Result<HuntState, StorageError> {
        Ok(self
            .ready()
            .await?
            .get(&state_blob(hunt))
            .await?
            .map(|(state, _)| state)
            .unwrap_or_default())
    }

    /// Applies `change` to the hunt's state with optimistic concurrency: on a lost race the state
    /// is read again and `change` applied again, so changes must be expressed as merges.
    pub async fn update_state(
        &self,
        hunt: &HuntId,
        mut change: impl FnMut(&mut HuntState),
    ) -> Result<HuntState, StorageError> {
        let blobs = self.ready().await?;
        let name = state_blob(hunt);
        let mut last_error = None;
        for _ in 0..STATE_ATTEMPTS {
            let current = blobs.get::<HuntState>(&name).await?;
            let (mut state, etag) = match current {
                Some((state, etag)) => (state, Some(etag)),
                None => (HuntState::default(), None),
            };
            change(&mut state);
            let written = match &etag {
                Some(etag) => blobs.replace(&name, &state, etag).await,
                None => blobs.create(&name, &state).await,
            };
            match written {
                Ok(_) => return Ok(state),
                Err(
                    error @ (StorageError::Conflict { .. }
                    | StorageError::AlreadyExists { .. }
                    | StorageError::NotFound { .. }),
                ) => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or(StorageError::Conflict {
            container: self.blobs.container_name().into(),
            name,
        }))
    }

    /// Creates the record only if no record of that run exists: [`StorageError::AlreadyExists`]
    /// means another invocation claimed the occurrence first.
    pub async fn create_run(&self, record: &RunRecord) -> Result<ETag, StorageError> {
        self.ready()
            .await?
            .create(&run_blob(&record.hunt_id, &record.run_id), record)
            .await
    }

    pub async fn get_run(
        &self,
        hunt: &HuntId,
        run: &RunId,
    ) -> Result<Option<(RunRecord, ETag)>, StorageError> {
        self.ready().await?.get(&run_blob(hunt, run)).await
    }

    pub async fn replace_run(&self, record: &RunRecord, etag: &ETag) -> Result<ETag, StorageError> {
        self.ready()
            .await?
            .replace(&run_blob(&record.hunt_id, &record.run_id), record, etag)
            .await
    }

    /// Every run id of a hunt, oldest first.
    pub async fn list_run_ids(&self, hunt: &HuntId) -> Result<Vec<RunId>, StorageError> {
        let prefix = runs_prefix(hunt);
        let entries = self.ready().await?.list(&prefix).await?;
        let mut ids: Vec<RunId> = entries
            .iter()
            .filter_map(|entry| {
                entry
                    .name
                    .strip_prefix(&prefix)?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn delete_run(&self, hunt: &HuntId, run: &RunId) -> Result<(), StorageError> {
        self.delete_prefix(&results_prefix(hunt, run)).await?;
        self.ready().await?.delete(&run_blob(hunt, run)).await?;
        Ok(())
    }

    /// Stores rows in chunks; a run continued after an interruption overwrites what it wrote before.
    pub async fn write_results(
        &self,
        hunt: &HuntId,
        run: &RunId,
        tenant: &TenantId,
        schema: &[HuntingColumn],
        rows: Vec<Map<String, Value>>,
    ) -> Result<(), StorageError> {
        let blobs = self.ready().await?;
        let mut chunks: Vec<Vec<Map<String, Value>>> = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            chunks.push(rows.by_ref().take(RESULT_CHUNK_ROWS).collect());
        }
        if chunks.is_empty() {
            // An empty first chunk keeps the schema, so an empty result still says what it would hold.
            chunks.push(Vec::new());
        }
        futures::stream::iter(chunks.into_iter().enumerate())
            .map(|(index, rows)| {
                let chunk = ResultChunk {
                    schema: schema.to_vec(),
                    rows,
                };
                async move {
                    blobs
                        .upsert(&chunk_blob(hunt, run, tenant, index), &chunk)
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(STORAGE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Rows `offset..offset+limit` of a tenant's stored results, with the schema.
    pub async fn read_results(
        &self,
        hunt: &HuntId,
        run: &RunId,
        tenant: &TenantId,
        offset: usize,
        limit: usize,
    ) -> Result<Option<ResultChunk>, StorageError> {
        let blobs = self.ready().await?;
        let mut page = ResultChunk {
            schema: Vec::new(),
            rows: Vec::new(),
        };
        let first_chunk = offset / RESULT_CHUNK_ROWS;
        let mut skip = offset % RESULT_CHUNK_ROWS;
        let mut chunk_index = first_chunk;
        while page.rows.len() < limit {
            let Some((chunk, _)) = blobs
                .get::<ResultChunk>(&chunk_blob(hunt, run, tenant, chunk_index))
                .await?
            else {
                if chunk_index == 0 {
                    return Ok(None);
                }
                break;
            };
            let available = chunk.rows.len();
            page.schema = chunk.schema;
            page.rows.extend(
                chunk
                    .rows
                    .into_iter()
                    .skip(skip)
                    .take(limit - page.rows.len()),
            );
            if available < RESULT_CHUNK_ROWS {
                break;
            }
            skip = 0;
            chunk_index += 1;
        }
        if page.schema.is_empty() && first_chunk > 0 {
            // Past the end of the stored rows: still answer with the schema of the first chunk.
            if let Some((chunk, _)) = blobs
                .get::<ResultChunk>(&chunk_blob(hunt, run, tenant, 0))
                .await?
            {
                page.schema = chunk.schema;
            }
        }
        Ok(Some(page))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError> {
        let blobs = self.ready().await?;
        let entries = blobs.list(prefix).await?;
        futures::stream::iter(entries)
            .map(|entry| async move { blobs.delete(&entry.name).await.map(|_| ()) })
            .buffer_unordered(STORAGE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}
