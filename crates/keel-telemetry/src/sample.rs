//! [`RouteSample`]: one timed request or navigation, as stored in `route_performance_events`.

use crate::RouteTemplate;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// Longest duration stored; anything longer is recorded as exactly this (browser ingest refuses
/// it instead, as an absurd value). Ten minutes is far past any request timeout we run with.
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// Where a sample came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    /// The API server's own timing layer: handler time for one request.
    Server,
    /// A browser page navigation (navigation timing).
    Navigation,
    /// A same-origin API call timed by the browser or an API client (includes the network).
    Api,
}

impl SampleKind {
    /// The stored name: `server`, `navigation` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Navigation => "navigation",
            Self::Api => "api",
        }
    }

    pub(crate) fn from_db(s: &str) -> Option<SampleKind> {
        match s {
            "server" => Some(Self::Server),
            "navigation" => Some(Self::Navigation),
            "api" => Some(Self::Api),
            _ => None,
        }
    }
}

/// A sampling probability in (0, 1], kept in parts per million so that its weight
/// (1 / rate, in micro-samples) is an exact integer both here and in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleRate(u32);

impl SampleRate {
    /// Every event recorded: the rate of server-side samples.
    pub const ONE: SampleRate = SampleRate(1_000_000);

    /// Parses a rate; the smallest accepted is 0.000001 (one in a million).
    pub fn new(rate: f64) -> Result<SampleRate, String> {
        if !rate.is_finite() || rate <= 0.0 || rate > 1.0 {
            return Err(format!("must be greater than 0 and at most 1 (the fraction of events sampled), got {rate}"));
        }
        let ppm = (rate * 1_000_000.0).round();
        if ppm < 1.0 {
            return Err(format!("must be at least 0.000001 (one in a million), got {rate}"));
        }
        Ok(SampleRate(ppm as u32))
    }

    /// The rate as a fraction, like 0.05.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1_000_000.0
    }

    /// How many events this one stands for, in millionths: round(10^6 / rate). 1,000,000 for a
    /// rate of 1; 20,000,000 for 0.05.
    pub fn weight(self) -> i64 {
        let ppm = u64::from(self.0);
        ((1_000_000_000_000 + ppm / 2) / ppm) as i64
    }
}

/// One timing. Built by the timing layer ([`RouteSample::server`]), by ingest parsing, or by
/// [`RouteSample::new`]; always valid for the table's constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSample {
    route: RouteTemplate,
    kind: SampleKind,
    method: Option<&'static str>,
    status: Option<u16>,
    duration_us: i64,
    sample_rate: SampleRate,
    occurred_at: DateTime<Utc>,
}

impl RouteSample {
    /// `duration` above [`MAX_DURATION`] is stored as `MAX_DURATION`; a method outside the
    /// standard nine is stored as `_OTHER`; a status outside 100..=599 is stored as unknown.
    pub fn new(
        route: RouteTemplate,
        kind: SampleKind,
        method: Option<&str>,
        status: Option<u16>,
        duration: Duration,
        sample_rate: SampleRate,
        occurred_at: DateTime<Utc>,
    ) -> RouteSample {
        let duration_us = duration.min(MAX_DURATION).as_micros() as i64;
        RouteSample {
            route,
            kind,
            method: method.map(normalize_method),
            status: status.filter(|s| (100..=599).contains(s)),
            duration_us,
            sample_rate,
            occurred_at,
        }
    }

    /// A request timed by the server: every request is recorded (rate 1), see the crate docs.
    pub fn server(route: RouteTemplate, method: &str, status: u16, duration: Duration, at: DateTime<Utc>) -> Self {
        Self::new(route, SampleKind::Server, Some(method), Some(status), duration, SampleRate::ONE, at)
    }

    /// The route template timed.
    pub fn route(&self) -> &RouteTemplate {
        &self.route
    }
    /// Files the sample under another route (the daily route bound's [`crate::OTHER_ROUTE`]).
    pub(crate) fn set_route(&mut self, route: RouteTemplate) {
        self.route = route;
    }
    /// Where the sample came from.
    pub fn kind(&self) -> SampleKind {
        self.kind
    }
    /// The HTTP method (normalized), when known.
    pub fn method(&self) -> Option<&'static str> {
        self.method
    }
    /// The response status, when known and in 100..=599.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
    /// The duration in microseconds, at most [`MAX_DURATION`].
    pub fn duration_us(&self) -> i64 {
        self.duration_us
    }
    /// The probability with which this sample was taken.
    pub fn sample_rate(&self) -> SampleRate {
        self.sample_rate
    }
    /// When the request or navigation happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }
}

/// The OpenTelemetry method set; anything else is `_OTHER` so a client cannot mint label values.
pub fn normalize_method(m: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    KNOWN.iter().find(|k| k.eq_ignore_ascii_case(m)).copied().unwrap_or("_OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_exact_inverse_rates() {
        assert_eq!(SampleRate::ONE.weight(), 1_000_000);
        assert_eq!(SampleRate::new(0.05).unwrap().weight(), 20_000_000);
        assert_eq!(SampleRate::new(0.2).unwrap().weight(), 5_000_000);
        assert_eq!(SampleRate::new(0.3).unwrap().weight(), 3_333_333);
        assert_eq!(SampleRate::new(0.000001).unwrap().weight(), 1_000_000_000_000);
        assert_eq!(SampleRate::new(0.05).unwrap().as_f64(), 0.05);
    }

    #[test]
    fn rates_outside_the_unit_interval_are_refused() {
        for bad in [0.0, -0.1, 1.0001, f64::NAN, f64::INFINITY, 0.0000004] {
            assert!(SampleRate::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_samples_are_bounded_and_normalised() {
        let at = Utc::now();
        let r = RouteTemplate::from_router("/x");
        let s = RouteSample::server(r.clone(), "get", 200, Duration::from_millis(1500), at);
        assert_eq!((s.method(), s.status(), s.duration_us()), (Some("GET"), Some(200), 1_500_000));
        let s = RouteSample::server(r, "BREW", 999, Duration::from_secs(3600), at);
        assert_eq!((s.method(), s.status(), s.duration_us()), (Some("_OTHER"), None, 600_000_000));
    }
}
