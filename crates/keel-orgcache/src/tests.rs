//! Unit tests of the internals: reverse index, message encoding, settings, epoch tracking.

use crate::bucket::Bucket;
use crate::config::{BucketConfig, CacheConfig, DEFAULT_LOAD_TIMEOUT};
use crate::key::{CacheKey, KeyRef, Tag};
use crate::message::{Invalidation, Scope};
use crate::state::TagIndex;
use keel_config::{MapSource, Reader};
use keel_ids::OrgId;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

const REFERENCE: Bucket = Bucket::new("reference");
const DASHBOARD: Bucket = Bucket::new("dashboard");
const SETTINGS: Bucket = Bucket::new("settings");

fn tag(s: &str) -> Tag {
    Tag::new(s).unwrap()
}

fn config() -> CacheConfig {
    CacheConfig::new()
        .with_bucket(REFERENCE, BucketConfig::new(Duration::from_secs(60), 32 << 20))
        .with_bucket(DASHBOARD, BucketConfig::new(Duration::from_secs(300), 64 << 20))
        .with_bucket(SETTINGS, BucketConfig::new(Duration::from_secs(900), 8 << 20))
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
        (Some(REFERENCE), Scope::Tag(tag("services"))),
        (None, Scope::Tag(tag("jobs"))),
        (None, Scope::All),
        (Some(DASHBOARD), Scope::All),
        (Some(DASHBOARD), Scope::Key("chart 2026/01 ü %".into())),
    ] {
        let m = Invalidation { origin: 0xdead_beef, org, bucket, scope, epoch: 42 };
        let text = m.encode();
        assert!(!text.contains('\n') && text.split(' ').count() == 6, "{text}");
        assert_eq!(Invalidation::parse(&text, &[REFERENCE, DASHBOARD]).unwrap(), m, "{text}");
    }
    let longest = Invalidation {
        origin: u64::MAX,
        org,
        bucket: Some(SETTINGS),
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
        (format!("ko1 01 {org} settings 1 *"), Some(org)),
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
        let e = Invalidation::parse(&text, &[REFERENCE]).unwrap_err();
        assert_eq!(e.org, want, "{text}: {e}");
        assert!(e.to_string().starts_with("unreadable cache invalidation message"));
    }
}

#[test]
fn overrides_read_ttls_and_capacities_and_report_mistakes() {
    let src = MapSource::new([
        ("APP_CACHE_TTL_DASHBOARD", "5m"),
        ("APP_CACHE_TTL_REFERENCE", "30s"),
        ("APP_CACHE_CAPACITY_MB_SETTINGS", "2"),
        ("APP_CACHE_LOAD_TIMEOUT", "5s"),
    ]);
    let mut r = Reader::new(&src);
    let cfg = config().with_ttl(DASHBOARD, Duration::from_secs(1)).read_overrides(&mut r, "APP_CACHE_");
    assert!(r.finish().is_ok());
    assert_eq!(cfg.bucket(DASHBOARD).unwrap().ttl, Duration::from_secs(300));
    assert_eq!(cfg.bucket(REFERENCE).unwrap().ttl, Duration::from_secs(30));
    assert_eq!(cfg.bucket(SETTINGS).unwrap().ttl, Duration::from_secs(900), "unset keeps the configured value");
    assert_eq!(cfg.bucket(SETTINGS).unwrap().max_weight, 2 * 1024 * 1024);
    assert_eq!(cfg.bucket(REFERENCE).unwrap().load_timeout, Duration::from_secs(5));

    let src = MapSource::new([
        ("APP_CACHE_TTL_DASHBORD", "5m"),
        ("APP_CACHE_TTL_SETTINGS", "five minutes"),
        ("APP_CACHE_TTL_REFERENCE", "2d"),
        ("APP_CACHE_CAPACITY_MB_DASHBOARD", "0"),
        ("OTHER_CACHE_TTL_NOPE", "5m"),
    ]);
    let mut r = Reader::new(&src);
    let cfg = config().read_overrides(&mut r, "APP_CACHE_");
    assert_eq!(cfg, config(), "every bad value falls back to the configured one");
    let problems = r.finish().unwrap_err();
    let vars: Vec<&str> = problems.0.iter().map(|p| p.var.as_str()).collect();
    assert_eq!(
        vars,
        [
            "APP_CACHE_TTL_REFERENCE",
            "APP_CACHE_CAPACITY_MB_DASHBOARD",
            "APP_CACHE_TTL_SETTINGS",
            "APP_CACHE_TTL_DASHBORD"
        ]
    );
    assert!(problems.0[3].message.contains("REFERENCE, DASHBOARD, SETTINGS"), "{}", problems.0[3].message);
}

#[test]
fn buckets_are_named_by_the_user_and_names_are_checked() {
    assert_eq!(REFERENCE.name(), "reference");
    assert_eq!(Bucket::try_new("a_b-1"), Ok(Bucket::new("a_b-1")));
    for bad in ["", "Upper", "with space", "star*", "x23456789012345678901234567890123"] {
        assert!(Bucket::try_new(bad).is_err(), "{bad:?}");
        assert!(std::panic::catch_unwind(|| Bucket::new(bad)).is_err(), "{bad:?}");
    }
    let e = Bucket::try_new("Upper").unwrap_err();
    assert!(e.to_string().contains("a-z 0-9 _ -"), "{e}");
}

#[test]
fn adding_a_bucket_twice_replaces_its_settings() {
    let one = BucketConfig::new(Duration::from_secs(1), 1);
    let two = BucketConfig::new(Duration::from_secs(2), 2).with_load_timeout(Duration::from_secs(3));
    let cfg = CacheConfig::new().with_bucket(SETTINGS, one).with_bucket(REFERENCE, one).with_bucket(SETTINGS, two);
    assert_eq!(cfg.buckets().map(|(b, _)| b).collect::<Vec<_>>(), [SETTINGS, REFERENCE]);
    assert_eq!(cfg.bucket(SETTINGS), Some(&two));
    assert_eq!(one.load_timeout, DEFAULT_LOAD_TIMEOUT);
    assert_eq!(BucketConfig::new(Duration::from_secs(1), 0).with_capacity_mib(3).max_weight, 3 << 20);
    assert_eq!(cfg.bucket(DASHBOARD), None);
}

#[tokio::test]
async fn the_configured_ttl_and_capacity_reach_moka() {
    let cfg = config().with_ttl(DASHBOARD, Duration::from_secs(42)).with_max_weight(DASHBOARD, 4096);
    let c = crate::OrgCache::new(&cfg);
    let p = c.core(DASHBOARD).unwrap().cache.policy();
    assert_eq!(p.time_to_live(), Some(Duration::from_secs(42)));
    assert_eq!(p.max_capacity(), Some(4096));
    assert_eq!(c.buckets(), [REFERENCE, DASHBOARD, SETTINGS]);
}
