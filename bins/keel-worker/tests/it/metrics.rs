//! The standalone worker's own `/metrics` listener, scraped from the real process: it binds
//! `KEEL_WORKER_METRICS_BIND` (port 0 here, the bound address read from its log), serves
//! Prometheus text that parses line by line, and carries the `keel_queue_*` families with the
//! job gauges read from the database.

use keel_queue::NewJob;
use keel_testkit::{backend_tests, Proc, TestDb};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_keel-worker");

backend_tests!(metrics_listener_serves_the_queue_families);

/// One sample line: `name{labels} value`.
#[derive(Debug)]
struct Line {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// `k="v",k2="v2"` (the braces' contents), with the text format's escapes in values.
fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").ok_or_else(|| format!("label without =\"…\": {rest:?}"))?;
        if !valid_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => return Err(format!("bad escape {other:?} in {s:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated label value in {s:?}")),
            }
        };
        if out.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} repeated"));
        }
        rest = &after[end + 1..];
        rest = match rest.strip_prefix(',') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return Err(format!("expected , between labels: {rest:?}")),
        };
    }
    Ok(out)
}

/// Every line is a `# HELP`/`# TYPE` comment or `name{labels} value`; anything else fails.
fn parse(text: &str) -> Result<(Vec<Line>, BTreeMap<String, String>), String> {
    let (mut lines, mut types) = (Vec::new(), BTreeMap::new());
    for raw in text.lines() {
        if raw.is_empty() || raw.starts_with("# HELP ") {
            continue;
        }
        if let Some(t) = raw.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').ok_or_else(|| format!("bad TYPE line {raw:?}"))?;
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if raw.starts_with('#') {
            return Err(format!("unknown comment {raw:?}"));
        }
        let (series, value) = raw.rsplit_once(' ').ok_or_else(|| format!("no value: {raw:?}"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().map_err(|e| format!("value {v:?} in {raw:?}: {e}"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').ok_or_else(|| format!("unclosed {{ in {raw:?}"))?;
                (n, parse_labels(l)?)
            }
            None => (series, BTreeMap::new()),
        };
        if !valid_name(name) {
            return Err(format!("bad metric name {name:?} in {raw:?}"));
        }
        lines.push(Line { name: name.to_owned(), labels, value });
    }
    Ok((lines, types))
}

#[test]
fn the_line_reader_is_strict() {
    assert!(parse("# TYPE a counter\na 1\nb{x=\"y\\\"z\",w=\"\"} 2.5\nc +Inf\n").is_ok());
    for bad in ["a", "a b", "1a 1", "a{x=y} 1", "a{x=\"y\" 1", "a{x=\"y\"}} 1", "// a 1", "a{x=\"1\",x=\"2\"} 1"] {
        assert!(parse(bad).is_err(), "{bad:?} accepted");
    }
}

async fn metrics_listener_serves_the_queue_families(t: TestDb) {
    // Two jobs held pending in a paused queue, so the state gauge has something to show.
    let store = keel_queue::open(t.db.clone());
    store.pause_queue("default".into(), Some("test".into())).await.unwrap();
    for _ in 0..2 {
        store.enqueue(NewJob::new("demo.sleep", &serde_json::json!({"ms": 1})).unwrap()).await.unwrap();
    }
    let outbox = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0"),
        ("KEEL_MAIL_OUTBOX_DIR", outbox.path().to_str().unwrap()),
    ];
    let mut p = Proc::start(BIN, &[], &env);
    let line =
        tokio::task::block_in_place(|| p.wait_for(Duration::from_secs(30), |v| v["message"] == "metrics listening"));
    let addr: std::net::SocketAddr = line["addr"].as_str().and_then(|a| a.parse().ok()).expect("addr in the log line");
    assert_ne!(addr.port(), 0, "the log carries the bound port");

    let res = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain") && ctype.contains("version=0.0.4"), "{ctype}");
    let body = res.text().await.unwrap();
    let (lines, types) = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));

    for (family, kind) in [
        ("keel_queue_jobs_completed_total", "counter"),
        ("keel_queue_jobs_retried_total", "counter"),
        ("keel_queue_jobs_failed_total", "counter"),
        ("keel_queue_jobs_dead_lettered_total", "counter"),
        ("keel_queue_stuck_processing_total", "counter"),
        ("keel_queue_empty_runs_total", "counter"),
        ("keel_queue_jobs", "gauge"),
    ] {
        assert_eq!(types.get(family).map(String::as_str), Some(kind), "{family} declared as a {kind}:\n{body}");
        assert!(lines.iter().any(|l| l.name == family), "{family} has a sample:\n{body}");
    }
    let states: BTreeMap<&str, f64> =
        lines.iter().filter(|l| l.name == "keel_queue_jobs").map(|l| (l.labels["state"].as_str(), l.value)).collect();
    let want: BTreeSet<&str> =
        ["pending", "processing", "retrying", "completed", "failed", "dead_letter", "cancelled"].into();
    assert_eq!(states.keys().copied().collect::<BTreeSet<_>>(), want, "{body}");
    assert_eq!(states["pending"], 2.0, "read from the database at scrape time:\n{body}");
    for l in &lines {
        assert!(l.value.is_finite() && l.value >= 0.0, "{l:?}");
    }
    assert_eq!(reqwest::get(format!("http://{addr}/nope")).await.unwrap().status(), 404);

    p.signal("TERM");
    let status = tokio::task::block_in_place(|| p.wait_exit(Duration::from_secs(20)));
    assert!(status.success(), "{status:?}: {}", p.seen.join("\n"));
}
