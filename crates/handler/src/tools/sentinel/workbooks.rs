//! Sentinel workbooks (`Microsoft.Insights/workbooks`, category `sentinel`, linked to the
//! workspace by `sourceId`): list, get, export to a portable definition, import, delete.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Target, one_line, target};
use crate::approvals::{Change, Plan, PlanTarget};
use crate::clients::arm::{ArmName, GroupResource, Workbook, Workspace, WorkspaceResource};
use crate::kql_guard;
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::ListPosition;
use crate::tenants::TenantId;
use crate::tools::args::{self, Limit};
use crate::tools::rows;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListWorkbooks)
        .tool(GetWorkbook)
        .tool(ExportWorkbook)
        .tool(ImportWorkbook)
        .tool(DeleteWorkbook)
}

const MAX_READ: usize = 2000;
/// The format tag of an exported definition, so an import knows what it reads.
const DEFINITION_FORMAT: &str = "sentinel-workbook/1";
/// Workbook content larger than this is refused on import (the service's own limit is about 1 MB per workbook body).
const MAX_CONTENT_BYTES: usize = 1_000_000;

#[derive(Serialize, JsonSchema)]
struct WorkbookInfo {
    workbook_id: String,
    display_name: Option<String>,
    description: Option<String>,
    last_modified: Option<String>,
    category: Option<String>,
}

impl From<&Workbook> for WorkbookInfo {
    fn from(w: &Workbook) -> Self {
        Self {
            workbook_id: w.name.clone(),
            display_name: w.properties.display_name.clone(),
            description: w.properties.description.clone(),
            last_modified: w.properties.time_modified.map(args::rfc3339),
            category: w.properties.category.clone(),
        }
    }
}

fn describe(w: &WorkbookInfo) -> String {
    format!(
        "workbook '{}' ({})",
        w.display_name.as_deref().unwrap_or(""),
        w.workbook_id
    )
}

async fn read_workbook(
    context: &ToolContext,
    target: &Target<'_>,
    id: &ArmName,
    content: bool,
) -> Result<Workbook, ToolError> {
    let arm = &context.services.arm;
    let ws = target.workspace;
    let not_found = || {
        ToolError::NotFound(format!(
            "no Sentinel workbook '{id}' for workspace {}; sentinel_list_workbooks lists them",
            ws.workspace_name
        ))
    };
    let workbook = arm
        .find::<Workbook>(
            target.tenant_id(),
            arm.group_url(
                &ws.subscription_id,
                &ws.resource_group,
                GroupResource::Workbook {
                    name: id,
                    content: Some(content),
                },
            ),
        )
        .await?
        .ok_or_else(not_found)?;
    // The resource group may hold other workbooks (Azure Monitor's, another workspace's): only this workspace's Sentinel ones are acted on.
    let source = ws.resource_path();
    let ours = workbook
        .properties
        .category
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("sentinel"))
        && workbook
            .properties
            .source_id
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(&source));
    if ours { Ok(workbook) } else { Err(not_found()) }
}

struct ListWorkbooks;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListWorkbooksParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Only workbooks whose name contains this text (case-insensitive).
    name_contains: Option<String>,
    /// Most workbooks to return; the output gives the total that matched.
    #[serde(default)]
    limit: Limit<50, 500>,
}

#[derive(Serialize, JsonSchema)]
struct ListWorkbooksOutput {
    tenant_id: TenantId,
    workspace: String,
    workbooks: Vec<WorkbookInfo>,
    total_matching: usize,
}

