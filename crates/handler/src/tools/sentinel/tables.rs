//! Log Analytics tables: list, get (plan, retention, total retention, schema), create a custom
//! `_CL` table, change plan or retention, delete a custom table. Changes are long-running
//! operations, waited for up to `wait_seconds`.

use reqwest::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ArmFollower, OperationReport, Target, operation_wait, target};
use crate::approvals::{self, Change, PlanTarget};
use crate::clients::arm::{ArmName, LogTable, TableColumn, WorkspaceResource};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::ListPosition;
use crate::tenants::TenantId;
use crate::tools::args::{Fields, Limit};
use crate::tools::rows::{self, ListRow, Row};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListTables)
        .tool(GetTable)
        .tool(CreateTable)
        .tool(UpdateTable)
        .tool(DeleteTable)
}

/// A workspace has a few hundred tables at most; all are read, then filtered.
const MAX_TABLES: usize = 5000;
const COLUMN_TYPES: &[&str] = &[
    "string", "int", "long", "real", "boolean", "dateTime", "guid", "dynamic",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
enum Plan {
    /// Full analytics: queries, rules, alerts (default).
    Analytics,
    /// Cheaper ingestion, limited queries, 30-day interactive retention.
    Basic,
    /// Cheapest, for high-volume verbose logs; limited queries.
    Auxiliary,
}

impl Plan {
    fn name(self) -> &'static str {
        match self {
            Self::Analytics => "Analytics",
            Self::Basic => "Basic",
            Self::Auxiliary => "Auxiliary",
        }
    }
}

#[derive(Serialize, JsonSchema)]
struct TableInfo {
    name: String,
    /// Microsoft, CustomLog, RestoredLogs or SearchResults.
    table_type: Option<String>,
    plan: Option<String>,
    /// Interactive (analytics) retention in days.
    retention_in_days: Option<i64>,
    /// Interactive plus long-term retention in days.
    total_retention_in_days: Option<i64>,
    /// Long-term (archive) part of the total retention.
    archive_retention_in_days: Option<i64>,
    /// True when retention follows the workspace default.
    retention_is_default: Option<bool>,
    /// True when total retention follows the interactive retention.
    total_retention_is_default: Option<bool>,
    last_plan_change: Option<String>,
    provisioning_state: Option<String>,
}

impl From<&LogTable> for TableInfo {
    fn from(table: &LogTable) -> Self {
        let p = &table.properties;
        Self {
            name: table.name.clone(),
            table_type: p.schema.as_ref().and_then(|s| s.table_type.clone()),
            plan: p.plan.clone(),
            retention_in_days: p.retention_in_days,
            total_retention_in_days: p.total_retention_in_days,
            archive_retention_in_days: p.archive_retention_in_days,
            retention_is_default: p.retention_in_days_as_default,
            total_retention_is_default: p.total_retention_in_days_as_default,
            last_plan_change: p.last_plan_modified_date.clone(),
            provisioning_state: p.provisioning_state.clone(),
        }
    }
}

impl ListRow for TableInfo {
    const COMPACT: &'static [&'static str] = &[
        "name",
        "table_type",
        "plan",
        "retention_in_days",
        "total_retention_in_days",
    ];
    const GET_TOOL: Option<&'static str> = Some("sentinel_get_table");
}

fn retention_text(t: &TableInfo) -> String {
    format!(
        "{}: {} plan, {} days interactive, {} days total",
        t.name,
        t.plan.as_deref().unwrap_or("?"),
        t.retention_in_days
            .map(|d| d.to_string())
            .unwrap_or_else(|| "?".into()),
        t.total_retention_in_days
            .map(|d| d.to_string())
            .unwrap_or_else(|| "?".into())
    )
}

