//! The long-lived dependencies tool calls share, built once at start.

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::clients::arm::ArmClient;
use crate::clients::defender::DefenderClient;
use crate::clients::graph::GraphClient;
use crate::clients::log_analytics::LogAnalyticsClient;
use crate::config::Config;
use crate::hunts::{AppSettingSecrets, Clock, Hunts, SecretResolver, SystemClock};
use crate::jobs::Jobs;
use crate::outbound::{HttpCore, HttpCoreError};
use crate::storage::{Storage, StorageError};
use crate::tenants::TenantRegistry;

pub struct Services {
    pub tenants: TenantRegistry,
    pub defender: DefenderClient,
    pub graph: GraphClient,
    pub arm: ArmClient,
    pub log_analytics: LogAnalyticsClient,
    pub storage: Storage,
    pub hunts: Arc<Hunts>,
    pub jobs: Arc<Jobs>,
    /// Durable operations (bulk device actions) and the instance's part in running them.
    pub operations: Arc<crate::operations::Operations>,
    pub audit: AuditLog,
    /// The shared HTTP core (pooled client); the inbound auth layer fetches signing keys with it.
    pub http: Arc<HttpCore>,
    /// The windows all instances keep together (`QUOTA_CONTAINER`): Microsoft's per-tenant
    /// quotas and the per-caller request limit.
    pub quota: Arc<crate::storage::quota::QuotaLedger>,
    /// The longest one tool call waits, in total, for rate-limit slots (`OUTBOUND_MAX_PACING_SECONDS`).
    pub pacing_budget: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Http(#[from] HttpCoreError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl Services {
    /// Secrets from app settings and the system clock.
    pub fn new(config: &Config) -> Result<Self, ServicesError> {
        Self::with(
            config,
            Arc::new(AppSettingSecrets::from_env()),
            Arc::new(SystemClock),
        )
    }

    /// `secrets` resolves the webhook URLs hunt alerts name; `clock` is what the hunt scheduler
    /// calls now (tests move it).
    pub fn with(
        config: &Config,
        secrets: Arc<dyn SecretResolver>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServicesError> {
        let http = Arc::new(HttpCore::new(config)?);
        let storage = Storage::new(config.storage.clone(), Some(http.client().clone()))?;
        Ok(Self::on(config, http, storage, secrets, clock))
    }

    /// On a storage account of the caller's choosing (`config.storage` is not used): the
    /// in-memory account in tests that run without a storage emulator.
    pub fn with_storage(
        config: &Config,
        storage: Storage,
        secrets: Arc<dyn SecretResolver>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServicesError> {
        let http = Arc::new(HttpCore::new(config)?);
        Ok(Self::on(config, http, storage, secrets, clock))
    }

    fn on(
        config: &Config,
        http: Arc<HttpCore>,
        storage: Storage,
        secrets: Arc<dyn SecretResolver>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let quota = Arc::new(crate::storage::quota::QuotaLedger::new(
            &storage,
            &config.outbound.quota_container,
        ));
        http.share_quota(quota.clone());
        let graph = GraphClient::new(http.clone());
        let hunts = Arc::new(Hunts::new(
            &storage,
            graph.clone(),
            config.tenants.clone(),
            http.client().clone(),
            secrets,
            config.hunts.clone(),
            clock,
        ));
        let jobs = Arc::new(Jobs::new(&storage, &config.jobs));
        let operations = Arc::new(crate::operations::Operations::new(
            jobs.clone(),
            &storage,
            &config.jobs,
        ));
        Self {
            tenants: config.tenants.clone(),
            defender: DefenderClient::new(http.clone()),
            graph,
            arm: ArmClient::new(http.clone()),
            log_analytics: LogAnalyticsClient::new(http.clone()),
            audit: AuditLog::new(&storage),
            storage,
            hunts,
            jobs,
            operations,
            http,
            quota,
            pacing_budget: config.outbound.max_pacing,
        }
    }
}
