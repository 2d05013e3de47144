//! One typed configuration, read once at start from app settings (environment variables).
//!
//! Every setting the handler reads is named in [`settings`] so that the settings table in the
//! README, `local.settings.json.template` and the Bicep can be checked against one list.

use std::time::Duration;

use url::Url;

use crate::limits::RateLimits;
use crate::roles::Tier;
use crate::storage::{StorageConnection, StorageError};
use crate::tenants::{TenantConfig, TenantId, TenantRegistry, TenantRegistryError};
use crate::toolsets::Selection;

/// The names of every app setting the handler reads; [`settings::ALL`] lists them all, so the
/// README, `local.settings.json.template` and the Bicep can be checked against one list
/// (`tests/integration/deployment.rs`). A setting added here without those fails that test.
pub mod settings {
    macro_rules! settings {
        ($($constant:ident = $name:literal;)*) => {
            $(pub const $constant: &str = $name;)*
            /// Every setting above.
            pub const ALL: &[&str] = &[$($constant),*];
        };
    }

    settings! {
        CUSTOM_HANDLER_PORT = "FUNCTIONS_CUSTOMHANDLER_PORT";
        WEBSITE_HOSTNAME = "WEBSITE_HOSTNAME";
        MCP_ALLOWED_HOSTS = "MCP_ALLOWED_HOSTS";
        MCP_ALLOWED_ORIGINS = "MCP_ALLOWED_ORIGINS";
        MCP_MAX_REQUEST_BYTES = "MCP_MAX_REQUEST_BYTES";
        MCP_READ_ONLY = "MCP_READ_ONLY";
        MCP_TOOLSETS = "MCP_TOOLSETS";
        TENANTS = "TENANTS";
        DEFAULT_TENANT_ID = "DEFAULT_TENANT_ID";
        AUTH_MODE = "AUTH_MODE";
        AZURE_CLIENT_ID = "AZURE_CLIENT_ID";
        AZURE_CLIENT_SECRET = "AZURE_CLIENT_SECRET";
        MANAGED_IDENTITY_CLIENT_ID = "MANAGED_IDENTITY_CLIENT_ID";
        AZURE_AUTHORITY_HOST = "AZURE_AUTHORITY_HOST";
        DEFENDER_API_BASE_URL = "DEFENDER_API_BASE_URL";
        GRAPH_BASE_URL = "GRAPH_BASE_URL";
        ARM_BASE_URL = "ARM_BASE_URL";
        LOG_ANALYTICS_BASE_URL = "LOG_ANALYTICS_BASE_URL";
        OUTBOUND_TIMEOUT_SECONDS = "OUTBOUND_TIMEOUT_SECONDS";
        OUTBOUND_MAX_RETRIES = "OUTBOUND_MAX_RETRIES";
        OUTBOUND_TRUSTED_CA_FILE = "OUTBOUND_TRUSTED_CA_FILE";
        STORAGE = "AzureWebJobsStorage";
        OUTBOUND_MAX_PACING_SECONDS = "OUTBOUND_MAX_PACING_SECONDS";
        DEFENDER_MACHINE_CALLS_PER_MINUTE = "DEFENDER_MACHINE_CALLS_PER_MINUTE";
        DEFENDER_MACHINE_CALLS_PER_HOUR = "DEFENDER_MACHINE_CALLS_PER_HOUR";
        OUTBOUND_RATE_WINDOW_DIVISOR = "OUTBOUND_RATE_WINDOW_DIVISOR";
        QUOTA_CONTAINER = "QUOTA_CONTAINER";
        KEY_VAULT_URL = "KEY_VAULT_URL";
        APPLICATIONINSIGHTS_CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING";
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";
        RUST_LOG = "RUST_LOG";
        HUNT_STORAGE_CONTAINER = "HUNT_STORAGE_CONTAINER";
        HUNT_TICK_BUDGET_SECONDS = "HUNT_TICK_BUDGET_SECONDS";
        HUNT_MAX_CATCH_UP = "HUNT_MAX_CATCH_UP";
        HUNT_TENANT_CONCURRENCY = "HUNT_TENANT_CONCURRENCY";
        HUNT_MAX_ROWS_PER_TENANT = "HUNT_MAX_ROWS_PER_TENANT";
        HUNT_LOCAL_INTERVAL_SECONDS = "HUNT_LOCAL_INTERVAL_SECONDS";
        JOBS_CONTAINER = "JOBS_CONTAINER";
        PS_JOBS_QUEUE = "PS_JOBS_QUEUE";
        PS_MANIFEST_REFRESH_SECONDS = "PS_MANIFEST_REFRESH_SECONDS";
        PS_JOB_DEADLINE_MINUTES = "PS_JOB_DEADLINE_MINUTES";
        OPS_QUEUE = "OPS_QUEUE";
        OPS_LEASE_SECONDS = "OPS_LEASE_SECONDS";
        OPS_INLINE_SECONDS = "OPS_INLINE_SECONDS";
        MCP_MAX_ARGUMENT_BYTES = "MCP_MAX_ARGUMENT_BYTES";
        MCP_CALL_DEADLINE_SECONDS = "MCP_CALL_DEADLINE_SECONDS";
        MCP_RATE_LIMIT_PER_MINUTE = "MCP_RATE_LIMIT_PER_MINUTE";
        MCP_RATE_LIMIT_BURST = "MCP_RATE_LIMIT_BURST";
        AUTH_INBOUND_MODE = "AUTH_INBOUND_MODE";
        AUTH_AUDIENCE = "AUTH_AUDIENCE";
        AUTH_ALLOWED_TENANTS = "AUTH_ALLOWED_TENANTS";
        AUTH_AUTHORITY_HOST = "AUTH_AUTHORITY_HOST";
        AUTH_SCOPE = "AUTH_SCOPE";
        AUTH_ROLE_READER = "AUTH_ROLE_READER";
        AUTH_ROLE_RESPONDER = "AUTH_ROLE_RESPONDER";
        AUTH_ROLE_ADMIN = "AUTH_ROLE_ADMIN";
        AUTH_ROLE_APPROVER = "AUTH_ROLE_APPROVER";
        AUTH_LOCAL_ROLE = "AUTH_LOCAL_ROLE";
        APPROVAL_FALLBACK = "APPROVAL_FALLBACK";
        APPROVAL_SIGNING_KEY = "APPROVAL_SIGNING_KEY";
        APPROVAL_TTL_SECONDS = "APPROVAL_TTL_SECONDS";
        APPROVAL_PUBLIC_URL = "APPROVAL_PUBLIC_URL";
        APPROVAL_SECOND_PERSON = "APPROVAL_SECOND_PERSON";
        WEBSITE_AUTH_ENABLED = "WEBSITE_AUTH_ENABLED";
        DESTRUCTIVE_TOOLS_DISABLED = "DESTRUCTIVE_TOOLS_DISABLED";
        DESTRUCTIVE_MAX_TARGETS_PER_CALL = "DESTRUCTIVE_MAX_TARGETS_PER_CALL";
        DESTRUCTIVE_MAX_TARGETS_PER_TENANT_HOUR = "DESTRUCTIVE_MAX_TARGETS_PER_TENANT_HOUR";
    }