struct ListTables;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListTablesParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Only tables whose name contains this text (case-insensitive).
    name_contains: Option<String>,
    /// Only custom (_CL) tables.
    custom_only: Option<bool>,
    /// Most tables to return, by name; the output gives the total that matched.
    #[serde(default)]
    limit: Limit<30, 1000>,
    /// Extra fields, e.g. ["archive_retention_in_days"], or ["all"].
    fields: Option<Fields<TableInfo>>,
}

#[derive(Serialize, JsonSchema)]
struct ListTablesOutput {
    tenant_id: TenantId,
    workspace: String,
    tables: Vec<Row<TableInfo>>,
    /// How many tables matched; more than returned when the limit cut the list.
    total_matching: usize,
}

impl Summary for ListTablesOutput {
    fn summary(&self) -> String {
        let first = rows::first_note(self.tables.len(), self.total_matching, "name_contains");
        format!(
            "{} tables in {}{first}",
            self.total_matching, self.workspace
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListTables {
    type Params = ListTablesParams;
    type Output = ListTablesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_tables",
            title: "List Log Analytics tables",
            description: "Lists a workspace's tables: type (Microsoft or custom), plan, interactive and total \
                         retention; filter by name or to custom tables.",
            toolset: Toolset::SentinelTables,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListTablesParams,
    ) -> Result<ListTablesOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let limit = params.limit.get();
        let arm = &context.services.arm;
        let all = arm
            .list::<LogTable>(
                target.tenant_id(),
                ListPosition::start(arm.workspace_url(target.workspace, WorkspaceResource::Tables)),
                MAX_TABLES,
            )
            .await?;
        let needle = params.name_contains.map(|n| n.trim().to_lowercase());
        let mut matching: Vec<TableInfo> = all
            .items
            .iter()
            .filter(|t| {
                needle
                    .as_deref()
                    .is_none_or(|n| t.name.to_lowercase().contains(n))
            })
            .filter(|t| !params.custom_only.unwrap_or(false) || t.name.ends_with("_CL"))
            .map(TableInfo::from)
            .collect();
        matching.sort_by(|a, b| a.name.cmp(&b.name));
        let total_matching = matching.len();
        matching.truncate(limit);
        Ok(ListTablesOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            tables: rows::rows(matching, params.fields.as_ref()).rows,
            total_matching,
        })
    }
}

struct GetTable;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TableParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Table name, e.g. SigninLogs or AppAudit_CL.
    table: ArmName,
}

#[derive(Serialize, JsonSchema)]
struct GetTableOutput {
    tenant_id: TenantId,
    workspace: String,
    table: TableInfo,
    description: Option<String>,
    /// Columns defined for the table (custom tables).
    columns: Vec<TableColumn>,
    /// Columns Log Analytics defines (Microsoft tables, and system columns of custom ones).
    standard_columns: Vec<TableColumn>,
}

impl Summary for GetTableOutput {
    fn summary(&self) -> String {
        format!(
            "{}, {} columns",
            retention_text(&self.table),
            self.columns.len() + self.standard_columns.len()
        )
    }
}

async fn read_table(
    context: &ToolContext,
    target: &Target<'_>,
    table: &ArmName,
) -> Result<LogTable, ToolError> {
    let arm = &context.services.arm;
    arm.find::<LogTable>(
        target.tenant_id(),
        arm.workspace_url(target.workspace, WorkspaceResource::Table(table)),
    )
    .await?
    .ok_or_else(|| {
        ToolError::NotFound(format!(
            "no table '{table}' in workspace {}; sentinel_list_tables lists them",
            target.workspace.workspace_name
        ))
    })
}

#[async_trait::async_trait]
impl Tool for GetTable {
    type Params = TableParams;
    type Output = GetTableOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_get_table",
            title: "Get a Log Analytics table",
            description: "Gets one workspace table: plan, interactive and total retention (and whether they are \
                         the workspace default), last plan change, columns.",
            toolset: Toolset::SentinelTables,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: TableParams,
    ) -> Result<GetTableOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let table = read_table(context, &target, &params.table).await?;
        let schema = table.properties.schema.clone();
        Ok(GetTableOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            table: TableInfo::from(&table),
            description: schema.as_ref().and_then(|s| s.description.clone()),
            columns: schema
                .as_ref()
                .map(|s| s.columns.clone())
                .unwrap_or_default(),
            standard_columns: schema.map(|s| s.standard_columns).unwrap_or_default(),
        })
    }
}

