//! Request extractors with the API's own rejections: every failure is problem+json naming the
//! field, never axum's plain-text defaults.

use crate::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON body: 413 past the body limit, 400 when it is not JSON or an amount is malformed,
/// 422 naming the exact path (`line_items[3].quantity`) when it is JSON of the wrong shape or
/// with unknown fields.
pub(crate) struct AppJson<T>(pub(crate) T);

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Request body too large",
        "the body is larger than the server accepts (KEEL_BODY_LIMIT_BYTES)",
    )
}

impl<T: DeserializeOwned> FromRequest<crate::AppState> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &crate::AppState) -> Result<Self, ApiError> {
        // A body announced as too large is refused before a byte of it is read.
        let announced =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > state.config.body_limit) {
            return Err(too_large());
        }
        let is_json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::bad_request("send the body as JSON with Content-Type: application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(AppJson)
    }
}

/// Fields holding money end in this: integer minor units (`unit_amount_minor`, `amount_minor`).
const AMOUNT_SUFFIX: &str = "amount_minor";

/// A JSON body read and parsed, but judged only when the handler asks: a handler that needs a
/// permission checks it first, so a caller without it gets 403 and learns nothing about the
/// body's rules (not a 422 naming a field it may not write). Rejections are those of [`AppJson`].
pub(crate) struct JsonAfterAuth<T>(Result<T, ApiError>);

impl<T> JsonAfterAuth<T> {
    /// The body, or the problem with it; call after the permission check.
    pub(crate) fn parse(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest<crate::AppState> for JsonAfterAuth<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &crate::AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(AppJson::<T>::from_request(req, state).await.map(|AppJson(v)| v)))
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut de);
    // One JSON value and nothing after it: `{…}xyz` is not a JSON document, and accepting it
    // would let a proxy and this server disagree on what was sent.
    if parsed.is_ok() && de.end().is_err() {
        return Err(ApiError::bad_param(
            "body",
            "has data after the JSON value; send exactly one JSON value (trailing whitespace is fine)",
        ));
    }
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { "body".to_owned() } else { path };
                    // serde's message without its "at line 1 column 12" suffix.
                    let msg = inner.to_string();
                    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                    if is_amount(&field) && is_bad_value(&msg) {
                        return Err(malformed_amount(&field, &msg));
                    }
                    Err(ApiError::invalid_field(field, msg))
                }
                _ => Err(ApiError::bad_request(format!("the body is not valid JSON: {inner}"))),
            }
        }
    }
}

/// The last segment of a path such as `invoices[2].line_items[0].unit_amount_minor`.
fn is_amount(field: &str) -> bool {
    field.rsplit('.').next().is_some_and(|last| last.ends_with(AMOUNT_SUFFIX))
}

/// serde's wording for a value of the wrong type or out of range, as opposed to a missing or
/// unknown field (an unknown `foo_amount_minor` is a shape error, still 422).
fn is_bad_value(msg: &str) -> bool {
    msg.starts_with("invalid type: ") || msg.starts_with("invalid value: ")
}

/// 400, not 422: `"12.50"` or `1.5` where minor units are expected is not a value we could
/// judge but a client that has not understood the format (money is never a float here), and
/// guessing (rounding 12.5 cents, reading "12.50" as dollars) would silently bill a wrong sum.
fn malformed_amount(field: &str, serde_msg: &str) -> ApiError {
    // `invalid type: string "12.50", expected i64` → `string "12.50"`: the Rust type is noise.
    let got = serde_msg.split_once(": ").map_or(serde_msg, |(_, rest)| rest);
    let got = got.rsplit_once(", expected").map_or(got, |(g, _)| g);
    let range = if serde_msg.starts_with("invalid value: ") { " that fit in 64 bits" } else { "" };
    ApiError::bad_param(
        field,
        format!("amounts are integers in minor units (e.g. cents: 1250 for 12.50){range}; got {got}"),
    )
}

/// A query string parsed into name → value, so each handler parses its own fields with
/// messages that name them (axum's `Query` rejects with plain text).
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        q.split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect()
    })
    .unwrap_or_default()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Looks a query parameter up by name (last one wins, as most servers do).
pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        unit_amount_minor: i64,
        quantity: i64,
    }

    fn problem(json: &str) -> ApiError {
        parse_json::<Vec<Line>>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn malformed_amounts_are_400_naming_the_field() {
        for (json, got) in [
            (r#"[{"unit_amount_minor": "12.50", "quantity": 1}]"#, r#"string "12.50""#),
            (r#"[{"unit_amount_minor": 1.5, "quantity": 1}]"#, "floating point `1.5`"),
            (r#"[{"unit_amount_minor": null, "quantity": 1}]"#, "null"),
            (r#"[{"unit_amount_minor": 9223372036854775808, "quantity": 1}]"#, "integer `9223372036854775808`"),
        ] {
            let e = problem(json);
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{json}");
            assert_eq!(e.errors[0].field, "[0].unit_amount_minor");
            assert!(e.errors[0].message.contains("minor units"), "{}", e.errors[0].message);
            assert!(e.errors[0].message.ends_with(got), "{}", e.errors[0].message);
        }
    }

    #[test]
    fn other_shape_errors_stay_422() {
        // A wrong type elsewhere, a missing amount, and an unknown field that merely looks like one.
        for json in [
            r#"[{"unit_amount_minor": 1, "quantity": "2"}]"#,
            r#"[{"quantity": 2}]"#,
            r#"[{"unit_amount_minor": 1, "quantity": 2, "discount_amount_minor": 5}]"#,
        ] {
            assert_eq!(problem(json).status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        }
    }

    #[test]
    fn trailing_bytes_after_the_value_are_400_naming_body() {
        let ok: Vec<Line> = parse_json(b"[{\"unit_amount_minor\": 1, \"quantity\": 2}] \n\t").unwrap();
        assert_eq!(ok.len(), 1, "trailing whitespace is fine");
        for json in [r#"[{"unit_amount_minor": 1, "quantity": 2}]xyz"#, "[]{}", "[] []", "[]\u{0}"] {
            let e = problem(json);
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{json}");
            assert_eq!(e.errors[0].field, "body", "{json}");
        }
    }

    #[test]
    fn query_decoding() {
        let p = query_pairs(Some("q=a%25b+c&limit=10&x&q=%2"));
        assert_eq!(param(&p, "limit"), Some("10"));
        assert_eq!(param(&p, "x"), Some(""));
        assert_eq!(param(&p, "q"), Some("%2"));
        assert_eq!(p[0].1, "a%b c");
    }
}
