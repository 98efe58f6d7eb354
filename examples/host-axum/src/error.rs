//! The service's error answer: an RFC 9457 `application/problem+json` document with a clear
//! message, naming the field when the input was at fault. Causes are logged, never sent.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One field the client must fix.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON field, e.g. `body`.
    pub field: &'static str,
    /// What is wrong with it and what would be right.
    pub message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
}

impl Problem {
    /// 422: the request parsed, but `field` is not acceptable.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Problem {
        let message = message.into();
        Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            title: "Invalid input",
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    }

    /// 404 for a path no route answers.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem { status: StatusCode::NOT_FOUND, title: "Not found", detail: detail.into(), errors: Vec::new() }
    }

    /// 500: logs `cause` and tells the client only that it failed.
    pub fn internal(cause: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %cause, "request failed");
        Problem {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Internal error",
            detail: "the request could not be completed; it is safe to retry".into(),
            errors: Vec::new(),
        }
    }

    /// The status this problem answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// A body that is not JSON is 400; JSON of the wrong shape is 422, with serde's message, which
/// names the field (`missing field `body``).
impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Problem {
        let (status, title) = match r {
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid input"),
            JsonRejection::MissingJsonContentType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"),
            _ => (StatusCode::BAD_REQUEST, "Malformed request"),
        };
        Problem { status, title, detail: r.body_text(), errors: Vec::new() }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Body {
            kind: "about:blank",
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        res
    }
}