/// Retention as a tool takes it: 4-730 days interactive, 4-4383 total, -1 for the default.
fn check_retention(retention: Option<i64>, total: Option<i64>) -> Result<(), ToolError> {
    if let Some(days) = retention
        && days != -1
        && !(4..=730).contains(&days)
    {
        return Err(ToolError::invalid(format!(
            "retention_in_days must be 4-730, or -1 for the workspace default; got {days}"
        )));
    }
    if let Some(days) = total
        && days != -1
        && !(4..=4383).contains(&days)
    {
        return Err(ToolError::invalid(format!(
            "total_retention_in_days must be 4-4383 (12 years), or -1 for the default; got {days}"
        )));
    }
    if let (Some(r), Some(t)) = (retention, total)
        && r > 0
        && t > 0
        && t < r
    {
        return Err(ToolError::invalid(format!(
            "total_retention_in_days ({t}) cannot be less than retention_in_days ({r})"
        )));
    }
    Ok(())
}

#[derive(Serialize, JsonSchema)]
struct TableChangeOutput {
    tenant_id: TenantId,
    workspace: String,
    table: String,
    operation: OperationReport,
    /// The table as read after the change (absent when deleted or still running).
    after: Option<TableInfo>,
    /// The table before the change (update and delete).
    before: Option<TableInfo>,
}

impl Summary for TableChangeOutput {
    fn summary(&self) -> String {
        match (&self.before, &self.after) {
            (_, Some(after)) => format!("{}{}", retention_text(after), self.operation.note()),
            (Some(_), None) if self.operation.done() => {
                format!("table {} deleted from {}", self.table, self.workspace)
            }
            _ => format!(
                "{} in {}: {}{}",
                self.table,
                self.workspace,
                self.operation.status,
                self.operation.note()
            ),
        }
    }
}

struct CreateTable;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ColumnParam {
    /// Column name: letters, digits and underscores, starting with a letter.
    name: String,
    /// One of string, int, long, real, boolean, dateTime, guid, dynamic.
    #[serde(rename = "type")]
    column_type: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateTableParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Name of the new custom table; must end with _CL (e.g. AppAudit_CL).
    table: ArmName,
    /// The columns. TimeGenerated (dateTime) is added when missing; TenantId and Type are added by Log Analytics.
    columns: Vec<ColumnParam>,
    description: Option<String>,
    /// Analytics (default), Basic or Auxiliary.
    plan: Option<Plan>,
    /// Interactive retention, 4-730 days; the workspace default when omitted.
    retention_in_days: Option<i64>,
    /// Total retention including long-term, 4-4383 days.
    total_retention_in_days: Option<i64>,
    /// Seconds to wait for Azure to finish (0-120, default 30).
    wait_seconds: Option<u32>,
}

