//! One typed configuration, read once at start from app settings (environment variables).
//!
//! Every setting the handler reads is named in [`settings`] so that the settings table in the
//! README, `local.settings.json.template` and the Bicep can be checked against one list.

use std::collections::BTreeSet;
use std::time::Duration;

use url::Url;

use crate::outbound::RateLimits;
use crate::storage::{StorageConnection, StorageError};
use crate::tenants::{TenantConfig, TenantId, TenantRegistry, TenantRegistryError};

/// The names of every app setting the handler reads.
pub mod settings {
    pub const CUSTOM_HANDLER_PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
    pub const WEBSITE_HOSTNAME: &str = "WEBSITE_HOSTNAME";
    pub const MCP_ALLOWED_HOSTS: &str = "MCP_ALLOWED_HOSTS";
    pub const MCP_ALLOWED_ORIGINS: &str = "MCP_ALLOWED_ORIGINS";
    pub const MCP_MAX_REQUEST_BYTES: &str = "MCP_MAX_REQUEST_BYTES";
    pub const MCP_READ_ONLY: &str = "MCP_READ_ONLY";
    pub const MCP_TOOLSETS: &str = "MCP_TOOLSETS";
    pub const TENANTS: &str = "TENANTS";
    pub const DEFAULT_TENANT_ID: &str = "DEFAULT_TENANT_ID";
    pub const AUTH_MODE: &str = "AUTH_MODE";
    pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
    pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
    pub const MANAGED_IDENTITY_CLIENT_ID: &str = "MANAGED_IDENTITY_CLIENT_ID";
    pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
    pub const DEFENDER_API_BASE_URL: &str = "DEFENDER_API_BASE_URL";
    pub const GRAPH_BASE_URL: &str = "GRAPH_BASE_URL";
    pub const ARM_BASE_URL: &str = "ARM_BASE_URL";
    pub const LOG_ANALYTICS_BASE_URL: &str = "LOG_ANALYTICS_BASE_URL";
    pub const OUTBOUND_TIMEOUT_SECONDS: &str = "OUTBOUND_TIMEOUT_SECONDS";
    pub const OUTBOUND_MAX_RETRIES: &str = "OUTBOUND_MAX_RETRIES";
    pub const OUTBOUND_TRUSTED_CA_FILE: &str = "OUTBOUND_TRUSTED_CA_FILE";
    pub const OUTBOUND_MAX_PACING_SECONDS: &str = "OUTBOUND_MAX_PACING_SECONDS";
    pub const DEFENDER_MACHINE_CALLS_PER_MINUTE: &str = "DEFENDER_MACHINE_CALLS_PER_MINUTE";
    pub const DEFENDER_MACHINE_CALLS_PER_HOUR: &str = "DEFENDER_MACHINE_CALLS_PER_HOUR";
    pub const STORAGE: &str = "AzureWebJobsStorage";
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("app setting {name} is required{hint}")]
    Missing { name: &'static str, hint: String },
    #[error("app setting {name} has an invalid value: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("app setting {STORAGE}: {0}", STORAGE = settings::STORAGE)]
    Storage(#[from] StorageError),
    #[error("app setting {TENANTS}: {0}", TENANTS = settings::TENANTS)]
    Tenants(#[from] TenantRegistryError),
}

/// How the handler obtains tokens for customer tenants.
#[derive(Clone)]
pub enum OutboundAuth {
    /// A multi-tenant app registration with a client secret (from Key Vault in Azure).
    ClientSecret { client_id: String, secret: azure_core::credentials::Secret },
    /// A managed identity's token used as the client assertion of a multi-tenant app
    /// registration (federated credential): no secret exists anywhere.
    ManagedIdentityFederated { client_id: String, managed_identity_client_id: Option<String> },
}

impl std::fmt::Debug for OutboundAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientSecret { client_id, .. } => {
                f.debug_struct("ClientSecret").field("client_id", client_id).finish_non_exhaustive()
            }
            Self::ManagedIdentityFederated { client_id, managed_identity_client_id } => f
                .debug_struct("ManagedIdentityFederated")
                .field("client_id", client_id)
                .field("managed_identity_client_id", managed_identity_client_id)
                .finish(),
        }
    }
}

