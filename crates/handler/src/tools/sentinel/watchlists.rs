//! Sentinel watchlists: list them, and page through one watchlist's items.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{page, target};
use crate::clients::arm::{ArmName, Watchlist, WatchlistItem, WorkspaceResource};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::ListPosition;
use crate::tenants::TenantId;
use crate::tools::args::{self, Limit};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(ListWatchlists).tool(GetWatchlistItems)
}

const MAX_WATCHLISTS: usize = 1000;

struct ListWatchlists;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListWatchlistsParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct WatchlistInfo {
    /// The alias KQL uses: `_GetWatchlist('alias')`.
    alias: String,
    display_name: Option<String>,
    description: Option<String>,
    /// The column that identifies an item.
    search_key: Option<String>,
    provider: Option<String>,
    source: Option<String>,
    created: Option<String>,
    updated: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ListWatchlistsOutput {
    tenant_id: TenantId,
    workspace: String,
    watchlists: Vec<WatchlistInfo>,
}

impl Summary for ListWatchlistsOutput {
    fn summary(&self) -> String {
        let aliases: Vec<&str> = self.watchlists.iter().map(|w| w.alias.as_str()).collect();
        format!(
            "{} watchlists in {}: {}",
            aliases.len(),
            self.workspace,
            aliases.join(", ")
        )
    }
}

#[async_trait::async_trait]
impl Tool for ListWatchlists {
    type Params = ListWatchlistsParams;
    type Output = ListWatchlistsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_list_watchlists",
            title: "List Sentinel watchlists",
            description: "Lists the watchlists of a Sentinel workspace: alias (as _GetWatchlist uses it), name, description, search key, source.",
            toolset: Toolset::SentinelQuery,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: ListWatchlistsParams,
    ) -> Result<ListWatchlistsOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let arm = &context.services.arm;
        let all = arm
            .list::<Watchlist>(
                target.tenant_id(),
                ListPosition::start(
                    arm.workspace_url(target.workspace, WorkspaceResource::Watchlists),
                ),
                MAX_WATCHLISTS,
            )
            .await?;
        let watchlists = all
            .items
            .into_iter()
            .map(|w| {
                let p = w.properties;
                WatchlistInfo {
                    alias: p.watchlist_alias.unwrap_or(w.name),
                    display_name: p.display_name,
                    description: p.description,
                    search_key: p.items_search_key,
                    provider: p.provider,
                    source: p.source,
                    created: p.created.map(args::rfc3339),
                    updated: p.updated.map(args::rfc3339),
                }
            })
            .collect();
        Ok(ListWatchlistsOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            watchlists,
        })
    }
}

struct GetWatchlistItems;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetWatchlistItemsParams {
    tenant_id: Option<TenantId>,
    workspace: Option<String>,
    /// The watchlist alias (from sentinel_list_watchlists).
    alias: ArmName,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<50, 1000>,
    /// `next_cursor` from a previous call for the same watchlist.
    cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ItemInfo {
    item_id: String,
    /// The item's columns and values.
    values: Map<String, Value>,
    updated: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct GetWatchlistItemsOutput {
    tenant_id: TenantId,
    workspace: String,
    alias: String,
    items: Vec<ItemInfo>,
    /// Present when more items exist: pass it as `cursor` to get the next ones.
    next_cursor: Option<String>,
}

impl Summary for GetWatchlistItemsOutput {
    fn summary(&self) -> String {
        let more = if self.next_cursor.is_some() {
            "; more (use next_cursor)"
        } else {
            ""
        };
        format!(
            "{} items of watchlist {}{more}",
            self.items.len(),
            self.alias
        )
    }
}

#[async_trait::async_trait]
impl Tool for GetWatchlistItems {
    type Params = GetWatchlistItemsParams;
    type Output = GetWatchlistItemsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sentinel_get_watchlist_items",
            title: "Get a Sentinel watchlist's items",
            description: "Returns the items of one watchlist, each with its columns and values.",
            toolset: Toolset::SentinelQuery,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: GetWatchlistItemsParams,
    ) -> Result<GetWatchlistItemsOutput, ToolError> {
        let target = target(
            context,
            params.tenant_id.as_ref(),
            params.workspace.as_deref(),
        )?;
        let limit = params.limit.get();
        let arm = &context.services.arm;
        if params.cursor.is_none() {
            let url = arm.workspace_url(
                target.workspace,
                WorkspaceResource::Watchlist(&params.alias),
            );
            if arm.find::<Value>(target.tenant_id(), url).await?.is_none() {
                return Err(ToolError::NotFound(format!(
                    "no watchlist '{}' in workspace {}; sentinel_list_watchlists lists them",
                    params.alias, target.workspace.workspace_name
                )));
            }
        }
        let start = || {
            Ok(arm.workspace_url(
                target.workspace,
                WorkspaceResource::WatchlistItems(&params.alias),
            ))
        };
        let (items, next_cursor) = page::<WatchlistItem>(
            context,
            target.tenant_id(),
            start,
            params.cursor.as_deref(),
            limit,
        )
        .await?;
        Ok(GetWatchlistItemsOutput {
            tenant_id: target.tenant_id().clone(),
            workspace: target.workspace.workspace_name.clone(),
            alias: params.alias.to_string(),
            items: items
                .into_iter()
                .map(|i| ItemInfo {
                    item_id: i.name,
                    values: i.properties.items_key_value,
                    updated: i.properties.updated.map(args::rfc3339),
                })
                .collect(),
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    const WORKSPACE: &str = "law-contoso-sentinel";

    #[tokio::test]
    async fn every_listed_watchlist_reads_page_by_page_to_its_end() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        let listed = harness
            .ok(
                &ListWatchlists,
                json!({"tenant_id": tenant, "workspace": WORKSPACE}),
            )
            .await;
        let watchlists = listed["watchlists"].as_array().expect("watchlists");
        assert!(!watchlists.is_empty(), "{listed}");
        for watchlist in watchlists {
            let alias = watchlist["alias"].as_str().expect("alias");
            let mut cursor: Option<String> = None;
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..50 {
                let page = harness
                    .ok(
                        &GetWatchlistItems,
                        json!({"tenant_id": tenant, "workspace": WORKSPACE, "alias": alias, "limit": 2,
                               "cursor": cursor}),
                    )
                    .await;
                for item in page["items"].as_array().expect("items") {
                    let id = item["item_id"].as_str().expect("id").to_owned();
                    assert!(seen.insert(id), "an item came twice: {page}");
                }
                cursor = page["next_cursor"].as_str().map(str::to_owned);
                if cursor.is_none() {
                    break;
                }
            }
            assert!(cursor.is_none(), "{alias}: the cursor never ended");
        }
    }

    #[tokio::test]
    async fn unknown_watchlists_and_workspaces_are_named_in_the_refusal() {
        // With several workspaces, none is guessed.
        let harness = Harness::start().await;
        let message = harness
            .refusal(&ListWatchlists, json!({"tenant_id": harness.contoso()}))
            .await;
        assert!(
            message.contains("name one in 'workspace'") && message.contains(WORKSPACE),
            "{message}"
        );
        let tenant = harness.contoso();
        let message = harness
            .refusal(
                &GetWatchlistItems,
                json!({"tenant_id": tenant, "workspace": WORKSPACE, "alias": "NoSuchList"}),
            )
            .await;
        assert!(message.contains("NoSuchList"), "{message}");
        let message = harness
            .refusal(
                &ListWatchlists,
                json!({"tenant_id": tenant, "workspace": "not-configured"}),
            )
            .await;
        assert!(message.contains("not-configured"), "{message}");
    }
}