#[async_trait::async_trait]
impl Tool for CreateTable {
    type Params = CreateTableParams;
    type Output = TableChangeOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_create_table",
            title: "Create a custom Log Analytics table",
            description: "Creates a custom table (name ending _CL) with columns, plan and retention, and waits for \
                         Azure; an existing name is refused (use sentinel_update_table).",
            toolset: Toolset::SentinelTables,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Admin,
        }
    }

    /// An Azure operation the call's wait did not see end is followed by an operation.
    fn target_action(
        &self,
        services: &std::sync::Arc<crate::services::Services>,
    ) -> Option<std::sync::Arc<dyn crate::operations::TargetAction>> {
        Some(ArmFollower::shared(services))
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: CreateTableParams,
    ) -> Result<TableChangeOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let name = params.table.as_str();
        if !name.ends_with("_CL") || name.len() <= 3 {
            return Err(ToolError::invalid(format!(
                "custom table names end with _CL (e.g. {name}_CL); '{name}' does not"
            )));
        }
        check_retention(params.retention_in_days, params.total_retention_in_days)?;
        let wait = operation_wait(params.wait_seconds)?;
        let columns = schema_columns(params.columns)?;
        let arm = &context.services.arm;
        let url = arm.workspace_url(target.workspace, WorkspaceResource::Table(&params.table));
        if arm
            .find::<LogTable>(target.tenant_id(), url.clone())
            .await?
            .is_some()
        {
            return Err(ToolError::Conflict(format!(
                "table {name} already exists in workspace {}; change it with sentinel_update_table",
                target.workspace.workspace_name
            )));
        }
        let mut properties = json!({"schema": {"name": name, "columns": columns}, "plan": params.plan.unwrap_or(Plan::Analytics).name()});
        if let Some(description) = params.description {
            properties["schema"]["description"] =
                json!(super::one_line("description", &description, 1024)?);
        }
        // -1 ("the default") is left out: Tables.json gives both retentions `minimum: 4`, and a
        // new table without them gets the defaults.
        if let Some(days) = params.retention_in_days.filter(|d| *d != -1) {
            properties["retentionInDays"] = json!(days);
        }
        if let Some(days) = params.total_retention_in_days.filter(|d| *d != -1) {
            properties["totalRetentionInDays"] = json!(days);
        }
        let body = json!({"properties": properties});
        let outcome = arm
            .run_operation(
                target.tenant_id(),
                Method::PUT,
                url.clone(),
                Some(&body),
                &format!("table {name}"),
                wait,
            )
            .await?;
        let operation = OperationReport::of(
            context,
            self.spec().name,
            target.tenant_id(),
            &format!("table {name}"),
            outcome,
        )
        .await?;
        let after = if operation.done() {
            Some(TableInfo::from(
                &read_table(context, &target, &params.table).await?,
            ))
        } else {
            None
        };
        Ok(TableChangeOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            table: name.into(),
            operation,
            after,
            before: None,
        })
    }
}

fn schema_columns(columns: Vec<ColumnParam>) -> Result<Vec<serde_json::Value>, ToolError> {
    if columns.is_empty() {
        return Err(ToolError::invalid(
            "columns is empty: a custom table needs at least one column besides TimeGenerated",
        ));
    }
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for column in columns {
        let name = column.name.trim().to_string();
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.len() <= 45;
        if !valid {
            return Err(ToolError::invalid(format!(
                "column name '{name}' is invalid: letters, digits and underscores, starting with a letter, at most 45 characters"
            )));
        }
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(ToolError::invalid(format!(
                "column '{name}' is listed twice"
            )));
        }
        let ty = COLUMN_TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(column.column_type.trim()))
            .ok_or_else(|| {
                ToolError::invalid(format!(
                    "column '{name}' has type '{}'; accepted: {}",
                    column.column_type,
                    COLUMN_TYPES.join(", ")
                ))
            })?;
        out.push((name, ty));
    }
    match out.iter().find(|(n, _)| n == "TimeGenerated") {
        Some((_, "dateTime")) => {}
        Some((_, other)) => {
            return Err(ToolError::invalid(format!(
                "TimeGenerated must be of type dateTime, not {other}"
            )));
        }
        None => out.insert(0, ("TimeGenerated".into(), "dateTime")),
    }
    Ok(out
        .into_iter()
        .map(|(name, ty)| json!({"name": name, "type": ty}))
        .collect())
}

struct UpdateTable;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTableParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Table name, e.g. SigninLogs or AppAudit_CL.
    table: ArmName,
    /// New plan. Azure allows one plan switch per table per week.
    plan: Option<Plan>,
    /// Interactive retention, 4-730 days, or -1 for the workspace default.
    retention_in_days: Option<i64>,
    /// Total retention, 4-4383 days, or -1 for the default. Reducing it deletes older data after 30 days.
    total_retention_in_days: Option<i64>,
    /// Seconds to wait for Azure to finish (0-120, default 30).
    wait_seconds: Option<u32>,
}

