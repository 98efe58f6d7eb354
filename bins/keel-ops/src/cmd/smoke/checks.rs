//! The smoke checks as pure functions of one HTTP answer: each passes only on the payload the
//! contract promises (issues 4, 6 and 7), never on a bare 2xx, and says what was wrong.

use super::prom;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// One answer, as the checks see it.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn json(&self) -> Result<serde_json::Map<String, Value>, String> {
        match serde_json::from_str::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(format!("HTTP {}: the body is JSON but not an object: {}", self.status, snippet(&self.body))),
            Err(_) => Err(format!("HTTP {}: the body is not JSON: {}", self.status, snippet(&self.body))),
        }
    }
}

fn snippet(s: &str) -> String {
    let t: String = s.chars().take(120).collect();
    let t = t.replace(['\n', '\r'], " ");
    if t.is_empty() {
        "(empty)".to_owned()
    } else if s.chars().count() > 120 {
        format!("{t:?}…")
    } else {
        format!("{t:?}")
    }
}

pub(crate) type Outcome = Result<String, String>;

/// `GET /api/health`: 200 with `status: ok` and every service ok, or it fails; the status
/// code and the body must agree; `Cache-Control: no-store`; `checked_at` in RFC 3339.
pub(crate) fn health(a: &Answer) -> Outcome {
    let body = a.json()?;
    let status = body.get("status").and_then(Value::as_str).ok_or("the body has no \"status\" string")?;
    let services = body.get("services").and_then(Value::as_object).ok_or("the body has no \"services\" object")?;
    let mut list: Vec<String> = Vec::new();
    let mut bad: Vec<String> = Vec::new();
    for (name, v) in services {
        let v = v.as_str().unwrap_or("?");
        list.push(format!("{name}={v}"));
        if v != "ok" {
            bad.push(format!("{name}={v}"));
        }
    }
    match (a.status, status) {
        (200, "ok") if bad.is_empty() => {}
        (200, "ok") => return Err(format!("HTTP 200 and status \"ok\", but services say {}", bad.join(", "))),
        (200, other) => {
            return Err(format!(
                "HTTP 200 but the body says status {other:?} ({}): the status code and the body disagree",
                list.join(", ")
            ))
        }
        (503, "degraded") => return Err(format!("the deployment is degraded: {}", bad.join(", "))),
        (code, s) => return Err(format!("HTTP {code} with status {s:?}: expected 200 \"ok\" (or 503 \"degraded\")")),
    }
    if services.is_empty() {
        return Err("status \"ok\" but no services were checked".to_owned());
    }
    let checked_at = body.get("checked_at").and_then(Value::as_str).unwrap_or_default();
    if chrono::DateTime::parse_from_rfc3339(checked_at).is_err() {
        return Err(format!("\"checked_at\" is {checked_at:?}, not an RFC 3339 time"));
    }
    match a.header("cache-control") {
        Some(cc) if cc.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-store")) => {}
        other => {
            return Err(format!(
                "Cache-Control is {other:?}; it must be no-store, or a cache can keep answering ok during an outage"
            ))
        }
    }
    Ok(format!("200 ok ({})", list.join(", ")))
}

/// `GET /api/health/live`: 200 and `status: ok`.
pub(crate) fn live(a: &Answer) -> Outcome {
    let body = a.json()?;
    match (a.status, body.get("status").and_then(Value::as_str)) {
        (200, Some("ok")) => Ok("200 ok".to_owned()),
        (code, s) => Err(format!("HTTP {code} with status {s:?}: expected 200 \"ok\"")),
    }
}

/// `GET /api/telemetry/config`: the three sampling fields with sane values.
pub(crate) fn telemetry_config(a: &Answer) -> Outcome {
    if a.status != 200 {
        return Err(format!("HTTP {}: expected 200 with the sampling configuration", a.status));
    }
    let body = a.json()?;
    let enabled = body.get("enabled").and_then(Value::as_bool).ok_or("\"enabled\" is missing or not a boolean")?;
    let rate = |k: &str| -> Result<f64, String> {
        let v = body.get(k).and_then(Value::as_f64).ok_or(format!("{k:?} is missing or not a number"))?;
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{k:?} is {v}, outside 0..=1"))
        }
    };
    let (s, admin) = (rate("sample_rate")?, rate("admin_sample_rate")?);
    Ok(format!("enabled={enabled} sample_rate={s} admin_sample_rate={admin}"))
}

