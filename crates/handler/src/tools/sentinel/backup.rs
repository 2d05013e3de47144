//! Backups of a workspace's Sentinel configuration to this server's blob storage:
//! `sentinel_export` writes analytics rules, automation rules, watchlists with their items,
//! saved functions, saved queries and workbooks as one JSON file each under
//! `sentinel-backups/<tenant>/<workspace>/<timestamp>/`, then a `manifest.json` listing every
//! file with its count and SHA-256; `sentinel_list_backups` lists them and
//! `sentinel_restore_backup` re-creates what a backup holds, checking the hashes first and
//! never overwriting what exists.
//!
//! Export is Write (it creates blobs) at Responder tier: it changes nothing in the customer's
//! tenant and writes only to this server's own storage, which operators already control; it
//! copies configuration a Reader can already read, so it needs no Admin rights, but it leaves
//! durable artifacts, which read-only mode must not create.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::workbooks::create_workbook;
use super::{Target, target};
use crate::clients::arm::{ArmName, GroupResource, OperationOutcome, WorkspaceResource};
use crate::kql_guard;
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::{Collected, ListPosition};
use crate::storage::{JsonBlobStore, StorageError};
use crate::tenants::TenantId;
use crate::tools::args::Limit;
use crate::tools::rows;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(Export).tool(ListBackups).tool(RestoreBackup)
}

pub const CONTAINER: &str = "sentinel-backups";
const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "sentinel-backup/1";
/// Per resource type; a workspace with more is refused rather than exported in part.
const MAX_ITEMS: usize = 10_000;
/// Per watchlist.
const MAX_WATCHLIST_ITEMS: usize = 100_000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
enum Kind {
    AnalyticsRules,
    AutomationRules,
    /// Watchlists with their items.
    Watchlists,
    /// Saved searches with a function alias.
    Functions,
    /// Saved searches without one (hunting and other saved queries).
    SavedQueries,
    Workbooks,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Self::AnalyticsRules,
        Self::AutomationRules,
        Self::Watchlists,
        Self::Functions,
        Self::SavedQueries,
        Self::Workbooks,
    ];

    fn file(self) -> &'static str {
        match self {
            Self::AnalyticsRules => "analytics_rules.json",
            Self::AutomationRules => "automation_rules.json",
            Self::Watchlists => "watchlists.json",
            Self::Functions => "functions.json",
            Self::SavedQueries => "saved_queries.json",
            Self::Workbooks => "workbooks.json",
        }
    }

    fn chosen(include: Option<Vec<Kind>>) -> Vec<Kind> {
        let mut kinds = include
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| Self::ALL.to_vec());
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct ManifestFile {
    name: String,
    kind: Kind,
    /// Resources in the file.
    count: usize,
    /// Watchlist items across all watchlists (watchlists only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    items: Option<usize>,
    /// SHA-256 (hex) of the file's bytes.
    sha256: String,
    bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Manifest {
    format: String,
    backup_id: String,
    tenant_id: TenantId,
    workspace: String,
    workspace_resource_id: String,
    created_at: String,
    files: Vec<ManifestFile>,
}

fn storage_error(error: StorageError) -> ToolError {
    ToolError::Failed(format!("backup storage: {error}"))
}

/// The bytes stored for a JSON document (`JsonBlobStore` writes exactly these) and their hash.
fn digest(value: &Value) -> (String, usize) {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let hash = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (hash, bytes.len())
}

/// Everything of one list, or an error when there is more than `max` (a partial backup would look complete).
fn complete(collected: Collected<Value>, what: &str, max: usize) -> Result<Vec<Value>, ToolError> {
    if collected.next.is_some() {
        return Err(ToolError::Failed(format!(
            "{what}: more than {max}; nothing was exported rather than an incomplete backup"
        )));
    }
    Ok(collected.items)
}

async fn read_all(
    context: &ToolContext,
    target: &Target<'_>,
    resource: WorkspaceResource<'_>,
    what: &str,
    max: usize,
) -> Result<Vec<Value>, ToolError> {
    let arm = &context.services.arm;
    let collected = arm
        .list::<Value>(
            target.tenant_id(),
            ListPosition::start(arm.workspace_url(target.workspace, resource)),
            max,
        )
        .await?;
    complete(collected, what, max)
}

fn name_of(item: &Value) -> Result<ArmName, ToolError> {
    let name = item["name"].as_str().unwrap_or_default();
    name.parse().map_err(|_| {
        ToolError::Failed(format!(
            "a backed-up resource has an unusable name '{name}'"
        ))
    })
}

/// The resources of one kind, as stored in its file.
async fn collect_kind(
    context: &ToolContext,
    target: &Target<'_>,
    kind: Kind,
    saved_searches: &[Value],
) -> Result<(Vec<Value>, Option<usize>), ToolError> {
    let is_function = |s: &&Value| {
        s["properties"]["functionAlias"]
            .as_str()
            .is_some_and(|a| !a.is_empty())
    };
    Ok(match kind {
        Kind::AnalyticsRules => (
            read_all(
                context,
                target,
                WorkspaceResource::AlertRules,
                "analytics rules",
                MAX_ITEMS,
            )
            .await?,
            None,
        ),
        Kind::AutomationRules => (
            read_all(
                context,
                target,
                WorkspaceResource::AutomationRules,
                "automation rules",
                MAX_ITEMS,
            )
            .await?,
            None,
        ),
        Kind::Functions => (
            saved_searches.iter().filter(is_function).cloned().collect(),
            None,
        ),
        Kind::SavedQueries => (
            saved_searches
                .iter()
                .filter(|s| !is_function(s))
                .cloned()
                .collect(),
            None,
        ),
        Kind::Watchlists => {
            let mut out = Vec::new();
            let mut items_total = 0;
            for watchlist in read_all(
                context,
                target,
                WorkspaceResource::Watchlists,
                "watchlists",
                MAX_ITEMS,
            )
            .await?
            {
                let alias = name_of(&watchlist)?;
                let items = read_all(
                    context,
                    target,
                    WorkspaceResource::WatchlistItems(&alias),
                    &format!("items of watchlist {alias}"),
                    MAX_WATCHLIST_ITEMS,
                )
                .await?;
                items_total += items.len();
                out.push(json!({"watchlist": watchlist, "items": items}));
            }
            (out, Some(items_total))
        }
        Kind::Workbooks => {
            let arm = &context.services.arm;
            let ws = target.workspace;
            let source = ws.resource_path();
            let url = arm.group_url(
                &ws.subscription_id,
                &ws.resource_group,
                GroupResource::Workbooks { source_id: &source },
            );
            let listed = complete(
                arm.list::<Value>(target.tenant_id(), ListPosition::start(url), MAX_ITEMS)
                    .await?,
                "workbooks",
                MAX_ITEMS,
            )?;
            let mut out = Vec::new();
            for workbook in listed {
                let id = name_of(&workbook)?;
                out.push(
                    arm.get::<Value>(
                        target.tenant_id(),
                        arm.group_url(
                            &ws.subscription_id,
                            &ws.resource_group,
                            GroupResource::Workbook {
                                name: &id,
                                content: Some(true),
                            },
                        ),
                    )
                    .await?,
                );
            }
            (out, None)
        }
    })
}

struct Export;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExportParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// What to export (default all): analytics_rules, automation_rules, watchlists, functions, saved_queries, workbooks.
    include: Option<Vec<Kind>>,
}

