//! `keel-ops user create --password-stdin`: the password comes through a pipe, the user can
//! then sign in with it, and a password the rule refuses (too short, common, guessable, the
//! address itself) creates nothing. `keel-ops user unlock EMAIL` clears the account's failed
//! sign-ins.

use super::{ops_async, ops_stdin};
use keel_ids::Email;
use keel_ratelimit::{LimitKey, Policy, SharedLimiter};
use keel_tenancy::{Tenancy, MIN_PASSWORD_LEN};
use keel_testkit::{backend_tests, TestDb};
use serde_json::Value;

backend_tests!(
    password_from_stdin_authenticates_and_a_refused_one_creates_nothing,
    unlock_clears_the_failed_sign_ins_of_an_account
);

const STRONG: &str = "violet kettle astronaut 42";

fn create<'a>(email: &'a str, org: &'a str) -> [&'a str; 10] {
    ["user", "create", "--email", email, "--org", org, "--role", "manager", "--password-stdin", "--json"]
}

async fn password_from_stdin_authenticates_and_a_refused_one_creates_nothing(t: TestDb) {
    let env = [("DATABASE_URL", t.url.as_str())];
    let (code, out, err) = ops_async(&["org", "create", "HQ", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let org = serde_json::from_str::<Value>(&out).unwrap()["id"].as_str().unwrap().to_owned();
    let tenancy = Tenancy::new(t.db.clone());

    let args = create("ann@example.com", &org);
    // As `printf 'violet kettle astronaut 42\n' | keel-ops …` sends it: the newline is not part of it.
    let (code, out, err) = ops_stdin(&args, &env, &format!("{STRONG}\n")).await;
    assert_eq!(code, 0, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"].as_str().unwrap().to_owned();
    let ann = Email::parse("ann@example.com").unwrap();
    let signed_in = tenancy.authenticate(&ann, STRONG).await.unwrap();
    assert_eq!(signed_in.map(|u| u.to_string()), Some(id), "the piped password signs in");
    assert_eq!(tenancy.authenticate(&ann, &format!("{STRONG}\n")).await.unwrap(), None);
    assert_eq!(tenancy.authenticate(&ann, "violet kettle astronaut 43").await.unwrap(), None);

    let bob = Email::parse("bob.jones@example.com").unwrap();
    let args = create("bob.jones@example.com", &org);
    let short = "x".repeat(MIN_PASSWORD_LEN - 1);
    let too_short = format!("--password-stdin: the password must be at least {MIN_PASSWORD_LEN} characters");
    let guessable = "--password-stdin: the password is too easy to guess";
    for (weak, says) in [
        (short.as_str(), too_short.as_str()),
        ("aaaaaaaaaa", guessable),
        ("password123", guessable),
        ("bob.jones@example.com", guessable),
    ] {
        let (code, out, err) = ops_stdin(&args, &env, &format!("{weak}\n")).await;
        assert_eq!(code, 2, "a refused password is a usage error naming the flag: {weak}: {out}{err}");
        assert!(err.contains(says), "{weak}: {err}");
        assert!(err.contains("no user was created"), "{err}");
        assert!(!err.contains(weak), "the password is never echoed: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(tenancy.user_by_email(&bob).await.unwrap().is_none(), "nothing created for {weak}");
    }
    // Nothing piped at all is refused the same way.
    let (code, _, err) = ops_stdin(&args, &env, "").await;
    assert_eq!(code, 2, "{err}");
    assert!(tenancy.user_by_email(&bob).await.unwrap().is_none());
}

async fn unlock_clears_the_failed_sign_ins_of_an_account(t: TestDb) {
    let env = [("DATABASE_URL", t.url.as_str())];
    // The same limiter keel-api's sign-in spends from, on the same table.
    let policy = Policy::new(keel_ops::SIGN_IN_FAILURES_POLICY, "10/15m,burst=10".parse().unwrap());
    let throttle = SharedLimiter::new(t.db.clone(), &policy);
    let key = LimitKey::email("cara@example.com");
    let other = LimitKey::email("dan@example.com");
    for _ in 0..policy.quota.burst() {
        assert!(throttle.check_at(&key, None).await.unwrap().is_allowed());
    }
    assert!(throttle.check_at(&other, None).await.unwrap().is_allowed());
    assert!(!throttle.check_at(&key, None).await.unwrap().is_allowed(), "locked out");

    let (code, out, err) = ops_async(&["user", "unlock", "Cara@Example.com", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cleared"], true, "{out}");
    assert!(!out.contains("cara@example.com"), "the address is masked: {out}");
    let d = throttle.check_at(&key, None).await.unwrap();
    assert!(d.is_allowed() && d.remaining() == policy.quota.burst() - 1, "a full allowance again: {d:?}");
    assert!(
        throttle.check_at(&other, None).await.unwrap().remaining() < policy.quota.burst() - 1,
        "another account keeps its count"
    );

    let (code, out, err) = ops_async(&["user", "unlock", "nobody@example.com"], &env).await;
    assert_eq!(code, 0, "unlocking an address with no failures is harmless: {err}");
    assert!(out.contains("nothing to clear") && !out.contains("nobody@example.com"), "{out}");
    let (code, _, err) = ops_async(&["user", "unlock", "not-an-address"], &env).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("EMAIL"), "{err}");
}