/// The histogram every keel-api must expose (issue 7).
pub(crate) const REQUIRED_HISTOGRAM: &str = "http_server_request_duration_seconds";

/// `GET /metrics`: Prometheus text that parses completely, with the request histogram.
pub(crate) fn metrics(a: &Answer) -> Outcome {
    if a.status != 200 {
        return Err(format!("HTTP {}: expected 200 with Prometheus text", a.status));
    }
    let ct = a.header("content-type").unwrap_or_default();
    if !(ct.starts_with("text/plain") || ct.starts_with("application/openmetrics-text")) {
        return Err(format!("Content-Type is {ct:?}, not Prometheus text (text/plain; version=0.0.4)"));
    }
    let exp = prom::parse(&a.body).map_err(|e| format!("not valid Prometheus text: {e}"))?;
    match exp.families.get(REQUIRED_HISTOGRAM).and_then(|f| f.kind.as_deref()) {
        Some("histogram") => {}
        Some(k) => return Err(format!("{REQUIRED_HISTOGRAM} is a {k}, expected a histogram")),
        None => return Err(format!("{REQUIRED_HISTOGRAM} (histogram) is missing")),
    }
    Ok(format!("{} families, {} samples", exp.families.len(), exp.sample_count()))
}

/// `GET <base-url>/metrics`: refused. keel-api serves metrics only on `KEEL_METRICS_BIND`; a
/// public scrape publishes queue counts and costs a database query per request.
pub(crate) fn metrics_not_public(a: &Answer) -> Outcome {
    match a.status {
        404 | 401 | 403 => Ok(format!("HTTP {}: not served on the public port", a.status)),
        200 => {
            Err("the public port serves /metrics; serve it only on the metrics listener (KEEL_METRICS_BIND)".to_owned())
        }
        s => Err(format!("HTTP {s}: expected 404 (metrics are not served on the public port)")),
    }
}

/// Splits a structured-field list on commas outside quoted strings.
fn sf_items(v: &str) -> Vec<String> {
    let (mut items, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in v.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

/// The integer parameter `key` of a structured-field item `"name";q=60;w=60`.
fn sf_param(item: &str, key: &str) -> Option<u64> {
    item.split(';').skip(1).find_map(|p| p.trim().strip_prefix(key)?.strip_prefix('=')?.trim().parse().ok())
}

fn int_header(a: &Answer, name: &str) -> Result<u64, String> {
    let v = a.header(name).ok_or(format!("{name} is missing"))?;
    v.trim().parse().map_err(|_| format!("{name} is {v:?}, not an integer"))
}

/// An admin route without credentials: refused (401, or 429 once the limiter trips) and
/// carrying both header families: draft-10 `RateLimit-Policy`/`RateLimit` and the
/// `X-RateLimit-*` trio.
pub(crate) fn ratelimit_headers(a: &Answer) -> Outcome {
    match a.status {
        401 | 429 => {}
        s if (200..300).contains(&s) => {
            return Err(format!("HTTP {s} without credentials: the admin route is not protected"))
        }
        s => return Err(format!("HTTP {s}: expected 401 (no credentials) or 429")),
    }
    let policy = a.header("ratelimit-policy").ok_or("RateLimit-Policy is missing")?;
    let policies = sf_items(policy);
    if policies.is_empty() || policies.iter().any(|p| sf_param(p, "q").is_none_or(|q| q == 0)) {
        return Err(format!("RateLimit-Policy {policy:?} lacks a positive q= quota"));
    }
    let rl = a.header("ratelimit").ok_or("RateLimit is missing")?;
    if sf_items(rl).is_empty() || sf_items(rl).iter().any(|i| sf_param(i, "r").is_none()) {
        return Err(format!("RateLimit {rl:?} lacks r= (remaining)"));
    }
    let limit = int_header(a, "x-ratelimit-limit")?;
    let remaining = int_header(a, "x-ratelimit-remaining")?;
    let reset = int_header(a, "x-ratelimit-reset")?;
    if limit == 0 || remaining > limit {
        return Err(format!("X-RateLimit-Limit {limit} and X-RateLimit-Remaining {remaining} are inconsistent"));
    }
    // Epoch seconds (as GitHub's API); a small number means "seconds from now" was sent instead.
    if reset < 1_000_000_000 {
        return Err(format!("X-RateLimit-Reset is {reset}, not Unix epoch seconds"));
    }
    Ok(format!("{} with RateLimit-Policy {policy}, X-RateLimit-Limit {limit}, remaining {remaining}", a.status))
}
