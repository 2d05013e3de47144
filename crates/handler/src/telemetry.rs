//! Logging. The Functions host records the handler's stdout as information and its stderr as
//! errors, so everything goes to stdout with its level in the line.

use tracing::{Level, Subscriber};
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

const DEFAULT_FILTER: &str = "info,rmcp=warn,azure_core=warn,azure_identity=warn";

/// The subscriber for a `RUST_LOG`-style spec (the default when `None` or invalid). Whatever the
/// spec asks, rmcp never logs below info: at debug it writes every JSON-RPC message whole, and
/// those carry tool arguments such as confirmation tokens.
pub fn subscriber<W>(spec: Option<&str>, writer: W, ansi: bool) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let requested = spec.and_then(|spec| EnvFilter::try_new(spec).ok()).unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let capped = filter_fn(|metadata| !(metadata.target().starts_with("rmcp") && *metadata.level() > Level::INFO));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi).with_target(true).with_filter(requested.and(capped)))
}

pub fn init() {
    let spec = std::env::var("RUST_LOG").ok();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = tracing::subscriber::set_global_default(subscriber(spec.as_deref(), std::io::stdout, ansi));
}
