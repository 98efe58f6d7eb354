//! The readiness endpoint for axum (feature `axum`): 200 `ok` or 503 `degraded`, the report as
//! the JSON body, never cached.

use crate::{HealthReport, HealthService};
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

/// The answer to a readiness probe: the report's status code (200, or 503 when a required
/// check failed), `Cache-Control: no-store` (a cached "ok" would hide an outage) and the
/// report as `application/json`, exactly as it serializes.
impl IntoResponse for HealthReport {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        // The report is maps of strings; serializing it cannot fail, but an honest 503 beats a
        // panic if it ever did.
        let (status, body) = match serde_json::to_vec(&self) {
            Ok(body) => (status, body),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, br#"{"status":"degraded"}"#.to_vec()),
        };
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = status;
        res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

/// A handler running every check of the [`HealthService`] in the router state (or reachable
/// from it through `FromRef`): `.route("/ready", get(readiness)).with_state(health)`.
pub async fn readiness(State(health): State<HealthService>) -> HealthReport {
    health.check().await
}

/// `GET` (and `HEAD`) on a route, answering [`readiness`] for `health`, for a router whose state
/// holds no [`HealthService`]: `.route("/ready", keel_health::handler::readiness_route(health))`.
pub fn readiness_route<S>(health: HealthService) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    get(move || {
        let health = health.clone();
        async move { health.check().await }
    })
}
