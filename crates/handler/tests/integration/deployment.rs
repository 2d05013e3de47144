//! What gets deployed matches what the handler needs:
//! - every app setting the handler reads is set by the Bicep (or is named here as the platform's
//!   or local-only), listed in local.settings.json.template and in the README settings table, and
//!   the Bicep sets nothing the handler or the host does not read;
//! - `scripts/package` builds a zip with the handler executable at its root (mode 0755), host.json
//!   and the function folders, and nothing else; and the PowerShell app zip without local files.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use handler::config::settings;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The identity-based form of AzureWebJobsStorage the Bicep uses (the handler and the Functions
/// host both read it; `crates/handler/src/storage/connection.rs`).
const STORAGE_IDENTITY_SETTINGS: [&str; 4] = [
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
];

/// Set by the Functions host or the platform, never by an operator.
const PLATFORM_SETTINGS: [&str; 3] = [
    settings::CUSTOM_HANDLER_PORT,
    settings::WEBSITE_HOSTNAME,
    settings::WEBSITE_AUTH_ENABLED,
];

/// Read by the handler but deliberately not deployed: an extra CA is for local runs behind a
/// TLS-inspecting proxy or on the sandbox, and in Azure storage is reached with the identity form
/// rather than a connection string.
const NOT_DEPLOYED: [&str; 3] = [
    settings::OUTBOUND_TRUSTED_CA_FILE,
    settings::STORAGE,
    settings::OUTBOUND_RATE_WINDOW_DIVISOR,
];

/// Deployed settings the handler does not read: the Functions host reads them.
const HOST_SETTINGS: [&str; 2] = ["HUNT_SCHEDULE", "WEBSITE_AUTH_PRM_DEFAULT_WITH_SCOPES"];

fn node() -> PathBuf {
    let bundled = repo_root().join("test-tools/node_modules/.bin/node");
    if bundled.exists() {
        bundled
    } else {
        PathBuf::from("node")
    }
}

/// The handler app's settings in infra/main.bicep, read by the Bicep parser (infra/test/bicep.mjs).
fn bicep_handler_settings() -> BTreeMap<String, bool> {
    let root = repo_root();
    let output = Command::new(node())
        .arg(root.join("infra/test/bicep.mjs"))
        .args(["app-settings", "infra/main.bicep", "handlerAppSettings"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|error| {
            panic!("node could not run ({error}); ./scripts/test installs it into test-tools/")
        });
    assert!(
        output.status.success(),
        "bicep.mjs app-settings failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let settings: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("JSON from bicep.mjs");
    settings
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_string(),
                s["conditional"].as_bool().expect("conditional"),
            )
        })
        .collect()
}

#[test]
fn every_setting_the_handler_reads_is_deployed_and_documented() {
    let root = repo_root();
    let template: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("local.settings.json.template")).expect("template"),
    )
    .expect("template JSON");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let bicep = bicep_handler_settings();

    let read: Vec<&str> = settings::ALL
        .iter()
        .copied()
        .chain(STORAGE_IDENTITY_SETTINGS)
        .collect();
    let mut problems = Vec::new();
    for name in &read {
        if !PLATFORM_SETTINGS.contains(name)
            && !NOT_DEPLOYED.contains(name)
            && bicep.get(*name) != Some(&false)
        {
            problems.push(format!(
                "{name} is not set (unconditionally) by handlerAppSettings in infra/main.bicep"
            ));
        }
        if !PLATFORM_SETTINGS.contains(name) {
            for section in ["Values", "_help"] {
                if template[section].get(*name).is_none() {
                    problems.push(format!(
                        "{name} is missing from \"{section}\" in local.settings.json.template"
                    ));
                }
            }
        }
        if !readme.contains(&format!("| `{name}` |")) {
            problems.push(format!("{name} has no row in the README settings table"));
        }
    }
    for name in bicep.keys() {
        if !read.contains(&name.as_str()) && !HOST_SETTINGS.contains(&name.as_str()) {
            problems.push(format!(
                "infra/main.bicep sets {name}, which neither the handler nor the host reads"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn package(args: &[&str]) -> std::process::Output {
    Command::new(repo_root().join("scripts/package"))
        .args(args)
        .output()
        .expect("scripts/package runs")
}

fn entries(zip_path: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(zip_path).expect("zip exists")).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).expect("entry");
            let mode = entry.unix_mode().expect("unix mode recorded");
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("entry readable");
            (entry.name().to_string(), (mode, bytes))
        })
        .collect()
}

