//! A simulated Microsoft tenant on loopback, for developing and testing the Defender/Sentinel
//! MCP server without a real tenant.
//!
//! One [`RunningSandbox`] serves, over HTTPS on `127.0.0.1` with a certificate generated at
//! start:
//!
//! | prefix | stands in for |
//! | --- | --- |
//! | `/{tenant}/oauth2/v2.0/token` | Entra ID token endpoint (`https://login.microsoftonline.com`) |
//! | `/defender/api/...` | Defender for Endpoint (`https://api.securitycenter.microsoft.com/api/...`) |
//! | `/graph/v1.0/...`, `/graph/beta/...` | Microsoft Graph security APIs |
//! | `/arm/subscriptions/...` | Azure Resource Manager (Log Analytics workspaces, Sentinel) |
//! | `/loganalytics/v1/workspaces/{id}/query` | Log Analytics query API |
//! | `/_sandbox/...` | admin API: fault injection, statistics, downloads (no auth) |
//!
//! All state lives in the instance (tests start one sandbox each). The data is generated from
//! a seeded RNG, so the same seed gives the same machines, alerts, incidents and log rows
//! (timestamps are relative to the start time). Notable seeded facts for tests:
//! - two tenants, "Contoso" (`11111111-1111-4111-8111-111111111111`, two workspaces) and
//!   "Fabrikam" (`22222222-2222-4222-8222-222222222222`, one workspace);
//! - 50 machines per tenant, a few of them unmanaged (`onboardingStatus` `CanBeOnboarded`);
//! - in Contoso's first workspace the `CommonSecurityLog` table is stale: its newest row is
//!   three days old (freshness checks should flag it).

mod arm;
mod content;
mod contract;
mod defender;
mod errors;
mod faults;
mod graph;
mod insights;
pub mod kql;
mod loganalytics;
mod odata;
mod resources;
mod seed;
mod sentinel;
mod server;
mod state;
mod tables;
mod tls;
mod token;
mod util;

use std::sync::Arc;
use std::time::Duration;

pub use faults::{Fault, FaultKind, RequestStats, SandboxStats, TokenStats};
pub use state::MachineState;

/// How the sandbox is started.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// How long machine actions stay Pending and InProgress before they succeed.
    pub action_timings: ActionTimings,
    /// Server page size of list endpoints (`@odata.nextLink` / `nextLink` beyond it).
    pub page_size: usize,
    /// Seed of the generated tenant data.
    pub seed: u64,
    /// Defender machine and machine-action endpoints: calls per tenant per rolling minute
    /// (Microsoft documents 100).
    pub rate_limit_per_minute: u32,
    /// The same per rolling hour (Microsoft documents 1,500).
    pub rate_limit_per_hour: u32,
    /// Length of the rolling "minute" window (60 s); tests shorten it, with the client's
    /// limiter, to run minutes of pacing in seconds.
    pub rate_limit_minute: Duration,
    /// Length of the rolling "hour" window (3,600 s).
    pub rate_limit_hour: Duration,
    /// Onboarded, active workstations added to each tenant after the 50 seeded devices
    /// (`ws-fleet-0000` ...), for bulk actions on a large fleet.
    pub extra_workstations: usize,
    /// Lifetime of issued access tokens (`expires_in`); Entra's usual is 3599 s.
    pub token_lifetime: Duration,
    /// Application permissions the app is NOT granted (e.g. `Machine.Isolate`): its tokens lack
    /// them, and the endpoints that need them answer Microsoft's 403. Empty: every permission
    /// the vendored definitions name is granted.
    pub withheld_permissions: Vec<String>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            port: 0,
            action_timings: ActionTimings::default(),
            page_size: 25,
            seed: 42,
            rate_limit_per_minute: 100,
            rate_limit_per_hour: 1500,
            rate_limit_minute: Duration::from_secs(60),
            rate_limit_hour: Duration::from_secs(3600),
            extra_workstations: 0,
            token_lifetime: Duration::from_secs(3599),
            withheld_permissions: Vec::new(),
        }
    }
}

/// Machine-action lifecycle timings; status is computed lazily from the elapsed time.
#[derive(Debug, Clone, Copy)]
pub struct ActionTimings {
    pub pending: Duration,
    pub in_progress: Duration,
}

impl Default for ActionTimings {
    fn default() -> Self {
        Self {
            pending: Duration::from_secs(2),
            in_progress: Duration::from_secs(3),
        }
    }
}

/// A tenant the sandbox simulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxTenant {
    pub tenant_id: String,
    pub display_name: String,
    pub workspaces: Vec<SandboxWorkspace>,
}

/// A Log Analytics workspace with Sentinel enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxWorkspace {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    /// The workspace GUID the Log Analytics query API addresses.
    pub customer_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("could not bind 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// A started sandbox. Dropping it without [`RunningSandbox::shutdown`] also stops the server
/// (the accept loop ends when its shutdown sender is dropped).
pub struct RunningSandbox {
    state: state::AppState,
    server: server::ServerHandle,
}

impl RunningSandbox {
    /// Generates the data and the certificate, binds the port and starts serving.
    pub async fn start(options: SandboxOptions) -> Result<RunningSandbox, SandboxError> {
        let tls = tls::generate()?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|source| SandboxError::Bind {
                port: options.port,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind {
                port: options.port,
                source,
            })?
            .port();
        let base_url = format!("https://127.0.0.1:{port}");
        let state = Arc::new(state::Inner::new(options, base_url, tls.ca_pem));
        let router = server::router(state.clone());
        let server = server::serve(listener, tls.server_config, router);
        tracing::info!(base_url = %state.base_url, "sandbox started");
        Ok(RunningSandbox { state, server })
    }

    /// `https://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    /// PEM of the CA that signed the server certificate: add it to the client's trust roots.
    pub fn ca_certificate_pem(&self) -> &str {
        &self.state.ca_pem
    }

    pub fn tenants(&self) -> &[SandboxTenant] {
        &self.state.tenants_public
    }

    /// The app registration (multi-tenant, consented in every sandbox tenant).
    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.state.client_secret
    }

    /// Queues a fault for the next `times` matching requests.
    pub fn inject_fault(&self, fault: Fault) {
        self.state.faults.add(fault);
    }

    /// Removes all queued faults.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Request, token and throttling counters since start.
    pub fn stats(&self) -> SandboxStats {
        self.state.faults.stats()
    }

    /// Internal containment state of a machine (not part of the Defender machine resource),
    /// so tests can check that an isolation really took effect.
    pub fn machine_state(&self, tenant_id: &str, machine_id: &str) -> Option<MachineState> {
        self.state.machine_state(tenant_id, machine_id)
    }

    /// Stops accepting connections and closes the open ones.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
