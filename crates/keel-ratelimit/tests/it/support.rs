//! Shared helpers: a counting inner service, request builders, response readers.

use http::{Request, Response};
use http_body_util::BodyExt;
use keel_ratelimit::layer::{ClientIp, RateLimitLayer, ResponseBody};

pub(crate) type Res = Response<ResponseBody<String>>;
use keel_ratelimit::{FakeClock, KeyedLimiter, LimitKey, Limiter};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tower::{Layer, Service, ServiceExt};

/// An inner service that counts its calls and echoes the client address it was given.
#[derive(Clone, Default)]
pub(crate) struct Inner {
    pub calls: Arc<AtomicUsize>,
}

impl Inner {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn service(
        &self,
    ) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future: Send> + Clone + Send + 'static
    {
        let calls = Arc::clone(&self.calls);
        tower::service_fn(move |req: Request<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let seen = req.extensions().get::<ClientIp>().map(|c| c.0.to_string()).unwrap_or_default();
            async move { Ok::<_, Infallible>(Response::new(seen)) }
        })
    }
}

pub(crate) fn limiter(policy: &str, spec: &str, clock: &FakeClock) -> Arc<KeyedLimiter<LimitKey, FakeClock>> {
    Arc::new(KeyedLimiter::with_clock(policy.to_owned(), spec.parse().unwrap(), clock.clone()))
}

pub(crate) fn dyn_limiter(l: &Arc<KeyedLimiter<LimitKey, FakeClock>>) -> Arc<dyn Limiter> {
    Arc::clone(l) as Arc<dyn Limiter>
}

pub(crate) fn request(peer: &str) -> http::request::Builder {
    let peer: SocketAddr =
        format!("{peer}:40000").parse().unwrap_or_else(|_| format!("[{peer}]:40000").parse().unwrap());
    Request::builder().uri("/api/admin/clients").extension(peer)
}

pub(crate) async fn send<S, B>(svc: &mut S, req: http::request::Builder) -> Response<B>
where
    S: Service<Request<String>, Response = Response<B>, Error = Infallible>,
{
    svc.ready().await.unwrap().call(req.body(String::new()).unwrap()).await.unwrap()
}

pub(crate) fn header<'a, B>(res: &'a Response<B>, name: &str) -> Option<&'a str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

async fn bytes<B>(res: Response<B>) -> Vec<u8>
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    res.into_body().collect().await.unwrap().to_bytes().to_vec()
}

pub(crate) async fn body_json<B>(res: Response<B>) -> serde_json::Value
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    serde_json::from_slice(&bytes(res).await).unwrap()
}

pub(crate) async fn body_text<B>(res: Response<B>) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    String::from_utf8(bytes(res).await).unwrap()
}

/// A service limited by `layer` around a counting inner service.
pub(crate) fn wrap<X>(
    layer: &RateLimitLayer<X>,
    inner: &Inner,
) -> impl Service<Request<String>, Response = Res, Error = Infallible> + Clone
where
    X: keel_ratelimit::layer::KeyExtractor,
{
    layer.layer(inner.service())
}
