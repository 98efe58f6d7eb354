//! Where a webhook may go. A host that lets its tenants register webhook URLs must not hand
//! them a way into its own network, so deliveries to loopback, private, link-local (the cloud
//! metadata endpoint 169.254.169.254), unique-local, CGNAT and other non-public addresses are
//! refused, unless `KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS` lists them (development and tests).
//!
//! The check runs on the addresses a name resolves to, inside the HTTP client's resolver
//! ([`CheckedResolver`]), so the address judged is the address connected to: a name that
//! resolves to a public address when enqueued and to 127.0.0.1 at delivery (DNS rebinding)
//! is refused at delivery. IP-literal URLs never reach a resolver and are checked directly.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The variable that lets private ranges through.
pub(crate) const ALLOWED_NETS_VAR: &str = "KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS";

/// Parses `KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS`: comma-separated CIDRs (`10.0.0.0/8`) or single
/// addresses (`127.0.0.1`). Every bad entry is named.
pub(crate) fn parse_allowed(raw: &str) -> Result<Vec<IpNet>, String> {
    let mut nets = Vec::new();
    let mut bad = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.parse::<IpNet>().or_else(|_| item.parse::<IpAddr>().map(IpNet::from)) {
            Ok(n) => nets.push(n.trunc()),
            Err(_) => bad.push(format!("{item:?}")),
        }
    }
    if bad.is_empty() {
        Ok(nets)
    } else {
        Err(format!(
            "{} is not a CIDR like 10.0.0.0/8 or fd00::/8, or an address like 127.0.0.1 (comma-separated)",
            bad.join(", ")
        ))
    }
}

/// The non-public range `ip` falls in, if any (IANA special-purpose registries, the ranges
/// that reach this host, its network or nothing useful).
pub(crate) fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u8) -> bool {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u8, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified / this network (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
        ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
        ([169, 254, 0, 0], 16, "link-local, incl. cloud metadata (169.254.0.0/16)"),
        ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments (192.0.0.0/24)"),
        ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
        ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
        ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
        ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
        ([240, 0, 0, 0], 4, "reserved and broadcast (240.0.0.0/4)"),
    ];
    RANGES.iter().find(|(net, bits, _)| in_v4(ip, *net, *bits)).map(|(_, _, name)| *name)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address are judged by it: a mapped ::ffff:127.0.0.1 reaches
    // loopback like 127.0.0.1 does.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4).map(|_| "IPv4-mapped address of a refused IPv4 range (::ffff:0:0/96)");
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return refused_v4(v4).map(|_| "NAT64 address of a refused IPv4 range (64:ff9b::/96)");
    }
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return refused_v4(v4).map(|_| "6to4 address of a refused IPv4 range (2002::/16)");
    }
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    let ranges: &[(u16, u16, u8, &str)] = &[
        // (first segment, second segment, prefix bits, name)
        (0x0000, 0x0000, 96, "IPv4-compatible (::/96, deprecated)"),
        (0x0064, 0xff9b, 48, "NAT64 local use (64:ff9b:1::/48)"),
        (0x0100, 0x0000, 64, "discard-only (100::/64)"),
        (0x2001, 0x0000, 32, "Teredo (2001::/32)"),
        (0x2001, 0x0db8, 32, "documentation (2001:db8::/32)"),
        (0xfc00, 0x0000, 7, "unique-local (fc00::/7)"),
        (0xfe80, 0x0000, 10, "link-local (fe80::/10)"),
        (0xfec0, 0x0000, 10, "site-local (fec0::/10, deprecated)"),
        (0xff00, 0x0000, 8, "multicast (ff00::/8)"),
    ];
    let bits = u128::from(ip);
    ranges
        .iter()
        .find(|(a, b, len, _)| {
            let net = (u128::from(*a) << 112) | (u128::from(*b) << 96) | if *a == 0x0064 { 1u128 << 80 } else { 0 };
            let mask = u128::MAX << (128 - u32::from(*len));
            bits & mask == net & mask
        })
        .map(|(_, _, _, name)| *name)
}

