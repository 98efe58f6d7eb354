//! `http_server_request_duration_seconds`: the OpenTelemetry HTTP server duration histogram.

use super::text;
use crate::sample::normalize_method;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The histogram's name, OpenTelemetry's `http.server.request.duration` in Prometheus form.
pub const HTTP_DURATION_METRIC: &str = "http_server_request_duration_seconds";

/// OpenTelemetry's advisory bucket boundaries for `http.server.request.duration`, in seconds.
pub const HTTP_DURATION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// The same boundaries in nanoseconds, so bucketing compares integers and a request of exactly
/// 5 ms lands in `le="0.005"` as the format requires.
const BUCKET_NANOS: [u64; 14] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    750_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    7_500_000_000,
    10_000_000_000,
];

/// Most distinct label sets kept; later new ones are folded into `route="_other"` so a
/// misbehaving route function cannot grow the exposition without bound.
pub const MAX_HTTP_SERIES: usize = 5_000;
/// The route label of requests no route matched (404s from scanners, mostly).
pub const UNMATCHED_ROUTE: &str = "_unmatched";
/// The route label once [`MAX_HTTP_SERIES`] is reached.
pub const OVERFLOW_ROUTE: &str = "_other";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    route: String,
    method: &'static str,
    status_class: &'static str,
}

#[derive(Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is above the largest boundary.
    buckets: [AtomicU64; 15],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// Counts every request by method, route template and status class. Cheap to share
/// (`Arc<HttpServerMetrics>`); observing is lock-free after a series' first request.
#[derive(Default)]
pub struct HttpServerMetrics {
    series: DashMap<SeriesKey, Histogram>,
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
        Self::default()
    }

    /// Records one request. `route` is the matched template, `None` when no route matched.
    pub fn observe(&self, method: &str, route: Option<&str>, status: u16, duration: Duration) {
        let mut key = SeriesKey {
            route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
            method: normalize_method(method),
            status_class: status_class(status),
        };
        if !self.series.contains_key(&key) && self.series.len() >= MAX_HTTP_SERIES {
            key.route = OVERFLOW_ROUTE.to_owned();
        }
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let slot = BUCKET_NANOS.iter().position(|b| nanos <= *b).unwrap_or(BUCKET_NANOS.len());
        let h = self.series.entry(key).or_default();
        h.buckets[slot].fetch_add(1, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Requests observed so far for one label set (tests and diagnostics).
    pub fn count(&self, method: &str, route: &str, status: u16) -> u64 {
        let key =
            SeriesKey { route: route.to_owned(), method: normalize_method(method), status_class: status_class(status) };
        self.series.get(&key).map(|h| h.count.load(Ordering::Relaxed)).unwrap_or(0)
    }

    pub(crate) fn render(&self, out: &mut String) {
        text::header(
            out,
            HTTP_DURATION_METRIC,
            "Duration of HTTP server requests, by method, route template and status class.",
            "histogram",
        );
        let mut rows: Vec<(SeriesKey, [u64; 15], u64, u64)> = self
            .series
            .iter()
            .map(|e| {
                let h = e.value();
                let b = std::array::from_fn(|i| h.buckets[i].load(Ordering::Relaxed));
                (e.key().clone(), b, h.count.load(Ordering::Relaxed), h.sum_nanos.load(Ordering::Relaxed))
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let bucket_name = format!("{HTTP_DURATION_METRIC}_bucket");
        let sum_name = format!("{HTTP_DURATION_METRIC}_sum");
        let count_name = format!("{HTTP_DURATION_METRIC}_count");
        for (k, buckets, _, sum_nanos) in rows {
            let base = [("method", k.method), ("route", k.route.as_str()), ("status_class", k.status_class)];
            // The buckets are read one by one while requests keep arriving; the total is
            // derived from them so `+Inf` always equals `_count` and the counts stay cumulative.
            let mut cumulative = 0u64;
            for (i, le) in HTTP_DURATION_BUCKETS.iter().enumerate() {
                cumulative += buckets[i];
                let le = le.to_string();
                text::sample(out, &bucket_name, &[base[0], base[1], base[2], ("le", &le)], cumulative as f64);
            }
            cumulative += buckets[14];
            text::sample(out, &bucket_name, &[base[0], base[1], base[2], ("le", "+Inf")], cumulative as f64);
            text::sample(out, &sum_name, &base, sum_nanos as f64 / 1e9);
            text::sample(out, &count_name, &base, cumulative as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_inclusive_and_match_the_seconds_table() {
        for (b, s) in BUCKET_NANOS.iter().zip(HTTP_DURATION_BUCKETS) {
            assert_eq!(*b as f64 / 1e9, s);
        }
        let m = HttpServerMetrics::new();
        m.observe("GET", Some("/a"), 200, Duration::from_millis(5));
        m.observe("GET", Some("/a"), 204, Duration::from_nanos(5_000_001));
        m.observe("GET", Some("/a"), 200, Duration::from_secs(11));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",status_class=\"2xx\",le=\"0.005\"} 1\n"
        ));
        assert!(out.contains(
            "http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",status_class=\"2xx\",le=\"0.01\"} 2\n"
        ));
        assert!(out.contains(
            "http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",status_class=\"2xx\",le=\"10\"} 2\n"
        ));
        assert!(out.contains(
            "http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",status_class=\"2xx\",le=\"+Inf\"} 3\n"
        ));
        assert!(out.contains(
            "http_server_request_duration_seconds_sum{method=\"GET\",route=\"/a\",status_class=\"2xx\"} 11.010000001\n"
        ));
    }

    #[test]
    fn series_are_capped() {
        let m = HttpServerMetrics::new();
        for i in 0..MAX_HTTP_SERIES + 10 {
            m.observe("GET", Some(&format!("/r{i}")), 200, Duration::from_millis(1));
        }
        assert_eq!(m.series.len(), MAX_HTTP_SERIES + 1);
        assert_eq!(m.count("GET", OVERFLOW_ROUTE, 200), 10);
        let m = HttpServerMetrics::new();
        m.observe("BREW", None, 418, Duration::from_millis(1));
        assert_eq!(m.count("_OTHER", UNMATCHED_ROUTE, 404), 1, "same class 4xx, method folded");
    }
}
