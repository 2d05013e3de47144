//! MCP server for Microsoft Defender for Endpoint / Defender XDR and Microsoft Sentinel, run as
//! an Azure Functions custom handler.

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod config;
pub mod deadline;
pub mod health;
pub mod host;
pub mod hunts;
pub mod jobs;
pub mod kql_guard;
#[cfg(test)]
mod layering;
pub mod limits;
pub mod local;
pub mod mcp;
pub mod operations;
pub mod outbound;
pub mod quota;
pub mod roles;
pub mod secrets;
pub mod services;
pub mod storage;
pub mod telemetry;
pub mod tenants;
#[cfg(all(test, feature = "embedded-sandbox"))]
mod testing;
pub mod tools;
pub mod toolsets;

use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::InboundAuth;
use crate::config::Config;
use crate::host::ConnectionRequest;
use crate::host::FunctionHandler;
use crate::mcp::{
    Approvals, CallPolicy, CatalogueBuilder, CatalogueFilter, ConnectionScope, McpServer,
};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    // Boxed: storage errors are large, and a start error is built once.
    #[error("configuration: {0}")]
    Config(Box<config::ConfigError>),
    #[error(transparent)]
    Services(Box<services::ServicesError>),
    #[error("tool catalogue: {0}")]
    Catalogue(#[from] mcp::CatalogueError),
    #[error(transparent)]
    ApprovalKey(#[from] mcp::ApprovalKeyError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("local sandbox: {0}")]
    Sandbox(String),
    #[error(transparent)]
    Secrets(#[from] secrets::SecretError),
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
    #[error("outbound HTTP client: {0}")]
    Http(#[from] outbound::HttpCoreError),
}

impl From<config::ConfigError> for StartError {
    fn from(error: config::ConfigError) -> Self {
        Self::Config(Box::new(error))
    }
}

impl From<services::ServicesError> for StartError {
    fn from(error: services::ServicesError) -> Self {
        Self::Services(Box::new(error))
    }
}

/// The whole application as an axum router, on services built by the caller (`serve` uses the
/// environment and the system clock; tests inject secrets and a clock).
pub fn app_with_services(
    config: &Config,
    services: Arc<Services>,
) -> Result<axum::Router, StartError> {
    app_with_tools(config, services, |builder| builder)
}

/// [`app_with_services`] with extra tools registered after the product's own: integration tests
/// add tools (a destructive one, say) that are never shipped.
pub fn app_with_tools(
    config: &Config,
    services: Arc<Services>,
    extra: impl FnOnce(CatalogueBuilder) -> CatalogueBuilder,
) -> Result<axum::Router, StartError> {
    let filter = CatalogueFilter {
        read_only: config.mcp.read_only,
        toolsets: config.mcp.toolsets.clone(),
    };
    let catalogue = Arc::new(tools::catalogue(filter, &services, &config.jobs, extra)?);
    let health = Arc::new(health::Health::new(
        services.clone(),
        catalogue.visible_tools().len(),
    ));
    let mut functions: HashMap<&'static str, Arc<dyn FunctionHandler>> = HashMap::new();
    functions.insert(
        hunts::FUNCTION_NAME,
        Arc::new(hunts::HuntTimer::new(services.hunts.clone())),
    );
    functions.insert(
        jobs::poison::FUNCTION_NAME,
        Arc::new(jobs::poison::PoisonHandler::new(
            services.jobs.clone(),
            services.tenants.clone(),
        )),
    );
    functions.insert(
        operations::function::FUNCTION_NAME,
        Arc::new(operations::function::OperationsFunction::new(
            services.operations.clone(),
        )),
    );
    functions.insert(
        operations::function::POISON_FUNCTION_NAME,
        Arc::new(operations::function::OperationsPoisonFunction::new(
            services.operations.clone(),
        )),
    );
    let store = Arc::new(approvals::ApprovalStore::new(&services.storage));
    let approvals = Approvals::new(&config.approval, store.clone())?;
    let page = approvals::page::router(approvals::page::PageState::new(
        store,
        approvals.page_key(),
        &config.approval,
        &config.inbound,
        services.clone(),
    ));
    let policy = Arc::new(CallPolicy {
        approvals,
        max_argument_bytes: config.mcp.max_argument_bytes,
        call_deadline: config.mcp.call_deadline,
    });
    let auth = Arc::new(InboundAuth::new(
        &config.inbound,
        &config.mcp,
        services.http.client().clone(),
    ));
    auth.share_rate_limit(services.quota.clone());
    if let config::InboundMode::None { local_role } = &config.inbound.mode {
        tracing::warn!(
            role = local_role.name(),
            "inbound authentication is off (AUTH_INBOUND_MODE=none): every caller that passes the function key acts with this role"
        );
    }
    let server = McpServer::new(catalogue, services, policy, config.inbound.roles.clone());
    let connection: host::Resolver<ConnectionScope> = Arc::new(|request: &ConnectionRequest| {
        ConnectionScope::resolve(
            request.path_toolsets.as_deref(),
            request.header_toolsets.as_deref(),
            request.read_only,
        )
        .map_err(|unknown| unknown.to_string())
    });
    Ok(host::router(
        move || server.clone(),
        connection,
        &config.mcp,
        auth,
        health,
        functions,
        page,
    ))
}

/// Binds 127.0.0.1 (the host always calls the handler on loopback) and serves until `shutdown`.
/// `local` (`handler --sandbox`): no Functions host drives the timer, so the hunt schedule runs
/// in-process, and an example hunt is seeded when there is none.
pub async fn serve(
    config: &Config,
    local: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let services = Arc::new(Services::new(config)?);
    let router = app_with_services(config, services.clone())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
        .await
        .map_err(|source| StartError::Listen {
            port: config.port,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| StartError::Listen {
        port: config.port,
        source,
    })?;
    tracing::info!(%address, mcp = %format!("http://{address}/api/mcp"), "handler listening");
    if services.operations.queue_name().is_none() {
        // No queue redelivers the operations of an instance that stopped: every instance looks
        // for them (they are taken over through their leases, so only one instance runs each).
        services.operations.spawn_local_sweep();
    }
    if local {
        // Seeding talks to storage: it runs beside the server so readiness never waits on it.
        let hunts = services.hunts.clone();
        let local_interval = config.hunts.local_interval;
        tokio::spawn(async move {
            match hunts.seed_example().await {
                Ok(Some(hunt)) => {
                    tracing::info!(hunt = %hunt.id, name = %hunt.name, "seeded an example hunt (none existed)")
                }
                Ok(None) => {}
                Err(error) => tracing::warn!("the example hunt could not be seeded: {error}"),
            }
            if let Some(every) = local_interval {
                tracing::info!(
                    every_seconds = every.as_secs(),
                    "running the hunt schedule in-process (no Functions host)"
                );
                crate::hunts::spawn_local_schedule(hunts, every);
            }
        });
    }
    host::server::serve(
        listener,
        router,
        host::server::ReadTimeouts::default(),
        shutdown,
    )
    .await;
    // Calls answered just before shutdown may still be storing their audit records, and records
    // storage refused earlier may still wait.
    services.audit.close().await;
    Ok(())
}
