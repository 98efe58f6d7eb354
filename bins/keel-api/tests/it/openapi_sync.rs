//! The OpenAPI document covers every route the router serves: each `.route(...)` in keel-api's
//! sources (`src/routes/mod.rs` and any module merged into the router, such as `src/ops/`)
//! with its methods must be an operation of the derived document
//! (`keel_api::operations()`, read from `ApiDoc`'s paths). The other direction, every documented
//! operation is served, is checked by requesting each one (`invoices::openapi_lists_every_served_route`).
//!
//! The one explicit exemption: the operator console's HTML pages (`src/console/mod.rs`, all
//! under `/console`) are for browsers, not API clients, and are not in the document; their
//! JSON twin `/api/ops/*` is.

use std::collections::BTreeSet;

/// (method, path) pairs of the router's `.route("path", get(..).post(..))` calls; `options`
/// answers CORS preflights and is not an operation of its own.
fn served_routes(source: &str) -> BTreeSet<(String, String)> {
    // Unit tests at the end of the file mount probe routes of their own.
    let source = source.split("#[cfg(test)]").next().unwrap_or(source);
    let mut out = BTreeSet::new();
    for chunk in source.split(".route(\"").skip(1) {
        let Some((path, rest)) = chunk.split_once('"') else { continue };
        // The method router runs up to the `)` that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let methods = &rest[..end];
        for m in ["get", "post", "put", "patch", "delete"] {
            let called = methods.match_indices(&format!("{m}(")).any(|(i, _)| {
                i == 0 || !methods[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            });
            if called {
                out.insert((m.to_owned(), path.to_owned()));
            }
        }
    }
    out
}

/// Sources that mount routes outside the public API: the metrics listener (its own port,
/// `KEEL_METRICS_BIND`), the benchmark's bare mount of a documented handler, and the console's
/// HTML pages (`console_pages_are_exempt_and_stay_under_console` below).
const NOT_THE_PUBLIC_ROUTER: &[&str] = &["src/routes/metrics.rs", "src/bench.rs", "src/console/mod.rs"];

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_served_route_is_in_the_openapi_document() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut served = BTreeSet::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        if !NOT_THE_PUBLIC_ROUTER.contains(&rel.as_str()) {
            served.extend(served_routes(&std::fs::read_to_string(&f).unwrap()));
        }
    }
    assert!(served.len() >= 15, "the route parser found too few routes: {served:?}");
    let listed: BTreeSet<(String, String)> = keel_api::operations().into_iter().collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "served but not in the OpenAPI document (annotate the handler with #[utoipa::path] and add it to ApiDoc's paths in src/routes/openapi.rs): {missing:?}"
    );
}

#[test]
fn the_route_parser_sees_methods_and_ignores_preflights() {
    let src = r#".route("/a", get(x::list).post(x::create).options(preflight))
        .route("/b/{id}", post(y::pay))
        #[cfg(test)] .route("/probe", get(probe))"#;
    let got: Vec<_> = served_routes(src).into_iter().collect();
    assert_eq!(got, vec![("get".into(), "/a".into()), ("post".into(), "/a".into()), ("post".into(), "/b/{id}".into())]);
}

#[test]
fn console_pages_are_exempt_and_stay_under_console() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/console/mod.rs")).unwrap();
    let pages = served_routes(&src);
    assert!(pages.len() >= 10, "the route parser found too few console routes: {pages:?}");
    let outside: Vec<_> = pages.iter().filter(|(_, p)| !p.starts_with("/console")).collect();
    assert!(outside.is_empty(), "only /console paths may skip the OpenAPI document: {outside:?}");
    let listed: Vec<_> = keel_api::operations().into_iter().filter(|(_, p)| p.starts_with("/console")).collect();
    assert!(listed.is_empty(), "HTML pages are not API operations: {listed:?}");
}
