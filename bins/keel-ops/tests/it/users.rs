//! `keel-ops user create --password-stdin`: the password comes through a pipe, the user can
//! then sign in with it, and a password the policy refuses creates nothing.

use super::{ops_async, ops_stdin};
use keel_ids::Email;
use keel_tenancy::{Tenancy, MIN_PASSWORD_LEN};
use keel_testkit::{backend_tests, TestDb};
use serde_json::Value;

backend_tests!(password_from_stdin_authenticates_and_a_short_one_creates_nothing);

fn create<'a>(email: &'a str, org: &'a str) -> [&'a str; 10] {
    ["user", "create", "--email", email, "--org", org, "--role", "manager", "--password-stdin", "--json"]
}

async fn password_from_stdin_authenticates_and_a_short_one_creates_nothing(t: TestDb) {
    let env = [("DATABASE_URL", t.url.as_str())];
    let (code, out, err) = ops_async(&["org", "create", "HQ", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let org = serde_json::from_str::<Value>(&out).unwrap()["id"].as_str().unwrap().to_owned();
    let tenancy = Tenancy::new(t.db.clone());

    let args = create("ann@example.com", &org);
    // As `printf 'correct horse battery\n' | keel-ops …` sends it: the newline is not part of it.
    let (code, out, err) = ops_stdin(&args, &env, "correct horse battery\n").await;
    assert_eq!(code, 0, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"].as_str().unwrap().to_owned();
    let ann = Email::parse("ann@example.com").unwrap();
    let signed_in = tenancy.authenticate(&ann, "correct horse battery").await.unwrap();
    assert_eq!(signed_in.map(|u| u.to_string()), Some(id), "the piped password signs in");
    assert_eq!(tenancy.authenticate(&ann, "correct horse battery\n").await.unwrap(), None);
    assert_eq!(tenancy.authenticate(&ann, "wrong horse battery").await.unwrap(), None);

    let short = "x".repeat(MIN_PASSWORD_LEN - 1);
    let args = create("bob@example.com", &org);
    let (code, out, err) = ops_stdin(&args, &env, &format!("{short}\n")).await;
    assert_eq!(code, 2, "a refused password is a usage error: {out}{err}");
    assert!(
        err.contains(&format!("--password-stdin: the password must be at least {MIN_PASSWORD_LEN} characters")),
        "{err}"
    );
    assert!(err.contains("no user was created"), "{err}");
    assert!(!err.contains(&short), "the password is never echoed: {err}");
    assert!(out.is_empty(), "{out}");
    let bob = Email::parse("bob@example.com").unwrap();
    assert!(tenancy.user_by_email(&bob).await.unwrap().is_none(), "nothing created");
    // Nothing piped at all is refused the same way.
    let (code, _, err) = ops_stdin(&args, &env, "").await;
    assert_eq!(code, 2, "{err}");
    assert!(tenancy.user_by_email(&bob).await.unwrap().is_none());
}
