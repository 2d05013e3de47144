//! End-to-end tests over HTTPS against an in-process sandbox (one per test).

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use sandbox::{Fault, FaultKind, RunningSandbox, SandboxOptions};
use serde_json::{Value, json};

mod common;

use common::*;

#[tokio::test]
async fn token_issuance_and_audience_checks() {
    let (sb, c) = start(SandboxOptions {
        token_lifetime: Duration::from_secs(1),
        ..fast()
    })
    .await;
    assert_eq!(sb.tenants().len(), 2);
    assert_eq!(sb.tenants()[0].display_name, "Contoso");
    assert!(sb.base_url().starts_with("https://127.0.0.1:"));

    // Unknown tenant, bad secret, missing credential.
    let r = token_response(
        &sb,
        &c,
        "33333333-3333-4333-8333-333333333333",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_secret", sb.client_secret()),
            ("scope", MDE),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    assert_eq!(v["error_codes"][0], 90002);
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90002")
    );
    let r = token_response(
        &sb,
        &c,
        CONTOSO,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_secret", "wrong"),
            ("scope", MDE),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    assert_eq!(v["error_codes"][0], 7000215);
    // Client assertions: present and JWT-shaped is enough (signature not verified).
    let assertion_form = |a: &'static str| {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", a),
            ("scope", GRAPH),
        ]
    };
    assert_eq!(
        token_response(
            &sb,
            &c,
            FABRIKAM,
            &assertion_form("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        token_response(&sb, &c, FABRIKAM, &assertion_form("not-a-jwt"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Scope must be resource/.default of a known resource.
    let r = token_response(
        &sb,
        &c,
        CONTOSO,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_secret", sb.client_secret()),
            ("scope", "https://graph.microsoft.com/User.Read"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let mde = token(&sb, &c, CONTOSO, MDE).await;
    let graph = token(&sb, &c, CONTOSO, GRAPH).await;
    let machines = format!("{}/defender/api/machines", sb.base_url());
    assert_eq!(get(&c, &machines, &mde).await.0, StatusCode::OK);
    // Wrong audience → 403 in the API's shape.
    let (s, v) = get(&c, &machines, &graph).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v["error"]["code"].is_string() && v["error"]["target"].is_string());
    // Missing and unknown tokens → 401.
    let r = c.get(&machines).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&c, &machines, "sbx.forged").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = get(
        &c,
        &format!("{}/graph/v1.0/security/incidents", sb.base_url()),
        "nope",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    assert!(v["error"]["innerError"]["request-id"].is_string());

    // Tokens are recorded per tenant and audience.
    let stats = sb.stats();
    assert!(stats.tokens_issued.iter().any(|t| t.tenant_id == CONTOSO
        && t.audience == "https://api.securitycenter.microsoft.com"
        && t.count == 1));
    assert!(
        stats
            .tokens_issued
            .iter()
            .any(|t| t.tenant_id == FABRIKAM && t.audience == "https://graph.microsoft.com")
    );

    // Expiry.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = get(&c, &machines, &mde).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"]["message"].as_str().unwrap().contains("expired"));
    sb.shutdown().await;
}

#[tokio::test]
async fn machines_paging_filters_and_tenant_isolation() {
    let (sb, c) = start(fast()).await;
    let tok = token(&sb, &c, CONTOSO, MDE).await;
    let base = format!("{}/defender/api/machines", sb.base_url());

    let (s, page1) = get(&c, &base, &tok).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page1["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Machines")
    );
    assert_eq!(page1["value"].as_array().unwrap().len(), 25);
    let next = page1["@odata.nextLink"]
        .as_str()
        .expect("nextLink")
        .to_string();
    assert!(
        next.starts_with(&base) && next.contains("$skip=25"),
        "{next}"
    );
    let (_, page2) = get(&c, &next, &tok).await;
    assert_eq!(page2["value"].as_array().unwrap().len(), 25);
    assert!(page2.get("@odata.nextLink").is_none());
    let m0 = &page1["value"][0];
    assert_eq!(m0["id"].as_str().unwrap().len(), 40);
    assert!(
        m0["computerDnsName"]
            .as_str()
            .unwrap()
            .ends_with(".contoso.local")
    );
    for k in [
        "osPlatform",
        "healthStatus",
        "riskScore",
        "exposureLevel",
        "onboardingStatus",
        "lastSeen",
        "lastIpAddress",
        "lastExternalIpAddress",
        "version",
        "osBuild",
        "rbacGroupName",
        "machineTags",
        "isAadJoined",
        "aadDeviceId",
    ] {
        assert!(m0.get(k).is_some(), "machine lacks {k}");
    }

    // $top beyond the page size keeps the remainder in the nextLink.
    let (_, top) = get(&c, &format!("{base}?$top=30"), &tok).await;
    assert_eq!(top["value"].as_array().unwrap().len(), 25);
    let next = top["@odata.nextLink"].as_str().unwrap();
    assert!(next.contains("$top=5"), "{next}");
    let (_, rest) = get(&c, next, &tok).await;
    assert_eq!(rest["value"].as_array().unwrap().len(), 5);

    // Filters.
    let url = format!(
        "{base}?$filter=healthStatus eq 'Active' and (osPlatform eq 'Windows11' or osPlatform eq 'Windows10')&$top=100"
    );
    let (s, v) = get(&c, &url, &tok).await;
    assert_eq!(s, StatusCode::OK);
    let list = v["value"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list.iter().all(|m| m["healthStatus"] == "Active"
        && m["osPlatform"].as_str().unwrap().starts_with("Windows1")));
    let (_, v) = get(
        &c,
        &format!("{base}?$filter=startswith(computerDnsName,'srv-')"),
        &tok,
    )
    .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 8);
    let (_, v) = get(
        &c,
        &format!("{base}?$filter=onboardingStatus ne 'Onboarded'"),
        &tok,
    )
    .await;
    assert!(
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["onboardingStatus"] == "CanBeOnboarded")
    );
    let since = "2000-01-01T00:00:00Z";
    let (_, v) = get(
        &c,
        &format!("{base}?$filter=lastSeen gt {since} and riskScore eq 'High'&$top=100"),
        &tok,
    )
    .await;
    assert!(
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["riskScore"] == "High")
    );
    let (s, v) = get(&c, &format!("{base}?$filter=healthStatus eq"), &tok).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("$filter"));
    let (s, v) = get(&c, &format!("{base}?$filter=color eq 'red'"), &tok).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("color"));
    // get-machines.md: rbacGroupName is not among the 14 filterable properties; rbacGroupId is.
    let (s, v) = get(
        &c,
        &format!("{base}?$filter=rbacGroupName eq 'Finance'"),
        &tok,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rbacGroupName")
    );
    let group = m0["rbacGroupId"].clone();
    let (s, v) = get(&c, &format!("{base}?$filter=rbacGroupId eq {group}"), &tok).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["rbacGroupId"] == group)
    );
    // "$top with max value of 10,000"; $orderby is not documented.
    for query in ["$top=10001", "$orderby=lastSeen desc"] {
        let (s, v) = get(&c, &format!("{base}?{query}"), &tok).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {v}");
    }

    // Single machine, logon users, 404.
    let id = m0["id"].as_str().unwrap();
    let (s, v) = get(&c, &format!("{base}/{id}"), &tok).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["id"], id);
    let (s, _) = get(&c, &format!("{base}/{id}/logonusers"), &tok).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = get(
        &c,
        &format!("{base}/0000000000000000000000000000000000000000"),
        &tok,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "ResourceNotFound");

    // The same machine id is invisible from the other tenant.
    let fab = token(&sb, &c, FABRIKAM, MDE).await;
    assert_eq!(
        get(&c, &format!("{base}/{id}"), &fab).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, fv) = get(&c, &base, &fab).await;
    assert!(
        fv["value"][0]["computerDnsName"]
            .as_str()
            .unwrap()
            .ends_with(".fabrikam.local")
    );
    sb.shutdown().await;
}

