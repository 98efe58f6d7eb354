//! Invalidations racing in-flight loads: the same scenario run on `OrgCache` (zero stale reads)
//! and on raw moka (which stores the value its load read before the invalidation).

use crate::{cache, org, tag, Gate};
use crate::{DASHBOARD, REFERENCE};
use keel_ids::OrgId;
use keel_orgcache::{OrgCache, Provenance, Tag};
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

/// What the scenario needs from a cache: a single-flight read-through and an invalidation.
trait Subject {
    async fn read<F: Future<Output = u64>>(&self, key: &str, load: impl FnOnce() -> F) -> u64;
    async fn invalidate(&self, key: &str);
    async fn peek(&self, key: &str) -> Option<u64>;
}

struct Ours(OrgCache, OrgId, Tag);

impl Subject for Ours {
    async fn read<F: Future<Output = u64>>(&self, key: &str, load: impl FnOnce() -> F) -> u64 {
        let tags = [self.2.clone()];
        let v = self.0.get_or_load(self.1, DASHBOARD, key, &tags, || async move { Ok::<_, Infallible>(load().await) });
        *v.await.unwrap()
    }
    async fn invalidate(&self, _key: &str) {
        self.0.invalidate_tag(self.1, &self.2).await;
    }
    async fn peek(&self, key: &str) -> Option<u64> {
        self.0.get::<u64>(self.1, DASHBOARD, key).await.map(|c| *c)
    }
}

struct RawMoka(moka::future::Cache<String, u64>);

impl Subject for RawMoka {
    async fn read<F: Future<Output = u64>>(&self, key: &str, load: impl FnOnce() -> F) -> u64 {
        self.0.get_with(key.to_owned(), async move { load().await }).await
    }
    async fn invalidate(&self, key: &str) {
        self.0.invalidate(key).await
    }
    async fn peek(&self, key: &str) -> Option<u64> {
        self.0.get(key).await
    }
}

/// A load reads version 1 and stalls; the data moves to version 2 and the key is invalidated;
/// then a new reader arrives, the stalled load finishes, and a last reader looks. Returns what
/// the two readers that started after the invalidation saw.
async fn stale_fill_scenario(subject: &impl Subject) -> (u64, Option<u64>) {
    let db = AtomicU64::new(1);
    let gate = Gate::new();
    let slow = subject.read("total", || async {
        let v = db.load(SeqCst);
        gate.pass().await;
        v
    });
    let after = async {
        gate.wait_entered(1).await;
        db.store(2, SeqCst);
        subject.invalidate("total").await;
        // Starts after the invalidation returned: must see version 2.
        let late = subject.read("total", || async { db.load(SeqCst) });
        let (late, ()) = tokio::join!(late, async {
            // Release the stalled load only once the late reader is waiting on (or past) it.
            tokio::task::yield_now().await;
            gate.open();
        });
        late
    };
    let (_first, late) = tokio::join!(slow, after);
    (late, subject.peek("total").await)
}

#[tokio::test]
async fn raw_moka_serves_the_value_its_load_read_before_the_invalidation() {
    let raw = RawMoka(moka::future::Cache::builder().max_capacity(1000).build());
    let (late, stored) = stale_fill_scenario(&raw).await;
    assert_eq!(late, 1, "moka hands the in-flight stale load to a reader that started after the invalidation");
    assert_eq!(stored, Some(1), "moka stores the stale value after the invalidation");
}

#[tokio::test]
async fn org_cache_serves_no_stale_value_in_the_same_scenario() {
    let ours = Ours(cache(), org(), tag("jobs"));
    let (late, stored) = stale_fill_scenario(&ours).await;
    assert_eq!(late, 2);
    assert_eq!(stored, Some(2));
    assert_eq!(ours.0.stats().bucket(DASHBOARD).unwrap().superseded_fills, 1);
}

#[tokio::test]
async fn the_overtaken_load_returns_its_value_flagged_and_unstored() {
    let c = cache();
    let o = org();
    let t = tag("jobs");
    let gate = Gate::new();
    let tags = [t.clone()];
    let slow = c.get_or_load(o, DASHBOARD, "k", &tags, || async {
        gate.pass().await;
        Ok::<_, Infallible>(1u64)
    });
    let (r, ()) = tokio::join!(slow, async {
        gate.wait_entered(1).await;
        c.invalidate_tag(o, &t).await;
        gate.open();
    });
    let r = r.unwrap();
    assert_eq!((*r, r.provenance()), (1, Provenance::Superseded));
    assert!(c.get::<u64>(o, DASHBOARD, "k").await.is_none(), "not stored");
    assert_eq!(c.tagged_len(o, DASHBOARD, &t), 0, "not indexed");
}