#[derive(Serialize, JsonSchema)]
struct ExportOutput {
    /// Pass to sentinel_restore_backup; also the blob prefix in the sentinel-backups container.
    backup_id: String,
    container: String,
    manifest: Manifest,
}

impl Summary for ExportOutput {
    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .manifest
            .files
            .iter()
            .map(|f| format!("{} {}", f.count, f.kind_name()))
            .collect();
        format!(
            "backup {} of {}: {}",
            self.backup_id,
            self.manifest.workspace,
            parts.join(", ")
        )
    }
}

impl ManifestFile {
    fn kind_name(&self) -> String {
        serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Tool for Export {
    type Params = ExportParams;
    type Output = ExportOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_export",
            title: "Back up a Sentinel workspace's configuration",
            description: "Backs up a workspace's analytics and automation rules, watchlists, saved functions and \
                         queries, and workbooks to this server's storage, with a hashed manifest. Restore with \
                         sentinel_restore_backup.",
            toolset: Toolset::SentinelBackups,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Responder,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ExportParams,
    ) -> Result<ExportOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let kinds = Kind::chosen(params.include);
        let now = OffsetDateTime::now_utc();
        // Sortable UTC time, plus a random tag so two exports in the same millisecond never collide.
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{:04x}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond(),
            rand::random::<u16>()
        );
        let backup_id = format!(
            "{}/{}/{stamp}",
            target.tenant_id(),
            target.workspace.workspace_name
        );
        let saved_searches = if kinds
            .iter()
            .any(|k| matches!(k, Kind::Functions | Kind::SavedQueries))
        {
            read_all(
                context,
                &target,
                WorkspaceResource::SavedSearches,
                "saved searches",
                MAX_ITEMS,
            )
            .await?
        } else {
            Vec::new()
        };
        // Everything is read before anything is written, so a failed read leaves no partial backup.
        let mut contents = Vec::new();
        for kind in &kinds {
            contents.push((
                *kind,
                collect_kind(context, &target, *kind, &saved_searches).await?,
            ));
        }
        let store = JsonBlobStore::new(&context.services.storage, CONTAINER);
        store.ensure_container().await.map_err(storage_error)?;
        let mut files = Vec::new();
        for (kind, (resources, items)) in contents {
            let document = Value::Array(resources);
            let (sha256, bytes) = digest(&document);
            store
                .create(&format!("{backup_id}/{}", kind.file()), &document)
                .await
                .map_err(storage_error)?;
            files.push(ManifestFile {
                name: kind.file().into(),
                kind,
                count: document.as_array().map_or(0, Vec::len),
                items,
                sha256,
                bytes,
            });
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            backup_id: backup_id.clone(),
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            workspace_resource_id: target.workspace.resource_path(),
            created_at: now.format(&Rfc3339).unwrap_or_default(),
            files,
        };
        // Written last: a backup without a manifest is one that did not finish.
        store
            .create(&format!("{backup_id}/{MANIFEST}"), &manifest)
            .await
            .map_err(storage_error)?;
        tracing::info!(tenant = %target.tenant_id(), workspace = %target.workspace.workspace_name, backup_id, "sentinel configuration exported");
        Ok(ExportOutput {
            backup_id,
            container: CONTAINER.into(),
            manifest,
        })
    }
}

