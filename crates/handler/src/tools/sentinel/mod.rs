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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::clients::arm::WorkspaceResource;
    use crate::testing::Harness;

    fn workspace(name: &str) -> WorkspaceConfig {
        WorkspaceConfig {
            subscription_id: "00000000-0000-4000-8000-000000000001".into(),
            resource_group: "rg-soc".into(),
            workspace_name: name.into(),
            workspace_id: "00000000-0000-4000-8000-000000000002".into(),
        }
    }

    fn tenant(workspaces: &[&str]) -> TenantConfig {
        TenantConfig {
            tenant_id: "11111111-1111-4111-8111-111111111111".parse().expect("id"),
            display_name: "Contoso".into(),
            enabled: true,
            workspaces: workspaces.iter().map(|w| workspace(w)).collect(),
        }
    }

    #[test]
    fn a_workspace_is_found_by_name_in_any_case_or_left_out_when_it_is_the_only_one() {
        let two = tenant(&["law-prod", "law-dev"]);
        assert_eq!(
            find_workspace(&two, Some(" LAW-Dev "))
                .expect("found")
                .workspace_name,
            "law-dev"
        );
        let one = tenant(&["law-prod"]);
        assert_eq!(
            find_workspace(&one, None)
                .expect("the only one")
                .workspace_name,
            "law-prod"
        );
        for (config, name, expected) in [
            (
                &two,
                Some("law-test"),
                "workspace 'law-test' is not configured",
            ),
            (
                &two,
                None,
                "has several workspaces; name one in 'workspace'",
            ),
            (&tenant(&[]), None, "has no Sentinel workspaces configured"),
        ] {
            let message = find_workspace(config, name)
                .expect_err("refused")
                .to_string();
            assert!(message.contains(expected), "{name:?}: {message}");
            if !config.workspaces.is_empty() {
                assert!(message.contains("law-prod, law-dev"), "{message}");
            }
        }
    }

    #[test]
    fn operations_are_waited_for_up_to_two_minutes() {
        assert_eq!(
            operation_wait(None).expect("default"),
            Duration::from_secs(30)
        );
        assert_eq!(operation_wait(Some(0)).expect("none"), Duration::ZERO);
        assert_eq!(
            operation_wait(Some(120)).expect("longest"),
            Duration::from_secs(120)
        );
        let message = operation_wait(Some(121)).expect_err("too long").to_string();
        assert!(message.contains("between 0 and 120, got 121"), "{message}");
    }

    #[tokio::test]
    async fn a_cursor_continues_only_the_list_and_tenant_it_came_from() {
        let harness = Harness::start().await;
        let services = &harness.context.services;
        let contoso: TenantId = harness.contoso().parse().expect("id");
        let config = services.tenants.resolve(Some(&contoso)).expect("allowed");
        let (prod, dev) = (&config.workspaces[0], &config.workspaces[1]);
        let incidents = |ws: &WorkspaceConfig| {
            let url = services.arm.workspace_url(ws, WorkspaceResource::Incidents);
            move || Ok(url)
        };
        let (first, cursor) = page::<Value>(&harness.context, &contoso, incidents(prod), None, 2)
            .await
            .expect("a page");
        assert_eq!(first.len(), 2);
        let cursor = cursor.expect("more incidents");
        let (next, _) = page::<Value>(
            &harness.context,
            &contoso,
            incidents(prod),
            Some(&cursor),
            2,
        )
        .await
        .expect("the next page");
        assert!(
            next.iter().all(|n| !first.contains(n)),
            "the next page goes on where the first ended"
        );

        let message = page::<Value>(&harness.context, &contoso, incidents(dev), Some(&cursor), 2)
            .await
            .expect_err("another workspace's list")
            .to_string();
        assert!(message.contains("continues a different list"), "{message}");
        let fabrikam: TenantId = harness.sandbox.tenants()[1].tenant_id.parse().expect("id");
        assert!(
            page::<Value>(
                &harness.context,
                &fabrikam,
                incidents(prod),
                Some(&cursor),
                2
            )
            .await
            .is_err(),
            "bound to its tenant"
        );
    }
}
