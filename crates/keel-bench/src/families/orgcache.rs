//! Bench family `orgcache`: keel-orgcache against raw moka built the same way (capacity, TTL,
//! weigher, eviction listener), on the same pre-built keys.
//!
//! Cases: the hit path (100 orgs x 1,000 keys, pre-warmed); a miss through single-flight
//! (`get_or_load` vs moka's `get_with`, ready loaders, fresh keys); invalidating one org's tag
//! covering 100 and 10,000 keys among 100,000 others (the reverse index vs moka's
//! `invalidate_entries_if` plus `run_pending_tasks` until every matching entry is removed);
//! each at 1 and 2 threads. Every thread drives its own current-thread tokio runtime, and the
//! two sides run alternately so noise from this shared machine lands on both.

use crate::report::{median, Row};
use keel_ids::OrgId;
use keel_orgcache::{Bucket, BucketConfig, CacheConfig, OrgCache, Tag};
use moka_peer::future::Cache as Moka;
use moka_peer::notification::RemovalCause;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const ORGS: usize = 100;
const KEYS_PER_ORG: usize = 1_000;
const HIT_OPS: usize = 1_000_000;
const MISS_OPS: usize = 100_000;
const ITERATIONS: usize = 7;
const INVALIDATION_ROUNDS: usize = 9;
const BUCKET: Bucket = Bucket::new("dashboard");
const TTL: Duration = Duration::from_secs(300);
const CAPACITY: u64 = 1 << 30;
const PEER: &str = "moka 0.12 future::Cache";

type PeerKey = (OrgId, String);

struct PeerValue {
    value: u64,
    tags: Box<[Tag]>,
}

/// Raw moka with the builder keel-orgcache uses for a bucket: same capacity, TTL, a weigher of
/// the same shape and an eviction listener. Invalidation closures are enabled only where the
/// predicate case needs them (they are a cost moka charges on every write).
fn peer_cache(closures: bool, removed: Arc<AtomicU64>) -> Moka<PeerKey, Arc<PeerValue>> {
    let b = Moka::builder()
        .name("peer")
        .max_capacity(CAPACITY)
        .time_to_live(TTL)
        .weigher(|k: &PeerKey, v: &Arc<PeerValue>| {
            u32::try_from(k.1.len() + 96 + std::mem::size_of_val(&v.value) + v.tags.len() * 16).unwrap_or(u32::MAX)
        })
        .eviction_listener(move |_k, _v, cause| {
            if cause == RemovalCause::Explicit {
                removed.fetch_add(1, Relaxed);
            }
        });
    if closures {
        b.support_invalidation_closures().build()
    } else {
        b.build()
    }
}

fn ours() -> OrgCache {
    let bucket = BucketConfig::new(TTL, CAPACITY).with_load_timeout(Duration::from_secs(30));
    OrgCache::new(&CacheConfig::new().with_bucket(BUCKET, bucket))
}

fn runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_time().build().map_err(|e| e.to_string())
}

/// Runs `work(thread, runtime)` on `threads` threads released together; returns the wall time.
fn timed_threads(threads: usize, work: &(dyn Fn(usize, &Runtime) + Sync)) -> Result<Duration, String> {
    let start = Barrier::new(threads + 1);
    let end = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for t in 0..threads {
            let (start, end) = (&start, &end);
            handles.push(s.spawn(move || -> Result<(), String> {
                let rt = runtime();
                start.wait();
                if let Ok(rt) = &rt {
                    work(t, rt);
                }
                end.wait();
                rt.map(drop)
            }));
        }
        start.wait();
        let t0 = Instant::now();
        end.wait();
        let elapsed = t0.elapsed();
        for h in handles {
            h.join().map_err(|_| "bench thread panicked".to_string())??;
        }
        Ok(elapsed)
    })
}

/// xorshift: a fixed pseudo-random access order, identical for both sides.
fn order(n: usize, modulo: usize, seed: u64) -> Vec<u32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % modulo as u64) as u32
        })
        .collect()
}

fn tag(s: &str) -> Result<Tag, String> {
    Tag::new(s).map_err(|e| e.to_string())
}

struct Data {
    orgs: Vec<OrgId>,
    keys: Vec<PeerKey>,
}

fn data() -> Data {
    let orgs: Vec<OrgId> = (0..ORGS).map(|_| OrgId::generate()).collect();
    let keys = (0..ORGS * KEYS_PER_ORG).map(|i| (orgs[i % ORGS], format!("chart:{:04}", i / ORGS))).collect();
    Data { orgs, keys }
}

