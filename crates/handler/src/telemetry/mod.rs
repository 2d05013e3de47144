//! Logs and telemetry.
//!
//! - **stdout**: every log line, with its level, filtered by `RUST_LOG`. The Functions host
//!   records the handler's stdout as information and stderr as errors, and forwards both to
//!   Application Insights itself.
//! - **Application Insights** (only when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set), through
//!   OpenTelemetry: a request (server span) for each HTTP request and function invocation, a
//!   dependency (client span) for each Microsoft API call with its status and duration, each tool
//!   call as an in-process dependency, exceptions recorded on those spans, and metrics (tool
//!   calls, tool errors, throttling, invocation durations). Plain log lines are not exported:
//!   the host already sends stdout, and sending them again would count every line twice.
//!
//! Off, the spans below are disabled at their call sites (no layer is interested in their
//! targets) and [`metrics`] is `None`, so the request path pays a cached interest check and a
//! branch.

mod ingestion;
mod metrics;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

pub use ingestion::IngestionAuth;
pub use metrics::Metrics;

use crate::config::settings;

/// Span targets that exist only for telemetry; stdout never shows them.
pub const REQUEST_TARGET: &str = "telemetry::request";
pub const DEPENDENCY_TARGET: &str = "telemetry::dependency";
pub const TOOL_TARGET: &str = "telemetry::tool";
const TELEMETRY_TARGETS: [&str; 3] = [REQUEST_TARGET, DEPENDENCY_TARGET, TOOL_TARGET];

const SERVICE_NAME: &str = "defender-sentinel-mcp";
const DEFAULT_FILTER: &str = "info,rmcp=warn,azure_core=warn,azure_identity=warn";
const METRICS_INTERVAL: Duration = Duration::from_secs(60);

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The request span, carried in the HTTP request's extensions to where rmcp runs the tool call
/// on another task, so the call is recorded inside its request.
#[derive(Clone)]
pub struct RequestSpan(pub tracing::Span);

/// The metric instruments, when telemetry is exported.
pub fn metrics() -> Option<&'static Metrics> {
    METRICS.get()
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("app setting {name} has an invalid value: {0}", name = settings::APPLICATIONINSIGHTS_CONNECTION_STRING)]
    ConnectionString(String),
    #[error("app setting {name} has an invalid value: {0}", name = settings::APPLICATIONINSIGHTS_AUTHENTICATION_STRING)]
    AuthenticationString(String),
    #[error("the telemetry HTTP client could not be built: {0}")]
    Client(String),
}

/// Where telemetry goes, read from the app settings.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    connection_string: String,
    auth: IngestionAuth,
}

impl TelemetrySettings {
    /// `None` when `APPLICATIONINSIGHTS_CONNECTION_STRING` is not set: telemetry stays off.
    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TelemetryError> {
        let Some(connection_string) = lookup(settings::APPLICATIONINSIGHTS_CONNECTION_STRING)
        else {
            return Ok(None);
        };
        let auth = IngestionAuth::parse(
            lookup(settings::APPLICATIONINSIGHTS_AUTHENTICATION_STRING).as_deref(),
        )
        .map_err(TelemetryError::AuthenticationString)?;
        Ok(Some(Self {
            connection_string,
            auth,
        }))
    }
}

/// The installed pipeline; flush it before the process ends so the last spans are not lost.
pub struct Telemetry {
    providers: Option<(SdkTracerProvider, SdkMeterProvider)>,
}

impl Telemetry {
    /// Installs stdout logging, and the Application Insights export when `export` is given: the
    /// settings and the HTTP client to send with (`outbound::http_client`, so exports trust the
    /// same CAs as every other outbound call). Must run inside a tokio runtime: exports are sent
    /// on it.
    pub fn start(
        log_filter: Option<&str>,
        export: Option<(TelemetrySettings, reqwest::Client)>,
    ) -> Result<Self, TelemetryError> {
        let stdout = stdout_layer(
            log_filter,
            std::io::stdout,
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
        );
        let Some((settings, http)) = export else {
            let _ = Registry::default().with(stdout).try_init();
            return Ok(Self { providers: None });
        };

        let client = ingestion::IngestionClient::new(http, settings.auth)?;
        let exporter = opentelemetry_application_insights::Exporter::new_from_connection_string(
            &settings.connection_string,
            client,
        )
        .map_err(|error| TelemetryError::ConnectionString(error.to_string()))?;
        let resource = Resource::builder()
            .with_service_name(SERVICE_NAME)
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(exporter.clone())
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(METRICS_INTERVAL)
                    .build(),
            )
            .build();
        let _ = METRICS.set(Metrics::new(&opentelemetry::metrics::MeterProvider::meter(
            &meter_provider,
            SERVICE_NAME,
        )));

