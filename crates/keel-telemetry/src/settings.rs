//! Route telemetry settings (`ROUTE_TELEMETRY_*`) and the sampling config served to browsers.

use crate::{SampleRate, DEFAULT_MAX_ROUTES};
use keel_config::Reader;
use serde::Serialize;

/// Largest `ROUTE_TELEMETRY_MAX_ROUTES`: beyond it a day's report and its percentile query
/// stop being readable or cheap.
pub const MAX_MAX_ROUTES: u32 = 100_000;

/// Days of route timing kept by default (`ROUTE_TELEMETRY_RETENTION_DAYS`).
pub const DEFAULT_RETENTION_DAYS: u64 = 30;

/// Route telemetry settings (`ROUTE_TELEMETRY_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// `ROUTE_TELEMETRY_ENABLED` (default true): browsers collect timings at all.
    pub enabled: bool,
    /// `ROUTE_TELEMETRY_SAMPLE_RATE` (default 0.05): public and non-admin routes.
    pub sample_rate: f64,
    /// `ROUTE_TELEMETRY_ADMIN_SAMPLE_RATE` (default 0.20): admin routes, sampled more so
    /// regressions on the workhorse pages show up sooner.
    pub admin_sample_rate: f64,
    /// `ROUTE_TELEMETRY_INGEST_DISABLED` (default false): the ingest endpoint answers 204 and
    /// writes nothing, whatever browsers send.
    pub ingest_disabled: bool,
    /// `ROUTE_TELEMETRY_RETENTION_DAYS` (default 30, 1 to 3650).
    pub retention_days: u64,
    /// `ROUTE_TELEMETRY_MAX_ROUTES` (default [`DEFAULT_MAX_ROUTES`], 1 to 100000): distinct
    /// browser routes kept per UTC day; samples of later routes are stored under `other`.
    pub max_routes: u32,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_rate: 0.05,
            admin_sample_rate: 0.20,
            ingest_disabled: false,
            retention_days: DEFAULT_RETENTION_DAYS,
            max_routes: DEFAULT_MAX_ROUTES,
        }
    }
}

/// The body of `GET /api/telemetry/config`: `{"enabled":..,"sample_rate":..,"admin_sample_rate":..}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientConfig {
    /// Whether browsers collect timings at all.
    pub enabled: bool,
    /// The sample rate of public and non-admin routes.
    pub sample_rate: f64,
    /// The sample rate of admin routes.
    pub admin_sample_rate: f64,
}

impl TelemetrySettings {
    /// Reads every `ROUTE_TELEMETRY_*` variable; problems are collected in `r`, each naming the
    /// variable, and the default stands in for a bad value.
    pub fn read(r: &mut Reader<'_>) -> TelemetrySettings {
        let d = TelemetrySettings::default();
        TelemetrySettings {
            enabled: r.bool("ROUTE_TELEMETRY_ENABLED", d.enabled),
            sample_rate: r.fraction("ROUTE_TELEMETRY_SAMPLE_RATE", d.sample_rate),
            admin_sample_rate: r.fraction("ROUTE_TELEMETRY_ADMIN_SAMPLE_RATE", d.admin_sample_rate),
            ingest_disabled: r.bool("ROUTE_TELEMETRY_INGEST_DISABLED", d.ingest_disabled),
            retention_days: r.int_in("ROUTE_TELEMETRY_RETENTION_DAYS", d.retention_days, 1, 3650),
            max_routes: u32::try_from(r.int_in(
                "ROUTE_TELEMETRY_MAX_ROUTES",
                u64::from(d.max_routes),
                1,
                u64::from(MAX_MAX_ROUTES),
            ))
            .unwrap_or(d.max_routes),
        }
    }

    /// The subset of settings a browser needs.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig { enabled: self.enabled, sample_rate: self.sample_rate, admin_sample_rate: self.admin_sample_rate }
    }

    /// The sample rates ingest accepts: those `GET /api/telemetry/config` serves (a rate of 0,
    /// "sample nothing", admits no event).
    pub fn published_rates(&self) -> Vec<SampleRate> {
        let mut rates: Vec<SampleRate> =
            [self.sample_rate, self.admin_sample_rate].into_iter().filter_map(|r| SampleRate::new(r).ok()).collect();
        rates.dedup();
        rates
    }

    /// The sample rate a browser applies to `route`: admin routes use the admin rate.
    pub fn sample_rate_for(&self, route: &str) -> f64 {
        if is_admin_route(route) {
            self.admin_sample_rate
        } else {
            self.sample_rate
        }
    }
}

/// Admin routes are those under `/admin` or `/api/admin`.
pub fn is_admin_route(route: &str) -> bool {
    ["/admin", "/api/admin"].iter().any(|p| route == *p || route.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::MapSource;

    #[test]
    fn defaults_when_unset() {
        let src = MapSource::default();
        let mut r = Reader::new(&src);
        let s = TelemetrySettings::read(&mut r);
        assert!(r.finish().is_ok());
        assert_eq!(s, TelemetrySettings::default());
        assert_eq!(
            serde_json::to_value(s.client_config()).unwrap(),
            serde_json::json!({"enabled": true, "sample_rate": 0.05, "admin_sample_rate": 0.2})
        );
    }

    #[test]
    fn max_routes_is_read_and_bounded() {
        let read = |v: &str| {
            let src = MapSource::new([("ROUTE_TELEMETRY_MAX_ROUTES", v)]);
            let mut r = Reader::new(&src);
            let s = TelemetrySettings::read(&mut r);
            (s.max_routes, r.into_problems().into_iter().map(|p| p.var).collect::<Vec<_>>())
        };
        assert_eq!(TelemetrySettings::default().max_routes, 500);
        assert_eq!(read("20"), (20, vec![]));
        for bad in ["0", "100001", "many"] {
            assert_eq!(read(bad), (500, vec!["ROUTE_TELEMETRY_MAX_ROUTES".to_owned()]), "{bad}");
        }
    }

    #[test]
    fn reads_overrides_and_names_bad_variables() {
        let src = MapSource::new([
            ("ROUTE_TELEMETRY_ENABLED", "false"),
            ("ROUTE_TELEMETRY_SAMPLE_RATE", "0.5"),
            ("ROUTE_TELEMETRY_ADMIN_SAMPLE_RATE", "1.5"),
            ("ROUTE_TELEMETRY_INGEST_DISABLED", "yes"),
            ("ROUTE_TELEMETRY_RETENTION_DAYS", "0"),
        ]);
        let mut r = Reader::new(&src);
        let s = TelemetrySettings::read(&mut r);
        assert!(!s.enabled);
        assert_eq!(s.sample_rate, 0.5);
        assert_eq!(s.admin_sample_rate, 0.20, "a bad value falls back to the default");
        assert!(s.ingest_disabled);
        assert_eq!(s.retention_days, 30);
        let vars: Vec<String> = r.into_problems().into_iter().map(|p| p.var).collect();
        assert_eq!(vars, ["ROUTE_TELEMETRY_ADMIN_SAMPLE_RATE", "ROUTE_TELEMETRY_RETENTION_DAYS"]);
    }

    #[test]
    fn admin_routes_get_the_admin_rate() {
        let s = TelemetrySettings::default();
        assert_eq!(s.sample_rate_for("/admin/clients/:id"), 0.20);
        assert_eq!(s.sample_rate_for("/api/admin"), 0.20);
        assert_eq!(s.sample_rate_for("/administrator"), 0.05);
        assert_eq!(s.sample_rate_for("/quote/:token"), 0.05);
    }
}
