//! Per-instance state: seeded tenant data, issued tokens, downloads and rate-limit windows.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::faults::FaultBook;
use crate::{SandboxOptions, SandboxTenant};

pub type AppState = Arc<Inner>;

/// Containment state of a machine, changed when response actions succeed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachineState {
    /// `Full`, `Selective` or `UnManagedDevice` while isolated.
    pub isolation: Option<String>,
    pub code_execution_restricted: bool,
    pub offboarded: bool,
    /// SHA-1s stopped and quarantined on this machine.
    pub quarantined_files: Vec<String>,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub tenant_id: String,
    pub audience: String,
    pub app_id: String,
    /// Application permissions granted to the app for this audience (the token's `roles`).
    pub roles: Vec<String>,
    pub expires_at: Instant,
}

/// A SAS-style download.
#[derive(Debug, Clone)]
pub struct Download {
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub expires_at: Instant,
}

pub struct Inner {
    pub options: SandboxOptions,
    pub base_url: String,
    pub ca_pem: String,
    pub client_id: String,
    pub client_secret: String,
    pub tenants_public: Vec<SandboxTenant>,
    /// Tenant id → data. Each tenant has its own lock; no request touches two tenants.
    pub tenants: HashMap<String, Mutex<crate::seed::TenantData>>,
    pub tokens: Mutex<HashMap<String, TokenRecord>>,
    pub faults: FaultBook,
    downloads: Mutex<HashMap<String, Download>>,
    rate_windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Handlers never leave shared state half-updated across a panic point that matters for
    // a test double, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub fn new(options: SandboxOptions, base_url: String, ca_pem: String) -> Self {
        let mut rng = StdRng::seed_from_u64(options.seed);
        let client_id = crate::util::guid_from(&mut rng);
        let secret_bytes: [u8; 24] = rng.random();
        let client_secret = format!(
            "sbx~{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                secret_bytes
            )
        );
        let world = crate::seed::generate(options.seed, &base_url, options.extra_workstations);
        let tenants_public = world.iter().map(|t| t.public.clone()).collect();
        let tenants = world
            .into_iter()
            .map(|t| (t.public.tenant_id.clone(), Mutex::new(t)))
            .collect();
        Self {
            options,
            base_url,
            ca_pem,
            client_id,
            client_secret,
            tenants_public,
            tenants,
            tokens: Mutex::new(HashMap::new()),
            faults: FaultBook::default(),
            downloads: Mutex::new(HashMap::new()),
            rate_windows: Mutex::new(HashMap::new()),
        }
    }

    /// Locks one tenant's data.
    pub fn tenant(&self, tenant_id: &str) -> Option<MutexGuard<'_, crate::seed::TenantData>> {
        self.tenants.get(tenant_id).map(lock)
    }

    pub fn tokens(&self) -> MutexGuard<'_, HashMap<String, TokenRecord>> {
        lock(&self.tokens)
    }

    pub fn machine_state(&self, tenant_id: &str, machine_id: &str) -> Option<MachineState> {
        let mut t = self.tenant(tenant_id)?;
        t.settle_actions(&self.options.action_timings);
        t.machines
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(machine_id))
            .map(|m| m.state.clone())
    }

    /// Registers a download and returns its absolute URL (valid 30 minutes, like the SAS
    /// links Defender hands out).
    pub fn add_download(&self, content_type: &str, bytes: Vec<u8>, file_name: &str) -> String {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut d = lock(&self.downloads);
        let now = Instant::now();
        d.retain(|_, v| v.expires_at > now);
        d.insert(
            token.clone(),
            Download {
                content_type: content_type.to_string(),
                bytes,
                expires_at: now + Duration::from_secs(1800),
            },
        );
        let se =
            crate::util::fmt_time(time::OffsetDateTime::now_utc() + time::Duration::minutes(30));
        format!(
            "{}/_sandbox/downloads/{token}?sv=2022-11-02&st=now&se={}&sr=b&sp=r&sig=sandbox&rscd=attachment%3B%20filename%3D{}",
            self.base_url,
            crate::util::encode_component(&se),
            crate::util::encode_component(file_name)
        )
    }

    pub fn take_download(&self, token: &str) -> Option<Download> {
        let d = lock(&self.downloads);
        d.get(token)
            .filter(|v| v.expires_at > Instant::now())
            .cloned()
    }

    /// Counts a call against the tenant's rolling minute and hour windows. `Err(secs)` when
    /// over either limit: the number of seconds until a slot frees up.
    /// The app roles a token for `audience` carries: every permission the definitions name for
    /// that API, less those the options withhold (to see Microsoft's 403).
    pub fn granted_roles(&self, audience: &str) -> Vec<String> {
        let api = if audience.contains("graph.microsoft.com") {
            crate::errors::Api::Graph
        } else if audience.contains("security") {
            crate::errors::Api::Defender
        } else {
            return Vec::new();
        };
        crate::contract::contract()
            .permissions(api)
            .into_iter()
            .filter(|role| !self.options.withheld_permissions.contains(role))
            .collect()
    }

    pub fn rate_limit(&self, tenant_id: &str) -> Result<(), u64> {
        self.rate_window(
            tenant_id,
            self.options.rate_limit_per_minute,
            self.options.rate_limit_per_hour,
        )
    }

    /// Admits one call in the rolling minute and hour windows kept under `key`, or says how
    /// many seconds until one fits. The windows' lengths are the options' (tests shorten them).
    pub fn rate_window(&self, key: &str, per_minute: u32, per_hour: u32) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = lock(&self.rate_windows);
        let w = windows.entry(key.to_string()).or_default();
        let hour = self.options.rate_limit_hour;
        let minute = self.options.rate_limit_minute;
        while w.front().is_some_and(|t| now.duration_since(*t) >= hour) {
            w.pop_front();
        }
        let per_min = per_minute as usize;
        let per_hour = per_hour as usize;
        let in_minute: Vec<&Instant> = w
            .iter()
            .filter(|t| now.duration_since(**t) < minute)
            .collect();
        if in_minute.len() >= per_min {
            // The call that must age out before another fits (a limit of 0 never frees up
            // within the window).
            let wait = in_minute
                .get(in_minute.len() - per_min)
                .map(|oldest| minute.saturating_sub(now.duration_since(**oldest)))
                .unwrap_or(minute);
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        if w.len() >= per_hour {
            let wait = w
                .get(w.len() - per_hour)
                .map(|oldest| hour.saturating_sub(now.duration_since(*oldest)))
                .unwrap_or(hour);
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        w.push_back(now);
        Ok(())
    }
}
