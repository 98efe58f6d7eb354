//! State changes are logged once per change, with the cause, not on every probe.

use crate::support::{builder, ms, pinned, Capture};
use keel_health::{
    check_fn, CheckError, CheckOutcome, CheckStatus, Criticality, HealthReport, OverallStatus, StateTracker,
};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn report(db: CheckStatus, cause: &str) -> HealthReport {
    let outcome = CheckOutcome {
        name: "database".into(),
        criticality: Criticality::Required,
        status: db,
        detail: None,
        cause: (db != CheckStatus::Ok).then(|| cause.to_owned()),
        elapsed: Duration::ZERO,
    };
    HealthReport::new(pinned(), vec![outcome])
}

#[test]
fn only_changes_are_transitions() {
    let tracker = StateTracker::new();
    let ok = report(CheckStatus::Ok, "");
    let timeout = report(CheckStatus::Timeout, "statement_timeout");
    let error = report(CheckStatus::Error, "connection refused");

    assert_eq!(tracker.observe(&ok), None, "starting healthy is not news");
    let t = tracker.observe(&timeout).unwrap();
    assert_eq!((t.from.status, t.to.status), (OverallStatus::Ok, OverallStatus::Degraded));
    assert_eq!(t.causes, vec![("database".to_owned(), "statement_timeout".to_owned())]);
    assert_eq!(tracker.observe(&timeout), None);
    assert_eq!(tracker.observe(&timeout), None);
    let t = tracker.observe(&error).unwrap();
    assert_eq!(t.to.failing, vec![("database".to_owned(), CheckStatus::Error)]);
    assert_eq!(tracker.observe(&error), None);
    let t = tracker.observe(&ok).unwrap();
    assert_eq!((t.from.status, t.to.status), (OverallStatus::Degraded, OverallStatus::Ok));
    assert_eq!(tracker.observe(&ok), None);
    assert_eq!(tracker.current().status, OverallStatus::Ok);
}

#[tokio::test(start_paused = true)]
async fn a_service_logs_degraded_once_with_the_cause_and_recovery_once() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    // 0 = healthy, 1 = refusing
    let mode = Arc::new(AtomicU8::new(1));
    let m = mode.clone();
    let svc = builder(ms(2_000))
        .check(check_fn("database", move |_| {
            let down = m.load(Ordering::SeqCst) == 1;
            async move {
                if down {
                    Err(CheckError::error("connection refused (os error 111)"))
                } else {
                    Ok(())
                }
            }
        }))
        .build()
        .unwrap();

    for _ in 0..5 {
        assert_eq!(svc.check().await.status(), OverallStatus::Degraded);
    }
    mode.store(0, Ordering::SeqCst);
    for _ in 0..5 {
        assert!(svc.check().await.is_ok());
    }

    let logs = capture.text();
    assert_eq!(logs.matches("health degraded").count(), 1, "{logs}");
    assert_eq!(logs.matches("health recovered").count(), 1, "{logs}");
    assert!(logs.contains("database: connection refused (os error 111)"), "{logs}");
    assert!(logs.contains("database=error"), "{logs}");
}

#[tokio::test(start_paused = true)]
async fn a_thousand_probes_of_a_degraded_service_log_once() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    let svc = builder(ms(300))
        .check(check_fn("database", |_| futures::future::pending::<Result<(), CheckError>>()))
        .build()
        .unwrap();

    for _ in 0..10 {
        futures::future::join_all((0..100).map(|_| svc.check())).await;
    }

    assert_eq!(capture.text().matches("health degraded").count(), 1);
}
