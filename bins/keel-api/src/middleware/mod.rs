//! The HTTP edge. tower-http's layers where it has one (request ids, access log, CORS,
//! sensitive headers, panics, compression), configured here; our own `from_fn` middleware where
//! the behaviour is Keel's (header bounds answered with problem+json, problem bodies for every
//! error, internal-header stripping, the per-request time budget). Reusable, configurable
//! middleware (rate limiting) lives in its crate as a tower layer.

mod access_log;
mod catch_panic;
mod compress;
mod cors;
mod header_limits;
mod problem_body;
mod request_id;
mod strip_internal;
mod time_budget;

pub(crate) use access_log::access_log;
pub(crate) use catch_panic::on_panic;
pub(crate) use compress::compression;
pub(crate) use cors::cors;
pub(crate) use header_limits::header_limits;
pub(crate) use problem_body::problem_bodies;
pub(crate) use request_id::{drop_malformed as drop_malformed_request_id, KeelRequestIds, REQUEST_ID};
pub(crate) use strip_internal::strip_internal_headers;
pub(crate) use time_budget::time_budget;
