//! Ingest parsing: every problem names its field, and a batch is accepted whole or not at all.

use crate::{count_rows, now};
use keel_telemetry::{
    insert_samples, parse_ingest, route_pipeline, IngestError, SampleKind, WriterConfig, MAX_BODY_BYTES,
};
use keel_testkit::{backend_tests, TestDb};
use serde_json::{json, Value};

fn event() -> Value {
    json!({"route": "/clients/:id", "kind": "navigation", "duration_ms": 123.4, "status": 200,
           "occurred_at": "2026-05-20T11:59:00Z", "sample_rate": 0.05})
}

fn body(events: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "events": events })).unwrap()
}

fn fields(e: &IngestError) -> Vec<String> {
    e.problems().into_iter().map(|p| p.field).collect()
}

#[test]
fn a_valid_batch_becomes_samples() {
    let mut api = event();
    api["kind"] = json!("api");
    api["occurred_at"] = json!(now().timestamp_millis() - 1000);
    api.as_object_mut().unwrap().remove("status");
    let samples = parse_ingest(&body(vec![event(), api]), now()).unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].route().as_str(), "/clients/:id");
    assert_eq!(samples[0].kind(), SampleKind::Navigation);
    assert_eq!(samples[0].duration_us(), 123_400);
    assert_eq!(samples[0].status(), Some(200));
    assert_eq!(samples[0].sample_rate().weight(), 20_000_000);
    assert_eq!(samples[1].kind(), SampleKind::Api);
    assert_eq!(samples[1].status(), None);
    assert_eq!(samples[1].occurred_at().timestamp_millis(), now().timestamp_millis() - 1000);
}

#[test]
fn each_problem_names_the_field_and_index() {
    let mut events: Vec<Value> = (0..8).map(|_| event()).collect();
    events[1]["kind"] = json!("click");
    events[2]["duration_ms"] = json!(-1);
    events[3]["duration_ms"] = json!(600_001);
    events[4]["route"] = json!("/clients/8f14e45f-ceea-467f-a0e6-3c2b1d5e0f7a");
    events[5]["sample_rate"] = json!(0);
    events[6]["sample_rate"] = json!(1.5);
    events[7]["route"] = json!("/jobs/42");
    let e = parse_ingest(&body(events), now()).unwrap_err();
    assert_eq!(e.http_status(), 400);
    assert_eq!(
        fields(&e),
        [
            "events[1].kind",
            "events[2].duration_ms",
            "events[3].duration_ms",
            "events[4].route",
            "events[5].sample_rate",
            "events[6].sample_rate",
            "events[7].route"
        ]
    );
    let msgs: Vec<String> = e.problems().into_iter().map(|p| p.message).collect();
    assert!(msgs[0].contains("\"navigation\" or \"api\""), "{}", msgs[0]);
    assert!(msgs[1].contains("negative"));
    assert!(msgs[2].contains("10 minute"));
    assert!(msgs[3].contains("UUID") && msgs[3].contains("template"));
    assert!(msgs[6].contains("numeric id"));
    assert!(e.to_string().starts_with("events[1].kind: "), "{e}");
}

#[test]
fn missing_wrong_typed_unknown_and_time_fields() {
    let mut a = event();
    a.as_object_mut().unwrap().remove("route");
    let mut b = event();
    b["duration_ms"] = json!("fast");
    let mut c = event();
    c["extra"] = json!(1);
    let mut d = event();
    d["occurred_at"] = json!("yesterday");
    let mut f = event();
    f["occurred_at"] = json!("2026-05-01T00:00:00Z");
    let mut g = event();
    g["occurred_at"] = json!("2026-05-20T12:06:00Z");
    let mut h = event();
    h["status"] = json!(42);
    let e = parse_ingest(&body(vec![a, b, c, d, f, g, h]), now()).unwrap_err();
    assert_eq!(
        fields(&e),
        [
            "events[0].route",
            "events[1].duration_ms",
            "events[2].extra",
            "events[3].occurred_at",
            "events[4].occurred_at",
            "events[5].occurred_at",
            "events[6].status"
        ]
    );
    let e = parse_ingest(br#"{"events": 3, "more": true}"#, now()).unwrap_err();
    assert_eq!(fields(&e), ["more", "events"]);
    let e = parse_ingest(br#"[1]"#, now()).unwrap_err();
    assert_eq!(fields(&e), ["body"]);
}

#[test]
fn malformed_and_oversized_bodies() {
    let e = parse_ingest(b"{\"events\": [", now()).unwrap_err();
    assert!(matches!(e, IngestError::Malformed(_)));
    assert_eq!((e.http_status(), fields(&e)), (400, vec!["body".to_owned()]));
    let e = parse_ingest(&body((0..101).map(|_| event()).collect()), now()).unwrap_err();
    assert_eq!(e, IngestError::TooManyEvents { count: 101 });
    assert_eq!((e.http_status(), fields(&e)), (413, vec!["events".to_owned()]));
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let e = parse_ingest(&big, now()).unwrap_err();
    assert_eq!(e.http_status(), 413);
    assert!(parse_ingest(&body((0..100).map(|_| event()).collect()), now()).is_ok());
}

#[test]
fn problems_are_capped() {
    let events: Vec<Value> = (0..60).map(|_| json!({"kind": "x"})).collect();
    let e = parse_ingest(&body(events), now()).unwrap_err();
    assert_eq!(e.problems().len(), keel_telemetry::MAX_PROBLEMS);
}

backend_tests!(a_batch_with_one_bad_event_writes_nothing, a_batch_that_does_not_fit_is_dropped_whole);

async fn a_batch_with_one_bad_event_writes_nothing(t: TestDb) {
    let mut events: Vec<Value> = (0..50).map(|_| event()).collect();
    events[49]["duration_ms"] = json!(-5);
    let res = parse_ingest(&body(events.clone()), now());
    assert_eq!(fields(&res.clone().unwrap_err()), ["events[49].duration_ms"]);
    // The handler only writes what parsed; nothing did.
    let (recorder, writer) = route_pipeline(t.db.clone(), WriterConfig::default());
    if let Ok(samples) = res {
        recorder.record_all(samples);
    }
    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    writer.run(stop).await;
    assert_eq!(count_rows(&t.db).await, 0);
    // The same batch fixed is written whole, atomically.
    events[49]["duration_ms"] = json!(5);
    let samples = parse_ingest(&body(events), now()).unwrap();
    assert_eq!(insert_samples(&t.db, &samples).await.unwrap(), 50);
    assert_eq!(count_rows(&t.db).await, 50);
}

async fn a_batch_that_does_not_fit_is_dropped_whole(t: TestDb) {
    let (recorder, writer) = route_pipeline(t.db.clone(), WriterConfig { capacity: 60, ..WriterConfig::default() });
    let batch = |n| parse_ingest(&body((0..n).map(|_| event()).collect()), now()).unwrap();
    assert!(recorder.record_all(batch(40)));
    assert!(!recorder.record_all(batch(30)), "30 more do not fit in 60");
    assert!(recorder.record_all(batch(20)));
    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    let stats = writer.run(stop).await;
    assert_eq!((stats.recorded, stats.dropped, stats.written), (60, 30, 60));
    assert_eq!(count_rows(&t.db).await, 60);
}
