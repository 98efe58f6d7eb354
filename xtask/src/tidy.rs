//! Code invariants checked as a test (rust-analyzer's tidy): file headers, crate layering (the
//! table in docs/architecture.md against the manifests), HTTP glue behind features, and no
//! database driver in the in-process crates' default build.

use crate::{layers, manifest};
use manifest::Manifest;
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
    for d in ["crates", "bins", "examples", "xtask"] {
        rs_files(&root.join(d), &mut files);
    }
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().trim_start().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a leading //! doc line:\n{}", missing.join("\n"));
}

/// Library crates: everything under `crates/` except the dev-only test kit and the bench
/// harness, which are allowed what a binary is.
fn library_manifests() -> Vec<(String, Manifest)> {
    let root = crate::run::root();
    let mut out: Vec<(String, Manifest)> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "keel-bench" && name != "keel-testkit")
        .map(|name| {
            let text = std::fs::read_to_string(root.join("crates").join(&name).join("Cargo.toml")).unwrap_or_default();
            (name, manifest::parse(&text))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The layering in docs/architecture.md: library crates know nothing of command lines, of
/// `anyhow`, of the binaries or of a global allocator (the host's choice); HTTP glue (axum, tower, tower-http) only as an optional
/// dependency behind a feature that `default` does not turn on.
#[test]
fn library_crates_keep_transport_behind_features_and_no_anyhow() {
    let never = ["clap", "anyhow", "keel-api", "keel-worker", "keel-ops", "tikv-jemallocator", "mimalloc"];
    let http = ["axum", "tower", "tower-http"];
    let mut bad = Vec::new();
    for (name, m) in library_manifests() {
        for d in m.normal() {
            if never.contains(&d.package.as_str()) {
                bad.push(format!("{name} depends on {}: libraries never do", d.package));
            }
            if http.contains(&d.package.as_str()) && !d.optional {
                bad.push(format!(
                    "{name} depends on {} unconditionally: make it `optional = true` behind a feature",
                    d.package
                ));
            }
        }
        for item in m.default_closure() {
            let dep = item.trim_start_matches("dep:").split('/').next().unwrap_or("");
            let package = m.deps.iter().find(|d| d.name == dep).map_or(dep, |d| d.package.as_str());
            if http.contains(&package) {
                bad.push(format!("{name}'s default features turn on {package} ({item}); HTTP glue is opt-in"));
            }
        }
    }
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

/// The rule above, on a manifest that breaks it both ways.
#[test]
fn the_http_rule_catches_a_required_axum_and_a_default_feature() {
    let m = manifest::parse(
        "[features]\ndefault = [\"web\"]\nweb = [\"dep:tower\"]\n[dependencies]\naxum = \"0.8\"\ntower = { version = \"0.5\", optional = true }\n",
    );
    let axum = m.normal().find(|d| d.package == "axum").unwrap();
    assert!(!axum.optional);
    assert!(m.default_closure().contains(&"dep:tower".to_owned()));
}

/// docs/architecture.md's layer table against every manifest's `[dependencies]` on our crates:
/// each crate has a row, depends only on what its row allows, the test kit is only ever a
/// dev-dependency, and the bench reaches our crates only through optional dependencies.
#[test]
fn the_layer_table_matches_the_dependency_graph() {
    let root = crate::run::root();
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let layers = layers::parse(&doc).unwrap_or_else(|e| panic!("{e}"));
    let mut bad = Vec::new();
    for dir in ["crates", "bins", "examples"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(text) = std::fs::read_to_string(e.path().join("Cargo.toml")) else { continue };
            let Some(rule) = layers.get(&name) else {
                bad.push(format!("{dir}/{name} has no row in the layer table of docs/architecture.md"));
                continue;
            };
            for d in manifest::parse(&text).normal().filter(|d| d.package.starts_with("keel-")) {
                let target = &d.package;
                let Some(theirs) = layers.get(target) else {
                    bad.push(format!("{name} depends on {target}, which has no row in the layer table"));
                    continue;
                };
                if theirs.dev_only {
                    bad.push(format!("{name} depends on {target} ({}): it may only be a dev-dependency", theirs.layer));
                } else if !(rule.anything || rule.allowed.contains(target)) {
                    bad.push(format!(
                        "{name} ({}) depends on {target} ({}), which its row does not allow",
                        rule.layer, theirs.layer
                    ));
                }
                if rule.behind_features && !d.optional {
                    bad.push(format!("{name} depends on {target} unconditionally; its row says behind features"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "the layer table and the manifests disagree:\n{}", bad.join("\n"));
}

/// The in-process crates cost no database driver: with default features their normal
/// dependency tree has no sqlx, no libsqlite3-sys and no keel-storage (the database parts are
/// the `postgres`/`sqlite` features). Asks cargo itself, so a transitive path counts too.
#[test]
fn in_process_crates_build_without_a_database_driver() {
    let forbidden = ["sqlx", "libsqlite3-sys", "keel-storage"];
    for krate in ["keel-ratelimit", "keel-orgcache", "keel-health"] {
        let out = crate::run::cargo()
            .args(["tree", "--quiet", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", krate])
            .output()
            .expect("cargo tree runs");
        assert!(out.status.success(), "cargo tree -p {krate}: {}", String::from_utf8_lossy(&out.stderr));
        let tree = String::from_utf8_lossy(&out.stdout);
        let found: Vec<&str> =
            tree.lines().filter(|l| forbidden.iter().any(|f| l.split_whitespace().next() == Some(*f))).collect();
        assert!(
            found.is_empty(),
            "{krate} with default features pulls {found:?}; gate it behind the postgres/sqlite features"
        );
        assert!(tree.lines().any(|l| l.starts_with(krate)), "cargo tree printed nothing for {krate}: {tree}");
    }
}

#[test]
fn crate_folders_are_named_as_their_packages() {
    let root = crate::run::root();
    for dir in ["crates", "bins", "examples"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let manifest = std::fs::read_to_string(e.path().join("Cargo.toml")).unwrap_or_default();
            let folder = e.file_name().to_string_lossy().into_owned();
            assert!(manifest.contains(&format!("name = \"{folder}\"")), "{dir}/{folder} is not the package's name");
        }
    }
}
