//! The sibling PowerShell app (`powershell-app/`) cannot run here (no PowerShell), so its
//! scripts are parsed with a real PowerShell grammar (tree-sitter-powershell, from crates.io)
//! and its wiring is checked against the handler's: queue names, message encoding, settings,
//! and the functions its scripts call. Its behaviour is proven through the contract by the
//! stand-in worker in `tests/integration/powershell_jobs.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn app() -> PathBuf {
    root().join("powershell-app")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn parse(source: &str) -> tree_sitter::Tree {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("PowerShell grammar loads");
    parser
        .parse(source, None)
        .expect("the parser returns a tree")
}

/// The first syntax error: where, and the text around it.
fn first_error(tree: &tree_sitter::Tree, source: &str) -> Option<String> {
    let mut cursor = tree.walk();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            let start = node.start_position();
            let line = source.lines().nth(start.row).unwrap_or_default();
            let kind = if node.is_missing() {
                format!("missing {}", node.kind())
            } else {
                "unexpected text".to_string()
            };
            return Some(format!(
                "line {}, column {}: {kind}: {}",
                start.row + 1,
                start.column + 1,
                line.trim()
            ));
        }
        if node.has_error() {
            stack.extend(
                node.children(&mut cursor)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev(),
            );
        }
    }
    None
}

fn scripts() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![app()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)
            .expect("readable folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "ps1" || e == "psm1" || e == "psd1")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_parser_finds_syntax_errors() {
    for broken in [
        "function Broken { if ($x { } }",
        "param($a,\n$b",
        "$x = @{ a = 1",
        "try { 1 } catch [ { }",
    ] {
        assert!(
            parse(broken).root_node().has_error(),
            "the parser must reject: {broken}"
        );
    }
    assert!(
        !parse("param($JobMessage, $TriggerMetadata)\nInvoke-Job -Message $JobMessage")
            .root_node()
            .has_error()
    );
}

#[test]
fn every_powershell_file_of_the_app_parses() {
    let files = scripts();
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| p.strip_prefix(app()).expect("inside").display().to_string())
        .collect();
    for expected in [
        "profile.ps1",
        "requirements.psd1",
        "run-job/run.ps1",
        "publish-manifest/run.ps1",
        "Modules/JobWorker/JobWorker.psm1",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    for file in files {
        let source = read(&file);
        let tree = parse(&source);
        if let Some(error) = first_error(&tree, &source) {
            panic!("{}: {error}", file.display());
        }
    }
}

/// The text of every node of one kind in a PowerShell file.
fn nodes(source: &str, kind: &str) -> BTreeSet<String> {
    let tree = parse(source);
    let mut names = BTreeSet::new();
    let mut stack = vec![tree.root_node()];
    let mut cursor = tree.walk();
    while let Some(node) = stack.pop() {
        if node.kind() == kind {
            names.insert(source[node.byte_range()].to_string());
        }
        stack.extend(node.children(&mut cursor).collect::<Vec<_>>());
    }
    names
}

fn defined_functions(source: &str) -> BTreeSet<String> {
    nodes(source, "function_name")
}

/// Commands PowerShell 7.4 (and Az.Accounts, which profile.ps1 only uses when present) provides.
const BUILT_IN: &[&str] = &[
    "Connect-AzAccount",
    "ConvertFrom-Json",
    "ConvertTo-Json",
    "Disable-AzContextAutosave",
    "Export-ModuleMember",
    "ForEach-Object",
    "Get-Command",
    "Get-Content",
    "Get-Help",
    "Get-Module",
    "Import-Module",
    "Invoke-RestMethod",
    "Invoke-WebRequest",
    "Join-Path",
    "New-Module",
    "Out-Null",
    "Select-Object",
    "Set-StrictMode",
    "Sort-Object",
    "Split-Path",
    "Test-Path",
    "Where-Object",
    "Write-Error",
    "Write-Information",
    "Write-Warning",
];