/// Per-key data: the database version and the version whose invalidation has completed.
struct Row {
    db: AtomicU64,
    published: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invalidations_and_loads_produce_zero_stale_reads() {
    const KEYS: usize = 16;
    const TAGS: usize = 4;
    let c = cache();
    let o = org();
    let rows: Arc<Vec<Row>> =
        Arc::new((0..KEYS).map(|_| Row { db: AtomicU64::new(0), published: AtomicU64::new(0) }).collect());
    let tags: Arc<Vec<Tag>> = Arc::new((0..TAGS).map(|i| tag(&format!("t{i}"))).collect());
    let stale = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));

    let mut tasks = Vec::new();
    for r in 0..4u64 {
        let (c, rows, tags, stale, reads) = (c.clone(), rows.clone(), tags.clone(), stale.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..3000u64 {
                let k = ((i * 7 + r * 3) % KEYS as u64) as usize;
                let floor = rows[k].published.load(SeqCst);
                let key = format!("k{k}");
                let rows2 = rows.clone();
                let got = if i % 3 == 0 {
                    c.get::<u64>(o, DASHBOARD, &key).await.map(|v| *v)
                } else {
                    let v = c
                        .get_or_load(o, DASHBOARD, &key, &[tags[k % TAGS].clone()], || async move {
                            let v = rows2[k].db.load(SeqCst);
                            // Widen the window between reading the data and storing it.
                            for _ in 0..(k % 3) {
                                tokio::task::yield_now().await;
                            }
                            Ok::<_, Infallible>(v)
                        })
                        .await
                        .unwrap();
                    Some(*v)
                };
                if let Some(v) = got {
                    reads.fetch_add(1, SeqCst);
                    if v < floor {
                        stale.fetch_add(1, SeqCst);
                    }
                }
            }
        }));
    }
    for w in 0..2u64 {
        let (c, rows, tags) = (c.clone(), rows.clone(), tags.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..600u64 {
                let t = ((i + w) % TAGS as u64) as usize;
                let members: Vec<usize> = (0..KEYS).filter(|k| k % TAGS == t).collect();
                if i % 5 == 0 {
                    // A single-key write.
                    let k = members[(i as usize / 5) % members.len()];
                    let v = rows[k].db.fetch_add(1, SeqCst) + 1;
                    c.invalidate_key(o, DASHBOARD, &format!("k{k}")).await;
                    rows[k].published.fetch_max(v, SeqCst);
                } else {
                    let vs: Vec<u64> = members.iter().map(|&k| rows[k].db.fetch_add(1, SeqCst) + 1).collect();
                    c.invalidate_tag(o, &tags[t]).await;
                    for (&k, v) in members.iter().zip(vs) {
                        rows[k].published.fetch_max(v, SeqCst);
                    }
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = c.stats();
    let d = s.bucket(DASHBOARD).unwrap();
    eprintln!("reads {} superseded {} loads {}", reads.load(SeqCst), d.superseded_fills, d.loads);
    assert!(reads.load(SeqCst) > 5000);
    assert_eq!(stale.load(SeqCst), 0, "a read returned data older than a completed invalidation");
}

/// Why tag invalidation goes through a reverse index rather than moka's predicates: besides
/// scanning the whole cache, moka 0.12.16's scan peeks one entry past each 384-entry batch and
/// never examines it, so once the predicate is retired those entries are readable again.
#[tokio::test]
async fn raw_moka_predicate_invalidation_leaves_entries_behind() {
    let removed = Arc::new(AtomicU64::new(0));
    let counter = removed.clone();
    let m: moka::future::Cache<u32, u32> = moka::future::Cache::builder()
        .support_invalidation_closures()
        .eviction_listener(move |_, _, _| {
            counter.fetch_add(1, SeqCst);
        })
        .build();
    for i in 0..1000 {
        m.insert(i, i).await;
    }
    m.run_pending_tasks().await;
    assert_eq!(m.entry_count(), 1000);
    m.invalidate_entries_if(|_, _| true).unwrap();
    // Drive the scan to its end: a pass that removes nothing means it is done.
    loop {
        let before = removed.load(SeqCst);
        m.run_pending_tasks().await;
        if removed.load(SeqCst) == before {
            break;
        }
    }
    let mut visible = 0;
    for i in 0..1000 {
        visible += usize::from(m.get(&i).await.is_some());
    }
    assert!(visible > 0, "moka removed every entry; the batch-boundary skip may be fixed upstream");
    assert_eq!(visible as u64, 1000 - removed.load(SeqCst));

    // The same job through the reverse index removes exactly the tagged entries.
    let c = cache();
    let o = org();
    let t = tag("all");
    for i in 0..1000 {
        c.insert(o, REFERENCE, &format!("k{i}"), std::slice::from_ref(&t), i as u64).await.unwrap();
    }
    assert_eq!(c.invalidate_tag(o, &t).await, 1000);
    for i in 0..1000 {
        assert!(c.get::<u64>(o, REFERENCE, &format!("k{i}")).await.is_none());
    }
}
