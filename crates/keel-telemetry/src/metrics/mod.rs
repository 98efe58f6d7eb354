//! Metrics in the Prometheus text format, written by hand: the HTTP duration histogram plus
//! counter and gauge families that other crates feed through closures or pushed snapshots.

mod http;
mod lint;
mod registry;
mod text;

pub use http::{
    status_class, HttpServerMetrics, HTTP_DURATION_BUCKETS, HTTP_DURATION_METRIC, MAX_HTTP_SERIES, OVERFLOW_ROUTE,
    UNMATCHED_ROUTE,
};
pub use registry::{FamilyDesc, MetricsError, MetricsRegistry, PushedFamily, Sample};
pub use text::CONTENT_TYPE;

/// The metric types this registry renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (`_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations (the HTTP duration histogram).
    Histogram,
}

impl MetricKind {
    /// The `# TYPE` keyword: `counter`, `gauge` or `histogram`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}