#[test]
fn the_scripts_call_what_the_worker_module_defines_and_exports() {
    let module = read(&app().join("Modules/JobWorker/JobWorker.psm1"));
    let defined = defined_functions(&module);
    let export_line = module
        .lines()
        .find(|l| l.starts_with("Export-ModuleMember"))
        .expect("exports");
    for (script, calls) in [
        ("profile.ps1", "Initialize-JobWorker"),
        ("run-job/run.ps1", "Invoke-Job"),
        ("publish-manifest/run.ps1", "Publish-JobManifest"),
    ] {
        assert!(
            read(&app().join(script)).contains(calls),
            "{script} calls {calls}"
        );
        assert!(
            defined.contains(calls) && export_line.contains(calls),
            "JobWorker.psm1 defines and exports {calls}"
        );
    }
    // Every command the app calls is one the module defines or PowerShell provides: a typo
    // fails here, not in Azure.
    let called = nodes(&module, "command_name");
    assert!(
        called.contains("Update-JobRecord") && called.contains("Invoke-WebRequest"),
        "commands are found: {called:?}"
    );
    for script in scripts() {
        for command in nodes(&read(&script), "command_name") {
            let known = defined.contains(&command) || BUILT_IN.contains(&command.as_str());
            assert!(
                known,
                "{} calls {command}, which neither JobWorker.psm1 nor PowerShell defines",
                script.display()
            );
        }
    }
}

#[test]
fn queues_encoding_and_settings_match_the_handler() {
    let host = json(&app().join("host.json"));
    assert_eq!(
        host["extensions"]["queues"]["messageEncoding"],
        handler::jobs::Jobs::POWERSHELL_QUEUE_ENCODING.to_string(),
        "the handler sends what the trigger decodes"
    );
    let trigger = json(&app().join("run-job/function.json"));
    assert_eq!(trigger["bindings"][0]["type"], "queueTrigger");
    assert_eq!(trigger["bindings"][0]["queueName"], "%PS_JOBS_QUEUE%");
    assert_eq!(trigger["bindings"][0]["connection"], "JOBS_STORAGE");
    assert_eq!(trigger["bindings"][0]["name"], "JobMessage");
    assert!(read(&app().join("run-job/run.ps1")).contains("param($JobMessage, $TriggerMetadata)"));

    let poison = json(&root().join("function-jobs-poison/function.json"));
    assert_eq!(poison["bindings"][0]["type"], "queueTrigger");
    assert_eq!(
        poison["bindings"][0]["queueName"], "%PS_JOBS_QUEUE%-poison",
        "the host's poison queue of the PowerShell app's queue"
    );
    assert_eq!(poison["bindings"][0]["name"], "message");
    let handler_host = json(&root().join("host.json"));
    assert_eq!(
        handler_host["extensions"]["queues"]["messageEncoding"], "base64",
        "the poison copy keeps the original encoding"
    );

    // Every setting the worker reads is documented in its settings template.
    let template = json(&app().join("local.settings.json.template"));
    let module = read(&app().join("Modules/JobWorker/JobWorker.psm1"));
    let mut read_settings = BTreeSet::new();
    for (index, _) in module.match_indices("env:") {
        let name: String = module[index + 4..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        read_settings.insert(name.split("__").next().unwrap_or_default().to_string());
    }
    for platform in ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CLIENT_ID"] {
        read_settings.remove(platform);
    }
    for setting in &read_settings {
        assert!(
            template["Values"].get(setting).is_some() && template["_help"].get(setting).is_some(),
            "{setting} is not in the template"
        );
    }
    assert!(
        read_settings.contains("PS_ALLOWED_FUNCTIONS") && read_settings.contains("JOBS_STORAGE"),
        "{read_settings:?}"
    );
    // The two apps share these names and defaults.
    let handler_template = json(&root().join("local.settings.json.template"));
    for shared in ["JOBS_CONTAINER", "PS_JOBS_QUEUE"] {
        assert_eq!(
            template["Values"][shared], handler_template["Values"][shared],
            "{shared}"
        );
    }
}
