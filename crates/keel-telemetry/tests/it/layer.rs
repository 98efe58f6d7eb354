//! The timing layer: every request reaches the histogram; requests with a template also reach
//! the buffer as server samples at rate 1; requests without one are never stored.

use http::{Request, Response, StatusCode};
use keel_telemetry::metrics::UNMATCHED_ROUTE;
use keel_telemetry::{route_pipeline, MetricsRegistry, RouteTimingLayer, SampleKind, WriterConfig};
use keel_testkit::TestDb;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::{Layer, ServiceExt};

/// What a router would put in the request: the matched template.
#[derive(Clone)]
struct Matched(&'static str);

#[tokio::test]
async fn records_template_method_status_and_duration() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let (rec, writer) = route_pipeline(t.db.clone(), WriterConfig::default());
    let reg = MetricsRegistry::new();
    let layer = RouteTimingLayer::new(reg.http(), Some(rec.clone()), |req: &Request<()>| {
        req.extensions().get::<Matched>().map(|m| m.0.to_owned())
    });
    let svc = layer.layer(tower::service_fn(|req: Request<()>| async move {
        let status = if req.uri().path().ends_with("/missing") { StatusCode::NOT_FOUND } else { StatusCode::OK };
        Ok::<_, Infallible>(Response::builder().status(status).body(()).unwrap())
    }));

    let mut req = Request::builder().method("PATCH").uri("/clients/8f14e45f/jobs/42").body(()).unwrap();
    req.extensions_mut().insert(Matched("/clients/{id}/jobs/{job_id}"));
    assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
    let req = Request::builder().uri("/wp-admin/missing").body(()).unwrap();
    assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), StatusCode::NOT_FOUND);

    let http = reg.http();
    assert_eq!(http.count("PATCH", "/clients/{id}/jobs/{job_id}", 200), 1);
    assert_eq!(http.count("GET", UNMATCHED_ROUTE, 404), 1);
    assert!(!reg.render().contains("8f14e45f"), "the raw path never becomes a label");

    let stop = CancellationToken::new();
    stop.cancel();
    let stats = writer.run(stop).await;
    assert_eq!((stats.recorded, stats.written), (1, 1), "only the matched request is stored");
    let row: (String, String, Option<String>, Option<i64>, f64, i64) =
        sqlx::query_as("SELECT route, kind, method, status, sample_rate, duration_us FROM route_performance_events")
            .fetch_one(t.db.sqlite().unwrap())
            .await
            .unwrap();
    assert_eq!(
        (row.0.as_str(), row.1.as_str(), row.2.as_deref(), row.3, row.4),
        ("/clients/{id}/jobs/{job_id}", SampleKind::Server.as_str(), Some("PATCH"), Some(200), 1.0)
    );
    assert!(row.5 >= 0);
}

#[tokio::test]
async fn measures_time_spent_in_the_inner_service() {
    tokio::time::pause();
    let reg = MetricsRegistry::new();
    let layer = RouteTimingLayer::new(reg.http(), None, |_: &Request<()>| Some("/slow".to_owned()));
    let svc = layer.layer(tower::service_fn(|_req: Request<()>| async move {
        // Virtual time: the layer's Instant sees exactly this much.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<_, Infallible>(Response::new(()))
    }));
    svc.oneshot(Request::new(())).await.unwrap();
    let text = reg.render();
    let line = |le: &str| {
        format!("http_server_request_duration_seconds_bucket{{method=\"GET\",route=\"/slow\",status_class=\"2xx\",le=\"{le}\"}}")
    };
    assert!(text.contains(&format!("{} 0\n", line("0.25"))), "{text}");
    assert!(text.contains(&format!("{} 1\n", line("0.5"))), "{text}");
}
