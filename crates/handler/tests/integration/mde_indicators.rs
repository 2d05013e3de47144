//! Threat indicators through the MCP client against the sandbox: listing with filters, adding
//! one or many (validated by type before anything is sent), removing by id or value.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn indicators(output: &Value) -> &Vec<Value> {
    output["indicators"].as_array().expect("indicators")
}

#[tokio::test]
async fn indicators_are_listed_and_filtered() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let all = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO}),
    )
    .await);
    assert_eq!(indicators(&all).len(), 4, "{all}");
    let ips = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "indicator_type": "IpAddress"}),
    )
    .await);
    assert_eq!(indicators(&ips).len(), 1);
    assert_eq!(indicators(&ips)[0]["indicatorValue"], "203.0.113.50");
    let by_value = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "value": "cdn-update.fabrikam-cdn.example"}),
    )
    .await);
    assert_eq!(indicators(&by_value)[0]["indicatorType"], "DomainName");
    let by_title = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "title_starts_with": "Mimi", "action": "BlockAndRemediate"}),
    )
    .await);
    assert_eq!(indicators(&by_title).len(), 1);
    // No page documents contains() on indicators (get-ti-indicators-collection.md).
    let message = err(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "title_contains": "Mimikatz"}),
    )
    .await);
    assert!(message.contains("title_starts_with"), "{message}");
    // ti-indicator.md retired Alert and AlertAndBlock; post-ti-indicator.md: Audit needs an alert.
    for (action, extra) in [
        ("Alert", json!(null)),
        ("AlertAndBlock", json!(null)),
        ("Audit", json!(false)),
    ] {
        let mut arguments = json!({"tenant_id": CONTOSO, "action": action, "title": "t",
            "indicators": [{"indicator_type": "IpAddress", "value": "198.51.100.77"}]});
        if extra.is_boolean() {
            arguments["generate_alert"] = extra;
        }
        let message = err(&call_confirmed(&client, "mde_add_indicators", arguments).await);
        assert!(
            message.contains("January 2022") || message.contains("generate_alert true"),
            "{action}: {message}"
        );
    }
    let paged = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "limit": 3}),
    )
    .await);
    let rest = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "cursor": paged["next_cursor"]}),
    )
    .await);
    assert_eq!(indicators(&paged).len() + indicators(&rest).len(), 4);

    let message = err(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "indicator_type": "Sha1"}),
    )
    .await);
    assert!(message.contains("unknown variant `Sha1`"), "{message}");
}

#[tokio::test]
async fn one_indicator_is_submitted_and_many_are_imported() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let single = ok(&call_confirmed(
        &client,
        "mde_add_indicators",
        json!({"tenant_id": CONTOSO, "indicators": [{"indicator_type": "FileSha256", "value": "AB".repeat(32)}],
               "action": "BlockAndRemediate", "title": "INC-77 dropper", "severity": "High", "expiration_time": "2099-01-01T00:00:00Z"}),
    )
    .await);
    assert_eq!(single["succeeded"], 1, "{single}");
    assert_eq!(
        single["submitted"][0]["value"],
        "ab".repeat(32),
        "hashes are stored in lower case"
    );
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/indicators"),
        1
    );

    let many = ok(&call_confirmed(
        &client,
        "mde_add_indicators",
        json!({"tenant_id": CONTOSO, "action": "Block", "title": "Campaign 2024-05", "device_groups": ["Finance"],
        "indicators": [
            {"indicator_type": "IpAddress", "value": "198.51.100.23"},
            {"indicator_type": "IpAddress", "value": "2001:4860:4860::8888"},
            {"indicator_type": "DomainName", "value": "Evil.Example.com"},
            {"indicator_type": "Url", "value": "https://evil.example.com/payload.exe"},
            {"indicator_type": "CertificateThumbprint", "value": "c".repeat(40)},
            {"indicator_type": "FileMd5", "value": "d".repeat(32)},
            {"indicator_type": "DomainName", "value": "evil.example.com"}
        ]}),
    )
    .await);
    assert_eq!(many["succeeded"], 6, "{many}");
    assert_eq!(many["duplicates_dropped"], 1);
    assert!(
        many["submitted"]
            .as_array()
            .expect("submitted")
            .iter()
            .all(|s| s["id"].as_str().is_some())
    );
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/defender/api/indicators/import"),
        1,
        "many values go through one import"
    );
    let listed = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "value": "evil.example.com", "fields": ["rbacGroupNames"]}),
    )
    .await);
    assert_eq!(indicators(&listed)[0]["rbacGroupNames"], json!(["Finance"]));
    assert_eq!(indicators(&listed)[0]["title"], "Campaign 2024-05");
}

