//! One percentile definition: the SQL engine, the Rust engine and an independent computation
//! agree on the same rows, on both backends.

use crate::{minutes_ago, now, sample, Rng};
use chrono::Duration as ChronoDuration;
use keel_telemetry::{insert_samples, route_percentiles, PercentileEngine, RouteSample, SampleKind};
use keel_testkit::{backend_tests, TestDb};
use std::collections::BTreeMap;

/// Rates whose inverse is a whole number, so the independent computation can expand each
/// sample into `1 / rate` copies and take the plain nearest rank.
const RATES: [(f64, usize); 5] = [(1.0, 1), (0.5, 2), (0.25, 4), (0.2, 5), (0.05, 20)];

pub(crate) fn data_set(seed: u64) -> Vec<(RouteSample, usize)> {
    let mut rng = Rng::new(seed);
    let routes = ["/a", "/b/:id", "/c/{id}/items", "/admin/clients/:id", "/single"];
    let kinds = [SampleKind::Server, SampleKind::Navigation, SampleKind::Api];
    let mut out = Vec::new();
    for (ri, route) in routes.iter().enumerate() {
        for kind in kinds {
            let n = if *route == "/single" { 1 } else { 40 + rng.below(300) as usize };
            for _ in 0..n {
                let (rate, copies) = RATES[rng.below(RATES.len() as u64) as usize];
                // Durations on a coarse grid, so ties are frequent.
                let d = (rng.below(200) + 1) * 250 * (ri as u64 + 1);
                out.push((sample(route, kind, d, rate, minutes_ago(rng.below(7 * 24 * 60) as i64)), copies));
            }
        }
    }
    out
}

/// Plain nearest rank over the expanded population: the ceil(p/100 · n)-th smallest value.
pub(crate) fn independent(data: &[(RouteSample, usize)]) -> BTreeMap<(SampleKind, String), (u64, [i64; 3])> {
    let mut groups: BTreeMap<(SampleKind, String), (u64, Vec<i64>)> = BTreeMap::new();
    for (s, copies) in data {
        if s.occurred_at() < now() - ChronoDuration::days(7) || s.occurred_at() >= now() {
            continue;
        }
        let g = groups.entry((s.kind(), s.route().as_str().to_owned())).or_default();
        g.0 += 1;
        g.1.extend(std::iter::repeat_n(s.duration_us(), *copies));
    }
    groups
        .into_iter()
        .map(|(k, (n, mut v))| {
            v.sort_unstable();
            let rank = |p: usize| v[(p * v.len()).div_ceil(100) - 1];
            (k, (n, [rank(50), rank(95), rank(99)]))
        })
        .collect()
}

backend_tests!(engines_and_independent_computation_agree, non_integer_weights_agree_across_engines);

async fn engines_and_independent_computation_agree(t: TestDb) {
    let mut data = data_set(42);
    // Outside the window on both sides: must not count.
    data.push((sample("/a", SampleKind::Server, 999_999_000, 1.0, now() - ChronoDuration::days(8)), 1));
    data.push((sample("/a", SampleKind::Server, 999_999_000, 1.0, now() + ChronoDuration::seconds(1)), 1));
    let samples: Vec<RouteSample> = data.iter().map(|(s, _)| s.clone()).collect();
    insert_samples(&t.db, &samples).await.unwrap();
    let (from, to) = (now() - ChronoDuration::days(7), now());
    let expected = independent(&data);
    let rust = route_percentiles(&t.db, from, to, PercentileEngine::Rust).await.unwrap();
    let auto = route_percentiles(&t.db, from, to, PercentileEngine::Auto).await.unwrap();
    assert_eq!(rust, auto, "the database engine (Postgres) or Rust (SQLite) gives the same numbers");
    assert_eq!(rust.len(), expected.len());
    for r in &rust {
        let (n, [p50, p95, p99]) = expected[&(r.kind, r.route.clone())];
        assert_eq!((r.samples, r.p50_us, r.p95_us, r.p99_us), (n, p50, p95, p99), "{:?} {}", r.kind, r.route);
    }
    if t.db.backend() == keel_storage::Backend::Postgres {
        let sql = route_percentiles(&t.db, from, to, PercentileEngine::Database).await.unwrap();
        assert_eq!(sql, rust);
    } else {
        assert!(route_percentiles(&t.db, from, to, PercentileEngine::Database).await.is_err());
    }
}

async fn non_integer_weights_agree_across_engines(t: TestDb) {
    let mut rng = Rng::new(7);
    let rates = [0.3, 0.07, 0.011, 1.0, 0.000001, 0.123457];
    let samples: Vec<RouteSample> = (0..3000)
        .map(|_| {
            let rate = rates[rng.below(rates.len() as u64) as usize];
            let route = ["/x", "/y", "/z"][rng.below(3) as usize];
            sample(route, SampleKind::Api, rng.below(600_000_000), rate, minutes_ago(5))
        })
        .collect();
    insert_samples(&t.db, &samples).await.unwrap();
    let (from, to) = (now() - ChronoDuration::days(1), now());
    let rust = route_percentiles(&t.db, from, to, PercentileEngine::Rust).await.unwrap();
    let auto = route_percentiles(&t.db, from, to, PercentileEngine::Auto).await.unwrap();
    assert_eq!(rust, auto);
    assert_eq!(rust.iter().map(|r| r.samples).sum::<u64>(), 3000);
    let total: u128 = samples.iter().map(|s| s.sample_rate().weight() as u128).sum();
    assert_eq!(rust.iter().map(|r| r.weight_micros).sum::<u128>(), total, "weights summed exactly");
}
