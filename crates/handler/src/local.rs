//! Local runs on the embedded sandbox: the settings that point the handler at a simulated
//! tenant instead of Microsoft's cloud, so `handler --sandbox` is a working product with no Azure.
//!
//! The sandbox is compiled in by the default feature `embedded-sandbox`. The shipped build
//! (scripts/package) leaves it out: Azure never runs it, and it is 3.5 MB (a seventh) of the
//! shipped binary, which every cold start loads.

use std::collections::HashMap;

#[cfg(feature = "embedded-sandbox")]
use sandbox::RunningSandbox;

use crate::StartError;
use crate::config::settings;
#[cfg(feature = "embedded-sandbox")]
use crate::tenants::{TenantConfig, WorkspaceConfig};

/// The simulated tenant of a `--sandbox` run, when this build has one.
pub struct LocalSandbox(Embedded);

#[cfg(feature = "embedded-sandbox")]
type Embedded = RunningSandbox;
/// A build without the sandbox can never hold one.
#[cfg(not(feature = "embedded-sandbox"))]
enum Embedded {}

impl LocalSandbox {
    #[cfg(feature = "embedded-sandbox")]
    pub async fn start() -> Result<Self, StartError> {
        let sandbox = RunningSandbox::start(sandbox::SandboxOptions::default())
            .await
            .map_err(|error| StartError::Sandbox(error.to_string()))?;
        tracing::info!(url = sandbox.base_url(), "embedded sandbox tenant started");
        Ok(Self(sandbox))
    }

    #[cfg(not(feature = "embedded-sandbox"))]
    pub async fn start() -> Result<Self, StartError> {
        Err(StartError::Sandbox(
            "this build has no embedded sandbox (the shipped build leaves it out); run scripts/run-local from the repository, which builds it in".into(),
        ))
    }

    /// The settings that point every Microsoft API at the sandbox.
    pub fn settings(&self) -> HashMap<&'static str, String> {
        #[cfg(feature = "embedded-sandbox")]
        return sandbox_settings(&self.0);
        #[cfg(not(feature = "embedded-sandbox"))]
        match self.0 {}
    }

    /// The sandbox's own CA, which the outbound client must trust.
    pub fn ca_certificate_pem(&self) -> String {
        #[cfg(feature = "embedded-sandbox")]
        return self.0.ca_certificate_pem().to_string();
        #[cfg(not(feature = "embedded-sandbox"))]
        match self.0 {}
    }

    pub async fn shutdown(self) {
        #[cfg(feature = "embedded-sandbox")]
        self.0.shutdown().await;
        #[cfg(not(feature = "embedded-sandbox"))]
        match self.0 {}
    }
}

/// App settings that route every Microsoft API and the token authority to the sandbox.
/// Anything the operator set explicitly in the environment still wins for the rest.
#[cfg(feature = "embedded-sandbox")]
pub fn sandbox_settings(sandbox: &RunningSandbox) -> HashMap<&'static str, String> {
    let base = sandbox.base_url().trim_end_matches('/');
    let tenants: Vec<TenantConfig> = sandbox
        .tenants()
        .iter()
        .map(|tenant| TenantConfig {
            tenant_id: tenant
                .tenant_id
                .parse()
                .expect("the sandbox's tenant ids are GUIDs"),
            display_name: tenant.display_name.clone(),
            enabled: true,
            workspaces: tenant
                .workspaces
                .iter()
                .map(|w| WorkspaceConfig {
                    subscription_id: w.subscription_id.clone(),
                    resource_group: w.resource_group.clone(),
                    workspace_name: w.name.clone(),
                    workspace_id: w.customer_id.clone(),
                })
                .collect(),
        })
        .collect();
    HashMap::from([
        (settings::AUTH_MODE, "client_secret".to_string()),
        (settings::AZURE_CLIENT_ID, sandbox.client_id().to_string()),
        (
            settings::AZURE_CLIENT_SECRET,
            sandbox.client_secret().to_string(),
        ),
        (settings::AZURE_AUTHORITY_HOST, base.to_string()),
        (settings::DEFENDER_API_BASE_URL, format!("{base}/defender")),
        (settings::GRAPH_BASE_URL, format!("{base}/graph")),
        (settings::ARM_BASE_URL, format!("{base}/arm")),
        (
            settings::LOG_ANALYTICS_BASE_URL,
            format!("{base}/loganalytics"),
        ),
        (
            settings::TENANTS,
            serde_json::to_string(&tenants).unwrap_or_default(),
        ),
    ])
}

/// Settings `--sandbox` assumes unless the environment sets them: no inbound identity and every
/// local caller an Admin (a demo on a simulated tenant). Destructive tools are approved on the
/// approval page at the local address (see [`local_public_url`]), with no sign-in.
pub fn sandbox_defaults() -> HashMap<&'static str, String> {
    HashMap::from([
        (settings::AUTH_INBOUND_MODE, "none".to_string()),
        (settings::AUTH_LOCAL_ROLE, "admin".to_string()),
    ])
}

/// Where a browser on this machine reaches a local run: the approval page's base URL.
pub fn local_public_url(port: u16) -> String {
    format!("http://localhost:{port}")
}
