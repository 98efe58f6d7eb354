//! Telemetry shared by every Keel binary: logging setup and redaction, route timing from the
//! server and from browsers, Prometheus metrics, and the production telemetry report.
#![doc = include_str!("../README.md")]
//!
//! ## Invariants
//!
//! **Architecture Invariant:** every log line that could carry a recipient goes through
//! [`redact`]; email addresses appear as `j***@example.com`.
//!
//! **Architecture Invariant:** the request path never waits on the database for telemetry:
//! samples go into a bounded buffer ([`RouteRecorder`]) and a background [`RouteWriter`] inserts
//! them in batches; a full buffer drops and counts.
//!
//! **Architecture Invariant:** route percentiles have one definition, weighted nearest rank
//! (see [`percentile`]), computed identically in SQL and in Rust.
//!
//! **API Boundary:** transport-free; the server-side timing layer is behind the `tower`
//! feature, OpenTelemetry export behind `otel`, and the binaries own the HTTP routes and the CLI.
#![deny(missing_docs)]

mod buffer;
mod error;
mod ingest;
#[cfg(feature = "tower")]
mod layer;
mod logging;
pub mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
mod otel_settings;
pub mod percentile;
mod redact;
pub mod report;
mod route;
mod route_cap;
mod sample;
mod settings;
mod store;

mod schema;
pub use buffer::{route_pipeline, RecorderStats, RouteRecorder, RouteWriter, WriterConfig};
pub use error::TelemetryError;
pub use ingest::{
    check_sample_rates, parse_ingest, FieldProblem, IngestError, MAX_BODY_BYTES, MAX_CLOCK_SKEW, MAX_EVENTS,
    MAX_EVENT_AGE, MAX_PROBLEMS,
};
#[cfg(feature = "tower")]
pub use layer::{RouteTiming, RouteTimingLayer};
pub use logging::{init_logging, init_telemetry, LoggingError, TelemetryGuard};
pub use metrics::{Exposition, MetricsRegistry, CONTENT_TYPE as METRICS_CONTENT_TYPE};
pub use otel_settings::{OtelConfigError, OtelSettings, RootSampler, TraceSampler, DEFAULT_OTLP_TIMEOUT};
pub use percentile::{route_percentiles, weighted_nearest_rank, PercentileEngine, RoutePercentiles};
pub use redact::redact;
pub use report::{build_report, ReportError, ReportOptions, ReportStep, TelemetryReport};
pub use route::{RouteTemplate, MAX_ROUTE_LEN};
pub use route_cap::{cap_browser_routes, DEFAULT_MAX_ROUTES, OTHER_ROUTE};
pub use sample::{normalize_method, RouteSample, SampleKind, SampleRate, MAX_DURATION};
pub use schema::{migrate, SCHEMA};
pub use settings::{is_admin_route, ClientConfig, TelemetrySettings, DEFAULT_RETENTION_DAYS, MAX_MAX_ROUTES};
pub use store::{insert_samples, prune_events};
