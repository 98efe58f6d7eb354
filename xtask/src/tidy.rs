//! Code invariants checked as a test (rust-analyzer's tidy): file headers and crate layering.

use std::path::{Path, PathBuf};

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = crate::run::root();
    let mut files = Vec::new();
    for d in ["crates", "bins", "xtask"] {
        rs_files(&root.join(d), &mut files);
    }
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().trim_start().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a leading //! doc line:\n{}", missing.join("\n"));
}

/// The layering in docs/architecture.md: domain crates know nothing of transport or of
/// `anyhow`; only binaries and xtask may use them.
#[test]
fn domain_crates_do_not_depend_on_transport_or_anyhow() {
    let root = crate::run::root();
    let forbidden = ["axum", "clap", "anyhow", "keel-api", "keel-worker", "keel-ops"];
    let mut bad = Vec::new();
    for e in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let manifest = std::fs::read_to_string(e.path().join("Cargo.toml")).unwrap_or_default();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "keel-bench" || name == "keel-testkit" {
            continue;
        }
        for (section, deps) in dependency_sections(&manifest) {
            if section.contains("dev-dependencies") {
                continue;
            }
            for d in deps {
                if forbidden.contains(&d.as_str()) {
                    bad.push(format!("{name} depends on {d} in [{section}]"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

#[test]
fn crate_folders_are_named_as_their_packages() {
    let root = crate::run::root();
    for dir in ["crates", "bins"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let manifest = std::fs::read_to_string(e.path().join("Cargo.toml")).unwrap_or_default();
            let folder = e.file_name().to_string_lossy().into_owned();
            assert!(manifest.contains(&format!("name = \"{folder}\"")), "{dir}/{folder} is not the package's name");
        }
    }
}

fn dependency_sections(manifest: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            out.push((t.trim_matches(['[', ']']).to_owned(), Vec::new()));
        } else if let Some((section, deps)) = out.last_mut() {
            if section.ends_with("dependencies") && !t.is_empty() && !t.starts_with('#') {
                if let Some(name) = t.split(['=', '.']).next() {
                    deps.push(name.trim().to_owned());
                }
            }
        }
    }
    out
}
