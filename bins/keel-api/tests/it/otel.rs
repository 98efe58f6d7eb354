//! OpenTelemetry across processes, against a real OTLP/HTTP receiver: a request to the real
//! keel-api binary that queues a job, and that job run by a separate real keel-worker process,
//! are one trace, and that trace continues the caller's `traceparent`. The receiver is a small
//! collector on a random port decoding `ExportTraceServiceRequest`s (opentelemetry-proto).

use keel_storage::Db;
use keel_testkit::Proc;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

const API: &str = env!("CARGO_BIN_EXE_keel-api");

/// The caller's context, as a browser or an upstream service would send it.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// keel-worker is a binary of another package, so cargo gives this test no path to it; it is
/// built beside keel-api by `cargo test --workspace` (what `cargo xtask ci` runs).
fn worker_binary() -> PathBuf {
    let path = std::path::Path::new(API).with_file_name(format!("keel-worker{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} is missing: run `cargo build -p keel-worker` (or test the workspace)", path.display());
    path
}

/// One exported span, as the receiver decoded it.
#[derive(Debug, Clone)]
struct Recorded {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter().map(|kv| (kv.key.clone(), text(&kv.value))).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode(body: &[u8]) -> Result<Vec<Recorded>, prost::DecodeError> {
    let req = ExportTraceServiceRequest::decode(body)?;
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = rs.resource.map(|r| attrs(&r.attributes)).unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            out.push(Recorded {
                service: service.clone(),
                name: span.name,
                kind: span.kind,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: attrs(&span.attributes),
            });
        }
    }
    Ok(out)
}

/// The collector: `POST /v1/traces` with a protobuf body, recorded into a watch channel.
async fn receiver() -> (SocketAddr, watch::Receiver<Vec<Recorded>>) {
    use axum::body::Bytes;
    use axum::http::{header, HeaderMap, StatusCode};
    let (tx, rx) = watch::channel(Vec::new());
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
                if ct != "application/x-protobuf" {
                    return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
                }
                match decode(&body) {
                    Ok(spans) => {
                        tx.send_modify(|all| all.extend(spans));
                        // An empty ExportTraceServiceResponse: full success.
                        (StatusCode::OK, Vec::new())
                    }
                    Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

#[test]
fn a_request_and_the_job_it_queued_are_one_trace_across_processes_on_postgres() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let Some(t) = rt.block_on(keel_testkit::TestDb::postgres("otel::one_trace", crate::SCHEMAS)) else { return };
    one_trace_across_processes(&rt, &t);
    drop(t);
}

#[test]
fn a_request_and_the_job_it_queued_are_one_trace_across_processes_on_sqlite() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let t = rt.block_on(keel_testkit::TestDb::sqlite(crate::SCHEMAS));
    one_trace_across_processes(&rt, &t);
    drop(t);
}

/// The job row's stored context (`trace_context`, in `keel_jobs` or, once completed on
/// PostgreSQL, in `keel_jobs_completed`).
async fn stored_context(db: &Db, job: &str) -> Option<String> {
    match db {
        Db::Sqlite(p) => {
            sqlx::query_scalar("SELECT trace_context FROM (SELECT * FROM keel_jobs UNION ALL SELECT * FROM keel_jobs_completed) j WHERE id = ?").bind(job).fetch_one(p).await
        }
        Db::Postgres(p) => {
            sqlx::query_scalar("SELECT trace_context FROM (SELECT * FROM keel_jobs UNION ALL SELECT * FROM keel_jobs_completed) j WHERE id = $1::uuid").bind(job).fetch_one(p).await
        }
    }
    .unwrap()
}

