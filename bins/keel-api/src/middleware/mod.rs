//! App-only middleware (`from_fn`): request ids and the access log, internal-header stripping,
//! CORS. Reusable, configurable middleware (rate limiting) lives in its crate as a tower layer.

mod cors;
mod request_log;
mod strip_internal;

pub(crate) use cors::cors;
pub(crate) use request_log::request_log;
pub(crate) use strip_internal::strip_internal_headers;
