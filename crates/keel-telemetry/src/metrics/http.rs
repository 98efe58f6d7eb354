//! `http_server_request_duration_seconds`: the OpenTelemetry HTTP server duration histogram.

use super::desc::FamilyDesc;
use super::series::{HistogramFamily, OVERFLOW_LABEL};
use crate::sample::normalize_method;
use std::time::Duration;

/// The histogram's name, OpenTelemetry's `http.server.request.duration` in Prometheus form.
pub const HTTP_DURATION_METRIC: &str = "http_server_request_duration_seconds";

/// OpenTelemetry's advisory bucket boundaries for `http.server.request.duration`, in seconds.
pub const HTTP_DURATION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Most distinct label sets kept; later new ones are folded into `route="_other"` so a
/// misbehaving route function cannot grow the exposition without bound.
pub const MAX_HTTP_SERIES: usize = 5_000;
/// The route label of requests no route matched (404s from scanners, mostly).
pub const UNMATCHED_ROUTE: &str = "_unmatched";
/// The route label once [`MAX_HTTP_SERIES`] is reached.
pub const OVERFLOW_ROUTE: &str = OVERFLOW_LABEL;

const LABELS: [&str; 3] = ["method", "route", "status_class"];

/// Counts every request by method, route template and status class. Cheap to share
/// (`Arc<HttpServerMetrics>`).
#[derive(Debug, Clone)]
pub struct HttpServerMetrics {
    pub(crate) family: HistogramFamily,
}

impl Default for HttpServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `2xx`, `4xx`…; anything outside 100..=599 is `_OTHER`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "_OTHER",
    }
}

impl HttpServerMetrics {
    /// An empty histogram family.
    pub fn new() -> Self {
        // Name, labels and buckets are fixed here and covered by the tests below.
        let family = FamilyDesc::histogram(
            HTTP_DURATION_METRIC,
            "Duration of HTTP server requests, by method, route template and status class.",
            &LABELS,
        )
        .and_then(|d| HistogramFamily::build(d, &HTTP_DURATION_BUCKETS, MAX_HTTP_SERIES, "route"))
        .unwrap_or_else(|e| unreachable!("the HTTP histogram is static: {e}"));
        Self { family }
    }

    /// Records one request. `route` is the matched template, `None` when no route matched.
    pub fn observe(&self, method: &str, route: Option<&str>, status: u16, duration: Duration) {
        let labels = [normalize_method(method), route.unwrap_or(UNMATCHED_ROUTE), status_class(status)];
        // Three labels, as declared: cannot fail.
        let _ = self.family.observe(&labels, duration.as_secs_f64());
    }

    /// Requests observed so far for one label set (tests and diagnostics).
    pub fn count(&self, method: &str, route: &str, status: u16) -> u64 {
        self.family.count(&[normalize_method(method), route, status_class(status)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsRegistry;

    #[test]
    fn boundaries_are_inclusive() {
        let reg = MetricsRegistry::new();
        let m = reg.http();
        m.observe("GET", Some("/a"), 200, Duration::from_millis(5));
        m.observe("GET", Some("/a"), 204, Duration::from_nanos(5_000_001));
        m.observe("GET", Some("/a"), 200, Duration::from_secs(11));
        let out = reg.render();
        let base = "http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",status_class=\"2xx\"";
        for line in [
            format!("{base},le=\"0.005\"}} 1\n"),
            format!("{base},le=\"0.01\"}} 2\n"),
            format!("{base},le=\"10\"}} 2\n"),
            format!("{base},le=\"+Inf\"}} 3\n"),
            "http_server_request_duration_seconds_sum{method=\"GET\",route=\"/a\",status_class=\"2xx\"} 11.010000001\n"
                .to_owned(),
            "http_server_request_duration_seconds_count{method=\"GET\",route=\"/a\",status_class=\"2xx\"} 3\n"
                .to_owned(),
        ] {
            assert!(out.contains(&line), "{line} in\n{out}");
        }
    }

    #[test]
    fn series_are_capped() {
        let m = HttpServerMetrics::new();
        for i in 0..MAX_HTTP_SERIES + 10 {
            m.observe("GET", Some(&format!("/r{i}")), 200, Duration::from_millis(1));
        }
        assert_eq!(m.family.0.len(), MAX_HTTP_SERIES + 1);
        assert_eq!(m.count("GET", OVERFLOW_ROUTE, 200), 10);
        let m = HttpServerMetrics::new();
        m.observe("BREW", None, 418, Duration::from_millis(1));
        assert_eq!(m.count("_OTHER", UNMATCHED_ROUTE, 404), 1, "same class 4xx, method folded");
    }
}
