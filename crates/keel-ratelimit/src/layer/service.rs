//! `RateLimitLayer` and `RateLimitService`: check before calling the inner service.

use super::extract::{socket_addr_extension, ByClientIp, ClientIp, KeyExtractor, PeerAddrFn, RequestInfo};
use super::response::{add_headers, too_many_requests, unavailable, ProblemTypes, ResponseBody};
use crate::throttle::LogThrottle;
use crate::{ClientIpResolver, LimitKey, Limiter, Outcome};
use http::{Request, Response};
use http_body_util::Either;
use std::future::Future;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

const LOG_INTERVAL_NS: u64 = 60_000_000_000;

struct Shared<X> {
    limiter: Arc<dyn Limiter>,
    extractor: X,
    resolver: ClientIpResolver,
    peer: PeerAddrFn,
    problems: ProblemTypes,
    log: LogThrottle,
}

/// Applies one rate-limit policy to every request of the wrapped service.
pub struct RateLimitLayer<X = ByClientIp> {
    shared: Arc<Shared<X>>,
}

impl<X> Clone for RateLimitLayer<X> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl RateLimitLayer<ByClientIp> {
    /// Counts requests against the client IP; the peer address comes from a `SocketAddr`
    /// extension and no forwarding header is believed until [`RateLimitLayer::client_ip`] says so.
    pub fn new(limiter: Arc<dyn Limiter>) -> Self {
        Self {
            shared: Arc::new(Shared {
                limiter,
                extractor: ByClientIp,
                resolver: ClientIpResolver::default(),
                peer: socket_addr_extension,
                problems: ProblemTypes::default(),
                log: LogThrottle::new(LOG_INTERVAL_NS),
            }),
        }
    }
}

impl<X: KeyExtractor> RateLimitLayer<X> {
    fn rebuild<Y>(self, f: impl FnOnce(Shared<X>) -> Shared<Y>) -> RateLimitLayer<Y> {
        let shared = Arc::try_unwrap(self.shared).unwrap_or_else(|arc| Shared {
            limiter: Arc::clone(&arc.limiter),
            extractor: arc.extractor.clone(),
            resolver: arc.resolver.clone(),
            peer: arc.peer,
            problems: arc.problems.clone(),
            log: LogThrottle::new(LOG_INTERVAL_NS),
        });
        RateLimitLayer { shared: Arc::new(f(shared)) }
    }

    /// Counts requests against the key `extractor` picks.
    pub fn key_extractor<Y: KeyExtractor>(self, extractor: Y) -> RateLimitLayer<Y> {
        self.rebuild(|s| Shared {
            limiter: s.limiter,
            extractor,
            resolver: s.resolver,
            peer: s.peer,
            problems: s.problems,
            log: s.log,
        })
    }

    /// How to find the client address behind trusted proxies.
    pub fn client_ip(self, resolver: ClientIpResolver) -> Self {
        self.rebuild(|s| Shared { resolver, ..s })
    }

    /// Where the TCP peer address is in the request extensions.
    pub fn peer_addr(self, peer: PeerAddrFn) -> Self {
        self.rebuild(|s| Shared { peer, ..s })
    }

    /// The `type` URIs of the 429 and 503 problem documents (default: `about:blank`).
    pub fn problem_types(self, problems: ProblemTypes) -> Self {
        self.rebuild(|s| Shared { problems, ..s })
    }

    /// The limiter this layer consults.
    pub fn limiter(&self) -> &Arc<dyn Limiter> {
        &self.shared.limiter
    }
}

impl<S, X> Layer<S> for RateLimitLayer<X> {
    type Service = RateLimitService<S, X>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService { inner, shared: Arc::clone(&self.shared) }
    }
}

/// The service [`RateLimitLayer`] produces.
pub struct RateLimitService<S, X = ByClientIp> {
    inner: S,
    shared: Arc<Shared<X>>,
}

impl<S: Clone, X> Clone for RateLimitService<S, X> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<X: KeyExtractor> Shared<X> {
    fn client_ip<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>() {
            return Some(*ip);
        }
        let peer = (self.peer)(req.extensions())?;
        let values = req.headers().get_all(self.resolver.header().name()).into_iter().map(|v| v.as_bytes());
        Some(self.resolver.resolve(peer, values))
    }

    fn key<B>(&self, req: &Request<B>, client_ip: Option<IpAddr>) -> LimitKey {
        let info = RequestInfo {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
            client_ip,
        };
        // A panicking extractor is a bug in the caller's closure; it still must not become a 500.
        let extracted = catch_unwind(AssertUnwindSafe(|| self.extractor.extract(&info)));
        if let Ok(Some(key)) = extracted {
            return key;
        }
        let fallback = client_ip.map(LimitKey::ip).unwrap_or(LimitKey::UnknownPeer);
        if self.log.allow(self.now_ns()) {
            tracing::warn!(
                policy = self.limiter.policy(),
                fallback = %fallback,
                extractor_panicked = extracted.is_err(),
                "no rate-limit key for this request; counting it against the client address (logged once a minute)"
            );
        }
        fallback
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.limiter.unix_now().as_nanos()).unwrap_or(u64::MAX)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, X, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimitService<S, X>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    X: KeyExtractor,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let client_ip = shared.client_ip(&req);
        if let Some(ip) = client_ip {
            if req.extensions().get::<ClientIp>().is_none() {
                req.extensions_mut().insert(ClientIp(ip));
            }
        }
        let key = shared.key(&req, client_ip);
        // The clone that was driven to readiness serves this request (the tower idiom).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let limiter = &shared.limiter;
            match limiter.check_key(&key).await {
                Outcome::Decided(d) if d.is_allowed() => {
                    let unix_now = limiter.unix_now();
                    let mut res = inner.call(req).await?;
                    add_headers(res.headers_mut(), limiter.policy(), limiter.quota(), &d, unix_now);
                    Ok(res.map(Either::Left))
                }
                Outcome::Decided(d) => {
                    Ok(too_many_requests(&shared.problems, limiter.policy(), limiter.quota(), &d, limiter.unix_now()))
                }
                Outcome::Unavailable { retry_after } => {
                    Ok(unavailable(&shared.problems, limiter.policy(), retry_after))
                }
                Outcome::Unlimited => Ok(inner.call(req).await?.map(Either::Left)),
            }
        })
    }
}
