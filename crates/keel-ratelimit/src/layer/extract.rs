//! Choosing the key for a request: `KeyExtractor`, by client IP or by closure.

use crate::LimitKey;
use http::{Extensions, HeaderMap, Method, Uri};
use std::net::{IpAddr, SocketAddr};

/// The client address the layer resolved (after trusted-proxy handling), inserted into the
/// request extensions for handlers and inner layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Reads the TCP peer address from the request extensions.
pub type PeerAddrFn = fn(&Extensions) -> Option<IpAddr>;

/// The default [`PeerAddrFn`]: a `std::net::SocketAddr` extension.
pub(crate) fn socket_addr_extension(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<SocketAddr>().map(SocketAddr::ip)
}

/// What a key extractor may look at. The body is not available: a limiter runs before it is read.
pub struct RequestInfo<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request URI.
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The request extensions (what outer layers and the server attached).
    pub extensions: &'a Extensions,
    /// The resolved client address; `None` only if the server attached no peer address.
    pub client_ip: Option<IpAddr>,
}

/// Picks the key a request is counted against.
///
/// Returning `None` means "no key for this request": the layer then counts it against the client
/// IP and logs that it did (throttled to one line per minute). It never answers 500 for it.
pub trait KeyExtractor: Clone + Send + Sync + 'static {
    /// The key for this request, or `None` to fall back to the client address.
    fn extract(&self, req: &RequestInfo<'_>) -> Option<LimitKey>;
}

/// Counts requests against the client network ([`LimitKey::ip`]: IPv6 by /64).
#[derive(Debug, Clone, Copy, Default)]
pub struct ByClientIp;

impl KeyExtractor for ByClientIp {
    fn extract(&self, req: &RequestInfo<'_>) -> Option<LimitKey> {
        req.client_ip.map(LimitKey::ip)
    }
}

/// A key extractor from a closure, e.g. "the authenticated user, else the client IP":
/// `KeyFn::new(|r| r.extensions.get::<UserId>().map(LimitKey::user).or(r.client_ip.map(LimitKey::ip)))`.
#[derive(Clone)]
pub struct KeyFn<F>(F);

impl<F> KeyFn<F>
where
    F: Fn(&RequestInfo<'_>) -> Option<LimitKey> + Clone + Send + Sync + 'static,
{
    /// Extracts keys with `f`.
    pub fn new(f: F) -> Self {
        Self(f)
    }
}

impl<F> KeyExtractor for KeyFn<F>
where
    F: Fn(&RequestInfo<'_>) -> Option<LimitKey> + Clone + Send + Sync + 'static,
{
    fn extract(&self, req: &RequestInfo<'_>) -> Option<LimitKey> {
        (self.0)(req)
    }
}
