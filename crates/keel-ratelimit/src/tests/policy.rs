//! Policy defaults and `KEEL_RATE_LIMIT_<POLICY>` overrides.

use crate::{Backend, FailureMode, KeyKind, Policies, Quota};
use keel_config::MapSource;
use std::time::Duration;

#[test]
fn defaults_are_the_documented_ones() {
    let p = Policies::defaults();
    let expect = |s: &str| s.parse::<Quota>().unwrap();
    assert_eq!(p.admin_api.quota, expect("60/1m,burst=60"));
    assert_eq!(p.public_ingress.quota, expect("120/1m,burst=60"));
    assert_eq!(p.telemetry_ingest.quota, expect("600/1m,burst=120"));
    assert_eq!(p.password_recovery.quota, expect("5/1h,burst=3"));
    assert_eq!(p.sign_in_failures.quota, expect("10/15m"));
    assert_eq!(p.sign_in_failures.quota.burst(), 10);
    assert_eq!((p.sign_in_failures.key, p.sign_in_failures.backend), (KeyKind::Email, Backend::Shared));
    assert_eq!(p.sign_in_failures.env_var(), "KEEL_RATE_LIMIT_SIGN_IN_FAILURES");
    assert_eq!((p.admin_api.backend, p.admin_api.key), (Backend::InProcess, KeyKind::UserOrClientIp));
    assert_eq!((p.public_ingress.backend, p.public_ingress.on_outage), (Backend::Shared, FailureMode::Closed));
    assert_eq!(p.telemetry_ingest.backend, Backend::InProcess);
    assert_eq!((p.password_recovery.key, p.password_recovery.backend), (KeyKind::Email, Backend::Shared));
    assert_eq!(p.admin_api.env_var(), "KEEL_RATE_LIMIT_ADMIN_API");
    assert_eq!(p.get("telemetry_ingest").unwrap().name, "telemetry_ingest");
    assert!(p.get("nope").is_none());
    assert_eq!(p.iter().count(), 5);
    // Every default, rebuilt through the validating constructor, is identical.
    for policy in p.iter() {
        let q = policy.quota;
        assert_eq!(Quota::new(q.count(), q.period(), q.burst()).unwrap(), q, "{}", policy.name);
    }
    assert_eq!(p.password_recovery.quota.max_in_window(Duration::from_secs(3_600)), 7);
}

#[test]
fn overrides_apply() {
    let src = MapSource::new([
        ("KEEL_RATE_LIMIT_ADMIN_API", "30/1m,burst=10"),
        ("KEEL_RATE_LIMIT_PASSWORD_RECOVERY", "3/hour"),
        ("KEEL_RATE_LIMIT_TELEMETRY_INGEST", "  "),
    ]);
    let p = Policies::from_source(&src).unwrap();
    assert_eq!(p.admin_api.quota.to_string(), "30/1m,burst=10");
    assert_eq!(p.password_recovery.quota.to_string(), "3/1h,burst=3");
    assert_eq!(p.telemetry_ingest.quota, Policies::defaults().telemetry_ingest.quota, "blank means unset");
    let limiter = p.admin_api.in_process_limiter();
    assert_eq!(limiter.policy(), "admin_api");
    assert_eq!(limiter.quota().burst(), 10);
}

#[test]
fn every_problem_names_its_variable() {
    let src = MapSource::new([
        ("KEEL_RATE_LIMIT_ADMIN_API", "60 per minute"),
        ("KEEL_RATE_LIMIT_PUBLIC_INGRESS", "60/1m,burst=0"),
        ("KEEL_RATE_LIMIT_ADMIN", "60/1m"),
        ("KEEL_OTHER", "x"),
    ]);
    let problems = Policies::from_source(&src).unwrap_err().0;
    let vars: Vec<&str> = problems.iter().map(|p| p.var.as_str()).collect();
    assert_eq!(vars, ["KEEL_RATE_LIMIT_ADMIN_API", "KEEL_RATE_LIMIT_PUBLIC_INGRESS", "KEEL_RATE_LIMIT_ADMIN"]);
    assert!(problems[0].message.contains("60/1m,burst=60"), "{}", problems[0].message);
    assert!(problems[1].message.contains("burst \"0\""), "{}", problems[1].message);
    assert!(problems[2].message.contains("KEEL_RATE_LIMIT_ADMIN_API"), "{}", problems[2].message);
}

#[test]
fn lookup_closure() {
    let p = Policies::from_lookup(|k| (k == "KEEL_RATE_LIMIT_TELEMETRY_INGEST").then(|| "100/1s".to_string())).unwrap();
    assert_eq!(p.telemetry_ingest.quota.to_string(), "100/1s,burst=100");
    let e = Policies::from_lookup(|_| Some("bad".into())).unwrap_err();
    assert_eq!(e.0.len(), 5);
}

#[tokio::test]
async fn each_policy_builds_the_limiter_it_declares() {
    let t = keel_testkit::TestDb::sqlite(&[&crate::SCHEMA]).await;
    let p = Policies::defaults();
    for policy in p.iter() {
        let l = policy.limiter(&t.db);
        assert_eq!(l.policy(), policy.name);
        assert_eq!(*l.quota(), policy.quota);
        let in_process = l.metrics().max_keys.is_some();
        assert_eq!(in_process, policy.backend == Backend::InProcess, "{}", policy.name);
    }
}