        // Only the telemetry spans: events (log lines) reach App Insights through the host.
        let spans = tracing_opentelemetry::layer()
            .with_tracer(tracer_provider.tracer(SERVICE_NAME))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(filter_fn(|metadata| {
                metadata.is_span() && TELEMETRY_TARGETS.contains(&metadata.target())
            }));
        let _ = Registry::default().with(stdout).with(spans).try_init();
        tracing::info!("telemetry is exported to Application Insights");
        Ok(Self {
            providers: Some((tracer_provider, meter_provider)),
        })
    }

    pub fn is_exporting(&self) -> bool {
        self.providers.is_some()
    }

    /// Sends what is buffered. Blocks: call it from a blocking thread (`spawn_blocking`), since
    /// the export itself runs on the tokio runtime.
    pub fn flush(&self) {
        if let Some((tracer_provider, meter_provider)) = &self.providers {
            if let Err(error) = tracer_provider.force_flush() {
                tracing::warn!(%error, "telemetry spans could not be flushed");
            }
            if let Err(error) = meter_provider.force_flush() {
                tracing::warn!(%error, "telemetry metrics could not be flushed");
            }
        }
    }

    /// Flushes and stops the exporters (blocking, like [`Telemetry::flush`]).
    pub fn shutdown(self) {
        if let Some((tracer_provider, meter_provider)) = self.providers {
            let _ = tracer_provider.shutdown();
            let _ = meter_provider.shutdown();
        }
    }
}

/// Log lines on stdout, filtered by `RUST_LOG`. Whatever that asks, rmcp never logs below info:
/// at debug it writes every JSON-RPC message whole, and those carry tool arguments such as
/// confirmation tokens.
fn stdout_layer<S, W>(
    log_filter: Option<&str>,
    writer: W,
    ansi: bool,
) -> impl tracing_subscriber::Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let not_ours = filter_fn(|metadata| {
        let ours = TELEMETRY_TARGETS.contains(&metadata.target());
        let rmcp_detail =
            metadata.target().starts_with("rmcp") && *metadata.level() > tracing::Level::INFO;
        !ours && !rmcp_detail
    });
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(true)
        .with_filter(stdout_filter(log_filter).and(not_ours))
}

/// The stdout logging alone, for a caller that installs it itself (the log-hygiene test).
pub fn subscriber<W>(
    log_filter: Option<&str>,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    Registry::default().with(stdout_layer(log_filter, writer, ansi))
}

fn stdout_filter(log_filter: Option<&str>) -> EnvFilter {
    match log_filter.map(EnvFilter::try_new) {
        Some(Ok(filter)) => filter,
        Some(Err(error)) => {
            eprintln!(
                "app setting {} is not a valid filter ({error}); using {DEFAULT_FILTER}",
                settings::RUST_LOG
            );
            EnvFilter::new(DEFAULT_FILTER)
        }
        None => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// Records an exception on `span` (an Application Insights exception correlated with its
/// request or dependency) and marks the span failed. Free when telemetry is off.
pub fn record_exception(span: &tracing::Span, kind: &'static str, message: &str) {
    if span.is_disabled() {
        return;
    }
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", kind),
            KeyValue::new("exception.message", message.to_string()),
        ],
    );
    span.set_status(Status::error(message.to_string()));
}

/// Marks `span` failed without an exception (an expected failure such as a bad argument).
pub fn record_failure(span: &tracing::Span, message: &str) {
    if !span.is_disabled() {
        span.set_status(Status::error(message.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_is_off_without_a_connection_string() {
        assert!(
            TelemetrySettings::from_lookup(&|_: &str| None)
                .expect("valid")
                .is_none()
        );
        let error = TelemetrySettings::from_lookup(&|name: &str| match name {
            "APPLICATIONINSIGHTS_CONNECTION_STRING" => Some("InstrumentationKey=x".into()),
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" => Some("Authorization=ikey".into()),
            _ => None,
        })
        .expect_err("a bad authentication string is refused");
        assert!(
            error
                .to_string()
                .contains("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"),
            "{error}"
        );
    }
}