    /// Not one setting but a family: `HUNT_SECRET_<NAME>` holds the secret a hunt's alert names
    /// (read when an alert is sent, so it can be a Key Vault reference in Azure).
    pub const HUNT_SECRET_PREFIX: &str = "HUNT_SECRET_";
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
    ClientSecret {
        client_id: String,
        secret: azure_core::credentials::Secret,
    },
    /// A managed identity's token used as the client assertion of a multi-tenant app
    /// registration (federated credential): no secret exists anywhere.
    ManagedIdentityFederated {
        client_id: String,
        managed_identity_client_id: Option<String>,
    },
}

impl std::fmt::Debug for OutboundAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientSecret { client_id, .. } => f
                .debug_struct("ClientSecret")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Self::ManagedIdentityFederated {
                client_id,
                managed_identity_client_id,
            } => f
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
    /// `QUOTA_CONTAINER`: the blob container of the ledger the instances share Microsoft's
    /// per-tenant limits through.
    pub quota_container: String,
}

impl OutboundConfig {
    /// Read on its own too: Key Vault references and telemetry need an HTTP client before the
    /// rest of the configuration can be read.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let trusted_ca_pem = match lookup(settings::OUTBOUND_TRUSTED_CA_FILE) {
            None => None,
            Some(path) => {
                Some(
                    std::fs::read_to_string(&path).map_err(|error| ConfigError::Invalid {
                        name: settings::OUTBOUND_TRUSTED_CA_FILE,
                        reason: format!("cannot read {path}: {error}"),
                    })?,
                )
            }
        };
        Ok(Self {
            timeout: Duration::from_secs(parse_or(
                lookup,
                settings::OUTBOUND_TIMEOUT_SECONDS,
                30u64,
            )?),
            max_retries: parse_or(lookup, settings::OUTBOUND_MAX_RETRIES, 3u32)?,
            trusted_ca_pem,
            // The divisor shortens every window alike, for rehearsals against the sandbox (whose
            // windows can be shortened the same way); never set it against Microsoft.
            rate_limits: RateLimits::documented(
                positive(lookup, settings::DEFENDER_MACHINE_CALLS_PER_MINUTE, 100)?,
                positive(lookup, settings::DEFENDER_MACHINE_CALLS_PER_HOUR, 1500)?,
            )
            .with_periods_divided_by(ranged(
                lookup,
                settings::OUTBOUND_RATE_WINDOW_DIVISOR,
                1u32,
                1..=3600,
            )?),
            quota_container: storage_name(lookup, settings::QUOTA_CONTAINER, "quota", 63)?,
            max_pacing: Duration::from_secs(parse_or(
                lookup,
                settings::OUTBOUND_MAX_PACING_SECONDS,
                45u64,
            )?),
        })
    }
}

#[derive(Debug, Clone)]
pub struct McpConfig {
    pub allowed_hosts: Vec<String>,
    /// The app's public host name (`WEBSITE_HOSTNAME`), for URLs the server advertises.
    pub public_host: Option<String>,
    pub allowed_origins: Vec<String>,
    pub max_request_bytes: usize,
    pub read_only: bool,
    /// The toolsets this deployment offers (every toolset when `MCP_TOOLSETS` is unset).
    pub toolsets: Selection,
    /// Largest `arguments` object of one tool call, in bytes of JSON.
    pub max_argument_bytes: usize,
    /// The longest one tool call may take, from its arrival to its answer.
    pub call_deadline: Duration,
    /// Requests per minute one caller may send to `/api/mcp`; `None` turns the limit off.
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    /// How many requests may arrive at once before the per-minute pace applies.
    pub burst: u32,
}

