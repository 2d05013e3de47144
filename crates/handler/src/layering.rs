//! The direction of the arrows between the crate's top-level modules, checked on the source: a
//! change that makes a lower layer import an upper one (and so a cycle) fails here, naming the
//! files, instead of surfacing later as a module nobody can change alone.
//!
//! The layers (DEVELOPING.md, "Layout"): the host protocol (`host`) carries requests to the MCP
//! surface (`mcp`), which runs the tool families (`tools`) on the shared services; those use the
//! API clients, the outbound HTTP policy, storage and configuration below them. `lib` wires them.
//!
//! It reads `crate::` paths, which is how the crate writes imports between its top-level
//! modules. It cannot see a `super::` path that climbs to the crate root (none does), nor a trait
//! implemented in a module other than its trait's or its type's: an `impl` that an upper layer
//! relies on belongs beside the trait or the type.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Test scaffolding: it stands on everything, and nothing ships with it.
const SCAFFOLDING: &str = "testing";

/// Module → (module it imports → files where it does).
type Imports = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn source_files(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// The top-level module a file belongs to: `mcp/server.rs` → `mcp`, `config.rs` → `config`.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .expect("a path under src")
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::<module>` a file names outside comments, grouped imports
/// (`use crate::{a::X, b}`) included.
fn imported_modules(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let identifier = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let first_name = |path: &str| -> String {
        path.trim_start()
            .chars()
            .take_while(|c| identifier(*c))
            .collect()
    };
    let mut modules = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_identifier = rest[..at].chars().next_back().is_some_and(identifier);
        let after = &rest[at + "crate::".len()..];
        if !preceded_by_identifier {
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            modules.insert(first_name(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                modules.insert(first_name(&item));
            } else {
                modules.insert(first_name(after));
            }
        }
        rest = after;
    }
    modules.remove("");
    modules
}

fn imports() -> Imports {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&root, &mut files);
    let top_level: BTreeSet<String> = files
        .iter()
        .map(|file| module_of(file.strip_prefix(&root).expect("under src")))
        .collect();
    let mut imports = Imports::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under src");
        let module = module_of(relative);
        if module == SCAFFOLDING {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("a readable source file");
        for imported in imported_modules(&source) {
            if imported != module && top_level.contains(&imported) {
                imports
                    .entry(module.clone())
                    .or_default()
                    .entry(imported)
                    .or_default()
                    .insert(relative.display().to_string());
            }
        }
    }
    imports
}

/// A cycle through `start`, as the modules along it, if there is one.
fn cycle_from(start: &str, imports: &Imports) -> Option<Vec<String>> {
    fn walk(
        module: &str,
        start: &str,
        imports: &Imports,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in imports.get(module).into_iter().flat_map(BTreeMap::keys) {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, start, imports, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    walk(start, start, imports, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_modules_import_each_other_in_one_direction() {
    let imports = imports();
    assert!(
        imports.len() > 10,
        "the scan found too few modules to mean anything: {imports:?}"
    );
    let mut cycles = Vec::new();
    for module in imports.keys() {
        if let Some(cycle) = cycle_from(module, &imports) {
            let steps: Vec<String> = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(from, to)| {
                    let files: Vec<&str> = imports[from][to].iter().map(String::as_str).collect();
                    format!("{from} -> {to} (in {})", files.join(", "))
                })
                .collect();
            cycles.push(steps.join("; "));
        }
    }
    assert!(
        cycles.is_empty(),
        "modules import each other in a circle; move what the lower one needs down into it:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn transport_and_the_mcp_surface_know_no_tool() {
    let imports = imports();
    for (module, imported) in &imports {
        if let Some(files) = imported.get("tools") {
            assert_eq!(
                module, "lib",
                "only lib registers the tool families; {module} imports tools in {files:?}"
            );
        }
    }
    let host = imports
        .get("host")
        .expect("the host protocol imports configuration and auth");
    for upper in ["mcp", "tools", "services", "hunts", "jobs", "operations"] {
        assert!(
            !host.contains_key(upper),
            "the host protocol must not know {upper} (imported in {:?}); lib hands it what it runs",
            host[upper]
        );
    }
}

#[test]
fn the_scan_sees_imports_and_ignores_comments_and_longer_names() {
    let source = "use crate::audit::Storing;\n\
                  // crate::tools in a comment\n\
                  /// see [`crate::mcp`]\n\
                  let x = crate::jobs::MAX; let y = foo_crate::hunts::X;\n\
                  use crate::{roles, toolsets::{Toolset, Selection},\n    limits::Bucket};\n";
    assert_eq!(
        imported_modules(source),
        ["audit", "jobs", "limits", "roles", "toolsets"]
            .map(String::from)
            .into()
    );
}
