//! The report on both backends: percentiles equal an independent computation, the verdict
//! follows the SLOs, and the sections that need PostgreSQL say so on SQLite.

use crate::percentiles::{data_set, independent};
use crate::{minutes_ago, now, sample};
use keel_money::{Currency, Money};
use keel_telemetry::report::{
    ConnectionsSection, CostInputs, CostOutcome, LoadTarget, Slo, SloOutcome, StatementsSection, MIN_P99_SAMPLES,
    NO_ANCHOR, STOP_CONDITION,
};
use keel_telemetry::{build_report, insert_samples, ReportError, ReportOptions, ReportStep, RouteSample, SampleKind};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    report_percentiles_match_an_independent_computation,
    slos_met_give_the_stop_condition,
    breaching_routes_are_listed_and_rendered,
    sqlite_sections_say_postgres_only,
    a_failing_section_fails_the_report,
    an_unreachable_database_fails_the_report
);

async fn report_percentiles_match_an_independent_computation(t: TestDb) {
    let data = data_set(9);
    let samples: Vec<RouteSample> = data.iter().map(|(s, _)| s.clone()).collect();
    insert_samples(&t.db, &samples).await.unwrap();
    let mut steps = Vec::new();
    let r = build_report(&t.db, &ReportOptions::default(), now(), &mut |s| steps.push(s)).await.unwrap();
    assert_eq!(steps, [ReportStep::Routes, ReportStep::Statements, ReportStep::Connections, ReportStep::Verdict]);
    let expected = independent(&data);
    assert_eq!(r.routes.routes_seen, expected.len());
    assert_eq!(r.routes.top_by_p95.len(), 10);
    for row in r.routes.top_by_p95.iter().chain(&r.routes.top_by_p99) {
        let (n, [p50, p95, p99]) = expected[&(row.kind, row.route.clone())];
        assert_eq!((row.samples, row.p50_us, row.p95_us), (n, p50, p95));
        assert_eq!(row.p99_us, (n >= MIN_P99_SAMPLES).then_some(p99));
    }
    // Sorted slowest first, and the p95 table really holds the ten slowest.
    let mut all_p95: Vec<i64> = expected.values().map(|(_, p)| p[1]).collect();
    all_p95.sort_unstable_by(|a, b| b.cmp(a));
    let shown: Vec<i64> = r.routes.top_by_p95.iter().map(|x| x.p95_us).collect();
    assert_eq!(shown, all_p95[..10]);
    // "/single" routes have one sample: listed by p95 maybe, never ranked by p99.
    assert!(r.routes.top_by_p99.iter().all(|x| x.samples >= MIN_P99_SAMPLES && x.route != "/single"));
    assert_eq!(r.routes.p99_withheld, expected.values().filter(|(n, _)| *n < MIN_P99_SAMPLES).count());
    assert_eq!(r.verdict.slo.outcome, SloOutcome::NotConfigured);
    assert!(r.verdict.load_target.text.contains(NO_ANCHOR));
    assert_eq!(r.verdict.cost.outcome, CostOutcome::NotGiven);
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["routes"]["top_by_p95"][0]["p95_us"], r.routes.top_by_p95[0].p95_us);
}

fn fast_routes() -> Vec<RouteSample> {
    let mut v = Vec::new();
    for i in 0..150u64 {
        v.push(sample("/fast", SampleKind::Server, 1_000 + i * 1_000, 1.0, minutes_ago(10)));
    }
    for i in 0..5u64 {
        v.push(sample("/rare", SampleKind::Navigation, 100_000 * (i + 1), 0.05, minutes_ago(10)));
    }
    v
}

async fn slos_met_give_the_stop_condition(t: TestDb) {
    insert_samples(&t.db, &fast_routes()).await.unwrap();
    let opts = ReportOptions {
        slo: Slo { p95_ms: Some(800), p99_ms: Some(2000) },
        load_target: Some("500 sessions by 2026-09-01: spring launch".parse::<LoadTarget>().unwrap()),
        cost: CostInputs::new(
            Some(Money::parse("240.00", Currency::USD).unwrap()),
            Some(Money::parse("4000", Currency::USD).unwrap()),
            false,
        )
        .unwrap(),
        ..ReportOptions::default()
    };
    let r = build_report(&t.db, &opts, now(), &mut |_| {}).await.unwrap();
    assert_eq!(r.verdict.slo.outcome, SloOutcome::Met);
    assert_eq!(r.verdict.slo.p99_not_judged, ["navigation /rare"]);
    assert_eq!(r.verdict.cost.outcome, CostOutcome::WithinCeiling);
    let md = r.to_markdown();
    assert!(md.contains(STOP_CONDITION), "{md}");
    assert!(md.contains("500 simultaneous authenticated active sessions by 2026-09-01: spring launch"));
    assert!(
        md.contains("| 1 | navigation | `/rare` | 5 | 100 | 300.000 | 500.000 | not enough samples (< 100) |"),
        "{md}"
    );
    assert!(md.contains("| 1 | server | `/fast` | 150 | 150 | 75.000 | 143.000 | 149.000 |"), "{md}");
}