/// Who may call `/api/mcp`, on top of the Functions host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundMode {
    /// No identity: every caller is treated as `local_role`. For local runs, or when the function
    /// key alone is trusted to gate the app (anyone with the key then has that role).
    None { local_role: Tier },
    /// Entra ID bearer tokens validated here (issuer, audience, expiry, signature).
    Entra,
    /// App Service authentication (Easy Auth) validated the token in front of the app and passes
    /// the principal in `X-MS-CLIENT-PRINCIPAL`. Only safe when Easy Auth really fronts the app,
    /// since anyone reaching the app directly could send that header.
    EasyAuth,
}

/// The app role names (in the token's `roles` claim) that grant each tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleNames {
    pub reader: String,
    pub responder: String,
    pub admin: String,
    /// Grants approving other people's destructive calls on the approval page (not a tier:
    /// an approver need not be able to call the tools).
    pub approver: String,
}

#[derive(Debug, Clone)]
pub struct InboundAuthConfig {
    pub mode: InboundMode,
    /// Accepted `aud` values (the app's client id and/or its application id URI).
    pub audiences: Vec<String>,
    /// Tenants whose users and apps may call this server (not the customer tenants it acts in).
    pub allowed_tenants: Vec<TenantId>,
    /// Issuer `{authority}/{tenant}/v2.0` and signing keys `{authority}/{tenant}/discovery/v2.0/keys`.
    pub authority: Url,
    /// The scope clients request, published in the protected resource metadata.
    pub scope: Option<String>,
    pub roles: RoleNames,
    /// Least time between two key fetches for one tenant when a token names an unknown key id
    /// (a forged `kid` must not make the server hammer the key endpoint). Not a setting.
    pub key_refresh_cooldown: Duration,
}

/// How a destructive call is approved when the client cannot ask the person itself (no MCP
/// elicitation), and always when a second person must approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalFallback {
    Refuse,
    /// A first call returns a preview and a single-use token bound to the exact arguments, the
    /// caller, the plan and an expiry; a second call with that token acts. Nothing proves a
    /// person saw the preview: for laptops, not for production.
    Confirm,
    /// A first call returns the URL of an approval page; a person signs in there, sees the
    /// plan and approves or denies; a second call with the `approval_id` acts.
    Page,
}

/// When the approval page refuses the requester's own approval (four eyes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondPerson {
    Off,
    /// Every destructive call.
    Destructive,
    /// Destructive calls whose plan has more than this many targets.
    AboveTargets(u32),
}

