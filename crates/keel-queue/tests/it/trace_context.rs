//! `keel_jobs.trace_context` (migration 0003): enqueue inside a traced span stores the span's
//! W3C context and a claim hands it back; outside one, or without an OpenTelemetry layer, it
//! stays NULL. (The worker's span continuing it is tested in `src/trace.rs` and, across real
//! processes, by keel-api's `otel` test.) Also: a cron run is a span of its own.

use crate::support::{claim_all, fixture};
use keel_queue::{NewJob, QueueError, MAX_TRACE_CONTEXT_BYTES};
use keel_testkit::{backend_tests, TestDb};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use serde_json::json;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

backend_tests!(enqueue_in_a_traced_span_stores_its_context_and_a_claim_returns_it, bad_trace_context_is_refused);

fn job(n: u32) -> NewJob {
    NewJob::new("report.build", &json!({ "n": n })).unwrap()
}

async fn enqueue_in_a_traced_span_stores_its_context_and_a_claim_returns_it(t: TestDb) {
    let f = fixture(t);
    let untraced = f.store.enqueue(job(0)).await.unwrap().id();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // The test body is polled on this thread, so a thread-local subscriber sees the enqueues.
    let guard = tracing::subscriber::set_default(subscriber);
    let span = tracing::info_span!("request");
    let sc = span.context().span().span_context().clone();
    let expected = format!("00-{}-{}-01", sc.trace_id(), sc.span_id());
    let (one, many) = async {
        let one = f.store.enqueue(job(1)).await.unwrap().id();
        let many = f.store.enqueue_many(vec![job(2), job(3)]).await.unwrap();
        (one, many)
    }
    .instrument(span.clone())
    .await;
    let outside = f.store.enqueue(job(4)).await.unwrap().id();
    let given = f.store.enqueue(job(5).trace_context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01;k=v"));
    let given = given.await.unwrap().id();
    drop(guard);

    for id in [one, many[0].id(), many[1].id()] {
        assert_eq!(f.store.get(id).await.unwrap().unwrap().trace_context.as_deref(), Some(expected.as_str()));
    }
    for id in [untraced, outside] {
        assert_eq!(f.store.get(id).await.unwrap().unwrap().trace_context, None, "no span, no context");
    }
    let claimed = claim_all(&f.store, "default", 10).await;
    assert_eq!(claimed.len(), 6);
    let of = |id| claimed.iter().find(|j| j.id == id).unwrap().trace_context.clone();
    assert_eq!(of(one).as_deref(), Some(expected.as_str()), "the claimed row carries it to the worker");
    assert_eq!(of(given).as_deref(), Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01;k=v"));
    assert_eq!(of(untraced), None);
}

async fn bad_trace_context_is_refused(t: TestDb) {
    let f = fixture(t);
    let long = "x".repeat(MAX_TRACE_CONTEXT_BYTES + 1);
    match f.store.enqueue(job(1).trace_context(&long)).await {
        Err(QueueError::Invalid { field, .. }) => assert_eq!(field, "trace context"),
        other => panic!("expected the field named, got {other:?}"),
    }
}

/// A scheduled-task run is a `cron.run` span of its own (scheduled work continues no request).
/// On a current-thread runtime, so the run's spawned task sees this thread's subscriber.
async fn a_cron_run_is_a_span(t: TestDb) {
    use keel_queue::cron::{CronTick, FnTask, Schedule};
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let s = seen.clone();
    let task = FnTask::new("digest", Schedule::every(std::time::Duration::from_secs(3600)), move |_| {
        let s = s.clone();
        async move {
            *s.lock().unwrap() = tracing::Span::current().metadata().map(|m| m.name());
            Ok(1)
        }
    });
    let f = fixture(t);
    let w = keel_queue::Worker::new(f.store.clone(), keel_queue::Registry::new(), crate::worker::settings(1, 5))
        .with_task(task);
    assert!(matches!(w.cron_tick("digest").await.unwrap(), CronTick::Ran { .. }));
    assert_eq!(*seen.lock().unwrap(), Some("cron.run"));
}

#[tokio::test]
async fn a_cron_run_is_a_span_on_sqlite() {
    a_cron_run_is_a_span(TestDb::sqlite(crate::SCHEMAS).await).await;
}

#[tokio::test]
async fn a_cron_run_is_a_span_on_postgres() {
    if let Some(t) = TestDb::postgres("trace_context::a_cron_run_is_a_span", crate::SCHEMAS).await {
        a_cron_run_is_a_span(t).await;
    }
}
