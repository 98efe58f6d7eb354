//! Telemetry routes: browser/API-client route timings in, sampling configuration out. Ingest passes only the in-process `telemetry_ingest` limiter (no database
//! round trip) and never waits on the database: samples go to the bounded buffer.

use crate::{ApiError, AppState, FieldError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::ToSchema;

use super::openapi::{BadRequest, Invalid, TooLarge};
use super::schema;

/// The ingest body. Documentation only: `keel_telemetry::parse_ingest` reads the bytes itself
/// (so it can name every bad field at once), with the limits these schemas are built from.
/// (`Deserialize` is derived only for `deny_unknown_fields`, which utoipa turns into
/// `additionalProperties: false`, as the parser refuses unknown fields.)
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct RouteTimingBatch {
    #[schema(schema_with = events_schema)]
    events: Vec<RouteTimingEvent>,
}

/// One timing.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct RouteTimingEvent {
    /// The route template (`/invoices/{id}`), not the concrete path.
    #[schema(schema_with = route_schema)]
    route: String,
    #[schema(schema_with = kind_schema)]
    kind: String,
    /// Milliseconds.
    #[schema(schema_with = duration_schema)]
    duration_ms: f64,
    /// The HTTP status, for `api` timings.
    #[schema(minimum = 100, maximum = 599, nullable)]
    status: Option<u16>,
    /// RFC 3339, or unix milliseconds; at most 7 days old and 5 minutes ahead.
    #[schema(schema_with = occurred_at_schema)]
    occurred_at: String,
    /// One of the rates `GET /api/telemetry/config` serves; any other is 422.
    #[schema(schema_with = sample_rate_schema)]
    sample_rate: f64,
}

fn events_schema() -> utoipa::openapi::Array {
    schema::array_of("RouteTimingEvent", 0, keel_telemetry::MAX_EVENTS)
}
fn route_schema() -> Object {
    schema::string(1, keel_telemetry::MAX_ROUTE_LEN)
}
fn kind_schema() -> Object {
    use keel_telemetry::SampleKind;
    schema::one_of(&[SampleKind::Navigation.as_str(), SampleKind::Api.as_str()])
}
fn duration_schema() -> Object {
    let max_ms = keel_telemetry::MAX_DURATION.as_millis() as u64;
    ObjectBuilder::new().schema_type(Type::Number).minimum(Some(0)).maximum(Some(max_ms)).build()
}
fn occurred_at_schema() -> utoipa::openapi::Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        )
        .build()
        .into()
}
fn sample_rate_schema() -> Object {
    ObjectBuilder::new().schema_type(Type::Number).exclusive_minimum(Some(0)).maximum(Some(1)).build()
}

/// `POST /api/telemetry/route-timing` with `{"events": [...]}`: 202 when accepted, 204 when
/// ingest is switched off (`ROUTE_TELEMETRY_INGEST_DISABLED=true`), 400/413 naming the field
/// otherwise, and 422 naming `events[i].sample_rate` for a sample rate the server did not
/// publish at `/api/telemetry/config`. A batch is stored whole or not at all.
#[utoipa::path(
    post,
    path = "/api/telemetry/route-timing",
    tag = "telemetry",
    summary = "Ingest browser and API-client route timings",
    request_body = RouteTimingBatch,
    responses(
        (status = 202, description = "Accepted (stored whole, or dropped whole when the buffer is full)"),
        (status = 204, description = "Ingest is switched off (ROUTE_TELEMETRY_INGEST_DISABLED)"),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/telemetry/config",
    tag = "telemetry",
    summary = "Route telemetry sampling configuration",
    responses((status = 200, description = "What browsers should sample", body = keel_telemetry::ClientConfig))
)]
pub(crate) async fn config(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.config.telemetry.client_config())
}
