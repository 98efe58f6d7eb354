//! Just enough Cargo.toml reading for tidy: dependency sections (name, real package, optional)
//! and the `[features]` table. No toml crate: xtask stays dependency-light, and the manifests
//! of this workspace keep to a handful of shapes, which these tests pin.

use std::collections::BTreeMap;

/// One dependency entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dep {
    /// The key in the manifest (what code calls it).
    pub(crate) name: String,
    /// The package on the registry or path (`package = "..."`, else the key).
    pub(crate) package: String,
    pub(crate) optional: bool,
    /// `dependencies`, `dev-dependencies` or `build-dependencies` (target tables folded in).
    pub(crate) kind: String,
}

/// The parts of a manifest tidy checks.
#[derive(Debug, Default)]
pub(crate) struct Manifest {
    pub(crate) deps: Vec<Dep>,
    pub(crate) features: BTreeMap<String, Vec<String>>,
}

impl Manifest {
    /// The dependencies that end up in a normal build (not dev, not build).
    pub(crate) fn normal(&self) -> impl Iterator<Item = &Dep> {
        self.deps.iter().filter(|d| d.kind == "dependencies")
    }

    /// Everything the `default` feature turns on, transitively: feature names and `dep:x` /
    /// `x/feat` entries as written.
    pub(crate) fn default_closure(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut todo = vec!["default".to_owned()];
        while let Some(f) = todo.pop() {
            for item in self.features.get(&f).into_iter().flatten() {
                if !seen.contains(item) {
                    seen.push(item.clone());
                    todo.push(item.clone());
                }
            }
        }
        seen
    }
}

/// Which dependency kind a section header names, if any: `dependencies`,
/// `target.'cfg(unix)'.dev-dependencies`, `dependencies.foo` (then also the dep's name).
fn dep_section(header: &str) -> Option<(String, Option<String>)> {
    for kind in ["build-dependencies", "dev-dependencies", "dependencies"] {
        if header == kind || header.ends_with(&format!(".{kind}")) {
            return Some((kind.to_owned(), None));
        }
        if let Some(at) = header.find(&format!("{kind}.")) {
            let before_ok = at == 0 || header[..at].ends_with('.');
            if before_ok {
                return Some((kind.to_owned(), Some(header[at + kind.len() + 1..].trim_matches('"').to_owned())));
            }
        }
    }
    None
}

fn string_value(table: &str, key: &str) -> Option<String> {
    let at = table.find(&format!("{key} ="))?;
    let rest = &table[at..];
    let start = rest.find('"')? + 1;
    let end = rest[start..].find('"')? + start;
    Some(rest[start..end].to_owned())
}

fn flag(table: &str, key: &str) -> bool {
    table.split([',', '{', '}', '\n']).any(|part| {
        let mut kv = part.splitn(2, '=');
        kv.next().map(str::trim) == Some(key) && kv.next().map(str::trim) == Some("true")
    })
}

/// Reads `text`; lines it does not understand are ignored (tidy checks what it can name).
pub(crate) fn parse(text: &str) -> Manifest {
    let mut m = Manifest::default();
    let mut section = String::new();
    // A `[dependencies.foo]` table being read: (kind, name, body so far).
    let mut table: Option<(String, String, String)> = None;
    let mut lines = text.lines();
    let flush = |m: &mut Manifest, table: &mut Option<(String, String, String)>| {
        if let Some((kind, name, body)) = table.take() {
            let package = string_value(&body, "package").unwrap_or_else(|| name.clone());
            m.deps.push(Dep { optional: flag(&body, "optional"), name, package, kind });
        }
    };
    while let Some(line) = lines.next() {
        let t = line.split(" #").next().unwrap_or("").trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('[') {
            flush(&mut m, &mut table);
            section = t.trim_matches(['[', ']']).trim().to_owned();
            if let Some((kind, Some(name))) = dep_section(&section) {
                table = Some((kind, name, String::new()));
            }
            continue;
        }
        // An inline table or array may span lines: read on until its brackets balance.
        let mut entry = t.to_owned();
        let open = |s: &str| s.matches(['{', '[']).count() > s.matches(['}', ']']).count();
        while open(&entry) {
            match lines.next() {
                Some(more) => {
                    entry.push('\n');
                    entry.push_str(more.split(" #").next().unwrap_or("").trim());
                }
                None => break,
            }
        }
        if let Some((_, _, body)) = table.as_mut() {
            body.push_str(&entry);
            body.push('\n');
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else { continue };
        let key = key.trim().trim_matches('"');
        if section == "features" {
            let items = value
                .trim()
                .trim_matches(['[', ']'])
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            m.features.insert(key.to_owned(), items);
        } else if let Some((kind, None)) = dep_section(&section) {
            // `name.workspace = true` names the dependency before the dot.
            let name = key.split('.').next().unwrap_or(key).trim().to_owned();
            let package = string_value(value, "package").unwrap_or_else(|| name.clone());
            m.deps.push(Dep { optional: flag(value, "optional"), name, package, kind });
        }
    }
    flush(&mut m, &mut table);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[package]
name = "x"

[features]
default = ["tower"]
tower = ["dep:tower", "dep:http"] # the glue
postgres = [
    "dep:sqlx",
    "sqlx/postgres",
]

[dependencies]
keel-ids.workspace = true
tower = { workspace = true, optional = true }
peer = { package = "moka", version = "0.12", optional = true }
http = { version = "1",
         optional = true }

[dependencies.sqlx]
version = "0.8"
optional = true

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[dev-dependencies]
axum.workspace = true
"#;

    #[test]
    fn reads_every_shape_this_workspace_uses() {
        let m = parse(SAMPLE);
        let got: Vec<(&str, &str, bool, &str)> =
            m.deps.iter().map(|d| (d.name.as_str(), d.package.as_str(), d.optional, d.kind.as_str())).collect();
        assert_eq!(
            got,
            [
                ("keel-ids", "keel-ids", false, "dependencies"),
                ("tower", "tower", true, "dependencies"),
                ("peer", "moka", true, "dependencies"),
                ("http", "http", true, "dependencies"),
                ("sqlx", "sqlx", true, "dependencies"),
                ("libc", "libc", false, "dependencies"),
                ("axum", "axum", false, "dev-dependencies"),
            ]
        );
        assert_eq!(m.features["postgres"], ["dep:sqlx", "sqlx/postgres"]);
        let mut closure = m.default_closure();
        closure.sort();
        assert_eq!(closure, ["dep:http", "dep:tower", "tower"]);
        assert_eq!(m.normal().count(), 6);
    }
}