async fn breaching_routes_are_listed_and_rendered(t: TestDb) {
    let mut v = fast_routes();
    for i in 0..200u64 {
        v.push(sample("/slow/:id", SampleKind::Api, 900_000 + i, 0.2, minutes_ago(30)));
    }
    insert_samples(&t.db, &v).await.unwrap();
    let opts = ReportOptions {
        slo: Slo { p95_ms: Some(800), p99_ms: None },
        cost: CostInputs::new(Some(Money::parse("300", Currency::USD).unwrap()), None, false).unwrap(),
        ..ReportOptions::default()
    };
    let r = build_report(&t.db, &opts, now(), &mut |_| {}).await.unwrap();
    assert_eq!(r.verdict.slo.outcome, SloOutcome::Breached);
    assert_eq!(r.verdict.slo.breaches.len(), 1);
    assert_eq!(r.verdict.slo.breaches[0].route, "/slow/:id");
    assert_eq!(r.verdict.slo.breaches[0].measured_us, 900_189, "p95 of 200 equal-weight samples is the 190th");
    assert_eq!(r.verdict.cost.outcome, CostOutcome::NeedsOwnerApproval);
    let md = r.to_markdown();
    assert!(md.contains("api `/slow/:id` p95: 900.189 ms > 800 ms (200 samples)"), "{md}");
    assert!(md.contains("needs owner approval"));
    assert!(!md.contains(STOP_CONDITION));
}

async fn sqlite_sections_say_postgres_only(t: TestDb) {
    let r = build_report(&t.db, &ReportOptions::default(), now(), &mut |_| {}).await.unwrap();
    assert_eq!(r.routes.routes_seen, 0);
    let md = r.to_markdown();
    match t.db.backend() {
        keel_storage::Backend::Sqlite => {
            assert_eq!(r.routes.computed_in, "rust");
            assert!(matches!(r.statements, StatementsSection::PostgresOnly { .. }));
            assert!(matches!(r.connections, ConnectionsSection::PostgresOnly { .. }));
            assert!(md.contains("pg_stat_statements is PostgreSQL-only"), "{md}");
            assert!(md.contains("The connection snapshot (pg_stat_activity) is PostgreSQL-only"));
        }
        keel_storage::Backend::Postgres => {
            assert_eq!(r.routes.computed_in, "database");
            assert!(matches!(r.connections, ConnectionsSection::Snapshot(_)));
            assert!(md.contains("## Connection snapshot"));
        }
    }
    let bad = ReportOptions { days: 0, ..ReportOptions::default() };
    assert!(matches!(build_report(&t.db, &bad, now(), &mut |_| {}).await, Err(ReportError::Days(0))));
}

async fn a_failing_section_fails_the_report(t: TestDb) {
    // The table the route section reads is gone: the report must fail, naming the section,
    // instead of rendering without it.
    let drop = "DROP TABLE route_performance_events";
    match &t.db {
        keel_storage::Db::Postgres(p) => sqlx::query(drop).execute(p).await.map(drop_ok).unwrap(),
        keel_storage::Db::Sqlite(p) => sqlx::query(drop).execute(p).await.map(drop_ok).unwrap(),
    };
    let e = build_report(&t.db, &ReportOptions::default(), now(), &mut |_| {}).await.unwrap_err();
    assert!(matches!(e, ReportError::Section { section: "route percentiles", .. }), "{e}");
    assert!(e.to_string().contains("route percentiles section failed"), "{e}");
}

fn drop_ok<T>(_: T) {}

async fn an_unreachable_database_fails_the_report(t: TestDb) {
    t.db.close().await;
    let e = build_report(&t.db, &ReportOptions::default(), now(), &mut |_| {}).await.unwrap_err();
    assert!(matches!(e, ReportError::Section { section: "database connection", .. }), "{e}");
}
