//! The routes: `/notes` behind the rate limiter, `/ready` beside it, all timed; and the metrics
//! listener's `/metrics`.

use crate::error::Problem;
use crate::notes::Note;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use keel_ratelimit::layer::RateLimitLayer;
use keel_telemetry::RouteTimingLayer;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;
/// Says whether `GET /notes` was served from the cache (`hit`) or loaded (`miss`).
pub const X_CACHE: &str = "x-cache";

/// The public router.
pub fn router(state: AppState) -> Router {
    // Step 1: the limiter in front of the notes routes; `/ready` stays outside, so a probe is
    // never refused.
    let limited = Router::new()
        .route("/notes", get(list_notes).post(add_note))
        .layer(RateLimitLayer::new(state.limiter.clone()).peer_addr(peer));
    // Step 5: every request timed under its route template (never the raw path).
    let timing = RouteTimingLayer::new(state.metrics.http(), Some(state.recorder.clone()), |req: &Request| {
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned())
    });
    Router::new()
        .merge(limited)
        // Step 2: readiness, with its database check.
        .route("/ready", keel_health::handler::readiness_route(state.health.clone()))
        .fallback(|| async { Problem::not_found("no route matches this path; try GET /notes or GET /ready") })
        .layer(timing)
        .with_state(state)
}

/// The metrics listener's router: `/metrics` and nothing else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { Problem::not_found("this listener serves GET /metrics only") })
        .with_state(state)
}

/// The client's address, as axum's `ConnectInfo` records it (see [`crate::serve`]).
fn peer(ext: &axum::http::Extensions) -> Option<IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// `GET /notes`: step 3, the cached read.
async fn list_notes(State(s): State<AppState>) -> Result<Response, Problem> {
    let notes = s.cache.list(&s.notes).await.map_err(Problem::internal)?;
    let how = HeaderValue::from_static(if notes.was_hit() { "hit" } else { "miss" });
    Ok(([(X_CACHE, how)], Json(notes.value())).into_response())
}

/// `POST /notes` input.
#[derive(Debug, Deserialize)]
pub struct NewNote {
    /// The note; required.
    pub body: Option<String>,
}

/// `POST /notes`: step 4, the note and its job in one transaction; then step 3's invalidation.
async fn add_note(
    State(s): State<AppState>,
    input: Result<Json<NewNote>, JsonRejection>,
) -> Result<(StatusCode, Json<Note>), Problem> {
    let Json(input) = input?;
    let body = check_body(input.body)?;
    let mut tx = s.notes.begin().await.map_err(Problem::internal)?;
    let note = tx.add(&body).await.map_err(Problem::internal)?;
    tx.commit().await.map_err(Problem::internal)?;
    s.cache.invalidate().await;
    Ok((StatusCode::CREATED, Json(note)))
}

/// A note's body, trimmed: present, not blank, at most [`MAX_NOTE_CHARS`].
pub fn check_body(body: Option<String>) -> Result<String, Problem> {
    let Some(body) = body else {
        return Err(Problem::invalid("body", "is required: send {\"body\": \"your note\"}"));
    };
    let body = body.trim();
    if body.is_empty() {
        return Err(Problem::invalid("body", "must not be empty"));
    }
    let chars = body.chars().count();
    if chars > MAX_NOTE_CHARS {
        return Err(Problem::invalid("body", format!("must be at most {MAX_NOTE_CHARS} characters, got {chars}")));
    }
    Ok(body.to_owned())
}

/// `GET /metrics` (metrics listener only): the timing histogram and the cache's counters.
async fn metrics(State(s): State<AppState>) -> Response {
    let mut text = s.metrics.render();
    text.push_str(&s.cache.stats().to_prometheus());
    ([(header::CONTENT_TYPE, HeaderValue::from_static(keel_telemetry::METRICS_CONTENT_TYPE))], text).into_response()
}
