//! Telemetry routes: ingest validation and switches, the sampling config, the metrics scrape.

use crate::start;
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

backend_tests!(
    ingest_accepts_valid_batches_and_names_bad_fields,
    rejected_batches_name_their_field_and_write_nothing,
    ingest_over_its_limit_is_429_and_writes_nothing,
    ingest_switch_and_config,
    metrics_expose_http_histogram_and_limiters,
    only_published_sample_rates_are_accepted,
    routes_beyond_the_daily_bound_are_stored_as_other
);

fn event(route: &str, ms: f64) -> serde_json::Value {
    serde_json::json!({"route": route, "kind": "navigation", "duration_ms": ms, "occurred_at": chrono::Utc::now().to_rfc3339(), "sample_rate": 0.05})
}

/// Browser and API-client events stored (the server's own `server` samples are left out: every
/// request, refused or not, is timed).
async fn stored(db: &Db) -> i64 {
    let q = "SELECT count(*) FROM route_performance_events WHERE kind <> 'server'";
    match db {
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

/// A server whose `serve` task the test awaits: `serve` returns only after the route-timing
/// writer has written its last batch, so once [`Served::stop`] returns the table holds
/// everything that will ever be stored, with no polling.
struct Served {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    t: TestDb,
}

impl Served {
    async fn start(t: TestDb, env: &[(&str, &str)]) -> Served {
        let src = keel_config::MapSource(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let config = keel_api::Config::load(&src).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let state = keel_api::AppState::new(t.db.clone(), config);
        let task = tokio::spawn(keel_api::serve(listener, state, shutdown.clone()));
        Served { addr, shutdown, task, t }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server, waits for its final telemetry flush, and returns the browser events stored.
    async fn stop(self) -> i64 {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        stored(&self.t.db).await
    }
}

/// Status, headers and the problem document of a raw answer.
fn split_answer(raw: &[u8]) -> (u16, String, serde_json::Value) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("no JSON body ({e}) in:\n{text}"));
    (status, head.to_ascii_lowercase(), body)
}

/// The start of a raw ingest request; the test adds the body framing.
const HEAD: &str =
    "POST /api/telemetry/route-timing HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\n";

/// Writes `bytes` on a fresh connection and reads the whole answer (raw TCP: an HTTP client
/// streaming a body the server has already refused may see the connection close before it
/// reads the answer).
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> (u16, String, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), sock.read_to_end(&mut buf)).await;
    split_answer(&buf)
}

fn assert_names(head: &str, body: &serde_json::Value, field: &str) {
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&field), "{field} not named: {body}");
}

