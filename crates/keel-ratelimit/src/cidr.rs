//! CIDR blocks and the trusted-proxy list `KEEL_TRUSTED_PROXIES`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address block such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why an address or CIDR block was refused; each message shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an IP address or `address/prefix` at all.
    #[error("{0:?} is not an IP address or CIDR block like 10.0.0.0/8 or 2001:db8::/32")]
    Address(String),
    /// The prefix length is longer than the address family allows.
    #[error("{got:?} has prefix length {prefix}, but an {family} prefix is at most {max}")]
    Prefix {
        /// The block as written.
        got: String,
        /// The prefix length as written.
        prefix: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The longest prefix of that family (32 or 128).
        max: u8,
    },
    /// Bits are set after the prefix (`10.1.0.1/16`); the message suggests the block meant.
    #[error("{got:?} has bits set after the prefix; did you mean {suggested}?")]
    HostBits {
        /// The block as written.
        got: String,
        /// The same block with the host bits cleared.
        suggested: Cidr,
    },
}

impl Cidr {
    /// The block `addr/prefix`; refused if the prefix is too long or host bits are set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let addr = addr.to_canonical();
        let (max, family) = max_prefix(addr);
        if prefix > max {
            return Err(CidrError::Prefix { got: format!("{addr}/{prefix}"), prefix: prefix.to_string(), family, max });
        }
        let masked = mask(addr, prefix);
        if masked != addr {
            return Err(CidrError::HostBits {
                got: format!("{addr}/{prefix}"),
                suggested: Cidr { addr: masked, prefix },
            });
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is inside this block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn max_prefix(addr: IpAddr) -> (u8, &'static str) {
    if addr.is_ipv4() {
        (32, "IPv4")
    } else {
        (128, "IPv6")
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a.trim(), Some(p.trim())),
            None => (s, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| CidrError::Address(s.to_owned()))?;
        let addr = addr.to_canonical();
        let (max, family) = max_prefix(addr);
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(CidrError::Prefix { got: s.to_owned(), prefix: p.to_owned(), family, max }),
            },
        };
        Cidr::new(addr, prefix).map_err(|e| match e {
            CidrError::HostBits { suggested, .. } => CidrError::HostBits { got: s.to_owned(), suggested },
            other => other,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The proxies whose forwarding headers are believed. Empty (the default) means no header is
/// ever believed and the client is always the TCP peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Cidr>,
}

impl TrustedProxies {
    /// Trusts no proxy: the client is always the TCP peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts the proxies in `nets`.
    pub fn new(nets: impl IntoIterator<Item = Cidr>) -> Self {
        Self { nets: nets.into_iter().collect() }
    }

    /// Parses a comma- or space-separated list: `10.0.0.0/8, 192.168.0.1, fd00::/8`.
    pub fn parse(s: &str) -> Result<Self, CidrError> {
        let nets = s
            .split([',', ' ', '\t', '\n'])
            .filter(|p| !p.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Reads the list from the setting `var` (unset or empty: trust nobody), recording a
    /// problem that names the variable if it does not parse. Keel reads `KEEL_TRUSTED_PROXIES`.
    pub fn read(r: &mut keel_config::Reader<'_>, var: &str) -> Self {
        match r.raw(var) {
            None => Self::none(),
            Some(v) => Self::parse(&v).unwrap_or_else(|e| {
                r.problem(var, format!("{e}; list CIDR blocks separated by commas"));
                Self::none()
            }),
        }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The trusted blocks.
    pub fn nets(&self) -> &[Cidr] {
        &self.nets
    }
}
