//! Tag invalidation removes exactly the tagged entries, through the reverse index, and the
//! index follows replacements and evictions.

use crate::{cache, org, tag};
use crate::{DASHBOARD, REFERENCE};
use keel_orgcache::OrgCache;
use std::convert::Infallible;

#[tokio::test]
async fn invalidating_a_tag_removes_exactly_its_entries() {
    let c = cache();
    let o = org();
    let (jobs, invoices) = (tag("jobs"), tag("invoices"));
    c.insert(o, DASHBOARD, "jobs_only", std::slice::from_ref(&jobs), 1u64).await.unwrap();
    c.insert(o, DASHBOARD, "both", &[jobs.clone(), invoices.clone()], 2u64).await.unwrap();
    c.insert(o, DASHBOARD, "invoices_only", std::slice::from_ref(&invoices), 3u64).await.unwrap();
    c.insert(o, DASHBOARD, "untagged", &[], 4u64).await.unwrap();
    c.insert(o, REFERENCE, "ref_jobs", std::slice::from_ref(&jobs), 5u64).await.unwrap();

    assert_eq!(c.invalidate_bucket_tag(o, DASHBOARD, &jobs).await, 2);
    assert!(c.get::<u64>(o, DASHBOARD, "jobs_only").await.is_none());
    assert!(c.get::<u64>(o, DASHBOARD, "both").await.is_none());
    assert!(c.get::<u64>(o, DASHBOARD, "invoices_only").await.is_some());
    assert!(c.get::<u64>(o, DASHBOARD, "untagged").await.is_some());
    assert!(c.get::<u64>(o, REFERENCE, "ref_jobs").await.is_some(), "other bucket untouched");
    // "both" left the invoices set too, so the index holds no dangling key.
    assert_eq!(c.tagged_len(o, DASHBOARD, &invoices), 1);

    // Without a bucket the tag is invalidated everywhere in the org.
    assert_eq!(c.invalidate_tag(o, &jobs).await, 1);
    assert!(c.get::<u64>(o, REFERENCE, "ref_jobs").await.is_none());
    assert_eq!(c.invalidate_tag(o, &tag("unknown")).await, 0);
}

#[tokio::test]
async fn a_replaced_entry_keeps_only_its_new_tags() {
    let c = cache();
    let o = org();
    let (old, new) = (tag("old"), tag("new"));
    c.insert(o, REFERENCE, "k", std::slice::from_ref(&old), 1u64).await.unwrap();
    c.insert(o, REFERENCE, "k", std::slice::from_ref(&new), 2u64).await.unwrap();
    assert_eq!(c.invalidate_tag(o, &old).await, 0, "the old tag no longer covers the key");
    assert_eq!(*c.get::<u64>(o, REFERENCE, "k").await.unwrap(), 2);
    assert_eq!(c.invalidate_tag(o, &new).await, 1);
    assert!(c.get::<u64>(o, REFERENCE, "k").await.is_none());
}

#[tokio::test]
async fn loaded_entries_carry_their_tags() {
    let c = cache();
    let o = org();
    let t = tag("services");
    let v = c
        .get_or_load(o, REFERENCE, "services", std::slice::from_ref(&t), || async { Ok::<_, Infallible>(3u64) })
        .await
        .unwrap();
    assert_eq!(v.tags(), std::slice::from_ref(&t));
    assert_eq!(c.tagged_len(o, REFERENCE, &t), 1);
    assert_eq!(c.invalidate_tag(o, &t).await, 1);
    assert!(c.get::<u64>(o, REFERENCE, "services").await.is_none());
}

#[tokio::test]
async fn the_index_is_cleaned_when_moka_evicts_for_size() {
    // Room for a handful of 4 KiB entries only.
    let c = OrgCache::new(&crate::config().with_max_weight(REFERENCE, 32 * 1024));
    let o = org();
    let t = tag("catalog");
    for i in 0..64 {
        c.insert(o, REFERENCE, &format!("k{i}"), std::slice::from_ref(&t), vec![0u8; 4096]).await.unwrap();
        c.run_pending_tasks().await;
    }
    c.run_pending_tasks().await;
    let mut live = 0;
    for i in 0..64 {
        live += usize::from(c.get::<Vec<u8>>(o, REFERENCE, &format!("k{i}")).await.is_some());
    }
    let stats = c.stats();
    let r = stats.bucket(REFERENCE).unwrap();
    assert!(r.evictions.size > 0, "capacity must have forced evictions: {r:?}");
    assert!(live < 64);
    assert_eq!(c.org_len(o, REFERENCE), live, "index keeps exactly the live keys");
    assert_eq!(c.tagged_len(o, REFERENCE, &t), live);
    assert!(r.weighted_size <= 32 * 1024, "bounded: {}", r.weighted_size);
}
