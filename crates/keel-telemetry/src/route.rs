//! [`RouteTemplate`]: a route pattern such as `/clients/:id`, never a raw path with ids in it.
//!
//! Raw paths are refused because every distinct id would become its own "route": percentiles
//! would be split into single samples and the metrics label would grow without bound
//! (OpenTelemetry: `http.route` MUST NOT be populated from the raw path).

use serde::Serialize;
use std::fmt;

/// Longest accepted template, in bytes (the column's CHECK allows 200).
pub const MAX_ROUTE_LEN: usize = 200;

/// A validated route template. Parameters may be written `:id`, `{id}`, `{*rest}`, `[id]`,
/// `[...slug]`, `[[...slug]]` or `*`; literal segments may use `A-Z a-z 0-9 . _ ~ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RouteTemplate(String);

impl RouteTemplate {
    /// Parses a template sent by a client. The error says what is wrong and how to fix it.
    ///
    /// Literal segments that look like ids are refused: all digits, a UUID, 16 or more hex
    /// digits (hashes, object ids), or 20 or more letters and digits with no separator (ULIDs,
    /// nanoids, tokens). Such heuristics can refuse an unusual literal; the fix is the same, name
    /// the segment as a parameter.
    pub fn parse(s: &str) -> Result<RouteTemplate, String> {
        if s.is_empty() {
            return Err("must not be empty; send the route template, e.g. /clients/:id".into());
        }
        if s.len() > MAX_ROUTE_LEN {
            return Err(format!("is {} bytes long; at most {MAX_ROUTE_LEN} are accepted", s.len()));
        }
        if !s.starts_with('/') {
            return Err("must start with '/', e.g. /clients/:id".into());
        }
        if let Some(c) = s.chars().find(|c| matches!(c, '?' | '#')) {
            return Err(format!("must not contain {c:?}: send the route template without query string or fragment"));
        }
        if s == "/" {
            return Ok(RouteTemplate(s.to_owned()));
        }
        for seg in s[1..].split('/') {
            check_segment(seg)?;
        }
        Ok(RouteTemplate(s.to_owned()))
    }

    /// A template taken from the server's own router (axum's `MatchedPath`): trusted to be a
    /// template, only bounded in length so it always fits the column.
    pub fn from_router(s: &str) -> RouteTemplate {
        let mut end = s.len().min(MAX_ROUTE_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let t = &s[..end];
        RouteTemplate(if t.is_empty() { "/".to_owned() } else { t.to_owned() })
    }

    /// The catch-all [`crate::OTHER_ROUTE`] for browser routes beyond the day's bound
    /// (`ROUTE_TELEMETRY_MAX_ROUTES`). Not a template a client can send (those start with `/`).
    pub fn other() -> RouteTemplate {
        RouteTemplate(crate::OTHER_ROUTE.to_owned())
    }

    /// The template's text, like `/api/orgs/:org/invoices`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RouteTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_param_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_param(seg: &str) -> bool {
    if seg == "*" {
        return true;
    }
    let inner = if let Some(n) = seg.strip_prefix(':') {
        n
    } else if let Some(n) = seg.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        n.strip_prefix('*').unwrap_or(n)
    } else if let Some(n) = seg.strip_prefix("[[...").and_then(|r| r.strip_suffix("]]")) {
        n
    } else if let Some(n) = seg.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        n.strip_prefix("...").unwrap_or(n)
    } else {
        return false;
    };
    is_param_name(inner)
}

fn shown(seg: &str) -> String {
    let short: String = seg.chars().take(40).collect();
    if short.len() < seg.len() {
        format!("{short}…")
    } else {
        short
    }
}

fn check_segment(seg: &str) -> Result<(), String> {
    if seg.is_empty() {
        return Err("has an empty segment ('//' or a trailing '/'); send the template, e.g. /clients/:id".into());
    }
    if is_param(seg) {
        return Ok(());
    }
    if let Some(c) = seg.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'))) {
        return Err(format!(
            "segment {:?} contains {c:?}; literal segments may use letters, digits and . _ ~ -, and parameters are written :name or {{name}}",
            shown(seg)
        ));
    }
    let id_kind = if seg.bytes().all(|b| b.is_ascii_digit()) {
        Some("a numeric id")
    } else if is_uuid(seg) {
        Some("a UUID")
    } else if seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_hexdigit()) && seg.bytes().any(|b| b.is_ascii_digit()) {
        Some("a hex id or hash")
    } else if seg.len() >= 20
        && seg.bytes().all(|b| b.is_ascii_alphanumeric())
        && seg.bytes().any(|b| b.is_ascii_digit())
        && seg.bytes().any(|b| b.is_ascii_alphabetic())
    {
        Some("a generated id or token")
    } else {
        None
    };
    match id_kind {
        Some(kind) => Err(format!(
            "segment {:?} looks like {kind}: send the route template (e.g. /clients/:id), not the raw path",
            shown(seg)
        )),
        None => Ok(()),
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::RouteTemplate;

    #[test]
    fn accepts_templates_in_every_router_style() {
        for ok in [
            "/",
            "/clients/:id",
            "/api/orgs/{org_id}/jobs/{*rest}",
            "/estimates/[id]/edit",
            "/docs/[...slug]",
            "/docs/[[...slug]]",
            "/files/*",
            "/api/v1/oauth2/callback",
            "/2fa",
            "/admin/clients.csv",
        ] {
            assert!(RouteTemplate::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_raw_paths_with_ids() {
        let cases = [
            ("/clients/12345", "a numeric id"),
            ("/clients/8f14e45f-ceea-467f-a0e6-3c2b1d5e0f7a/jobs", "a UUID"),
            ("/blobs/5f2b9c0e1a3d4e6f7a8b9c0d", "a hex id"),
            ("/invite/01D3PB6MDJ85MWP3SQ1H94S6R7", "a generated id"),
        ];
        for (path, why) in cases {
            let e = RouteTemplate::parse(path).unwrap_err();
            assert!(e.contains(why) && e.contains("template"), "{path}: {e}");
        }
    }

    #[test]
    fn refuses_malformed_input_with_the_fix() {
        assert!(RouteTemplate::parse("").unwrap_err().contains("empty"));
        assert!(RouteTemplate::parse("clients").unwrap_err().contains("start with '/'"));
        assert!(RouteTemplate::parse("/clients?id=3").unwrap_err().contains("query string"));
        assert!(RouteTemplate::parse("/a//b").unwrap_err().contains("empty segment"));
        assert!(RouteTemplate::parse("/a/").unwrap_err().contains("empty segment"));
        assert!(RouteTemplate::parse("/u/jane@example.com").unwrap_err().contains("'@'"));
        assert!(RouteTemplate::parse("/a%20b").unwrap_err().contains("'%'"));
        assert!(RouteTemplate::parse(&format!("/{}", "a".repeat(200))).unwrap_err().contains("at most 200"));
        assert!(RouteTemplate::parse("/x/{1bad}").is_err());
    }

    #[test]
    fn router_templates_are_bounded_not_judged() {
        assert_eq!(RouteTemplate::from_router("/api/2024/report").as_str(), "/api/2024/report");
        assert_eq!(RouteTemplate::from_router(&"é".repeat(150)).as_str().len(), 200);
        assert_eq!(RouteTemplate::from_router("").as_str(), "/");
    }
}
