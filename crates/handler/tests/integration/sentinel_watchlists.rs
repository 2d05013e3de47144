//! Sentinel watchlists through the MCP client: the list, and a watchlist's items paged with a cursor.

use crate::common;

use std::collections::HashSet;

use common::*;
use serde_json::json;

#[tokio::test]
async fn watchlists_and_their_items_are_paged() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let listed = ok(&call(
        &client,
        "sentinel_list_watchlists",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    let watchlists = listed["watchlists"].as_array().expect("watchlists");
    let aliases: Vec<&str> = watchlists
        .iter()
        .map(|w| w["alias"].as_str().expect("alias"))
        .collect();
    assert_eq!(aliases, vec!["HighValueAssets", "VIPUsers", "TorExitNodes"]);
    assert_eq!(watchlists[1]["search_key"], "UserPrincipalName");

    // 40 items over server pages of 25, asked for 30 at a time: the cursor resumes mid-page.
    let first = ok(&call(
        &client,
        "sentinel_get_watchlist_items",
        json!({"tenant_id": FABRIKAM, "alias": "TorExitNodes", "limit": 30}),
    )
    .await);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more items")
        .to_string();
    let second = ok(&call(
        &client,
        "sentinel_get_watchlist_items",
        json!({"tenant_id": FABRIKAM, "alias": "TorExitNodes", "cursor": cursor}),
    )
    .await);
    assert!(second["next_cursor"].is_null());
    let addresses: HashSet<String> = first["items"]
        .as_array()
        .into_iter()
        .chain(second["items"].as_array())
        .flatten()
        .map(|i| i["values"]["IPAddress"].as_str().expect("ip").to_string())
        .collect();
    assert_eq!(addresses.len(), 40);

    let vip = ok(&call(
        &client,
        "sentinel_get_watchlist_items",
        json!({"tenant_id": FABRIKAM, "alias": "VIPUsers"}),
    )
    .await);
    assert!(vip["items"].as_array().expect("items").iter().all(|i| {
        i["values"]["UserPrincipalName"]
            .as_str()
            .is_some_and(|u| u.ends_with("@fabrikam.com"))
    }));

    let message = err(&call(
        &client,
        "sentinel_get_watchlist_items",
        json!({"tenant_id": FABRIKAM, "alias": "Nope"}),
    )
    .await);
    assert!(message.contains("no watchlist 'Nope'"), "{message}");
    let message = err(&call(
        &client,
        "sentinel_get_watchlist_items",
        json!({"tenant_id": FABRIKAM, "alias": "VIPUsers", "cursor": cursor}),
    )
    .await);
    assert!(message.contains("continues a different list"), "{message}");
    let message = err(&call(
        &client,
        "sentinel_list_watchlists",
        json!({"tenant_id": CONTOSO}),
    )
    .await);
    assert!(message.contains("several workspaces"), "{message}");
}
