//! Telemetry routes: browser/API-client route timings in, sampling configuration out. Ingest passes only the in-process `telemetry_ingest` limiter (no database
//! round trip) and never waits on the database: samples go to the bounded buffer.

use crate::{ApiError, AppState, FieldError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

/// `POST /api/telemetry/route-timing` with `{"events": [...]}`: 202 when accepted, 204 when
/// ingest is switched off (`ROUTE_TELEMETRY_INGEST_DISABLED=true`), 400/413 naming the field
/// otherwise, and 422 naming `events[i].sample_rate` for a sample rate the server did not
/// publish at `/api/telemetry/config`. A batch is stored whole or not at all.
pub(crate) async fn ingest(State(state): State<AppState>, req: Request) -> Result<StatusCode, ApiError> {
    if state.config.telemetry.ingest_disabled {
        return Ok(StatusCode::NO_CONTENT);
    }
    // A body announced as too large is refused before a byte of it is buffered (so the body is
    // read here, not by an extractor that would wait for all of it); one that only turns out too
    // large while streaming fails the read below at the route's `DefaultBodyLimit`. Both name
    // `body`, like every other 400/413 of this route.
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > keel_telemetry::MAX_BODY_BYTES as u64) {
        return Err(body_too_large());
    }
    let body = Bytes::from_request(req, &state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            body_too_large()
        } else {
            ApiError::bad_param("body", "could not be read (the upload failed or was cut short)")
        }
    })?;
    let samples = keel_telemetry::parse_ingest(&body, chrono::Utc::now())
        .and_then(|samples| {
            keel_telemetry::check_sample_rates(&samples, &state.config.telemetry.published_rates()).map(|()| samples)
        })
        .map_err(|e| {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            let mut a = match status {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(status, "too-large", "Request body too large", e.to_string())
                }
                StatusCode::UNPROCESSABLE_ENTITY => {
                    ApiError::new(status, "invalid-input", "Invalid input", e.to_string())
                }
                _ => ApiError::bad_request(e.to_string()),
            };
            a.errors = e.problems().into_iter().map(|p| FieldError { field: p.field, message: p.message }).collect();
            a
        })?;
    // A full buffer drops the batch and counts it; the client's answer does not change, since
    // telemetry must never make a page slower or fail.
    let _ = state.recorder.record_all(samples);
    Ok(StatusCode::ACCEPTED)
}

/// 413 naming `body`, worded like `keel_telemetry::IngestError::BodyTooLarge`.
fn body_too_large() -> ApiError {
    let message =
        format!("at most {} bytes are accepted; send fewer events per request", keel_telemetry::MAX_BODY_BYTES);
    let mut e =
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Request body too large", format!("body: {message}"));
    e.errors.push(FieldError { field: "body".to_owned(), message });
    e
}

/// `GET /api/telemetry/config`: what browsers should sample.
pub(crate) async fn config(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.config.telemetry.client_config())
}
