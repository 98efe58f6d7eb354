//! The server-side timing middleware (feature `tower`): every request's route template,
//! method, status and duration go to the HTTP histogram and, as a [`RouteSample`] of kind
//! `server` with sample rate 1, to the recorder's buffer.
//!
//! **Sampling decision:** the server records every request (rate 1). Sampling exists to spare
//! browsers and the network; the server pays only a buffered append per request and a batched
//! insert per thousand, and exact rates keep server-side percentiles exact for low-traffic
//! routes. The buffer bounds the cost: under overload samples are dropped and counted.
//!
//! The template comes from the caller (this crate cannot name axum's `MatchedPath`):
//! `RouteTimingLayer::new(metrics, Some(recorder), |req: &Request<Body>| req.extensions()
//! .get::<MatchedPath>().map(|m| m.as_str().to_owned()))`. Add it with `Router::layer` so the
//! router has set `MatchedPath` when it runs. Requests without a template count in the
//! histogram as route `_unmatched` and are not stored.
//!
//! Duration is measured until the response head is ready (body streaming is not included), on
//! tokio's clock, so tests with a paused clock see exact durations.

use crate::metrics::HttpServerMetrics;
use crate::{RouteRecorder, RouteSample, RouteTemplate};
use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// The tower [`Layer`](tower::Layer) that times every request (see the module docs); wraps a
/// service in [`RouteTiming`].
#[derive(Clone)]
pub struct RouteTimingLayer<F> {
    metrics: Arc<HttpServerMetrics>,
    recorder: Option<RouteRecorder>,
    route_of: F,
}

impl<F> RouteTimingLayer<F> {
    /// `route_of` returns the matched route template of a request, or `None` when no route
    /// matched. Without a recorder only the histogram is fed.
    pub fn new(metrics: Arc<HttpServerMetrics>, recorder: Option<RouteRecorder>, route_of: F) -> Self {
        Self { metrics, recorder, route_of }
    }
}

impl<S, F: Clone> tower::Layer<S> for RouteTimingLayer<F> {
    type Service = RouteTiming<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteTiming {
            inner,
            metrics: Arc::clone(&self.metrics),
            recorder: self.recorder.clone(),
            route_of: self.route_of.clone(),
        }
    }
}

/// The service [`RouteTimingLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct RouteTiming<S, F> {
    inner: S,
    metrics: Arc<HttpServerMetrics>,
    recorder: Option<RouteRecorder>,
    route_of: F,
}

impl<S, F, B, RB> tower::Service<Request<B>> for RouteTiming<S, F>
where
    S: tower::Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
    F: Fn(&Request<B>) -> Option<String>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = (self.route_of)(&req);
        let method = req.method().clone();
        let started_at = chrono::Utc::now();
        let start = Instant::now();
        let fut = self.inner.call(req);
        let metrics = Arc::clone(&self.metrics);
        let recorder = self.recorder.clone();
        Box::pin(async move {
            let res = fut.await;
            let elapsed = start.elapsed();
            // An error from the inner service means no response was produced: count it as 500.
            let status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(500);
            metrics.observe(method.as_str(), route.as_deref(), status, elapsed);
            if let (Some(rec), Some(route)) = (recorder, route) {
                let template = RouteTemplate::from_router(&route);
                rec.record(RouteSample::server(template, method.as_str(), status, elapsed, started_at));
            }
            res
        })
    }
}
