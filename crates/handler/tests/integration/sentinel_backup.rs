//! Backups through the MCP client against the sandbox and Azurite: sentinel_export writes
//! every file and a manifest with counts and SHA-256, sentinel_list_backups finds it, and a
//! round trip (export, delete everything in the sandbox, sentinel_restore_backup, export
//! again) gives back the same configuration.

use crate::common;
use crate::sentinel_common;

use std::collections::BTreeMap;

use common::*;
use handler::storage::{JsonBlobStore, Storage, StorageConnection};
use sentinel_common::{
    DirectArm, OI_VERSION, SI_RULES_VERSION, SI_VERSION, WORKBOOKS_VERSION, workspace,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn store() -> JsonBlobStore {
    let connection = StorageConnection::from_connection_string(&storage_connection_string())
        .expect("connection string");
    let storage = Storage::new(connection, Some(reqwest::Client::new())).expect("storage");
    JsonBlobStore::new(&storage, "sentinel-backups")
}

/// Properties the service sets on every write; a restored resource differs only in these.
const VOLATILE: &[&str] = &[
    "lastModifiedUtc",
    "lastModifiedTimeUtc",
    "createdTimeUtc",
    "createdBy",
    "lastModifiedBy",
    "created",
    "updated",
    "updatedBy",
    "watchlistId",
    "timeModified",
    "revision",
    "userId",
    "tenantId",
    "uploadStatus",
];

/// A backup file's resources by name, without etags and volatile properties.
fn normalized(resources: &Value) -> BTreeMap<String, Value> {
    let strip = |item: &Value| {
        let mut properties = item["properties"].as_object().cloned().unwrap_or_default();
        for key in VOLATILE {
            properties.remove(*key);
        }
        json!({"kind": item.get("kind"), "properties": properties})
    };
    resources
        .as_array()
        .into_iter()
        .flatten()
        .map(|resource| match resource.get("watchlist") {
            Some(watchlist) => {
                let items: BTreeMap<String, Value> = resource["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        (
                            i["name"].as_str().unwrap_or_default().to_string(),
                            i["properties"]["itemsKeyValue"].clone(),
                        )
                    })
                    .collect();
                (
                    watchlist["name"].as_str().unwrap_or_default().to_string(),
                    json!({"watchlist": strip(watchlist), "items": items}),
                )
            }
            None => (
                resource["name"].as_str().unwrap_or_default().to_string(),
                strip(resource),
            ),
        })
        .collect()
}

async fn files(store: &JsonBlobStore, export: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for file in export["manifest"]["files"].as_array().expect("files") {
        let name = file["name"].as_str().expect("name");
        let (document, _) = store
            .get::<Value>(&format!(
                "{}/{name}",
                export["backup_id"].as_str().expect("id")
            ))
            .await
            .expect("read")
            .expect("file exists");
        out.insert(name.to_string(), document);
    }
    out
}

