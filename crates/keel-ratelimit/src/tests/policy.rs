//! Policies built by the user: defaults, builders, and the limiter each backend declares.

use crate::{Backend, FailureMode, KeyKind, Policy, Quota, DEFAULT_MAX_KEYS};
use std::time::Duration;

#[test]
fn a_new_policy_is_in_process_by_client_ip_and_fails_closed() {
    let p = Policy::new("login", "5/1m".parse().unwrap());
    assert_eq!(&*p.name, "login");
    assert_eq!(
        (p.backend, p.key, p.on_outage, p.max_keys),
        (Backend::InProcess, KeyKind::ClientIp, FailureMode::Closed, DEFAULT_MAX_KEYS)
    );
}

#[test]
fn builders_set_every_field() {
    let p = Policy::new(String::from("recovery"), "5/1h,burst=3".parse().unwrap())
        .with_backend(Backend::Shared)
        .with_key(KeyKind::Email)
        .with_on_outage(FailureMode::Open)
        .with_max_keys(10);
    assert_eq!((p.backend, p.key, p.on_outage, p.max_keys), (Backend::Shared, KeyKind::Email, FailureMode::Open, 10));
    let l = p.in_process_limiter();
    assert_eq!(l.policy(), "recovery");
    assert_eq!(l.capacity(), 10);
}

#[test]
fn from_static_agrees_with_the_validating_constructor() {
    const Q: Quota = Quota::from_static(7, Duration::from_secs(60), 2);
    assert_eq!(Quota::new(7, Duration::from_secs(60), 2).unwrap(), Q);
    assert_eq!(Q.emission_interval(), Duration::from_nanos(60_000_000_000 / 7));
}

#[test]
fn from_static_refuses_what_new_refuses() {
    for (count, period, burst) in [
        (0, Duration::from_secs(1), 1),
        (1, Duration::from_secs(1), 0),
        (1, Duration::from_micros(1500), 1),
        (1, Duration::from_secs(367 * 86_400), 1),
        (u32::MAX, Duration::from_millis(1), 1),
        (1, Duration::from_secs(86_400), 400),
    ] {
        assert!(Quota::new(count, period, burst).is_err(), "{count}/{period:?},burst={burst}");
        let built = std::panic::catch_unwind(|| Quota::from_static(count, period, burst));
        assert!(built.is_err(), "{count}/{period:?},burst={burst} must not build");
    }
}

#[tokio::test]
async fn each_backend_builds_the_limiter_it_declares() {
    let t = keel_testkit::TestDb::sqlite(&[&crate::SCHEMA]).await;
    let q: Quota = "60/1m".parse().unwrap();
    for backend in [Backend::InProcess, Backend::Shared] {
        let p = Policy::new("p", q).with_backend(backend);
        let l = p.limiter(&t.db);
        assert_eq!(l.policy(), "p");
        assert_eq!(*l.quota(), q);
        assert_eq!(l.metrics().max_keys.is_some(), backend == Backend::InProcess, "{backend:?}");
    }
}