struct ListBackups;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListBackupsParams {
    tenant_id: Option<TenantId>,
    /// Only backups of this workspace.
    workspace: Option<String>,
    /// Most backups to return, newest first.
    #[serde(default)]
    limit: Limit<20, 200>,
}

#[derive(Serialize, JsonSchema)]
struct BackupInfo {
    backup_id: String,
    workspace: String,
    created_at: String,
    /// Resources per kind.
    counts: BTreeMap<String, usize>,
}

#[derive(Serialize, JsonSchema)]
struct ListBackupsOutput {
    tenant_id: TenantId,
    backups: Vec<BackupInfo>,
    /// How many complete backups there are; more than listed when the limit cut the list.
    total_complete: usize,
    /// Backups that never got their manifest (an export that failed part-way); they cannot be restored.
    incomplete: Vec<String>,
}

impl Summary for ListBackupsOutput {
    fn summary(&self) -> String {
        let newest = self
            .backups
            .first()
            .map(|b| format!("; newest {}", b.backup_id))
            .unwrap_or_default();
        let incomplete = if self.incomplete.is_empty() {
            String::new()
        } else {
            format!(", {} incomplete", self.incomplete.len())
        };
        let first = rows::first_note(self.backups.len(), self.total_complete, "workspace");
        format!("{} backups{first}{incomplete}{newest}", self.total_complete)
    }
}

#[async_trait::async_trait]
impl Tool for ListBackups {
    type Params = ListBackupsParams;
    type Output = ListBackupsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_backups",
            title: "List Sentinel configuration backups",
            description: "Lists the backups sentinel_export made for a tenant (optionally one workspace), newest first, with what each holds.",
            toolset: Toolset::SentinelBackups,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListBackupsParams,
    ) -> Result<ListBackupsOutput, ToolError> {
        let tenant = context
            .services
            .tenants
            .resolve(params.tenant_id.as_ref())?;
        let limit = params.limit.get();
        let prefix = match &params.workspace {
            Some(name) => format!(
                "{}/{}/",
                tenant.tenant_id,
                super::find_workspace(tenant, Some(name))?.workspace_name
            ),
            None => format!("{}/", tenant.tenant_id),
        };
        let store = JsonBlobStore::new(&context.services.storage, CONTAINER);
        let blobs = match store.list(&prefix).await {
            Ok(blobs) => blobs,
            Err(error) if error.status() == Some(404) => Vec::new(),
            Err(error) => return Err(storage_error(error)),
        };
        let mut folders: BTreeMap<String, bool> = BTreeMap::new();
        for blob in &blobs {
            if let Some((folder, file)) = blob.name.rsplit_once('/') {
                *folders.entry(folder.to_string()).or_default() |= file == MANIFEST;
            }
        }
        let (mut complete, incomplete): (Vec<String>, Vec<String>) = {
            let (done, partial): (Vec<_>, Vec<_>) = folders
                .into_iter()
                .partition(|(_, has_manifest)| *has_manifest);
            (
                done.into_iter().map(|(f, _)| f).collect(),
                partial.into_iter().map(|(f, _)| f).collect(),
            )
        };
        // Newest first across workspaces: the last path segment is the UTC timestamp.
        complete.sort_by(|a, b| b.rsplit('/').next().cmp(&a.rsplit('/').next()));
        let total_complete = complete.len();
        let mut backups = Vec::new();
        for folder in complete.into_iter().take(limit) {
            if let Some((manifest, _)) = store
                .get::<Manifest>(&format!("{folder}/{MANIFEST}"))
                .await
                .map_err(storage_error)?
            {
                let counts = manifest
                    .files
                    .iter()
                    .map(|f| (f.kind_name(), f.count))
                    .collect();
                backups.push(BackupInfo {
                    backup_id: manifest.backup_id,
                    workspace: manifest.workspace,
                    created_at: manifest.created_at,
                    counts,
                });
            }
        }
        Ok(ListBackupsOutput {
            tenant_id: tenant.tenant_id.clone(),
            backups,
            total_complete,
            incomplete,
        })
    }
}

