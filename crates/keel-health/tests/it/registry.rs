//! Registration errors: bad, reserved or duplicate names are refused with a message naming the fix.

use crate::support::{builder, ms, Sleeper};
use keel_health::{section_fn, RegistryError};
use serde_json::json;

#[test]
fn app_is_reserved_for_the_process_itself() {
    let err = builder(ms(100)).check(Sleeper::new("app", ms(1))).build().err().unwrap();
    assert_eq!(err, RegistryError::ReservedName { kind: "check", name: "app".into() });
    assert!(err.to_string().contains("reserved"));
}

#[test]
fn duplicate_check_names_are_refused() {
    let err = builder(ms(100))
        .check(Sleeper::new("database", ms(1)))
        .check(Sleeper::new("database", ms(1)))
        .build()
        .err()
        .unwrap();
    assert_eq!(err, RegistryError::DuplicateName { kind: "check", name: "database".into() });
}

#[test]
fn names_must_be_simple_lowercase_keys() {
    for bad in ["", "Database", "data base", "db:primary", &"x".repeat(65)] {
        let name: &'static str = Box::leak(bad.to_owned().into_boxed_str());
        let err = builder(ms(100)).check(Sleeper::new(name, ms(1))).build().err().unwrap();
        assert!(matches!(err, RegistryError::InvalidName { .. }), "{bad:?} gave {err:?}");
        assert!(err.to_string().contains("a-z, 0-9"), "{err}");
    }
}

#[test]
fn sections_cannot_shadow_the_report_fields() {
    for reserved in ["status", "checked_at", "services"] {
        let err = builder(ms(100)).section(section_fn(reserved, |_| async { Ok(json!(null)) })).build().err().unwrap();
        assert_eq!(err, RegistryError::ReservedName { kind: "section", name: reserved.into() });
    }
}

#[test]
fn a_section_may_share_a_name_with_a_check() {
    // They live in different places of the body (`services.x` vs top-level `x`).
    assert!(builder(ms(100))
        .check(Sleeper::new("queue", ms(1)))
        .section(section_fn("queue", |_| async { Ok(json!(1)) }))
        .build()
        .is_ok());
}
