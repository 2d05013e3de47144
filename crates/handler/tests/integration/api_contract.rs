//! What the handler does when Microsoft's published contract bites: a permission the tenant's
//! consent left out, and a query that may have run on Microsoft's side.

use crate::common;

use common::*;
use sandbox::{Fault, FaultKind, SandboxOptions};
use serde_json::json;

#[tokio::test]
async fn a_missing_application_permission_is_named_with_the_consent_step() {
    // The Defender list-machines page accepts Machine.Read.All or Machine.ReadWrite.All.
    let options = SandboxOptions {
        withheld_permissions: vec!["Machine.Read.All".into(), "Machine.ReadWrite.All".into()],
        ..fast_sandbox_options()
    };
    let app = TestApp::start_with(options, &[]).await;
    let client = app.client().await;
    let message = err(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 5}),
    )
    .await);
    assert!(
        message.contains("Machine.Read.All or Machine.ReadWrite.All"),
        "{message}"
    );
    assert!(
        message.contains("WindowsDefenderATP") && message.contains("admin consent"),
        "{message}"
    );
    assert_eq!(
        app.sandbox.stats().count("GET", "/defender/api/machines"),
        1,
        "a refusal for a missing permission is not retried"
    );
}

#[tokio::test]
async fn a_hunting_query_that_failed_after_it_was_sent_is_not_sent_again() {
    let app = TestApp::start().await;
    let client = app.client().await;
    app.sandbox.inject_fault(Fault {
        status: Some(500),
        ..Fault::new(
            "/graph/v1.0/security/runHuntingQuery",
            FaultKind::ServerError,
            1,
        )
    });
    let output = ok(&call_confirmed(
        &client,
        "mde_run_hunting_query",
        json!({"tenant_id": CONTOSO, "query": "DeviceInfo | take 1"}),
    )
    .await);
    assert_eq!(output["results"][0]["ok"], false, "{output}");
    assert_eq!(
        app.sandbox
            .stats()
            .count("POST", "/graph/{version}/security/runHuntingQuery"),
        1,
        "a query that may have run spends hunting quota: it is reported, not repeated"
    );
}

#[tokio::test]
async fn a_defender_list_is_read_in_pages_of_200_and_continued_with_skip() {
    // A service that would answer up to 10,000 records a page, as Defender does without $top.
    let options = SandboxOptions {
        page_size: 10_000,
        extra_workstations: 450,
        ..fast_sandbox_options()
    };
    let app = TestApp::start_with(options, &[]).await;
    let client = app.client().await;
    let output = ok(&call(
        &client,
        "mde_list_machines",
        json!({"tenant_id": CONTOSO, "limit": 450}),
    )
    .await);
    let machines = output["machines"].as_array().expect("machines");
    assert_eq!(machines.len(), 450, "{output}");
    let ids: std::collections::BTreeSet<&str> =
        machines.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids.len(), 450, "pages continued with $skip overlap nothing");
    assert_eq!(
        app.sandbox.stats().count("GET", "/defender/api/machines"),
        3,
        "450 machines in pages of 200: three reads, none of the service's 10,000-record default"
    );
}
