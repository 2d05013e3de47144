//! `sandbox --port 0 --ca-out ca.pem`: runs the simulated tenant until Ctrl-C, printing the
//! base URL (first line of stdout), the app registration it accepts, its tenants and workspaces,
//! then `ready`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sandbox::{ActionTimings, RunningSandbox, SandboxOptions};

#[derive(Parser, Debug)]
#[command(
    name = "sandbox",
    about = "A simulated Microsoft Defender / Sentinel tenant on loopback (HTTPS)"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the PEM of the CA that signed the server certificate.
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Server page size of list endpoints.
    #[arg(long, default_value_t = 25)]
    page_size: usize,
    /// Seconds a machine action stays Pending.
    #[arg(long, default_value_t = 2)]
    pending_secs: u64,
    /// Seconds a machine action stays InProgress.
    #[arg(long, default_value_t = 3)]
    in_progress_secs: u64,
    /// Machine and machine-action calls allowed per tenant per rolling minute (Microsoft documents 100).
    #[arg(long, default_value_t = 100)]
    rate_limit_per_minute: u32,
    /// The same per rolling hour (Microsoft documents 1,500).
    #[arg(long, default_value_t = 1500)]
    rate_limit_per_hour: u32,
    /// Active workstations added to each tenant besides the 50 seeded devices (for bulk actions).
    #[arg(long, default_value_t = 0)]
    extra_workstations: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let options = SandboxOptions {
        port: args.port,
        seed: args.seed,
        page_size: args.page_size.max(1),
        action_timings: ActionTimings {
            pending: std::time::Duration::from_secs(args.pending_secs),
            in_progress: std::time::Duration::from_secs(args.in_progress_secs),
        },
        rate_limit_per_minute: args.rate_limit_per_minute,
        rate_limit_per_hour: args.rate_limit_per_hour,
        extra_workstations: args.extra_workstations,
        ..SandboxOptions::default()
    };
    let sandbox = match RunningSandbox::start(options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.ca_out
        && let Err(e) = std::fs::write(path, sandbox.ca_certificate_pem())
    {
        eprintln!("sandbox: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("{}", sandbox.base_url());
    println!("client_id={}", sandbox.client_id());
    println!("client_secret={}", sandbox.client_secret());
    for t in sandbox.tenants() {
        println!("tenant {} {}", t.tenant_id, t.display_name);
        for w in &t.workspaces {
            println!(
                "  workspace subscription={} resource_group={} name={} customer_id={}",
                w.subscription_id, w.resource_group, w.name, w.customer_id
            );
        }
    }
    // The end of the listing, so a reader knows when it has every tenant.
    println!("ready");
    let _ = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
