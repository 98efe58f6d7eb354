//! Bench family `ratelimit`: keel's in-process keyed limiter against governor 0.10's keyed
//! DashMap limiter, per check, on the same inputs.
//!
//! Same on both sides: DashMap 6 with its default shard count, `std::hash::RandomState`
//! (SipHash, what a limiter keyed by attacker-chosen input should use), `u64` keys generated
//! before timing, and the same clock kind (a frozen fake clock, which isolates the algorithm and
//! the map; and the std `Instant` monotonic clock, which is what production pays). The quota
//! never denies within a run, so every check takes the write (CAS) path, and both sides must
//! admit exactly the same number of requests before any figure is reported. keel also counts
//! each decision per policy and enforces its key cap (100,000 keys fit under the default cap),
//! which governor does not; those costs are inside keel's figure.
//!
//! The shared limiter has no peer: it is measured on PostgreSQL (a fresh database created from
//! `TEST_DATABASE_URL` and dropped afterwards) through its full production path (database clock,
//! deadline, counters), with one process's pool (10 connections) and 16 concurrent callers:
//! decisions per second on distinct keys, and latency percentiles with all 16 on one hot key.

use crate::report::{median, Row};
use governor::clock::{FakeRelativeClock, MonotonicClock as GovMonotonic};
use governor::{Quota as GovQuota, RateLimiter};
use keel_ratelimit::{Clock, FakeClock, KeyedLimiter, MonotonicClock, Quota};
use std::hash::RandomState;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const PEER: &str = "governor 0.10 keyed dashmap";
const ITERATIONS: usize = 21;
const CHECKS: usize = 1_000_000;
const KEYS: u64 = 100_000;
const THREADS: usize = 2;
/// One request per nanosecond with a burst of 2^31: no denial in any run below.
const BURST: u32 = 1 << 31;

fn keel_quota() -> Result<Quota, String> {
    Quota::new(1_000_000, Duration::from_millis(1), BURST).map_err(|e| e.to_string())
}

fn gov_quota() -> Result<GovQuota, String> {
    let burst = NonZeroU32::new(BURST).ok_or("burst is zero")?;
    Ok(GovQuota::with_period(Duration::from_nanos(1)).ok_or("zero period")?.allow_burst(burst))
}

/// Uniformly distributed keys in `0..KEYS` (xorshift; the same sequence for both sides).
fn uniform_keys(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % KEYS
        })
        .collect()
}

/// One limiter under test, behind a common face.
trait Check: Sync {
    fn allow(&self, key: &u64) -> bool;
}

impl<C: Clock> Check for KeyedLimiter<u64, C, RandomState> {
    #[inline]
    fn allow(&self, key: &u64) -> bool {
        self.check(key).is_allowed()
    }
}

impl<C> Check
    for RateLimiter<
        u64,
        governor::state::keyed::DashMapStateStore<u64, RandomState>,
        C,
        governor::middleware::NoOpMiddleware<C::Instant>,
    >
where
    C: governor::clock::Clock + Sync,
    C::Instant: Sync,
{
    #[inline]
    fn allow(&self, key: &u64) -> bool {
        self.check_key(key).is_ok()
    }
}

/// Admitted count over `keys`, one check each, on this thread.
fn run_keys(l: &dyn Check, keys: &[u64]) -> usize {
    keys.iter().filter(|k| l.allow(black_box(k))).count()
}

/// Nanoseconds per check for one pass over `streams`, one thread per stream, started together.
fn timed_pass(l: &dyn Check, streams: &[Vec<u64>]) -> (f64, usize) {
    let checks: usize = streams.iter().map(Vec::len).sum();
    if streams.len() == 1 {
        let t = Instant::now();
        let admitted = run_keys(l, &streams[0]);
        return (t.elapsed().as_nanos() as f64 / checks as f64, admitted);
    }
    let barrier = Barrier::new(streams.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = streams
            .iter()
            .map(|keys| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    run_keys(l, keys)
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
        // Wall time for all threads over all their checks: aggregate cost per check.
        (t.elapsed().as_nanos() as f64 / checks as f64, admitted)
    })
}

/// Median ns per check for keel and governor, alternating passes so machine noise lands on both.
fn paired(keel: &dyn Check, gov: &dyn Check, streams: &[Vec<u64>]) -> Result<(f64, f64), String> {
    // Warm-up pass: inserts every key, so timed passes measure the steady state.
    let (_, a) = timed_pass(keel, streams);
    let (_, b) = timed_pass(gov, streams);
    if a != b {
        return Err(format!("warm-up admitted {a} (keel) vs {b} (governor): the quotas differ"));
    }
    let (mut ks, mut gs) = (Vec::new(), Vec::new());
    for _ in 0..ITERATIONS {
        let (k, a) = timed_pass(keel, streams);
        let (g, b) = timed_pass(gov, streams);
        if a != b {
            return Err(format!("admitted {a} (keel) vs {b} (governor) on the same trace"));
        }
        ks.push(k);
        gs.push(g);
    }
    Ok((median(ks), median(gs)))
}

fn scenarios() -> Vec<(&'static str, Vec<Vec<u64>>)> {
    let per_thread = CHECKS / THREADS;
    vec![
        ("single_key", vec![vec![42; CHECKS]]),
        ("100k_keys_uniform", vec![uniform_keys(CHECKS, 0x9E37_79B9_7F4A_7C15)]),
        (
            "100k_keys_uniform_2_threads",
            (0..THREADS as u64).map(|t| uniform_keys(per_thread, 0xD1B5_4A32_D192_ED03 ^ t)).collect(),
        ),
    ]
}