impl SecondPerson {
    /// Whether a plan with `targets` targets needs a second person.
    pub fn applies(self, targets: usize) -> bool {
        match self {
            Self::Off => false,
            Self::Destructive => true,
            Self::AboveTargets(limit) => targets > limit as usize,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApprovalConfig {
    pub fallback: ApprovalFallback,
    /// HMAC key sealing approval state; `None` makes a random key per process, so an approval
    /// asked on one instance cannot be completed on another (fails closed when scaled out).
    pub signing_key: Option<azure_core::credentials::Secret>,
    pub ttl: Duration,
    /// Where a browser reaches this app (`APPROVAL_PUBLIC_URL`, else `https://WEBSITE_HOSTNAME`);
    /// `None`: no approval page can be offered.
    pub public_url: Option<Url>,
    pub second_person: SecondPerson,
    /// App Service authentication fronts the app (`WEBSITE_AUTH_ENABLED`, set by the platform),
    /// so the principal header on the approval page can be trusted.
    pub page_sign_in: bool,
    /// Refuse every destructive tool (`DESTRUCTIVE_TOOLS_DISABLED`): for an incident in the tooling.
    pub destructive_disabled: bool,
    /// Most targets one destructive call may have.
    pub max_targets_per_call: u32,
    /// Most targets destructive calls may have in one tenant per clock hour, over all instances.
    pub max_targets_per_tenant_hour: u32,
}

/// Scheduled hunts (`hunts/`).
#[derive(Debug, Clone)]
pub struct HuntsConfig {
    /// Blob container holding definitions, state, runs and results.
    pub container: String,
    /// How long one timer invocation works before it stops and leaves the rest to the next tick.
    pub tick_budget: Duration,
    /// Most occurrences of one hunt run in one tick (the current one plus missed ones).
    pub max_runs_per_tick: usize,
    /// Tenants searched at once within a run.
    pub tenant_concurrency: usize,
    /// Rows stored per tenant and run; more are counted and the result marked truncated.
    pub max_rows_per_tenant: usize,
    /// `handler --sandbox` only: how often the in-process schedule ticks (`None`: never).
    pub local_interval: Option<Duration>,
}

/// [`JobsConfig::operation_slice`]: two minutes under host.json's `functionTimeout`.
pub const OPERATION_SLICE: Duration = Duration::from_secs(8 * 60);

/// Where jobs live and how long they may wait; shared with the sibling PowerShell app, which
/// reads the same setting names.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Blob container of job records, oversize parameters, results and the PowerShell manifest.
    pub container: String,
    /// Queue the PowerShell app's `run-job` function listens on; the host moves messages it
    /// gives up on to `<queue>-poison`.
    pub powershell_queue: String,
    /// How long `tools/list` may show a manifest before it is read again.
    pub manifest_refresh: Duration,
    /// How long a job may wait in the queue; one not started by then fails as `deadline_passed`.
    pub deadline: Duration,
    /// `OPS_QUEUE`: where an operation that outlives its tool call is handed over, to
    /// `function-operations` (Azure). Unset: the instance that started it finishes it in-process,
    /// and any instance takes over the operations of one that stopped (local runs).
    pub operations_queue: Option<String>,
    /// `OPS_LEASE_SECONDS`: how long a worker holds an operation without renewing its lease; a
    /// worker that stops is taken over this long after its last renewal.
    pub operation_lease: Duration,
    /// `OPS_INLINE_SECONDS`: how long a tool call runs its operation before it answers with the
    /// operation id and lets the operation carry on.
    pub operation_inline: Duration,
    /// How long one `function-operations` invocation works on an operation before it hands the
    /// rest to a new message: under host.json's `functionTimeout` (10 minutes), so the host
    /// never stops a worker mid-batch and a long operation never counts toward
    /// `maxDequeueCount`. Not a setting (it follows host.json); tests shorten it.
    pub operation_slice: Duration,
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
    pub hunts: HuntsConfig,
    pub jobs: JobsConfig,
    pub inbound: InboundAuthConfig,
    pub approval: ApprovalConfig,
}

const DEFAULT_PORT: u16 = 7071;
const DEFAULT_MAX_REQUEST_BYTES: usize = 1024 * 1024;
// Room for the large parameters PowerShell jobs take (they travel in a blob), under the request limit.
const DEFAULT_MAX_ARGUMENT_BYTES: usize = 512 * 1024;

/// MCP clients commonly give up on a request after 60 s (the TypeScript SDK's default) and send
/// it again; an answer must come well before that.
const DEFAULT_CALL_DEADLINE_SECONDS: u64 = 40;
/// The shortest deadline that leaves a call time to do anything after its bookkeeping.
const MIN_CALL_DEADLINE_SECONDS: u64 = 5;
/// The Functions host's own limit for an HTTP-triggered call is 230 s; past it the host answers.
const MAX_CALL_DEADLINE_SECONDS: u64 = 220;

fn parse_call_deadline(lookup: &impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    let seconds = parse_or(
        lookup,
        settings::MCP_CALL_DEADLINE_SECONDS,
        DEFAULT_CALL_DEADLINE_SECONDS,
    )?;
    if !(MIN_CALL_DEADLINE_SECONDS..=MAX_CALL_DEADLINE_SECONDS).contains(&seconds) {
        return Err(ConfigError::Invalid {
            name: settings::MCP_CALL_DEADLINE_SECONDS,
            reason: format!(
                "{seconds} seconds is not accepted; use {MIN_CALL_DEADLINE_SECONDS} to {MAX_CALL_DEADLINE_SECONDS} \
                 (the Functions host ends an HTTP call at 230 s, MCP clients often at 60 s)"
            ),
        });
    }
    Ok(Duration::from_secs(seconds))
}
/// Approval signing keys shorter than this are refused (HMAC-SHA256 wants a full-strength key).
pub const MIN_APPROVAL_KEY_BYTES: usize = 32;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        })
    }

    /// Reads every setting through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let port = parse_or(&lookup, settings::CUSTOM_HANDLER_PORT, DEFAULT_PORT)?;
        let mcp = McpConfig {
            allowed_hosts: allowed_hosts(&lookup),
            public_host: lookup(settings::WEBSITE_HOSTNAME),
            allowed_origins: list(&lookup, settings::MCP_ALLOWED_ORIGINS),
            max_request_bytes: parse_or(
                &lookup,
                settings::MCP_MAX_REQUEST_BYTES,
                DEFAULT_MAX_REQUEST_BYTES,
            )?,
            read_only: parse_bool(&lookup, settings::MCP_READ_ONLY, false)?,
            toolsets: match lookup(settings::MCP_TOOLSETS) {
                None => Selection::all(),
                Some(list) => Selection::parse(&list).map_err(|unknown| ConfigError::Invalid {
                    name: settings::MCP_TOOLSETS,
                    reason: unknown.to_string(),
                })?,
            },
            max_argument_bytes: parse_or(
                &lookup,
                settings::MCP_MAX_ARGUMENT_BYTES,
                DEFAULT_MAX_ARGUMENT_BYTES,
            )?,
            rate_limit: parse_rate_limit(&lookup)?,
            call_deadline: parse_call_deadline(&lookup)?,
        };
        let tenants = parse_tenants(&lookup)?;
        let auth = parse_auth(&lookup)?;
        let public = Endpoints::public_cloud();
        let endpoints = Endpoints {
            authority_host: https_url(
                &lookup,
                settings::AZURE_AUTHORITY_HOST,
                public.authority_host,
            )?,
            defender: https_url(&lookup, settings::DEFENDER_API_BASE_URL, public.defender)?,
            graph: https_url(&lookup, settings::GRAPH_BASE_URL, public.graph)?,
            arm: https_url(&lookup, settings::ARM_BASE_URL, public.arm)?,
            log_analytics: https_url(
                &lookup,
                settings::LOG_ANALYTICS_BASE_URL,
                public.log_analytics,
            )?,
        };
        let outbound = OutboundConfig::from_lookup(&lookup)?;
        let storage = StorageConnection::from_settings(settings::STORAGE, &lookup)?;
        let hunts = parse_hunts(&lookup)?;
        let jobs = JobsConfig {
            container: storage_name(&lookup, settings::JOBS_CONTAINER, "jobs", 63)?,
            // Room for the "-poison" suffix within the 63-character limit.
            powershell_queue: storage_name(
                &lookup,
                settings::PS_JOBS_QUEUE,
                "ps-jobs",
                63 - "-poison".len(),
            )?,
            manifest_refresh: Duration::from_secs(parse_or(
                &lookup,
                settings::PS_MANIFEST_REFRESH_SECONDS,
                30u64,
            )?),
            deadline: Duration::from_secs(
                60 * ranged(
                    &lookup,
                    settings::PS_JOB_DEADLINE_MINUTES,
                    60u64,
                    1..=7 * 24 * 60,
                )?,
            ),
            operations_queue: match lookup(settings::OPS_QUEUE) {
                None => None,
                Some(_) => Some(storage_name(
                    &lookup,
                    settings::OPS_QUEUE,
                    "",
                    63 - "-poison".len(),
                )?),
            },
            operation_lease: Duration::from_secs(ranged(
                &lookup,
                settings::OPS_LEASE_SECONDS,
                60u64,
                2..=600,
            )?),
            operation_inline: Duration::from_secs(ranged(
                &lookup,
                settings::OPS_INLINE_SECONDS,
                5u64,
                1..=30,
            )?),
            operation_slice: OPERATION_SLICE,
        };
        let inbound = parse_inbound(&lookup)?;
        let approval = parse_approval(&lookup, &inbound)?;
        Ok(Self {
            port,
            mcp,
            tenants,
            auth,
            endpoints,
            outbound,
            storage,
            hunts,
            jobs,
            inbound,
            approval,
        })
    }
}

