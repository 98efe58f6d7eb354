//! The deadline logic on virtual time: per-check timeouts, the overall cap, concurrency, cancellation.

use crate::support::{builder, ms, Sleeper};
use keel_health::{check_fn, CheckError, CheckStatus, Criticality, OverallStatus};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_check_slower_than_its_timeout_times_out_at_exactly_its_timeout() {
    let slow = Sleeper::new("slow", ms(10_000)).timeout(ms(300));
    let (started, finished) = (slow.started.clone(), slow.finished.clone());
    let svc = builder(ms(2_000)).check(slow).build().unwrap();

    let t0 = Instant::now();
    let report = svc.check().await;

    assert_eq!(t0.elapsed(), ms(300));
    assert_eq!(report.service("slow"), Some(CheckStatus::Timeout));
    assert_eq!(report.outcomes()[0].elapsed, ms(300));
    assert_eq!(report.status(), OverallStatus::Degraded);
    assert_eq!(report.http_status(), 503);
    assert_eq!(started.load(Ordering::SeqCst), 1);
    // Cancelled, not abandoned: long after its sleep would have ended it still never finished.
    tokio::time::sleep(ms(60_000)).await;
    assert_eq!(finished.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn the_overall_deadline_caps_a_check_that_never_answers() {
    let hang = check_fn("hang", |_| futures::future::pending::<Result<(), CheckError>>());
    let svc = builder(ms(2_000)).check(hang).build().unwrap();

    let t0 = Instant::now();
    let report = svc.check().await;

    assert_eq!(t0.elapsed(), ms(2_000));
    assert_eq!(report.service("hang"), Some(CheckStatus::Timeout));
    assert_eq!(report.status(), OverallStatus::Degraded);
}

#[tokio::test(start_paused = true)]
async fn a_check_timeout_above_the_deadline_is_cut_to_the_deadline() {
    let slow = Sleeper::new("slow", ms(10_000)).timeout(ms(5_000));
    let svc = builder(ms(1_000)).check(slow).build().unwrap();

    let t0 = Instant::now();
    let report = svc.check().await;

    assert_eq!(t0.elapsed(), ms(1_000));
    assert_eq!(report.service("slow"), Some(CheckStatus::Timeout));
}

#[tokio::test(start_paused = true)]
async fn checks_run_concurrently_two_1500ms_checks_take_1500ms() {
    let svc =
        builder(ms(2_000)).check(Sleeper::new("one", ms(1_500))).check(Sleeper::new("two", ms(1_500))).build().unwrap();

    let t0 = Instant::now();
    let report = svc.check().await;

    assert_eq!(t0.elapsed(), ms(1_500));
    assert_eq!(report.service("one"), Some(CheckStatus::Ok));
    assert_eq!(report.service("two"), Some(CheckStatus::Ok));
    assert!(report.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_slow_check_does_not_hold_back_the_verdict_of_a_fast_one() {
    let svc = builder(ms(2_000))
        .check(Sleeper::new("fast", ms(10)))
        .check(Sleeper::new("slow", ms(60_000)).timeout(ms(700)))
        .build()
        .unwrap();

    let t0 = Instant::now();
    let report = svc.check().await;

    assert_eq!(t0.elapsed(), ms(700));
    assert_eq!(report.outcomes()[0].elapsed, ms(10));
    assert_eq!(report.service("fast"), Some(CheckStatus::Ok));
    assert_eq!(report.service("slow"), Some(CheckStatus::Timeout));
}

#[tokio::test(start_paused = true)]
async fn each_check_is_told_its_budget() {
    let seen = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let (a, b) = (seen.clone(), seen.clone());
    let svc = builder(ms(2_000))
        .check(
            check_fn("capped", move |budget| {
                a.lock().unwrap().push(budget);
                async { Ok(()) }
            })
            .timeout(ms(250)),
        )
        .check(check_fn("uncapped", move |budget| {
            b.lock().unwrap().push(budget);
            async { Ok(()) }
        }))
        .build()
        .unwrap();

    svc.check().await;

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, vec![ms(250), ms(2_000)]);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_check_is_dropped_right_away() {
    struct Guard(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let svc = builder(ms(2_000))
        .check(
            check_fn("hang", move |_| {
                let guard = Guard(tx.lock().unwrap().take());
                async move {
                    let _guard = guard;
                    futures::future::pending::<Result<(), CheckError>>().await
                }
            })
            .timeout(ms(400)),
        )
        .build()
        .unwrap();

    let t0 = Instant::now();
    assert_eq!(svc.check().await.service("hang"), Some(CheckStatus::Timeout));
    // The guard is dropped only when the check's future is: the abort reached it, and with no
    // further virtual time passing.
    rx.await.unwrap();
    assert_eq!(t0.elapsed(), ms(400));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_an_error_not_a_crash() {
    let svc = builder(ms(2_000))
        .check(check_fn("boom", |_| async { panic!("check exploded") }))
        .check(Sleeper::new("fine", ms(5)))
        .build()
        .unwrap();

    let report = svc.check().await;

    assert_eq!(report.service("boom"), Some(CheckStatus::Error));
    assert_eq!(report.service("fine"), Some(CheckStatus::Ok));
    assert_eq!(report.outcomes()[0].cause.as_deref(), Some("the check panicked"));
}

#[tokio::test(start_paused = true)]
async fn an_informational_failure_keeps_the_status_ok() {
    let svc = builder(ms(2_000))
        .check(check_fn("replica", |_| async { Err(CheckError::error("replica lag 30 s")) }).informational())
        .check(
            check_fn("cache", |_| futures::future::pending::<Result<(), CheckError>>()).informational().timeout(ms(50)),
        )
        .build()
        .unwrap();

    let report = svc.check().await;

    assert_eq!(report.status(), OverallStatus::Ok);
    assert_eq!(report.http_status(), 200);
    assert_eq!(report.service("replica"), Some(CheckStatus::Error));
    assert_eq!(report.service("cache"), Some(CheckStatus::Timeout));
    assert!(report.outcomes().iter().all(|o| o.criticality == Criticality::Informational));
}

#[tokio::test(start_paused = true)]
async fn a_required_failure_degrades_with_its_detail_and_cause_kept_apart() {
    let svc = builder(ms(2_000))
        .check(check_fn("database", |_| async {
            Err(CheckError::error("password authentication failed for user \"keel\"")
                .with_detail("database unreachable"))
        }))
        .build()
        .unwrap();

    let report = svc.check().await;

    assert_eq!(report.status(), OverallStatus::Degraded);
    assert_eq!(report.service("database"), Some(CheckStatus::Error));
    let o = &report.outcomes()[0];
    assert_eq!(o.detail, Some("database unreachable"));
    assert_eq!(o.cause.as_deref(), Some("password authentication failed for user \"keel\""));
}

#[tokio::test(start_paused = true)]
async fn a_check_may_report_its_own_timeout() {
    let svc = builder(ms(2_000))
        .check(check_fn("database", |_| async { Err(CheckError::timeout("server cancelled at statement_timeout")) }))
        .build()
        .unwrap();

    let t0 = Instant::now();
    let report = svc.check().await;

    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(report.service("database"), Some(CheckStatus::Timeout));
}

#[tokio::test(start_paused = true)]
async fn no_checks_means_app_only_and_ok() {
    let svc = builder(ms(2_000)).build().unwrap();
    let report = svc.check().await;
    assert!(report.is_ok());
    assert_eq!(report.service("app"), Some(CheckStatus::Ok));
    assert!(report.outcomes().is_empty());
}

/// A check that blocks its thread (a sync driver call by mistake) cannot hold the answer past
/// the deadline on a multi-threaded runtime, because every check runs on its own task. Real
/// time, so the bound is generous: the check blocks for 3 s, the deadline is 100 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_blocks_its_thread_cannot_hold_the_answer() {
    let svc = builder(ms(100))
        .check(check_fn("blocking", |_| async {
            std::thread::sleep(Duration::from_secs(3));
            Ok(())
        }))
        .build()
        .unwrap();

    let t0 = std::time::Instant::now();
    let report = svc.check().await;

    assert_eq!(report.service("blocking"), Some(CheckStatus::Timeout));
    assert!(t0.elapsed() < Duration::from_secs(2), "answered after {:?}", t0.elapsed());
}
