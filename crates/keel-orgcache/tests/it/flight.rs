//! Single-flight loading: one loader per key, shared errors never cached, panics and timeouts
//! confined to their callers, cancelled leaders replaced.

use crate::{cache, org, DbDown, Gate};
use crate::{DASHBOARD, REFERENCE, SETTINGS};
use futures::future::join_all;
use keel_orgcache::{LoadError, OrgCache, Provenance};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_run_one_loader() {
    let c = cache();
    let o = org();
    let loads = AtomicUsize::new(0);
    let gate = Gate::new();
    let calls = (0..50).map(|_| {
        c.get_or_load(o, DASHBOARD, "chart:2026-01..2026-03", &[], || async {
            loads.fetch_add(1, SeqCst);
            gate.pass().await;
            Ok::<_, Infallible>(vec![1u64, 2, 3])
        })
    });
    let (results, ()) = tokio::join!(join_all(calls), async {
        gate.wait_entered(1).await;
        gate.open();
    });
    assert_eq!(loads.load(SeqCst), 1);
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|v| **v == vec![1, 2, 3])));
    let s = c.stats();
    let d = s.bucket(DASHBOARD).unwrap();
    assert_eq!(d.loads, 1);
    // A hit afterwards does not load again.
    let again = c.get_or_load(o, DASHBOARD, "chart:2026-01..2026-03", &[], || async {
        loads.fetch_add(1, SeqCst);
        Ok::<Vec<u64>, Infallible>(vec![])
    });
    assert!(again.await.unwrap().was_hit());
    assert_eq!(loads.load(SeqCst), 1);
}

#[tokio::test]
async fn a_loader_error_reaches_every_waiter_and_is_not_cached() {
    let c = cache();
    let o = org();
    let loads = AtomicUsize::new(0);
    let gate = Gate::new();
    let calls = (0..5).map(|_| {
        c.get_or_load(o, REFERENCE, "lead_sources", &[], || async {
            loads.fetch_add(1, SeqCst);
            gate.pass().await;
            Err::<u64, _>(DbDown("primary"))
        })
    });
    let (results, ()) = tokio::join!(join_all(calls), async {
        gate.wait_entered(1).await;
        gate.open();
    });
    assert_eq!(loads.load(SeqCst), 1);
    for r in &results {
        assert_eq!(r.as_ref().unwrap_err().loader_error(), Some(&DbDown("primary")));
    }
    // Not cached: the next call runs the loader again and can succeed.
    let ok = c
        .get_or_load(o, REFERENCE, "lead_sources", &[], || async {
            loads.fetch_add(1, SeqCst);
            Ok::<u64, DbDown>(9)
        })
        .await
        .unwrap();
    assert_eq!(*ok, 9);
    assert_eq!(loads.load(SeqCst), 2);
    assert_eq!(c.stats().bucket(REFERENCE).unwrap().load_failures, 1);
}

async fn panicking_loader() -> Result<u64, Infallible> {
    panic!("loader bug");
}

#[tokio::test]
async fn a_panicking_loader_fails_only_its_callers_and_leaves_the_cache_usable() {
    let c = cache();
    let o = org();
    c.insert(o, REFERENCE, "other", &[], 1u64).await.unwrap();
    let gate = Gate::new();
    let leader = c.get_or_load(o, REFERENCE, "k", &[], || async {
        gate.pass().await;
        panicking_loader().await
    });
    let waiter = c.get_or_load(o, REFERENCE, "k", &[], || async { Ok::<u64, Infallible>(2) });
    let (r1, r2, ()) = tokio::join!(leader, waiter, async {
        gate.wait_entered(1).await;
        gate.open();
    });
    assert!(matches!(r1, Err(LoadError::Panicked { bucket: REFERENCE })), "{r1:?}");
    assert!(matches!(r2, Err(LoadError::Panicked { .. })), "the waiter shares the leader's failure: {r2:?}");
    // A loader that panics before returning a future is confined the same way.
    let r3 = c
        .get_or_load(o, REFERENCE, "k2", &[], || -> std::future::Ready<Result<u64, Infallible>> {
            panic!("sync panic")
        })
        .await;
    assert!(matches!(r3, Err(LoadError::Panicked { .. })));
    // The cache still works: other entries intact, the key loads normally now.
    assert_eq!(*c.get::<u64>(o, REFERENCE, "other").await.unwrap(), 1);
    let r4 = c.get_or_load(o, REFERENCE, "k", &[], || async { Ok::<u64, Infallible>(3) }).await.unwrap();
    assert_eq!(*r4, 3);
    assert_eq!(c.stats().bucket(REFERENCE).unwrap().load_panics, 2);
    assert_eq!(c.loads_in_flight(REFERENCE), 0);
}

