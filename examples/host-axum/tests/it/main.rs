//! host-axum end to end: the service on port 0 (both listeners) over a fresh database of each
//! backend, one test per adoption step; and the real binary started and stopped with SIGTERM.

mod process;
mod steps;
mod support;
