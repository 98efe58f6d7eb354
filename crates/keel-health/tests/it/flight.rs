//! Single-flight: a probe storm shares one run; nothing is cached once the run is over.

use crate::support::{builder, ms, Sleeper};
use keel_health::{section_fn, CheckStatus, SingleFlight};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_callers_cause_exactly_one_check_run() {
    let slow = Sleeper::new("database", ms(1_000));
    let runs = slow.started.clone();
    let svc = builder(ms(2_000)).check(slow).build().unwrap();

    let t0 = Instant::now();
    let reports = futures::future::join_all((0..1_000).map(|_| svc.check())).await;

    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(t0.elapsed(), ms(1_000));
    assert_eq!(reports.len(), 1_000);
    assert!(reports.iter().all(|r| r == &reports[0] && r.service("database") == Some(CheckStatus::Ok)));
}

#[tokio::test(start_paused = true)]
async fn a_thousand_spawned_callers_also_share_one_run() {
    let slow = Sleeper::new("database", ms(1_000));
    let runs = slow.started.clone();
    let svc = builder(ms(2_000)).check(slow).build().unwrap();

    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.check().await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }

    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_after_the_run_finished_runs_again() {
    let slow = Sleeper::new("database", ms(1_000));
    let runs = slow.started.clone();
    let svc = builder(ms(2_000)).check(slow).build().unwrap();

    svc.check().await;
    let t1 = Instant::now();
    svc.check().await;

    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(t1.elapsed(), ms(1_000), "the second call waited for a fresh run, not a cached answer");
}

#[tokio::test(start_paused = true)]
async fn a_caller_arriving_mid_run_joins_it_and_waits_only_for_the_rest() {
    let slow = Sleeper::new("database", ms(1_000));
    let runs = slow.started.clone();
    let svc = builder(ms(2_000)).check(slow).build().unwrap();

    let first = tokio::spawn({
        let svc = svc.clone();
        async move { svc.check().await }
    });
    tokio::time::sleep(ms(600)).await;
    let t1 = Instant::now();
    let late = svc.check().await;

    assert_eq!(t1.elapsed(), ms(400));
    assert_eq!(late, first.await.unwrap());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_run_outlives_a_caller_that_gave_up_and_is_not_reused_after_it_ends() {
    let slow = Sleeper::new("database", ms(1_000));
    let (runs, finished) = (slow.started.clone(), slow.finished.clone());
    let svc = builder(ms(2_000)).check(slow).build().unwrap();

    // The first caller gives up (its request was cancelled) halfway through.
    assert!(tokio::time::timeout(ms(500), svc.check()).await.is_err());
    // A caller arriving now joins the same run, which kept going on its own task.
    let t1 = Instant::now();
    assert!(svc.check().await.is_ok());
    assert_eq!(t1.elapsed(), ms(500));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // An abandoned run that finished unobserved is stale: the next caller starts afresh.
    assert!(tokio::time::timeout(ms(100), svc.check()).await.is_err());
    tokio::time::sleep(ms(5_000)).await;
    assert_eq!(finished.load(Ordering::SeqCst), 2);
    let t2 = Instant::now();
    svc.check().await;
    assert_eq!(t2.elapsed(), ms(1_000));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn sections_are_single_flight_too() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let svc = builder(ms(2_000))
        .check(Sleeper::new("database", ms(100)))
        .section(section_fn("queue", move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(ms(300)).await;
                Ok(serde_json::json!({ "pending": 0 }))
            }
        }))
        .build()
        .unwrap();

    let reports = futures::future::join_all((0..200).map(|_| svc.check_with_sections())).await;

    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(reports.iter().all(|r| r.section("queue").is_some()));
}

#[tokio::test(start_paused = true)]
async fn single_flight_is_usable_on_its_own() {
    let flight = SingleFlight::<u32>::new();
    let runs = AtomicUsize::new(0);
    let start = || {
        runs.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(ms(50)).await;
            7
        }
    };
    let (a, b) = futures::future::join(flight.run(start), flight.run(start)).await;
    assert_eq!((a.unwrap(), b.unwrap()), (7, 7));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