fn in_process_rows(rows: &mut Vec<Row>) -> Result<(), String> {
    for (name, streams) in scenarios() {
        for clock in ["fake_clock", "monotonic_clock"] {
            let (k, g) = if clock == "fake_clock" {
                let keel =
                    KeyedLimiter::with_clock_and_hasher("bench", keel_quota()?, FakeClock::new(), RandomState::new());
                let gov = RateLimiter::dashmap_with_clock_and_hasher(
                    gov_quota()?,
                    FakeRelativeClock::default(),
                    RandomState::new(),
                );
                paired(&keel, &gov, &streams)?
            } else {
                let keel = KeyedLimiter::with_clock_and_hasher(
                    "bench",
                    keel_quota()?,
                    MonotonicClock::new(),
                    RandomState::new(),
                );
                let gov = RateLimiter::dashmap_with_clock_and_hasher(gov_quota()?, GovMonotonic, RandomState::new());
                paired(&keel, &gov, &streams)?
            };
            rows.push(
                Row::new(format!("in_process/{name}/{clock}"), "ns_per_op", k, "lower")
                    .vs(PEER, g)
                    .target("ratio <= 1.0"),
            );
        }
    }
    Ok(())
}

pub(crate) fn run() -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    in_process_rows(&mut rows)?;
    shared::rows(&mut rows)?;
    Ok(rows)
}

mod shared {
    //! The shared limiter on PostgreSQL.

    use crate::report::{median, percentile_ms, Row};
    use crate::scratch::ScratchPg;
    use keel_ratelimit::{LimitKey, Outcome, Quota, SharedLimiter};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const CALLERS: usize = 16;
    const RUN_FOR: Duration = Duration::from_secs(3);
    const ROUNDS: usize = 3;

    #[derive(Default)]
    struct Tally {
        decided: usize,
        unavailable: usize,
        latencies: Vec<Duration>,
    }

    /// `CALLERS` tasks deciding for `RUN_FOR`; `key_of(caller, i)` picks each key.
    async fn drive(l: &Arc<SharedLimiter>, key_of: fn(usize, usize) -> LimitKey) -> (Tally, Duration) {
        let start = Instant::now();
        let tasks: Vec<_> = (0..CALLERS)
            .map(|c| {
                let l = Arc::clone(l);
                tokio::spawn(async move {
                    let mut t = Tally::default();
                    let mut i = 0;
                    while start.elapsed() < RUN_FOR {
                        let key = key_of(c, i);
                        let began = Instant::now();
                        match l.check(&key).await {
                            Outcome::Decided(_) => t.decided += 1,
                            _ => t.unavailable += 1,
                        }
                        t.latencies.push(began.elapsed());
                        i += 1;
                    }
                    t
                })
            })
            .collect();
        let mut all = Tally::default();
        for task in tasks {
            if let Ok(t) = task.await {
                all.decided += t.decided;
                all.unavailable += t.unavailable;
                all.latencies.extend(t.latencies);
            }
        }
        (all, start.elapsed())
    }

    fn distinct(c: usize, i: usize) -> LimitKey {
        LimitKey::user(format!("caller{c}-key{}", i % 10_000))
    }

    fn hot(_: usize, _: usize) -> LimitKey {
        LimitKey::user("hot")
    }

    async fn measure(rows: &mut Vec<Row>) -> Result<(), String> {
        let b = ScratchPg::create("ratelimit", &[&keel_ratelimit::SCHEMA]).await?;
        // Never denies within a run: every decision takes the write path.
        let quota = Quota::new(1_000, Duration::from_millis(1), u32::MAX / 2).map_err(|e| e.to_string())?;
        let l = Arc::new(SharedLimiter::with_quota(b.db.clone(), "bench", quota));
        let _ = drive(&l, distinct).await; // warm-up: connections, plans, rows
        let (mut rates, mut unavailable) = (Vec::new(), 0);
        for _ in 0..ROUNDS {
            let (t, elapsed) = drive(&l, distinct).await;
            rates.push(t.decided as f64 / elapsed.as_secs_f64());
            unavailable += t.unavailable;
        }
        let (mut hot_rates, mut p50s, mut p99s, mut hot_unavailable, mut hot_total) = (vec![], vec![], vec![], 0, 0);
        for _ in 0..ROUNDS {
            let (mut t, elapsed) = drive(&l, hot).await;
            hot_rates.push(t.decided as f64 / elapsed.as_secs_f64());
            p50s.push(percentile_ms(&mut t.latencies, 50.0));
            p99s.push(percentile_ms(&mut t.latencies, 99.0));
            hot_unavailable += t.unavailable;
            hot_total += t.decided + t.unavailable;
        }
        b.drop_db().await;
        if unavailable > 0 {
            eprintln!("note: {unavailable} distinct-key checks got no decision");
        }
        eprintln!("note: hot key: {hot_unavailable} of {hot_total} checks hit the 50 ms lock budget");
        rows.push(
            Row::new("shared_postgres/16_callers_distinct_keys", "ops_per_s", median(rates), "higher")
                .target(">= 5,000 decisions/s"),
        );
        rows.push(Row::new("shared_postgres/16_callers_hot_key", "ops_per_s", median(hot_rates), "higher"));
        rows.push(Row::new("shared_postgres/16_callers_hot_key", "ms_p50", median(p50s), "lower"));
        rows.push(
            Row::new("shared_postgres/16_callers_hot_key", "ms_p99", median(p99s), "lower")
                .target("<= 60 ms (50 ms lock budget + 10)"),
        );
        Ok(())
    }

    pub(super) fn rows(rows: &mut Vec<Row>) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(measure(rows))
    }
}
