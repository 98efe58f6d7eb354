//! Unit tests of the internals: reverse index, message encoding, settings, epoch tracking.

use crate::bucket::{Bucket, POLICIES};
use crate::config::CacheConfig;
use crate::key::{CacheKey, KeyRef, Tag};
use crate::message::{Invalidation, Scope};
use crate::state::TagIndex;
use keel_config::{MapSource, Reader};
use keel_ids::OrgId;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

fn tag(s: &str) -> Tag {
    Tag::new(s).unwrap()
}

#[test]
fn borrowed_and_owned_keys_hash_alike() {
    let org = OrgId::generate();
    let s = RandomState::new();
    let owned = CacheKey::new(org, "chart:2026-01");
    assert_eq!(s.hash_one(&owned), s.hash_one(KeyRef { org, key: "chart:2026-01" }));
    assert_ne!(s.hash_one(&owned), s.hash_one(KeyRef { org: OrgId::generate(), key: "chart:2026-01" }));
}

#[test]
fn the_index_tracks_tags_replacements_and_evictions() {
    let mut ix = TagIndex::default();
    let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
    ix.register(&a, 1, &[tag("x"), tag("y")]);
    ix.register(&b, 2, &[tag("y")]);
    assert_eq!((ix.tag_len(&tag("x")), ix.tag_len(&tag("y"))), (1, 2));
    // Replacing a's entry drops its old tags.
    ix.register(&a, 3, &[tag("z")]);
    assert_eq!((ix.tag_len(&tag("x")), ix.tag_len(&tag("y")), ix.tag_len(&tag("z"))), (0, 1, 1));
    // An eviction notice for the replaced entry (id 1) must not remove the new one.
    ix.unregister_if("a", 1);
    assert_eq!(ix.len(), 2);
    ix.unregister_if("a", 3);
    assert_eq!(ix.len(), 1);
    assert_eq!(ix.take_tag(&tag("y")), vec![b.clone()]);
    assert_eq!(ix.len(), 0);
    ix.register(&a, 4, &[]);
    assert_eq!(ix.take_all(), vec![a]);
}

#[test]
fn tags_are_parsed() {
    assert!(Tag::new("lead_sources:v2").is_ok());
    for bad in ["", "with space", "semi;colon", "é", &"x".repeat(65)] {
        let e = Tag::new(bad).unwrap_err();
        assert!(e.to_string().contains("cache tag must be"), "{e}");
    }
}

#[test]
fn messages_round_trip() {
    let org = OrgId::generate();
    for (bucket, scope) in [
        (Some(Bucket::Reference), Scope::Tag(tag("services"))),
        (None, Scope::Tag(tag("jobs"))),
        (None, Scope::All),
        (Some(Bucket::Dashboard), Scope::All),
        (Some(Bucket::Dashboard), Scope::Key("chart 2026/01 ü %".into())),
    ] {
        let m = Invalidation { origin: 0xdead_beef, org, bucket, scope, epoch: 42 };
        let text = m.encode();
        assert!(!text.contains('\n') && text.split(' ').count() == 6, "{text}");
        assert_eq!(Invalidation::parse(&text).unwrap(), m, "{text}");
    }
    let longest = Invalidation {
        origin: u64::MAX,
        org,
        bucket: Some(Bucket::Settings),
        scope: Scope::Key("\u{7f}".repeat(crate::key::MAX_KEY_LEN)),
        epoch: u64::MAX,
    };
    assert!(longest.encode().len() < 8000, "fits a NOTIFY payload");
}

#[test]
fn unreadable_messages_say_which_org_they_concerned() {
    let org = OrgId::generate();
    let cases = [
        (format!("ko1 01 {org} reference 1 t:bad tag"), Some(org)),
        (format!("ko1 01 {org} nosuch 1 *"), Some(org)),
        (format!("ko1 01 {org} reference x *"), Some(org)),
        (format!("ko1 01 {org} * 1 k:key"), Some(org)),
        (format!("ko1 01 {org} reference 1 k:%zz"), Some(org)),
        (format!("ko2 01 {org} reference 1 *"), Some(org)),
        (format!("ko1 zz {org} reference 1 *"), Some(org)),
        ("ko1 01 not-an-org reference 1 *".to_string(), None),
        (String::new(), None),
        ("ko1".to_string(), None),
    ];
    for (text, want) in cases {
        let e = Invalidation::parse(&text).unwrap_err();
        assert_eq!(e.org, want, "{text}: {e}");
        assert!(e.to_string().starts_with("unreadable cache invalidation message"));
    }
}

#[test]
fn settings_read_ttls_and_capacities_and_report_mistakes() {
    let src = MapSource::new([
        ("KEEL_CACHE_TTL_DASHBOARD", "5m"),
        ("KEEL_CACHE_TTL_REFERENCE", "30s"),
        ("KEEL_CACHE_CAPACITY_MB_SETTINGS", "2"),
        ("KEEL_CACHE_LOAD_TIMEOUT", "5s"),
    ]);
    let mut r = Reader::new(&src);
    let cfg = CacheConfig::from_reader(&mut r);
    assert!(r.finish().is_ok());
    assert_eq!(cfg.bucket(Bucket::Dashboard).ttl, Duration::from_secs(300));
    assert_eq!(cfg.bucket(Bucket::Reference).ttl, Duration::from_secs(30));
    assert_eq!(cfg.bucket(Bucket::Settings).ttl, POLICIES[2].ttl);
    assert_eq!(cfg.bucket(Bucket::Settings).max_weight, 2 * 1024 * 1024);
    assert_eq!(cfg.bucket(Bucket::Reference).load_timeout, Duration::from_secs(5));

    let src = MapSource::new([
        ("KEEL_CACHE_TTL_DASHBORD", "5m"),
        ("KEEL_CACHE_TTL_SETTINGS", "five minutes"),
        ("KEEL_CACHE_TTL_REFERENCE", "2d"),
        ("KEEL_CACHE_CAPACITY_MB_DASHBOARD", "0"),
    ]);
    let mut r = Reader::new(&src);
    let cfg = CacheConfig::from_reader(&mut r);
    assert_eq!(cfg, CacheConfig::default(), "every bad value falls back to the default");
    let problems = r.finish().unwrap_err();
    let vars: Vec<&str> = problems.0.iter().map(|p| p.var.as_str()).collect();
    assert_eq!(
        vars,
        [
            "KEEL_CACHE_TTL_REFERENCE",
            "KEEL_CACHE_CAPACITY_MB_DASHBOARD",
            "KEEL_CACHE_TTL_SETTINGS",
            "KEEL_CACHE_TTL_DASHBORD"
        ]
    );
    assert!(problems.0[3].message.contains("REFERENCE, DASHBOARD, SETTINGS"), "{}", problems.0[3].message);
}

#[test]
fn the_policy_table_is_in_bucket_order() {
    for b in Bucket::ALL {
        assert_eq!(b.policy().bucket, b);
        assert_eq!(Bucket::parse(b.as_str()), Some(b));
    }
    assert_eq!(Bucket::Dashboard.policy().ttl, Duration::from_secs(300));
}

#[tokio::test]
async fn the_configured_ttl_and_capacity_reach_moka() {
    let cfg = CacheConfig::default()
        .with_ttl(Bucket::Dashboard, Duration::from_secs(42))
        .with_max_weight(Bucket::Dashboard, 4096);
    let c = crate::OrgCache::new(&cfg);
    let p = c.core(Bucket::Dashboard).cache.policy();
    assert_eq!(p.time_to_live(), Some(Duration::from_secs(42)));
    assert_eq!(p.max_capacity(), Some(4096));
}
