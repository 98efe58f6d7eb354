//! `keel_jobs.trace_context` (migration 0003): enqueue inside a traced span stores the span's
//! W3C context and a claim hands it back; outside one, or without an OpenTelemetry layer, it
//! stays NULL. (The worker's span continuing it is tested in `src/trace.rs` and, across real
//! processes, by keel-api's `otel` test.)

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
