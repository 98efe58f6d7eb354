//! Headers and bodies on allowed and refused responses: 70 requests against the admin floor.

use crate::support::{body_json, dyn_limiter, header, limiter, request, send, wrap, Inner};
use http::StatusCode;
use keel_ratelimit::layer::{ProblemTypes, RateLimitLayer, ABOUT_BLANK, PROBLEM_JSON};
use keel_ratelimit::{FakeClock, FAKE_UNIX_ORIGIN};
use std::time::Duration;

const ORIGIN: u64 = FAKE_UNIX_ORIGIN.as_secs();

#[tokio::test]
async fn allowed_responses_carry_every_header() {
    let clock = FakeClock::new();
    let l = limiter("admin_api", "60/1m,burst=60", &clock);
    let inner = Inner::default();
    let mut svc = wrap(&RateLimitLayer::new(dyn_limiter(&l)), &inner);

    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "ratelimit-policy"), Some("\"admin_api\";q=60;w=60"));
    assert_eq!(header(&res, "ratelimit"), Some("\"admin_api\";r=59;t=1"));
    assert_eq!(header(&res, "x-ratelimit-limit"), Some("60"));
    assert_eq!(header(&res, "x-ratelimit-remaining"), Some("59"));
    assert_eq!(header(&res, "x-ratelimit-reset"), Some((ORIGIN + 1).to_string().as_str()));
    assert_eq!(header(&res, "retry-after"), None);
}

#[tokio::test]
async fn seventy_requests_sixty_pass_ten_get_429() {
    let clock = FakeClock::new();
    let l = limiter("admin_api", "60/1m,burst=60", &clock);
    let inner = Inner::default();
    let mut svc = wrap(&RateLimitLayer::new(dyn_limiter(&l)), &inner);

    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..70 {
        let res = send(&mut svc, request("198.51.100.7")).await;
        statuses.push(res.status());
        last = Some(res);
    }
    assert!(statuses[..60].iter().all(|s| *s == StatusCode::OK));
    assert!(statuses[60..].iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(inner.calls(), 60, "refused requests never reach the service");

    let res = last.unwrap();
    assert_eq!(header(&res, "content-type"), Some(PROBLEM_JSON));
    assert_eq!(header(&res, "retry-after"), Some("1"));
    assert_eq!(header(&res, "ratelimit-policy"), Some("\"admin_api\";q=60;w=60"));
    assert_eq!(header(&res, "ratelimit"), Some("\"admin_api\";r=0;t=1"));
    assert_eq!(header(&res, "x-ratelimit-limit"), Some("60"));
    assert_eq!(header(&res, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(header(&res, "x-ratelimit-reset"), Some((ORIGIN + 60).to_string().as_str()));
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let body = body_json(res).await;
    assert_eq!(body["type"], ABOUT_BLANK, "no problem namespace was configured");
    assert_eq!(body["status"], 429);
    assert_eq!(body["title"], "Too Many Requests");
    assert_eq!(body["policy"], "admin_api");
    assert_eq!(body["retry_after"], 1);
    assert_eq!(body["violated-policies"], serde_json::json!(["admin_api"]));

    let m = l.metrics();
    assert_eq!((m.allowed, m.rejected, m.keys.unwrap()), (60, 10, 1));
}

#[tokio::test]
async fn retry_after_rounds_up_and_counts_down() {
    let clock = FakeClock::new();
    let l = limiter("export", "1/1m,burst=1", &clock);
    let inner = Inner::default();
    let mut svc = wrap(&RateLimitLayer::new(dyn_limiter(&l)), &inner);

    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::OK);
    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(header(&res, "retry-after"), Some("60"));
    assert_eq!(header(&res, "ratelimit"), Some("\"export\";r=0;t=60"));

    clock.advance(Duration::from_millis(59_500));
    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), Some("1"), "half a second left rounds up, never to 0");

    clock.advance(Duration::from_millis(500));
    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_configured_problem_namespace_names_the_429() {
    let clock = FakeClock::new();
    let l = limiter("export", "1/1m,burst=1", &clock);
    let layer =
        RateLimitLayer::new(dyn_limiter(&l)).problem_types(ProblemTypes::under("https://example.com/problems/"));
    let mut svc = wrap(&layer, &Inner::default());

    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::OK);
    let res = send(&mut svc, request("198.51.100.7")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = body_json(res).await;
    assert_eq!(body["type"], "https://example.com/problems/rate-limited");
}