async fn first_machine(c: &Client, sb: &RunningSandbox, tok: &str, filter: &str) -> String {
    let (_, v) = get(
        c,
        &format!("{}/defender/api/machines?$filter={filter}", sb.base_url()),
        tok,
    )
    .await;
    v["value"][0]["id"].as_str().expect("a machine").to_string()
}

#[tokio::test]
async fn isolate_lifecycle_and_response_actions() {
    let (sb, c) = start(fast()).await;
    let tok = token(&sb, &c, CONTOSO, MDE).await;
    let api = format!("{}/defender/api", sb.base_url());
    let id = first_machine(
        &c,
        &sb,
        &tok,
        "onboardingStatus eq 'Onboarded' and healthStatus eq 'Active'",
    )
    .await;
    let post = async |path: String, body: Value| {
        send(
            &c,
            reqwest::Method::POST,
            &format!("{api}{path}"),
            &tok,
            body,
        )
        .await
    };

    let (s, v) = post(
        format!("/machines/{id}/isolate"),
        json!({"IsolationType": "Full"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "InvalidRequestBody");
    let (s, v) = post(
        format!("/machines/{id}/isolate"),
        json!({"Comment": "x", "IsolationType": "Partial"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("IsolationType")
    );

    let (s, action) = post(
        format!("/machines/{id}/isolate"),
        json!({"Comment": "Contain ransomware", "IsolationType": "Full"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(action["status"], "Pending");
    assert_eq!(action["type"], "Isolate");
    assert_eq!(action["scope"], "Full");
    assert_eq!(action["machineId"], id.as_str());
    assert_eq!(action["requestorComment"], "Contain ransomware");
    for k in [
        "creationDateTimeUtc",
        "lastUpdateDateTimeUtc",
        "cancellationRequestor",
        "relatedFileInfo",
        "computerDnsName",
        "title",
    ] {
        assert!(action.get(k).is_some(), "machineAction lacks {k}");
    }
    let (s, v) = post(
        format!("/machines/{id}/isolate"),
        json!({"Comment": "again"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "ActiveRequestAlreadyExists");
    assert_eq!(sb.machine_state(CONTOSO, &id).unwrap().isolation, None);

    let action_url = format!("{api}/machineactions/{}", action["id"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(get(&c, &action_url, &tok).await.1["status"], "InProgress");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (_, done) = get(&c, &action_url, &tok).await;
    assert_eq!(done["status"], "Succeeded");
    assert_eq!(
        sb.machine_state(CONTOSO, &id).unwrap().isolation.as_deref(),
        Some("Full")
    );
    // A new isolate is accepted once the previous one finished.
    assert_eq!(
        post(
            format!("/machines/{id}/unisolate"),
            json!({"Comment": "release"})
        )
        .await
        .0,
        StatusCode::CREATED
    );

    // Cancel: any action not yet final (cancel-machine-action.md), Pending here.
    let (_, pkg) = post(
        format!("/machines/{id}/collectInvestigationPackage"),
        json!({"Comment": "forensics"}),
    )
    .await;
    let (s, cancelled) = post(
        format!("/machineactions/{}/cancel", pkg["id"].as_str().unwrap()),
        json!({"Comment": "oops"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cancelled["status"], "Cancelled");
    assert_eq!(cancelled["cancellationComment"], "oops");
    let (s, _) = post(
        format!("/machineactions/{}/cancel", pkg["id"].as_str().unwrap()),
        json!({"Comment": "again"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // ... and InProgress too, with no Comment (not marked Required on the page).
    let (s, running) = post(
        format!("/machines/{id}/restrictCodeExecution"),
        json!({"Comment": "contain"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{running}");
    let running_id = running["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        get(&c, &format!("{api}/machineactions/{running_id}"), &tok)
            .await
            .1["status"],
        "InProgress"
    );
    let (s, cancelled) = post(format!("/machineactions/{running_id}/cancel"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "Cancelled");
    // run-av-scan.md: ScanType is Required; isolate-machine.md: only Full or Selective.
    let (s, v) = post(
        format!("/machines/{id}/runAntiVirusScan"),
        json!({"Comment": "scan"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = post(
        format!("/machines/{id}/isolate"),
        json!({"Comment": "x", "IsolationType": "UnManagedDevice"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Investigation package download after success.
    let (s, pkg) = post(
        format!("/machines/{id}/collectInvestigationPackage"),
        json!({"Comment": "forensics 2"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let pkg_id = pkg["id"].as_str().unwrap().to_string();
    assert_eq!(
        get(
            &c,
            &format!("{api}/machineactions/{pkg_id}/getPackageUri"),
            &tok
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // Live response with a library script, and stop-and-quarantine.
    let (s, lr) = post(
        format!("/machines/{id}/runliveresponse"),
        json!({"Commands": [{"type": "RunScript", "params": [{"key": "ScriptName", "value": "Collect-Triage.ps1"}, {"key": "Args", "value": "-OutputPath C:\\temp"}]}], "Comment": "triage"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{lr}");
    assert_eq!(lr["type"], "LiveResponse");
    assert_eq!(lr["commands"][0]["command"]["type"], "RunScript");
    let (s, _) = post(format!("/machines/{id}/runliveresponse"), json!({"Commands": [{"type": "RunScript", "params": [{"key": "ScriptName", "value": "missing.ps1"}]}], "Comment": "x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, q) = post(
        format!("/machines/{id}/StopAndQuarantineFile"),
        json!({"Comment": "q", "Sha1": "87662bc3d60e4200ceaf7aae249d1c343f4b83c9"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(q["relatedFileInfo"]["fileIdentifierType"], "Sha1");
    let (s, scan) = post(
        format!("/machines/{id}/runAntiVirusScan"),
        json!({"Comment": "scan", "ScanType": "Full"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(scan["scope"], "Full");

    tokio::time::sleep(Duration::from_millis(650)).await;
    let (s, link) = get(
        &c,
        &format!("{api}/machineactions/{pkg_id}/getPackageUri"),
        &tok,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let zip = c.get(link["value"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(zip.status(), StatusCode::OK);
    assert!(zip.bytes().await.unwrap().starts_with(b"PK\x03\x04"));
    let (s, link) = get(
        &c,
        &format!(
            "{api}/machineactions/{}/GetLiveResponseResultDownloadLink(index=0)",
            lr["id"].as_str().unwrap()
        ),
        &tok,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{link}");
    let result: Value = c
        .get(link["value"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["script_name"], "Collect-Triage.ps1");
    assert_eq!(result["exit_code"], 0);
    assert!(result["script_output"].is_string() && result["script_errors"].is_string());
    let state = sb.machine_state(CONTOSO, &id).unwrap();
    assert_eq!(state.isolation, None);
    assert_eq!(
        state.quarantined_files,
        vec!["87662bc3d60e4200ceaf7aae249d1c343f4b83c9".to_string()]
    );

    // List with OData filter.
    let (_, list) = get(
        &c,
        &format!("{api}/machineactions?$filter=machineId eq '{id}' and status eq 'Succeeded'"),
        &tok,
    )
    .await;
    let list = list["value"].as_array().unwrap();
    assert!(list.len() >= 4);
    assert!(list.iter().all(|a| a["status"] == "Succeeded"));
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_returns_429_with_retry_after() {
    let (sb, c) = start(SandboxOptions {
        rate_limit_per_minute: 5,
        ..fast()
    })
    .await;
    let tok = token(&sb, &c, CONTOSO, MDE).await;
    let url = format!("{}/defender/api/machines?$top=1", sb.base_url());
    for _ in 0..5 {
        assert_eq!(get(&c, &url, &tok).await.0, StatusCode::OK);
    }
    let r = c.get(&url).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "TooManyRequests");
    // Other tenants and other endpoints are not affected.
    let fab = token(&sb, &c, FABRIKAM, MDE).await;
    assert_eq!(get(&c, &url, &fab).await.0, StatusCode::OK);
    assert_eq!(
        get(
            &c,
            &format!("{}/defender/api/indicators", sb.base_url()),
            &tok
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(sb.stats().throttled, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn fault_injection_over_http_and_rust() {
    let (sb, c) = start(fast()).await;
    let tok = token(&sb, &c, CONTOSO, MDE).await;
    let url = format!("{}/defender/api/machines", sb.base_url());
    let admin = format!("{}/_sandbox/faults", sb.base_url());

    let r = c.post(&admin).json(&json!({"path_prefix": "/defender/api/machines", "method": "GET", "kind": "throttle", "retry_after_secs": 2, "times": 2})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for _ in 0..2 {
        let r = c.get(&url).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "2");
    }
    assert_eq!(get(&c, &url, &tok).await.0, StatusCode::OK);

    sb.inject_fault(Fault {
        status: Some(502),
        ..Fault::new("/defender/api/machines", FaultKind::ServerError, 1)
    });
    let (s, v) = get(&c, &url, &tok).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert!(v["error"]["code"].is_string());

    sb.inject_fault(Fault::new("/defender/api/machines", FaultKind::Reset, 1));
    assert!(
        c.get(&url).bearer_auth(&tok).send().await.is_err(),
        "reset drops the connection"
    );

    sb.inject_fault(Fault {
        delay_ms: Some(400),
        ..Fault::new("/defender/api/machines", FaultKind::Slow, 1)
    });
    let t0 = Instant::now();
    assert_eq!(get(&c, &url, &tok).await.0, StatusCode::OK);
    assert!(t0.elapsed() >= Duration::from_millis(400));

    // Faults only hit their prefix; clearing removes the rest.
    sb.inject_fault(Fault::new("/graph/", FaultKind::ServerError, 5));
    assert_eq!(get(&c, &url, &tok).await.0, StatusCode::OK);
    let r = c.delete(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let g = token(&sb, &c, CONTOSO, GRAPH).await;
    assert_eq!(
        get(
            &c,
            &format!("{}/graph/v1.0/security/incidents", sb.base_url()),
            &g
        )
        .await
        .0,
        StatusCode::OK
    );

    let stats: Value = c
        .get(format!("{}/_sandbox/stats", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let machines = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path_template"] == "/defender/api/machines")
        .unwrap();
    assert_eq!(machines["method"], "GET");
    assert_eq!(machines["status_counts"]["429"], 2);
    assert_eq!(machines["status_counts"]["502"], 1);
    assert_eq!(stats["throttled"], 2);
    assert_eq!(
        sb.stats().count("GET", "/defender/api/machines"),
        machines["count"].as_u64().unwrap()
    );
    sb.shutdown().await;
}

/// Input that used to panic a handler (and so drop the connection) is answered with each
/// API's 400.
#[tokio::test]
async fn hostile_queries_and_durations_are_answered_with_400() {
    let (sb, c) = start(fast()).await;
    let la = token(&sb, &c, CONTOSO, LA).await;
    let url = format!(
        "{}/loganalytics/v1/workspaces/{}/query",
        sb.base_url(),
        sb.tenants()[0].workspaces[0].customer_id
    );
    let deep = "(".repeat(100_000);
    for query in [
        "€ | take 1",
        "SecurityEvent | where Computer =€ 'x'",
        deep.as_str(),
    ] {
        let (s, v) = send(
            &c,
            reqwest::Method::POST,
            &url,
            &la,
            json!({"query": query}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"]["code"], "BadArgumentError");
        assert_eq!(v["error"]["innererror"]["code"], "SyntaxError", "{v}");
    }
    for timespan in [
        "P99999999999999999999D",
        "PT9223372036854775807S",
        "P8000000D",
    ] {
        let (s, v) = send(
            &c,
            reqwest::Method::POST,
            &url,
            &la,
            json!({"query": "SecurityEvent | take 1", "timespan": timespan}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{timespan}: {v}");
        assert_eq!(v["error"]["innererror"]["code"], "InvalidTimespan", "{v}");
    }

    let g = token(&sb, &c, CONTOSO, GRAPH).await;
    let hunt = format!("{}/graph/v1.0/security/runHuntingQuery", sb.base_url());
    for body in [
        json!({"Query": "😀"}),
        json!({"Query": "DeviceProcessEvents | take 1", "Timespan": "P99999999999999999999D"}),
    ] {
        let (s, v) = send(&c, reqwest::Method::POST, &hunt, &g, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"]["code"], "BadRequest");
    }

    let mde = token(&sb, &c, CONTOSO, MDE).await;
    let filter = format!("{}healthStatus eq 'Active'", "(".repeat(10_000));
    let (s, v) = get(
        &c,
        &format!("{}/defender/api/machines?$filter={filter}", sb.base_url()),
        &mde,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "ODataError");
    sb.shutdown().await;
}

#[tokio::test]
async fn log_analytics_query_and_hunting_shapes() {
    let (sb, c) = start(fast()).await;
    let la = token(&sb, &c, CONTOSO, LA).await;
    let ws = &sb.tenants()[0].workspaces[0];
    let url = format!(
        "{}/loganalytics/v1/workspaces/{}/query",
        sb.base_url(),
        ws.customer_id
    );

    let (s, v) = send(&c, reqwest::Method::POST, &url, &la, json!({"query": "SecurityEvent | where TimeGenerated > ago(7d) | summarize Events = count() by Computer | top 3 by Events desc", "timespan": "P7D"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let t = &v["tables"][0];
    assert_eq!(t["name"], "PrimaryResult");
    assert_eq!(
        t["columns"],
        json!([{"name": "Computer", "type": "string"}, {"name": "Events", "type": "long"}])
    );
    assert_eq!(t["rows"].as_array().unwrap().len(), 3);

    // Freshness: the stale table's newest row is ~3 days old, the others are recent.
    let (_, v) = send(&c, reqwest::Method::POST, &url, &la, json!({"query": "union withsource=TableName * | summarize LastRow = max(TimeGenerated) by TableName | order by TableName asc"})).await;
    let rows = v["tables"][0]["rows"].as_array().unwrap();
    // Six connector tables and SentinelHealth (health monitoring).
    assert_eq!(rows.len(), 7);
    let now = time::OffsetDateTime::now_utc();
    for r in rows {
        let last = time::OffsetDateTime::parse(
            r[1].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let age = now - last;
        if r[0] == "CommonSecurityLog" {
            assert!(age > time::Duration::days(2), "stale table age {age}");
        } else {
            assert!(age < time::Duration::hours(1), "{} age {age}", r[0]);
        }
    }

    // Errors in the service's shape.
    let (s, v) = send(
        &c,
        reqwest::Method::POST,
        &url,
        &la,
        json!({"query": "SecurityEvent | join kind=inner (Heartbeat) on Computer"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "BadArgumentError");
    assert_eq!(v["error"]["innererror"]["code"], "SyntaxError");
    assert!(
        v["error"]["innererror"]["message"]
            .as_str()
            .unwrap()
            .contains("join")
    );
    let (s, v) = send(
        &c,
        reqwest::Method::POST,
        &url,
        &la,
        json!({"query": ".show tables"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["innererror"]["code"], "SyntaxError");
    let (s, v) = send(
        &c,
        reqwest::Method::POST,
        &url,
        &la,
        json!({"query": "SecurityEvent | where Nope == 1"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["innererror"]["code"], "SemanticError");
    let other = format!(
        "{}/loganalytics/v1/workspaces/{}/query",
        sb.base_url(),
        sb.tenants()[1].workspaces[0].customer_id
    );
    let (s, v) = send(
        &c,
        reqwest::Method::POST,
        &other,
        &la,
        json!({"query": "Heartbeat | take 1"}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "a workspace of another tenant is not found"
    );
    assert_eq!(v["error"]["code"], "WorkspaceNotFoundError");

    // Graph advanced hunting.
    let g = token(&sb, &c, CONTOSO, GRAPH).await;
    let hunt = format!("{}/graph/v1.0/security/runHuntingQuery", sb.base_url());
    let (s, v) = send(&c, reqwest::Method::POST, &hunt, &g, json!({"Query": "DeviceProcessEvents | where Timestamp > ago(7d) | project Timestamp, DeviceName, FileName, ProcessCommandLine | take 5", "Timespan": "P7D"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.security.huntingQueryResults"
    );
    assert_eq!(
        v["schema"][0],
        json!({"name": "Timestamp", "type": "DateTime"})
    );
    assert_eq!(
        v["schema"][1],
        json!({"name": "DeviceName", "type": "String"})
    );
    assert_eq!(v["results"].as_array().unwrap().len(), 5);
    assert!(
        v["results"][0]["DeviceName"]
            .as_str()
            .unwrap()
            .ends_with(".contoso.local")
    );
    let (s, v) = send(&c, reqwest::Method::POST, &hunt, &g, json!({"Query": "DeviceNetworkEvents | summarize Devices = dcount(DeviceId) by RemoteIP | where RemoteIP == '203.0.113.50'"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["schema"][1], json!({"name": "Devices", "type": "Int64"}));
    let (s, v) = send(
        &c,
        reqwest::Method::POST,
        &hunt,
        &g,
        json!({"Query": "DeviceProcessEvents | mv-expand x"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "BadRequest");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mv-expand")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn arm_workspace_rules_and_incidents() {
    let (sb, c) = start(SandboxOptions {
        page_size: 10,
        ..fast()
    })
    .await;
    let arm = token(&sb, &c, CONTOSO, ARM).await;
    let ws = sb.tenants()[0].workspaces[0].clone();
    let ws_url = format!(
        "{}/arm/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
        sb.base_url(),
        ws.subscription_id,
        ws.resource_group,
        ws.name
    );
    // Each provider at the api-version the client calls (the vendored definitions).
    let v = "api-version=2026-03-01";
    let si = "api-version=2025-09-01";
    // Analytics rules at the preview that defines the NRT kind, as the client calls them.
    let ar = "api-version=2025-10-01-preview";

    let (s, e) = get(&c, &ws_url, &arm).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "MissingApiVersionParameter");
    let (s, w) = get(&c, &format!("{ws_url}?{v}"), &arm).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(w["properties"]["customerId"], ws.customer_id.as_str());
    assert_eq!(w["properties"]["provisioningState"], "Succeeded");
    assert_eq!(w["properties"]["sku"]["name"], "PerGB2018");
    assert_eq!(w["type"], "Microsoft.OperationalInsights/workspaces");
    // Case-insensitive provider segments, unknown workspace, other tenant's subscription.
    let lower = ws_url
        .replace(
            "Microsoft.OperationalInsights",
            "microsoft.operationalinsights",
        )
        .replace("resourceGroups", "resourcegroups");
    assert_eq!(
        get(&c, &format!("{lower}?{v}"), &arm).await.0,
        StatusCode::OK
    );
    let (s, e) = get(&c, &format!("{}nope?{v}", ws_url), &arm).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["error"]["code"], "ResourceNotFound");
    let fab_ws = &sb.tenants()[1].workspaces[0];
    let fab_url = format!(
        "{}/arm/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}?{v}",
        sb.base_url(),
        fab_ws.subscription_id,
        fab_ws.resource_group,
        fab_ws.name
    );
    assert_eq!(get(&c, &fab_url, &arm).await.0, StatusCode::UNAUTHORIZED);
    let mde = token(&sb, &c, CONTOSO, MDE).await;
    assert_eq!(
        get(&c, &format!("{ws_url}?{v}"), &mde).await.0,
        StatusCode::FORBIDDEN
    );

    // Tables: retention/plan through a long-running operation.
    let (s, tables) = get(&c, &format!("{ws_url}/tables?{v}"), &arm).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tables["value"].as_array().unwrap().len(), 7);
    let table_url = format!("{ws_url}/tables/SigninLogs?{v}");
    let r = c
        .patch(&table_url)
        .bearer_auth(&arm)
        .json(&json!({"properties": {"retentionInDays": 120, "plan": "Analytics"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let op_url = r.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(get(&c, &op_url, &arm).await.1["status"], "InProgress");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(get(&c, &op_url, &arm).await.1["status"], "Succeeded");
    let (_, table) = get(&c, &table_url, &arm).await;
    assert_eq!(table["properties"]["retentionInDays"], 120);
    assert_eq!(
        table["properties"]["schema"]["standardColumns"][1],
        json!({"name": "TimeGenerated", "type": "dateTime"})
    );
    let r = c
        .patch(&table_url)
        .bearer_auth(&arm)
        .json(&json!({"properties": {"retentionInDays": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Analytics rules: list (paged at 10), etag-checked PUT, create, delete.
    let rules_url = format!("{ws_url}/providers/Microsoft.SecurityInsights/alertRules");
    let (s, page) = get(&c, &format!("{rules_url}?{ar}"), &arm).await;
    assert_eq!(s, StatusCode::OK);
    let mut rules: Vec<Value> = page["value"].as_array().unwrap().clone();
    let mut next = page["nextLink"].as_str().map(str::to_string);
    while let Some(n) = next {
        assert!(n.contains(ar) && n.contains("$skipToken="), "{n}");
        let (_, p) = get(&c, &n, &arm).await;
        rules.extend(p["value"].as_array().unwrap().iter().cloned());
        next = p["nextLink"].as_str().map(str::to_string);
    }
    assert!((18..=22).contains(&rules.len()));
    assert!(rules.iter().any(|r| r["properties"]["enabled"] == false));
    let kinds: Vec<&str> = rules.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    for k in [
        "Scheduled",
        "NRT",
        "Fusion",
        "MicrosoftSecurityIncidentCreation",
    ] {
        assert!(kinds.contains(&k), "no {k} rule");
    }
    let rule = rules
        .iter()
        .find(|r| r["kind"] == "Scheduled")
        .unwrap()
        .clone();
    let rule_url = format!("{rules_url}/{}?{ar}", rule["name"].as_str().unwrap());
    // Sent back without what the definition marks read-only.
    let mut disabled = rule.clone();
    disabled["properties"]["enabled"] = json!(false);
    disabled["properties"]
        .as_object_mut()
        .unwrap()
        .remove("lastModifiedUtc");
    disabled.as_object_mut().unwrap().remove("systemData");
    let (s, updated) = send(&c, reqwest::Method::PUT, &rule_url, &arm, disabled.clone()).await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(updated["properties"]["enabled"], false);
    assert_ne!(updated["etag"], rule["etag"]);
    // The old etag is now stale.
    let (s, e) = send(&c, reqwest::Method::PUT, &rule_url, &arm, disabled).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "Conflict");
    let new_rule = json!({"kind": "Scheduled", "properties": {"displayName": "Test rule", "enabled": true, "severity": "Low", "query": "SecurityEvent | where EventID == 4625", "queryFrequency": "PT1H", "queryPeriod": "PT1H", "triggerOperator": "GreaterThan", "triggerThreshold": 0, "suppressionDuration": "PT1H", "suppressionEnabled": false}});
    let new_url = format!("{rules_url}/aaaaaaaa-0000-4000-8000-000000000001?{ar}");
    assert_eq!(
        send(&c, reqwest::Method::PUT, &new_url, &arm, new_rule)
            .await
            .0,
        StatusCode::CREATED
    );
    let bad_rule = json!({"kind": "Scheduled", "properties": {"displayName": "Bad", "enabled": true, "severity": "Low", "query": "SecurityEvent | joinx", "queryFrequency": "PT1H", "queryPeriod": "PT1H", "triggerOperator": "GreaterThan", "triggerThreshold": 0}});
    assert_eq!(
        send(&c, reqwest::Method::PUT, &new_url, &arm, bad_rule)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        c.delete(&new_url)
            .bearer_auth(&arm)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(get(&c, &new_url, &arm).await.0, StatusCode::NOT_FOUND);

    // Incidents: filter, order, $top + $skipToken paging, etag PUT, comments.
    let inc_url = format!("{ws_url}/providers/Microsoft.SecurityInsights/incidents");
    let (s, open) = get(&c, &format!("{inc_url}?{si}&$filter=properties/status ne 'Closed'&$orderby=properties/createdTimeUtc desc&$top=12"), &arm).await;
    assert_eq!(s, StatusCode::OK);
    let first = open["value"].as_array().unwrap();
    assert_eq!(first.len(), 10);
    assert!(first.iter().all(|i| i["properties"]["status"] != "Closed"));
    let next = open["nextLink"].as_str().expect("nextLink");
    assert!(
        next.contains("$skipToken=10") && next.contains("$top=2"),
        "{next}"
    );
    let (_, second) = get(&c, next, &arm).await;
    assert!(second["value"].as_array().unwrap().len() <= 2);
    let incident = first[0].clone();
    for k in [
        "title",
        "severity",
        "status",
        "incidentNumber",
        "createdTimeUtc",
        "lastModifiedTimeUtc",
        "owner",
    ] {
        assert!(
            incident["properties"].get(k).is_some(),
            "incident lacks {k}"
        );
    }
    let one_url = format!("{inc_url}/{}?{si}", incident["name"].as_str().unwrap());
    // The incident's writable properties (IncidentProperties without its read-only members).
    let mut writable = incident["properties"].clone();
    for read_only in [
        "additionalData",
        "createdTimeUtc",
        "incidentNumber",
        "incidentUrl",
        "lastModifiedTimeUtc",
        "providerIncidentId",
        "providerName",
        "relatedAnalyticRuleIds",
    ] {
        writable.as_object_mut().unwrap().remove(read_only);
    }
    let mut close = json!({"etag": incident["etag"], "properties": writable});
    close["properties"]["status"] = json!("Closed");
    let (s, e) = send(&c, reqwest::Method::PUT, &one_url, &arm, close.clone()).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "closing needs a classification: {e}"
    );
    close["properties"]["classification"] = json!("FalsePositive");
    close["properties"]["classificationReason"] = json!("IncorrectAlertLogic");
    let (s, closed) = send(&c, reqwest::Method::PUT, &one_url, &arm, close.clone()).await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(closed["properties"]["status"], "Closed");
    assert_eq!(
        closed["properties"]["incidentNumber"],
        incident["properties"]["incidentNumber"]
    );
    assert_eq!(
        send(&c, reqwest::Method::PUT, &one_url, &arm, close)
            .await
            .0,
        StatusCode::CONFLICT
    );

    let comment_url = format!(
        "{inc_url}/{}/comments/bbbbbbbb-0000-4000-8000-000000000002?{si}",
        incident["name"].as_str().unwrap()
    );
    let (s, cm) = send(
        &c,
        reqwest::Method::PUT,
        &comment_url,
        &arm,
        json!({"properties": {"message": "Closed as FP after review"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cm}");
    assert_eq!(cm["properties"]["message"], "Closed as FP after review");
    let (_, list) = get(
        &c,
        &format!(
            "{inc_url}/{}/comments?{si}",
            incident["name"].as_str().unwrap()
        ),
        &arm,
    )
    .await;
    assert!(
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "bbbbbbbb-0000-4000-8000-000000000002")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn graph_incidents_alerts_and_detection_rules() {
    let (sb, c) = start(SandboxOptions {
        page_size: 5,
        ..fast()
    })
    .await;
    let g = token(&sb, &c, FABRIKAM, GRAPH).await;
    let base = format!("{}/graph", sb.base_url());

    let (s, v) = get(
        &c,
        &format!(
            "{base}/v1.0/security/incidents?$filter=severity ne 'informational'&$expand=alerts"
        ),
        &g,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let incidents = v["value"].as_array().unwrap();
    assert_eq!(incidents.len(), 5);
    assert!(v["@odata.nextLink"].as_str().unwrap().contains("$skip=5"));

    // `$top` is a page size: a page of $top, and a nextLink (keeping $top) to the rest.
    let (s, all) = get(
        &c,
        &format!("{base}/v1.0/security/incidents?$count=true&$top=5"),
        &g,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let total = all["@odata.count"].as_u64().unwrap() as usize;
    assert!(total > 3, "{all}");
    let mut seen = Vec::new();
    let mut next = Some(format!("{base}/v1.0/security/incidents?$top=3"));
    while let Some(url) = next {
        let (s, page) = get(&c, &url, &g).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["value"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        if let Some(link) = &next {
            assert!(link.contains("$top=3"), "{link}");
        }
    }
    assert_eq!(
        seen.len(),
        total,
        "every incident is reached through the links"
    );
    // Only the properties the list page documents as filterable, and no $orderby.
    let (s, e) = get(
        &c,
        &format!("{base}/v1.0/security/incidents?$filter=displayName eq 'x'"),
        &g,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = get(
        &c,
        &format!("{base}/v1.0/security/incidents?$orderby=createdDateTime"),
        &g,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let inc = &incidents[0];
    assert!(!inc["alerts"].as_array().unwrap().is_empty());
    assert_eq!(inc["tenantId"], FABRIKAM);
    assert_eq!(
        inc["alerts"][0]["evidence"][0]["@odata.type"],
        "#microsoft.graph.security.deviceEvidence"
    );
    let id = inc["id"].as_str().unwrap();

    let url = format!("{base}/v1.0/security/incidents/{id}");
    let (s, p) = send(&c, reqwest::Method::PATCH, &url, &g, json!({"status": "resolved", "classification": "truePositive", "determination": "malware", "customTags": ["reviewed"]})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["status"], "resolved");
    let (s, e) = send(
        &c,
        reqwest::Method::PATCH,
        &url,
        &g,
        json!({"status": "done"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "BadRequest");
    // alertDetermination has confirmedActivity, not the pages' confirmedUserActivity.
    let (s, p) = send(
        &c,
        reqwest::Method::PATCH,
        &url,
        &g,
        json!({"determination": "confirmedActivity", "assignedTo": null}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["determination"], "confirmedActivity");
    assert!(p["assignedTo"].is_null(), "null unassigns: {p}");
    for refused in [
        json!({"determination": "confirmedUserActivity"}),
        json!({"status": "awaitingAction"}),
        json!({"classification": "unknownFutureValue"}),
    ] {
        let (s, e) = send(&c, reqwest::Method::PATCH, &url, &g, refused.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{refused}: {e}");
    }
    let (s, cm) = send(
        &c,
        reqwest::Method::POST,
        &format!("{url}/comments"),
        &g,
        json!({"@odata.type": "microsoft.graph.security.alertComment", "comment": "Confirmed"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        cm["value"].as_array().unwrap().last().unwrap()["comment"],
        "Confirmed"
    );
    assert_eq!(
        get(&c, &format!("{base}/v1.0/security/incidents/999"), &g)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Detection rules (beta only).
    assert_eq!(
        get(
            &c,
            &format!("{base}/v1.0/security/rules/detectionRules"),
            &g
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let rules_url = format!("{base}/beta/security/rules/detectionRules");
    let (s, rules) = get(&c, &format!("{rules_url}?$count=true"), &g).await;
    assert_eq!(s, StatusCode::OK, "{rules}");
    assert_eq!(rules["value"].as_array().unwrap().len(), 4);
    assert_eq!(rules["@odata.count"], 4);
    let seeded = rules["value"].as_array().unwrap();
    assert!(
        seeded.iter().any(|r| r["id"] == "encoded-powershell"),
        "rule ids are client-provided strings: {rules}"
    );
    assert!(seeded.iter().any(|r| r["status"] == "autoDisabled"));
    assert!(seeded.iter().all(|r| r.get("isEnabled").is_none()
        && r["schedule"].get("period").is_none()
        && r["schedule"]["frequency"].is_string()));
    // The create page's example (ms.date 05/25/2026), without what the vendored CSDL lacks.
    let body = json!({
        "@odata.type": "#microsoft.graph.security.detectionRule",
        "id": "office-encoded-powershell",
        "displayName": "Suspicious encoded PowerShell from Office",
        "description": "Encoded PowerShell launched by Office applications.",
        "status": "enabled",
        "queryCondition": {"queryText": "DeviceProcessEvents | where FileName == 'powershell.exe' | where ProcessCommandLine has '-enc' | project Timestamp, DeviceId, ReportId"},
        "schedule": {"frequency": "PT1H"},
        "detectionAction": {"alertTemplate": {
            "title": "Suspicious encoded PowerShell from Office",
            "description": "x",
            "severity": "high",
            "recommendedActions": null,
            "entityMappings": {"hosts": [{"deviceIdColumn": "DeviceId", "nameColumn": "DeviceName"}]},
            "tactics": [{"tactic": "Execution", "techniques": [{"technique": "T1059", "subTechniques": ["T1059.001"]}]}]
        }},
    });
    let response = c
        .post(&rules_url)
        .bearer_auth(&g)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        format!("{rules_url}/office-encoded-powershell")
    );
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["id"], "office-encoded-powershell",
        "the client's id is kept"
    );
    let mut other_name = body.clone();
    other_name["displayName"] = json!("Another name");
    let (s, e) = send(&c, reqwest::Method::POST, &rules_url, &g, other_name).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let mut without = body.clone();
    without["id"] = json!("no-status");
    without.as_object_mut().unwrap().remove("status");
    let (s, e) = send(&c, reqwest::Method::POST, &rules_url, &g, without).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("status is required"),
        "{e}"
    );
    let mut removed = body.clone();
    removed["id"] = json!("old-shape");
    removed["isEnabled"] = json!(true);
    let (s, e) = send(&c, reqwest::Method::POST, &rules_url, &g, removed).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use status"),
        "{e}"
    );

    let rid = created["id"].as_str().unwrap();
    let (s, patched) = send(
        &c,
        reqwest::Method::PATCH,
        &format!("{rules_url}/{rid}"),
        &g,
        json!({"status": "disabled", "schedule": {"frequency": "P1D"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["status"], "disabled");
    assert_eq!(patched["schedule"]["frequency"], "P1D");
    assert_eq!(
        patched["detectionAction"]["alertTemplate"]["title"],
        "Suspicious encoded PowerShell from Office"
    );
    let (s, _) = send(
        &c,
        reqwest::Method::PATCH,
        &format!("{rules_url}/{rid}"),
        &g,
        json!({"schedule": {"period": "24H"}}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "period was removed on 2026-10-01"
    );
    assert_eq!(
        c.delete(format!("{rules_url}/{rid}"))
            .bearer_auth(&g)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn indicators_library_entities_and_alerts() {
    let (sb, c) = start(fast()).await;
    let tok = token(&sb, &c, CONTOSO, MDE).await;
    let api = format!("{}/defender/api", sb.base_url());

    let ind = json!({"indicatorValue": "198.51.100.99", "indicatorType": "IpAddress", "action": "Block", "title": "Bad IP", "severity": "High", "description": "from test", "generateAlert": true});
    let (s, created) = send(
        &c,
        reqwest::Method::POST,
        &format!("{api}/indicators"),
        &tok,
        ind,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.parse::<u64>().is_ok());
    assert_eq!(created["indicatorType"], "IpAddress");
    let (s, e) = send(&c, reqwest::Method::POST, &format!("{api}/indicators"), &tok, json!({"indicatorValue": "10.0.0.1", "indicatorType": "IpAddress", "action": "Block", "title": "x", "description": "x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "InvalidRequestBody");
    assert_eq!(send(&c, reqwest::Method::POST, &format!("{api}/indicators"), &tok, json!({"indicatorValue": "x", "indicatorType": "Hash", "action": "Block", "title": "x", "description": "x"})).await.0, StatusCode::BAD_REQUEST);
    let (_, list) = get(
        &c,
        &format!("{api}/indicators?$filter=indicatorValue eq '198.51.100.99'"),
        &tok,
    )
    .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (s, list) = get(
        &c,
        &format!("{api}/indicators?$filter=startswith(title,'Bad')"),
        &tok,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert!(!list["value"].as_array().unwrap().is_empty());
    // No page shows contains() on indicators.
    let (s, v) = get(
        &c,
        &format!("{api}/indicators?$filter=contains(title,'Bad')"),
        &tok,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // ti-indicator.md retired Alert and AlertAndBlock; post-ti-indicator.md: Audit needs
    // generateAlert true.
    for (action, alert) in [("Alert", true), ("AlertAndBlock", true), ("Audit", false)] {
        let (s, v) = send(
            &c,
            reqwest::Method::POST,
            &format!("{api}/indicators"),
            &tok,
            json!({"indicatorValue": "198.51.100.98", "indicatorType": "IpAddress", "action": action,
                   "title": "t", "description": "d", "generateAlert": alert}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{action}: {v}");
    }
    let (s, imported) = send(
        &c,
        reqwest::Method::POST,
        &format!("{api}/indicators/import"),
        &tok,
        json!({"Indicators": [
            {"indicatorValue": "evil.example", "indicatorType": "DomainName", "action": "Block", "title": "d", "description": "d"},
            {"indicatorValue": "nothex", "indicatorType": "FileSha256", "action": "Block", "title": "f", "description": "f"},
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(imported["value"][0]["isFailed"], false);
    assert_eq!(imported["value"][1]["isFailed"], true);
    assert!(imported["value"][1]["failureReason"].is_string());
    assert_eq!(
        c.delete(format!("{api}/indicators/{id}"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.delete(format!("{api}/indicators/{id}"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Library upload (multipart built by hand), conflict without OverrideIfExists, delete.
    let boundary = "sandboxboundary";
    let multipart = |override_flag: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Test.ps1\"\r\nContent-Type: application/octet-stream\r\n\r\nWrite-Output 'hi'\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"Description\"\r\n\r\ntest script\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"HasParameters\"\r\n\r\nfalse\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"OverrideIfExists\"\r\n\r\n{override_flag}\r\n--{boundary}--\r\n"
        )
    };
    let upload = |body: String| {
        c.post(format!("{api}/libraryfiles"))
            .bearer_auth(&tok)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
    };
    let r = upload(multipart("false")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let lf: Value = r.json().await.unwrap();
    assert_eq!(lf["fileName"], "Test.ps1");
    assert_eq!(lf["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        upload(multipart("false")).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        upload(multipart("true")).await.unwrap().status(),
        StatusCode::OK
    );
    let (_, lib) = get(&c, &format!("{api}/libraryfiles"), &tok).await;
    assert_eq!(lib["value"].as_array().unwrap().len(), 4);
    assert_eq!(
        c.delete(format!("{api}/libraryfiles/Test.ps1"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );

    // Alerts and entities.
    let (s, alerts) = get(
        &c,
        &format!("{api}/alerts?$filter=severity eq 'High'"),
        &tok,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let high = alerts["value"].as_array().unwrap();
    assert!(!high.is_empty() && high.iter().all(|a| a["severity"] == "High"));
    // get-alerts.md Example 1: without $expand=evidence the list carries "evidence": [].
    assert!(high.iter().all(|a| a["evidence"] == json!([])));
    let mut with_file = None;
    for alert in high {
        let (_, full) = get(
            &c,
            &format!("{api}/alerts/{}", alert["id"].as_str().unwrap()),
            &tok,
        )
        .await;
        if full["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["entityType"] == "File")
        {
            with_file = Some(full);
            break;
        }
    }
    let with_file = with_file.expect("a high alert with a file");
    let sha1 = with_file["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entityType"] == "File")
        .unwrap()["sha1"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, f) = get(&c, &format!("{api}/files/{sha1}"), &tok).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["sha1"], sha1.as_str());
    let (s, st) = get(&c, &format!("{api}/files/{sha1}/stats"), &tok).await;
    assert_eq!(s, StatusCode::OK);
    // get-file-statistics.md, "Response example": numbers under these names.
    assert!(
        st["organizationPrevalence"].as_i64().is_some_and(|n| n > 0),
        "{st}"
    );
    assert!(
        st["globallyPrevalence"].is_i64() && st["topFileNames"].is_array(),
        "{st}"
    );
    assert!(
        st["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("InOrgFileStats")
    );
    // get-file-related-alerts.md: SHA-1 only; an unknown file is an empty list.
    let (s, fa) = get(&c, &format!("{api}/files/{sha1}/alerts"), &tok).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        fa["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == with_file["id"])
    );
    let sha256 = f["sha256"].as_str().unwrap();
    let (s, v) = get(&c, &format!("{api}/files/{sha256}/alerts"), &tok).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "InvalidHashValue");
    let (s, v) = get(&c, &format!("{api}/files/{}/alerts", "0".repeat(40)), &tok).await;
    assert_eq!((s, v["value"].clone()), (StatusCode::OK, json!([])));
    // files.md has no md5 and get-file-information.md looks up by SHA-1 or SHA-256 only.
    assert!(f.get("md5").is_none());
    let (s, v) = get(&c, &format!("{api}/files/{}", "a".repeat(32)), &tok).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "InvalidHashValue");
    assert_eq!(
        get(&c, &format!("{api}/files/{}", "0".repeat(40)), &tok)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, ip) = get(&c, &format!("{api}/ips/203.0.113.50/stats"), &tok).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        ip["organizationPrevalence"].as_i64().is_some_and(|n| n > 0),
        "{ip}"
    );
    let (_, ip) = get(&c, &format!("{api}/ips/198.51.100.250/stats"), &tok).await;
    assert_eq!(
        ip["organizationPrevalence"], 0,
        "a valid address nobody contacted"
    );
    let (s, d) = get(&c, &format!("{api}/domains/github.com/stats"), &tok).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["host"], "github.com");
    assert!(d["organizationPrevalence"].is_i64(), "{d}");
    let aid = high[0]["id"].as_str().unwrap();
    assert_eq!(
        get(&c, &format!("{api}/alerts/{aid}"), &tok).await.0,
        StatusCode::OK
    );
    sb.shutdown().await;
}
