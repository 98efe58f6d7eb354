//! A limiter that cannot decide: 503 with its own problem type when failing closed, pass when open.

use crate::support::{body_json, header, request, send, Inner};
use http::StatusCode;
use keel_ratelimit::layer::{ProblemTypes, RateLimitLayer, ABOUT_BLANK};
use keel_ratelimit::{CheckFuture, LimitKey, Limiter, LimiterMetrics, Outcome, Quota};
use std::sync::Arc;
use std::time::Duration;
use tower::Layer;

struct Stub {
    quota: Quota,
    outcome: Outcome,
}

impl Limiter for Stub {
    fn policy(&self) -> &str {
        "public_ingress"
    }
    fn quota(&self) -> &Quota {
        &self.quota
    }
    fn check_key<'a>(&'a self, _key: &'a LimitKey) -> CheckFuture<'a> {
        let outcome = self.outcome;
        CheckFuture::Pending(Box::pin(async move { outcome }))
    }
    fn unix_now(&self) -> Duration {
        Duration::ZERO
    }
    fn metrics(&self) -> LimiterMetrics {
        LimiterMetrics {
            policy: "public_ingress".into(),
            keys: None,
            max_keys: None,
            allowed: 0,
            rejected: 0,
            unavailable: 0,
            pruned_idle: 0,
            evicted_live: 0,
        }
    }
}

fn stub(outcome: Outcome) -> Arc<dyn Limiter> {
    Arc::new(Stub { quota: "60/1m".parse().unwrap(), outcome })
}

#[tokio::test]
async fn unavailable_is_a_503_with_its_own_problem_type() {
    let inner = Inner::default();
    let mut svc = RateLimitLayer::new(stub(Outcome::Unavailable { retry_after: Duration::from_millis(50) }))
        .layer(inner.service());
    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&res, "retry-after"), Some("1"));
    assert_eq!(header(&res, "content-type"), Some("application/problem+json"));
    assert_eq!(header(&res, "ratelimit"), None, "no quota was consulted, so none is reported");
    let body = body_json(res).await;
    assert_eq!(body["type"], ABOUT_BLANK);
    assert_eq!(body["status"], 503);
    assert_eq!(inner.calls(), 0);

    let types = ProblemTypes::under("https://example.com/problems/");
    let mut svc = RateLimitLayer::new(stub(Outcome::Unavailable { retry_after: Duration::from_millis(50) }))
        .problem_types(types.clone())
        .layer(inner.service());
    let body = body_json(send(&mut svc, request("198.51.100.7")).await).await;
    assert_eq!(body["type"], "https://example.com/problems/rate-limiter-unavailable");
    assert_eq!(&*types.unavailable, "https://example.com/problems/rate-limiter-unavailable");
}

#[tokio::test]
async fn unlimited_passes_without_headers() {
    let inner = Inner::default();
    let mut svc = RateLimitLayer::new(stub(Outcome::Unlimited)).layer(inner.service());
    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "x-ratelimit-remaining"), None);
    assert_eq!(inner.calls(), 1);
}