/// Base URLs of the Microsoft APIs and the token authority; all overridable so the sandbox
/// (and sovereign clouds) can stand in for the public cloud.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authority_host: Url,
    pub defender: Url,
    pub graph: Url,
    pub arm: Url,
    pub log_analytics: Url,
}

impl Endpoints {
    pub fn public_cloud() -> Self {
        Self {
            authority_host: fixed_url("https://login.microsoftonline.com"),
            defender: fixed_url("https://api.securitycenter.microsoft.com"),
            graph: fixed_url("https://graph.microsoft.com"),
            arm: fixed_url("https://management.azure.com"),
            log_analytics: fixed_url("https://api.loganalytics.io"),
        }
    }
}

fn fixed_url(text: &str) -> Url {
    Url::parse(text).expect("built-in URL constants are valid")
}

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    pub timeout: Duration,
    pub max_retries: u32,
    /// Extra PEM certificates to trust (the sandbox's self-signed certificate); never needed in Azure.
    pub trusted_ca_pem: Option<String>,
    /// Per-tenant call budgets the outbound limiter keeps to.
    pub rate_limits: RateLimits,
    /// The longest one tool call waits, in total, for rate-limit slots.
    pub max_pacing: Duration,
}

#[derive(Debug, Clone)]
pub struct McpConfig {
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub max_request_bytes: usize,
    pub read_only: bool,
    /// `None` means every toolset.
    pub toolsets: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub mcp: McpConfig,
    pub tenants: TenantRegistry,
    pub auth: OutboundAuth,
    pub endpoints: Endpoints,
    pub outbound: OutboundConfig,
    pub storage: StorageConnection,
}

const DEFAULT_PORT: u16 = 7071;
const DEFAULT_MAX_REQUEST_BYTES: usize = 1024 * 1024;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|value| !value.trim().is_empty()))
    }

    /// Reads every setting through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let port = parse_or(&lookup, settings::CUSTOM_HANDLER_PORT, DEFAULT_PORT)?;
        let mcp = McpConfig {
            allowed_hosts: allowed_hosts(&lookup),
            allowed_origins: list(&lookup, settings::MCP_ALLOWED_ORIGINS),
            max_request_bytes: parse_or(&lookup, settings::MCP_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_BYTES)?,
            read_only: parse_bool(&lookup, settings::MCP_READ_ONLY, false)?,
            toolsets: lookup(settings::MCP_TOOLSETS)
                .map(|value| value.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect()),
        };
        let tenants = parse_tenants(&lookup)?;
        let auth = parse_auth(&lookup)?;
        let public = Endpoints::public_cloud();
        let endpoints = Endpoints {
            authority_host: https_url(&lookup, settings::AZURE_AUTHORITY_HOST, public.authority_host)?,
            defender: https_url(&lookup, settings::DEFENDER_API_BASE_URL, public.defender)?,
            graph: https_url(&lookup, settings::GRAPH_BASE_URL, public.graph)?,
            arm: https_url(&lookup, settings::ARM_BASE_URL, public.arm)?,
            log_analytics: https_url(&lookup, settings::LOG_ANALYTICS_BASE_URL, public.log_analytics)?,
        };
        let trusted_ca_pem = match lookup(settings::OUTBOUND_TRUSTED_CA_FILE) {
            None => None,
            Some(path) => Some(std::fs::read_to_string(&path).map_err(|error| ConfigError::Invalid {
                name: settings::OUTBOUND_TRUSTED_CA_FILE,
                reason: format!("cannot read {path}: {error}"),
            })?),
        };
        let outbound = OutboundConfig {
            timeout: Duration::from_secs(parse_or(&lookup, settings::OUTBOUND_TIMEOUT_SECONDS, 30u64)?),
            max_retries: parse_or(&lookup, settings::OUTBOUND_MAX_RETRIES, 3u32)?,
            trusted_ca_pem,
            rate_limits: RateLimits::documented(
                positive(&lookup, settings::DEFENDER_MACHINE_CALLS_PER_MINUTE, 100)?,
                positive(&lookup, settings::DEFENDER_MACHINE_CALLS_PER_HOUR, 1500)?,
            ),
            max_pacing: Duration::from_secs(parse_or(&lookup, settings::OUTBOUND_MAX_PACING_SECONDS, 45u64)?),
        };
        let storage = StorageConnection::from_settings(settings::STORAGE, &lookup)?;
        Ok(Self { port, mcp, tenants, auth, endpoints, outbound, storage })
    }
}