fn hit_cases(rows: &mut Vec<Row>, d: &Data) -> Result<(), String> {
    let rt = runtime()?;
    let bg: Vec<Tag> = (0..10).map(|j| tag(&format!("bg{j}"))).collect::<Result<_, _>>()?;
    let keel = ours();
    let peer = peer_cache(false, Arc::default());
    rt.block_on(async {
        for (i, (o, k)) in d.keys.iter().enumerate() {
            let tags = std::slice::from_ref(&bg[i % 10]);
            let _ = keel.get_or_load(*o, BUCKET, k, tags, || async { Ok::<_, Infallible>(i as u64) }).await;
            peer.insert((*o, k.clone()), Arc::new(PeerValue { value: i as u64, tags: tags.into() })).await;
        }
        keel.run_pending_tasks().await;
        peer.run_pending_tasks().await;
    });
    let orders: Vec<Vec<u32>> = (0..2).map(|t| order(HIT_OPS, d.keys.len(), 0x9E37_79B9 + t)).collect();
    let keel_sum = AtomicU64::new(0);
    let peer_sum = AtomicU64::new(0);
    let keel_work = |t: usize, rt: &Runtime| {
        let s = rt.block_on(async {
            let mut s = 0u64;
            for &i in &orders[t] {
                let (o, k) = &d.keys[i as usize];
                if let Some(v) = keel.get::<u64>(*o, BUCKET, k).await {
                    s = s.wrapping_add(*v);
                }
            }
            s
        });
        keel_sum.fetch_add(black_box(s), Relaxed);
    };
    let peer_work = |t: usize, rt: &Runtime| {
        let s = rt.block_on(async {
            let mut s = 0u64;
            for &i in &orders[t] {
                if let Some(v) = peer.get(&d.keys[i as usize]).await {
                    s = s.wrapping_add(v.value);
                }
            }
            s
        });
        peer_sum.fetch_add(black_box(s), Relaxed);
    };
    for threads in [1, 2] {
        timed_threads(threads, &keel_work)?;
        timed_threads(threads, &peer_work)?;
        if keel_sum.swap(0, Relaxed) != peer_sum.swap(0, Relaxed) {
            return Err("hit path: the two caches returned different values".into());
        }
        let (mut ks, mut ps) = (Vec::new(), Vec::new());
        for _ in 0..ITERATIONS {
            let ops = (HIT_OPS * threads) as f64;
            ks.push(timed_threads(threads, &keel_work)?.as_nanos() as f64 / ops);
            ps.push(timed_threads(threads, &peer_work)?.as_nanos() as f64 / ops);
        }
        rows.push(
            Row::new(format!("hit/{threads}_thread"), "ns_per_op", median(ks), "lower")
                .vs(PEER, median(ps))
                .target("<= 1.2x raw moka"),
        );
    }
    let hits = keel.stats().bucket(BUCKET).map_or(0, |b| b.hits);
    if hits == 0 {
        return Err("hit path: no hits recorded".into());
    }
    Ok(())
}

fn miss_cases(rows: &mut Vec<Row>, d: &Data) -> Result<(), String> {
    // Fresh keys per thread; every call is a miss that runs a ready loader and stores.
    let keys: Vec<Vec<PeerKey>> =
        (0..2).map(|t| (0..MISS_OPS).map(|i| (d.orgs[i % ORGS], format!("miss:{t}:{i}"))).collect()).collect();
    for threads in [1, 2] {
        let (mut ks, mut ps) = (Vec::new(), Vec::new());
        for it in 0..=ITERATIONS {
            let keel = ours();
            let keel_work = |t: usize, rt: &Runtime| {
                rt.block_on(async {
                    for (i, (o, k)) in keys[t].iter().enumerate() {
                        let v = keel.get_or_load(*o, BUCKET, k, &[], || async { Ok::<_, Infallible>(i as u64) }).await;
                        black_box(v.is_ok());
                    }
                })
            };
            let keel_t = timed_threads(threads, &keel_work)?;
            let loads = keel.stats().bucket(BUCKET).map_or(0, |b| b.loads);
            if loads != (MISS_OPS * threads) as u64 {
                return Err(format!("miss path: expected {} loads, saw {loads}", MISS_OPS * threads));
            }
            let peer = peer_cache(false, Arc::default());
            let peer_work = |t: usize, rt: &Runtime| {
                rt.block_on(async {
                    for (i, k) in keys[t].iter().enumerate() {
                        let v = peer
                            .get_with(k.clone(), async { Arc::new(PeerValue { value: i as u64, tags: Box::new([]) }) })
                            .await;
                        black_box(v.value);
                    }
                })
            };
            let peer_t = timed_threads(threads, &peer_work)?;
            // The first round warms allocators and page tables for both.
            if it > 0 {
                let ops = (MISS_OPS * threads) as f64;
                ks.push(keel_t.as_nanos() as f64 / ops);
                ps.push(peer_t.as_nanos() as f64 / ops);
            }
        }
        rows.push(
            Row::new(format!("miss_single_flight/{threads}_thread"), "ns_per_op", median(ks), "lower")
                .vs(format!("{PEER} get_with"), median(ps)),
        );
    }
    Ok(())
}

