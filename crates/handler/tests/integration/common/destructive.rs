//! A destructive tool that exists only in tests: the product ships none yet, and the approval
//! machinery must be proven on one. It counts how often it really ran.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use handler::approvals::{Change, Plan, PlanTarget};
use handler::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use handler::tenants::TenantId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const NAME: &str = "test_wipe_machines";

#[derive(Clone, Default)]
pub struct WipeMachines {
    pub runs: Arc<AtomicUsize>,
    /// A device the plan adds to the named ones, as a filter would when the tenant changes.
    pub also_matches: Arc<Mutex<Option<String>>>,
}

impl WipeMachines {
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// From now on, plans also target `device` (the world changed under an approval).
    pub fn also_match(&self, device: &str) {
        *self.also_matches.lock().expect("lock") = Some(device.to_string());
    }

    pub fn register(&self) -> impl FnOnce(CatalogueBuilder) -> CatalogueBuilder + use<> {
        let tool = self.clone();
        move |builder| builder.tool(tool)
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WipeParams {
    /// Tenant (GUID).
    tenant_id: Option<TenantId>,
    /// Devices to wipe.
    machine_ids: Vec<String>,
    /// Why.
    comment: String,
}

#[derive(Serialize, JsonSchema)]
pub struct WipeOutput {
    action_id: String,
    machines: usize,
}

impl Summary for WipeOutput {
    fn summary(&self) -> String {
        format!(
            "wipe {} started on {} devices",
            self.action_id, self.machines
        )
    }
}

#[async_trait::async_trait]
impl Tool for WipeMachines {
    type Params = WipeParams;
    type Output = WipeOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME,
            title: "Wipe devices (test only)",
            description: "Test-only destructive tool: pretends to wipe the given devices.",
            toolset: Toolset::Response,
            effect: Effect::Destructive { idempotent: false },
            tier: Tier::Responder,
        }
    }

    async fn plan(&self, _context: &ToolContext, params: &WipeParams) -> Result<Plan, ToolError> {
        if params.comment.trim().is_empty() {
            return Err(ToolError::invalid("comment must say why"));
        }
        let extra = self.also_matches.lock().expect("lock").clone();
        let targets: Vec<PlanTarget> = params
            .machine_ids
            .iter()
            .chain(extra.as_ref())
            .map(|id| PlanTarget::new("device", id.clone(), None, Change::to("wiped")))
            .collect();
        Ok(Plan::action(format!("Wipe {} devices", targets.len())).with_targets(targets))
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: WipeParams,
    ) -> Result<WipeOutput, ToolError> {
        context
            .services
            .tenants
            .resolve(params.tenant_id.as_ref())?;
        if params.comment.trim().is_empty() {
            return Err(ToolError::invalid("comment must say why"));
        }
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(WipeOutput {
            action_id: uuid::Uuid::new_v4().to_string(),
            machines: params.machine_ids.len(),
        })
    }
}
