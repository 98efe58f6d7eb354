//! Extra sections: present only when asked for, bounded by their own timeout, never blocking.

use crate::support::{builder, ms, Sleeper};
use keel_health::{section_fn, CheckError, CheckStatus, OverallStatus};
use serde_json::{json, Value};
use tokio::time::Instant;

fn queue(delay_ms: u64) -> impl keel_health::Section {
    section_fn("queue", move |_| async move {
        tokio::time::sleep(ms(delay_ms)).await;
        Ok(json!({ "pending": 3, "processing": 1, "retrying": 0, "dead_letter": 0, "oldest_pending_age_s": 12 }))
    })
    .timeout(ms(500))
}

#[tokio::test(start_paused = true)]
async fn a_section_appears_only_in_the_report_that_asks_for_it() {
    let svc = builder(ms(2_000)).check(Sleeper::new("database", ms(1))).section(queue(10)).build().unwrap();

    let public = serde_json::to_value(svc.check().await).unwrap();
    assert!(public.get("queue").is_none());

    let internal = serde_json::to_string(&svc.check_with_sections().await).unwrap();
    // A section's value is a serde_json::Value, whose object keys serialize sorted.
    assert_eq!(
        internal,
        r#"{"status":"ok","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"ok"},"queue":{"dead_letter":0,"oldest_pending_age_s":12,"pending":3,"processing":1,"retrying":0}}"#
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_section_says_it_timed_out_at_its_own_timeout_and_does_not_degrade() {
    let svc = builder(ms(2_000)).check(Sleeper::new("database", ms(1))).section(queue(60_000)).build().unwrap();

    let t0 = Instant::now();
    let report = svc.check_with_sections().await;

    assert_eq!(t0.elapsed(), ms(500));
    assert_eq!(report.status(), OverallStatus::Ok);
    let body = serde_json::to_value(&report).unwrap();
    assert_eq!(body["queue"], json!({ "timed_out": true }));
    assert_eq!(report.section("queue").unwrap().status, CheckStatus::Timeout);
}

#[tokio::test(start_paused = true)]
async fn a_section_without_its_own_timeout_is_cut_at_the_deadline() {
    let svc = builder(ms(1_500))
        .section(section_fn("queue", |_| futures::future::pending::<Result<Value, CheckError>>()))
        .build()
        .unwrap();

    let t0 = Instant::now();
    let body = serde_json::to_value(svc.check_with_sections().await).unwrap();

    assert_eq!(t0.elapsed(), ms(1_500));
    assert_eq!(body["queue"], json!({ "timed_out": true }));
}

#[tokio::test(start_paused = true)]
async fn a_failed_section_shows_only_its_public_detail() {
    let svc = builder(ms(2_000))
        .section(section_fn("queue", |_| async {
            Err(CheckError::error("relation \"jobs\" does not exist").with_detail("queue tables missing"))
        }))
        .section(section_fn("other", |_| async { Err(CheckError::error("secret internals")) }))
        .build()
        .unwrap();

    let report = svc.check_with_sections().await;
    let body = serde_json::to_value(&report).unwrap();

    assert_eq!(body["queue"], json!({ "error": "queue tables missing" }));
    assert_eq!(body["other"], json!({ "error": "unavailable" }));
    assert_eq!(report.section("queue").unwrap().cause.as_deref(), Some("relation \"jobs\" does not exist"));
    assert!(report.is_ok());
}

#[tokio::test(start_paused = true)]
async fn sections_and_checks_share_the_deadline_instead_of_adding_up() {
    let svc = builder(ms(2_000)).check(Sleeper::new("database", ms(400))).section(queue(450)).build().unwrap();

    let t0 = Instant::now();
    let report = svc.check_with_sections().await;

    assert_eq!(t0.elapsed(), ms(450));
    assert_eq!(report.section("queue").unwrap().status, CheckStatus::Ok);
}