#[tokio::test]
async fn an_export_restores_to_the_same_configuration() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let store = store();
    let export = ok(&call(&client, "sentinel_export", json!({"tenant_id": FABRIKAM})).await);
    let backup_id = export["backup_id"].as_str().expect("id").to_string();
    assert!(
        backup_id.starts_with(&format!("{FABRIKAM}/law-fabrikam-soc/")),
        "{backup_id}"
    );
    let manifest = &export["manifest"];
    let counts: BTreeMap<&str, u64> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().expect("kind"),
                f["count"].as_u64().expect("count"),
            )
        })
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("analytics_rules", 20),
            ("automation_rules", 2),
            ("functions", 2),
            ("saved_queries", 3),
            ("watchlists", 3),
            ("workbooks", 2)
        ])
    );
    let watchlists = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["kind"] == "watchlists")
        .expect("watchlists");
    assert!(
        watchlists["items"].as_u64().expect("items") >= 45,
        "{watchlists}"
    );

    // The manifest's hashes are those of the stored files; the manifest itself is stored too.
    let original = files(&store, &export).await;
    for file in manifest["files"].as_array().expect("files") {
        let bytes =
            serde_json::to_vec(&original[file["name"].as_str().expect("name")]).expect("bytes");
        let hash: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(file["sha256"].as_str(), Some(hash.as_str()), "{file}");
        assert_eq!(file["bytes"].as_u64(), Some(bytes.len() as u64));
    }
    let (stored_manifest, _) = store
        .get::<Value>(&format!("{backup_id}/manifest.json"))
        .await
        .expect("read")
        .expect("manifest stored");
    assert_eq!(&stored_manifest, manifest);
    let workbooks = &original["workbooks.json"];
    assert!(
        workbooks[0]["properties"]["serializedData"]
            .as_str()
            .is_some_and(|d| d.contains("Notebook/1.0")),
        "workbooks are exported with their content"
    );

    // Delete everything the backup holds, straight in the sandbox.
    let arm = DirectArm::fabrikam(&app).await;
    let w = workspace(&app, 1, 0);
    let ws = DirectArm::workspace_path(&w);
    let si = format!("{ws}/providers/Microsoft.SecurityInsights");
    // `Watchlists_Delete` answers 202 (a long-running delete); the others 200.
    for (collection, version, deleted) in [
        (format!("{si}/alertRules"), SI_RULES_VERSION, 200),
        (format!("{si}/automationRules"), SI_VERSION, 200),
        (format!("{si}/watchlists"), SI_VERSION, 202),
        (format!("{ws}/savedSearches"), OI_VERSION, 200),
    ] {
        for item in arm.list(&collection, version).await {
            let name = item["name"].as_str().expect("name");
            assert_eq!(
                arm.delete(&format!("{collection}/{name}"), version).await,
                deleted,
                "{collection}/{name}"
            );
        }
    }
    let books = format!(
        "{}/providers/Microsoft.Insights/workbooks",
        DirectArm::group_path(&w)
    );
    for item in arm
        .list(&format!("{books}?category=sentinel"), WORKBOOKS_VERSION)
        .await
    {
        assert_eq!(
            arm.delete(
                &format!("{books}/{}", item["name"].as_str().expect("name")),
                WORKBOOKS_VERSION
            )
            .await,
            200
        );
    }
    let empty = ok(&call(
        &client,
        "sentinel_list_analytics_rules",
        json!({"tenant_id": FABRIKAM}),
    )
    .await);
    assert_eq!(empty["total_matching"], 0);

    let restored = ok(&call(
        &client,
        "sentinel_restore_backup",
        json!({"tenant_id": FABRIKAM, "backup_id": backup_id}),
    )
    .await);
    for (kind, report) in restored["results"].as_object().expect("results") {
        assert!(
            report["failed"].as_array().expect("failed").is_empty(),
            "{kind}: {report}"
        );
        assert!(
            report["skipped_existing"]
                .as_array()
                .expect("skipped")
                .is_empty(),
            "{kind}: {report}"
        );
        assert_eq!(
            report["restored"].as_array().expect("restored").len() as u64,
            counts[kind.as_str()],
            "{kind}"
        );
    }
    assert_eq!(
        restored["results"]["watchlists"]["items_restored"],
        watchlists["items"]
    );

    let again = ok(&call(&client, "sentinel_export", json!({"tenant_id": FABRIKAM})).await);
    let after = files(&store, &again).await;
    assert_eq!(
        original.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (name, document) in &original {
        assert_eq!(
            normalized(document),
            normalized(&after[name]),
            "{name} differs after the round trip"
        );
    }

    // A second restore finds everything in place and changes nothing.
    let repeat = ok(&call(
        &client,
        "sentinel_restore_backup",
        json!({"tenant_id": FABRIKAM, "backup_id": backup_id, "include": ["analytics_rules"]}),
    )
    .await);
    let report = &repeat["results"]["analytics_rules"];
    assert_eq!(
        report["skipped_existing"]
            .as_array()
            .expect("skipped")
            .len(),
        20
    );
    assert!(report["restored"].as_array().expect("restored").is_empty());
    assert_eq!(
        repeat["results"].as_object().expect("results").len(),
        1,
        "only what was asked for"
    );
}