struct RestoreBackup;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RestoreParams {
    tenant_id: Option<TenantId>,
    /// The backup to restore (backup_id from sentinel_export or sentinel_list_backups).
    backup_id: String,
    /// Workspace to restore into; the backup's own workspace when omitted.
    workspace: Option<String>,
    /// What to restore (default everything in the backup).
    include: Option<Vec<Kind>>,
}

#[derive(Serialize, JsonSchema, Default)]
struct KindReport {
    restored: Vec<String>,
    /// Already present in the workspace: left as they are.
    skipped_existing: Vec<String>,
    /// Could not be restored, with the reason.
    failed: Vec<String>,
    /// Watchlist items written (watchlists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    items_restored: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct RestoreOutput {
    tenant_id: TenantId,
    workspace: String,
    backup_id: String,
    results: BTreeMap<String, KindReport>,
}

impl Summary for RestoreOutput {
    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .results
            .iter()
            .map(|(kind, r)| {
                format!(
                    "{kind}: {} restored, {} already there, {} failed",
                    r.restored.len(),
                    r.skipped_existing.len(),
                    r.failed.len()
                )
            })
            .collect();
        format!(
            "restore of {} into {}: {}",
            self.backup_id,
            self.workspace,
            parts.join("; ")
        )
    }
}

/// A resource's definition without what the service sets itself (ids, etags, timestamps, authors).
fn definition(item: &Value, keep_kind: bool, read_only: &[&str]) -> Value {
    let mut properties: Map<String, Value> =
        item["properties"].as_object().cloned().unwrap_or_default();
    for key in read_only {
        properties.remove(*key);
    }
    let mut body = json!({"properties": properties});
    if keep_kind && let Some(kind) = item.get("kind") {
        body["kind"] = kind.clone();
    }
    body
}

const AUTOMATION_READ_ONLY: &[&str] = &[
    "createdTimeUtc",
    "lastModifiedTimeUtc",
    "createdBy",
    "lastModifiedBy",
];
/// `provisioningState` is the one read-only member of `SI /definitions/WatchlistProperties`;
/// the others are the service's bookkeeping of the original, which a new watchlist gets anew.
const WATCHLIST_READ_ONLY: &[&str] = &[
    "provisioningState",
    "watchlistId",
    "created",
    "updated",
    "createdBy",
    "updatedBy",
    "tenantId",
    "isDeleted",
    "uploadStatus",
    "rawContent",
];

#[async_trait::async_trait]
impl Tool for RestoreBackup {
    type Params = RestoreParams;
    type Output = RestoreOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_restore_backup",
            title: "Restore a Sentinel configuration backup",
            description: "Re-creates a sentinel_export backup's content in its workspace or another of the tenant, \
                         after checking file hashes; what already exists is left untouched and reported.",
            toolset: Toolset::SentinelBackups,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: RestoreParams,
    ) -> Result<RestoreOutput, ToolError> {
        let tenant = context
            .services
            .tenants
            .resolve(params.tenant_id.as_ref())?;
        let backup_id = params.backup_id.trim().trim_end_matches('/').to_string();
        if !backup_id.starts_with(&format!("{}/", tenant.tenant_id))
            || backup_id.contains("..")
            || backup_id.split('/').count() != 3
        {
            return Err(ToolError::invalid(format!(
                "backup_id '{backup_id}' is not a backup of tenant {}; sentinel_list_backups lists them",
                tenant.tenant_id
            )));
        }
        let store = JsonBlobStore::new(&context.services.storage, CONTAINER);
        let (manifest, _) = store
            .get::<Manifest>(&format!("{backup_id}/{MANIFEST}"))
            .await
            .map_err(storage_error)?
            .ok_or_else(|| {
                ToolError::NotFound(format!(
                    "no complete backup '{backup_id}'; sentinel_list_backups lists them"
                ))
            })?;
        if manifest.format != FORMAT || manifest.tenant_id != tenant.tenant_id {
            return Err(ToolError::Failed(format!(
                "backup {backup_id} has format {} for tenant {}; this server restores {FORMAT} backups of the same tenant",
                manifest.format, manifest.tenant_id
            )));
        }
        let target = target(
            context,
            Some(&tenant.tenant_id),
            Some(params.workspace.as_deref().unwrap_or(&manifest.workspace)),
        )?;
        let kinds = Kind::chosen(params.include);
        // Every file is read and checked before anything is written.
        let mut files = Vec::new();
        for file in manifest.files.iter().filter(|f| kinds.contains(&f.kind)) {
            let (document, _) = store
                .get::<Value>(&format!("{backup_id}/{}", file.name))
                .await
                .map_err(storage_error)?
                .ok_or_else(|| {
                    ToolError::Failed(format!(
                        "backup {backup_id} lacks {} although its manifest lists it",
                        file.name
                    ))
                })?;
            if digest(&document).0 != file.sha256 {
                return Err(ToolError::Failed(format!(
                    "{} of backup {backup_id} does not match its SHA-256 in the manifest; nothing was restored",
                    file.name
                )));
            }
            files.push((file.kind, document.as_array().cloned().unwrap_or_default()));
        }
        // Items are restored one by one and a failure does not stop the rest, so a control
        // command found on the way would leave a restore half done; and a backup that carries
        // one is not to be trusted in any part. So all of its KQL is checked first.
        let refused: Vec<String> = files
            .iter()
            .flat_map(|(kind, resources)| resources.iter().flat_map(|r| kql_refusals(*kind, r)))
            .collect();
        if !refused.is_empty() {
            return Err(ToolError::invalid(format!(
                "backup {backup_id} holds KQL that this server refuses to send; nothing was restored: {}; \
                 include can restore the other kinds without these",
                refused.join("; ")
            )));
        }
        let mut results = BTreeMap::new();
        for (kind, resources) in files {
            let mut report = KindReport::default();
            for resource in &resources {
                restore_one(context, &target, kind, resource, &mut report).await;
            }
            results.insert(kind_key(kind), report);
        }
        Ok(RestoreOutput {
            tenant_id: tenant.tenant_id.clone(),
            workspace: target.workspace.workspace_name.clone(),
            backup_id,
            results,
        })
    }
}

