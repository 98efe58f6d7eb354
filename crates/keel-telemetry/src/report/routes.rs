//! The slow-route tables: top routes by p95 and by p99 over the window.

use super::verdict::MIN_P99_SAMPLES;
use crate::percentile::RoutePercentiles;
use crate::SampleKind;
use serde::Serialize;

/// Routes listed in each table.
pub const TOP_ROUTES: usize = 10;

/// One route in a slow-route table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteRow {
    /// Where the samples came from.
    pub kind: SampleKind,
    /// The route template.
    pub route: String,
    /// Stored samples.
    pub samples: u64,
    /// Requests the samples stand for (each weighted by 1 / sample rate).
    pub estimated_requests: f64,
    /// Median, in microseconds.
    pub p50_us: i64,
    /// 95th percentile, in microseconds.
    pub p95_us: i64,
    /// `None` below [`MIN_P99_SAMPLES`] samples: "not enough samples".
    pub p99_us: Option<i64>,
}

/// The report's route section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutesSection {
    /// "database" (Postgres window functions) or "rust" (SQLite).
    pub computed_in: &'static str,
    /// Stored samples in the window, every route.
    pub total_samples: u64,
    /// Requests those samples stand for.
    pub estimated_requests: f64,
    /// Distinct (kind, route) pairs seen.
    pub routes_seen: usize,
    /// Samples a route needs for its p99 to be shown ([`MIN_P99_SAMPLES`]).
    pub min_p99_samples: u64,
    /// The [`TOP_ROUTES`] slowest by p95.
    pub top_by_p95: Vec<RouteRow>,
    /// The [`TOP_ROUTES`] slowest by p99, among routes with enough samples.
    pub top_by_p99: Vec<RouteRow>,
    /// Routes left out of the p99 table for having fewer than `min_p99_samples` samples.
    pub p99_withheld: usize,
}

fn row(r: &RoutePercentiles) -> RouteRow {
    RouteRow {
        kind: r.kind,
        route: r.route.clone(),
        samples: r.samples,
        estimated_requests: r.estimated_requests(),
        p50_us: r.p50_us,
        p95_us: r.p95_us,
        p99_us: (r.samples >= MIN_P99_SAMPLES).then_some(r.p99_us),
    }
}

pub(crate) fn routes_section(all: &[RoutePercentiles], computed_in: &'static str) -> RoutesSection {
    let mut by_p95: Vec<&RoutePercentiles> = all.iter().collect();
    by_p95.sort_by(|a, b| b.p95_us.cmp(&a.p95_us).then_with(|| (a.kind, &a.route).cmp(&(b.kind, &b.route))));
    let mut by_p99: Vec<&RoutePercentiles> = all.iter().filter(|r| r.samples >= MIN_P99_SAMPLES).collect();
    by_p99.sort_by(|a, b| b.p99_us.cmp(&a.p99_us).then_with(|| (a.kind, &a.route).cmp(&(b.kind, &b.route))));
    RoutesSection {
        computed_in,
        total_samples: all.iter().map(|r| r.samples).sum(),
        estimated_requests: all.iter().map(RoutePercentiles::estimated_requests).sum(),
        routes_seen: all.len(),
        min_p99_samples: MIN_P99_SAMPLES,
        p99_withheld: all.len() - by_p99.len(),
        top_by_p95: by_p95.into_iter().take(TOP_ROUTES).map(row).collect(),
        top_by_p99: by_p99.into_iter().take(TOP_ROUTES).map(row).collect(),
    }
}
