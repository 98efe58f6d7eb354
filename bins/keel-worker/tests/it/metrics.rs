//! The standalone worker's own `/metrics` listener, scraped from the real process: it binds
//! `KEEL_WORKER_METRICS_BIND` (port 0 here, the bound address read from its log), serves
//! Prometheus text that `promtool check metrics` accepts and that parses line by line, and
//! carries the `keel_queue_*` families, the job gauges read from the database, and the job
//! families after real jobs ran. Concurrent scrapes share one snapshot query.

use keel_queue::NewJob;
use keel_testkit::{backend_tests, Proc, TestDb};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_keel-worker");

backend_tests!(metrics_listener_serves_the_queue_families, concurrent_scrapes_share_one_snapshot);

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

/// Polls the database (not the metrics, whose snapshot is shared per interval) until `done`.
async fn wait_for_queue(
    store: &std::sync::Arc<dyn keel_queue::Store>,
    done: impl Fn(&keel_queue::QueueSnapshot) -> bool,
) {
    let wait = async {
        loop {
            if done(&store.snapshot().await.unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("the worker ran the jobs within 30 s");
}

async fn metrics_listener_serves_the_queue_families(t: TestDb) {
    let store = keel_queue::open(t.db.clone());
    // Two jobs in a queue this worker does not serve stay pending, for the state gauge; in the
    // default queue two that complete and one of a kind nobody handles (dead-lettered), for
    // the job families.
    for _ in 0..2 {
        store
            .enqueue(NewJob::new("demo.sleep", &serde_json::json!({"ms": 1})).unwrap().queue("elsewhere"))
            .await
            .unwrap();
        store.enqueue(NewJob::new("demo.sleep", &serde_json::json!({"ms": 1})).unwrap()).await.unwrap();
    }
    store.enqueue(NewJob::new("k.unknown", &serde_json::json!({})).unwrap()).await.unwrap();
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
    wait_for_queue(&store, |s| s.counts.completed == 2 && s.counts.dead_letter == 1).await;

    let res = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain") && ctype.contains("version=0.0.4"), "{ctype}");
    let body = res.text().await.unwrap();
    keel_testkit::promtool_check_metrics("keel-worker's /metrics", &body);
    let (lines, types) = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));

    for (family, kind) in [
        ("keel_queue_jobs_completed_total", "counter"),
        ("keel_queue_jobs_retried_total", "counter"),
        ("keel_queue_jobs_failed_total", "counter"),
        ("keel_queue_jobs_dead_lettered_total", "counter"),
        ("keel_queue_stuck_processing_total", "counter"),
        ("keel_queue_empty_runs_total", "counter"),
        ("keel_queue_jobs", "gauge"),
        ("keel_queue_oldest_pending_age_seconds", "gauge"),
        ("keel_queue_expired_leases", "gauge"),
        ("keel_queue_snapshot_timestamp_seconds", "gauge"),
        ("keel_jobs_finished_total", "counter"),
        ("keel_job_duration_seconds", "histogram"),
        ("keel_job_start_lag_seconds", "histogram"),
        ("keel_db_pool_connections", "gauge"),
        ("keel_db_pool_max_connections", "gauge"),
    ] {
        assert_eq!(types.get(family).map(String::as_str), Some(kind), "{family} declared as a {kind}:\n{body}");
        let sample = |l: &&Line| l.name == family || l.name.strip_prefix(family).is_some_and(|s| s == "_count");
        assert!(lines.iter().any(|l| sample(&l)), "{family} has a sample:\n{body}");
    }
    let states: BTreeMap<&str, f64> =
        lines.iter().filter(|l| l.name == "keel_queue_jobs").map(|l| (l.labels["state"].as_str(), l.value)).collect();
    let want: BTreeSet<&str> =
        ["pending", "processing", "retrying", "completed", "failed", "dead_letter", "cancelled"].into();
    assert_eq!(states.keys().copied().collect::<BTreeSet<_>>(), want, "{body}");
    assert_eq!((states["pending"], states["completed"]), (2.0, 2.0), "read from the database:\n{body}");

    // The job families carry exactly their labels, with the outcome the database recorded.
    let value = |name: &str, labels: &[(&str, &str)]| {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        lines.iter().find(|l| l.name == name && l.labels == want).map(|l| l.value)
    };
    let done = [("queue", "default"), ("kind", "demo.sleep"), ("outcome", "completed")];
    let dead = [("queue", "default"), ("kind", "k.unknown"), ("outcome", "dead_lettered")];
    assert_eq!(value("keel_jobs_finished_total", &done), Some(2.0), "{body}");
    assert_eq!(value("keel_jobs_finished_total", &dead), Some(1.0), "{body}");
    assert_eq!(value("keel_job_duration_seconds_count", &done), Some(2.0), "{body}");
    assert_eq!(value("keel_job_duration_seconds_count", &dead), Some(1.0), "{body}");
    assert_eq!(value("keel_job_start_lag_seconds_count", &[("queue", "default")]), Some(3.0), "{body}");
    assert!(value("keel_job_start_lag_seconds_count", &[("queue", "elsewhere")]).is_none(), "never started");
    for l in &lines {
        assert!(l.value.is_finite() && l.value >= 0.0, "{l:?}");
    }
    assert_eq!(reqwest::get(format!("http://{addr}/nope")).await.unwrap().status(), 404);

    // OpenMetrics for a scraper that asks for it (Prometheus does by default).
    let om = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3")
        .send()
        .await
        .unwrap();
    assert!(om.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let om = om.text().await.unwrap();
    assert!(om.ends_with("# EOF\n") && om.contains("# TYPE keel_jobs_finished counter\n"), "{om}");

    p.signal("TERM");
    let status = tokio::task::block_in_place(|| p.wait_exit(Duration::from_secs(20)));
    assert!(status.success(), "{status:?}: {}", p.seen.join("\n"));
}

/// Many scrapes at once cost one snapshot query: they share the interval's snapshot.
async fn concurrent_scrapes_share_one_snapshot(t: TestDb) {
    let store = keel_queue::open(t.db.clone());
    store.enqueue(NewJob::new("demo.sleep", &serde_json::json!({"ms": 1})).unwrap()).await.unwrap();
    // An hour-long interval: every scrape of this test falls in the first one.
    let metrics = keel_worker::WorkerMetrics::new(&t.db, store.clone(), Duration::from_secs(3600)).unwrap();
    let config = keel_worker::WorkerConfig::load(&keel_config::MapSource::new([(
        "KEEL_MAIL_OUTBOX_DIR",
        "/nonexistent-outbox",
    )]))
    .unwrap();
    let worker =
        std::sync::Arc::new(keel_queue::Worker::new(store.clone(), keel_queue::Registry::new(), config.worker));
    metrics.register_worker(&worker).unwrap();
    let app = keel_worker::metrics_router(&metrics, worker, store, t.db.clone(), config.health);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(keel_worker::serve_metrics(listener, app, stop.clone()));
    let client = reqwest::Client::new();
    let mut scrapes = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url) = (client.clone(), format!("http://{addr}/metrics"));
        scrapes.spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() });
    }
    let bodies = scrapes.join_all().await;
    assert_eq!(metrics.snapshot.refreshes(), 1, "8 concurrent scrapes, one snapshot query");
    for b in &bodies {
        assert!(b.contains("keel_queue_jobs{state=\"pending\"} 1\n"), "{b}");
    }
    stop.cancel();
    server.await.unwrap().unwrap();
}
