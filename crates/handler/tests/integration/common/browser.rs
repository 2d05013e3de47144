//! The approval page in a real browser: Debian's headless Chromium driven by playwright-core (test-tools/browser/approval-page.mjs).
//!
//! `./scripts/test` installs both (`ensure_chromium`, `ensure_node_tools`) and exports
//! `CHROMIUM_PATH`. A test that opens the page fails loudly when either is missing; it never skips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

/// The repository root, where `test-tools/` lives.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const SCRIPT: &str = "test-tools/browser/approval-page.mjs";
/// Starting Chromium, loading the page and one click take a few seconds; this only stops a hang.
const TIMEOUT: Duration = Duration::from_secs(120);

/// What a person sees on the page (read by the script in the browser).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageView {
    /// The HTTP status of the page's navigation (0 when it could not be opened; `error` says why).
    pub status: u16,
    /// `document.title`.
    pub title: String,
    pub h1: String,
    /// The text of the first `[role=status]` or `[role=alert]`.
    pub status_text: String,
    /// The row headers of the targets table, in order.
    pub targets: Vec<String>,
    /// The `<dl>`: term -> definition, whitespace collapsed.
    pub definitions: BTreeMap<String, String>,
    /// The visible buttons' texts, in order.
    pub buttons: Vec<String>,
    /// `<html lang>`.
    pub lang: String,
    /// Visible buttons without an accessible name.
    pub unlabelled_buttons: usize,
    /// The page the decision answered with, when the test clicked Approve or Deny.
    pub after: Option<AfterClick>,
    /// Why the page could not be opened, or why the button to click was not there.
    pub error: Option<String>,
}

/// The page the browser shows after the click.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AfterClick {
    /// The HTTP status of the answer to the form.
    pub status: u16,
    pub status_text: String,
    pub buttons: Vec<String>,
    /// The method the browser sent the form with (POST).
    #[serde(default)]
    pub method: String,
    /// Where the browser sent the form.
    #[serde(default)]
    pub url: String,
}

/// The Node the test command installed (Node 22 in test-tools), or else the one on PATH.
fn node() -> PathBuf {
    let installed = Path::new(ROOT).join("test-tools/node_modules/.bin/node");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("node")
    }
}

/// Opens `url` in headless Chromium with `headers` as extra HTTP headers (e.g.
/// `X-MS-CLIENT-PRINCIPAL`) on every request, reads the page, and with `action` "approve" or
/// "deny" clicks that button and reads the page the decision answers with ("none": no click).
///
/// Panics when the browser cannot run: node, playwright-core or Chromium missing.
pub async fn open_in_browser(url: &str, action: &str, headers: &[(&str, &str)]) -> PageView {
    assert!(
        matches!(action, "approve" | "deny" | "none"),
        "open_in_browser: action must be approve, deny or none, not {action:?}"
    );
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), serde_json::Value::from(*value)))
        .collect();
    let mut request = serde_json::json!({ "url": url, "action": action, "headers": headers });
    if let Ok(path) = std::env::var("CHROMIUM_PATH") {
        request["executablePath"] = serde_json::Value::from(path);
    }
    let node = node();
    let child = tokio::process::Command::new(&node)
        .arg(SCRIPT)
        .arg(request.to_string())
        .current_dir(ROOT)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                panic!(
                    "the browser tests need Node ({} not found): run ./scripts/test, which installs Node 22, \
                     playwright-core and Chromium",
                    node.display()
                )
            }
            panic!("could not start {} {SCRIPT}: {error}", node.display())
        });
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the browser did not finish with {url} within {TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("could not run {SCRIPT}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // The script says what is missing (playwright-core, Chromium) and to run ./scripts/test.
        let hint = if stderr.contains("ERR_MODULE_NOT_FOUND")
            || stderr.contains("Cannot find module")
        {
            "\n(the script or a module it needs is missing: run ./scripts/test, which installs the test tools and Chromium)"
        } else {
            ""
        };
        panic!(
            "the browser could not open the approval page ({} {SCRIPT}, {}):\n{}{hint}",
            node.display(),
            output.status,
            stderr.trim()
        );
    }
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!("{SCRIPT} printed something that is not a page view ({error}):\n{stdout}\n{stderr}")
    })
}
