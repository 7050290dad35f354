//! Checks of the repository itself, in the style of rust-analyzer's tidy tests: the paths
//! ARCHITECTURE.md names exist, every `src/` file opens with a `//!` comment, no `src/` file
//! (unit-test `tests.rs` files aside) grows past 700 lines, and every crate in `[dependencies]`
//! is used by `src/` or `benches/`. Each test lists every offender at once.

use std::path::{Path, PathBuf};

/// Longest a `src/` file may be; past it, split the module (a unit-test `tests.rs` may be longer).
const MAX_LINES: usize = 700;

/// The prefixes of the repository paths ARCHITECTURE.md may name.
const PATH_PREFIXES: &[&str] = &[
    "src/",
    "templates/",
    "migrations/",
    "docs/",
    "tests/",
    "benches/",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every file under `dir` whose name ends in `.rs`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `path` relative to the repository root, for messages.
fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The text of every `` `code span` `` and every `](link target)` in a Markdown text.
fn spans_and_links(markdown: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    let mut rest = markdown;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// The repository paths in a code span or link target: its words that start with one of
/// [`PATH_PREFIXES`], without trailing punctuation or a `#fragment`.
fn named_paths(span: &str) -> Vec<&str> {
    span.split_whitespace()
        .filter(|word| PATH_PREFIXES.iter().any(|p| word.starts_with(p)))
        .map(|word| {
            let word = word.split('#').next().unwrap_or(word);
            word.trim_end_matches([',', '.', ';', ':', ')'])
        })
        .collect()
}

/// A named path exists as written, or as a module file (`src/schedule` for `src/schedule.rs`).
fn exists(path: &str) -> bool {
    let full = root().join(path);
    full.exists()
        || root()
            .join(format!("{}.rs", path.trim_end_matches('/')))
            .exists()
}

#[test]
fn every_path_architecture_md_names_exists() {
    let text = read(&root().join("ARCHITECTURE.md"));
    let mut named: Vec<&str> = spans_and_links(&text)
        .into_iter()
        .flat_map(named_paths)
        .collect();
    assert!(
        named.len() > 10,
        "ARCHITECTURE.md names only {named:?}: is the path check still reading it right?"
    );
    named.sort_unstable();
    named.dedup();
    let missing: Vec<&str> = named.into_iter().filter(|p| !exists(p)).collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist:\n  {}",
        missing.join("\n  ")
    );
}

/// The file names (`store.rs`, `digest.html`...) a code-map section's text names in code spans
/// without a folder prefix, with the folders its `### ` heading names (a file in the heading
/// stands for its folder).
fn code_map_sections(markdown: &str) -> Vec<(Vec<String>, Vec<&str>)> {
    const EXTENSIONS: &[&str] = &[".rs", ".html", ".txt", ".sql", ".css", ".md"];
    let is_file_name = |w: &str| {
        EXTENSIONS.iter().any(|e| w.ends_with(e))
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
            && !PATH_PREFIXES.iter().any(|p| w.starts_with(p))
    };
    markdown
        .split("\n### ")
        .skip(1)
        .map(|section| {
            let (heading, body) = section.split_once('\n').unwrap_or((section, ""));
            let folders = spans_and_links(heading)
                .into_iter()
                .flat_map(named_paths)
                .map(|p| match p.rsplit_once('/') {
                    Some((folder, _)) => format!("{folder}/"),
                    None => format!("{p}/"),
                })
                .collect();
            let files = spans_and_links(body)
                .into_iter()
                .flat_map(str::split_whitespace)
                .filter(|w| is_file_name(w))
                .collect();
            (folders, files)
        })
        .collect()
}

#[test]
fn every_file_the_code_map_names_exists_under_its_section() {
    let text = read(&root().join("ARCHITECTURE.md"));
    let sections = code_map_sections(&text);
    assert!(
        sections.iter().map(|(_, files)| files.len()).sum::<usize>() > 10,
        "the code map names too few files: is the check still reading it right?"
    );
    let mut missing = Vec::new();
    for (folders, files) in &sections {
        for file in files {
            if !folders.iter().any(|f| root().join(f).join(file).exists()) {
                missing.push(format!("{file} (under {})", folders.join(", ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map names files that do not exist:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_src_file_opens_with_a_module_comment() {
    let files = rust_files(&root().join("src"));
    assert!(!files.is_empty());
    let without: Vec<String> = files
        .iter()
        .filter(|f| !read(f).starts_with("//!"))
        .map(|f| relative(f))
        .collect();
    assert!(
        without.is_empty(),
        "these files do not open with a `//!` comment saying what lives there:\n  {}",
        without.join("\n  ")
    );
}

#[test]
fn no_src_file_but_unit_tests_is_over_700_lines() {
    let too_long: Vec<String> = rust_files(&root().join("src"))
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter_map(|f| {
            let lines = read(f).lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", relative(f)))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "these files are over {MAX_LINES} lines; split them into modules:\n  {}",
        too_long.join("\n  ")
    );
}

/// The crate names declared in `[dependencies]` of a Cargo.toml (`name = ...` lines, as this
/// manifest writes them; `[dependencies.name]` tables are not used here).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside
            && let Some((name, _)) = line.split_once('=')
            && !name.trim().is_empty()
            && !name.trim_start().starts_with('#')
        {
            out.push(name.trim().to_string());
        }
    }
    out
}

/// Whether `text` has `word` (an identifier) right before `::`, or right after `use `, as a
/// whole identifier (so `hyper_util::` is no use of `util`).
fn uses_crate(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let path = format!("{word}::");
    let imported = format!("use {word}");
    text.match_indices(&path)
        .any(|(at, _)| !text[..at].chars().next_back().is_some_and(is_ident))
        || text.match_indices(&imported).any(|(at, m)| {
            !text[..at].chars().next_back().is_some_and(is_ident)
                && !text[at + m.len()..].chars().next().is_some_and(is_ident)
        })
}

#[test]
fn every_dependency_is_used() {
    let declared = dependencies(&read(&root().join("Cargo.toml")));
    assert!(
        declared.iter().any(|d| d == "tokio"),
        "no [dependencies] read from Cargo.toml: {declared:?}"
    );
    let mut code = String::new();
    for dir in ["src", "benches"] {
        for file in rust_files(&root().join(dir)) {
            code.push_str(&read(&file));
            code.push('\n');
        }
    }
    let unused: Vec<&String> = declared
        .iter()
        .filter(|name| !uses_crate(&code, &name.replace('-', "_")))
        .collect();
    assert!(
        unused.is_empty(),
        "declared in [dependencies] but never used in src/ or benches/ \
         (remove them, or move them to [dev-dependencies] when only tests use them): {unused:?}"
    );
}

#[test]
fn the_tidy_helpers_read_what_they_should() {
    assert_eq!(
        dependencies(
            "[package]\nname = \"x\"\n[dependencies]\nfoo-bar = \"1\"\nbaz = { version = \"2\" }\n\n[dev-dependencies]\nqux = \"3\"\n"
        ),
        vec!["foo-bar".to_string(), "baz".to_string()]
    );
    assert!(uses_crate("let x = foo_bar::baz();", "foo_bar"));
    assert!(uses_crate("use foo_bar;", "foo_bar"));
    assert!(uses_crate("use foo_bar::{a, b};", "foo_bar"));
    assert!(!uses_crate("let x = hyper_util::rt::TokioIo;", "util"));
    assert!(!uses_crate("use foo_barn::x;", "foo_bar"));
    assert_eq!(
        named_paths("src/store/ and docs/web.md#limits, not README.md"),
        vec!["src/store/", "docs/web.md"]
    );
    assert_eq!(
        spans_and_links("a `src/x.rs` and [b](docs/y.md) c"),
        vec!["src/x.rs", "docs/y.md"]
    );
}
