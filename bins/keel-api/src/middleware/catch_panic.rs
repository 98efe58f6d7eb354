//! A panic in request handling answers 500 problem+json instead of dropping the connection.
//! tower-http's `CatchPanicLayer` sits just inside the request-id and access-log layers, so the
//! answer carries the request id (`X-Request-Id`) and gets its access-log line, and the
//! connection and the server go on serving.

use crate::ApiError;
use axum::response::{IntoResponse, Response};
use std::any::Any;

/// The panic's message is logged (redacted, like every internal cause), never sent.
pub(crate) fn on_panic(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".to_owned());
    ApiError::internal(format!("request handling panicked: {message}")).into_response()
}