#[async_trait::async_trait]
impl Tool for UpdateTable {
    type Params = UpdateTableParams;
    type Output = TableChangeOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_update_table",
            title: "Change a table's plan or retention",
            description: "Changes a table's plan (Analytics, Basic, Auxiliary; once a week) and/or retention, \
                         waits for Azure, and reports the table before and after.",
            toolset: Toolset::SentinelTables,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Admin,
        }
    }

    /// An Azure operation the call's wait did not see end is followed by an operation.
    fn target_action(
        &self,
        services: &std::sync::Arc<crate::services::Services>,
    ) -> Option<std::sync::Arc<dyn crate::operations::TargetAction>> {
        Some(ArmFollower::shared(services))
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: UpdateTableParams,
    ) -> Result<TableChangeOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        if params.plan.is_none()
            && params.retention_in_days.is_none()
            && params.total_retention_in_days.is_none()
        {
            return Err(ToolError::invalid(
                "nothing to change: give plan, retention_in_days and/or total_retention_in_days",
            ));
        }
        check_retention(params.retention_in_days, params.total_retention_in_days)?;
        let wait = operation_wait(params.wait_seconds)?;
        let before = TableInfo::from(&read_table(context, &target, &params.table).await?);
        let mut properties = serde_json::Map::new();
        if let Some(plan) = params.plan {
            properties.insert("plan".into(), json!(plan.name()));
        }
        // Tables.json gives both retentions `minimum: 4`, so -1 ("the default") is never sent:
        // leaving the property out keeps what the table has, which is the default only when
        // it already follows it. Otherwise the caller is told, rather than shown a no-op.
        for (asked, key, is_default, field) in [
            (
                params.retention_in_days,
                "retentionInDays",
                before.retention_is_default,
                "retention_in_days",
            ),
            (
                params.total_retention_in_days,
                "totalRetentionInDays",
                before.total_retention_is_default,
                "total_retention_in_days",
            ),
        ] {
            match asked {
                Some(-1) if is_default != Some(true) => {
                    return Err(ToolError::invalid(format!(
                        "{field} -1 cannot be sent: the table definition (Tables.json 2026-03-01) accepts 4 or more days, and table {} does not follow the default now; give the number of days instead",
                        params.table
                    )));
                }
                Some(-1) | None => {}
                Some(days) => {
                    properties.insert(key.into(), json!(days));
                }
            }
        }
        if properties.is_empty() {
            return Err(ToolError::invalid(format!(
                "nothing to change: table {} already follows the default retention",
                params.table
            )));
        }
        let arm = &context.services.arm;
        let url = arm.workspace_url(target.workspace, WorkspaceResource::Table(&params.table));
        let body = json!({"properties": properties});
        let outcome = arm
            .run_operation(
                target.tenant_id(),
                Method::PATCH,
                url,
                Some(&body),
                &format!("table {}", params.table),
                wait,
            )
            .await?;
        let operation = OperationReport::of(
            context,
            self.spec().name,
            target.tenant_id(),
            &format!("table {}", params.table),
            outcome,
        )
        .await?;
        let after = if operation.done() {
            Some(TableInfo::from(
                &read_table(context, &target, &params.table).await?,
            ))
        } else {
            None
        };
        Ok(TableChangeOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            table: before.name.clone(),
            operation,
            after,
            before: Some(before),
        })
    }
}

struct DeleteTable;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeleteTableParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The custom table to delete (name ending _CL). Its data is deleted with it.
    table: ArmName,
    /// Seconds to wait for Azure to finish (0-120, default 30).
    wait_seconds: Option<u32>,
}

