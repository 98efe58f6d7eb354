//! Org A can never see or remove org B's values, even with identical keys and tags.

use crate::{cache, org, tag, Gate};
use crate::{DASHBOARD, REFERENCE, SETTINGS};
use keel_orgcache::LoadError;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test]
async fn identical_keys_in_two_orgs_are_two_entries() {
    let c = cache();
    let (a, b) = (org(), org());
    let t = [tag("services")];
    c.insert(a, REFERENCE, "services", &t, "A's catalog".to_string()).await.unwrap();
    assert!(c.get::<String>(b, REFERENCE, "services").await.is_none(), "B must not see A's entry");

    let loads = AtomicUsize::new(0);
    let got = c
        .get_or_load(b, REFERENCE, "services", &t, || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>("B's catalog".to_string())
        })
        .await
        .unwrap();
    assert_eq!(*got, "B's catalog");
    assert_eq!(loads.load(Ordering::SeqCst), 1, "B's miss runs B's loader, never reuses A's value");
    assert_eq!(*c.get::<String>(a, REFERENCE, "services").await.unwrap(), "A's catalog");
    assert_eq!(*c.get::<String>(b, REFERENCE, "services").await.unwrap(), "B's catalog");
}

#[tokio::test]
async fn invalidating_a_tag_in_one_org_leaves_the_other_org_alone() {
    let c = cache();
    let (a, b) = (org(), org());
    let t = [tag("pricing")];
    for o in [a, b] {
        for k in ["p1", "p2"] {
            c.insert(o, REFERENCE, k, &t, format!("{o}:{k}")).await.unwrap();
        }
    }
    assert_eq!(c.invalidate_tag(a, &t[0]).await, 2);
    for k in ["p1", "p2"] {
        assert!(c.get::<String>(a, REFERENCE, k).await.is_none());
        assert_eq!(*c.get::<String>(b, REFERENCE, k).await.unwrap(), format!("{b}:{k}"));
    }
    assert_eq!(c.tagged_len(b, REFERENCE, &t[0]), 2);
    assert_eq!(c.tagged_len(a, REFERENCE, &t[0]), 0);
}

#[tokio::test]
async fn key_and_org_flushes_stay_in_their_org() {
    let c = cache();
    let (a, b) = (org(), org());
    for o in [a, b] {
        c.insert(o, SETTINGS, "settings", &[], 7u64).await.unwrap();
        c.insert(o, DASHBOARD, "chart:2026-01", &[], 1u64).await.unwrap();
    }
    assert_eq!(c.invalidate_key(a, SETTINGS, "settings").await, 1);
    assert!(c.get::<u64>(a, SETTINGS, "settings").await.is_none());
    assert!(c.get::<u64>(b, SETTINGS, "settings").await.is_some());

    assert_eq!(c.flush_org(a, None).await, 1);
    assert!(c.get::<u64>(a, DASHBOARD, "chart:2026-01").await.is_none());
    assert!(c.get::<u64>(b, DASHBOARD, "chart:2026-01").await.is_some());
    assert!(c.get::<u64>(b, SETTINGS, "settings").await.is_some());
}

#[tokio::test]
async fn concurrent_loads_of_one_key_in_two_orgs_do_not_share_a_flight() {
    let c = cache();
    let (a, b) = (org(), org());
    let gate = Gate::new();
    let load = |o: keel_ids::OrgId| {
        let gate = &gate;
        let c = &c;
        async move {
            c.get_or_load(o, DASHBOARD, "total", &[], || async move {
                gate.pass().await;
                Ok::<_, Infallible>(o.to_string())
            })
            .await
        }
    };
    let (ra, rb, ()) = tokio::join!(load(a), load(b), async {
        // Both loaders run: neither org waited on the other's flight.
        gate.wait_entered(2).await;
        gate.open();
    });
    assert_eq!(*ra.unwrap(), a.to_string());
    assert_eq!(*rb.unwrap(), b.to_string());
}

#[tokio::test]
async fn a_type_mismatch_is_an_error_not_a_panic() {
    let c = cache();
    let a = org();
    c.insert(a, REFERENCE, "k", &[], 5u64).await.unwrap();
    assert!(c.get::<String>(a, REFERENCE, "k").await.is_none());
    let r = c.get_or_load(a, REFERENCE, "k", &[], || async { Ok::<_, Infallible>("x".to_string()) }).await;
    assert!(matches!(r, Err(LoadError::TypeMismatch { bucket: REFERENCE, .. })), "{r:?}");
    assert_eq!(c.stats().bucket(REFERENCE).unwrap().type_mismatches, 2);
}

#[tokio::test]
async fn a_bucket_the_cache_was_not_built_with_stores_nothing_and_says_so() {
    const OTHER: keel_orgcache::Bucket = keel_orgcache::Bucket::new("other");
    let c = cache();
    let o = org();
    let unknown = keel_orgcache::NameError::UnknownBucket(OTHER);
    assert_eq!(c.insert(o, OTHER, "k", &[], 1u64).await.err(), Some(unknown.clone()));
    let r = c.get_or_load(o, OTHER, "k", &[], || async { Ok::<_, Infallible>(1u64) }).await;
    assert!(matches!(&r, Err(LoadError::InvalidName(e)) if *e == unknown), "{r:?}");
    assert!(r.unwrap_err().to_string().contains("\"other\" is not configured"));
    assert!(c.get::<u64>(o, OTHER, "k").await.is_none());
    assert_eq!(c.invalidate_key(o, OTHER, "k").await, 0);
    assert_eq!(c.flush_org(o, Some(OTHER)).await, 0);
    assert_eq!(c.loads_in_flight(OTHER), 0);
    assert!(c.stats().bucket(OTHER).is_none());
    assert_eq!(c.bus_stats().published, 0);
}
