//! App-only middleware (`from_fn`): request ids and the access log.

mod request_log;

pub(crate) use request_log::request_log;