/// Why one backed-up item must not be restored: each piece of KQL it would write that the
/// guard refuses, named by kind, display name and id. Analytics rules (scheduled and NRT) and
/// saved searches carry `query`; a function also `functionParameters`, which the service puts
/// into the function's declaration, so it is KQL as much as the body; workbooks carry queries
/// in their content. Automation rules and watchlists carry none.
fn kql_refusals(kind: Kind, resource: &Value) -> Vec<String> {
    let what = match kind {
        Kind::AnalyticsRules => "analytics rule",
        Kind::Functions => "saved function",
        Kind::SavedQueries => "saved query",
        Kind::Workbooks => "workbook",
        Kind::AutomationRules | Kind::Watchlists => return Vec::new(),
    };
    let p = &resource["properties"];
    let label = format!(
        "{what} '{}' ({})",
        p["displayName"].as_str().unwrap_or_default(),
        resource["name"].as_str().unwrap_or_default()
    );
    if kind == Kind::Workbooks {
        // Without content the item fails on its own when restored, and writes nothing.
        let refusals = p["serializedData"]
            .as_str()
            .map(super::workbooks::query_refusals)
            .unwrap_or_default();
        return refusals
            .into_iter()
            .map(|refusal| format!("{label}: {refusal}"))
            .collect();
    }
    ["query", "functionParameters"]
        .into_iter()
        .filter_map(|field| {
            let text = p[field].as_str()?;
            kql_guard::check_stored_query(text)
                .err()
                .map(|refusal| format!("{label} {field}: {refusal}"))
        })
        .collect()
}