impl Summary for ListWorkbooksOutput {
    fn summary(&self) -> String {
        let names: Vec<&str> = self
            .workbooks
            .iter()
            .filter_map(|w| w.display_name.as_deref())
            .take(10)
            .collect();
        let first = rows::first_note(self.workbooks.len(), self.total_matching, "name_contains");
        format!(
            "{} Sentinel workbooks in {}{first}: {}",
            self.total_matching,
            self.workspace,
            names.join(", ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListWorkbooks {
    type Params = ListWorkbooksParams;
    type Output = ListWorkbooksOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_workbooks",
            title: "List Sentinel workbooks",
            description: "Lists the saved Sentinel workbooks of a workspace (id, name, description, last modified).",
            toolset: Toolset::SentinelWorkbooks,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListWorkbooksParams,
    ) -> Result<ListWorkbooksOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let limit = params.limit.get();
        let arm = &context.services.arm;
        let ws = target.workspace;
        let source = ws.resource_path();
        let url = arm.group_url(
            &ws.subscription_id,
            &ws.resource_group,
            GroupResource::Workbooks { source_id: &source },
        );
        let all = arm
            .list::<Workbook>(target.tenant_id(), ListPosition::start(url), MAX_READ)
            .await?;
        let needle = params.name_contains.map(|n| n.trim().to_lowercase());
        let matching: Vec<WorkbookInfo> = all
            .items
            .iter()
            .filter(|w| {
                needle.as_deref().is_none_or(|n| {
                    w.properties
                        .display_name
                        .as_deref()
                        .is_some_and(|d| d.to_lowercase().contains(n))
                })
            })
            .map(WorkbookInfo::from)
            .collect();
        let total_matching = matching.len();
        Ok(ListWorkbooksOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: ws.workspace_name.clone(),
            workbooks: matching.into_iter().take(limit).collect(),
            total_matching,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WorkbookParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The workbook id (a GUID, from sentinel_list_workbooks).
    workbook_id: ArmName,
}

struct GetWorkbook;

#[derive(Serialize, JsonSchema)]
struct GetWorkbookOutput {
    tenant_id: TenantId,
    workspace: String,
    workbook: WorkbookInfo,
    /// How many steps (text, queries, parameters ...) the workbook has.
    steps: usize,
    /// The KQL queries the workbook runs.
    queries: Vec<String>,
    content_bytes: usize,
}

impl Summary for GetWorkbookOutput {
    fn summary(&self) -> String {
        format!(
            "{}: {} steps, {} queries",
            describe(&self.workbook),
            self.steps,
            self.queries.len()
        )
    }
}

/// A query in a workbook's content, with where it is, so a refusal can name it.
struct WorkbookQuery<'a> {
    /// The nearest `name` on the way down: the step's (`query - 2`) or the parameter's.
    owner: Option<&'a str>,
    /// JSON pointer to the query (RFC 6901), unique where names may repeat or be missing.
    pointer: String,
    text: &'a str,
}

impl WorkbookQuery<'_> {
    fn describe(&self) -> String {
        match self.owner {
            Some(owner) => format!("the query of '{owner}' ({})", self.pointer),
            None => format!("the query at {}", self.pointer),
        }
    }
}

/// Every `query` in the workbook's steps, however deeply groups nest them.
fn queries<'a>(value: &'a Value) -> Vec<WorkbookQuery<'a>> {
    let mut found = Vec::new();
    collect_queries(value, None, &mut String::new(), &mut found);
    found
}

/// `pointer` is the path to `value`, grown and cut back on the way down, so that a pointer is
/// only copied for a node that holds a query.
fn collect_queries<'a>(
    value: &'a Value,
    owner: Option<&'a str>,
    pointer: &mut String,
    out: &mut Vec<WorkbookQuery<'a>>,
) {
    let depth = pointer.len();
    match value {
        Value::Object(map) => {
            let owner = map.get("name").and_then(Value::as_str).or(owner);
            if let Some(Value::String(text)) = map.get("query") {
                out.push(WorkbookQuery {
                    owner,
                    pointer: format!("{pointer}/query"),
                    text,
                });
            }
            for (key, v) in map {
                pointer.push('/');
                for c in key.chars() {
                    match c {
                        '~' => pointer.push_str("~0"),
                        '/' => pointer.push_str("~1"),
                        c => pointer.push(c),
                    }
                }
                collect_queries(v, owner, pointer, out);
                pointer.truncate(depth);
            }
        }
        Value::Array(items) => {
            for (index, v) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&index.to_string());
                collect_queries(v, owner, pointer, out);
                pointer.truncate(depth);
            }
        }
        _ => {}
    }
}

/// Why workbook content must not be written: each of its queries the KQL guard refuses, named
/// with the guard's reason, or that it is not JSON, so its queries cannot be found. Empty when
/// it may be written.
pub(super) fn query_refusals(serialized_data: &str) -> Vec<String> {
    let content: Value = match serde_json::from_str(serialized_data) {
        Ok(content) => content,
        Err(e) => {
            return vec![format!(
                "the content is not JSON ({e}), so its queries cannot be checked; workbook content is Notebook JSON"
            )];
        }
    };
    queries(&content)
        .iter()
        .filter_map(|q| {
            kql_guard::check_stored_query(q.text)
                .err()
                .map(|refusal| format!("{}: {refusal}", q.describe()))
        })
        .collect()
}

