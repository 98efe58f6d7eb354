//! The API's one error type: renders RFC 9457 `application/problem+json` and never leaks
//! internals (SQL, stack traces, secrets); the cause is logged instead.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Base of every problem `type` URI; the slug after it is stable and documented.
pub const PROBLEM_BASE: &str = "https://keel.dev/problems/";

/// One field a request got wrong, named by its path (`line_items[3].quantity`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's path in the body, or the parameter's name.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Boxed so `Result<T, ApiError>` stays one pointer wide on the happy path.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ProblemDetails>);

#[derive(Debug, Clone)]
pub struct ProblemDetails {
    pub status: StatusCode,
    /// Stable slug, e.g. `invalid-input`, `not-found`, `rate-limited`.
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_s: Option<u64>,
    /// Logged, never sent.
    pub internal: Option<String>,
    /// The database refused a write (disk full or failing): the response is marked so health
    /// reports it (see `write_health`).
    pub write_refused: bool,
}

/// The body of every error answer (RFC 9457 problem details), as sent and as the OpenAPI
/// document describes it (the `Problem` schema is derived from this struct). Layers answer the
/// same shape and may add members (the rate limiter adds `policy` and `retry_after`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub(crate) struct Problem<'a> {
    /// `https://keel.dev/problems/<slug>`; the slug is stable.
    #[serde(rename = "type")]
    type_: String,
    /// A short, human-readable summary of the problem type.
    title: &'a str,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong with this request.
    detail: &'a str,
    /// Every field the request got wrong, when the problem is about its input.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(required = false)]
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDetails {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_s: None,
            internal: None,
            write_refused: false,
        }))
    }

    /// 400: the input could not be parsed at all.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Malformed request", detail)
    }

    /// 422: parsed, but a value is not acceptable; names the field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "Invalid input",
            format!("{field}: {message}"),
        );
        e.errors.push(FieldError { field: field.to_owned(), message });
        e
    }

    /// 422 naming a field given as a runtime path (`line_items[3].quantity`).
    pub fn invalid_field(field: String, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "Invalid input",
            format!("{field}: {message}"),
        );
        e.errors.push(FieldError { field, message });
        e
    }

    /// 400 naming a field (a query parameter that does not parse at all).
    pub fn bad_param(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::bad_request(format!("{field}: {message}"));
        e.errors.push(FieldError { field: field.to_owned(), message });
        e
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    /// 503 with `Retry-After`: a dependency is unavailable; retrying later may work.
    pub fn unavailable(detail: impl Into<String>, retry_after_s: u64) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Temporarily unavailable", detail);
        e.retry_after_s = Some(retry_after_s);
        e
    }

    /// An error answer made by the framework or a layer rather than a handler, with its status
    /// and a safe `detail`; the slug follows the status.
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let (slug, title) = match status.as_u16() {
            400 => ("bad-request", "Malformed request"),
            401 => ("unauthorized", "Authentication required"),
            403 => ("forbidden", "Not allowed"),
            404 => ("not-found", "Not found"),
            405 => ("method-not-allowed", "Method not allowed"),
            408 => ("request-timeout", "Request timeout"),
            413 => ("too-large", "Request body too large"),
            414 => ("uri-too-long", "URI too long"),
            415 => ("unsupported-media-type", "Unsupported media type"),
            422 => ("invalid-input", "Invalid input"),
            429 => ("rate-limited", "Too many requests"),
            431 => ("headers-too-large", "Request header fields too large"),
            503 => ("unavailable", "Temporarily unavailable"),
            s if s >= 500 => ("internal", "Internal error"),
            _ => ("client-error", "Request refused"),
        };
        Self::new(status, slug, title, detail)
    }

    /// 500 with a generic message; `cause` is only logged.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed to handle this request; it has been logged",
        );
        e.internal = Some(cause.to_string());
        e
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.title, self.detail)
    }
}

impl std::ops::Deref for ApiError {
    type Target = ProblemDetails;
    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

/// `Retry-After` when the database refuses writes for lack of space: an operator has to free
/// space first, so a client retrying every second would only add load.
pub const WRITE_REFUSED_RETRY_AFTER_S: u64 = 5;

impl From<keel_storage::StorageError> for ApiError {
    fn from(e: keel_storage::StorageError) -> Self {
        if e.is_storage_full() {
            let mut a = ApiError::unavailable(
                "the database cannot store writes right now; nothing was stored, retry shortly",
                WRITE_REFUSED_RETRY_AFTER_S,
            );
            a.internal = Some(e.to_string());
            a.write_refused = true;
            a
        } else if e.is_unavailable() {
            let mut a = ApiError::unavailable("the database is unavailable; retry shortly", 1);
            a.internal = Some(e.to_string());
            a
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        keel_storage::StorageError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            if self.write_refused {
                tracing::error!(
                    status = self.status.as_u16(),
                    cause = %keel_telemetry::redact(cause),
                    "write refused by the database (disk full or failing); readiness reports the database degraded"
                );
            } else {
                tracing::error!(status = self.status.as_u16(), cause = %keel_telemetry::redact(cause), "request failed");
            }
        }
        let body = Problem {
            type_: format!("{PROBLEM_BASE}{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (self.status, json).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(s) = self.retry_after_s {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.write_refused {
            res.extensions_mut().insert(crate::write_health::WriteRefused);
        }
        res
    }
}

/// Tenancy errors: bad input is 422 naming the field; storage failures map as storage errors.
pub(crate) fn from_tenancy(e: keel_tenancy::TenancyError) -> ApiError {
    use keel_tenancy::TenancyError as T;
    match e {
        T::Invalid { field, message } => ApiError::invalid(field, message),
        T::EmailTaken => ApiError::invalid("email", "is already registered"),
        T::UnknownOrg(_) => ApiError::not_found("no such org"),
        T::UnknownUser(_) => ApiError::not_found("no such user"),
        T::Storage(s) => s.into(),
        other @ T::Hash(_) => ApiError::internal(other),
    }
}
