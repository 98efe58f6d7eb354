//! Client address resolution: spoofing ignored, proxy chains walked from the right, IPv6 /64.

use crate::{ClientIpResolver, ForwardedHeader, LimitKey, TrustedProxies};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn resolver(trusted: &str) -> ClientIpResolver {
    ClientIpResolver::new(TrustedProxies::parse(trusted).unwrap())
}

fn resolve(r: &ClientIpResolver, peer: &str, values: &[&str]) -> IpAddr {
    r.resolve(ip(peer), values.iter().map(|v| v.as_bytes()))
}

#[test]
fn untrusted_peers_cannot_spoof() {
    let r = resolver("10.0.0.0/8");
    assert_eq!(resolve(&r, "203.0.113.9", &["1.2.3.4"]), ip("203.0.113.9"));
    assert_eq!(resolve(&r, "203.0.113.9", &["10.0.0.1, 1.2.3.4"]), ip("203.0.113.9"));
    let nobody = ClientIpResolver::default();
    assert_eq!(resolve(&nobody, "10.0.0.1", &["1.2.3.4"]), ip("10.0.0.1"), "empty list trusts no header");
}

#[test]
fn trusted_chain_is_walked_from_the_right() {
    let r = resolver("10.0.0.0/8, 172.16.0.0/12");
    // The client wrote "6.6.6.6"; our edge proxy appended the real client; an inner proxy
    // appended the edge proxy.
    assert_eq!(resolve(&r, "10.0.0.2", &["6.6.6.6, 198.51.100.7, 172.16.0.5"]), ip("198.51.100.7"));
    // Several field lines concatenate in order.
    assert_eq!(resolve(&r, "10.0.0.2", &["6.6.6.6", "198.51.100.7", "172.16.0.5"]), ip("198.51.100.7"));
    // No header at all: the peer is the client.
    assert_eq!(resolve(&r, "10.0.0.2", &[]), ip("10.0.0.2"));
    // Every hop trusted: the request started inside, at the leftmost hop.
    assert_eq!(resolve(&r, "10.0.0.2", &["10.9.9.9, 172.16.0.5"]), ip("10.9.9.9"));
    // Ports and brackets are tolerated.
    assert_eq!(resolve(&r, "10.0.0.2", &["198.51.100.7:5555"]), ip("198.51.100.7"));
    assert_eq!(resolve(&r, "10.0.0.2", &["[2001:db8::7]:443"]), ip("2001:db8::7"));
    assert_eq!(resolve(&r, "10.0.0.2", &["[2001:db8::7]"]), ip("2001:db8::7"));
    // An IPv4-mapped peer is matched as IPv4.
    assert_eq!(resolve(&r, "::ffff:10.0.0.2", &["198.51.100.7"]), ip("198.51.100.7"));
}

#[test]
fn malformed_headers_fall_back_to_the_peer() {
    let r = resolver("10.0.0.0/8");
    for bad in ["", "not-an-ip", "198.51.100.7, garbage", "198.51.100.7,,", "1.2.3.4.5", "\u{1F600}"] {
        assert_eq!(resolve(&r, "10.0.0.2", &[bad]), ip("10.0.0.2"), "{bad:?}");
    }
    // Garbage left of the client is never read.
    assert_eq!(resolve(&r, "10.0.0.2", &["garbage, 198.51.100.7"]), ip("198.51.100.7"));
    // Not UTF-8.
    assert_eq!(r.resolve(ip("10.0.0.2"), [&b"\xff\xfe"[..]]), ip("10.0.0.2"));
    // An absurdly long all-trusted chain is not walked.
    let long = vec!["10.0.0.1"; 40].join(",");
    assert_eq!(resolve(&r, "10.0.0.2", &[&long]), ip("10.0.0.2"));
}

#[test]
fn forwarded_header() {
    let r = resolver("10.0.0.0/8").with_header(ForwardedHeader::Forwarded);
    assert_eq!(r.header().name(), "forwarded");
    assert_eq!(resolve(&r, "10.0.0.2", &["for=6.6.6.6, for=198.51.100.7;proto=https;by=10.0.0.2"]), ip("198.51.100.7"));
    assert_eq!(resolve(&r, "10.0.0.2", &["For=\"[2001:db8:cafe::17]:4711\""]), ip("2001:db8:cafe::17"));
    assert_eq!(resolve(&r, "10.0.0.2", &["for=198.51.100.7", "for=10.3.3.3"]), ip("198.51.100.7"));
    for bad in ["for=unknown", "for=_hidden", "proto=https", "for=\"[2001:db8::1]", "for=\"1.2.3.4,5.6.7.8\""] {
        assert_eq!(resolve(&r, "10.0.0.2", &[bad]), ip("10.0.0.2"), "{bad:?}");
    }
    // Reading X-Forwarded-For (the default) never looks at Forwarded, and vice versa: the caller
    // passes only the configured header's values, which is what the layer does.
    assert_eq!(ClientIpResolver::default().header(), ForwardedHeader::XForwardedFor);
}

#[test]
fn ipv6_clients_are_keyed_by_their_64() {
    let a = LimitKey::ip(ip("2001:db8:1:2:aaaa::1"));
    let b = LimitKey::ip(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    let c = LimitKey::ip(ip("2001:db8:1:3::1"));
    assert_eq!(a, b, "one /64, one bucket");
    assert_ne!(a, c);
    assert_eq!(a.storage_key(), "ip:2001:db8:1:2::/64");
    assert_eq!(LimitKey::ip(ip("::ffff:198.51.100.7")), LimitKey::ip(ip("198.51.100.7")));
    assert_eq!(LimitKey::ip(ip("198.51.100.7")).storage_key(), "ip:198.51.100.7");
}

#[test]
fn email_keys_are_normalised_and_masked() {
    let a = LimitKey::email("  Ann.Smith@Example.COM ");
    assert_eq!(a, LimitKey::email("ann.smith@example.com"));
    assert_eq!(a.storage_key(), "email:ann.smith@example.com");
    assert_eq!(a.to_string(), "email:a***@example.com");
    assert!(!format!("{a:?}").contains("ann.smith"));
    assert_eq!(LimitKey::user("u-1").storage_key(), "user:u-1");
}

#[test]
fn text_keys_are_bounded() {
    let huge = "a".repeat(10_000) + "@example.com";
    assert_eq!(LimitKey::email(&huge).storage_key(), "email:#overlong");
    assert_eq!(LimitKey::user("x".repeat(255)).storage_key(), "user:#overlong");
    assert_eq!(LimitKey::email("a\u{0}b@x.com").storage_key(), "email:ab@x.com");
    assert_eq!(LimitKey::email("   ").storage_key(), "email:#empty");
    assert!(LimitKey::user("x".repeat(254)).storage_key().len() <= 512 - 5);
}