#[async_trait::async_trait]
impl Tool for DeleteTable {
    type Params = DeleteTableParams;
    type Output = TableChangeOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_delete_table",
            title: "Delete a custom Log Analytics table",
            description: "Deletes a custom (_CL) table and all its data (Microsoft tables are refused); cannot be \
                         undone.",
            toolset: Toolset::SentinelTables,
            effect: Effect::Destructive { idempotent: true },
            tier: Tier::Admin,
        }
    }

    /// An Azure operation the call's wait did not see end is followed by an operation.
    fn target_action(
        &self,
        services: &std::sync::Arc<crate::services::Services>,
    ) -> Option<std::sync::Arc<dyn crate::operations::TargetAction>> {
        Some(ArmFollower::shared(services))
    }

    /// The table with its plan and retention, read first: a Microsoft table or one that is not
    /// there is refused before anyone is asked. `call` reads it again for its report.
    async fn plan(
        &self,
        context: &ToolContext,
        params: &DeleteTableParams,
    ) -> Result<approvals::Plan, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        custom_table(&params.table)?;
        operation_wait(params.wait_seconds)?;
        let table = TableInfo::from(&read_table(context, &target, &params.table).await?);
        let days = |days: Option<i64>| days.map(|d| format!("{d} days"));
        let planned = PlanTarget::new(
            "custom table",
            table.name,
            None,
            Change::to("deleted with its data"),
        )
        .fact("plan", table.plan)
        .fact("retention", days(table.retention_in_days))
        .fact("total retention", days(table.total_retention_in_days));
        Ok(approvals::Plan::action(format!(
            "{} in workspace {}",
            self.spec().title,
            target.workspace.workspace_name
        ))
        .with_targets(vec![planned])
        .note("The table's data is deleted with it; this cannot be undone."))
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: DeleteTableParams,
    ) -> Result<TableChangeOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        custom_table(&params.table)?;
        let wait = operation_wait(params.wait_seconds)?;
        let before = TableInfo::from(&read_table(context, &target, &params.table).await?);
        let arm = &context.services.arm;
        let url = arm.workspace_url(target.workspace, WorkspaceResource::Table(&params.table));
        let outcome = arm
            .run_operation(
                target.tenant_id(),
                Method::DELETE,
                url,
                None,
                &format!("table {}", params.table),
                wait,
            )
            .await?;
        let operation = OperationReport::of(
            context,
            self.spec().name,
            target.tenant_id(),
            &format!("table {}", params.table),
            outcome,
        )
        .await?;
        Ok(TableChangeOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            table: before.name.clone(),
            operation,
            after: None,
            before: Some(before),
        })
    }
}

/// Only custom tables may be deleted: a Microsoft table is refused by name.
fn custom_table(table: &ArmName) -> Result<(), ToolError> {
    if table.as_str().ends_with("_CL") {
        Ok(())
    } else {
        Err(ToolError::invalid(format!(
            "only custom tables (names ending _CL) can be deleted; '{table}' is not one"
        )))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    const WORKSPACE: &str = "law-contoso-sentinel";

    #[tokio::test]
    async fn tables_are_listed_by_name_and_read_one_at_a_time() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let listed = harness
            .ok(
                &ListTables,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name_contains": "signin"}),
            )
            .await;
        let names: Vec<&str> = listed["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .map(|t| t["name"].as_str().expect("name"))
            .collect();
        assert!(names.contains(&"SigninLogs"), "{listed}");
        assert!(
            names.iter().all(|n| n.to_lowercase().contains("signin")),
            "{names:?}"
        );
        assert_eq!(listed["total_matching"], json!(names.len()));

        let table = harness
            .ok(
                &GetTable,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "table": "SigninLogs"}),
            )
            .await;
        assert_eq!(table["table"]["name"], "SigninLogs", "{table}");
        let message = harness
            .refusal(
                &GetTable,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "table": "NoSuch_CL"}),
            )
            .await;
        assert!(message.contains("NoSuch_CL"), "{message}");
    }
}
