//! `/api/health`: what an operator needs to see that the instance can work, without secrets
//! or tenant ids (the endpoint may be anonymous).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::host::HealthProbe;
use crate::services::Services;

const STORAGE_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Health {
    services: Arc<Services>,
    tools: usize,
}

impl Health {
    pub fn new(services: Arc<Services>, tools: usize) -> Self {
        Self { services, tools }
    }
}

#[async_trait::async_trait]
impl HealthProbe for Health {
    async fn probe(&self) -> (bool, serde_json::Value) {
        let storage = match tokio::time::timeout(
            STORAGE_PROBE_TIMEOUT,
            self.services.storage.ping(),
        )
        .await
        {
            Ok(Ok(())) => json!({ "status": "ok" }),
            Ok(Err(error)) => json!({ "status": "failed", "detail": error.to_string() }),
            Err(_) => {
                json!({ "status": "failed", "detail": format!("no answer within {} s", STORAGE_PROBE_TIMEOUT.as_secs()) })
            }
        };
        let healthy = storage["status"] == "ok";
        let backlog = self.services.audit.health();
        let audit_status = if backlog.dropped > 0 {
            "records_dropped"
        } else if backlog.waiting > 0 {
            "waiting_for_storage"
        } else {
            "ok"
        };
        let audit = json!({
            "status": audit_status,
            "waiting": backlog.waiting,
            "dropped": backlog.dropped,
            "last_error": backlog.last_error,
        });
        let tenants = self.services.tenants.all();
        let body = json!({
            "status": if healthy { "ok" } else { "degraded" },
            "version": env!("CARGO_PKG_VERSION"),
            "checks": { "storage": storage, "audit": audit },
            "tenants": { "configured": tenants.len(), "enabled": tenants.iter().filter(|t| t.enabled).count() },
            "tools": self.tools,
        });
        (healthy, body)
    }
}
