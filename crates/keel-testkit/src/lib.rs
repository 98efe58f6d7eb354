//! Test-only helpers: a fresh database per test on either backend, and a macro that runs one
//! test body against both.
//!
//! PostgreSQL is found through `TEST_DATABASE_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each test gets its own database, created
//! here and dropped when the [`TestDb`] is dropped. Without `TEST_DATABASE_URL` a Postgres test
//! prints `SKIPPED (postgres): <name>` straight to stderr (so it shows even when cargo captures
//! output) and returns; under `CI=true` it fails instead, so CI can never pass by skipping.
//! [`promtool_check_metrics`] follows the same rule for Prometheus' `promtool`.

mod process;
mod promtool;
mod testdb;

pub use process::{Proc, TEST_JOB_ENCRYPTION_KEY};
pub use promtool::promtool_check_metrics;
pub use testdb::{postgres_admin_url, TestDb};

/// Runs each listed `async fn name(db: TestDb)` once on SQLite and once on PostgreSQL, as the
/// tests `sqlite::name` and `postgres::name`. The River-style conformance pattern: every
/// behaviour written once, exercised on every backend.
///
/// Each database is fresh and has the listed component schemas installed:
/// `backend_tests!(schemas: &[&keel_queue::SCHEMA]; a, b)`. Without `schemas:`, the test
/// crate's root must define `const SCHEMAS: &[&keel_storage::Schema]` (an integration test
/// binary names its components once, in `main.rs`).
// `crate::SCHEMAS` deliberately names the calling test crate's constant (see above).
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! backend_tests {
    (schemas: $schemas:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDb::sqlite($schemas).await;
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::TestDb::postgres(concat!(module_path!(), "::", stringify!($name)), $schemas).await else {
                        return;
                    };
                    super::$name(db).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!(schemas: crate::SCHEMAS; $($name),*);
    };
}
