use clap::Parser;

use handler::config::{Config, OutboundConfig, settings};
use handler::telemetry::{Telemetry, TelemetrySettings};
use handler::{StartError, local, outbound, secrets};

/// MCP server for Microsoft Defender XDR and Sentinel, run by the Azure Functions host as a
/// custom handler. Settings come from the environment (app settings); see the README.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Start an embedded simulated tenant and point every Microsoft API at it (local runs, demos;
    /// builds with the default feature `embedded-sandbox`, not the shipped package).
    #[arg(long)]
    sandbox: bool,
    /// Port to listen on (default: FUNCTIONS_CUSTOMHANDLER_PORT, else 7071).
    #[arg(long)]
    port: Option<u16>,
}

// The shipped binary is static musl, whose allocator is slow under threads: mimalloc cut handler CPU
// per tools/list by a third and per tool call by a sixth (scripts/bench). Its `no_thp` feature
// keeps it off transparent huge pages, which otherwise took idle RSS from 19 to 29 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let telemetry = match start_telemetry() {
        Ok(telemetry) => telemetry,
        Err(error) => {
            // Logging to stdout still works without the exporter; say why there is none.
            let _ = Telemetry::start(env(settings::RUST_LOG).as_deref(), None);
            return failed(&error);
        }
    };
    let result = run(cli).await;
    // Export what is buffered (blocking, and the export itself runs on this runtime).
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => failed(&error),
    }
}

fn failed(error: &StartError) -> std::process::ExitCode {
    tracing::error!("handler cannot start: {error}");
    eprintln!("handler cannot start: {error}");
    std::process::ExitCode::FAILURE
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn start_telemetry() -> Result<Telemetry, StartError> {
    let export = match TelemetrySettings::from_lookup(&env)? {
        Some(settings) => {
            let outbound = OutboundConfig::from_lookup(&env)?;
            Some((settings, outbound::http_client(&outbound)?))
        }
        None => None,
    };
    Ok(Telemetry::start(
        env(settings::RUST_LOG).as_deref(),
        export,
    )?)
}

async fn run(cli: Cli) -> Result<(), StartError> {
    let port_override = cli.port.map(|port| port.to_string());
    let sandbox = if cli.sandbox {
        Some(local::LocalSandbox::start().await?)
    } else {
        None
    };
    let overrides = sandbox
        .as_ref()
        .map(local::LocalSandbox::settings)
        .unwrap_or_default();
    // Settings a local run gets unless the environment says otherwise (inbound auth off, ...).
    let defaults = if cli.sandbox {
        local::sandbox_defaults()
    } else {
        Default::default()
    };
    let settings = |name: &str| -> Option<String> {
        if name == settings::CUSTOM_HANDLER_PORT && port_override.is_some() {
            return port_override.clone();
        }
        if let Some(value) = overrides.get(name) {
            return Some(value.clone());
        }
        if name == settings::STORAGE && cli.sandbox {
            return env(name).or_else(|| Some("UseDevelopmentStorage=true".into()));
        }
        if name == settings::APPROVAL_PUBLIC_URL && cli.sandbox {
            let port = port_override
                .clone()
                .or_else(|| env(settings::CUSTOM_HANDLER_PORT))
                .and_then(|port| port.parse().ok())
                .unwrap_or(7071);
            return env(name).or_else(|| Some(local::local_public_url(port)));
        }
        env(name).or_else(|| defaults.get(name).cloned())
    };
    let outbound = OutboundConfig::from_lookup(&settings)?;
    let secrets = secrets::resolve(&settings, || outbound::http_client(&outbound)).await?;
    let mut config = Config::from_lookup(|name| secrets.get(name).or_else(|| settings(name)))?;
    if let Some(sandbox) = &sandbox {
        config.outbound.trusted_ca_pem = Some(sandbox.ca_certificate_pem());
    }
    let result = handler::serve(&config, sandbox.is_some(), shutdown_signal()).await;
    if let Some(sandbox) = sandbox {
        sandbox.shutdown().await;
    }
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
