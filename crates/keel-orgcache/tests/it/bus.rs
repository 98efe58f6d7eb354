//! Two caches on the in-process bus: invalidations travel, unreadable messages and gaps flush.

use crate::{cache, org, tag};
use crate::{DASHBOARD, REFERENCE, SETTINGS};
use keel_orgcache::{Invalidation, LocalBus, OrgCache, Scope};
use std::convert::Infallible;

async fn pair() -> (OrgCache, OrgCache, keel_orgcache::BusTask, keel_orgcache::BusTask, LocalBus) {
    let bus = LocalBus::new(64);
    let (a, b) = (cache(), cache());
    let ta = bus.connect(&a).unwrap();
    let tb = bus.connect(&b).unwrap();
    assert!(ta.ready().await && tb.ready().await);
    (a, b, ta, tb, bus)
}

#[tokio::test]
async fn an_invalidation_in_one_cache_reaches_the_other() {
    let (a, b, _ta, tb, _bus) = pair().await;
    let o = org();
    let t = tag("services");
    let load = |v: u64| move || async move { Ok::<_, Infallible>(v) };
    // Loads are local: nothing is published.
    a.get_or_load(o, REFERENCE, "services", std::slice::from_ref(&t), load(1)).await.unwrap();
    b.get_or_load(o, REFERENCE, "services", std::slice::from_ref(&t), load(1)).await.unwrap();
    assert_eq!(tb.status().handled, 0);

    a.invalidate_tag(o, &t).await;
    assert!(tb.wait_until(|s| s.handled >= 1).await);
    assert!(b.get::<u64>(o, REFERENCE, "services").await.is_none(), "b dropped its copy");

    // A write-through insert in a also drops b's (older) copy; b reloads on its next read.
    b.get_or_load(o, REFERENCE, "services", std::slice::from_ref(&t), load(1)).await.unwrap();
    a.insert(o, REFERENCE, "services", std::slice::from_ref(&t), 2u64).await.unwrap();
    assert!(tb.wait_until(|s| s.handled >= 2).await);
    assert!(b.get::<u64>(o, REFERENCE, "services").await.is_none());
    assert_eq!(*a.get::<u64>(o, REFERENCE, "services").await.unwrap(), 2, "a ignores its own echo");
    assert_eq!(a.bus_stats().published, 2);
    assert_eq!(b.bus_stats().received, 2);
}

#[tokio::test]
async fn an_unreadable_message_flushes_its_org_or_everything() {
    let (_a, b, _ta, tb, bus) = pair().await;
    let (o1, o2) = (org(), org());
    for o in [o1, o2] {
        b.insert(o, SETTINGS, "s", &[], 1u64).await.unwrap();
    }
    let handled = tb.status().handled;
    // Org readable, bucket not: only that org is flushed.
    bus.send_raw(&format!("ko1 00000000000000aa {o1} nosuchbucket 1 *"));
    assert!(tb.wait_until(|s| s.handled > handled).await);
    assert!(b.get::<u64>(o1, SETTINGS, "s").await.is_none());
    assert!(b.get::<u64>(o2, SETTINGS, "s").await.is_some());

    // Nothing readable: everything is flushed, and the loop keeps running.
    let handled = tb.status().handled;
    bus.send_raw("\u{0}garbage");
    assert!(tb.wait_until(|s| s.handled > handled).await);
    assert!(b.get::<u64>(o2, SETTINGS, "s").await.is_none());
    assert_eq!(b.bus_stats().malformed, 2);
    assert!(tb.status().connected);
}

#[tokio::test]
async fn an_epoch_gap_from_a_sender_flushes_the_org() {
    let b = cache();
    let o = org();
    let t = tag("jobs");
    b.insert(o, DASHBOARD, "tagged", std::slice::from_ref(&t), 1u64).await.unwrap();
    b.insert(o, DASHBOARD, "untagged", &[], 1u64).await.unwrap();
    let msg = |epoch, scope| Invalidation { origin: 7, org: o, bucket: Some(DASHBOARD), scope, epoch }.encode();
    b.receive(&msg(1, Scope::Key("nothing".into()))).await;
    b.receive(&msg(2, Scope::Tag(t.clone()))).await;
    assert!(b.get::<u64>(o, DASHBOARD, "tagged").await.is_none());
    assert!(b.get::<u64>(o, DASHBOARD, "untagged").await.is_some(), "consecutive epochs: precise");
    // Epochs 3 and 4 were lost: whatever they removed is unknown, so the org is flushed.
    b.receive(&msg(5, Scope::Key("nothing".into()))).await;
    assert!(b.get::<u64>(o, DASHBOARD, "untagged").await.is_none());
    assert_eq!(b.bus_stats().gaps, 1);
}

#[tokio::test]
async fn a_lagging_receiver_resyncs() {
    let bus = LocalBus::new(1);
    let b = cache();
    let tb = bus.connect(&b).unwrap();
    assert!(tb.ready().await);
    let o = org();
    b.insert(o, SETTINGS, "s", &[], 1u64).await.unwrap();
    let before = tb.status().resyncs;
    // Overflow the one-slot queue before the receive loop runs (single-threaded runtime).
    for i in 0..3 {
        bus.send_raw(&Invalidation { origin: 9, org: org(), bucket: None, scope: Scope::All, epoch: i }.encode());
    }
    assert!(tb.wait_until(|s| s.resyncs > before).await);
    assert!(b.get::<u64>(o, SETTINGS, "s").await.is_none(), "lag means unknown losses: flush all");
}

#[tokio::test]
async fn a_cache_connects_to_one_bus_only() {
    let bus = LocalBus::new(8);
    let c = cache();
    let _t = bus.connect(&c).unwrap();
    assert!(matches!(bus.connect(&c), Err(keel_orgcache::BusError::AlreadyConnected)));
}