fn invalidation_cases(rows: &mut Vec<Row>, d: &Data) -> Result<(), String> {
    let rt = runtime()?;
    let bg: Vec<Tag> = (0..10).map(|j| tag(&format!("bg{j}"))).collect::<Result<_, _>>()?;
    let target = tag("jobs")?;
    for covered in [100usize, 10_000] {
        for threads in [1usize, 2] {
            let keel = ours();
            let removed = Arc::new(AtomicU64::new(0));
            let peer = peer_cache(true, removed.clone());
            // 100,000 background entries in other orgs, then the covered keys of one org per
            // thread (re-inserted before every round, untimed).
            let targets: Vec<OrgId> = (0..threads).map(|_| OrgId::generate()).collect();
            rt.block_on(async {
                for (i, (o, k)) in d.keys.iter().enumerate() {
                    let tags = std::slice::from_ref(&bg[i % 10]);
                    let _ = keel.get_or_load(*o, BUCKET, k, tags, || async { Ok::<_, Infallible>(i as u64) }).await;
                    peer.insert((*o, k.clone()), Arc::new(PeerValue { value: i as u64, tags: tags.into() })).await;
                }
            });
            let fill = |rt: &Runtime| {
                rt.block_on(async {
                    for &o in &targets {
                        for i in 0..covered {
                            let k = format!("chart:{i}");
                            let tags = std::slice::from_ref(&target);
                            let _ =
                                keel.get_or_load(o, BUCKET, &k, tags, || async { Ok::<_, Infallible>(i as u64) }).await;
                            peer.insert((o, k), Arc::new(PeerValue { value: i as u64, tags: tags.into() })).await;
                        }
                    }
                    keel.run_pending_tasks().await;
                    // Every write applied (and timestamped) before the predicate is registered.
                    let expected = (d.keys.len() + covered * targets.len()) as u64;
                    for _ in 0..1000 {
                        peer.run_pending_tasks().await;
                        if peer.entry_count() == expected {
                            break;
                        }
                    }
                })
            };
            let keel_removed = AtomicU64::new(0);
            let keel_work = |t: usize, rt: &Runtime| {
                let n = rt.block_on(keel.invalidate_tag(targets[t], &target));
                keel_removed.fetch_add(n as u64, Relaxed);
            };
            let peer_work = |t: usize, rt: &Runtime| {
                let (o, tg) = (targets[t], target.clone());
                let registered =
                    peer.invalidate_entries_if(move |k: &PeerKey, v: &Arc<PeerValue>| k.0 == o && v.tags.contains(&tg));
                if registered.is_err() {
                    return;
                }
                // Until every covered entry is removed: each call scans one batch of 384 entries
                // of the write-order queue, so this takes about entries / 384 calls. Capped at
                // twice that, in case some entry is never matched (counted in `missed` below).
                let goal = (covered * threads) as u64;
                let cap = 2 * (peer.entry_count() / 384 + 1) + 50;
                rt.block_on(async {
                    for _ in 0..cap {
                        if removed.load(Relaxed) >= goal {
                            break;
                        }
                        peer.run_pending_tasks().await;
                    }
                });
            };
            // Covered entries moka still returns after its predicate finished.
            let visible = |rt: &Runtime| {
                rt.block_on(async {
                    let mut n = 0u64;
                    for &o in &targets {
                        for i in 0..covered {
                            n += u64::from(peer.get(&(o, format!("chart:{i}"))).await.is_some());
                        }
                    }
                    n
                })
            };
            let mut missed = 0u64;
            let (mut ks, mut ps) = (Vec::new(), Vec::new());
            for round in 0..=INVALIDATION_ROUNDS {
                fill(&rt);
                keel_removed.store(0, Relaxed);
                removed.store(0, Relaxed);
                let keel_t = timed_threads(threads, &keel_work)?;
                if keel_removed.load(Relaxed) != (covered * threads) as u64 {
                    return Err(format!(
                        "invalidate_tag removed {} of {}",
                        keel_removed.load(Relaxed),
                        covered * threads
                    ));
                }
                let peer_t = timed_threads(threads, &peer_work)?;
                missed += visible(&rt);
                if round > 0 {
                    ks.push(keel_t.as_secs_f64() * 1000.0);
                    ps.push(peer_t.as_secs_f64() * 1000.0);
                }
            }
            if missed > 0 {
                eprintln!(
                    "invalidate_tag_{covered}_keys/{threads}_thread: moka still returned {missed} covered entries \
                     after invalidate_entries_if + run_pending_tasks ({} rounds)",
                    INVALIDATION_ROUNDS + 1
                );
            }
            rows.push(
                Row::new(format!("invalidate_tag_{covered}_keys/{threads}_thread"), "ms_p50", median(ks), "lower")
                    .vs(format!("{PEER} invalidate_entries_if + run_pending_tasks"), median(ps)),
            );
        }
    }
    Ok(())
}

pub(crate) fn run() -> Result<Vec<Row>, String> {
    let d = data();
    let mut rows = Vec::new();
    hit_cases(&mut rows, &d)?;
    miss_cases(&mut rows, &d)?;
    invalidation_cases(&mut rows, &d)?;
    Ok(rows)
}
