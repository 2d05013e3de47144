//! Data collection: rules (DCRs) that route data into the workspace, endpoints (DCEs) that
//! receive it, and the associations that attach rules to machines. List, get, create a DCR for
//! a custom table with a transformation, change a transformation (etag-checked), create a DCE.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Target, target};
use crate::clients::arm::{
    ArmName, DataCollectionEndpoint, DataCollectionRule, DcrAssociation, GroupResource, LogTable,
    SubscriptionResource, Workspace, WorkspaceResource,
};
use crate::kql_guard;
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::ListPosition;
use crate::tenants::TenantId;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder
        .tool(ListDcrs)
        .tool(GetDcr)
        .tool(CreateDcr)
        .tool(UpdateTransformation)
        .tool(ListDces)
        .tool(CreateDce)
        .tool(ListAssociations)
}

const MAX_READ: usize = 2000;
/// The Logs Ingestion API version clients send data with.
const INGESTION_API_VERSION: &str = "2023-01-01";
/// The destination name this server gives the workspace inside rules it creates.
const DESTINATION: &str = "sentinel";

fn resource_group_of(id: &str) -> String {
    id.split('/')
        .skip_while(|s| !s.eq_ignore_ascii_case("resourceGroups"))
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// The resource group a call names, or the workspace's.
fn group<'a>(target: &'a Target<'_>, resource_group: Option<&'a ArmName>) -> &'a str {
    resource_group.map_or(target.workspace.resource_group.as_str(), ArmName::as_str)
}

#[derive(Serialize, JsonSchema)]
struct FlowInfo {
    streams: Vec<String>,
    /// The table the data lands in (Custom-X_CL or Microsoft-Table).
    output_stream: Option<String>,
    transform_kql: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct DcrInfo {
    name: String,
    resource_group: String,
    location: Option<String>,
    kind: Option<String>,
    immutable_id: Option<String>,
    description: Option<String>,
    /// True when one of the rule's destinations is this workspace.
    sends_to_workspace: bool,
    flows: Vec<FlowInfo>,
    /// The data collection endpoint the rule uses, if any.
    endpoint_id: Option<String>,
    /// The rule's own ingestion endpoint (kind Direct).
    logs_ingestion: Option<String>,
}

impl DcrInfo {
    fn new(dcr: &DataCollectionRule, workspace_id: &str) -> Self {
        let p = &dcr.properties;
        Self {
            name: dcr.name.clone(),
            resource_group: resource_group_of(&dcr.id),
            location: dcr.location.clone(),
            kind: dcr.kind.clone(),
            immutable_id: p.immutable_id.clone(),
            description: p.description.clone(),
            sends_to_workspace: p.destinations.log_analytics.iter().any(|d| {
                d.workspace_resource_id
                    .as_deref()
                    .is_some_and(|w| w.eq_ignore_ascii_case(workspace_id))
            }),
            flows: p
                .data_flows
                .iter()
                .map(|f| FlowInfo {
                    streams: f.streams.clone(),
                    output_stream: f.output_stream.clone(),
                    transform_kql: f.transform_kql.clone(),
                })
                .collect(),
            endpoint_id: p.data_collection_endpoint_id.clone(),
            logs_ingestion: p.endpoints.logs_ingestion.clone(),
        }
    }
}

struct ListDcrs;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListDcrsParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// true lists every DCR in the workspace's subscription; by default only those sending to the workspace.
    all: Option<bool>,
}

#[derive(Serialize, JsonSchema)]
struct ListDcrsOutput {
    tenant_id: TenantId,
    workspace: String,
    rules: Vec<DcrInfo>,
}