async fn ingest_accepts_valid_batches_and_names_bad_fields(t: TestDb) {
    let s = Served::start(t, &[]).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/telemetry/route-timing");
    let r = c
        .post(&url)
        .json(&serde_json::json!({"events": [event("/admin/invoices", 120.0), event("/admin/jobs/:id", 80.0)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let bad = serde_json::json!({"events": [event("/ok", 1.0), event("/admin/jobs/12345", 5.0)]});
    let r = c.post(&url).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "events[1].route", "{body}");
    let r =
        c.post(&url).json(&serde_json::json!({"events": [event("/x", 11.0 * 60.0 * 1000.0)]})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = c.post(&url).header("content-type", "application/json").body("{oops").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(s.stop().await, 2, "exactly the two accepted browser events");
}

/// Every refusal the issue lists, each naming its field, after one accepted batch: once the
/// writer has flushed, only the accepted batch is stored, nothing partial from any refused one.
async fn rejected_batches_name_their_field_and_write_nothing(t: TestDb) {
    let s = Served::start(t, &[]).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/telemetry/route-timing");
    let r = c.post(&url).json(&serde_json::json!({"events": [event("/ok", 1.0), event("/ok", 2.0)]})).send().await;
    assert_eq!(r.unwrap().status(), 202);
    let post = |batch: serde_json::Value| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let r = c.post(url).json(&batch).send().await.unwrap();
            let status = r.status().as_u16();
            let head = format!("content-type: {}", r.headers()["content-type"].to_str().unwrap());
            (status, head, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Over 64 KiB, announced: refused before the body is read.
    let announced = format!("{HEAD}content-length: {}\r\n\r\n", keel_telemetry::MAX_BODY_BYTES + 1);
    let (status, head, body) = raw_exchange(s.addr, announced.as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert_names(&head, &body, "body");
    // Over 64 KiB, not announced (chunked): cut off by the route's body limit while reading.
    let padded = format!("{{\"events\": [{}]{}}}", event("/ok", 3.0), " ".repeat(keel_telemetry::MAX_BODY_BYTES));
    let mut chunked = format!("{HEAD}transfer-encoding: chunked\r\n\r\n{:x}\r\n", padded.len()).into_bytes();
    chunked.extend_from_slice(padded.as_bytes());
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let (status, head, body) = raw_exchange(s.addr, &chunked).await;
    assert_eq!(status, 413, "{body}");
    assert_names(&head, &body, "body");
    // A body that cannot be read at all (a broken chunk size): 400 naming `body`.
    let broken = format!("{HEAD}transfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n");
    let (status, head, body) = raw_exchange(s.addr, broken.as_bytes()).await;
    assert_eq!(status, 400, "{body}");
    assert_names(&head, &body, "body");
    // More than 100 events: too large a batch, 413 naming `events`.
    let many: Vec<_> = (0..101).map(|i| event("/ok", f64::from(i))).collect();
    let (status, head, body) = post(serde_json::json!({"events": many})).await;
    assert_eq!(status, 413, "{body}");
    assert_names(&head, &body, "events");
    // An unknown kind after a valid event.
    let mut click = event("/ok", 4.0);
    click["kind"] = serde_json::json!("click");
    let (status, head, body) = post(serde_json::json!({"events": [event("/ok", 5.0), click]})).await;
    assert_eq!(status, 400, "{body}");
    assert_names(&head, &body, "events[1].kind");
    // A raw path carrying an id where the route template belongs.
    let raw_path = event(&format!("/clients/{}/jobs", uuid::Uuid::new_v4()), 6.0);
    let (status, head, body) = post(serde_json::json!({"events": [event("/ok", 7.0), raw_path]})).await;
    assert_eq!(status, 400, "{body}");
    assert_names(&head, &body, "events[1].route");
    assert_eq!(s.stop().await, 2, "only the accepted batch was written");
}

/// Over the `telemetry_ingest` limit: 429 problem+json before the body is looked at, and
/// nothing from the refused batch is written.
async fn ingest_over_its_limit_is_429_and_writes_nothing(t: TestDb) {
    let s = Served::start(t, &[("KEEL_RATE_LIMIT_TELEMETRY_INGEST", "1/1h,burst=1")]).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/telemetry/route-timing");
    let r = c.post(&url).json(&serde_json::json!({"events": [event("/first", 1.0)]})).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = c
        .post(&url)
        .json(&serde_json::json!({"events": [event("/second", 1.0), event("/second", 2.0)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], 429, "{body}");
    // keel-ratelimit's neutral default is about:blank; keel-api names its own problem type.
    assert_eq!(body["type"], "https://keel.dev/problems/rate-limited", "{body}");
    assert_eq!(s.stop().await, 1, "only the admitted batch was written");
}

async fn ingest_switch_and_config(t: TestDb) {
    let s =
        Served::start(t, &[("ROUTE_TELEMETRY_INGEST_DISABLED", "true"), ("ROUTE_TELEMETRY_SAMPLE_RATE", "0.1")]).await;
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/api/telemetry/route-timing"))
        .json(&serde_json::json!({"events": [event("/a", 1.0)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cfg: serde_json::Value = c.get(s.url("/api/telemetry/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(cfg, serde_json::json!({"enabled": true, "sample_rate": 0.1, "admin_sample_rate": 0.2}));
    assert_eq!(s.stop().await, 0);
}

async fn metrics_expose_http_histogram_and_limiters(t: TestDb) {
    let s = start(t).await;
    let c = reqwest::Client::new();
    c.get(s.url("/api/health/live")).send().await.unwrap();
    c.get(s.url("/api/admin/invoices")).send().await.unwrap();
    // Off the public port: 404 problem+json there, served on the metrics listener.
    let r = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c.get(s.metrics_url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 404, "the metrics listener serves /metrics only");
    let r = c.post(s.metrics_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c.get(s.metrics_url("/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains("# TYPE http_server_request_duration_seconds histogram"), "{text}");
    assert!(text.contains("route=\"/api/health/live\""), "route template label: {text}");
    assert!(!text.contains("route=\"/api/admin/invoices/"), "no raw paths");
    assert!(text.contains("keel_ratelimit_allowed_total{policy=\"admin_api\"} 1"), "{text}");
    assert!(text.contains("keel_cache_hits_total{bucket=\"dashboard\"}"), "{text}");
    assert!(text.contains("keel_queue_jobs{state=\"pending\"} 0"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "unparseable sample line: {line}");
    }
}

/// A client choosing its own sample rate would choose its own weight in the report (0.0001: one
/// event counted as 10,000 requests): only the rates `/api/telemetry/config` publishes pass.
async fn only_published_sample_rates_are_accepted(t: TestDb) {
    let s = Served::start(t, &[]).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/telemetry/route-timing");
    let cfg: serde_json::Value = c.get(s.url("/api/telemetry/config")).send().await.unwrap().json().await.unwrap();
    let mut forged = event("/fake/x", 59_000.0);
    forged["sample_rate"] = serde_json::json!(0.0001);
    let r = c.post(&url).json(&serde_json::json!({"events": [event("/ok", 1.0), forged]})).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "events[1].sample_rate", "{body}");
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    // The literal body is not accepted either.
    let literal = serde_json::json!({"route": "/fake/x", "duration_ms": 59000, "sample_rate": 0.0001});
    let r = c.post(&url).json(&literal).send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Each published rate is accepted, on any route.
    let mut admin_rate = event("/ok", 2.0);
    admin_rate["sample_rate"] = cfg["admin_sample_rate"].clone();
    let mut public_rate = event("/admin/invoices", 3.0);
    public_rate["sample_rate"] = cfg["sample_rate"].clone();
    let r = c.post(&url).json(&serde_json::json!({"events": [admin_rate, public_rate]})).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(s.stop().await, 2, "only the batch with published rates was stored");
}

/// With `ROUTE_TELEMETRY_MAX_ROUTES=2`, a day keeps two distinct browser routes; every later
/// one is stored under `other`, and a route already kept stays itself.
async fn routes_beyond_the_daily_bound_are_stored_as_other(t: TestDb) {
    let s = Served::start(t, &[("ROUTE_TELEMETRY_MAX_ROUTES", "2")]).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/telemetry/route-timing");
    for batch in [
        vec![event("/a", 1.0), event("/b", 1.0)],
        vec![event("/fake/one", 1.0), event("/a", 2.0), event("/fake/two", 1.0), event("/fake/three", 1.0)],
    ] {
        let r = c.post(&url).json(&serde_json::json!({ "events": batch })).send().await.unwrap();
        assert_eq!(r.status(), 202);
    }
    s.shutdown.cancel();
    s.task.await.unwrap().unwrap();
    let db = &s.t.db;
    assert_eq!(stored(db).await, 6);
    let q = "SELECT route, count(*) FROM route_performance_events WHERE kind <> 'server' GROUP BY route ORDER BY route";
    let rows: Vec<(String, i64)> = match db {
        Db::Postgres(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
        Db::Sqlite(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
    };
    assert_eq!(rows, [("/a".to_owned(), 2), ("/b".to_owned(), 1), ("other".to_owned(), 3)]);
}