/// A delivery refused for its destination: an unprocessable job (retrying cannot help).
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    pub(crate) host: String,
    pub(crate) ip: IpAddr,
    pub(crate) range: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "webhook destination {} is {}, a {} address; deliveries to non-public networks are refused \
             unless {ALLOWED_NETS_VAR} lists them",
            self.host, self.ip, self.range
        )
    }
}

impl std::error::Error for Refused {}

/// The allow-list and the check itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Destinations {
    allowed: Vec<IpNet>,
}

impl Destinations {
    pub(crate) fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Ok for a public address or one the allow-list names; `host` only names it in the error.
    pub(crate) fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let canonical = ip.to_canonical();
        let Some(range) = refused_range(ip) else { return Ok(()) };
        if self.allowed.iter().any(|n| n.contains(&ip) || n.contains(&canonical)) {
            return Ok(());
        }
        Err(Refused { host: host.to_owned(), ip, range })
    }
}

/// The HTTP client's resolver: the system's answer, keeping only the addresses
/// [`Destinations::check`] accepts, so the connection can only go to one of those.
pub(crate) struct CheckedResolver(pub(crate) Arc<Destinations>);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dest = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal = None;
            let mut ok = Vec::new();
            for addr in resolved {
                match dest.check(&host, addr.ip()) {
                    Ok(()) => ok.push(addr),
                    Err(r) => {
                        first_refusal.get_or_insert(r);
                    }
                }
            }
            match (ok.is_empty(), first_refusal) {
                (true, Some(r)) => Err(Box::new(r) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_non_public_range_is_refused() {
        for (addr, range) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("10.1.2.3", "private (10."),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.254", "carrier-grade NAT"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.0.1", "link-local"),
            ("172.16.0.1", "private (172.16."),
            ("172.31.255.255", "private (172.16."),
            ("192.0.0.8", "IETF"),
            ("192.0.2.10", "documentation"),
            ("192.168.1.1", "private (192.168."),
            ("198.18.0.1", "benchmarking"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.7", "documentation"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("::ffff:169.254.169.254", "IPv4-mapped"),
            ("::ffff:10.0.0.1", "IPv4-mapped"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("64:ff9b::a9fe:a9fe", "NAT64"),
            ("64:ff9b:1::1", "NAT64 local use"),
            ("100::1", "discard"),
            ("2001::1", "Teredo"),
            ("2001:db8::1", "documentation"),
            ("2002:7f00:1::1", "6to4"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("fd00:ec2::254", "unique-local"),
        ] {
            let got = refused_range(ip(addr)).unwrap_or_else(|| panic!("{addr} was not refused"));
            assert!(got.contains(range), "{addr}: {got}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:81b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(refused_range(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn the_allow_list_lets_its_nets_through_and_names_bad_entries() {
        let d = Destinations::new(parse_allowed(" 127.0.0.1 ,10.0.0.0/8, fd00::/8").unwrap());
        assert!(d.check("h", ip("127.0.0.1")).is_ok());
        assert!(d.check("h", ip("::ffff:127.0.0.1")).is_ok(), "the mapped form of an allowed address");
        assert!(d.check("h", ip("10.9.8.7")).is_ok());
        assert!(d.check("h", ip("fd00::5")).is_ok());
        let r = d.check("metadata.internal", ip("169.254.169.254")).unwrap_err().to_string();
        assert!(
            r.contains("metadata.internal") && r.contains("169.254.169.254") && r.contains(ALLOWED_NETS_VAR),
            "{r}"
        );
        assert!(d.check("h", ip("127.0.0.2")).is_err());
        assert!(Destinations::default().check("h", ip("93.184.215.14")).is_ok());
        let e = parse_allowed("10.0.0.0/8,10.0.0.0/33,localhost").unwrap_err();
        assert!(e.contains("\"10.0.0.0/33\"") && e.contains("\"localhost\"") && !e.contains("\"10.0.0.0/8\""), "{e}");
        assert_eq!(parse_allowed("").unwrap(), Vec::<IpNet>::new());
    }
}
