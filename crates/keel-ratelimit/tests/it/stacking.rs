//! Stacked layers: every policy must pass; the draft-10 lists name all; the legacy trio the tightest.

use crate::support::{dyn_limiter, header, limiter, request, send, Inner};
use http::StatusCode;
use keel_ratelimit::layer::RateLimitLayer;
use keel_ratelimit::FakeClock;
use tower::Layer;

#[tokio::test]
async fn a_request_must_pass_every_policy_and_the_tightest_is_reported() {
    let clock = FakeClock::new();
    let admin = limiter("admin_api", "60/1m,burst=60", &clock);
    let export = limiter("export", "2/1m,burst=2", &clock);
    let inner = Inner::default();
    let outer = RateLimitLayer::new(dyn_limiter(&admin));
    let route = RateLimitLayer::new(dyn_limiter(&export));
    let mut svc = outer.layer(route.layer(inner.service()));

    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "ratelimit-policy"), Some("\"export\";q=2;w=60, \"admin_api\";q=60;w=60"));
    assert_eq!(header(&res, "ratelimit"), Some("\"export\";r=1;t=30, \"admin_api\";r=59;t=1"));
    assert_eq!(header(&res, "x-ratelimit-limit"), Some("2"), "the tighter policy wins the legacy trio");
    assert_eq!(header(&res, "x-ratelimit-remaining"), Some("1"));

    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::OK);
    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "x-ratelimit-limit"), Some("2"));
    assert_eq!(header(&res, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(header(&res, "retry-after"), Some("30"));
    assert_eq!(header(&res, "ratelimit"), Some("\"export\";r=0;t=30, \"admin_api\";r=57;t=1"));
    assert_eq!(inner.calls(), 2);
    // The outer floor counted all three; the route policy refused the third.
    assert_eq!((admin.metrics().allowed, export.metrics().allowed, export.metrics().rejected), (3, 2, 1));
}

#[tokio::test]
async fn the_outer_floor_refuses_before_the_inner_policy_counts() {
    let clock = FakeClock::new();
    let admin = limiter("admin_api", "1/1m,burst=1", &clock);
    let export = limiter("export", "10/1m", &clock);
    let inner = Inner::default();
    let mut svc = RateLimitLayer::new(dyn_limiter(&admin))
        .layer(RateLimitLayer::new(dyn_limiter(&export)).layer(inner.service()));
    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::OK);
    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "ratelimit"), Some("\"admin_api\";r=0;t=60"));
    assert_eq!(export.metrics().allowed, 1, "the inner policy never saw the refused request");
}
