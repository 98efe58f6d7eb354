//! Unauthenticated telemetry cannot steer the report: only published sample rates pass, and a
//! day keeps a bounded number of distinct browser routes (later ones become `other`).

use crate::{minutes_ago, now, sample};
use chrono::Duration as ChronoDuration;
use keel_storage::Db;
use keel_telemetry::{cap_browser_routes, check_sample_rates, prune_events, SampleKind, SampleRate, TelemetrySettings};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(routes_beyond_the_daily_bound_become_other, the_bound_is_shared_by_writers_and_counted_per_day);

fn routes(samples: &[keel_telemetry::RouteSample]) -> Vec<&str> {
    samples.iter().map(|s| s.route().as_str()).collect()
}

async fn admitted(db: &Db) -> i64 {
    let q = "SELECT count(*) FROM keel_telemetry_route_days";
    match db {
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

async fn routes_beyond_the_daily_bound_become_other(t: TestDb) {
    let nav = |r: &str| sample(r, SampleKind::Navigation, 1_000, 0.05, minutes_ago(1));
    let mut batch = vec![
        nav("/b"),
        nav("/a"),
        sample("/api/x", SampleKind::Server, 1_000, 1.0, minutes_ago(1)),
        nav("/c"),
        nav("/b"),
        sample("/fake/one", SampleKind::Api, 1_000, 0.05, minutes_ago(1)),
    ];
    let rewritten = cap_browser_routes(&t.db, &mut batch, 2).await.unwrap();
    assert_eq!(rewritten, 2);
    assert_eq!(
        routes(&batch),
        ["/b", "/a", "/api/x", "other", "/b", "other"],
        "the first two routes seen are kept; server samples are never capped"
    );
    // A later batch the same day: kept routes stay, new ones are `other`.
    let mut later = vec![nav("/a"), nav("/d")];
    assert_eq!(cap_browser_routes(&t.db, &mut later, 2).await.unwrap(), 1);
    assert_eq!(routes(&later), ["/a", "other"]);
    assert_eq!(admitted(&t.db).await, 2);
}

async fn the_bound_is_shared_by_writers_and_counted_per_day(t: TestDb) {
    let today = now();
    let yesterday = now() - ChronoDuration::days(1);
    let at = |r: &str, when| sample(r, SampleKind::Navigation, 1_000, 0.05, when);
    let mut a = vec![at("/one", today), at("/two", yesterday)];
    let mut b = vec![at("/three", today), at("/four", yesterday)];
    // Two writers (two processes) over one database share the count.
    let (ra, rb) = tokio::join!(cap_browser_routes(&t.db, &mut a, 1), cap_browser_routes(&t.db, &mut b, 1));
    assert_eq!(ra.unwrap() + rb.unwrap(), 2, "one route per day admitted in all: {a:?} {b:?}");
    assert_eq!(admitted(&t.db).await, 2);
    // Pruning forgets the admitted routes of days past retention with the events.
    prune_events(&t.db, 1, today + ChronoDuration::days(1)).await.unwrap();
    assert_eq!(admitted(&t.db).await, 1, "only today's admission is kept");
}

#[test]
fn only_published_rates_pass() {
    let settings = TelemetrySettings::default();
    let published = settings.published_rates();
    assert_eq!(published, [SampleRate::new(0.05).unwrap(), SampleRate::new(0.2).unwrap()]);
    let ok =
        vec![sample("/a", SampleKind::Navigation, 1, 0.05, now()), sample("/admin/x", SampleKind::Api, 1, 0.2, now())];
    check_sample_rates(&ok, &published).unwrap();
    let forged = vec![
        sample("/a", SampleKind::Navigation, 1, 0.05, now()),
        sample("/fake/x", SampleKind::Navigation, 59_000_000, 0.0001, now()),
    ];
    let e = check_sample_rates(&forged, &published).unwrap_err();
    assert_eq!(e.http_status(), 422);
    let problems = e.problems();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "events[1].sample_rate");
    assert!(problems[0].message.contains("/api/telemetry/config") && problems[0].message.contains("0.05"), "{e}");
    let off = TelemetrySettings { sample_rate: 0.0, admin_sample_rate: 0.0, ..TelemetrySettings::default() };
    assert!(off.published_rates().is_empty());
    assert!(check_sample_rates(&ok, &off.published_rates()).is_err(), "sampling off admits no event");
}
