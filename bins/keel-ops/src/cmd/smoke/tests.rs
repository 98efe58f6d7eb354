//! Unit tests of the smoke checks and the Prometheus reader.

use super::checks::{self, Answer};
use super::prom;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(HeaderName::from_static(k), HeaderValue::from_str(v).unwrap());
    }
    Answer { status, headers: h, body: body.to_owned() }
}

const OK: &str = r#"{"status":"ok","checked_at":"2026-02-11T10:00:00.123Z","services":{"app":"ok","database":"ok"}}"#;

#[test]
fn health_needs_status_code_and_body_to_agree() {
    let ns = [("cache-control", "no-store")];
    assert!(checks::health(&answer(200, &ns, OK)).is_ok());
    let degraded =
        OK.replace("\"status\":\"ok\"", "\"status\":\"degraded\"").replace("database\":\"ok", "database\":\"timeout");
    let e = checks::health(&answer(200, &ns, &degraded)).unwrap_err();
    assert!(e.contains("disagree") && e.contains("database=timeout"), "{e}");
    let e = checks::health(&answer(503, &ns, &degraded)).unwrap_err();
    assert!(e.contains("degraded: database=timeout"), "{e}");
    let e = checks::health(&answer(503, &ns, OK)).unwrap_err();
    assert!(e.contains("HTTP 503"), "{e}");
    let e = checks::health(&answer(200, &ns, &OK.replace("database\":\"ok", "database\":\"error"))).unwrap_err();
    assert!(e.contains("database=error"), "{e}");
    assert!(checks::health(&answer(200, &ns, "<html>OK</html>")).unwrap_err().contains("not JSON"));
    assert!(checks::health(&answer(200, &ns, r#"{"status":"ok","services":{}}"#)).is_err(), "nothing was checked");
    assert!(checks::health(&answer(200, &ns, &OK.replace("2026-02-11T10:00:00.123Z", "yesterday")))
        .unwrap_err()
        .contains("checked_at"));
    let e = checks::health(&answer(200, &[("cache-control", "max-age=60")], OK)).unwrap_err();
    assert!(e.contains("no-store"), "{e}");
    assert!(checks::health(&answer(200, &[("cache-control", "private, No-Store")], OK)).is_ok());
}

#[test]
fn live_and_telemetry_config_need_their_payloads() {
    assert!(checks::live(&answer(200, &[], r#"{"status":"ok"}"#)).is_ok());
    assert!(checks::live(&answer(200, &[], "OK")).is_err());
    assert!(checks::live(&answer(500, &[], r#"{"status":"ok"}"#)).is_err());
    let good = r#"{"enabled":true,"sample_rate":0.05,"admin_sample_rate":0.2}"#;
    assert_eq!(
        checks::telemetry_config(&answer(200, &[], good)).unwrap(),
        "enabled=true sample_rate=0.05 admin_sample_rate=0.2"
    );
    assert!(checks::telemetry_config(&answer(200, &[], &good.replace("0.05", "5"))).unwrap_err().contains("outside"));
    assert!(checks::telemetry_config(&answer(200, &[], &good.replace("true", "\"yes\"")))
        .unwrap_err()
        .contains("enabled"));
    assert!(checks::telemetry_config(&answer(404, &[], good)).is_err());
}

const TEXT: [(&str, &str); 1] = [("content-type", "text/plain; version=0.0.4")];

#[test]
fn metrics_must_not_be_served_on_the_public_port() {
    assert!(checks::metrics_not_public(&answer(404, &[], "")).is_ok());
    assert!(checks::metrics_not_public(&answer(403, &[], "")).is_ok());
    let e = checks::metrics_not_public(&answer(200, &TEXT, "# TYPE x counter\nx 1\n")).unwrap_err();
    assert!(e.contains("KEEL_METRICS_BIND"), "{e}");
    assert!(checks::metrics_not_public(&answer(500, &[], "")).unwrap_err().contains("HTTP 500"));
}

#[test]
fn metrics_url_defaults_its_path() {
    assert_eq!(super::metrics_url("http://127.0.0.1:9090").unwrap(), "http://127.0.0.1:9090/metrics");
    assert_eq!(super::metrics_url("http://127.0.0.1:9090/").unwrap(), "http://127.0.0.1:9090/metrics");
    assert_eq!(super::metrics_url("http://m:9/custom/metrics").unwrap(), "http://m:9/custom/metrics");
    assert!(super::metrics_url("127.0.0.1:9090").is_err());
    assert!(super::metrics_url("https://m:9090").is_err());
}

#[test]
fn metrics_must_parse_and_carry_the_request_histogram() {
    let body = "# TYPE http_server_request_duration_seconds histogram\n\
                http_server_request_duration_seconds_bucket{route=\"/a\",le=\"0.5\"} 1\n\
                http_server_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 2\n\
                http_server_request_duration_seconds_count{route=\"/a\"} 2\n";
    assert!(checks::metrics(&answer(200, &TEXT, body)).is_ok());
    assert!(checks::metrics(&answer(200, &[("content-type", "text/html")], body))
        .unwrap_err()
        .contains("Content-Type"));
    let other = "# TYPE up gauge\nup 1\n";
    assert!(checks::metrics(&answer(200, &TEXT, other)).unwrap_err().contains("missing"));
    assert!(checks::metrics(&answer(200, &TEXT, "<html>error</html>")).unwrap_err().contains("not valid Prometheus"));
}

#[test]
fn prometheus_reader_is_strict() {
    let ok = "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"q\\\"uote\",y=\"nl\\n\"} 3 1700000000000\nb NaN\nc +Inf\n";
    let e = prom::parse(ok).unwrap();
    assert_eq!(e.sample_count(), 3);
    assert_eq!(e.families["a_total"].samples[0].labels[0].1, "q\"uote");
    // What the parser refuses names the line; what it leaves to us names the rule.
    for (bad, why) in [
        ("", "no samples"),
        ("# HELP a A.\n# TYPE a gauge\n", "no samples"),
        ("1abc 3\n", "line 1"),
        ("a{x=1} 3\n", "line 1"),
        ("a 1\nb{x=\"1\"} three\n", "line 2"),
        ("a 1\na 2\n", "appears twice"),
        ("a 1\n# TYPE a gauge\n", "no samples"),
        ("a 1\nb 1\na 2\n", "two places"),
        ("# TYPE a wibble\na 1\n", "line 1"),
        ("a{x=\"1\",x=\"2\"} 1\n", "repeated"),
        ("a 1 2 3\n", "line 1"),
        ("a{x=\"bad \\q escape\"} 1\n", "line 1"),
    ] {
        let err = match prom::parse(bad) {
            Ok(e) => panic!("{bad:?} accepted: {e:?}"),
            Err(e) => e,
        };
        assert!(err.contains(why), "{bad:?}: {err}");
    }
    // Braces inside a label value (route templates) are data, not syntax.
    let e = prom::parse("a{route=\"/api/admin/invoices/{id}\",m=\"GET\"} 1\n").unwrap();
    assert_eq!(e.families["a"].samples[0].labels[0].1, "/api/admin/invoices/{id}");
}

#[test]
fn histograms_must_be_consistent() {
    let h = |lines: &str| prom::parse(&format!("# TYPE h histogram\n{lines}"));
    assert!(h("h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 0.5\n").is_ok());
    assert!(h("h_bucket{le=\"1\"} 1\n").unwrap_err().contains("+Inf"));
    assert!(h("h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\n").unwrap_err().contains("decrease"));
    assert!(h("h_bucket{le=\"+Inf\"} 2\nh_count 3\n").unwrap_err().contains("_count"));
    assert!(h("h_bucket 2\n").unwrap_err().contains("le"));
}

#[test]
fn rate_limit_headers_need_both_families_on_a_refusal() {
    let full = [
        ("ratelimit-policy", "\"admin_api\";q=60;w=60, \"burst, x\";q=10;w=1"),
        ("ratelimit", "\"admin_api\";r=0;t=12"),
        ("x-ratelimit-limit", "60"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1770804012"),
    ];
    assert!(checks::ratelimit_headers(&answer(401, &full, "")).is_ok());
    assert!(checks::ratelimit_headers(&answer(429, &full, "")).is_ok());
    assert!(checks::ratelimit_headers(&answer(200, &full, "")).unwrap_err().contains("not protected"));
    assert!(checks::ratelimit_headers(&answer(500, &full, "")).is_err());
    for (i, (name, _)) in full.iter().enumerate() {
        let mut fewer = full.to_vec();
        fewer.remove(i);
        assert!(checks::ratelimit_headers(&answer(401, &fewer, "")).is_err(), "without {name}");
    }
    let mut bad = full.to_vec();
    bad[0].1 = "\"admin_api\";w=60";
    assert!(checks::ratelimit_headers(&answer(401, &bad, "")).unwrap_err().contains("q="));
    let mut bad = full.to_vec();
    bad[3].1 = "61";
    assert!(checks::ratelimit_headers(&answer(401, &bad, "")).unwrap_err().contains("inconsistent"));
    let mut bad = full.to_vec();
    bad[4].1 = "12";
    assert!(checks::ratelimit_headers(&answer(401, &bad, "")).unwrap_err().contains("epoch"));
}