#[tokio::test]
async fn one_bad_value_refuses_the_whole_call_naming_every_problem() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let message = err(&call_confirmed(
        &client,
        "mde_add_indicators",
        json!({"tenant_id": CONTOSO, "action": "Block", "title": "bad batch",
        "indicators": [
            {"indicator_type": "IpAddress", "value": "203.0.113.9"},
            {"indicator_type": "IpAddress", "value": "10.20.30.40"},
            {"indicator_type": "IpAddress", "value": "fe80::1"},
            {"indicator_type": "FileSha1", "value": "abc"},
            {"indicator_type": "Url", "value": "evil.example.com/x"},
            {"indicator_type": "DomainName", "value": "https://evil.example.com"}
        ]}),
    )
    .await);
    for expected in [
        "5 of 6 indicators are invalid",
        "indicators[1]",
        "RFC 1918",
        "link-local",
        "40 hexadecimal",
        "not a URL",
        "no scheme",
    ] {
        assert!(
            message.contains(expected),
            "'{message}' should contain '{expected}'"
        );
    }
    assert!(
        !message.contains("indicators[0]"),
        "the valid one is not blamed: {message}"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_add_indicators",
        json!({"tenant_id": CONTOSO, "action": "BlockAndRemediate", "title": "x", "indicators": [{"indicator_type": "DomainName", "value": "evil.example.com"}]}),
    )
    .await);
    assert!(
        message.contains("BlockAndRemediate applies to file hashes and certificates"),
        "{message}"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_add_indicators",
        json!({"tenant_id": CONTOSO, "action": "Block", "title": "x", "expiration_time": "2001-01-01T00:00:00Z", "indicators": [{"indicator_type": "IpAddress", "value": "203.0.113.9"}]}),
    )
    .await);
    assert!(message.contains("in the past"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_add_indicators",
        json!({"tenant_id": CONTOSO, "action": "Block", "title": "x", "indicators": []}),
    )
    .await);
    assert!(message.contains("1 to 1000"), "{message}");
    let stats = app.sandbox.stats();
    assert_eq!(
        stats.count("POST", "/defender/api/indicators")
            + stats.count("POST", "/defender/api/indicators/import"),
        0,
        "nothing was sent"
    );
}

