//! Keys: spoofing ignored, trusted chains honoured, IPv6 by /64, user-else-IP, fallbacks.

use crate::support::{body_text, dyn_limiter, limiter, request, send, wrap, Inner};
use http::{Request, StatusCode};
use keel_ratelimit::layer::{KeyFn, RateLimitLayer, RequestInfo};
use keel_ratelimit::{ClientIpResolver, FakeClock, LimitKey, TrustedProxies};
use std::net::SocketAddr;

#[tokio::test]
async fn spoofed_forwarding_headers_from_untrusted_peers_change_nothing() {
    let clock = FakeClock::new();
    let l = limiter("public_ingress", "2/1m,burst=2", &clock);
    let inner = Inner::default();
    // Proxies are trusted, but this peer is not one of them.
    let layer = RateLimitLayer::new(dyn_limiter(&l))
        .client_ip(ClientIpResolver::new(TrustedProxies::parse("10.0.0.0/8").unwrap()));
    let mut svc = wrap(&layer, &inner);
    for (i, spoof) in ["1.1.1.1", "2.2.2.2", "3.3.3.3", "10.0.0.1, 4.4.4.4"].iter().enumerate() {
        let res = send(&mut svc, request("203.0.113.9").header("x-forwarded-for", *spoof)).await;
        let expected = if i < 2 { StatusCode::OK } else { StatusCode::TOO_MANY_REQUESTS };
        assert_eq!(res.status(), expected, "request {i} with X-Forwarded-For {spoof}");
    }
    assert_eq!(l.metrics().keys.unwrap(), 1, "one bucket: the peer's");
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_get_their_own_buckets() {
    let clock = FakeClock::new();
    let l = limiter("public_ingress", "1/1m,burst=1", &clock);
    let inner = Inner::default();
    let layer = RateLimitLayer::new(dyn_limiter(&l))
        .client_ip(ClientIpResolver::new(TrustedProxies::parse("10.0.0.0/8").unwrap()));
    let mut svc = wrap(&layer, &inner);

    let res = send(&mut svc, request("10.0.0.2").header("x-forwarded-for", "6.6.6.6, 198.51.100.1")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body_text(res).await, "198.51.100.1", "the handler sees the resolved client");
    let res = send(&mut svc, request("10.0.0.2").header("x-forwarded-for", "198.51.100.2")).await;
    assert_eq!(res.status(), StatusCode::OK, "another client behind the same proxy");
    let res = send(&mut svc, request("10.0.0.3").header("x-forwarded-for", "7.7.7.7, 198.51.100.1")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "same client via another proxy, spoofed prefix ignored");
    let res = send(&mut svc, request("10.0.0.2").header("x-forwarded-for", "not an address")).await;
    assert_eq!(res.status(), StatusCode::OK, "malformed header: keyed by the proxy itself, not a 500");
}

#[tokio::test]
async fn ipv6_clients_share_a_bucket_per_64() {
    let clock = FakeClock::new();
    let l = limiter("public_ingress", "1/1m,burst=1", &clock);
    let inner = Inner::default();
    let mut svc = wrap(&RateLimitLayer::new(dyn_limiter(&l)), &inner);
    assert_eq!(send(&mut svc, request("2001:db8:1:2::1")).await.status(), StatusCode::OK);
    assert_eq!(send(&mut svc, request("2001:db8:1:2:ffff::9")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&mut svc, request("2001:db8:1:3::1")).await.status(), StatusCode::OK);
}

#[derive(Clone)]
struct User(&'static str);

fn user_else_ip(r: &RequestInfo<'_>) -> Option<LimitKey> {
    r.extensions.get::<User>().map(|u| LimitKey::user(u.0)).or(r.client_ip.map(LimitKey::ip))
}

#[tokio::test]
async fn users_behind_one_address_do_not_starve_each_other() {
    let clock = FakeClock::new();
    let l = limiter("admin_api", "60/1m,burst=60", &clock);
    let inner = Inner::default();
    let layer = RateLimitLayer::new(dyn_limiter(&l)).key_extractor(KeyFn::new(user_else_ip));
    let mut svc = wrap(&layer, &inner);
    for _ in 0..60 {
        assert_eq!(send(&mut svc, request("198.51.100.7").extension(User("ann"))).await.status(), StatusCode::OK);
    }
    assert_eq!(
        send(&mut svc, request("198.51.100.7").extension(User("ann"))).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send(&mut svc, request("198.51.100.7").extension(User("bob"))).await.status(), StatusCode::OK);
    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::OK, "anonymous: keyed by IP");
    assert_eq!(l.metrics().keys.unwrap(), 3);
}

#[tokio::test]
async fn a_key_that_cannot_be_extracted_falls_back_to_the_client_ip() {
    let clock = FakeClock::new();
    let l = limiter("t", "1/1m,burst=1", &clock);
    let inner = Inner::default();
    let layer = RateLimitLayer::new(dyn_limiter(&l)).key_extractor(KeyFn::new(|_: &RequestInfo<'_>| None));
    let mut svc = wrap(&layer, &inner);
    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::OK);
    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&mut svc, request("198.51.100.8")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_panicking_extractor_is_not_a_500() {
    let clock = FakeClock::new();
    let l = limiter("t", "1/1m,burst=1", &clock);
    let inner = Inner::default();
    let layer = RateLimitLayer::new(dyn_limiter(&l))
        .key_extractor(KeyFn::new(|_: &RequestInfo<'_>| -> Option<LimitKey> { panic!("extractor bug") }));
    let mut svc = wrap(&layer, &inner);
    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::OK);
    assert_eq!(send(&mut svc, request("198.51.100.7")).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn without_a_peer_address_requests_share_one_bucket() {
    let clock = FakeClock::new();
    let l = limiter("t", "2/1m,burst=2", &clock);
    let inner = Inner::default();
    let mut svc = wrap(&RateLimitLayer::new(dyn_limiter(&l)), &inner);
    let bare = || Request::builder().uri("/x");
    assert_eq!(send(&mut svc, bare()).await.status(), StatusCode::OK);
    assert_eq!(send(&mut svc, bare().header("x-forwarded-for", "1.2.3.4")).await.status(), StatusCode::OK);
    assert_eq!(send(&mut svc, bare()).await.status(), StatusCode::TOO_MANY_REQUESTS, "fails closed, not open");
}

/// What axum's `ConnectInfo<SocketAddr>` looks like to a crate that cannot name it.
#[derive(Clone)]
struct ConnectInfo(SocketAddr);

#[tokio::test]
async fn the_peer_address_can_come_from_any_extension() {
    let clock = FakeClock::new();
    let l = limiter("t", "1/1m,burst=1", &clock);
    let inner = Inner::default();
    let layer = RateLimitLayer::new(dyn_limiter(&l)).peer_addr(|e| e.get::<ConnectInfo>().map(|c| c.0.ip()));
    let mut svc = wrap(&layer, &inner);
    let from = |a: &str| Request::builder().uri("/x").extension(ConnectInfo(a.parse().unwrap()));
    let res = send(&mut svc, from("198.51.100.7:1234")).await;
    assert_eq!(body_text(res).await, "198.51.100.7");
    assert_eq!(send(&mut svc, from("198.51.100.7:999")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&mut svc, from("198.51.100.8:1234")).await.status(), StatusCode::OK);
}