impl Summary for ListDcrsOutput {
    fn summary(&self) -> String {
        let names: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        format!(
            "{} data collection rules: {}",
            names.len(),
            names.join(", ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListDcrs {
    type Params = ListDcrsParams;
    type Output = ListDcrsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_dcrs",
            title: "List data collection rules",
            description: "Lists data collection rules sending to a workspace (or all in its subscription): \
                         streams, output tables, transformations, endpoints.",
            toolset: Toolset::SentinelDataCollection,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListDcrsParams,
    ) -> Result<ListDcrsOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let arm = &context.services.arm;
        let url = arm.subscription_url(
            Some(&target.workspace.subscription_id),
            SubscriptionResource::DataCollectionRules,
        );
        let all = arm
            .list::<DataCollectionRule>(target.tenant_id(), ListPosition::start(url), MAX_READ)
            .await?;
        let workspace_id = target.workspace.resource_path();
        let rules = all
            .items
            .iter()
            .map(|d| DcrInfo::new(d, &workspace_id))
            .filter(|d| params.all.unwrap_or(false) || d.sends_to_workspace)
            .collect();
        Ok(ListDcrsOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            rules,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DcrParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The data collection rule's name (from sentinel_list_dcrs).
    name: ArmName,
    /// Its resource group; the workspace's when omitted.
    resource_group: Option<ArmName>,
}

async fn read_dcr(
    context: &ToolContext,
    target: &Target<'_>,
    name: &ArmName,
    resource_group: &str,
) -> Result<DataCollectionRule, ToolError> {
    let arm = &context.services.arm;
    let url = arm.group_url(
        &target.workspace.subscription_id,
        resource_group,
        GroupResource::DataCollectionRule(name),
    );
    arm.find(target.tenant_id(), url).await?.ok_or_else(|| ToolError::NotFound(format!("no data collection rule '{name}' in resource group {resource_group}; sentinel_list_dcrs lists them")))
}

struct GetDcr;

#[derive(Serialize, JsonSchema)]
struct GetDcrOutput {
    tenant_id: TenantId,
    summary: DcrInfo,
    /// The whole rule: stream declarations, data sources, destinations, data flows.
    rule: DataCollectionRule,
}

impl Summary for GetDcrOutput {
    fn summary(&self) -> String {
        let outputs: Vec<&str> = self
            .summary
            .flows
            .iter()
            .filter_map(|f| f.output_stream.as_deref())
            .collect();
        format!(
            "DCR {} ({}) → {}",
            self.summary.name,
            self.summary.immutable_id.as_deref().unwrap_or("?"),
            outputs.join(", ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for GetDcr {
    type Params = DcrParams;
    type Output = GetDcrOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_get_dcr",
            title: "Get a data collection rule",
            description: "Gets one data collection rule in full: streams, data sources, destinations, data flows \
                         with transformations, endpoint, immutable id.",
            toolset: Toolset::SentinelDataCollection,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: DcrParams,
    ) -> Result<GetDcrOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let rule = read_dcr(
            context,
            &target,
            &params.name,
            group(&target, params.resource_group.as_ref()),
        )
        .await?;
        Ok(GetDcrOutput {
            tenant_id: target.tenant_id().clone(),
            summary: DcrInfo::new(&rule, &target.workspace.resource_path()),
            rule,
        })
    }
}

/// A transformation must read from `source` and be a query, not a control command.
fn checked_transform(transform: Option<String>) -> Result<String, ToolError> {
    let transform = transform.unwrap_or_else(|| "source".into());
    let checked = kql_guard::check_query(&transform)
        .map_err(|r| ToolError::invalid(format!("transform_kql: {r}")))?
        .to_string();
    if !checked.starts_with("source") {
        return Err(ToolError::invalid(format!(
            "transform_kql must start with 'source' (the incoming stream), e.g. source | extend TimeGenerated = now(); got '{checked}'"
        )));
    }
    Ok(checked)
}

/// Stream declaration types for a table's column types.
fn stream_type(table_type: &str) -> &'static str {
    match table_type.to_ascii_lowercase().as_str() {
        "int" => "int",
        "long" => "long",
        "real" => "real",
        "boolean" | "bool" => "boolean",
        "datetime" => "datetime",
        "dynamic" => "dynamic",
        _ => "string",
    }
}

struct CreateDcr;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateDcrParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Name of the new rule (created in the workspace's resource group).
    name: ArmName,
    /// The custom table (ending _CL) the data goes to; it must exist (sentinel_create_table).
    table: ArmName,
    /// KQL applied to incoming data, starting with `source` (default: `source`, unchanged).
    transform_kql: Option<String>,
    /// Name of the data collection endpoint (in the workspace's resource group) to receive data; without it the rule gets
    /// its own ingestion endpoint (kind Direct).
    endpoint: Option<ArmName>,
    description: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct CreateDcrOutput {
    tenant_id: TenantId,
    workspace: String,
    rule: DcrInfo,
    /// The stream clients send to.
    stream: String,
    /// Where clients send data: POST this URL with a JSON array body and a token for https://monitor.azure.com.
    ingestion_url: Option<String>,
}

impl Summary for CreateDcrOutput {
    fn summary(&self) -> String {
        format!(
            "created DCR {} ({}) for stream {}",
            self.rule.name,
            self.rule.immutable_id.as_deref().unwrap_or("?"),
            self.stream
        )
    }
}

#[async_trait::async_trait]
impl Tool for CreateDcr {
    type Params = CreateDcrParams;
    type Output = CreateDcrOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_create_dcr",
            title: "Create a data collection rule for a custom table",
            description: "Creates a data collection rule routing a custom stream through a KQL transformation into \
                         an existing _CL table, via a DCE or its own endpoint; returns the ingestion URL.",
            toolset: Toolset::SentinelDataCollection,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: CreateDcrParams,
    ) -> Result<CreateDcrOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let table_name = params.table.as_str();
        let base = table_name.strip_suffix("_CL").ok_or_else(|| {
            ToolError::invalid(format!(
                "table must be a custom table ending _CL; '{table_name}' is not"
            ))
        })?;
        let transform = checked_transform(params.transform_kql)?;
        let arm = &context.services.arm;
        let ws = target.workspace;
        let table: LogTable = arm.find(target.tenant_id(), arm.workspace_url(ws, WorkspaceResource::Table(&params.table))).await?.ok_or_else(|| {
            ToolError::NotFound(format!("no table {table_name} in workspace {}; create it first with sentinel_create_table", ws.workspace_name))
        })?;
        let columns: Vec<Value> = table
            .properties
            .schema
            .map(|s| s.columns)
            .unwrap_or_default()
            .iter()
            .map(|c| json!({"name": c.name, "type": stream_type(&c.column_type)}))
            .collect();
        if columns.is_empty() {
            return Err(ToolError::invalid(format!(
                "table {table_name} has no columns of its own to declare a stream from"
            )));
        }
        let url = arm.group_url(
            &ws.subscription_id,
            &ws.resource_group,
            GroupResource::DataCollectionRule(&params.name),
        );
        if arm
            .find::<Value>(target.tenant_id(), url.clone())
            .await?
            .is_some()
        {
            return Err(ToolError::Conflict(format!(
                "a data collection rule named {} already exists in resource group {}",
                params.name, ws.resource_group
            )));
        }
        let endpoint = match &params.endpoint {
            Some(name) => {
                let dce_url = arm.group_url(
                    &ws.subscription_id,
                    &ws.resource_group,
                    GroupResource::DataCollectionEndpoint(name),
                );
                let dce: DataCollectionEndpoint = arm
                    .find(target.tenant_id(), dce_url)
                    .await?
                    .ok_or_else(|| ToolError::NotFound(format!("no data collection endpoint '{name}' in resource group {}; sentinel_list_dces lists them", ws.resource_group)))?;
                Some(dce)
            }
            None => None,
        };
        let workspace: Workspace = arm
            .get(
                target.tenant_id(),
                arm.workspace_url(ws, WorkspaceResource::Workspace),
            )
            .await?;
        let stream = format!("Custom-{base}");
        let mut properties = json!({
            "streamDeclarations": {stream.clone(): {"columns": columns}},
            "destinations": {"logAnalytics": [{"workspaceResourceId": ws.resource_path(), "name": DESTINATION}]},
            "dataFlows": [{"streams": [stream], "destinations": [DESTINATION], "transformKql": transform, "outputStream": format!("Custom-{table_name}")}],
        });
        if let Some(description) = params.description {
            properties["description"] = json!(super::one_line("description", &description, 1024)?);
        }
        // `TrackedResource.location` is required.
        let location = workspace.location.ok_or_else(|| {
            ToolError::Failed(format!("workspace {} has no location", ws.workspace_name))
        })?;
        let mut body = json!({"location": location, "properties": properties});
        match &endpoint {
            Some(dce) => body["properties"]["dataCollectionEndpointId"] = json!(dce.id),
            None => body["kind"] = json!("Direct"),
        }
        let created: DataCollectionRule = arm.put(target.tenant_id(), url, &body).await?;
        let receiver = endpoint
            .and_then(|dce| dce.properties.logs_ingestion.endpoint)
            .or_else(|| created.properties.endpoints.logs_ingestion.clone());
        let ingestion_url = match (receiver, &created.properties.immutable_id) {
            (Some(host), Some(immutable)) => Some(format!(
                "{host}/dataCollectionRules/{immutable}/streams/{stream}?api-version={INGESTION_API_VERSION}"
            )),
            _ => None,
        };
        Ok(CreateDcrOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: ws.workspace_name.clone(),
            rule: DcrInfo::new(&created, &ws.resource_path()),
            stream,
            ingestion_url,
        })
    }
}

struct UpdateTransformation;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTransformationParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The data collection rule's name.
    name: ArmName,
    /// Its resource group; the workspace's when omitted.
    resource_group: Option<ArmName>,
    /// The new transformation, starting with `source`.
    transform_kql: String,
    /// Which data flow to change, by its output stream (e.g. Custom-AppAudit_CL); needed only when the rule has several.
    output_stream: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct UpdateTransformationOutput {
    tenant_id: TenantId,
    rule: String,
    output_stream: Option<String>,
    before: Option<String>,
    after: String,
    /// False when the flow already had this transformation (nothing was sent).
    changed: bool,
}

impl Summary for UpdateTransformationOutput {
    fn summary(&self) -> String {
        let flow = self.output_stream.as_deref().unwrap_or("its data flow");
        if self.changed {
            format!(
                "DCR {} now transforms {flow} with: {}",
                self.rule, self.after
            )
        } else {
            format!("DCR {} already transforms {flow} that way", self.rule)
        }
    }
}

#[async_trait::async_trait]
impl Tool for UpdateTransformation {
    type Params = UpdateTransformationParams;
    type Output = UpdateTransformationOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_update_dcr_transformation",
            title: "Change a data collection rule's transformation",
            description: "Replaces the KQL transformation of one data flow of a data collection rule, written back \
                         with the etag read so a concurrent change is reported, not overwritten.",
            toolset: Toolset::SentinelDataCollection,
            effect: Effect::Write { idempotent: true },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: UpdateTransformationParams,
    ) -> Result<UpdateTransformationOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let transform = checked_transform(Some(params.transform_kql))?;
        let resource_group = group(&target, params.resource_group.as_ref());
        let current = read_dcr(context, &target, &params.name, resource_group).await?;
        let flows = &current.properties.data_flows;
        let index = match &params.output_stream {
            Some(wanted) => flows
                .iter()
                .position(|f| {
                    f.output_stream
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case(wanted.trim()))
                })
                .ok_or_else(|| {
                    let known: Vec<&str> = flows
                        .iter()
                        .filter_map(|f| f.output_stream.as_deref())
                        .collect();
                    ToolError::invalid(format!(
                        "rule {} has no data flow to '{wanted}'; its flows go to: {}",
                        params.name,
                        known.join(", ")
                    ))
                })?,
            None if flows.len() == 1 => 0,
            None => {
                let known: Vec<&str> = flows
                    .iter()
                    .filter_map(|f| f.output_stream.as_deref())
                    .collect();
                return Err(ToolError::invalid(format!(
                    "rule {} has {} data flows; name one in output_stream: {}",
                    params.name,
                    flows.len(),
                    known.join(", ")
                )));
            }
        };
        let arm = &context.services.arm;
        let url = arm.group_url(
            &target.workspace.subscription_id,
            resource_group,
            GroupResource::DataCollectionRule(&params.name),
        );
        let wanted = transform.clone();
        let updated = arm
            .update(
                target.tenant_id(),
                url,
                &format!("data collection rule {}", params.name),
                |rule| {
                    let flow = &mut rule["properties"]["dataFlows"][index];
                    if flow["transformKql"] == json!(wanted) {
                        return false;
                    }
                    flow["transformKql"] = json!(wanted);
                    strip_read_only(rule);
                    true
                },
            )
            .await?;
        let before_flow = &updated.before["properties"]["dataFlows"][index];
        Ok(UpdateTransformationOutput {
            tenant_id: target.tenant_id().clone(),
            rule: params.name.to_string(),
            output_stream: before_flow["outputStream"].as_str().map(str::to_string),
            before: before_flow["transformKql"].as_str().map(str::to_string),
            after: transform,
            changed: updated.changed,
        })
    }
}