#[tokio::test(start_paused = true)]
async fn a_loader_past_the_timeout_fails_its_callers_and_is_dropped() {
    let c = OrgCache::new(&crate::config().with_load_timeout(Duration::from_secs(2)));
    let o = org();
    let dropped = std::sync::Arc::new(AtomicUsize::new(0));
    struct OnDrop(std::sync::Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let guard = OnDrop(dropped.clone());
    let r = c
        .get_or_load(o, DASHBOARD, "slow", &[], || async move {
            let _g = guard;
            std::future::pending::<()>().await;
            Ok::<u64, Infallible>(1)
        })
        .await;
    assert!(matches!(r, Err(LoadError::TimedOut { bucket: DASHBOARD, after }) if after == Duration::from_secs(2)));
    assert_eq!(dropped.load(SeqCst), 1, "the hung loader was dropped, not leaked");
    let ok = c.get_or_load(o, DASHBOARD, "slow", &[], || async { Ok::<u64, Infallible>(5) }).await.unwrap();
    assert_eq!(*ok, 5);
    assert_eq!(c.stats().bucket(DASHBOARD).unwrap().load_timeouts, 1);
}

#[tokio::test]
async fn a_cancelled_leader_leaves_no_flight_behind() {
    let c = cache();
    let o = org();
    let gate = Gate::new();
    let loads = AtomicUsize::new(0);
    let leader = async {
        let r = tokio::time::timeout(Duration::from_secs(3600), async {
            c.get_or_load(o, SETTINGS, "s", &[], || async {
                loads.fetch_add(1, SeqCst);
                gate.pass().await;
                Ok::<u64, Infallible>(1)
            })
            .await
        });
        // Cancel the leader by dropping its future as soon as its loader is running.
        tokio::select! {
            _ = r => panic!("the leader must not finish"),
            () = gate.wait_entered(1) => {}
        }
    };
    leader.await;
    // The flight of the cancelled leader is gone, so a new caller leads and loads.
    assert_eq!(c.loads_in_flight(SETTINGS), 0);
    let v = c
        .get_or_load(o, SETTINGS, "s", &[], || async {
            loads.fetch_add(1, SeqCst);
            Ok::<u64, Infallible>(2)
        })
        .await
        .unwrap();
    assert_eq!((*v, v.provenance()), (2, Provenance::Loaded));
    assert_eq!(loads.load(SeqCst), 2);
}

#[tokio::test]
async fn a_waiter_whose_leader_is_cancelled_loads_itself() {
    let c = cache();
    let o = org();
    let gate = Gate::new();
    let leader_gate = Gate::new();
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let leader = async {
        tokio::select! {
            _ = c.get_or_load(o, SETTINGS, "s", &[], || async {
                leader_gate.pass().await;
                Ok::<u64, Infallible>(1)
            }) => panic!("cancelled before finishing"),
            _ = cancel_rx => {}
        }
    };
    let waiter = async {
        leader_gate.wait_entered(1).await;
        c.get_or_load(o, SETTINGS, "s", &[], || async {
            gate.pass().await;
            Ok::<u64, Infallible>(2)
        })
        .await
    };
    let driver = async {
        leader_gate.wait_entered(1).await;
        // Let the waiter join the leader's flight before cancelling the leader.
        tokio::task::yield_now().await;
        let _ = cancel_tx.send(());
        gate.wait_entered(1).await;
        gate.open();
    };
    let ((), w, ()) = tokio::join!(leader, waiter, driver);
    assert_eq!(*w.unwrap(), 2, "the waiter ran its own loader after the leader vanished");
}
