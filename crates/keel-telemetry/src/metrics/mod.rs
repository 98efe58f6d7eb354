//! Metrics for `/metrics`: families checked against Prometheus' naming rules when they are
//! registered, held in a prometheus-client registry that writes the exposition.
//!
//! Why prometheus-client rather than the `metrics` facade and its Prometheus exporter: Keel's
//! domain crates keep their own counters and know no metrics crate; the binaries register
//! *pull closures* that read them at scrape time. prometheus-client's `Collector` is exactly
//! that shape (asked for its samples at each encode), with no global recorder in between. It is
//! typed (a counter's value cannot be set, a histogram's buckets are cumulative and its `+Inf`
//! bucket equals `_count` by construction), its registry is a plain value (tests build as many
//! as they like), it is the Prometheus project's own Rust client, and it writes both the
//! Prometheus text format (0.0.4) and OpenMetrics 1.0, chosen per scrape from `Accept`.

mod desc;
mod http;
mod lint;
mod pool;
mod pull;
mod registry;
mod series;

pub use desc::{FamilyDesc, MetricsError, Sample};
pub use http::{
    status_class, HttpServerMetrics, HTTP_DURATION_BUCKETS, HTTP_DURATION_METRIC, MAX_HTTP_SERIES, OVERFLOW_ROUTE,
    UNMATCHED_ROUTE,
};
pub use pool::register_pool_metrics;
pub use pull::PushedFamily;
pub use registry::{Exposition, MetricsRegistry};
pub use series::{CounterFamily, HistogramFamily, OVERFLOW_LABEL};

/// `Content-Type` of the Prometheus text format (0.0.4), the default exposition.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of OpenMetrics 1.0, sent when the scraper's `Accept` asks for it.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metric types this registry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (`_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations.
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

    pub(crate) fn prometheus(self) -> prometheus_client::metrics::MetricType {
        use prometheus_client::metrics::MetricType;
        match self {
            Self::Counter => MetricType::Counter,
            Self::Gauge => MetricType::Gauge,
            Self::Histogram => MetricType::Histogram,
        }
    }
}