fn parse_hunts(lookup: &impl Fn(&str) -> Option<String>) -> Result<HuntsConfig, ConfigError> {
    let container = storage_name(lookup, settings::HUNT_STORAGE_CONTAINER, "hunts", 63)?;
    let budget: u64 = ranged(lookup, settings::HUNT_TICK_BUDGET_SECONDS, 240, 1..=3600)?;
    let interval: u64 = ranged(
        lookup,
        settings::HUNT_LOCAL_INTERVAL_SECONDS,
        60,
        0..=86_400,
    )?;
    Ok(HuntsConfig {
        container,
        tick_budget: Duration::from_secs(budget),
        max_runs_per_tick: ranged(lookup, settings::HUNT_MAX_CATCH_UP, 3, 1..=50)?,
        tenant_concurrency: ranged(lookup, settings::HUNT_TENANT_CONCURRENCY, 4, 1..=32)?,
        max_rows_per_tenant: ranged(
            lookup,
            settings::HUNT_MAX_ROWS_PER_TENANT,
            10_000,
            1..=100_000,
        )?,
        local_interval: (interval > 0).then(|| Duration::from_secs(interval)),
    })
}

fn ranged<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let value = parse_or(lookup, name, default)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("{value} is outside {}..={}", range.start(), range.end()),
        })
    }
}

fn list(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Vec<String> {
    lookup(name)
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
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

/// Container and queue names share the storage naming rules: 3-63 lower-case letters, digits and
/// single hyphens, starting and ending with a letter or digit.
fn storage_name(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
    max_len: usize,
) -> Result<String, ConfigError> {
    let value = lookup(name)
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| default.to_owned());
    let valid = (3..=max_len).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if valid {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!(
                "'{value}' is not a storage name: use 3-{max_len} lower-case letters, digits and single hyphens, \
                 starting and ending with a letter or digit"
            ),
        })
    }
}

/// A count that must be at least 1 (a limit of zero would stop every call).
fn positive(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u32,
) -> Result<u32, ConfigError> {
    match parse_or(lookup, name, default)? {
        0 => Err(ConfigError::Invalid {
            name,
            reason: "0 would stop every call; use a positive number".into(),
        }),
        value => Ok(value),
    }
}

fn parse_bool(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(name).map(|value| value.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(value) if matches!(value.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(value) if matches!(value.as_str(), "false" | "0" | "no") => Ok(false),
        Some(value) => Err(ConfigError::Invalid {
            name,
            reason: format!("'{value}' is not one of true, false"),
        }),
    }
}

fn https_url(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Url,
) -> Result<Url, ConfigError> {
    let Some(value) = lookup(name) else {
        return Ok(default);
    };
    let url = Url::parse(value.trim_end_matches('/')).map_err(|error| ConfigError::Invalid {
        name,
        reason: format!("'{value}' is not a URL ({error})"),
    })?;
    if url.scheme() != "https" {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("'{value}' must use https"),
        });
    }
    Ok(url)
}

/// Like [`https_url`], but plain http is accepted on loopback (a local key endpoint for tests).
fn https_or_loopback_url(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Url,
) -> Result<Url, ConfigError> {
    let Some(value) = lookup(name) else {
        return Ok(default);
    };
    let url = Url::parse(value.trim_end_matches('/')).map_err(|error| ConfigError::Invalid {
        name,
        reason: format!("'{value}' is not a URL ({error})"),
    })?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("'{value}' must use https"),
        });
    }
    Ok(url)
}

