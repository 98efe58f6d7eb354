//! CIDR parsing and the trusted-proxy list.

use crate::{Cidr, CidrError, TrustedProxies};

const TRUSTED_PROXIES_VAR: &str = "APP_TRUSTED_PROXIES";
use keel_config::{MapSource, Reader};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn blocks_contain_what_they_should() {
    let c: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(c.contains(ip("10.255.1.2")));
    assert!(!c.contains(ip("11.0.0.1")));
    assert!(c.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 peers match IPv4 blocks");
    assert!(!c.contains(ip("::a00:1")), "a plain IPv6 address is not in an IPv4 block");
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains(ip("2001:db8:ffff::1")));
    assert!(!v6.contains(ip("2001:db9::1")));
    let host: Cidr = "192.168.1.7".parse().unwrap();
    assert_eq!(host.to_string(), "192.168.1.7/32");
    assert!(host.contains(ip("192.168.1.7")) && !host.contains(ip("192.168.1.8")));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(ip("8.8.8.8")));
    assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
}

#[test]
fn bad_blocks_explain_themselves() {
    let e = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
    assert!(matches!(e, CidrError::HostBits { .. }));
    assert!(e.to_string().contains("did you mean 10.0.0.0/8"), "{e}");
    let e = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
    assert!(e.to_string().contains("at most 32"), "{e}");
    let e = "2001:db8::/129".parse::<Cidr>().unwrap_err();
    assert!(e.to_string().contains("at most 128"), "{e}");
    let e = "10.0.0.0/x".parse::<Cidr>().unwrap_err();
    assert!(matches!(e, CidrError::Prefix { .. }));
    let e = "proxy.internal".parse::<Cidr>().unwrap_err();
    assert!(e.to_string().contains("not an IP address"), "{e}");
}

#[test]
fn list_parsing() {
    let t = TrustedProxies::parse("10.0.0.0/8, 192.168.0.1  fd00::/8,").unwrap();
    assert_eq!(t.nets().len(), 3);
    assert!(t.contains(ip("fd12::1")));
    assert!(TrustedProxies::parse("").unwrap().is_empty());
    assert!(TrustedProxies::parse("10.0.0.0/8,nope").is_err());
}

#[test]
fn read_from_config_names_the_variable() {
    let src = MapSource::new([(TRUSTED_PROXIES_VAR, "10.0.0.0/8,10.1.0.1/16")]);
    let mut r = Reader::new(&src);
    let t = TrustedProxies::read(&mut r, TRUSTED_PROXIES_VAR);
    assert!(t.is_empty(), "a bad list trusts nobody");
    let problems = r.finish().unwrap_err();
    assert_eq!(problems.0.len(), 1);
    assert_eq!(problems.0[0].var, "APP_TRUSTED_PROXIES");
    assert!(problems.0[0].message.contains("did you mean 10.1.0.0/16"), "{}", problems.0[0].message);

    let empty = MapSource::new([]);
    let mut r = Reader::new(&empty);
    assert!(TrustedProxies::read(&mut r, TRUSTED_PROXIES_VAR).is_empty(), "unset means trust nobody");
    r.finish().unwrap();
}
