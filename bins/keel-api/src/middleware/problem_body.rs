//! Every error the server produces is problem+json, including those that do not come from an
//! `ApiError`: axum's extractor rejections (plain text) and bodiless error answers from layers.
//! They are rewritten here with the same status and headers; their text (axum's wording, never
//! an internal cause) becomes the `detail`.

use crate::ApiError;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

/// Rejection texts are a sentence; anything longer is not one and is not echoed.
const MAX_DETAIL_BYTES: usize = 1024;

pub(crate) async fn problem_bodies(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if !(res.status().is_client_error() || res.status().is_server_error()) {
        return res;
    }
    let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let plain = ct.is_empty() || ct.starts_with("text/plain");
    if !plain {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = match http_body_util::Limited::new(body, MAX_DETAIL_BYTES).collect().await {
        Ok(b) => String::from_utf8(b.to_bytes().to_vec()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    let reason = parts.status.canonical_reason().unwrap_or("Error");
    let detail = if text.trim().is_empty() { reason.to_owned() } else { text.trim().to_owned() };
    let mut out = ApiError::from_status(parts.status, detail).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    out
}