#[async_trait::async_trait]
impl Tool for GetWorkbook {
    type Params = WorkbookParams;
    type Output = GetWorkbookOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_get_workbook",
            title: "Get a Sentinel workbook",
            description: "Gets one workbook: name, description, last change, step count and the KQL queries it \
                         runs (full content: sentinel_export_workbook).",
            toolset: Toolset::SentinelWorkbooks,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: WorkbookParams,
    ) -> Result<GetWorkbookOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let workbook = read_workbook(context, &target, &params.workbook_id, true).await?;
        let data = workbook
            .properties
            .serialized_data
            .clone()
            .unwrap_or_default();
        let content: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        let found = queries(&content);
        Ok(GetWorkbookOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            workbook: WorkbookInfo::from(&workbook),
            steps: content["items"].as_array().map_or(0, Vec::len),
            queries: found.iter().map(|q| q.text.to_string()).collect(),
            content_bytes: data.len(),
        })
    }
}

/// A workbook as sentinel_export_workbook writes it and sentinel_import_workbook reads it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WorkbookDefinition {
    /// Always "sentinel-workbook/1".
    format: Option<String>,
    display_name: String,
    description: Option<String>,
    /// The workbook content: Notebook JSON serialized as a string.
    serialized_data: String,
    #[serde(default)]
    tags: Vec<String>,
    /// Where it was exported from (information only).
    source_workspace: Option<String>,
    exported_at: Option<String>,
}

struct ExportWorkbook;

#[derive(Serialize, JsonSchema)]
struct ExportWorkbookOutput {
    tenant_id: TenantId,
    workspace: String,
    workbook_id: String,
    /// Pass this unchanged as sentinel_import_workbook's definition (to this or another workspace).
    definition: WorkbookDefinition,
}

impl Summary for ExportWorkbookOutput {
    fn summary(&self) -> String {
        format!(
            "exported workbook '{}' ({} bytes of content)",
            self.definition.display_name,
            self.definition.serialized_data.len()
        )
    }
}

#[async_trait::async_trait]
impl Tool for ExportWorkbook {
    type Params = WorkbookParams;
    type Output = ExportWorkbookOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_export_workbook",
            title: "Export a Sentinel workbook",
            description: "Exports one workbook with its full content as a definition sentinel_import_workbook \
                         accepts.",
            toolset: Toolset::SentinelWorkbooks,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: WorkbookParams,
    ) -> Result<ExportWorkbookOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let workbook = read_workbook(context, &target, &params.workbook_id, true).await?;
        let p = workbook.properties;
        let serialized_data = p.serialized_data.ok_or_else(|| {
            ToolError::Failed("the workbook came back without its content".into())
        })?;
        Ok(ExportWorkbookOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            workbook_id: workbook.name,
            definition: WorkbookDefinition {
                format: Some(DEFINITION_FORMAT.into()),
                display_name: p.display_name.unwrap_or_default(),
                description: p.description,
                serialized_data,
                tags: p.tags,
                source_workspace: Some(target.workspace.workspace_name.clone()),
                exported_at: OffsetDateTime::now_utc().format(&Rfc3339).ok(),
            },
        })
    }
}

struct ImportWorkbook;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ImportWorkbookParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// A definition from sentinel_export_workbook. Give this, or display_name with serialized_data.
    definition: Option<WorkbookDefinition>,
    /// Name of the imported workbook (overrides the definition's).
    display_name: Option<String>,
    /// Workbook content (Notebook JSON as a string, as the workbook editor's Advanced Editor shows it).
    serialized_data: Option<String>,
    /// Id for the new workbook (a GUID is generated when omitted); refused if a workbook has it already.
    workbook_id: Option<ArmName>,
}

#[derive(Serialize, JsonSchema)]
struct ImportWorkbookOutput {
    tenant_id: TenantId,
    workspace: String,
    workbook: WorkbookInfo,
}

impl Summary for ImportWorkbookOutput {
    fn summary(&self) -> String {
        format!(
            "imported {} into {}",
            describe(&self.workbook),
            self.workspace
        )
    }
}

