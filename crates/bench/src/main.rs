//! `scripts/bench`: starts the release `sandbox` and `handler` as separate processes (as in
//! production, where Microsoft's APIs are another host) and prints what a pay-per-execution user
//! pays for: time to the first answered `initialize`, memory, throughput and latency at 1, 8 and
//! 32 concurrent clients, the handler's own overhead over the sandbox's latency, binary size, and
//! how many tokens were fetched; and what a model pays to read: the tool definitions of each
//! connection (the default, everything, each toolset) and the answers of typical calls.
//!
//! Figures are printed and written to `docs/benchmarks.md`; nothing here asserts a target, so the
//! numbers are read, not hidden behind a pass or fail.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

const CONCURRENCY: [usize; 3] = [1, 8, 32];
const REQUESTS_PER_CLIENT: usize = 150;
const WARMUP_REQUESTS: usize = 50;
const STARTS: usize = 5;

type BenchResult<T> = Result<T, String>;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct SandboxInfo {
    base_url: String,
    client_id: String,
    client_secret: String,
    tenant_id: String,
    /// The first tenant's first Sentinel workspace (Sentinel tools need one when there are several).
    workspace: String,
    tenants_json: String,
}

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("bench: {error}");
        std::process::exit(1);
    }
}

async fn run() -> BenchResult<()> {
    let root = workspace_root()?;
    // The binaries built with this one (a profiling build in another target dir measures its own).
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the bench executable: {e}"))?;
    let release = exe
        .parent()
        .ok_or("the bench executable has no folder")?
        .to_path_buf();
    let handler_bin = match handler_argument()? {
        Some(path) => path,
        None => release.join("handler"),
    };
    let sandbox_bin = release.join("sandbox");
    for binary in [&handler_bin, &sandbox_bin] {
        if !binary.exists() {
            return Err(format!(
                "{} is missing: run scripts/bench, which builds the release binaries",
                binary.display()
            ));
        }
    }
    let storage = std::env::var("STORAGE_CONNECTION_STRING").map_err(|_| {
        "STORAGE_CONNECTION_STRING is not set: run scripts/bench, which starts Azurite".to_string()
    })?;
    let scratch = std::env::temp_dir().join(format!("handler-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let ca_file = scratch.join("sandbox-ca.pem");

    let (sandbox, info) = start_sandbox(&sandbox_bin, &ca_file)?;
    let port = free_port()?;
    let mcp_url = format!("http://127.0.0.1:{port}/api/mcp");
    let all_url = format!("{mcp_url}/x/all");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;

    // The benchmark's own token (to time the sandbox alone) is fetched before the handler starts,
    // so the counts read at the end are the handler's alone.
    let direct_client = reqwest::Client::builder()
        .tls_certs_merge(
            reqwest::Certificate::from_pem_bundle(
                &std::fs::read(&ca_file).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?,
        )
        .build()
        .map_err(|e| e.to_string())?;
    let token = sandbox_token(&direct_client, &info).await?;
    let tokens_before = tokens_issued(&direct_client, &info.base_url).await?;

    // Start-up varies with what else the machine does: the median of several starts is the
    // figure, the slowest is shown beside it. The last start is the one measured under load.
    let launch = HandlerLaunch {
        binary: &handler_bin,
        port,
        info: &info,
        ca_file: &ca_file,
        storage: &storage,
    };
    let mut starts = Vec::new();
    let mut handler = None;
    for _ in 0..STARTS {
        // Each start has the port and the machine to itself.
        drop(handler.take());
        let spawned = Instant::now();
        handler = Some(Killed(launch.spawn()?));
        starts.push(wait_for_initialize(&client, &mcp_url, spawned).await?);
    }
    let pid = handler
        .as_ref()
        .map(|running| running.0.id())
        .ok_or("no handler was started")?;
    starts.sort();
    let first_initialize = (starts[starts.len() / 2], starts[starts.len() - 1]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss_kb = rss_kb(pid)?;

    let list_body = Arc::new(jsonrpc("tools/list", json!({})).to_string());
    let call_body = Arc::new(
        jsonrpc("tools/call", json!({"name": "mde_list_machines", "arguments": {"tenant_id": info.tenant_id, "limit": 25}}))
            .to_string(),
    );
    let sandbox_url = Arc::new(format!("{}/defender/api/machines", info.base_url));

    let reading = measure_reading(&client, &mcp_url, &info.tenant_id, &info.workspace).await?;

    let mut rows = Vec::new();
    let mut peak_rss_kb = idle_rss_kb;
    for (label, url, body) in [
        ("tools/list (default set)", &mcp_url, list_body.clone()),
        ("tools/list (all tools)", &all_url, list_body.clone()),
        ("tools/call mde_list_machines", &mcp_url, call_body.clone()),
    ] {
        warm_up(&client, url, &body).await?;
        for clients in CONCURRENCY {
            let mcp = Arc::new(url.clone());
            let body = body.clone();
            let sampler = RssSampler::start(pid);
            let cpu_before = cpu_ticks(pid)?;
            let measured = load(clients, {
                let client = client.clone();
                move || {
                    let (client, mcp, body) = (client.clone(), mcp.clone(), body.clone());
                    async move { post_mcp(&client, &mcp, &body).await }
                }
            })
            .await?;
            let cpu_per_request =
                ticks_to_duration(cpu_ticks(pid)? - cpu_before) / measured.latencies.len() as u32;
            peak_rss_kb = peak_rss_kb.max(sampler.stop().await);
            let direct = if label.starts_with("tools/call") {
                let (client, url, token) =
                    (direct_client.clone(), sandbox_url.clone(), token.clone());
                Some(
                    load(clients, move || {
                        let (client, url, token) = (client.clone(), url.clone(), token.clone());
                        async move { sandbox_get(&client, &url, &token).await }
                    })
                    .await?,
                )
            } else {
                None
            };
            rows.push(Row {
                label,
                clients,
                measured,
                direct,
                cpu_per_request,
            });
        }
    }

    let binary_bytes = std::fs::metadata(&handler_bin)
        .map_err(|e| e.to_string())?
        .len();
    let tokens = handler_tokens(
        &tokens_before,
        tokens_issued(&direct_client, &info.base_url).await?,
    );
    drop(sandbox);
    let _ = std::fs::remove_dir_all(&scratch);

    let shown = handler_bin
        .strip_prefix(&root)
        .unwrap_or(&handler_bin)
        .display()
        .to_string();
    let mut report = render(
        &shown,
        first_initialize,
        idle_rss_kb,
        peak_rss_kb,
        binary_bytes,
        &tokens,
        &rows,
    );
    report.push_str(&render_reading(&reading));
    println!("{report}");
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| e.to_string())?;
    std::fs::write(docs.join("benchmarks.md"), report)
        .map_err(|e| format!("cannot write docs/benchmarks.md: {e}"))?;
    Ok(())
}

/// What one connection hands a model before the first question.
struct ConnectionSize {
    path: String,
    tools: usize,
    /// Names, descriptions and input schemas: what clients give the model.
    model_bytes: usize,
    /// The whole `tools/list` result (output schemas, annotations and titles too).
    list_bytes: usize,
}

/// The answer of one typical call, whole (summary, text and structured content).
struct AnswerSize {
    call: String,
    bytes: usize,
}

struct Reading {
    connections: Vec<ConnectionSize>,
    answers: Vec<AnswerSize>,
}

/// A token is about four bytes of English or JSON; the figures are estimates for comparing.
fn tokens(bytes: usize) -> usize {
    bytes.div_ceil(4)
}

async fn rpc(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> BenchResult<Value> {
    let answer: Value = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(jsonrpc(method, params).to_string())
        .send()
        .await
        .map_err(|e| format!("{method} at {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{method} at {url}: {e}"))?;
    let result = answer
        .get("result")
        .cloned()
        .ok_or_else(|| format!("{method} at {url} failed: {answer}"))?;
    if result["isError"] == true {
        return Err(format!("{method} at {url} answered a tool error: {result}"));
    }
    Ok(result)
}

async fn connection_size(
    client: &reqwest::Client,
    url: &str,
    path: String,
) -> BenchResult<ConnectionSize> {
    let result = rpc(client, url, "tools/list", json!({})).await?;
    let tools = result["tools"]
        .as_array()
        .ok_or("tools/list has no tools")?;
    let model_bytes = tools
        .iter()
        .map(|tool| {
            let text = |key: &str| tool[key].as_str().map_or(0, str::len);
            text("name") + text("description") + tool["inputSchema"].to_string().len()
        })
        .sum();
    Ok(ConnectionSize {
        path,
        tools: tools.len(),
        model_bytes,
        list_bytes: result.to_string().len(),
    })
}

/// Sizes of every connection the default one's `toolsets_list` names, and of typical answers
/// with default arguments in the sandbox's first tenant.
async fn measure_reading(
    client: &reqwest::Client,
    mcp_url: &str,
    tenant: &str,
    workspace: &str,
) -> BenchResult<Reading> {
    let mut connections = vec![
        connection_size(client, mcp_url, "/api/mcp (default: triage)".into()).await?,
        connection_size(client, &format!("{mcp_url}/x/all"), "/api/mcp/x/all".into()).await?,
        connection_size(
            client,
            &format!("{mcp_url}/readonly"),
            "/api/mcp/readonly".into(),
        )
        .await?,
    ];
    let listed = rpc(
        client,
        mcp_url,
        "tools/call",
        json!({"name": "toolsets_list", "arguments": {}}),
    )
    .await?;
    for toolset in listed["structuredContent"]["toolsets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let path = toolset["url"].as_str().ok_or("a toolset without a url")?;
        let url = format!("{}{path}", mcp_url.trim_end_matches("/api/mcp"));
        connections.push(connection_size(client, &url, path.to_string()).await?);
    }
    let all_url = format!("{mcp_url}/x/all");
    let calls = [
        ("tools_list".to_string(), json!({})),
        ("toolsets_list".into(), json!({})),
        ("mde_list_machines".into(), json!({"tenant_id": tenant})),
        ("mde_list_alerts".into(), json!({"tenant_id": tenant})),
        ("mde_list_incidents".into(), json!({"tenant_id": tenant})),
        ("mde_list_indicators".into(), json!({"tenant_id": tenant})),
        (
            "mde_list_machine_actions".into(),
            json!({"tenant_id": tenant}),
        ),
        (
            "sentinel_list_incidents".into(),
            json!({"tenant_id": tenant, "workspace": workspace}),
        ),
        (
            "sentinel_list_analytics_rules".into(),
            json!({"tenant_id": tenant, "workspace": workspace}),
        ),
        (
            "mde_run_hunting_query".into(),
            json!({"tenant_id": tenant, "query": "DeviceProcessEvents | take 20"}),
        ),
        (
            "sentinel_run_query".into(),
            json!({"tenant_id": tenant, "workspace": workspace, "query": "SecurityEvent | take 20"}),
        ),
        ("job_list".into(), json!({})),
        ("audit_search".into(), json!({})),
    ];
    let mut answers = Vec::new();
    for (name, arguments) in calls {
        let result = if name == "tools_list" {
            rpc(client, mcp_url, "tools/list", json!({})).await?
        } else {
            rpc(
                client,
                &all_url,
                "tools/call",
                json!({"name": name, "arguments": arguments.clone()}),
            )
            .await?
        };
        let shown = if name == "tools_list" {
            "tools/list on /api/mcp".to_string()
        } else {
            format!("{name} {arguments}").replace(tenant, "<tenant>")
        };
        answers.push(AnswerSize {
            call: shown,
            bytes: result.to_string().len(),
        });
    }
    Ok(Reading {
        connections,
        answers,
    })
}

fn render_reading(reading: &Reading) -> String {
    let mut out = String::from(
        "\n## What a model reads\n\nBytes of compact JSON; tokens estimated at 4 bytes each. \"Model\" is what clients \
         hand the model for each tool (name, description, input schema); \"tools/list\" is the whole answer. Budgets \
         (kept by `crates/handler/tests/integration/catalogue_budget.rs`): default set 32 KB, all tools 80 KB, whole list 150 KB.\n\n\
         | connection | tools | model bytes | model tokens | tools/list bytes |\n|---|---|---|---|---|\n",
    );
    for connection in &reading.connections {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            connection.path,
            connection.tools,
            connection.model_bytes,
            tokens(connection.model_bytes),
            connection.list_bytes,
        ));
    }
    out.push_str(
        "\nTypical answers with default arguments (the whole `result`: summary, JSON text and structured \
         content):\n\n| call | bytes | tokens |\n|---|---|---|\n",
    );
    for answer in &reading.answers {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            answer.call.replace('|', "\\|"),
            answer.bytes,
            tokens(answer.bytes)
        ));
    }
    out
}

