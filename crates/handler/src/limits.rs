//! Microsoft's throttling, as data: the buckets of endpoints each tenant is throttled in
//! together, and the windows documented for each. Configuration sets them (the machine limits are
//! settings); the outbound limiter (`outbound::limiter`) enforces them. Kept below both, so that
//! neither reaches into the other for them.

use crate::quota::Window;

/// A family of endpoints that Microsoft throttles together, per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `/api/machines/...` and `/api/machineactions/...`.
    DefenderMachines,
    /// `POST /api/machines/{id}/runliveresponse` (also counted as a machine call).
    DefenderLiveResponse,
    /// `POST /api/indicators/import`.
    DefenderIndicatorImport,
    /// `GET /api/machineactions/{id}/getPackageUri` (also counted as a machine call): 2 a minute
    /// and 120 an hour (get-package-sas-uri.md).
    DefenderPackageUri,
    /// Every other Defender endpoint (indicators, alerts, files, IPs, domains, library).
    DefenderGeneral,
    /// Graph `runHuntingQuery`.
    GraphHunting,
}

impl Bucket {
    pub fn describe(self) -> &'static str {
        match self {
            Self::DefenderMachines => "Defender machine and machine-action calls",
            Self::DefenderLiveResponse => "Defender live response sessions",
            Self::DefenderIndicatorImport => "Defender indicator imports",
            Self::DefenderPackageUri => "Defender investigation package links",
            Self::DefenderGeneral => "Defender API calls",
            Self::GraphHunting => "advanced hunting queries",
        }
    }
}

/// The windows of every bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub defender_machines: Vec<Window>,
    pub defender_live_response: Vec<Window>,
    pub defender_indicator_import: Vec<Window>,
    pub defender_package_uri: Vec<Window>,
    pub defender_general: Vec<Window>,
    pub graph_hunting: Vec<Window>,
}

impl RateLimits {
    /// Microsoft's documented per-tenant limits, with the machine limits as configured.
    pub fn documented(machine_calls_per_minute: u32, machine_calls_per_hour: u32) -> Self {
        Self {
            defender_machines: vec![
                Window::per_minute(machine_calls_per_minute),
                Window::per_hour(machine_calls_per_hour),
            ],
            defender_live_response: vec![Window::per_minute(10)],
            defender_indicator_import: vec![Window::per_minute(30)],
            defender_package_uri: vec![Window::per_minute(2), Window::per_hour(120)],
            defender_general: vec![Window::per_minute(100), Window::per_hour(1500)],
            graph_hunting: vec![Window::per_minute(45), Window::per_hour(1500)],
        }
    }

    /// The same limits over periods `divisor` times shorter (tests run an hour's pacing in a minute).
    pub fn with_periods_divided_by(mut self, divisor: u32) -> Self {
        for windows in [
            &mut self.defender_machines,
            &mut self.defender_live_response,
            &mut self.defender_indicator_import,
            &mut self.defender_package_uri,
            &mut self.defender_general,
            &mut self.graph_hunting,
        ] {
            for window in windows.iter_mut() {
                window.period /= divisor.max(1);
            }
        }
        self
    }

    pub(crate) fn windows(&self, bucket: Bucket) -> &[Window] {
        match bucket {
            Bucket::DefenderMachines => &self.defender_machines,
            Bucket::DefenderLiveResponse => &self.defender_live_response,
            Bucket::DefenderIndicatorImport => &self.defender_indicator_import,
            Bucket::DefenderPackageUri => &self.defender_package_uri,
            Bucket::DefenderGeneral => &self.defender_general,
            Bucket::GraphHunting => &self.graph_hunting,
        }
    }
}