fn parse_rate_limit(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<RateLimit>, ConfigError> {
    let per_minute: u32 = parse_or(lookup, settings::MCP_RATE_LIMIT_PER_MINUTE, 120)?;
    let burst: u32 = parse_or(lookup, settings::MCP_RATE_LIMIT_BURST, 30)?;
    if per_minute == 0 {
        return Ok(None);
    }
    if burst == 0 {
        return Err(ConfigError::Invalid {
            name: settings::MCP_RATE_LIMIT_BURST,
            reason: "must be at least 1 (set MCP_RATE_LIMIT_PER_MINUTE to 0 to turn the limit off)"
                .into(),
        });
    }
    Ok(Some(RateLimit { per_minute, burst }))
}

fn parse_tier(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Tier,
) -> Result<Tier, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(value) => Tier::parse(&value).ok_or_else(|| ConfigError::Invalid {
            name,
            reason: format!("'{value}' is not one of reader, responder, admin"),
        }),
    }
}

fn parse_inbound(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<InboundAuthConfig, ConfigError> {
    let mode = match lookup(settings::AUTH_INBOUND_MODE)
        .map(|m| m.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("entra") => InboundMode::Entra,
        Some("easyauth") => InboundMode::EasyAuth,
        Some("none") => InboundMode::None {
            local_role: parse_tier(lookup, settings::AUTH_LOCAL_ROLE, Tier::Reader)?,
        },
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: settings::AUTH_INBOUND_MODE,
                reason: format!("'{other}' is not one of entra, easyauth, none"),
            });
        }
    };
    let audiences = list(lookup, settings::AUTH_AUDIENCE);
    let allowed_tenants = list(lookup, settings::AUTH_ALLOWED_TENANTS)
        .iter()
        .map(|id| {
            id.parse::<TenantId>()
                .map_err(|error| ConfigError::Invalid {
                    name: settings::AUTH_ALLOWED_TENANTS,
                    reason: error.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let needs_identity = !matches!(mode, InboundMode::None { .. });
    if mode == InboundMode::Entra && audiences.is_empty() {
        return Err(ConfigError::Missing {
            name: settings::AUTH_AUDIENCE,
            hint: format!(
                " when {} is entra (the default): the app's client id and/or application id URI; set {}=none to rely on the function key alone",
                settings::AUTH_INBOUND_MODE,
                settings::AUTH_INBOUND_MODE
            ),
        });
    }
    if needs_identity && allowed_tenants.is_empty() {
        return Err(ConfigError::Missing {
            name: settings::AUTH_ALLOWED_TENANTS,
            hint: " (comma-separated tenant ids whose users may call this server, usually your own tenant)".into(),
        });
    }
    let role =
        |name: &'static str, default: &str| lookup(name).unwrap_or_else(|| default.to_string());
    Ok(InboundAuthConfig {
        mode,
        audiences,
        allowed_tenants,
        authority: https_or_loopback_url(
            lookup,
            settings::AUTH_AUTHORITY_HOST,
            fixed_url("https://login.microsoftonline.com"),
        )?,
        scope: lookup(settings::AUTH_SCOPE),
        roles: RoleNames {
            reader: role(settings::AUTH_ROLE_READER, "MCP.Reader"),
            responder: role(settings::AUTH_ROLE_RESPONDER, "MCP.Responder"),
            admin: role(settings::AUTH_ROLE_ADMIN, "MCP.Admin"),
            approver: role(settings::AUTH_ROLE_APPROVER, "MCP.Approver"),
        },
        key_refresh_cooldown: Duration::from_secs(30),
    })
}

fn parse_approval(
    lookup: &impl Fn(&str) -> Option<String>,
    inbound: &InboundAuthConfig,
) -> Result<ApprovalConfig, ConfigError> {
    let public_url = match lookup(settings::APPROVAL_PUBLIC_URL) {
        Some(_) => Some(https_or_loopback_url(
            lookup,
            settings::APPROVAL_PUBLIC_URL,
            fixed_url("https://localhost"),
        )?),
        None => lookup(settings::WEBSITE_HOSTNAME)
            .and_then(|host| Url::parse(&format!("https://{}", host.trim())).ok()),
    };
    let fallback = match lookup(settings::APPROVAL_FALLBACK)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None if public_url.is_some() => ApprovalFallback::Page,
        None | Some("refuse") => ApprovalFallback::Refuse,
        Some("confirm") => ApprovalFallback::Confirm,
        Some("page") if public_url.is_none() => {
            return Err(ConfigError::Invalid {
                name: settings::APPROVAL_FALLBACK,
                reason: format!(
                    "page needs a URL browsers reach this app at: set {} (or run where WEBSITE_HOSTNAME is set)",
                    settings::APPROVAL_PUBLIC_URL
                ),
            });
        }
        Some("page") => ApprovalFallback::Page,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: settings::APPROVAL_FALLBACK,
                reason: format!("'{other}' is not one of page, confirm, refuse"),
            });
        }
    };
    let signing_key = match lookup(settings::APPROVAL_SIGNING_KEY) {
        None => None,
        Some(key) if key.len() < MIN_APPROVAL_KEY_BYTES => {
            // The value itself is never echoed: it is a secret.
            return Err(ConfigError::Invalid {
                name: settings::APPROVAL_SIGNING_KEY,
                reason: format!(
                    "the key has {} bytes; at least {MIN_APPROVAL_KEY_BYTES} are required",
                    key.len()
                ),
            });
        }
        Some(key) => Some(key.into()),
    };
    let ttl_seconds: u64 = parse_or(lookup, settings::APPROVAL_TTL_SECONDS, 300)?;
    if !(30..=3600).contains(&ttl_seconds) {
        return Err(ConfigError::Invalid {
            name: settings::APPROVAL_TTL_SECONDS,
            reason: format!("{ttl_seconds} is outside 30..=3600 seconds"),
        });
    }
    let second_person = match lookup(settings::APPROVAL_SECOND_PERSON)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("off") => SecondPerson::Off,
        Some("destructive") => SecondPerson::Destructive,
        Some(count) => match count.parse::<u32>() {
            Ok(count) => SecondPerson::AboveTargets(count),
            Err(_) => {
                return Err(ConfigError::Invalid {
                    name: settings::APPROVAL_SECOND_PERSON,
                    reason: format!(
                        "'{count}' is not off, destructive, or a number of targets above which a second person approves"
                    ),
                });
            }
        },
    };
    if second_person != SecondPerson::Off && matches!(inbound.mode, InboundMode::None { .. }) {
        return Err(ConfigError::Invalid {
            name: settings::APPROVAL_SECOND_PERSON,
            reason: format!(
                "a second approver needs callers who are told apart, but {}=none makes every caller the same; \
                 use entra or easyauth, or set {}=off",
                settings::AUTH_INBOUND_MODE,
                settings::APPROVAL_SECOND_PERSON
            ),
        });
    }
    let max_targets_per_call = ranged(
        lookup,
        settings::DESTRUCTIVE_MAX_TARGETS_PER_CALL,
        1000u32,
        1..=1000,
    )?;
    let max_targets_per_tenant_hour = ranged(
        lookup,
        settings::DESTRUCTIVE_MAX_TARGETS_PER_TENANT_HOUR,
        2000u32,
        1..=100_000,
    )?;
    Ok(ApprovalConfig {
        fallback,
        signing_key,
        ttl: Duration::from_secs(ttl_seconds),
        public_url,
        second_person,
        page_sign_in: parse_bool(lookup, settings::WEBSITE_AUTH_ENABLED, false)?,
        destructive_disabled: parse_bool(lookup, settings::DESTRUCTIVE_TOOLS_DISABLED, false)?,
        max_targets_per_call,
        max_targets_per_tenant_hour,
    })
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
            value
                .parse::<TenantId>()
                .map_err(|error| ConfigError::Invalid {
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
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const MINIMAL: &[(&str, &str)] = &[
        ("AZURE_CLIENT_ID", "app"),
        ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
        ("AUTH_AUDIENCE", "api://defender-mcp"),
        (
            "AUTH_ALLOWED_TENANTS",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        ),
    ];

    #[test]
    fn minimal_settings_give_public_cloud_defaults() {
        let config = Config::from_lookup(lookup_from(MINIMAL)).expect("valid");
        assert_eq!(config.port, 7071);
        assert_eq!(
            config.endpoints.defender.as_str(),
            "https://api.securitycenter.microsoft.com/"
        );
        assert!(matches!(
            config.auth,
            OutboundAuth::ManagedIdentityFederated { .. }
        ));
        assert!(config.mcp.allowed_hosts.contains(&"127.0.0.1".to_string()));
        assert_eq!(
            config.outbound.rate_limits,
            RateLimits::documented(100, 1500)
        );
        assert_eq!(config.outbound.max_pacing, Duration::from_secs(45));
    }

    #[test]
    fn errors_name_the_bad_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("FUNCTIONS_CUSTOMHANDLER_PORT", "eighty")],
                "FUNCTIONS_CUSTOMHANDLER_PORT",
            ),
            (&[("AUTH_MODE", "password")], "AUTH_MODE"),
            (&[("AUTH_MODE", "client_secret")], "AZURE_CLIENT_SECRET"),
            (
                &[("DEFENDER_API_BASE_URL", "http://example.com")],
                "DEFENDER_API_BASE_URL",
            ),
            (&[("TENANTS", "{not json")], "TENANTS"),
            (&[("MCP_READ_ONLY", "maybe")], "MCP_READ_ONLY"),
            (&[("DEFAULT_TENANT_ID", "contoso")], "DEFAULT_TENANT_ID"),
            (
                &[("HUNT_TICK_BUDGET_SECONDS", "0")],
                "HUNT_TICK_BUDGET_SECONDS",
            ),
            (
                &[("HUNT_STORAGE_CONTAINER", "Hunts_1")],
                "HUNT_STORAGE_CONTAINER",
            ),
            (&[("HUNT_MAX_CATCH_UP", "0")], "HUNT_MAX_CATCH_UP"),
            (&[("JOBS_CONTAINER", "Jobs_Container")], "JOBS_CONTAINER"),
            (&[("PS_JOBS_QUEUE", &"q".repeat(60))], "PS_JOBS_QUEUE"),
            (
                &[("PS_JOB_DEADLINE_MINUTES", "0")],
                "PS_JOB_DEADLINE_MINUTES",
            ),
            (
                &[("PS_MANIFEST_REFRESH_SECONDS", "soon")],
                "PS_MANIFEST_REFRESH_SECONDS",
            ),
            (&[("AUTH_INBOUND_MODE", "basic")], "AUTH_INBOUND_MODE"),
            (
                &[("AUTH_ALLOWED_TENANTS", "contoso.com")],
                "AUTH_ALLOWED_TENANTS",
            ),
            (
                &[("AUTH_AUTHORITY_HOST", "http://login.example.com")],
                "AUTH_AUTHORITY_HOST",
            ),
            (
                &[("AUTH_INBOUND_MODE", "none"), ("AUTH_LOCAL_ROLE", "root")],
                "AUTH_LOCAL_ROLE",
            ),
            (&[("APPROVAL_FALLBACK", "ask")], "APPROVAL_FALLBACK"),
            (&[("APPROVAL_SIGNING_KEY", "short")], "APPROVAL_SIGNING_KEY"),
            (&[("APPROVAL_TTL_SECONDS", "5")], "APPROVAL_TTL_SECONDS"),
            (&[("MCP_RATE_LIMIT_BURST", "0")], "MCP_RATE_LIMIT_BURST"),
            (
                &[("DEFENDER_MACHINE_CALLS_PER_MINUTE", "0")],
                "DEFENDER_MACHINE_CALLS_PER_MINUTE",
            ),
            (
                &[("DEFENDER_MACHINE_CALLS_PER_HOUR", "lots")],
                "DEFENDER_MACHINE_CALLS_PER_HOUR",
            ),
            (
                &[("OUTBOUND_MAX_PACING_SECONDS", "-1")],
                "OUTBOUND_MAX_PACING_SECONDS",
            ),
            (
                &[("MCP_CALL_DEADLINE_SECONDS", "600")],
                "MCP_CALL_DEADLINE_SECONDS",
            ),
            (
                &[("MCP_CALL_DEADLINE_SECONDS", "2")],
                "MCP_CALL_DEADLINE_SECONDS",
            ),
        ];
        for (extra, expected) in cases {
            let mut pairs = MINIMAL.to_vec();
            pairs.extend_from_slice(extra);
            let error = Config::from_lookup(lookup_from(&pairs))
                .expect_err("must be refused")
                .to_string();
            assert!(error.contains(expected), "{error} should name {expected}");
        }
    }

    #[test]
    fn missing_client_id_is_reported_with_what_it_is() {
        let error = Config::from_lookup(lookup_from(&[(
            "AzureWebJobsStorage",
            "UseDevelopmentStorage=true",
        )]))
        .expect_err("client id is required")
        .to_string();
        assert!(
            error.contains("AZURE_CLIENT_ID") && error.contains("multi-tenant app registration"),
            "{error}"
        );
    }

    #[test]
    fn inbound_auth_is_entra_by_default_and_needs_an_audience_and_tenants() {
        let config = Config::from_lookup(lookup_from(MINIMAL)).expect("valid");
        assert_eq!(config.inbound.mode, InboundMode::Entra);
        assert_eq!(config.inbound.roles.admin, "MCP.Admin");
        let without_audience: Vec<_> = MINIMAL
            .iter()
            .copied()
            .filter(|(k, _)| *k != "AUTH_AUDIENCE")
            .collect();
        let error = Config::from_lookup(lookup_from(&without_audience))
            .expect_err("audience required")
            .to_string();
        assert!(
            error.contains("AUTH_AUDIENCE") && error.contains("AUTH_INBOUND_MODE=none"),
            "{error}"
        );
        let mut none = without_audience.clone();
        none.retain(|(k, _)| *k != "AUTH_ALLOWED_TENANTS");
        none.push(("AUTH_INBOUND_MODE", "none"));
        let config =
            Config::from_lookup(lookup_from(&none)).expect("none needs no identity settings");
        assert_eq!(
            config.inbound.mode,
            InboundMode::None {
                local_role: Tier::Reader
            }
        );
    }

    #[test]
    fn a_short_approval_key_is_refused_without_echoing_it() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("APPROVAL_SIGNING_KEY", "hunter2-hunter2"));
        let error = Config::from_lookup(lookup_from(&pairs))
            .expect_err("too short")
            .to_string();
        assert!(
            error.contains("APPROVAL_SIGNING_KEY") && !error.contains("hunter2"),
            "{error}"
        );
    }

    #[test]
    fn toolsets_are_parsed_with_the_settings_and_a_typo_stops_the_start() {
        let config = Config::from_lookup(lookup_from(MINIMAL)).expect("valid");
        assert_eq!(
            config.mcp.toolsets,
            Selection::all(),
            "unset: every toolset"
        );

        let mut pairs = MINIMAL.to_vec();
        pairs.push(("MCP_TOOLSETS", " Defender , hunts"));
        let config = Config::from_lookup(lookup_from(&pairs)).expect("valid");
        assert_eq!(
            config.mcp.toolsets,
            Selection::parse("defender,hunts").expect("known names")
        );

        let mut pairs = MINIMAL.to_vec();
        pairs.push(("MCP_TOOLSETS", "hunts,respnse"));
        let error = Config::from_lookup(lookup_from(&pairs))
            .expect_err("unknown toolset")
            .to_string();
        assert!(
            error.contains("MCP_TOOLSETS")
                && error.contains("respnse")
                && error.contains("response"),
            "names the setting, the typo and what is accepted: {error}"
        );
    }

    #[test]
    fn website_hostname_is_an_allowed_host() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("WEBSITE_HOSTNAME", "mcp-contoso.azurewebsites.net"));
        pairs.push(("MCP_ALLOWED_HOSTS", "mcp.contoso.com, "));
        let config = Config::from_lookup(lookup_from(&pairs)).expect("valid");
        assert!(
            config
                .mcp
                .allowed_hosts
                .contains(&"mcp-contoso.azurewebsites.net".to_string())
        );
        assert!(
            config
                .mcp
                .allowed_hosts
                .contains(&"mcp.contoso.com".to_string())
        );
    }
}
