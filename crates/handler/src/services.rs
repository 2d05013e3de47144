//! The long-lived dependencies tool calls share, built once at start.

use std::sync::Arc;

use crate::clients::arm::ArmClient;
use crate::clients::defender::DefenderClient;
use crate::clients::graph::GraphClient;
use crate::clients::log_analytics::LogAnalyticsClient;
use crate::config::Config;
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
    pub fn new(config: &Config) -> Result<Self, ServicesError> {
        let http = Arc::new(HttpCore::new(config)?);
        let storage = Storage::new(config.storage.clone(), Some(http.client().clone()))?;
        Ok(Self {
            tenants: config.tenants.clone(),
            defender: DefenderClient::new(http.clone()),
            graph: GraphClient::new(http.clone()),
            arm: ArmClient::new(http.clone()),
            log_analytics: LogAnalyticsClient::new(http),
            storage,
            pacing_budget: config.outbound.max_pacing,
        })
    }
}
