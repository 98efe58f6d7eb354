//! The password rule holds on every path that sets a password: creating a user, setting one,
//! and completing a reset (where a refusal leaves the token usable).

use super::email;
use chrono::Utc;
use keel_tenancy::{Tenancy, TenancyError};
use keel_testkit::{backend_tests, TestDb};
use std::time::Duration;

backend_tests!(guessable_passwords_are_refused_everywhere);

const STRONG: &str = "violet kettle astronaut 42";

fn refused(r: Result<impl std::fmt::Debug, TenancyError>) -> bool {
    matches!(r, Err(TenancyError::Invalid { field: "password", .. }))
}

async fn guessable_passwords_are_refused_everywhere(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let addr = "dana.smith@example.com";
    let e = email(addr);
    for weak in ["aaaaaaaaaa", "password123", addr] {
        assert!(refused(tn.create_user(&e, Some(weak)).await), "create_user accepted {weak}");
    }
    assert!(tn.user_by_email(&e).await.unwrap().is_none(), "nothing was created");
    let u = tn.create_user(&e, Some(STRONG)).await.unwrap();
    assert!(refused(tn.set_password(u, "password123").await));

    let now = Utc::now();
    let token = tn.create_reset(u, Duration::from_secs(3600), now).await.unwrap();
    for weak in ["aaaaaaaaaa", "password123", addr, "dana.smith1234"] {
        assert!(refused(tn.complete_reset(&token, weak, now).await), "reset accepted {weak}");
    }
    assert_eq!(tn.authenticate(&e, STRONG).await.unwrap(), Some(u), "the refusals changed nothing");
    let new = "Tr4mpoline-Quarry-Oboe";
    assert_eq!(tn.complete_reset(&token, new, now).await.unwrap(), Some(u), "the token was never spent");
    assert_eq!(tn.authenticate(&e, new).await.unwrap(), Some(u));
    // A spent token answers `None` before any complaint about the password.
    assert_eq!(tn.complete_reset(&token, "aaaaaaaaaa", now).await.unwrap(), None);
}
