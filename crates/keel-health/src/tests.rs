//! Unit tests for the internals: budget carving, the server-side timeout, error mapping.

use crate::check::CheckStatus;
use crate::database::{classify, server_timeout};
use crate::runner::budget;
use std::time::Duration;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn budget_is_the_smaller_of_own_timeout_and_deadline() {
    assert_eq!(budget(None, ms(2000)), ms(2000));
    assert_eq!(budget(Some(ms(300)), ms(2000)), ms(300));
    assert_eq!(budget(Some(ms(5000)), ms(2000)), ms(2000));
}

#[test]
fn server_timeout_sits_a_tenth_below_the_budget_capped_at_200ms() {
    assert_eq!(server_timeout(ms(500)), Some(ms(450)));
    assert_eq!(server_timeout(ms(2000)), Some(ms(1800)));
    // A tenth of 10 s would be 1 s of slack; the cap keeps the server close to the budget.
    assert_eq!(server_timeout(ms(10_000)), Some(ms(9_800)));
}

#[test]
fn server_timeout_is_never_zero_because_zero_disables_it() {
    assert_eq!(server_timeout(Duration::ZERO), None);
    assert_eq!(server_timeout(Duration::from_micros(900)), None);
    assert_eq!(server_timeout(ms(1)), None, "0.9 ms rounds down to 0 ms, which would mean no timeout");
    assert_eq!(server_timeout(ms(2)), Some(ms(1)));
}

#[test]
fn pool_exhaustion_is_a_timeout_and_io_failure_an_error() {
    let e = classify(sqlx::Error::PoolTimedOut);
    assert_eq!(e.status(), CheckStatus::Timeout);
    assert_eq!(e.detail(), Some("no database connection in time"));

    let e = classify(sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
    assert_eq!(e.status(), CheckStatus::Error);
    assert_eq!(e.detail(), Some("database unreachable"));

    let e = classify(sqlx::Error::PoolClosed);
    assert_eq!(e.status(), CheckStatus::Error);
}
