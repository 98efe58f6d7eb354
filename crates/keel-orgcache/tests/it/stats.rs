//! Statistics per bucket and their Prometheus rendering.

use crate::{cache, org, tag};
use crate::{DASHBOARD, SETTINGS};
use std::convert::Infallible;

#[tokio::test]
async fn hits_misses_loads_and_evictions_are_counted_per_bucket() {
    let c = cache();
    let o = org();
    let t = tag("jobs");
    let load = || async { Ok::<_, Infallible>(1u64) };
    c.get_or_load(o, DASHBOARD, "a", std::slice::from_ref(&t), load).await.unwrap();
    c.get_or_load(o, DASHBOARD, "a", std::slice::from_ref(&t), load).await.unwrap();
    c.get_or_load(o, DASHBOARD, "a", std::slice::from_ref(&t), load).await.unwrap();
    assert!(c.get::<u64>(o, SETTINGS, "missing").await.is_none());
    c.invalidate_tag(o, &t).await;
    c.run_pending_tasks().await;

    let s = c.stats();
    let d = s.bucket(DASHBOARD).unwrap();
    assert_eq!((d.hits, d.misses, d.loads), (2, 1, 1));
    assert_eq!(d.evictions.explicit, 1);
    assert_eq!(d.entries, 0);
    let st = s.bucket(SETTINGS).unwrap();
    assert_eq!((st.hits, st.misses), (0, 1));

    let text = s.to_prometheus();
    assert!(text.contains("keel_orgcache_hits_total{bucket=\"dashboard\"} 2"), "{text}");
    assert!(text.contains("keel_orgcache_evictions_total{bucket=\"dashboard\",cause=\"explicit\"} 1"), "{text}");
}
