//! `X-Request-Id`: a well-formed id from the client or a proxy is kept (so one id follows a
//! request across hops); a missing one is generated and a malformed one (odd characters that
//! could forge log lines, see `keel_ids::RequestId::parse`) is replaced. tower-http's
//! `SetRequestId` and `PropagateRequestId` set it on the request and copy it to the response.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use tower_http::request_id::{MakeRequestId, RequestId};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Generates ids in `keel_ids::RequestId`'s format (a UUIDv7: sortable by time in logs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeelRequestIds;

impl MakeRequestId for KeelRequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(keel_ids::RequestId::generate().as_str()).ok().map(RequestId::new)
    }
}

/// Runs before `SetRequestId`, which only fills in an absent header: an id our rule refuses,
/// or more than one id, is removed so that a fresh one takes its place.
pub(crate) fn drop_malformed(mut req: Request) -> Request {
    let ids = req.headers().get_all(&REQUEST_ID);
    let mut it = ids.iter();
    let acceptable = match (it.next(), it.next()) {
        (Some(v), None) => v.to_str().ok().is_some_and(|s| keel_ids::RequestId::parse(s).is_ok()),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !acceptable {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}