#[tokio::test]
async fn indicators_are_removed_by_id_or_by_value() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let seeded = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "indicator_type": "Url"}),
    )
    .await);
    let url_id = indicators(&seeded)[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let by_id = ok(&call_confirmed(
        &client,
        "mde_remove_indicators",
        json!({"tenant_id": CONTOSO, "ids": [url_id, "999999"]}),
    )
    .await);
    let results = by_id["results"].as_array().expect("results");
    assert_eq!(results[0]["outcome"], "removed");
    assert_eq!(results[1]["outcome"], "not_found");
    assert_eq!(by_id["removed"], 1);

    let by_value = ok(&call_confirmed(
        &client,
        "mde_remove_indicators",
        json!({"tenant_id": CONTOSO, "values": ["203.0.113.50", "192.0.2.200"]}),
    )
    .await);
    let results = by_value["results"].as_array().expect("results");
    assert_eq!(
        (
            results[0]["outcome"].as_str(),
            results[1]["outcome"].as_str()
        ),
        (Some("removed"), Some("not_found")),
        "{by_value}"
    );
    let left = ok(&call_confirmed(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO}),
    )
    .await);
    assert_eq!(indicators(&left).len(), 2);

    let cases = [
        (json!({"tenant_id": CONTOSO}), "nothing to remove"),
        (
            json!({"tenant_id": CONTOSO, "ids": ["1"], "values": ["x"]}),
            "either ids or values",
        ),
        (
            json!({"tenant_id": CONTOSO, "ids": ["../1"]}),
            "not an indicator id",
        ),
    ];
    for (arguments, expected) in cases {
        let message =
            err(&call_confirmed(&client, "mde_remove_indicators", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
}

/// The person confirming sees every indicator with its type and what happens to it, in the
/// tenant by name; a removal that names no indicator is refused before anyone is asked.
#[tokio::test]
async fn confirmations_name_each_indicator_and_unknown_ones_are_refused_unasked() {
    let app =
        TestApp::start_with(fast_sandbox_options(), &[("APPROVAL_FALLBACK", "confirm")]).await;
    let client = app.client().await;
    let asked = err(&call(
        &client,
        "mde_add_indicators",
        json!({"tenant_id": CONTOSO, "action": "Audit", "title": "INC-12",
        "indicators": [
            {"indicator_type": "IpAddress", "value": "203.0.113.50"},
            {"indicator_type": "DomainName", "value": "new-threat.example.com"}
        ]}),
    )
    .await);
    for expected in [
        "CONFIRMATION REQUIRED",
        "Tenant: Contoso",
        "indicator IpAddress 203.0.113.50",
        "Known C2 server",
        "Block -> Audit",
        "indicator DomainName new-threat.example.com: added as Audit",
    ] {
        assert!(asked.contains(expected), "'{expected}' in {asked}");
    }
    let stats = app.sandbox.stats();
    assert_eq!(
        stats.count("POST", "/defender/api/indicators")
            + stats.count("POST", "/defender/api/indicators/import"),
        0,
        "nothing is sent before a person confirms"
    );

    let seeded = ok(&call(
        &client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "indicator_type": "Url"}),
    )
    .await);
    let url_id = indicators(&seeded)[0]["id"].clone();
    let asked = err(&call(
        &client,
        "mde_remove_indicators",
        json!({"tenant_id": CONTOSO, "ids": [url_id]}),
    )
    .await);
    for expected in [
        "CONFIRMATION REQUIRED",
        "Tenant: Contoso",
        "indicator https://login-micros0ft.example/owa (id ",
        "type Url",
        "Warn -> removed",
    ] {
        assert!(asked.contains(expected), "'{expected}' in {asked}");
    }

    let by_value = json!({"tenant_id": CONTOSO, "values": ["203.0.113.50", "192.0.2.200"]});
    let asked = err(&call(&client, "mde_remove_indicators", by_value.clone()).await);
    for expected in [
        "indicator 203.0.113.50 (id ",
        "Block -> removed",
        "No indicator has 192.0.2.200",
    ] {
        assert!(asked.contains(expected), "'{expected}' in {asked}");
    }
    let removed = ok(&call_confirmed(&client, "mde_remove_indicators", by_value).await);
    let outcomes: Vec<&str> = removed["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["removed", "not_found"], "{removed}");

    for arguments in [
        json!({"tenant_id": CONTOSO, "ids": ["999999"]}),
        json!({"tenant_id": CONTOSO, "values": ["203.0.113.50", "192.0.2.200"]}),
    ] {
        let refused = err(&call(&client, "mde_remove_indicators", arguments.clone()).await);
        assert!(
            refused.contains("not found") && !refused.contains("CONFIRMATION REQUIRED"),
            "{arguments}: {refused}"
        );
    }
    assert_eq!(
        app.sandbox
            .stats()
            .count("DELETE", "/defender/api/indicators/{id}"),
        1,
        "only the confirmed removal deleted anything"
    );
}
