//! The handler's integration tests: one binary (one link, one copy of the handler on disk) whose
//! modules each drive a real server, against the sandbox tenant and a real Azurite.
//! `./scripts/test` starts Azurite; `TEST_STORAGE_CONNECTION_STRING` points here to it.

mod common;
mod sentinel_common;

mod answer_budget;
mod api_contract;
mod approval;
mod approval_page;
mod audit_trail;
mod auth;
mod catalogue_budget;
mod contract_schemas;
mod deployment;
mod faults;
mod host_protocol;
mod hunts;
mod keyvault;
mod log_hygiene;
mod mcp_tools;
mod mde_actions;
mod mde_alerts;
mod mde_detection_rules;
mod mde_entities;
mod mde_hunting;
mod mde_incidents;
mod mde_indicators;
mod mde_live_response;
mod mde_machine_actions;
mod mde_machines;
mod mde_rate_governance;
mod operations;
mod powershell_app;
mod powershell_jobs;
mod protocol_errors;
mod schema_strictness;
mod sentinel_backup;
mod sentinel_dcr;
mod sentinel_incidents;
mod sentinel_rules;
mod sentinel_tables;
mod sentinel_watchlists;
mod sentinel_workbooks;
mod sentinel_workspaces;
mod storage_azurite;
mod telemetry;
mod tool_snapshots;
mod toolsets;
