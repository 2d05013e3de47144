//! Microsoft Sentinel tools (ARM and the Log Analytics query API), one module per sub-family.
//! This file holds what they share: which workspace a call is about, list paging, limits, and
//! how client errors read as tool errors.

mod backup;
mod dcr;
mod health;
mod incidents;
mod long_running;
mod prompts;
mod query;
mod rules;
mod tables;
mod watchlists;
mod workbooks;
mod workspaces;

use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;

use crate::clients::arm::ArmError;
use crate::mcp::{CatalogueBuilder, ToolContext, ToolError};
use crate::outbound::ListPosition;
use crate::tenants::{TenantConfig, TenantId, WorkspaceConfig};
pub use crate::tools::args::one_line;
use crate::tools::cursor;
pub use long_running::{ArmFollower, OperationReport};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    let builder = workspaces::register(health::register(query::register(builder)));
    let builder = rules::register(tables::register(builder));
    let builder = incidents::register(workbooks::register(builder));
    let builder = dcr::register(watchlists::register(backup::register(builder)));
    prompts::register(builder)
}

impl From<ArmError> for ToolError {
    fn from(error: ArmError) -> Self {
        match error {
            ArmError::Api(error) => ToolError::Api(error),
            conflict @ ArmError::Conflict { .. } => ToolError::Conflict(conflict.to_string()),
            failed @ ArmError::OperationFailed { .. } => ToolError::Failed(failed.to_string()),
        }
    }
}

/// The tenant and workspace a call acts on.
pub struct Target<'a> {
    pub tenant: &'a TenantConfig,
    pub workspace: &'a WorkspaceConfig,
}

impl Target<'_> {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant.tenant_id
    }
}

/// Resolves the tenant through the allow-list, then the workspace by name among the tenant's
/// configured workspaces; the name may be left out when the tenant has exactly one.
pub fn target<'a>(
    context: &'a ToolContext,
    tenant_id: Option<&TenantId>,
    workspace: Option<&str>,
) -> Result<Target<'a>, ToolError> {
    let tenant = context.services.tenants.resolve(tenant_id)?;
    let workspace = find_workspace(tenant, workspace)?;
    Ok(Target { tenant, workspace })
}

pub fn find_workspace<'a>(
    tenant: &'a TenantConfig,
    name: Option<&str>,
) -> Result<&'a WorkspaceConfig, ToolError> {
    let names = || {
        tenant
            .workspaces
            .iter()
            .map(|w| w.workspace_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name.map(str::trim) {
        Some(name) => tenant
            .workspaces
            .iter()
            .find(|w| w.workspace_name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ToolError::invalid(format!(
                    "workspace '{name}' is not configured for tenant {}; configured: {}",
                    tenant.tenant_id,
                    names()
                ))
            }),
        None => match tenant.workspaces.as_slice() {
            [only] => Ok(only),
            [] => Err(ToolError::invalid(format!(
                "tenant {} has no Sentinel workspaces configured",
                tenant.tenant_id
            ))),
            _ => Err(ToolError::invalid(format!(
                "tenant {} has several workspaces; name one in 'workspace': {}",
                tenant.tenant_id,
                names()
            ))),
        },
    }
}

/// One page of an ARM list for a tool: from the start URL, or from a cursor a previous call
/// returned for the same list. The next cursor is bound to the tenant.
pub async fn page<T: DeserializeOwned>(
    context: &ToolContext,
    tenant: &TenantId,
    start: impl FnOnce() -> Result<Url, ToolError>,
    cursor_text: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ToolError> {
    let arm = &context.services.arm;
    let start = start()?;
    let position = match cursor_text {
        Some(text) => {
            let position = cursor::decode(tenant, text)?;
            arm.check_position(&position)?;
            if !position.page.path().eq_ignore_ascii_case(start.path()) {
                return Err(ToolError::invalid(
                    "the cursor continues a different list (another workspace or incident); start again without a cursor",
                ));
            }
            position
        }
        None => ListPosition::start(start),
    };
    let collected = arm.list(tenant, position, limit).await?;
    Ok((
        collected.items,
        collected.next.map(|next| cursor::encode(tenant, next)),
    ))
}

/// How long a tool waits for a long-running operation: `wait_seconds`, 0-120, default 30.
pub fn operation_wait(wait_seconds: Option<u32>) -> Result<Duration, ToolError> {
    match wait_seconds.unwrap_or(30) {
        seconds @ 0..=120 => Ok(Duration::from_secs(u64::from(seconds))),
        other => Err(ToolError::invalid(format!(
            "wait_seconds must be between 0 and 120, got {other}"
        ))),
    }
}