/// Checks a workbook's content is Notebook JSON before it is sent.
fn check_content(data: &str) -> Result<(), ToolError> {
    if data.len() > MAX_CONTENT_BYTES {
        return Err(ToolError::invalid(format!(
            "serialized_data is {} bytes; at most {MAX_CONTENT_BYTES} are accepted",
            data.len()
        )));
    }
    let content: Value = serde_json::from_str(data)
        .map_err(|e| ToolError::invalid(format!("serialized_data is not JSON: {e}")))?;
    if !content["version"]
        .as_str()
        .is_some_and(|v| v.starts_with("Notebook/"))
        || !content["items"].is_array()
    {
        return Err(ToolError::invalid(
            "serialized_data is not workbook content: expected an object with \"version\": \"Notebook/1.0\" and \"items\"",
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Tool for ImportWorkbook {
    type Params = ImportWorkbookParams;
    type Output = ImportWorkbookOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_import_workbook",
            title: "Import a Sentinel workbook",
            description: "Creates a workbook from a sentinel_export_workbook definition, or from a name and \
                         Notebook JSON; never overwrites an existing one.",
            toolset: Toolset::SentinelWorkbooks,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ImportWorkbookParams,
    ) -> Result<ImportWorkbookOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let (name, description, data, tags) = match (params.definition, params.serialized_data) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "give definition or serialized_data, not both",
                ));
            }
            (None, None) => {
                return Err(ToolError::invalid(
                    "give definition (from sentinel_export_workbook) or display_name with serialized_data",
                ));
            }
            (Some(d), None) => {
                if d.format.as_deref().is_some_and(|f| f != DEFINITION_FORMAT) {
                    return Err(ToolError::invalid(format!(
                        "definition format '{}' is not {DEFINITION_FORMAT}",
                        d.format.unwrap_or_default()
                    )));
                }
                (
                    params.display_name.unwrap_or(d.display_name),
                    d.description,
                    d.serialized_data,
                    d.tags,
                )
            }
            (None, Some(data)) => {
                let name = params.display_name.ok_or_else(|| {
                    ToolError::invalid("display_name is required with serialized_data")
                })?;
                (name, None, data, Vec::new())
            }
        };
        let name = one_line("display_name", &name, 256)?;
        check_content(&data)?;
        let id = params.workbook_id.unwrap_or_else(ArmName::new_guid);
        if uuid::Uuid::try_parse(id.as_str()).is_err() {
            return Err(ToolError::invalid(format!(
                "workbook_id '{id}' is not a GUID; workbook ids are GUIDs"
            )));
        }
        let workbook = create_workbook(
            context,
            &target,
            &id,
            &data,
            json!({"displayName": name, "description": description, "tags": tags}),
            None,
        )
        .await?;
        Ok(ImportWorkbookOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            workbook: WorkbookInfo::from(&workbook),
        })
    }
}

/// Creates a workbook linked to the target workspace from its content (`serializedData`) and
/// its other properties (display name, description, tags); refuses an id that exists, and
/// content with a query the KQL guard refuses. Also used to restore backups.
pub async fn create_workbook(
    context: &ToolContext,
    target: &Target<'_>,
    id: &ArmName,
    serialized_data: &str,
    mut properties: Value,
    tags: Option<&serde_json::Map<String, Value>>,
) -> Result<Workbook, ToolError> {
    // Every workbook write comes through here (imports, restores), so the queries the workbook
    // will run are checked here, before any request, like all KQL this server sends or stores.
    let refusals = query_refusals(serialized_data);
    if !refusals.is_empty() {
        return Err(ToolError::invalid(format!(
            "workbook content refused, nothing was written: {}",
            refusals.join("; ")
        )));
    }
    let arm = &context.services.arm;
    let ws = target.workspace;
    let url = |content| {
        arm.group_url(
            &ws.subscription_id,
            &ws.resource_group,
            GroupResource::Workbook { name: id, content },
        )
    };
    if arm
        .find::<Value>(target.tenant_id(), url(Some(false)))
        .await?
        .is_some()
    {
        return Err(ToolError::Conflict(format!(
            "a workbook with id {id} already exists in resource group {}",
            ws.resource_group
        )));
    }
    let workspace: Workspace = arm
        .get(
            target.tenant_id(),
            arm.workspace_url(ws, WorkspaceResource::Workspace),
        )
        .await?;
    let location = workspace.location.ok_or_else(|| {
        ToolError::Failed(format!("workspace {} has no location", ws.workspace_name))
    })?;
    properties["serializedData"] = json!(serialized_data);
    properties["category"] = json!("sentinel");
    properties["sourceId"] = json!(ws.resource_path());
    let mut body = json!({"location": location, "kind": "shared", "properties": properties});
    // The resource's own `tags` map (TrackedResource): `properties.tags` is "being deprecated,
    // please use the other tags field".
    if let Some(tags) = tags {
        body["tags"] = Value::Object(tags.clone());
    }
    Ok(arm.put(target.tenant_id(), url(None), &body).await?)
}

