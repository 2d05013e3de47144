//! Helpers for the Sentinel test files: the sandbox's workspaces, direct ARM calls to the
//! sandbox (to change something behind the server's back), and faults.

use std::time::Duration;

use sandbox::{Fault, FaultKind, SandboxWorkspace};
use serde_json::Value;

use super::common::{CONTOSO, FABRIKAM, TestApp};

/// A sandbox workspace by tenant (0 Contoso, 1 Fabrikam) and position.
pub fn workspace(app: &TestApp, tenant: usize, index: usize) -> SandboxWorkspace {
    app.sandbox.tenants()[tenant].workspaces[index].clone()
}

/// ARM calls straight to the sandbox with a token of the tenant, as another admin would make them.
pub struct DirectArm {
    client: reqwest::Client,
    token: String,
    base: String,
}

impl DirectArm {
    pub async fn new(app: &TestApp, tenant: &str) -> Self {
        let certificates =
            reqwest::Certificate::from_pem_bundle(app.sandbox.ca_certificate_pem().as_bytes())
                .expect("CA");
        let client = reqwest::Client::builder()
            .tls_certs_merge(certificates)
            .build()
            .expect("client");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", app.sandbox.client_id()),
            ("client_secret", app.sandbox.client_secret()),
            ("scope", "https://management.azure.com/.default"),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response: Value = client
            .post(format!(
                "{}/{tenant}/oauth2/v2.0/token",
                app.sandbox.base_url()
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token json");
        let token = response["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        Self {
            client,
            token,
            base: format!("{}/arm", app.sandbox.base_url()),
        }
    }

    pub async fn contoso(app: &TestApp) -> Self {
        Self::new(app, CONTOSO).await
    }

    pub async fn fabrikam(app: &TestApp) -> Self {
        Self::new(app, FABRIKAM).await
    }

    /// The workspace's ARM path (without host), e.g. for `{ws}/providers/Microsoft.SecurityInsights/...`.
    pub fn workspace_path(w: &SandboxWorkspace) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
            w.subscription_id, w.resource_group, w.name
        )
    }

    pub fn group_path(w: &SandboxWorkspace) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            w.subscription_id, w.resource_group
        )
    }

    fn url(&self, path: &str, api_version: &str) -> String {
        let separator = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{separator}api-version={api_version}", self.base)
    }

    pub async fn get(&self, path: &str, api_version: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path, api_version))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn put(&self, path: &str, api_version: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .put(self.url(path, api_version))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("PUT");
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn delete(&self, path: &str, api_version: &str) -> u16 {
        self.client
            .delete(self.url(path, api_version))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("DELETE")
            .status()
            .as_u16()
    }

    /// Every item of an ARM list, following nextLinks.
    pub async fn list(&self, path: &str, api_version: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = Some(self.url(path, api_version));
        while let Some(url) = next.take() {
            let page: Value = self
                .client
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("GET")
                .json()
                .await
                .expect("json");
            items.extend(page["value"].as_array().cloned().unwrap_or_default());
            next = page["nextLink"].as_str().map(str::to_string);
        }
        items
    }
}

pub const SI_VERSION: &str = "2025-09-01";
/// The alert-rules operations are called at the preview that defines the NRT kind.
pub const SI_RULES_VERSION: &str = "2025-10-01-preview";
pub const OI_VERSION: &str = "2026-03-01";
pub const WORKBOOKS_VERSION: &str = "2023-06-01";

/// Holds the next matching PUT for `delay`: long enough for a test to change the resource in
/// between the server's read and its write.
pub fn slow_next_put(app: &TestApp, path_prefix: String, delay: Duration) {
    app.sandbox.inject_fault(Fault {
        path_prefix,
        method: Some("PUT".into()),
        kind: FaultKind::Slow,
        retry_after_secs: None,
        status: None,
        delay_ms: Some(delay.as_millis() as u64),
        times: 1,
    });
}

/// A change someone else makes: bumps the resource's etag.
pub async fn touch(arm: &DirectArm, path: &str, api_version: &str, edit: impl FnOnce(&mut Value)) {
    let (status, mut resource) = arm.get(path, api_version).await;
    assert_eq!(status, 200, "{resource}");
    // Like any client, the other party sends no read-only property back (the data collection
    // definition marks these readOnly; the sandbox refuses them as the definitions say).
    if let Some(object) = resource.as_object_mut() {
        object.remove("etag");
        object.remove("systemData");
    }
    if let Some(properties) = resource["properties"].as_object_mut() {
        for read_only in ["immutableId", "provisioningState", "endpoints", "metadata"] {
            properties.remove(read_only);
        }
    }
    edit(&mut resource);
    let (status, body) = arm.put(path, api_version, &resource).await;
    assert!(status == 200 || status == 201, "{status} {body}");
}
