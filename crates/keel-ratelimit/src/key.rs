//! `LimitKey`: who a request is counted against (client network, user, or email address).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// The identity a limit applies to. Constructors normalise, so two spellings of one identity
/// always land in one bucket.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A client network: an IPv4 address, or an IPv6 address truncated to its /64 (one subscriber
    /// usually holds a whole /64, so keying single IPv6 addresses would hand out 2^64 buckets).
    Ip(IpAddr),
    /// An authenticated user id (or any opaque identifier a key extractor chooses).
    User(Box<str>),
    /// An email address, trimmed and lowercased. Printed masked.
    Email(Box<str>),
    /// The peer address was not available (the server did not attach it to the request). Every
    /// such request shares this one bucket, so a misconfiguration fails closed, not open.
    UnknownPeer,
}

impl LimitKey {
    /// The key for a client address: IPv4-mapped IPv6 becomes IPv4, other IPv6 keeps its /64.
    pub fn ip(addr: IpAddr) -> Self {
        LimitKey::Ip(network_of(addr))
    }

    /// The key for a user id. Ids longer than 254 characters all share one bucket, `#overlong`.
    pub fn user(id: impl fmt::Display) -> Self {
        LimitKey::User(bounded(id.to_string()))
    }

    /// The key for an email address as typed: trimmed and lowercased, so `" Ann@X.com "` and
    /// `"ann@x.com"` share one bucket. It need not be a valid address (limiting garbage is fine),
    /// but input longer than an address can be (254) shares one `#overlong` bucket, so request
    /// bodies cannot make keys of any size.
    pub fn email(raw: &str) -> Self {
        LimitKey::Email(bounded(raw.trim().to_lowercase()))
    }

    /// A stable text form for storage (the shared limiter's primary key): `ip:203.0.113.7`,
    /// `ip:2001:db8:1:2::/64`, `user:<id>`, `email:<address>`, `unknown-peer`.
    pub fn storage_key(&self) -> String {
        match self {
            LimitKey::Ip(IpAddr::V4(a)) => format!("ip:{a}"),
            LimitKey::Ip(IpAddr::V6(a)) => format!("ip:{a}/64"),
            LimitKey::User(id) => format!("user:{id}"),
            LimitKey::Email(e) => format!("email:{e}"),
            LimitKey::UnknownPeer => "unknown-peer".to_owned(),
        }
    }
}

/// The longest id or address kept as is (RFC 5321's limit for an address).
const MAX_TEXT_KEY: usize = 254;

/// Control characters dropped (a database text column refuses NUL), length capped.
fn bounded(mut s: String) -> Box<str> {
    if s.chars().any(char::is_control) {
        s.retain(|c| !c.is_control());
    }
    if s.is_empty() || s.len() > MAX_TEXT_KEY {
        return if s.is_empty() { "#empty".into() } else { "#overlong".into() };
    }
    s.into_boxed_str()
}

/// IPv4 as is (IPv4-mapped IPv6 unwrapped to IPv4); IPv6 with the low 64 bits cleared.
pub fn network_of(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    }
}

/// Masked, so a key can go into a log line: emails as `j***@example.com`.
impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitKey::Email(e) => write!(f, "email:{}", keel_ids::mask_email(e)),
            other => f.write_str(&other.storage_key()),
        }
    }
}

impl fmt::Debug for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LimitKey({self})")
    }
}
