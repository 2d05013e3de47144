//! The long-lived dependencies tool calls share, built once at start.

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::clients::arm::ArmClient;
use crate::clients::defender::DefenderClient;
use crate::clients::log_analytics::LogAnalyticsClient;
use crate::config::Config;
use crate::outbound::{HttpCore, HttpCoreError};
use crate::storage::{Storage, StorageError};
use crate::tenants::TenantRegistry;

pub struct Services {
    pub tenants: TenantRegistry,
    pub defender: DefenderClient,
    pub arm: ArmClient,
    pub log_analytics: LogAnalyticsClient,
    pub storage: Storage,
    pub audit: AuditLog,
    /// The shared HTTP core (pooled client); the inbound auth layer fetches signing keys with it.
    pub http: Arc<HttpCore>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Http(#[from] HttpCoreError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl Services {
    pub fn new(config: &Config) -> Result<Self, ServicesError> {
        let http = Arc::new(HttpCore::new(config)?);
        let storage = Storage::new(config.storage.clone(), Some(http.client().clone()))?;
        Ok(Self {
            tenants: config.tenants.clone(),
            defender: DefenderClient::new(http.clone()),
            arm: ArmClient::new(http.clone()),
            log_analytics: LogAnalyticsClient::new(http.clone()),
            audit: AuditLog::new(&storage),
            storage,
            http,
        })
    }
}