/// Without `OTEL_EXPORTER_OTLP_ENDPOINT` nothing is traced: an inbound `traceparent` is not
/// continued, log lines carry no ids, and the queued job stores no context.
#[test]
fn off_when_the_endpoint_is_unset() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let t = rt.block_on(keel_testkit::TestDb::sqlite(crate::SCHEMAS));
    let env = [
        ("KEEL_BIND", "127.0.0.1:0"),
        ("KEEL_METRICS_BIND", "127.0.0.1:0"),
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_EMBEDDED_WORKER", "false"),
    ];
    let mut api = Proc::start(API, &[], &env);
    let addr = api.wait_listening();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{addr}/api/auth/forgot-password"))
            .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
            .json(&serde_json::json!({"email": "nobody@example.com"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 202);
    let queued = api.wait_for(Duration::from_secs(30), |v| v["message"] == "password recovery queued");
    assert!(queued.get("trace_id").is_none() && queued.get("span_id").is_none(), "{queued}");
    let job = queued["job"].as_str().unwrap();
    assert_eq!(rt.block_on(stored_context(&t.db, job)), None);
    api.signal("TERM");
    assert!(api.wait_exit(Duration::from_secs(20)).success(), "{}", api.seen.join("\n"));
    assert!(!api.seen.join("\n").contains(CALLER_TRACE));
    drop(t);
}

fn one_trace_across_processes(rt: &tokio::runtime::Runtime, t: &keel_testkit::TestDb) {
    let database_url = t.url.as_str();
    let (collector, spans) = rt.block_on(receiver());
    let endpoint = format!("http://{collector}");
    let outbox = tempfile::tempdir().unwrap();
    let common = [
        ("DATABASE_URL", database_url),
        ("KEEL_MAIL_OUTBOX_DIR", outbox.path().to_str().unwrap()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        // Export each batch promptly rather than every 5 s (the test waits on the receiver).
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut api_env = vec![
        ("KEEL_BIND", "127.0.0.1:0"),
        ("KEEL_METRICS_BIND", "127.0.0.1:0"),
        // The job must run in the other process.
        ("KEEL_EMBEDDED_WORKER", "false"),
    ];
    api_env.extend(common);
    let mut worker_env = vec![("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0")];
    worker_env.extend(common);
    let mut api = Proc::start(API, &[], &api_env);
    let addr = api.wait_listening();
    let worker_bin = worker_binary();
    let mut worker = Proc::start(worker_bin.to_str().unwrap(), &[], &worker_env);

    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{addr}/api/auth/forgot-password"))
            .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
            .json(&serde_json::json!({"email": "nobody@example.com"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 202);
    let queued = api.wait_for(Duration::from_secs(30), |v| v["message"] == "password recovery queued");
    let job_id = queued["job"].as_str().unwrap().to_owned();

    // Both spans reach the collector: the request's from keel-api, the job's from keel-worker.
    let is_request = |s: &Recorded| {
        s.service == "keel-api" && s.attributes.get("http.route").is_some_and(|r| r == "/api/auth/forgot-password")
    };
    let is_job = |s: &Recorded| s.service == "keel-worker" && s.attributes.get("job.id") == Some(&job_id);
    let got = rt.block_on(async {
        let mut watching = spans.clone();
        let wait = watching.wait_for(|all| all.iter().any(is_request) && all.iter().any(is_job));
        let res = tokio::time::timeout(Duration::from_secs(60), wait).await;
        res.ok().and_then(|r| r.ok().map(|all| all.clone()))
    });
    let Some(all) = got else {
        panic!(
            "the collector did not get both spans; it got: {:#?}\napi:\n{}\nworker:\n{}",
            *spans.borrow(),
            api.seen.join("\n"),
            worker.seen.join("\n")
        )
    };
    let request = all.iter().find(|s| is_request(s)).unwrap();
    let job = all.iter().find(|s| is_job(s)).unwrap();

    // The request span continues the caller's trace and follows the HTTP conventions.
    assert_eq!(request.trace_id, CALLER_TRACE, "{request:#?}");
    assert_eq!(request.parent_span_id, CALLER_SPAN, "{request:#?}");
    assert_eq!(request.name, "POST /api/auth/forgot-password");
    assert_eq!(request.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(request.attributes["http.request.method"], "POST");
    assert_eq!(request.attributes["http.response.status_code"], "202");

    // The job span, in the other process, is the request span's child in the same trace.
    assert_eq!(job.trace_id, CALLER_TRACE, "{job:#?}");
    assert_eq!(job.parent_span_id, request.span_id, "the enqueuing request is the job's parent: {job:#?}");
    assert_eq!(job.kind, 5, "SPAN_KIND_CONSUMER");
    assert_eq!(job.name, "auth.password_reset");
    assert_eq!(job.attributes["job.kind"], "auth.password_reset");
    assert_eq!(job.attributes["job.queue"], "default");
    assert_eq!(job.attributes["job.attempt"], "1");
    assert_eq!(job.attributes["job.outcome"], "completed");

    // The job row carries the request span's context (traceparent, sampled).
    let stored = rt.block_on(stored_context(&t.db, &job_id));
    assert_eq!(stored, Some(format!("00-{CALLER_TRACE}-{}-01", request.span_id)));

    // The shared rate-limit decisions (by IP, then by address) are spans inside the request.
    for policy in ["public_ingress", "password_recovery"] {
        let limit = all.iter().find(|s| {
            s.name == "ratelimit.check"
                && s.parent_span_id == request.span_id
                && s.attributes.get("ratelimit.policy").is_some_and(|p| p == policy)
        });
        let limit = limit.unwrap_or_else(|| panic!("no {policy} rate-limit span under the request: {all:#?}"));
        assert_eq!(limit.attributes["ratelimit.allowed"], "true");
    }

    // Health checks are spans inside the health request.
    let health = rt.block_on(async { reqwest::get(format!("http://{addr}/api/health")).await.unwrap().status() });
    assert_eq!(health, 200);
    let got = rt.block_on(async {
        let mut watching = spans.clone();
        let wait = watching.wait_for(|all| {
            all.iter().any(|r| {
                r.name == "GET /api/health"
                    && all.iter().any(|c| c.name == "health.check" && c.parent_span_id == r.span_id)
            })
        });
        let done = tokio::time::timeout(Duration::from_secs(60), wait).await;
        matches!(done, Ok(Ok(_)))
    });
    assert!(got, "no health.check span under the health request: {:#?}", *spans.borrow());

    // Logs join traces: the API's line inside the request span carries its ids.
    assert_eq!(queued["trace_id"], CALLER_TRACE, "{queued}");
    assert_eq!(queued["span_id"], request.span_id.as_str(), "{queued}");
    let finished = worker.wait_for(Duration::from_secs(30), |v| v["event"] == "password_reset_unknown");
    assert_eq!(finished["trace_id"], CALLER_TRACE, "the worker's log line inside the job span: {finished}");
    assert_eq!(finished["span_id"], job.span_id.as_str(), "{finished}");

    for p in [&mut api, &mut worker] {
        p.signal("TERM");
        let status = p.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "exit {status:?}; logs:\n{}", p.seen.join("\n"));
    }
}
