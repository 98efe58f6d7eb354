//! Which address a request came from: the peer, unless a trusted proxy says otherwise.
//!
//! The forwarding header is read from the right: each proxy appends the address it received
//! the request from, so the rightmost entries were written by our own proxies and the first
//! untrusted address from the right is the client as our outermost proxy saw it. Anything to
//! its left was written by the client and is ignored. (tower_governor's `SmartIpKeyExtractor`
//! takes the *leftmost* entry, which lets any client pick a fresh bucket per request.)

use crate::TrustedProxies;
use std::net::{IpAddr, SocketAddr};

/// The header a trusted proxy maintains. Only one is read: a header the proxy passes through
/// untouched is client-controlled, so reading both would let a client forge the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, AWS ALB, Cloudflare, ...).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for="[2001:db8::1]:443"`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's lowercase name.
    pub fn name(&self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// Hops beyond this many are not walked; a longer chain of our own proxies is not plausible.
const MAX_HOPS: usize = 32;

/// Resolves the client address of a request from its peer address and forwarding header.
#[derive(Debug, Clone, Default)]
pub struct ClientIpResolver {
    trusted: TrustedProxies,
    header: ForwardedHeader,
}

impl ClientIpResolver {
    /// Believes forwarding headers only from `trusted`, reading `X-Forwarded-For` by default.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self { trusted, header: ForwardedHeader::default() }
    }

    /// Reads `header` instead of the default.
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The forwarding header this resolver reads.
    pub fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// The proxies whose headers are believed.
    pub fn trusted(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// The client address. `header_values` are the raw values of every field line of the
    /// configured header, in order; they are read only when `peer` is a trusted proxy.
    ///
    /// Never fails: a header that is absent, not UTF-8, unparseable where the walk reaches it, or
    /// longer than 32 hops yields the peer address.
    pub fn resolve<'a>(&self, peer: IpAddr, header_values: impl IntoIterator<Item = &'a [u8]>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusted.contains(peer) {
            return peer;
        }
        let mut values = Vec::new();
        for v in header_values {
            match std::str::from_utf8(v) {
                Ok(s) => values.push(s),
                Err(_) => return peer,
            }
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => values.iter().flat_map(|v| v.split(',')).map(parse_xff_hop).collect(),
            ForwardedHeader::Forwarded => match forwarded_hops(&values) {
                Some(h) => h,
                None => return peer,
            },
        };
        self.walk(peer, hops)
    }

    fn walk(&self, peer: IpAddr, hops: Vec<Option<IpAddr>>) -> IpAddr {
        let mut client = peer;
        for (walked, hop) in hops.into_iter().rev().enumerate() {
            if walked >= MAX_HOPS {
                return peer;
            }
            let Some(ip) = hop else { return peer };
            if !self.trusted.contains(ip) {
                return ip;
            }
            // Every hop so far is one of ours: the request originated inside the trusted network.
            client = ip;
        }
        client
    }
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')?.strip_suffix(']')?.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

fn parse_xff_hop(s: &str) -> Option<IpAddr> {
    parse_hop(s)
}

/// The `for=` node of each element of every `Forwarded` field line, in order. `None` for the
/// whole header if its quoting is broken; `None` for an element whose node is missing,
/// `unknown`, or an obfuscated identifier (`_hidden`), since no address can be keyed on.
fn forwarded_hops(values: &[&str]) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in values {
        for element in split_unquoted(value, ',')? {
            if element.trim().is_empty() {
                continue;
            }
            let mut node = None;
            for pair in split_unquoted(element, ';')? {
                if let Some((k, v)) = pair.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("for") {
                        node = Some(unquote(v.trim()));
                    }
                }
            }
            hops.push(node.and_then(parse_hop));
        }
    }
    Some(hops)
}

/// Splits on `sep` outside double quotes; `None` if a quote is left open.
fn split_unquoted(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v)
}
