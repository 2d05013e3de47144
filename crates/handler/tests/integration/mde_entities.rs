//! File, IP and domain lookups through the MCP client against the sandbox.

use crate::common;

use common::*;
use serde_json::json;

/// The SHA-1 of the seeded mimikatz.exe (the tenant's FileSha1 indicator).
async fn mimikatz_sha1(client: &McpClient) -> String {
    let output = ok(&call_confirmed(
        client,
        "mde_list_indicators",
        json!({"tenant_id": CONTOSO, "indicator_type": "FileSha1"}),
    )
    .await);
    output["indicators"][0]["indicatorValue"]
        .as_str()
        .expect("seeded hash")
        .to_string()
}

#[tokio::test]
async fn a_file_is_described_with_its_verdict_sightings_and_alerts() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let sha1 = mimikatz_sha1(&client).await;
    let output = ok(&call_confirmed(
        &client,
        "mde_get_file_info",
        json!({"tenant_id": CONTOSO, "hash": sha1.to_uppercase()}),
    )
    .await);
    assert_eq!(output["file"]["sha1"], sha1.as_str());
    assert_eq!(output["file"]["determinationType"], "Malware");
    assert_eq!(
        output["file"]["determinationValue"],
        "HackTool:Win32/Mimikatz"
    );
    assert_eq!(
        output["organization"]["topFileNames"],
        json!(["mimikatz.exe"])
    );
    // get-file-statistics.md names the counts organizationPrevalence and globallyPrevalence:
    // the seeded sightings of mimikatz reach the tool and its summary.
    let seen = output["organization"]["organizationPrevalence"]
        .as_i64()
        .expect("organizationPrevalence");
    assert!(seen > 0, "mimikatz was seen on seeded devices: {output}");
    assert!(
        output["organization"]["globallyPrevalence"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "{output}"
    );
    let summary = text(
        &call_confirmed(
            &client,
            "mde_get_file_info",
            json!({"tenant_id": CONTOSO, "hash": sha1}),
        )
        .await,
    );
    assert!(
        summary.contains(&format!("seen on {seen} devices")),
        "{summary}"
    );
    assert_eq!(
        output["alert_count"].as_u64(),
        Some(output["alerts"].as_array().expect("alerts").len() as u64)
    );
    // The SHA-256 finds the same file.
    let sha256 = output["file"]["sha256"]
        .as_str()
        .expect("sha256")
        .to_string();
    let again = ok(&call_confirmed(
        &client,
        "mde_get_file_info",
        json!({"tenant_id": CONTOSO, "hash": sha256}),
    )
    .await);
    assert_eq!(again["file"]["sha1"], sha1.as_str());
    // get-file-related-alerts.md takes a SHA-1 only: the SHA-256 look-up asks by the file's SHA-1.
    assert_eq!(again["alert_count"], output["alert_count"]);
    let message = err(&call_confirmed(
        &client,
        "mde_get_file_info",
        json!({"tenant_id": CONTOSO, "hash": "a".repeat(32)}),
    )
    .await);
    assert!(message.contains("SHA-1 or SHA-256 only"), "{message}");

    let message = err(&call_confirmed(
        &client,
        "mde_get_file_info",
        json!({"tenant_id": CONTOSO, "hash": "e".repeat(40)}),
    )
    .await);
    assert!(
        message.contains("Defender has no record of file"),
        "{message}"
    );
    let message = err(&call_confirmed(
        &client,
        "mde_get_file_info",
        json!({"tenant_id": CONTOSO, "hash": "mimikatz.exe"}),
    )
    .await);
    assert!(message.contains("not a file hash"), "{message}");
}

#[tokio::test]
async fn ips_and_domains_report_how_widely_they_were_contacted() {
    let app = TestApp::start().await;
    let client = app.client().await;
    let ip = ok(&call_confirmed(
        &client,
        "mde_get_ip_info",
        json!({"tenant_id": CONTOSO, "ip": "203.0.113.50"}),
    )
    .await);
    assert_eq!(ip["entity"], "203.0.113.50");
    assert!(
        ip["organization"]["organizationPrevalence"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "the C2 address was contacted: {ip}"
    );
    assert!(ip["organization"]["orgFirstSeen"].as_str().is_some());
    let unseen = ok(&call_confirmed(
        &client,
        "mde_get_ip_info",
        json!({"tenant_id": CONTOSO, "ip": "192.0.2.1"}),
    )
    .await);
    assert_eq!(unseen["organization"]["organizationPrevalence"], 0);

    let domain = ok(&call_confirmed(
        &client,
        "mde_get_domain_info",
        json!({"tenant_id": CONTOSO, "domain": "C2.BadActor.example"}),
    )
    .await);
    assert_eq!(domain["entity"], "c2.badactor.example");
    assert!(
        domain["organization"]["organizationPrevalence"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "the C2 domain was contacted: {domain}"
    );

    let message = err(&call_confirmed(
        &client,
        "mde_get_ip_info",
        json!({"tenant_id": CONTOSO, "ip": "203.0.113"}),
    )
    .await);
    assert!(message.contains("not an IPv4 or IPv6 address"), "{message}");
    let message = err(&call_confirmed(
        &client,
        "mde_get_domain_info",
        json!({"tenant_id": CONTOSO, "domain": "https://c2.badactor.example/x"}),
    )
    .await);
    assert!(message.contains("no scheme or path"), "{message}");
}
