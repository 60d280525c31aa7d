//! The crate's layout, checked over the `use` lines and paths of `src/`: the layers import only
//! downward (domain ← model ← app ← {cli, http}, with ingest and store beside), the front ends
//! do not lean on each other, the domain stays pure, no file-level import circle, no source or
//! test file over 600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources() -> Vec<(PathBuf, String)> {
    files_under("src")
}

/// Every `.rs` file under the package's folder `top`, with its text.
fn files_under(top: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(top), &mut out);
    out.sort();
    out
}

/// The module path of a source file: `src/http/customers.rs` → `http::customers`.
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every `crate::a::b…` and `super::a…` path in `text`, made absolute from module `here`.
fn paths(text: &str, here: &[String]) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let starts_word =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
        let rest = &text[i..];
        let (head, skip) = if rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if rest.starts_with("super::") {
            // `here` is the file's module (for a mod.rs, its directory's), `super` its parent.
            let mut base = here.to_vec();
            base.pop();
            (base, 7)
        } else {
            i += 1;
            continue;
        };
        if !starts_word {
            i += 1;
            continue;
        }
        let mut segs = head;
        let mut j = i + skip;
        loop {
            let start = j;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if j == start {
                break;
            }
            let seg = &text[start..j];
            if seg == "super" {
                segs.pop();
            } else {
                segs.push(seg.to_string());
            }
            if text[j..].starts_with("::") && j + 2 < bytes.len() && bytes[j + 2] != b'{' && bytes[j + 2] != b'*' {
                j += 2;
            } else {
                break;
            }
        }
        out.push(segs);
        i = j.max(i + 1);
    }
    out
}

struct Crate {
    files: Vec<(PathBuf, Vec<String>, String)>,
}

impl Crate {
    fn load() -> Self {
        let files = sources()
            .into_iter()
            .map(|(p, text)| {
                let m = module_of(&p);
                (p, m, code(&text))
            })
            .collect();
        Self { files }
    }

    fn rel(p: &Path) -> String {
        p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string()
    }

    /// Files under `top` (a top-level module) whose code matches any of `forbidden`.
    fn offences(&self, top: &str, forbidden: &[&str], except: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for (p, m, code) in &self.files {
            if m.first().map(String::as_str) != Some(top) || except.iter().any(|e| Self::rel(p).ends_with(e)) {
                continue;
            }
            for f in forbidden {
                let found = code.match_indices(f).any(|(i, _)| {
                    let after = code[i + f.len()..].chars().next();
                    !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if found {
                    out.push(format!("{} uses {f}", Self::rel(p)));
                }
            }
        }
        out
    }
}

#[test]
fn every_layer_imports_only_downward_and_the_domain_stays_pure() {
    let c = Crate::load();
    let mut bad = Vec::new();
    let io_and_up = ["crate::model", "crate::app", "crate::store", "crate::ingest", "crate::http", "crate::cli"];
    let engines = ["std::thread", "rayon", "utoipa", "toml", "axum", "tokio", "tracing"];
    bad.extend(c.offences("domain", &io_and_up, &[]));
    bad.extend(c.offences("domain", &engines, &[]));
    bad.extend(c.offences("model", &["crate::app", "crate::store", "crate::ingest", "crate::http", "crate::cli"], &[]));
    bad.extend(c.offences("model", &["axum", "tokio", "std::thread"], &[]));
    bad.extend(c.offences("model", &["rayon"], &["src/model/parallel.rs"]));
    bad.extend(c.offences("app", &["crate::http", "crate::cli"], &[]));
    bad.extend(c.offences("store", &["crate::app", "crate::http", "crate::cli"], &[]));
    bad.extend(c.offences("ingest", &["crate::app", "crate::store", "crate::http", "crate::cli"], &[]));
    bad.extend(c.offences("http", &["crate::cli"], &[]));
    // `kam serve` is the one command that starts the other front end.
    bad.extend(c.offences("cli", &["crate::http"], &["src/cli/serve.rs"]));
    assert!(bad.is_empty(), "imports against the layers:\n{}", bad.join("\n"));
}

#[test]
fn no_file_imports_in_a_circle() {
    let c = Crate::load();
    let modules: BTreeMap<Vec<String>, String> = c.files.iter().map(|(p, m, _)| (m.clone(), Crate::rel(p))).collect();
    // file → files it names (a parent's mod.rs, which declares its children, is not counted:
    // the child/parent pair is how Rust modules nest, not a dependency circle).
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (p, m, code) in &c.files {
        let from = Crate::rel(p);
        for path in paths(code, m) {
            let target = (0..=path.len()).rev().map(|k| &path[..k]).find(|pre| modules.contains_key(*pre));
            let Some(target) = target else { continue };
            if target.is_empty() || m.starts_with(target) || target.starts_with(m.as_slice()) {
                continue;
            }
            edges.entry(from.clone()).or_default().insert(modules[target].clone());
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut circle = stack[at..].to_vec();
                    circle.push(m.clone());
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if !state.contains_key(n.as_str()) {
            let circle = visit(n, &edges, &mut state, &mut Vec::new());
            assert!(circle.is_none(), "an import circle: {}", circle.unwrap().join(" → "));
        }
    }
}

#[test]
fn no_source_or_test_file_is_over_600_lines() {
    let mut files = sources();
    files.extend(files_under("tests"));
    files.extend(files_under("benches"));
    let long: Vec<String> = files
        .iter()
        .filter(|(_, text)| text.lines().count() > 600)
        .map(|(p, text)| format!("{}: {} lines", Crate::rel(p), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "files over 600 lines:\n{}", long.join("\n"));
}
