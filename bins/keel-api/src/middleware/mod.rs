//! App-only middleware (`from_fn`): request ids and the access log, internal-header stripping,
//! CORS, the per-request time budget. Reusable, configurable middleware (rate limiting) lives in
//! its crate as a tower layer.

mod cors;
mod request_log;
mod strip_internal;
mod time_budget;

pub(crate) use cors::cors;
pub(crate) use request_log::request_log;
pub(crate) use strip_internal::strip_internal_headers;
pub(crate) use time_budget::time_budget;
