//! The OpenAPI document covers every route the router serves: each `.route(...)` in
//! `src/routes/mod.rs` (and the operator API's `src/ops/routes.rs`) with its methods must be listed in `keel_api::operations()`. (The other
//! direction, every listed operation is served, is checked by requesting each one.)
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

#[test]
fn every_served_route_is_in_the_openapi_document() {
    let mut served = BTreeSet::new();
    // The main route table, and the operator API's (merged into it by one `.merge` line).
    for file in ["/src/routes/mod.rs", "/src/ops/routes.rs"] {
        let src = std::fs::read_to_string(format!("{}{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        served.extend(served_routes(&src));
    }
    assert!(served.len() >= 15, "the route parser found too few routes: {served:?}");
    let listed: BTreeSet<(String, String)> =
        keel_api::operations().into_iter().map(|(m, p)| (m.to_owned(), p.to_owned())).collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(missing.is_empty(), "served but not in the OpenAPI document (routes/openapi.rs OPERATIONS): {missing:?}");
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
