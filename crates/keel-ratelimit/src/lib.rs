//! Exact, bounded GCRA rate limiting in process and, through the database, shared by every
//! instance; HTTP glue behind features.
//!
#![doc = include_str!("../README.md")]
//!
//! # What a quota means, exactly
//! A [`Quota`] of `N/P,burst=B` is a GCRA (generic cell rate algorithm, the "virtual scheduling"
//! form of a token bucket) with emission interval `T = P / N` and bucket size `B`. Each key keeps
//! one number, its theoretical arrival time (TAT); a request at `now` is admitted iff
//! `TAT <= now + T*(B-1)`, and then `TAT = max(TAT, now) + T`. In words: a key starts with `B`
//! tokens, a token comes back every `T`, and there is never more than `B`.
//!
//! For the admin floor `60/1m,burst=60` (`T` = 1 s, `B` = 60), a client that has been quiet:
//! - **in its first second** gets exactly **60** requests: all 60 may arrive at once; the 61st
//!   before the 1 s mark is refused with `Retry-After` equal to the time left to that mark;
//! - **in any rolling minute** gets at most **119**: the burst of 60 plus one per second for
//!   the other 59 seconds (`B - 1 + ceil(w / T)` in any window of length `w`, see
//!   [`Quota::max_in_window`]);
//! - **in the long run** gets 60 per minute, one per second.
//!
//! So "60 per minute" bounds the *rate*; the burst is extra headroom that must be earned back.
//! To bound a rolling window strictly instead, say "at most `M` in any `P`, in bursts of up to
//! `B`", configure `(M - B + 1)/P,burst=B`: `31/1m,burst=30` never admits more than 60 in any
//! minute, and `60/1m,burst=1` admits exactly one per second with no burst at all.
//!
//! The emission interval is `P / N` rounded down to whole nanoseconds, the only rounding
//! anywhere; a rejection never changes state, and retry-after is exact to the nanosecond
//! ([`Decision::retry_after`]).
//!
//! # Pieces
//! - [`KeyedLimiter`]: in process, one `AtomicU64` per key in a `DashMap`, a hard cap on keys
//!   with eviction done by the limiter itself (rule in its docs), allowed/rejected counters.
//! - [`Clock`], [`MonotonicClock`], [`FakeClock`]: injected time; tests never sleep.
//! - [`Policy`]: a policy you define (name, quota, backend, key kind), which builds its limiter.
//! - [`ClientIpResolver`] and [`TrustedProxies`]: the client address, believing forwarding
//!   headers only from trusted proxies, walked from the right.
//! - [`SharedLimiter`] (features `postgres`, `sqlite`): the same GCRA in one SQL statement per
//!   decision, on the database clock, lock-bounded, pruned automatically; `clear` forgets a key.
//! - [`LimitKey`]: client network (IPv6 by /64), user id, or normalised email.
//! - `SharedLimiter` (features `postgres`, `sqlite`): the same GCRA in one SQL statement per
//!   decision, on the database clock, lock-bounded, pruned automatically.
//! - `layer` (feature `tower`): the tower `Layer`/`Service`, answering RFC 9457 problems.

#![deny(missing_docs)]

mod cidr;
mod client_ip;
mod clock;
mod gcra;
mod key;
mod keyed;
mod limiter;
mod metrics;
mod policy;
mod quota;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod shared;
#[cfg(any(feature = "tower", feature = "postgres", feature = "sqlite"))]
mod throttle;

#[cfg(feature = "tower")]
pub mod layer;

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod schema;
pub use cidr::{Cidr, CidrError, TrustedProxies};
pub use client_ip::{ClientIpResolver, ForwardedHeader};
pub use clock::{Clock, FakeClock, MonotonicClock, FAKE_UNIX_ORIGIN};
pub use gcra::Decision;
pub use key::{network_of, LimitKey};
pub use keyed::{KeyedLimiter, DEFAULT_MAX_KEYS};
pub use limiter::{CheckFuture, Limiter, Outcome};
pub use metrics::LimiterMetrics;
pub use policy::{Backend, FailureMode, KeyKind, Policy};
pub use quota::{Quota, QuotaError, MAX_PERIOD};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use schema::{migrate, SCHEMA};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use shared::{SharedError, SharedLimiter, DEFAULT_DEADLINE, DEFAULT_LOCK_BUDGET, DEFAULT_PRUNE_EVERY};

#[cfg(test)]
mod tests;
