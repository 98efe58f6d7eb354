//! Telemetry routes: browser/API-client route timings in, sampling configuration out, and the
//! Prometheus scrape. Ingest passes only the in-process `telemetry_ingest` limiter (no database
//! round trip) and never waits on the database: samples go to the bounded buffer.

use crate::{ApiError, AppState, FieldError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `POST /api/telemetry/route-timing` with `{"events": [...]}`: 202 when accepted, 204 when
/// ingest is switched off (`ROUTE_TELEMETRY_INGEST_DISABLED=true`), 400/413 naming the field
/// otherwise. A batch is stored whole or not at all.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, ApiError> {
    if state.config.telemetry.ingest_disabled {
        return Ok(StatusCode::NO_CONTENT);
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request body too large",
                format!("telemetry batches are at most {} bytes", keel_telemetry::MAX_BODY_BYTES),
            )
        } else {
            ApiError::bad_request("the request body could not be read")
        }
    })?;
    let samples = keel_telemetry::parse_ingest(&body, chrono::Utc::now()).map_err(|e| {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut a = if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "too-large", "Request body too large", e.to_string())
        } else {
            ApiError::bad_request(e.to_string())
        };
        a.errors = e.problems().into_iter().map(|p| FieldError { field: p.field, message: p.message }).collect();
        a
    })?;
    // A full buffer drops the batch and counts it; the client's answer does not change, since
    // telemetry must never make a page slower or fail.
    let _ = state.recorder.record_all(samples);
    Ok(StatusCode::ACCEPTED)
}

/// `GET /api/telemetry/config`: what browsers should sample.
pub(crate) async fn config(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.config.telemetry.client_config())
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    // Queue gauges come from one bounded snapshot query; if it is slow the other families
    // still answer, with the previous gauge values.
    if let Some(g) = &state.queue_gauges {
        if let Ok(Ok(s)) = tokio::time::timeout(std::time::Duration::from_secs(1), state.queue.snapshot()).await {
            let samples = keel_queue::JobState::ALL
                .iter()
                .map(|st| keel_telemetry::metrics::Sample::new([st.as_str()], s.counts.get(*st) as f64))
                .collect();
            let _ = g.replace(samples);
        }
    }
    let mut res = state.metrics.render().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(keel_telemetry::METRICS_CONTENT_TYPE));
    res
}