/// `--handler PATH` measures that binary (scripts/bench passes the static musl build that is shipped).
fn handler_argument() -> BenchResult<Option<PathBuf>> {
    let mut arguments = std::env::args().skip(1);
    match (
        arguments.next().as_deref(),
        arguments.next(),
        arguments.next(),
    ) {
        (None, _, _) => Ok(None),
        (Some("--handler"), Some(path), None) => Ok(Some(PathBuf::from(path))),
        _ => Err("usage: bench [--handler PATH]".into()),
    }
}

/// How the benchmark starts the handler: pointed at the sandbox tenant and Azurite, as a
/// deployed app is pointed at Microsoft's cloud and its storage account.
struct HandlerLaunch<'a> {
    binary: &'a Path,
    port: u16,
    info: &'a SandboxInfo,
    ca_file: &'a Path,
    storage: &'a str,
}

impl HandlerLaunch<'_> {
    fn spawn(&self) -> BenchResult<Child> {
        let (port, info, ca_file, storage) = (self.port, self.info, self.ca_file, self.storage);
        Command::new(self.binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("AUTH_MODE", "client_secret")
            .env("AZURE_CLIENT_ID", &info.client_id)
            .env("AZURE_CLIENT_SECRET", &info.client_secret)
            .env("AZURE_AUTHORITY_HOST", &info.base_url)
            .env("DEFENDER_API_BASE_URL", format!("{}/defender", info.base_url))
            .env("GRAPH_BASE_URL", format!("{}/graph", info.base_url))
            .env("ARM_BASE_URL", format!("{}/arm", info.base_url))
            .env("LOG_ANALYTICS_BASE_URL", format!("{}/loganalytics", info.base_url))
            .env("OUTBOUND_TRUSTED_CA_FILE", ca_file)
            .env("TENANTS", &info.tenants_json)
            .env("AzureWebJobsStorage", storage)
            // The benchmark is the only caller: no inbound identity, and no per-caller limit, which
            // would otherwise refuse the load after 120 calls a minute.
            .env("AUTH_INBOUND_MODE", "none")
            // An Admin sees every tool, so the sizes below cover the whole catalogue.
            .env("AUTH_LOCAL_ROLE", "admin")
            .env("MCP_RATE_LIMIT_PER_MINUTE", "0")
            // Microsoft's quota (100 machine calls a minute) would pace the load, not measure it.
            .env("DEFENDER_MACHINE_CALLS_PER_MINUTE", "100000000")
            .env("DEFENDER_MACHINE_CALLS_PER_HOUR", "100000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the handler: {e}"))
    }
}