#[tokio::test]
async fn backups_are_listed_and_restores_are_refused_when_they_cannot_be_trusted() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let dev = workspace(&app, 0, 1).name;
    let export = ok(&call(
        &client,
        "sentinel_export",
        json!({"tenant_id": CONTOSO, "workspace": dev, "include": ["workbooks", "functions"]}),
    )
    .await);
    let backup_id = export["backup_id"].as_str().expect("id").to_string();
    let kinds: Vec<&str> = export["manifest"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["functions", "workbooks"]);

    let listed = ok(&call(
        &client,
        "sentinel_list_backups",
        json!({"tenant_id": CONTOSO, "workspace": dev, "limit": 200}),
    )
    .await);
    let entry = listed["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .find(|b| b["backup_id"] == backup_id.as_str())
        .expect("the new backup is listed")
        .clone();
    assert_eq!(entry["counts"], json!({"functions": 2, "workbooks": 2}));
    assert_eq!(entry["workspace"], dev);

    // A file changed after the export no longer matches the manifest: nothing is restored.
    let store = store();
    let name = format!("{backup_id}/functions.json");
    let (mut functions, _) = store
        .get::<Value>(&name)
        .await
        .expect("read")
        .expect("file");
    functions[0]["properties"]["query"] = json!("SecurityEvent | take 1000000");
    store.upsert(&name, &functions).await.expect("tamper");
    let writes = app.sandbox.stats().count_method("PUT");
    let message = err(&call(
        &client,
        "sentinel_restore_backup",
        json!({"tenant_id": CONTOSO, "backup_id": backup_id}),
    )
    .await);
    assert!(message.contains("does not match its SHA-256"), "{message}");
    assert_eq!(app.sandbox.stats().count_method("PUT"), writes);

    for (arguments, expected) in [
        (
            json!({"tenant_id": FABRIKAM, "backup_id": backup_id}),
            "is not a backup of tenant",
        ),
        (
            json!({"tenant_id": CONTOSO, "backup_id": format!("{CONTOSO}/{dev}/20000101T000000.000Z-0000")}),
            "no complete backup",
        ),
        (
            json!({"tenant_id": CONTOSO, "backup_id": format!("{CONTOSO}/../x")}),
            "is not a backup of tenant",
        ),
        (
            json!({"tenant_id": CONTOSO, "backup_id": backup_id, "workspace": "nope"}),
            "is not configured",
        ),
    ] {
        let message = err(&call(&client, "sentinel_restore_backup", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
    let message = err(&call(
        &client,
        "sentinel_export",
        json!({"tenant_id": CONTOSO, "workspace": dev, "include": ["incidents"]}),
    )
    .await);
    assert!(message.contains("unknown variant `incidents`"), "{message}");
}

/// Replaces one file of a stored backup and its hash and size in the manifest, as a backup whose
/// original already held the content would have them.
async fn rewrite(store: &JsonBlobStore, backup_id: &str, file: &str, document: &Value) {
    store
        .upsert(&format!("{backup_id}/{file}"), document)
        .await
        .expect("file");
    let name = format!("{backup_id}/manifest.json");
    let (mut manifest, _) = store
        .get::<Value>(&name)
        .await
        .expect("read")
        .expect("manifest");
    let bytes = serde_json::to_vec(document).expect("bytes");
    let hash: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let entry = manifest["files"]
        .as_array_mut()
        .expect("files")
        .iter_mut()
        .find(|f| f["name"] == file)
        .expect("listed");
    entry["sha256"] = json!(hash);
    entry["bytes"] = json!(bytes.len());
    store.upsert(&name, &manifest).await.expect("manifest");
}

/// A backup whose rule or workbook hides a control command is refused as a whole, before anything
/// is written: not even its clean new items are restored, and each refused item is named. A
/// query that only mentions ".drop" in a string is no reason to refuse.
fn original_rules(original: &BTreeMap<String, Value>) -> Vec<Value> {
    original["analytics_rules.json"]
        .as_array()
        .expect("rules")
        .clone()
}

/// A copy of the backup's first scheduled rule under another id, name and query.
fn scheduled_rule(
    original: &BTreeMap<String, Value>,
    id: &str,
    display_name: &str,
    query: &str,
) -> Value {
    let mut rule = original_rules(original)
        .into_iter()
        .find(|r| r["kind"] == "Scheduled")
        .expect("a scheduled rule");
    rule["name"] = json!(id);
    rule["properties"]["displayName"] = json!(display_name);
    rule["properties"]["query"] = json!(query);
    rule
}

/// A rule whose query only mentions a control command inside a string: it must restore.
fn mentions_drop(original: &BTreeMap<String, Value>) -> Value {
    scheduled_rule(
        original,
        "cccccccc-1111-4111-8111-cccccccccccc",
        "Mentions drop",
        "SecurityEvent | where CommandLine has '.drop table'",
    )
}

#[tokio::test]
async fn a_backup_hiding_a_control_command_is_refused_whole_before_anything_is_written() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let store = store();
    let export = ok(&call(
        &client,
        "sentinel_export",
        json!({"tenant_id": FABRIKAM, "include": ["analytics_rules", "saved_queries", "workbooks"]}),
    )
    .await);
    let backup_id = export["backup_id"].as_str().expect("id").to_string();
    let original = files(&store, &export).await;

    // New items a restore would create, the clean one first: were the backup checked item by
    // item, it would be written before the refused one.
    let mut rules = original_rules(&original);
    rules.insert(0, mentions_drop(&original));
    rules.push(scheduled_rule(
        &original,
        "dddddddd-1111-4111-8111-dddddddddddd",
        "Hidden drop",
        "SecurityEvent | take 1; .drop table SecurityEvent",
    ));
    rewrite(
        &store,
        &backup_id,
        "analytics_rules.json",
        &Value::Array(rules),
    )
    .await;

    let mut workbooks = original["workbooks.json"]
        .as_array()
        .expect("workbooks")
        .clone();
    let mut trick = workbooks[0].clone();
    trick["name"] = json!("eeeeeeee-1111-4111-8111-eeeeeeeeeeee");
    trick["properties"]["displayName"] = json!("Verbatim trick");
    trick["properties"]["serializedData"] = json!(json!({"version": "Notebook/1.0", "items": [
        {"type": 3, "content": {"version": "KqlItem/1.0", "query": r"T | where a == @'\'; .drop table T", "queryType": 0}, "name": "query - 0"},
    ]})
    .to_string());
    workbooks.push(trick);
    rewrite(
        &store,
        &backup_id,
        "workbooks.json",
        &Value::Array(workbooks),
    )
    .await;

    let before = app.sandbox.stats().count_method("PUT");
    let message = err(&call(
        &client,
        "sentinel_restore_backup",
        json!({"tenant_id": FABRIKAM, "backup_id": backup_id}),
    )
    .await);
    for expected in [
        "nothing was restored",
        "analytics rule 'Hidden drop' (dddddddd-1111-4111-8111-dddddddddddd) query: '.drop' is a KQL control (management) command",
        "workbook 'Verbatim trick' (eeeeeeee-1111-4111-8111-eeeeeeeeeeee): the query of 'query - 0' (/items/0/content/query): '.drop' is a KQL control (management) command",
    ] {
        assert!(message.contains(expected), "'{expected}' in {message}");
    }
    assert!(!message.contains("Mentions drop"), "{message}");
    assert_eq!(
        app.sandbox.stats().count_method("PUT"),
        before,
        "a refused backup writes nothing"
    );
    let arm = DirectArm::fabrikam(&app).await;
    let rules_path = format!(
        "{}/providers/Microsoft.SecurityInsights/alertRules",
        DirectArm::workspace_path(&workspace(&app, 1, 0))
    );
    let (status, _) = arm
        .get(
            &format!("{rules_path}/cccccccc-1111-4111-8111-cccccccccccc"),
            SI_RULES_VERSION,
        )
        .await;
    assert_eq!(status, 404, "the clean rule was not restored either");

    // Without the refused items, the rule that only mentions ".drop" in a string is restored.
    let mut rules = original_rules(&original);
    rules.push(mentions_drop(&original));
    rewrite(
        &store,
        &backup_id,
        "analytics_rules.json",
        &Value::Array(rules),
    )
    .await;
    let restored = ok(&call(
        &client,
        "sentinel_restore_backup",
        json!({"tenant_id": FABRIKAM, "backup_id": backup_id, "include": ["analytics_rules", "saved_queries"]}),
    )
    .await);
    assert_eq!(
        restored["results"]["analytics_rules"]["restored"],
        json!(["Mentions drop"]),
        "{restored}"
    );
}
