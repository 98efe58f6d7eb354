//! The report's exact JSON shape.

use crate::support::{builder, ms, Sleeper};
use keel_health::{check_fn, CheckError, HealthConfig, HealthService};

#[tokio::test(start_paused = true)]
async fn a_healthy_report_serializes_exactly() {
    let svc = builder(ms(2_000)).check(Sleeper::new("database", ms(1))).build().unwrap();
    let body = serde_json::to_string(&svc.check().await).unwrap();
    assert_eq!(
        body,
        r#"{"status":"ok","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"ok"}}"#
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_required_service_serializes_as_degraded_timeout() {
    let svc = builder(ms(2_000)).check(Sleeper::new("database", ms(9_000))).build().unwrap();
    let body = serde_json::to_string(&svc.check().await).unwrap();
    assert_eq!(
        body,
        r#"{"status":"degraded","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"timeout"}}"#
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_required_service_serializes_as_degraded_error_without_its_cause() {
    let svc = builder(ms(2_000))
        .check(check_fn("database", |_| async {
            Err(CheckError::error("connect to postgres://keel:hunter2@db/keel failed: SELECT secret FROM t"))
        }))
        .build()
        .unwrap();
    let body = serde_json::to_string(&svc.check().await).unwrap();
    assert_eq!(
        body,
        r#"{"status":"degraded","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"error"}}"#
    );
}

#[tokio::test(start_paused = true)]
async fn services_keep_registration_order_after_app() {
    let svc = builder(ms(2_000))
        .check(Sleeper::new("zeta", ms(1)))
        .check(Sleeper::new("database", ms(1)))
        .check(check_fn("alpha", |_| async { Err(CheckError::error("down")) }).informational())
        .build()
        .unwrap();
    let body = serde_json::to_string(&svc.check().await).unwrap();
    assert_eq!(
        body,
        r#"{"status":"ok","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","zeta":"ok","database":"ok","alpha":"error"}}"#
    );
}

#[tokio::test]
async fn checked_at_from_the_real_clock_is_rfc3339_utc() {
    let svc = HealthService::builder(HealthConfig::default()).build().unwrap();
    let before = chrono::Utc::now();
    let value = serde_json::to_value(svc.check().await).unwrap();
    let at = value["checked_at"].as_str().unwrap();
    assert!(at.ends_with('Z'), "{at}");
    let parsed = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    assert!(parsed >= before - chrono::Duration::milliseconds(1));
}
