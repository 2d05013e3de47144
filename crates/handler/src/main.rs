use clap::Parser;

use handler::config::{Config, settings};
use handler::{StartError, local, telemetry};

/// MCP server for Microsoft Defender XDR and Sentinel, run by the Azure Functions host as a
/// custom handler. Settings come from the environment (app settings); see the README.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Start an embedded simulated tenant and point every Microsoft API at it (local runs, demos).
    #[arg(long)]
    sandbox: bool,
    /// Port to listen on (default: FUNCTIONS_CUSTOMHANDLER_PORT, else 7071).
    #[arg(long)]
    port: Option<u16>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("handler cannot start: {error}");
            eprintln!("handler cannot start: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), StartError> {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    let port_override = cli.port.map(|port| port.to_string());
    let (mut config, sandbox) = if cli.sandbox {
        let sandbox = sandbox::RunningSandbox::start(sandbox::SandboxOptions::default())
            .await
            .map_err(|error| StartError::Sandbox(error.to_string()))?;
        tracing::info!(url = sandbox.base_url(), "embedded sandbox tenant started");
        let overrides = local::sandbox_settings(&sandbox);
        let defaults = local::sandbox_defaults();
        let config = Config::from_lookup(|name| {
            if name == settings::CUSTOM_HANDLER_PORT && port_override.is_some() {
                return port_override.clone();
            }
            if name == settings::STORAGE {
                return env(name).or_else(|| Some("UseDevelopmentStorage=true".into()));
            }
            overrides.get(name).cloned().or_else(|| env(name)).or_else(|| defaults.get(name).cloned())
        })?;
        (config, Some(sandbox))
    } else {
        let config = Config::from_lookup(|name| match (name, &port_override) {
            (settings::CUSTOM_HANDLER_PORT, Some(port)) => Some(port.clone()),
            _ => env(name),
        })?;
        (config, None)
    };
    if let Some(sandbox) = &sandbox {
        config.outbound.trusted_ca_pem = Some(sandbox.ca_certificate_pem().to_string());
    }
    let result = handler::serve(&config, shutdown_signal()).await;
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