fn list(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Vec<String> {
    lookup(name)
        .map(|value| value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

/// Loopback always (local runs and the Functions host's own forwarding), the app's own host name
/// in Azure, and whatever custom domains the operator lists.
fn allowed_hosts(lookup: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    hosts.extend(lookup(settings::WEBSITE_HOSTNAME));
    hosts.extend(list(lookup, settings::MCP_ALLOWED_HOSTS));
    hosts
}

fn parse_or<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match lookup(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|error| ConfigError::Invalid {
            name,
            reason: format!("'{value}' is not accepted ({error})"),
        }),
    }
}

/// A count that must be at least 1 (a limit of zero would stop every call).
fn positive(lookup: &impl Fn(&str) -> Option<String>, name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match parse_or(lookup, name, default)? {
        0 => Err(ConfigError::Invalid { name, reason: "0 would stop every call; use a positive number".into() }),
        value => Ok(value),
    }
}

fn parse_bool(lookup: &impl Fn(&str) -> Option<String>, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match lookup(name).map(|value| value.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(value) if matches!(value.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(value) if matches!(value.as_str(), "false" | "0" | "no") => Ok(false),
        Some(value) => Err(ConfigError::Invalid { name, reason: format!("'{value}' is not one of true, false") }),
    }
}

fn https_url(lookup: &impl Fn(&str) -> Option<String>, name: &'static str, default: Url) -> Result<Url, ConfigError> {
    let Some(value) = lookup(name) else { return Ok(default) };
    let url = Url::parse(value.trim_end_matches('/'))
        .map_err(|error| ConfigError::Invalid { name, reason: format!("'{value}' is not a URL ({error})") })?;
    if url.scheme() != "https" {
        return Err(ConfigError::Invalid { name, reason: format!("'{value}' must use https") });
    }
    Ok(url)
}

fn parse_tenants(lookup: &impl Fn(&str) -> Option<String>) -> Result<TenantRegistry, ConfigError> {
    let tenants: Vec<TenantConfig> = match lookup(settings::TENANTS) {
        None => Vec::new(),
        Some(json) => serde_json::from_str(&json).map_err(|error| ConfigError::Invalid {
            name: settings::TENANTS,
            reason: format!(
                "expected a JSON array of {{\"tenant_id\", \"display_name\", \"enabled\", \"workspaces\"}} objects: {error}"
            ),
        })?,
    };
    let default = lookup(settings::DEFAULT_TENANT_ID)
        .map(|value| {
            value.parse::<TenantId>().map_err(|error| ConfigError::Invalid {
                name: settings::DEFAULT_TENANT_ID,
                reason: error.to_string(),
            })
        })
        .transpose()?;
    Ok(TenantRegistry::new(tenants, default)?)
}

fn parse_auth(lookup: &impl Fn(&str) -> Option<String>) -> Result<OutboundAuth, ConfigError> {
    let mode = lookup(settings::AUTH_MODE).unwrap_or_else(|| "managed_identity_federated".into());
    let client_id = || {
        lookup(settings::AZURE_CLIENT_ID).ok_or(ConfigError::Missing {
            name: settings::AZURE_CLIENT_ID,
            hint: " (the client id of the multi-tenant app registration consented in each customer tenant)".into(),
        })
    };
    match mode.as_str() {
        "client_secret" => Ok(OutboundAuth::ClientSecret {
            client_id: client_id()?,
            secret: lookup(settings::AZURE_CLIENT_SECRET)
                .ok_or(ConfigError::Missing {
                    name: settings::AZURE_CLIENT_SECRET,
                    hint: format!(" when {} is client_secret", settings::AUTH_MODE),
                })?
                .into(),
        }),
        "managed_identity_federated" => Ok(OutboundAuth::ManagedIdentityFederated {
            client_id: client_id()?,
            managed_identity_client_id: lookup(settings::MANAGED_IDENTITY_CLIENT_ID),
        }),
        other => Err(ConfigError::Invalid {
            name: settings::AUTH_MODE,
            reason: format!("'{other}' is not one of managed_identity_federated, client_secret"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const MINIMAL: &[(&str, &str)] = &[("AZURE_CLIENT_ID", "app"), ("AzureWebJobsStorage", "UseDevelopmentStorage=true")];

    #[test]
    fn minimal_settings_give_public_cloud_defaults() {
        let config = Config::from_lookup(lookup_from(MINIMAL)).expect("valid");
        assert_eq!(config.port, 7071);
        assert_eq!(config.endpoints.defender.as_str(), "https://api.securitycenter.microsoft.com/");
        assert!(matches!(config.auth, OutboundAuth::ManagedIdentityFederated { .. }));
        assert!(config.mcp.allowed_hosts.contains(&"127.0.0.1".to_string()));
        assert_eq!(config.outbound.rate_limits, RateLimits::documented(100, 1500));
        assert_eq!(config.outbound.max_pacing, Duration::from_secs(45));
    }

    #[test]
    fn errors_name_the_bad_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("FUNCTIONS_CUSTOMHANDLER_PORT", "eighty")], "FUNCTIONS_CUSTOMHANDLER_PORT"),
            (&[("AUTH_MODE", "password")], "AUTH_MODE"),
            (&[("AUTH_MODE", "client_secret")], "AZURE_CLIENT_SECRET"),
            (&[("DEFENDER_API_BASE_URL", "http://example.com")], "DEFENDER_API_BASE_URL"),
            (&[("TENANTS", "{not json")], "TENANTS"),
            (&[("MCP_READ_ONLY", "maybe")], "MCP_READ_ONLY"),
            (&[("DEFAULT_TENANT_ID", "contoso")], "DEFAULT_TENANT_ID"),
            (&[("DEFENDER_MACHINE_CALLS_PER_MINUTE", "0")], "DEFENDER_MACHINE_CALLS_PER_MINUTE"),
            (&[("DEFENDER_MACHINE_CALLS_PER_HOUR", "lots")], "DEFENDER_MACHINE_CALLS_PER_HOUR"),
            (&[("OUTBOUND_MAX_PACING_SECONDS", "-1")], "OUTBOUND_MAX_PACING_SECONDS"),
        ];
        for (extra, expected) in cases {
            let mut pairs = MINIMAL.to_vec();
            pairs.extend_from_slice(extra);
            let error = Config::from_lookup(lookup_from(&pairs)).expect_err("must be refused").to_string();
            assert!(error.contains(expected), "{error} should name {expected}");
        }
    }

    #[test]
    fn missing_client_id_is_reported_with_what_it_is() {
        let error = Config::from_lookup(lookup_from(&[("AzureWebJobsStorage", "UseDevelopmentStorage=true")]))
            .expect_err("client id is required")
            .to_string();
        assert!(error.contains("AZURE_CLIENT_ID") && error.contains("multi-tenant app registration"), "{error}");
    }

    #[test]
    fn website_hostname_is_an_allowed_host() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("WEBSITE_HOSTNAME", "mcp-contoso.azurewebsites.net"));
        pairs.push(("MCP_ALLOWED_HOSTS", "mcp.contoso.com, "));
        let config = Config::from_lookup(lookup_from(&pairs)).expect("valid");
        assert!(config.mcp.allowed_hosts.contains(&"mcp-contoso.azurewebsites.net".to_string()));
        assert!(config.mcp.allowed_hosts.contains(&"mcp.contoso.com".to_string()));
    }
}