fn workspace_root() -> BenchResult<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .ok_or_else(|| "cannot find the workspace root".into())
}

fn free_port() -> BenchResult<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Runs the sandbox binary with rate limits lifted (the benchmark measures the handler, not
/// Defender's quota) and reads what it prints: base URL, app registration, tenants, workspaces.
fn start_sandbox(binary: &Path, ca_file: &Path) -> BenchResult<(Killed, SandboxInfo)> {
    let mut child = Command::new(binary)
        .args(["--port", "0", "--ca-out"])
        .arg(ca_file)
        .args([
            "--rate-limit-per-minute",
            "100000000",
            "--rate-limit-per-hour",
            "100000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let stdout = child.stdout.take().ok_or("the sandbox has no stdout")?;
    let child = Killed(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut next = || {
        lines
            .next()
            .and_then(Result::ok)
            .ok_or("the sandbox stopped before printing its settings")
    };
    let base_url = next()?.trim().to_string();
    let client_id = next()?.trim_start_matches("client_id=").to_string();
    let client_secret = next()?.trim_start_matches("client_secret=").to_string();
    let mut tenants: Vec<Value> = Vec::new();
    // The sandbox prints every tenant and its workspaces, then `ready`.
    loop {
        let line = next()?;
        if line == "ready" {
            break;
        }
        if let Some(rest) = line.strip_prefix("tenant ") {
            let (id, name) = rest.split_once(' ').unwrap_or((rest, rest));
            tenants.push(json!({"tenant_id": id, "display_name": name, "workspaces": []}));
        } else if let Some(rest) = line.trim().strip_prefix("workspace ") {
            let fields: HashMap<&str, &str> = rest
                .split(' ')
                .filter_map(|pair| pair.split_once('='))
                .collect();
            if let Some(Value::Array(workspaces)) =
                tenants.last_mut().and_then(|t| t.get_mut("workspaces"))
            {
                workspaces.push(json!({
                    "subscription_id": fields.get("subscription"),
                    "resource_group": fields.get("resource_group"),
                    "workspace_name": fields.get("name"),
                    "workspace_id": fields.get("customer_id"),
                }));
            }
        }
    }
    let tenant_id = tenants
        .first()
        .and_then(|t| t["tenant_id"].as_str())
        .ok_or("the sandbox printed no tenant")?
        .to_string();
    let workspace = tenants[0]["workspaces"][0]["workspace_name"]
        .as_str()
        .ok_or("the sandbox printed no workspace")?
        .to_string();
    let tenants_json = serde_json::to_string(&tenants).map_err(|e| e.to_string())?;
    Ok((
        child,
        SandboxInfo {
            base_url,
            client_id,
            client_secret,
            tenant_id,
            workspace,
            tenants_json,
        },
    ))
}

fn jsonrpc(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}

async fn post_mcp(client: &reqwest::Client, url: &str, body: &Arc<String>) -> BenchResult<()> {
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(body.as_str().to_owned())
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    let failed = serde_json::from_slice::<Answer>(&body).map_or(true, |answer| answer.failed());
    if !status.is_success() || failed {
        let start = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(format!("the handler answered {status}: {start}"));
    }
    Ok(())
}

/// Just enough of a JSON-RPC answer to tell success from failure. The rest is skipped unread: a
/// `Value` tree of a whole tools/list would cost the load generator, on the cores the handler
/// shares, more CPU than the handler spends producing it.
#[derive(Deserialize)]
struct Answer {
    result: Option<AnswerResult>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct AnswerResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

impl Answer {
    fn failed(&self) -> bool {
        self.error.is_some() || self.result.as_ref().is_none_or(|result| result.is_error)
    }
}

async fn wait_for_initialize(
    client: &reqwest::Client,
    url: &str,
    spawned: Instant,
) -> BenchResult<Duration> {
    let body = Arc::new(
        jsonrpc(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        )
        .to_string(),
    );
    while spawned.elapsed() < Duration::from_secs(10) {
        if post_mcp(client, url, &body).await.is_ok() {
            return Ok(spawned.elapsed());
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    Err("the handler did not answer initialize within 10 s".into())
}

async fn warm_up(client: &reqwest::Client, url: &str, body: &Arc<String>) -> BenchResult<()> {
    for _ in 0..WARMUP_REQUESTS {
        post_mcp(client, url, body).await?;
    }
    Ok(())
}

/// A Defender token straight from the sandbox, to time the API without the handler in between.
async fn sandbox_token(client: &reqwest::Client, info: &SandboxInfo) -> BenchResult<Arc<String>> {
    let url = format!("{}/{}/oauth2/v2.0/token", info.base_url, info.tenant_id);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", info.client_id.as_str()),
        ("client_secret", info.client_secret.as_str()),
        ("scope", "https://api.securitycenter.microsoft.com/.default"),
    ];
    let response: Value = client
        .post(url)
        .form(&form)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = response["access_token"]
        .as_str()
        .ok_or_else(|| format!("no token from the sandbox: {response}"))?;
    Ok(Arc::new(token.to_string()))
}

async fn sandbox_get(client: &reqwest::Client, url: &str, token: &str) -> BenchResult<()> {
    let response = client
        .get(url)
        .query(&[("$top", "25")])
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let _ = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("the sandbox answered {status}"));
    }
    Ok(())
}

async fn tokens_issued(
    client: &reqwest::Client,
    base: &str,
) -> BenchResult<Vec<(String, String, u64)>> {
    let stats: Value = client
        .get(format!("{base}/_sandbox/stats"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(stats["tokens_issued"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["tenant_id"].as_str().unwrap_or_default().to_string(),
                t["audience"].as_str().unwrap_or_default().to_string(),
                t["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect())
}

/// What the handler fetched: the counts at the end minus those before it started.
fn handler_tokens(
    before: &[(String, String, u64)],
    after: Vec<(String, String, u64)>,
) -> Vec<(String, String, u64)> {
    after
        .into_iter()
        .map(|(tenant, audience, count)| {
            let earlier = before
                .iter()
                .find(|(t, a, _)| *t == tenant && *a == audience)
                .map_or(0, |(_, _, c)| *c);
            (tenant, audience, count - earlier)
        })
        .filter(|(_, _, count)| *count > 0)
        .collect()
}

/// User plus system CPU time of every thread of the process, in clock ticks (`/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> BenchResult<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read the handler's CPU time: {e}"))?;
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("unreadable /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or("unreadable /proc stat")
    };
    Ok(field(14)? + field(15)?)
}

/// Linux reports CPU time in USER_HZ ticks, 100 a second on every mainstream kernel.
fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 10)
}

struct Measured {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Measured {
    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` tasks, each sending `REQUESTS_PER_CLIENT` requests one after another.
async fn load<F, Fut>(clients: usize, request: F) -> BenchResult<Measured>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = BenchResult<()>> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(REQUESTS_PER_CLIENT);
            for _ in 0..REQUESTS_PER_CLIENT {
                let sent = Instant::now();
                request().await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Measured { latencies, elapsed })
}

fn rss_kb(pid: u32) -> BenchResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read the handler's memory: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no VmRSS in /proc status".into())
}

/// Samples RSS every 20 ms while a load runs, to report the peak under load.
struct RssSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            loop {
                peak = peak.max(rss_kb(pid).unwrap_or(0));
                tokio::select! {
                    _ = &mut stopped => return peak,
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0)
    }
}

struct Row {
    label: &'static str,
    clients: usize,
    measured: Measured,
    direct: Option<Measured>,
    cpu_per_request: Duration,
}

/// Memory is measured in MiB; the targets are in MB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A target of `megabytes` MB, with the same bound in MiB beside it for comparing the figures.
fn below_megabytes(megabytes: u64) -> String {
    format!("< {megabytes} MB ({:.2} MiB)", mib(megabytes * 1_000_000))
}

fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

fn render(
    handler_binary: &str,
    first_initialize: (Duration, Duration),
    idle_rss_kb: u64,
    peak_rss_kb: u64,
    binary_bytes: u64,
    tokens: &[(String, String, u64)],
    rows: &[Row],
) -> String {
    let date = time::OffsetDateTime::now_utc().date();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut out = format!(
        "# Benchmark\n\nMeasured by `scripts/bench` on {date}, {cores} cores. The handler (`{handler_binary}`) and the sandbox \
         tenant run as separate release processes on loopback; each client sends {REQUESTS_PER_CLIENT} requests in a row after \
         {WARMUP_REQUESTS} warm-up requests.\n\n\
         | measure | value | target |\n|---|---|---|\n\
         | process start to first answered `initialize` (median / slowest of {STARTS} starts) | {} / {} ms | < 30 ms |\n\
         | RSS idle | {:.1} MiB | {} |\n\
         | RSS peak under load | {:.1} MiB | |\n\
         | release binary size | {:.1} MiB | {} |\n",
        ms(first_initialize.0),
        ms(first_initialize.1),
        mib(idle_rss_kb * 1024),
        below_megabytes(20),
        mib(peak_rss_kb * 1024),
        mib(binary_bytes),
        below_megabytes(25),
    );
    let fetched: Vec<String> = tokens
        .iter()
        .map(|(tenant, audience, count)| format!("{count} for {tenant} / {audience}"))
        .collect();
    out.push_str(&format!(
        "| tokens fetched during the whole run | {} | once per tenant and API |\n\n",
        fetched.join("; ")
    ));
    out.push_str(
        "| request | clients | throughput (req/s) | p50 (ms) | p99 (ms) | handler CPU per request (ms) | sandbox alone p50 / p99 (ms) | handler overhead p50 / p99 (ms) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let (direct, overhead) = match &row.direct {
            Some(direct) => (
                format!(
                    "{} / {}",
                    ms(direct.percentile(0.5)),
                    ms(direct.percentile(0.99))
                ),
                format!(
                    "{} / {}",
                    ms(row
                        .measured
                        .percentile(0.5)
                        .saturating_sub(direct.percentile(0.5))),
                    ms(row
                        .measured
                        .percentile(0.99)
                        .saturating_sub(direct.percentile(0.99)))
                ),
            ),
            None => ("—".into(), "—".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} | {:.3} | {direct} | {overhead} |\n",
            row.label,
            row.clients,
            row.measured.throughput(),
            ms(row.measured.percentile(0.5)),
            ms(row.measured.percentile(0.99)),
            row.cpu_per_request.as_secs_f64() * 1000.0,
        ));
    }
    out.push_str(
        "\nOverhead is the handler's latency minus the sandbox's own latency for the same page of devices at the same \
         concurrency (percentile minus percentile, so an estimate). Both processes share the machine's cores with the \
         load generator.\n",
    );
    out
}
