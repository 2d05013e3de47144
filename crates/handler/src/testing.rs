//! What unit tests of tools stand on: the embedded sandbox tenant, the handler's services on the
//! in-memory storage account ([`Storage::in_memory`]) and a local caller. No storage emulator and
//! no HTTP server: a test calls a tool's handler with JSON arguments parsed as the MCP layer
//! parses them. The integration tests (`tests/integration`) cover the same tools through a real
//! MCP client, server and Azurite.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sandbox::{ActionTimings, RunningSandbox, SandboxOptions};
use serde_json::Value;

use crate::auth::Caller;
use crate::config::{Config, settings};
use crate::hunts::{AppSettingSecrets, HuntDefinition, HuntId, Schedule, SystemClock, Targets};
use crate::mcp::{Tier, Tool, ToolContext, ToolError};
use crate::services::Services;
use crate::storage::Storage;

/// A sandbox tenant and the services of one handler instance pointed at it.
pub(crate) struct Harness {
    /// Kept so the tenant lives as long as the test; tests also change it behind the tools' back.
    pub sandbox: RunningSandbox,
    pub context: ToolContext,
}

impl Harness {
    /// A sandbox whose device actions end within half a second, and an admin caller.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`Harness::start`] with `extra` app settings over the sandbox's.
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        let sandbox = RunningSandbox::start(SandboxOptions {
            action_timings: ActionTimings {
                pending: Duration::from_millis(200),
                in_progress: Duration::from_millis(300),
            },
            ..SandboxOptions::default()
        })
        .await
        .expect("sandbox starts");
        let mut values: HashMap<String, String> = crate::local::sandbox_settings(&sandbox)
            .into_iter()
            .chain(crate::local::sandbox_defaults())
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        // Parsed like any setting, never connected to: the services use the in-memory account.
        values.insert(
            settings::STORAGE.into(),
            "UseDevelopmentStorage=true".into(),
        );
        values.insert(settings::MCP_RATE_LIMIT_PER_MINUTE.into(), "0".into());
        for (key, value) in extra {
            values.insert((*key).to_owned(), (*value).to_owned());
        }
        let mut config = Config::from_lookup(|name| values.get(name).cloned())
            .expect("valid sandbox configuration");
        config.outbound.trusted_ca_pem = Some(sandbox.ca_certificate_pem().to_owned());
        let secrets = AppSettingSecrets::new(move |name| values.get(name).cloned());
        let services = Services::with_storage(
            &config,
            Storage::in_memory(),
            Arc::new(secrets),
            Arc::new(SystemClock),
        )
        .expect("services build");
        Self {
            sandbox,
            context: ToolContext {
                services: Arc::new(services),
                caller: Arc::new(Caller::local(Tier::Admin)),
            },
        }
    }

    /// Parses `arguments` as the MCP layer does and runs the tool's handler. Approval is the
    /// MCP layer's and is not involved: destructive tools are tested through their `plan` here
    /// and end to end in the integration tests.
    pub async fn call<T: Tool>(&self, tool: &T, arguments: Value) -> Result<T::Output, ToolError> {
        let services = &self.context.services;
        if let Some(action) = tool.target_action(services) {
            // What building the catalogue does for every tool that starts operations.
            services.operations.register(tool.spec().name, action);
        }
        let params: T::Params = serde_json::from_value(arguments)
            .map_err(|error| ToolError::InvalidArgument(error.to_string()))?;
        tool.call(&self.context, params).await
    }

    /// [`Harness::call`] for a call that must succeed, as JSON (what the model reads).
    pub async fn ok<T: Tool>(&self, tool: &T, arguments: Value) -> Value {
        let name = tool.spec().name;
        let output = self
            .call(tool, arguments)
            .await
            .unwrap_or_else(|error| panic!("{name} failed: {error}"));
        serde_json::to_value(output).expect("outputs serialize")
    }

    /// [`Harness::call`] for a call that must fail, as the message the model reads.
    pub async fn refusal<T: Tool>(&self, tool: &T, arguments: Value) -> String {
        let name = tool.spec().name;
        match self.call(tool, arguments).await {
            Ok(output) => panic!(
                "{name} succeeded where it must fail: {}",
                serde_json::to_value(output).expect("outputs serialize")
            ),
            Err(error) => error.to_string(),
        }
    }

    /// The sandbox's first tenant (Contoso).
    pub fn contoso(&self) -> String {
        self.sandbox.tenants()[0].tenant_id.clone()
    }

    /// Every sandbox tenant's id, in the sandbox's order.
    pub fn tenant_ids(&self) -> Vec<String> {
        self.sandbox
            .tenants()
            .iter()
            .map(|tenant| tenant.tenant_id.clone())
            .collect()
    }

    /// A paused hunt over every enabled tenant that looks back a week, stored: what a test runs
    /// by hand.
    pub async fn paused_hunt(&self, name: &str, query: &str) -> HuntDefinition {
        let hunts = &self.context.services.hunts;
        let now = hunts.now();
        hunts
            .create(HuntDefinition {
                id: HuntId::generate(),
                name: name.into(),
                description: None,
                query: query.into(),
                targets: Targets::AllEnabled,
                schedule: Schedule::EveryHours(6),
                lookback_minutes: Some(7 * 24 * 60),
                enabled: false,
                retention_days: 30,
                alert: None,
                created_at: now,
                updated_at: now,
                schedule_anchor: now,
            })
            .await
            .expect("the hunt is stored")
    }
}