fn kind_key(kind: Kind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Restores one resource into the report; a failure is recorded and the rest go on.
async fn restore_one(
    context: &ToolContext,
    target: &Target<'_>,
    kind: Kind,
    resource: &Value,
    report: &mut KindReport,
) {
    let item = if kind == Kind::Watchlists {
        &resource["watchlist"]
    } else {
        resource
    };
    let label = item["properties"]["displayName"]
        .as_str()
        .or(item["name"].as_str())
        .unwrap_or("?")
        .to_string();
    match restore(context, target, kind, resource).await {
        Ok(Restored::Created(items)) => {
            report.restored.push(label);
            if let Some(items) = items {
                *report.items_restored.get_or_insert(0) += items;
            }
        }
        Ok(Restored::Exists) => report.skipped_existing.push(label),
        Err(error) => report.failed.push(format!("{label}: {error}")),
    }
}

enum Restored {
    /// Created; with the number of watchlist items written.
    Created(Option<usize>),
    Exists,
}

async fn restore(
    context: &ToolContext,
    target: &Target<'_>,
    kind: Kind,
    resource: &Value,
) -> Result<Restored, ToolError> {
    let arm = &context.services.arm;
    let tenant = target.tenant_id();
    let ws = target.workspace;
    let item = if kind == Kind::Watchlists {
        &resource["watchlist"]
    } else {
        resource
    };
    let name = name_of(item)?;
    let (url, body) = match kind {
        Kind::Workbooks => return restore_workbook(context, target, &name, resource).await,
        Kind::AnalyticsRules => {
            // Read-only properties differ per kind (a Fusion rule's name and severity are its
            // template's): see `rules::writable_rule`.
            let mut rule = item.clone();
            super::rules::writable_rule(&mut rule);
            (
                arm.workspace_url(ws, WorkspaceResource::AlertRule(&name)),
                definition(&rule, true, &[]),
            )
        }
        Kind::AutomationRules => (
            arm.workspace_url(ws, WorkspaceResource::AutomationRule(&name)),
            definition(item, false, AUTOMATION_READ_ONLY),
        ),
        Kind::Watchlists => (
            arm.workspace_url(ws, WorkspaceResource::Watchlist(&name)),
            definition(item, false, WATCHLIST_READ_ONLY),
        ),
        Kind::Functions | Kind::SavedQueries => (
            arm.workspace_url(ws, WorkspaceResource::SavedSearch(&name)),
            definition(item, false, &[]),
        ),
    };
    if arm.find::<Value>(tenant, url.clone()).await?.is_some() {
        return Ok(Restored::Exists);
    }
    if kind != Kind::Watchlists {
        arm.put::<Value>(tenant, url, &body).await?;
        return Ok(Restored::Created(None));
    }
    // `Watchlists_CreateOrUpdate` is a long-running operation (`x-ms-long-running-operation`,
    // `final-state-via: azure-async-operation`, 201 with `Azure-AsyncOperation`): its items can
    // only be written once it has succeeded.
    let outcome = arm
        .run_operation(
            tenant,
            Method::PUT,
            url,
            Some(&body),
            &format!("watchlist {name}"),
            WATCHLIST_WAIT,
        )
        .await?;
    if let OperationOutcome::Running { waited, status, .. } = outcome {
        return Err(ToolError::Failed(format!(
            "watchlist {name} was created but is still provisioning ({status}) after {}s; its items were not written",
            waited.as_secs()
        )));
    }
    let items = resource["items"].as_array().cloned().unwrap_or_default();
    for entry in &items {
        let item_id = name_of(entry)?;
        let body = json!({"properties": {"itemsKeyValue": entry["properties"]["itemsKeyValue"]}});
        arm.put::<Value>(
            tenant,
            arm.workspace_url(ws, WorkspaceResource::WatchlistItem(&name, &item_id)),
            &body,
        )
        .await?;
    }
    Ok(Restored::Created(Some(items.len())))
}

/// How long a restore waits for a watchlist to finish provisioning before writing its items.
const WATCHLIST_WAIT: Duration = Duration::from_secs(120);

/// Workbooks are re-linked to the target workspace (their `sourceId`) as they are created.
async fn restore_workbook(
    context: &ToolContext,
    target: &Target<'_>,
    id: &ArmName,
    resource: &Value,
) -> Result<Restored, ToolError> {
    // `WorkbookProperties` requires `displayName`, `serializedData` (strings) and `category`
    // (set by `create_workbook`); `tags` is a non-nullable string array and `description` the
    // only nullable one. Absent fields are left out, never sent as `null`.
    let p = &resource["properties"];
    let text = |key: &str| {
        p[key].as_str().map(str::to_string).ok_or_else(|| {
            ToolError::invalid(format!(
                "backed-up workbook {id} has no {key} string; it cannot be restored"
            ))
        })
    };
    let serialized_data = text("serializedData")?;
    let mut properties = json!({"displayName": text("displayName")?});
    if let Some(description) = p["description"].as_str() {
        properties["description"] = json!(description);
    }
    if let Some(tags) = p["tags"].as_array()
        && tags.iter().all(Value::is_string)
    {
        properties["tags"] = json!(tags);
    }
    match create_workbook(
        context,
        target,
        id,
        &serialized_data,
        properties,
        resource["tags"].as_object(),
    )
    .await
    {
        Ok(_) => Ok(Restored::Created(None)),
        Err(ToolError::Conflict(_)) => Ok(Restored::Exists),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    const PROD: &str = "law-contoso-sentinel";
    const DEV: &str = "law-contoso-dev";

    #[test]
    fn the_kinds_asked_for_come_in_one_order_without_repeats_and_none_means_all() {
        assert_eq!(Kind::chosen(None), Kind::ALL.to_vec());
        assert_eq!(Kind::chosen(Some(Vec::new())), Kind::ALL.to_vec());
        assert_eq!(
            Kind::chosen(Some(vec![
                Kind::Workbooks,
                Kind::Functions,
                Kind::Workbooks,
                Kind::AnalyticsRules,
            ])),
            vec![Kind::AnalyticsRules, Kind::Functions, Kind::Workbooks]
        );
    }

    #[test]
    fn a_definition_keeps_what_is_written_and_drops_what_the_service_sets() {
        let rule = json!({
            "id": "/subscriptions/s/.../automationRules/r", "name": "r", "etag": "\"1\"",
            "kind": "Scheduled",
            "properties": {"displayName": "Tag VIPs", "order": 3,
                           "createdTimeUtc": "2026-01-01T00:00:00Z", "createdBy": {"name": "x"},
                           "lastModifiedTimeUtc": "2026-01-02T00:00:00Z", "lastModifiedBy": {"name": "y"}},
        });
        assert_eq!(
            definition(&rule, false, AUTOMATION_READ_ONLY),
            json!({"properties": {"displayName": "Tag VIPs", "order": 3}})
        );
        assert_eq!(
            definition(&rule, true, &[])["kind"],
            "Scheduled",
            "the kind is kept where asked"
        );
        assert_eq!(
            definition(&json!({"name": "x"}), true, &[]),
            json!({"properties": {}})
        );
    }

    #[test]
    fn every_piece_of_kql_a_restore_would_write_is_checked_and_named() {
        let item = |name: &str, properties: Value| json!({"name": name, "properties": properties});
        let function = item(
            "fn1",
            json!({"displayName": "Logons", "query": "SecurityEvent | take n",
                   "functionParameters": "n:int = 10; .drop table SecurityEvent"}),
        );
        let refusals = kql_refusals(Kind::Functions, &function);
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(
            refusals[0].starts_with("saved function 'Logons' (fn1) functionParameters: "),
            "{refusals:?}"
        );

        let rule = item(
            "r1",
            json!({"displayName": "Hidden", "query": "SecurityEvent | take 1; .drop table SecurityEvent"}),
        );
        let refusals = kql_refusals(Kind::AnalyticsRules, &rule);
        assert!(
            refusals.len() == 1 && refusals[0].starts_with("analytics rule 'Hidden' (r1) query: "),
            "{refusals:?}"
        );

        // Mentioning a command in a string hides nothing; kinds without KQL are never refused.
        let mentions = item(
            "q1",
            json!({"displayName": "Drops", "query": "SecurityEvent | where CommandLine has '.drop table'"}),
        );
        assert_eq!(
            kql_refusals(Kind::SavedQueries, &mentions),
            Vec::<String>::new()
        );
        assert_eq!(
            kql_refusals(Kind::AutomationRules, &rule),
            Vec::<String>::new()
        );
        assert_eq!(kql_refusals(Kind::Watchlists, &rule), Vec::<String>::new());
    }

    #[test]
    fn a_list_with_more_than_the_maximum_is_refused_rather_than_exported_in_part() {
        let page = url::Url::parse("https://management.azure.com/x?api-version=1").expect("url");
        let cut = Collected {
            items: vec![json!(1), json!(2)],
            next: Some(ListPosition::start(page.clone())),
        };
        let message = complete(cut, "watchlists", 2)
            .expect_err("refused")
            .to_string();
        assert!(
            message.contains("watchlists: more than 2") && message.contains("nothing was exported"),
            "{message}"
        );
        let whole = Collected {
            items: vec![json!(1), json!(2)],
            next: None,
        };
        assert_eq!(
            complete(whole, "watchlists", 2).expect("all of it").len(),
            2
        );
    }

    fn store(harness: &Harness) -> JsonBlobStore {
        JsonBlobStore::new(&harness.context.services.storage, CONTAINER)
    }

    async fn stored(harness: &Harness, backup_id: &str, file: &str) -> Value {
        store(harness)
            .get::<Value>(&format!("{backup_id}/{file}"))
            .await
            .expect("readable")
            .expect("stored")
            .0
    }

    fn puts(harness: &Harness) -> u64 {
        harness.sandbox.stats().count_method("PUT")
    }

    fn counts(export: &Value) -> BTreeMap<String, usize> {
        export["manifest"]["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| {
                (
                    f["kind"].as_str().expect("kind").to_owned(),
                    f["count"].as_u64().expect("count") as usize,
                )
            })
            .collect()
    }

    fn names(report: &Value, field: &str) -> Vec<String> {
        report[field]
            .as_array()
            .expect("a list")
            .iter()
            .map(|n| n.as_str().expect("text").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_backup_restores_into_another_workspace_with_its_workbooks_relinked_and_only_once() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let export = harness
            .ok(&Export, json!({"tenant_id": tenant, "workspace": PROD}))
            .await;
        let backup_id = export["backup_id"].as_str().expect("id").to_owned();
        let counts = counts(&export);
        assert_eq!(counts.len(), Kind::ALL.len(), "{export}");
        assert!(counts["workbooks"] > 0, "{export}");

        let restored = harness
            .ok(
                &RestoreBackup,
                json!({"tenant_id": tenant, "backup_id": backup_id, "workspace": DEV}),
            )
            .await;
        assert_eq!(restored["workspace"], DEV);
        for (kind, count) in &counts {
            let report = &restored["results"][kind];
            assert_eq!(names(report, "failed"), Vec::<String>::new(), "{kind}");
            assert_eq!(
                names(report, "restored").len() + names(report, "skipped_existing").len(),
                *count,
                "{kind}: {report}"
            );
        }
        // Workbooks live in the workspace's resource group, which differs: all are new there.
        assert_eq!(
            names(&restored["results"]["workbooks"], "restored").len(),
            counts["workbooks"]
        );

        // Read back through an export of the other workspace: same content, linked to it.
        let dev = harness
            .ok(
                &Export,
                json!({"tenant_id": tenant, "workspace": DEV, "include": ["workbooks"]}),
            )
            .await;
        let dev_path = dev["manifest"]["workspace_resource_id"]
            .as_str()
            .expect("path")
            .to_owned();
        let originals = stored(&harness, &backup_id, "workbooks.json").await;
        let copies = stored(
            &harness,
            dev["backup_id"].as_str().expect("id"),
            "workbooks.json",
        )
        .await;
        for original in originals.as_array().expect("workbooks") {
            let copy = copies
                .as_array()
                .expect("workbooks")
                .iter()
                .find(|c| c["name"] == original["name"])
                .unwrap_or_else(|| panic!("{} restored into {DEV}", original["name"]));
            for key in ["displayName", "serializedData", "category"] {
                assert_eq!(
                    copy["properties"][key], original["properties"][key],
                    "{key}"
                );
            }
            assert!(
                copy["properties"]["sourceId"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(&dev_path)),
                "{copy}"
            );
        }

        let writes = puts(&harness);
        let again = harness
            .ok(
                &RestoreBackup,
                json!({"tenant_id": tenant, "backup_id": backup_id, "workspace": DEV}),
            )
            .await;
        for (kind, count) in &counts {
            let report = &again["results"][kind];
            assert_eq!(names(report, "restored"), Vec::<String>::new(), "{kind}");
            assert_eq!(names(report, "skipped_existing").len(), *count, "{kind}");
        }
        assert_eq!(puts(&harness), writes, "a second restore writes nothing");
    }

    #[tokio::test]
    async fn an_item_that_cannot_be_restored_is_reported_and_the_others_still_are() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let export = harness
            .ok(
                &Export,
                json!({"tenant_id": tenant, "workspace": PROD, "include": ["workbooks"]}),
            )
            .await;
        let backup_id = export["backup_id"].as_str().expect("id").to_owned();
        // The first workbook loses its content; the manifest is rewritten to match, as a backup
        // taken of such a workbook would be.
        let mut workbooks = stored(&harness, &backup_id, "workbooks.json").await;
        let total = workbooks.as_array().expect("workbooks").len();
        assert!(total >= 2, "{workbooks}");
        let broken = workbooks[0]["properties"]["displayName"]
            .as_str()
            .expect("name")
            .to_owned();
        workbooks[0]["properties"]
            .as_object_mut()
            .expect("properties")
            .remove("serializedData");
        let store = store(&harness);
        store
            .upsert(&format!("{backup_id}/workbooks.json"), &workbooks)
            .await
            .expect("rewritten");
        let mut manifest = export["manifest"].clone();
        let (sha256, bytes) = digest(&workbooks);
        manifest["files"][0]["sha256"] = json!(sha256);
        manifest["files"][0]["bytes"] = json!(bytes);
        store
            .upsert(&format!("{backup_id}/{MANIFEST}"), &manifest)
            .await
            .expect("rewritten");

        let restored = harness
            .ok(
                &RestoreBackup,
                json!({"tenant_id": tenant, "backup_id": backup_id, "workspace": DEV}),
            )
            .await;
        let report = &restored["results"]["workbooks"];
        let failed = names(report, "failed");
        assert_eq!(failed.len(), 1, "{report}");
        assert!(
            failed[0].starts_with(&format!("{broken}: "))
                && failed[0].contains("no serializedData"),
            "{report}"
        );
        assert_eq!(names(report, "restored").len(), total - 1, "{report}");
    }

    #[tokio::test]
    async fn backups_are_listed_newest_first_up_to_the_limit_and_unfinished_ones_apart() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let mut ids = Vec::new();
        for workspace in [PROD, PROD, DEV] {
            let export = harness
                .ok(
                    &Export,
                    json!({"tenant_id": tenant, "workspace": workspace, "include": ["functions"]}),
                )
                .await;
            ids.push(export["backup_id"].as_str().expect("id").to_owned());
        }
        // An export that stopped before its manifest.
        let unfinished = format!("{tenant}/{PROD}/20000101T000000.000Z-0000");
        store(&harness)
            .create(&format!("{unfinished}/functions.json"), &json!([]))
            .await
            .expect("stored");

        let newest = harness
            .ok(&ListBackups, json!({"tenant_id": tenant, "limit": 1}))
            .await;
        assert_eq!(newest["total_complete"], 3, "{newest}");
        assert_eq!(newest["backups"].as_array().expect("backups").len(), 1);
        assert_eq!(newest["backups"][0]["backup_id"], json!(ids[2]));
        assert_eq!(newest["incomplete"], json!([unfinished]));

        let prod = harness
            .ok(
                &ListBackups,
                json!({"tenant_id": tenant, "workspace": PROD}),
            )
            .await;
        let listed: Vec<&Value> = prod["backups"]
            .as_array()
            .expect("backups")
            .iter()
            .map(|b| &b["backup_id"])
            .collect();
        assert_eq!(listed, [&json!(ids[1]), &json!(ids[0])], "{prod}");
        assert!(
            prod["backups"][0]["counts"]["functions"].as_u64().is_some(),
            "{prod}"
        );

        let message = harness
            .refusal(
                &RestoreBackup,
                json!({"tenant_id": tenant, "backup_id": unfinished}),
            )
            .await;
        assert!(message.contains("no complete backup"), "{message}");
        let message = harness
            .refusal(
                &ListBackups,
                json!({"tenant_id": tenant, "workspace": "law-nope"}),
            )
            .await;
        assert!(message.contains("law-nope"), "{message}");
    }
}
