//! Dependencies point down (ARCHITECTURE.md): sources hand over items and know nothing of
//! dedupe or storage; the store knows nothing of delivery or anything above it; domain types
//! depend on nothing else in the crate; and no two files of one folder import each other (two
//! such files are one module, or a third type is missing). Read from the source text: a `use`
//! or path in code counts, comments and unit-test modules do not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/{dir}` (all of `src` for ""), with its code: comment lines and
/// everything from the first `#[cfg(test)]` on left out.
fn code_under(dir: &str) -> BTreeMap<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut out = BTreeMap::new();
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
                let code: Vec<&str> = before_tests
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect();
                out.insert(path, code.join("\n"));
            }
        }
    }
    out
}

/// The files under `src/{dir}` whose code names any of `modules` (`crate::{module}`).
fn files_naming(dir: &str, modules: &[&str]) -> Vec<String> {
    code_under(dir)
        .into_iter()
        .flat_map(|(path, code)| {
            modules
                .iter()
                .filter(|m| code.contains(&format!("crate::{m}")))
                .map(|m| format!("{} uses crate::{m}", path.display()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn sources_know_nothing_of_the_pipeline_or_the_store() {
    let found = files_naming("sources", &["pipeline", "store", "delivery", "web"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_store_knows_nothing_of_delivery_or_the_layers_above_it() {
    let found = files_naming(
        "store",
        &[
            "delivery",
            "pipeline",
            "sources",
            "render",
            "web",
            "scheduler",
            "commands",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn domain_types_depend_on_nothing_else_in_the_crate() {
    let found: Vec<String> = code_under("domain")
        .into_iter()
        .filter(|(_, code)| {
            code.match_indices("crate::")
                .any(|(i, _)| !code[i..].starts_with("crate::domain"))
        })
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}

/// The sibling modules a file names through `super::` (`super::x::...`, `super::{x, y}`),
/// as paths of sibling files that exist.
fn siblings_named(path: &Path, code: &str) -> BTreeSet<PathBuf> {
    let dir = path.parent().unwrap();
    let mut names = Vec::new();
    for (i, _) in code.match_indices("super::") {
        let rest = &code[i + "super::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            names.extend(list.split(',').map(|n| n.trim().to_string()));
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..end].to_string());
        }
    }
    names
        .into_iter()
        .map(|n| n.split("::").next().unwrap_or_default().to_string())
        .map(|n| dir.join(format!("{n}.rs")))
        .filter(|p| p.is_file())
        .collect()
}

#[test]
fn no_two_files_of_a_folder_import_each_other() {
    let files = code_under("");
    let edges: BTreeMap<&PathBuf, BTreeSet<PathBuf>> = files
        .iter()
        // `super` in a mod.rs is the folder's parent, not a sibling.
        .filter(|(path, _)| !path.ends_with("mod.rs"))
        .map(|(path, code)| (path, siblings_named(path, code)))
        .collect();
    let mut circles = Vec::new();
    for (a, uses) in &edges {
        for b in uses {
            if a.as_path() < b.as_path() && edges.get(b).is_some_and(|u| u.contains(*a)) {
                circles.push(format!("{} <-> {}", a.display(), b.display()));
            }
        }
    }
    assert!(circles.is_empty(), "{circles:#?}");
    // The check sees a real import: the workers use the transports.
    let worker = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/delivery/worker.rs");
    assert!(
        edges[&worker].contains(&worker.with_file_name("transport.rs")),
        "{:?}",
        edges[&worker]
    );
}