#[test]
fn packages_hold_an_executable_handler_and_nothing_local() {
    let root = repo_root();
    let work = std::env::temp_dir().join(format!("package-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");

    // Any executable stands in for the binary (the layout is what is checked, not the build);
    // mode 0700 shows the zip sets 0755 whatever the file had.
    let binary = work.join("handler-under-test");
    std::fs::write(&binary, b"#!/bin/sh\necho handler\n").expect("binary");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o700)).expect("chmod");

    // A PowerShell app folder with things that must stay out of the package.
    let ps = work.join("powershell-app");
    std::fs::create_dir_all(ps.join("function-jobs")).expect("ps dir");
    std::fs::create_dir_all(ps.join("tests")).expect("ps tests");
    for (file, text) in [
        ("host.json", "{\"version\": \"2.0\"}"),
        ("profile.ps1", "# profile"),
        ("requirements.psd1", "@{}"),
        ("function-jobs/function.json", "{}"),
        ("function-jobs/run.ps1", "param($job)"),
        (
            "local.settings.json",
            "{\"Values\": {\"AZURE_CLIENT_SECRET\": \"do-not-ship\"}}",
        ),
        ("tests/run.Tests.ps1", "Describe 'x' {}"),
        (".funcignore", "tests\n"),
    ] {
        std::fs::write(ps.join(file), text).expect("ps file");
    }

    let out = work.join("dist");
    let result = package(&[
        "--binary",
        binary.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--powershell-dir",
        ps.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "scripts/package failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );

    let handler_zip = entries(&out.join("handler-app.zip"));
    let mut expected: BTreeSet<String> = ["host.json", "handler"].map(String::from).into();
    for entry in std::fs::read_dir(&root).expect("repo") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("function-") {
            expected.insert(format!("{name}/"));
            expected.insert(format!("{name}/function.json"));
        }
    }
    assert!(
        expected.len() >= 8,
        "host.json, handler and at least three function folders: {expected:?}"
    );
    assert_eq!(
        handler_zip.keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    let (mode, bytes) = &handler_zip["handler"];
    assert_eq!(
        mode & 0o170777,
        0o100755,
        "handler must be a regular file with mode 0755"
    );
    assert_eq!(bytes, &std::fs::read(&binary).unwrap());
    assert_eq!(
        handler_zip["host.json"].1,
        std::fs::read(root.join("host.json")).unwrap()
    );
    for (name, (mode, _)) in &handler_zip {
        let wanted = if name.ends_with('/') {
            0o040755
        } else if name == "handler" {
            0o100755
        } else {
            0o100644
        };
        assert_eq!(mode & 0o170777, wanted, "{name} has mode {mode:o}");
    }

    let ps_zip = entries(&out.join("powershell-app.zip"));
    let names: BTreeSet<&str> = ps_zip.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "function-jobs/",
            "function-jobs/function.json",
            "function-jobs/run.ps1",
            "host.json",
            "profile.ps1",
            "requirements.psd1"
        ]
        .into()
    );
    assert!(
        ps_zip
            .values()
            .all(|(_, bytes)| !String::from_utf8_lossy(bytes).contains("do-not-ship"))
    );

    // Refusals say what is wrong.
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let not_executable = package(&[
        "--binary",
        binary.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!not_executable.status.success());
    assert!(String::from_utf8_lossy(&not_executable.stderr).contains("is not an executable file"));
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let no_ps = package(&[
        "--binary",
        binary.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--powershell-dir",
        work.join("missing").to_str().unwrap(),
    ]);
    assert!(!no_ps.status.success());
    assert!(
        String::from_utf8_lossy(&no_ps.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&no_ps.stderr)
    );

    let _ = std::fs::remove_dir_all(&work);
}

/// A `function-operations` invocation stops its slice before the host's `functionTimeout` would
/// stop it mid-batch, with a minute to spare for the last batch's writes.
#[test]
fn an_operation_slice_ends_before_the_function_timeout() {
    let host: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo_root().join("host.json")).expect("host.json"))
            .expect("host.json is JSON");
    let timeout = host["functionTimeout"]
        .as_str()
        .expect("functionTimeout is set");
    let seconds: Vec<u64> = timeout
        .split(':')
        .map(|part| part.parse().expect("hh:mm:ss"))
        .collect();
    let [hours, minutes, secs] = seconds[..] else {
        panic!("functionTimeout {timeout} is not hh:mm:ss");
    };
    let timeout = std::time::Duration::from_secs(hours * 3600 + minutes * 60 + secs);
    assert!(
        handler::config::OPERATION_SLICE + std::time::Duration::from_secs(60) <= timeout,
        "OPERATION_SLICE {:?} leaves less than a minute under functionTimeout {timeout:?}",
        handler::config::OPERATION_SLICE
    );
}
