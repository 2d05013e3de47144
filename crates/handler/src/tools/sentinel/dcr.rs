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