#[derive(Serialize, JsonSchema)]
struct DceInfo {
    name: String,
    resource_group: String,
    location: Option<String>,
    immutable_id: Option<String>,
    /// Where clients send logs.
    logs_ingestion: Option<String>,
    public_network_access: Option<String>,
    description: Option<String>,
}

impl From<&DataCollectionEndpoint> for DceInfo {
    fn from(dce: &DataCollectionEndpoint) -> Self {
        let p = &dce.properties;
        Self {
            name: dce.name.clone(),
            resource_group: resource_group_of(&dce.id),
            location: dce.location.clone(),
            immutable_id: p.immutable_id.clone(),
            logs_ingestion: p.logs_ingestion.endpoint.clone(),
            public_network_access: p.network_acls.public_network_access.clone(),
            description: p.description.clone(),
        }
    }
}

struct ListDces;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListDcesParams {
    tenant_id: Option<TenantId>,
    /// Workspace (from sentinel_list_workspaces). Its subscription is listed.
    workspace: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ListDcesOutput {
    tenant_id: TenantId,
    subscription_id: String,
    endpoints: Vec<DceInfo>,
}

impl Summary for ListDcesOutput {
    fn summary(&self) -> String {
        let names: Vec<&str> = self.endpoints.iter().map(|e| e.name.as_str()).collect();
        format!(
            "{} data collection endpoints: {}",
            names.len(),
            names.join(", ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListDces {
    type Params = ListDcesParams;
    type Output = ListDcesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_dces",
            title: "List data collection endpoints",
            description: "Lists the data collection endpoints in a Sentinel workspace's subscription: ingestion URL, network access, immutable id.",
            toolset: Toolset::SentinelDataCollection,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListDcesParams,
    ) -> Result<ListDcesOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let arm = &context.services.arm;
        let sub = &target.workspace.subscription_id;
        let all = arm
            .list::<DataCollectionEndpoint>(
                target.tenant_id(),
                ListPosition::start(
                    arm.subscription_url(Some(sub), SubscriptionResource::DataCollectionEndpoints),
                ),
                MAX_READ,
            )
            .await?;
        Ok(ListDcesOutput {
            tenant_id: target.tenant_id().clone(),
            subscription_id: sub.clone(),
            endpoints: all.items.iter().map(DceInfo::from).collect(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
enum NetworkAccess {
    Enabled,
    Disabled,
}

struct CreateDce;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateDceParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// Name of the new endpoint (created in the workspace's resource group and region).
    name: ArmName,
    /// Enabled (default) accepts data from the internet; Disabled only through private links.
    public_network_access: Option<NetworkAccess>,
    description: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct CreateDceOutput {
    tenant_id: TenantId,
    endpoint: DceInfo,
}

impl Summary for CreateDceOutput {
    fn summary(&self) -> String {
        format!(
            "created DCE {} receiving at {}",
            self.endpoint.name,
            self.endpoint.logs_ingestion.as_deref().unwrap_or("?")
        )
    }
}

#[async_trait::async_trait]
impl Tool for CreateDce {
    type Params = CreateDceParams;
    type Output = CreateDceOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_create_dce",
            title: "Create a data collection endpoint",
            description: "Creates a data collection endpoint in the workspace's resource group and region; an \
                         existing name is refused.",
            toolset: Toolset::SentinelDataCollection,
            effect: Effect::Write { idempotent: false },
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: CreateDceParams,
    ) -> Result<CreateDceOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let arm = &context.services.arm;
        let ws = target.workspace;
        let url = arm.group_url(
            &ws.subscription_id,
            &ws.resource_group,
            GroupResource::DataCollectionEndpoint(&params.name),
        );
        if arm
            .find::<Value>(target.tenant_id(), url.clone())
            .await?
            .is_some()
        {
            return Err(ToolError::Conflict(format!(
                "a data collection endpoint named {} already exists in resource group {}",
                params.name, ws.resource_group
            )));
        }
        let workspace: Workspace = arm
            .get(
                target.tenant_id(),
                arm.workspace_url(ws, WorkspaceResource::Workspace),
            )
            .await?;
        // `TrackedResource.location` is required.
        let location = workspace.location.ok_or_else(|| {
            ToolError::Failed(format!("workspace {} has no location", ws.workspace_name))
        })?;
        let mut body = json!({
            "location": location,
            "properties": {"networkAcls": {"publicNetworkAccess": params.public_network_access.unwrap_or(NetworkAccess::Enabled)}},
        });
        if let Some(description) = params.description {
            body["properties"]["description"] =
                json!(super::one_line("description", &description, 1024)?);
        }
        let created: DataCollectionEndpoint = arm.put(target.tenant_id(), url, &body).await?;
        Ok(CreateDceOutput {
            tenant_id: target.tenant_id().clone(),
            endpoint: DceInfo::from(&created),
        })
    }
}

struct ListAssociations;

#[derive(Serialize, JsonSchema)]
struct AssociationInfo {
    name: String,
    /// The associated resource (a machine, usually).
    resource_id: String,
    data_collection_rule_id: Option<String>,
    data_collection_endpoint_id: Option<String>,
    description: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ListAssociationsOutput {
    tenant_id: TenantId,
    rule: String,
    associations: Vec<AssociationInfo>,
}

impl Summary for ListAssociationsOutput {
    fn summary(&self) -> String {
        let resources: Vec<&str> = self
            .associations
            .iter()
            .map(|a| a.resource_id.rsplit('/').next().unwrap_or_default())
            .take(20)
            .collect();
        format!(
            "DCR {} is associated with {} resources: {}",
            self.rule,
            self.associations.len(),
            resources.join(", ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListAssociations {
    type Params = DcrParams;
    type Output = ListAssociationsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_dcr_associations",
            title: "List a data collection rule's associations",
            description: "Lists the machines and other resources a data collection rule is associated with (the sources it collects from).",
            toolset: Toolset::SentinelDataCollection,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: DcrParams,
    ) -> Result<ListAssociationsOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let resource_group = group(&target, params.resource_group.as_ref());
        read_dcr(context, &target, &params.name, resource_group).await?;
        let arm = &context.services.arm;
        let url = arm.group_url(
            &target.workspace.subscription_id,
            resource_group,
            GroupResource::DataCollectionRuleAssociations(&params.name),
        );
        let all = arm
            .list::<DcrAssociation>(target.tenant_id(), ListPosition::start(url), MAX_READ)
            .await?;
        let associations = all
            .items
            .into_iter()
            .map(|a| AssociationInfo {
                resource_id: a
                    .id
                    .split("/providers/Microsoft.Insights/dataCollectionRuleAssociations/")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                name: a.name,
                data_collection_rule_id: a.properties.data_collection_rule_id,
                data_collection_endpoint_id: a.properties.data_collection_endpoint_id,
                description: a.properties.description,
            })
            .collect();
        Ok(ListAssociationsOutput {
            tenant_id: target.tenant_id().clone(),
            rule: params.name.to_string(),
            associations,
        })
    }
}

/// Removes what `DataCollectionRuleResource` marks `readOnly` from a rule read back for a PUT:
/// `etag` and `systemData`, and `immutableId`, `metadata`, `endpoints`, `ingestionQuotas`,
/// `provisioningState` and each Log Analytics destination's `workspaceId` (dataCollection.json
/// 2024-03-11). The etag still guards the write as `If-Match`, which the definition does not
/// declare: a best-effort check, not a documented guarantee.
fn strip_read_only(rule: &mut Value) {
    if let Some(top) = rule.as_object_mut() {
        top.remove("etag");
        top.remove("systemData");
    }
    if let Some(p) = rule["properties"].as_object_mut() {
        for key in [
            "immutableId",
            "metadata",
            "endpoints",
            "ingestionQuotas",
            "provisioningState",
        ] {
            p.remove(key);
        }
    }
    if let Some(destinations) = rule["properties"]["destinations"]["logAnalytics"].as_array_mut() {
        for destination in destinations {
            if let Some(d) = destination.as_object_mut() {
                d.remove("workspaceId");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::Method;
    use serde_json::json;

    use super::*;
    use crate::clients::arm::OperationOutcome;
    use crate::tenants::WorkspaceConfig;
    use crate::testing::Harness;

    const WORKSPACE: &str = "law-contoso-sentinel";
    const SEEDED: &str = "dcr-windows-security-events";

    /// Column types of Log Analytics tables (`ColumnTypeEnum`, Tables.json 2026-03-01) and the
    /// column types a stream declaration accepts (`KnownColumnDefinitionType`,
    /// dataCollection.json 2024-03-11), as Microsoft defines them.
    const TABLE_TYPES: &[&str] = &[
        "string", "int", "long", "real", "boolean", "dateTime", "guid", "dynamic",
    ];
    const STREAM_TYPES: &[&str] = &[
        "string", "int", "long", "real", "boolean", "datetime", "dynamic",
    ];

    #[test]
    fn every_table_column_type_becomes_a_type_stream_declarations_accept() {
        for table_type in TABLE_TYPES {
            let declared = stream_type(table_type);
            assert!(
                STREAM_TYPES.contains(&declared),
                "{table_type} → {declared}"
            );
        }
        // The two that differ: a stream has no guid type, and spells datetime in lower case.
        assert_eq!(stream_type("guid"), "string");
        assert_eq!(stream_type("dateTime"), "datetime");
    }

    #[test]
    fn a_transformation_must_read_the_incoming_stream_and_be_a_query() {
        assert_eq!(checked_transform(None).expect("the default"), "source");
        assert_eq!(
            checked_transform(Some("  source | where Level != 'Debug'\n".into())).expect("valid"),
            "source | where Level != 'Debug'"
        );
        for (transform, expected) in [
            ("AppAudit_CL | take 1", "must start with 'source'"),
            (".drop table AppAudit_CL", "transform_kql: "),
            (
                "source | take 1; .drop table AppAudit_CL",
                "transform_kql: ",
            ),
            ("   ", "transform_kql: "),
        ] {
            let message = checked_transform(Some(transform.into()))
                .expect_err("refused")
                .to_string();
            assert!(message.contains(expected), "{transform:?}: {message}");
        }
    }

    #[test]
    fn a_rule_read_back_for_a_put_loses_exactly_what_the_definition_marks_read_only() {
        let mut rule = json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/r",
            "name": "r",
            "location": "westeurope",
            "kind": "Direct",
            "etag": "\"0b00\"",
            "tags": {"team": "soc"},
            "systemData": {"createdBy": "someone"},
            "properties": {
                "description": "kept",
                "immutableId": "dcr-0123",
                "dataCollectionEndpointId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionEndpoints/e",
                "metadata": {"provisionedBy": "x"},
                "endpoints": {"logsIngestion": "https://r.westeurope-1.ingest.monitor.azure.com"},
                "ingestionQuotas": {"maxRequestsPerMinute": 1},
                "provisioningState": "Succeeded",
                "streamDeclarations": {"Custom-A": {"columns": [{"name": "TimeGenerated", "type": "datetime"}]}},
                "dataSources": {"syslog": []},
                "destinations": {"logAnalytics": [
                    {"workspaceResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w",
                     "workspaceId": "11111111-2222-4333-8444-555555555555", "name": "sentinel"}
                ]},
                "dataFlows": [{"streams": ["Custom-A"], "destinations": ["sentinel"], "transformKql": "source", "outputStream": "Custom-A_CL"}],
            },
        });
        let original = rule.clone();
        strip_read_only(&mut rule);
        let mut expected = original;
        expected.as_object_mut().expect("object").remove("etag");
        expected
            .as_object_mut()
            .expect("object")
            .remove("systemData");
        let properties = expected["properties"].as_object_mut().expect("properties");
        for key in [
            "immutableId",
            "metadata",
            "endpoints",
            "ingestionQuotas",
            "provisioningState",
        ] {
            properties.remove(key);
        }
        expected["properties"]["destinations"]["logAnalytics"][0]
            .as_object_mut()
            .expect("destination")
            .remove("workspaceId");
        assert_eq!(rule, expected);
    }

    fn workspace(harness: &Harness, name: &str) -> (TenantId, WorkspaceConfig) {
        let tenant: TenantId = harness.contoso().parse().expect("a tenant id");
        let config = harness
            .context
            .services
            .tenants
            .resolve(Some(&tenant))
            .expect("allowed");
        let workspace = config
            .workspaces
            .iter()
            .find(|w| w.workspace_name == name)
            .expect("configured")
            .clone();
        (tenant, workspace)
    }

    /// A custom table made directly through ARM, as sentinel_create_table would make it.
    async fn create_table(harness: &Harness, name: &str, columns: Value) {
        let (tenant, ws) = workspace(harness, WORKSPACE);
        let arm = &harness.context.services.arm;
        let table: ArmName = name.parse().expect("a table name");
        let outcome = arm
            .run_operation(
                &tenant,
                Method::PUT,
                arm.workspace_url(&ws, WorkspaceResource::Table(&table)),
                Some(
                    &json!({"properties": {"schema": {"name": name, "columns": columns},
                                            "plan": "Analytics"}}),
                ),
                name,
                Duration::from_secs(30),
            )
            .await
            .expect("the table is created");
        assert!(
            matches!(outcome, OperationOutcome::Succeeded { .. }),
            "{outcome:?}"
        );
    }

    /// A rule written directly through ARM (by someone else, or another tool).
    async fn put_rule(harness: &Harness, name: &str, properties: Value) {
        let (tenant, ws) = workspace(harness, WORKSPACE);
        let arm = &harness.context.services.arm;
        let rule: ArmName = name.parse().expect("a rule name");
        arm.put::<Value>(
            &tenant,
            arm.group_url(
                &ws.subscription_id,
                &ws.resource_group,
                GroupResource::DataCollectionRule(&rule),
            ),
            &json!({"location": "westeurope", "properties": properties}),
        )
        .await
        .expect("the rule is written");
    }

    /// Requests the sandbox answered with `method` on routes containing `fragment`.
    fn requests(harness: &Harness, method: &str, fragment: &str) -> u64 {
        harness
            .sandbox
            .stats()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path_template.contains(fragment))
            .map(|r| r.count)
            .sum()
    }

    fn all_requests(harness: &Harness) -> u64 {
        harness
            .sandbox
            .stats()
            .requests
            .iter()
            .map(|r| r.count)
            .sum()
    }

    #[tokio::test]
    async fn a_rule_for_a_custom_table_declares_its_columns_and_gets_its_own_ingestion_url() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        create_table(
            &harness,
            "AppAudit_CL",
            json!([{"name": "TimeGenerated", "type": "dateTime"},
                   {"name": "RequestId", "type": "guid"},
                   {"name": "Allowed", "type": "boolean"},
                   {"name": "LatencyMs", "type": "real"},
                   {"name": "Bytes", "type": "long"},
                   {"name": "Details", "type": "dynamic"}]),
        )
        .await;
        let created = harness
            .ok(
                &CreateDcr,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dcr-app-audit",
                       "table": "AppAudit_CL", "description": "App audit events"}),
            )
            .await;
        let rule = &created["rule"];
        assert_eq!(rule["kind"], "Direct", "no endpoint named: {created}");
        assert_eq!(rule["sends_to_workspace"], true);
        assert_eq!(rule["resource_group"], "rg-sentinel-prod");
        assert_eq!(created["stream"], "Custom-AppAudit");
        assert_eq!(
            rule["flows"],
            json!([{"streams": ["Custom-AppAudit"], "output_stream": "Custom-AppAudit_CL",
                    "transform_kql": "source"}])
        );
        let host = rule["logs_ingestion"]
            .as_str()
            .expect("the rule's own endpoint");
        let immutable = rule["immutable_id"].as_str().expect("an immutable id");
        assert_eq!(
            created["ingestion_url"],
            format!(
                "{host}/dataCollectionRules/{immutable}/streams/Custom-AppAudit?api-version=2023-01-01"
            )
        );

        let read = harness
            .ok(
                &GetDcr,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dcr-app-audit"}),
            )
            .await;
        assert_eq!(
            read["rule"]["properties"]["streamDeclarations"]["Custom-AppAudit"]["columns"],
            json!([{"name": "TimeGenerated", "type": "datetime"},
                   {"name": "RequestId", "type": "string"},
                   {"name": "Allowed", "type": "boolean"},
                   {"name": "LatencyMs", "type": "real"},
                   {"name": "Bytes", "type": "long"},
                   {"name": "Details", "type": "dynamic"}]),
            "{read}"
        );
        assert_eq!(read["summary"]["description"], "App audit events");
    }

    #[tokio::test]
    async fn create_dcr_refuses_what_cannot_work_without_writing_anything() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let create = |extra: Value| {
            let mut arguments = json!({"tenant_id": tenant, "workspace": WORKSPACE,
                                       "name": "dcr-new", "table": "AppAudit_CL"});
            for (key, value) in extra.as_object().expect("object") {
                arguments[key] = value.clone();
            }
            arguments
        };
        // Refused from the arguments alone: nothing reaches Azure.
        let before = all_requests(&harness);
        for (extra, expected) in [
            (json!({"table": "SigninLogs"}), "'SigninLogs' is not"),
            (
                json!({"transform_kql": "AppAudit_CL | take 1"}),
                "must start with 'source'",
            ),
            (
                json!({"transform_kql": "source | take 1; .drop table SigninLogs"}),
                "transform_kql",
            ),
        ] {
            let message = harness.refusal(&CreateDcr, create(extra.clone())).await;
            assert!(message.contains(expected), "{extra}: {message}");
        }
        assert_eq!(all_requests(&harness), before, "nothing was sent");

        // Refused after reading: nothing is written.
        let message = harness.refusal(&CreateDcr, create(json!({}))).await;
        assert!(
            message.contains("AppAudit_CL") && message.contains("sentinel_create_table"),
            "{message}"
        );
        create_table(&harness, "AppAudit_CL", audit_columns()).await;
        for (extra, expected) in [
            (json!({"name": SEEDED}), "already exists"),
            (
                json!({"endpoint": "dce-nope"}),
                "no data collection endpoint 'dce-nope'",
            ),
            (
                json!({"description": "two\nlines"}),
                "description contains control characters",
            ),
        ] {
            let message = harness.refusal(&CreateDcr, create(extra.clone())).await;
            assert!(message.contains(expected), "{extra}: {message}");
        }
        assert_eq!(
            requests(&harness, "PUT", "dataCollectionRules"),
            0,
            "no rule was written"
        );
    }

    /// A custom stream (two columns) sent to this workspace's `outputs`, one flow each; no
    /// output stream where `outputs` is empty.
    fn custom_rule(workspace: String, outputs: &[&str]) -> Value {
        let flow = |output: Option<&str>| {
            let mut flow = json!({"streams": ["Custom-AppAudit"], "destinations": ["la"],
                                  "transformKql": "source"});
            if let Some(output) = output {
                flow["outputStream"] = json!(output);
            }
            flow
        };
        let flows: Vec<Value> = if outputs.is_empty() {
            vec![flow(None)]
        } else {
            outputs.iter().map(|o| flow(Some(o))).collect()
        };
        json!({
            "streamDeclarations": {"Custom-AppAudit": {"columns": [
                {"name": "TimeGenerated", "type": "datetime"}, {"name": "UserName", "type": "string"}]}},
            "destinations": {"logAnalytics": [{"workspaceResourceId": workspace, "name": "la"}]},
            "dataFlows": flows,
        })
    }

    fn audit_columns() -> Value {
        json!([{"name": "TimeGenerated", "type": "dateTime"}, {"name": "UserName", "type": "string"}])
    }

    #[tokio::test]
    async fn a_new_transformation_keeps_the_rest_of_the_rule_and_is_not_sent_twice() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        create_table(&harness, "AppAudit_CL", audit_columns()).await;
        harness
            .ok(
                &CreateDce,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dce-app"}),
            )
            .await;
        harness
            .ok(
                &CreateDcr,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dcr-app",
                       "table": "AppAudit_CL", "endpoint": "dce-app",
                       "description": "App audit events"}),
            )
            .await;
        let get = json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dcr-app"});
        let original = harness.ok(&GetDcr, get.clone()).await;
        let update = json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dcr-app",
                            "transform_kql": "source | where UserName != ''"});
        let changed = harness.ok(&UpdateTransformation, update.clone()).await;
        assert_eq!(
            changed,
            json!({"tenant_id": tenant, "rule": "dcr-app", "output_stream": "Custom-AppAudit_CL",
                   "before": "source", "after": "source | where UserName != ''", "changed": true})
        );
        let read = harness.ok(&GetDcr, get).await;
        let (was, now) = (&original["rule"]["properties"], &read["rule"]["properties"]);
        assert_eq!(
            now["dataFlows"][0]["transformKql"],
            "source | where UserName != ''"
        );
        for key in [
            "immutableId",
            "streamDeclarations",
            "destinations",
            "dataCollectionEndpointId",
            "description",
        ] {
            assert!(!was[key].is_null(), "{key} in {original}");
            assert_eq!(now[key], was[key], "{key} is kept");
        }

        let writes = requests(&harness, "PUT", "dataCollectionRules");
        let again = harness.ok(&UpdateTransformation, update).await;
        assert_eq!(again["changed"], false, "{again}");
        assert_eq!(
            requests(&harness, "PUT", "dataCollectionRules"),
            writes,
            "an unchanged transformation is not written again"
        );
    }

    /// The seeded rule collects Windows security events into `Microsoft-SecurityEvent`, a
    /// stream Microsoft Sentinel's AMA connector documents though the definition's extensible
    /// enums do not list it: Azure takes it, so a write of the rule as read must pass.
    #[tokio::test]
    async fn the_transformation_of_a_windows_security_events_rule_is_changed() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let update = json!({"tenant_id": tenant, "workspace": WORKSPACE,
                            "name": "dcr-windows-security-events",
                            "transform_kql": "source | where EventID != 4688"});
        let changed = harness.ok(&UpdateTransformation, update).await;
        assert_eq!(
            changed["output_stream"], "Microsoft-SecurityEvent",
            "{changed}"
        );
        assert_eq!(changed["changed"], true, "{changed}");
        let read = harness
            .ok(
                &GetDcr,
                json!({"tenant_id": tenant, "workspace": WORKSPACE,
                       "name": "dcr-windows-security-events"}),
            )
            .await;
        assert_eq!(
            read["rule"]["properties"]["dataFlows"][0]["transformKql"],
            "source | where EventID != 4688"
        );
    }

    #[tokio::test]
    async fn a_rule_with_several_flows_changes_only_the_one_named_by_its_output_stream() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let (_, ws) = workspace(&harness, WORKSPACE);
        create_table(&harness, "AppAudit_CL", audit_columns()).await;
        create_table(&harness, "AppAuditCopy_CL", audit_columns()).await;
        put_rule(
            &harness,
            "dcr-two-flows",
            custom_rule(
                ws.resource_path(),
                &["Custom-AppAudit_CL", "Custom-AppAuditCopy_CL"],
            ),
        )
        .await;
        let writes = requests(&harness, "PUT", "dataCollectionRules");
        let update = json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dcr-two-flows",
                            "transform_kql": "source | where UserName != ''"});
        let message = harness.refusal(&UpdateTransformation, update.clone()).await;
        assert!(
            message.contains("has 2 data flows")
                && message.contains("Custom-AppAudit_CL, Custom-AppAuditCopy_CL"),
            "{message}"
        );
        let mut wrong = update.clone();
        wrong["output_stream"] = json!("Custom-Other_CL");
        let message = harness.refusal(&UpdateTransformation, wrong).await;
        assert!(
            message.contains("no data flow to 'Custom-Other_CL'")
                && message.contains("Custom-AppAudit_CL, Custom-AppAuditCopy_CL"),
            "{message}"
        );
        assert_eq!(requests(&harness, "PUT", "dataCollectionRules"), writes);

        // Stream names are matched as ARM matches names: case and outer spaces do not matter.
        let mut named = update;
        named["output_stream"] = json!(" custom-appauditcopy_cl ");
        let changed = harness.ok(&UpdateTransformation, named).await;
        assert_eq!(
            changed["output_stream"], "Custom-AppAuditCopy_CL",
            "{changed}"
        );
        let read = harness
            .ok(
                &GetDcr,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dcr-two-flows"}),
            )
            .await;
        let transforms: Vec<&Value> = read["summary"]["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .map(|f| &f["transform_kql"])
            .collect();
        assert_eq!(
            transforms,
            [&json!("source"), &json!("source | where UserName != ''")]
        );
    }

    #[tokio::test]
    async fn the_listing_keeps_to_rules_sending_to_the_workspace_unless_all_are_asked_for() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let (_, prod) = workspace(&harness, WORKSPACE);
        let (_, dev) = workspace(&harness, "law-contoso-dev");
        // In this workspace's subscription, but sending elsewhere.
        put_rule(
            &harness,
            "dcr-to-dev",
            custom_rule(dev.resource_path(), &[]),
        )
        .await;
        // ARM resource ids are case-insensitive.
        put_rule(
            &harness,
            "dcr-upper-case",
            custom_rule(prod.resource_path().to_uppercase(), &[]),
        )
        .await;
        let names = |listed: &Value| -> Vec<(String, bool)> {
            let mut names: Vec<(String, bool)> = listed["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .map(|r| {
                    (
                        r["name"].as_str().expect("name").to_owned(),
                        r["sends_to_workspace"].as_bool().expect("flag"),
                    )
                })
                .collect();
            names.sort();
            names
        };
        let own = harness
            .ok(
                &ListDcrs,
                json!({"tenant_id": tenant, "workspace": WORKSPACE}),
            )
            .await;
        assert_eq!(
            names(&own),
            [
                ("dcr-upper-case".to_owned(), true),
                (SEEDED.to_owned(), true)
            ]
        );
        let all = harness
            .ok(
                &ListDcrs,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "all": true}),
            )
            .await;
        assert_eq!(
            names(&all),
            [
                ("dcr-to-dev".to_owned(), false),
                ("dcr-upper-case".to_owned(), true),
                (SEEDED.to_owned(), true)
            ]
        );
    }

    #[tokio::test]
    async fn an_endpoint_is_made_in_the_workspace_region_and_group_and_never_replaced() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let create = json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dce-app",
                            "description": "App telemetry"});
        let created = harness.ok(&CreateDce, create.clone()).await;
        let endpoint = &created["endpoint"];
        assert_eq!(endpoint["location"], "westeurope", "{created}");
        assert_eq!(endpoint["resource_group"], "rg-sentinel-prod");
        assert_eq!(endpoint["public_network_access"], "Enabled");
        assert_eq!(endpoint["description"], "App telemetry");
        assert!(
            endpoint["logs_ingestion"]
                .as_str()
                .is_some_and(|url| url.starts_with("https://dce-app-")),
            "{created}"
        );
        let listed = harness
            .ok(
                &ListDces,
                json!({"tenant_id": tenant, "workspace": WORKSPACE}),
            )
            .await;
        assert!(
            listed["endpoints"]
                .as_array()
                .expect("endpoints")
                .iter()
                .any(|e| e == endpoint),
            "{listed}"
        );

        let writes = requests(&harness, "PUT", "dataCollectionEndpoints");
        let message = harness.refusal(&CreateDce, create).await;
        assert!(
            message.contains("dce-app already exists in resource group rg-sentinel-prod"),
            "{message}"
        );
        let message = harness
            .refusal(
                &CreateDce,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dce-other",
                       "description": "two\nlines"}),
            )
            .await;
        assert!(message.contains("one line"), "{message}");
        assert_eq!(
            requests(&harness, "PUT", "dataCollectionEndpoints"),
            writes,
            "nothing was written"
        );
    }

    #[tokio::test]
    async fn associations_name_the_machines_and_an_unknown_rule_is_refused_before_listing() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let listed = harness
            .ok(
                &ListAssociations,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": SEEDED}),
            )
            .await;
        let associations = listed["associations"].as_array().expect("associations");
        assert!(!associations.is_empty(), "{listed}");
        for association in associations {
            let resource = association["resource_id"].as_str().expect("resource");
            assert!(
                resource.contains("/providers/Microsoft.Compute/virtualMachines/")
                    && !resource.contains("dataCollectionRuleAssociations"),
                "{association}"
            );
            assert!(
                association["data_collection_rule_id"]
                    .as_str()
                    .is_some_and(|id| id.ends_with(&format!("/dataCollectionRules/{SEEDED}"))),
                "{association}"
            );
        }

        let lists = requests(&harness, "GET", "associations");
        let message = harness
            .refusal(
                &ListAssociations,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "name": "dcr-nope"}),
            )
            .await;
        assert!(
            message
                .contains("no data collection rule 'dcr-nope' in resource group rg-sentinel-prod"),
            "{message}"
        );
        assert_eq!(requests(&harness, "GET", "associations"), lists);
    }
}