struct DeleteWorkbook;

#[derive(Serialize, JsonSchema)]
struct DeleteWorkbookOutput {
    tenant_id: TenantId,
    workspace: String,
    deleted: WorkbookInfo,
}

impl Summary for DeleteWorkbookOutput {
    fn summary(&self) -> String {
        format!("deleted {}", describe(&self.deleted))
    }
}

#[async_trait::async_trait]
impl Tool for DeleteWorkbook {
    type Params = WorkbookParams;
    type Output = DeleteWorkbookOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_delete_workbook",
            title: "Delete a Sentinel workbook",
            description: "Deletes one saved Sentinel workbook and reports what it was. Export it first (sentinel_export_workbook) if it \
                          may be needed again; confirm with the person.",
            toolset: Toolset::SentinelWorkbooks,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Admin,
        }
    }

    /// The workbook by name, read first: one that is not there, or not this workspace's, is
    /// refused before anyone is asked. `call` reads it again for its report.
    async fn plan(
        &self,
        context: &ToolContext,
        params: &WorkbookParams,
    ) -> Result<Plan, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let workbook =
            WorkbookInfo::from(&read_workbook(context, &target, &params.workbook_id, false).await?);
        let planned = PlanTarget::new(
            "workbook",
            workbook.workbook_id,
            workbook.display_name,
            Change::to("deleted"),
        )
        .fact("last modified", workbook.last_modified);
        Ok(Plan::action(format!(
            "{} in workspace {}",
            self.spec().title,
            target.workspace.workspace_name
        ))
        .with_targets(vec![planned])
        .note("A deleted workbook cannot be restored; sentinel_export_workbook keeps a copy."))
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: WorkbookParams,
    ) -> Result<DeleteWorkbookOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let workbook = read_workbook(context, &target, &params.workbook_id, false).await?;
        let arm = &context.services.arm;
        let ws = target.workspace;
        arm.delete(
            target.tenant_id(),
            arm.group_url(
                &ws.subscription_id,
                &ws.resource_group,
                GroupResource::Workbook {
                    name: &params.workbook_id,
                    content: None,
                },
            ),
        )
        .await?;
        Ok(DeleteWorkbookOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: ws.workspace_name.clone(),
            deleted: WorkbookInfo::from(&workbook),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn an_exported_workbook_imports_into_another_workspace_as_it_was() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let listed = harness
            .ok(
                &ListWorkbooks,
                json!({"tenant_id": tenant, "workspace": "law-contoso-sentinel"}),
            )
            .await;
        let id = listed["workbooks"][0]["workbook_id"]
            .as_str()
            .expect("a seeded workbook");
        let original = harness
            .ok(
                &GetWorkbook,
                json!({"tenant_id": tenant, "workspace": "law-contoso-sentinel", "workbook_id": id}),
            )
            .await;
        let exported = harness
            .ok(
                &ExportWorkbook,
                json!({"tenant_id": tenant, "workspace": "law-contoso-sentinel", "workbook_id": id}),
            )
            .await;
        let imported = harness
            .ok(
                &ImportWorkbook,
                json!({"tenant_id": tenant, "workspace": "law-contoso-dev",
                       "definition": exported["definition"]}),
            )
            .await;
        let copy_id = imported["workbook"]["workbook_id"]
            .as_str()
            .expect("the copy's id");
        let copy = harness
            .ok(
                &GetWorkbook,
                json!({"tenant_id": tenant, "workspace": "law-contoso-dev", "workbook_id": copy_id}),
            )
            .await;
        assert_eq!(copy["queries"], original["queries"], "{copy}");
        assert_eq!(copy["steps"], original["steps"]);
        assert_eq!(
            copy["workbook"]["display_name"],
            original["workbook"]["display_name"]
        );

        let message = harness
            .refusal(
                &ImportWorkbook,
                json!({"tenant_id": tenant, "workspace": "law-contoso-dev",
                       "definition": exported["definition"], "workbook_id": copy_id}),
            )
            .await;
        assert!(
            message.contains(copy_id),
            "an id in use is refused: {message}"
        );
    }
}
