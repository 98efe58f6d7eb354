//! Conformance suite for keel-tenancy's stores: every case runs on SQLite and PostgreSQL, through
//! the `Tenancy` API (which holds the backend's `TenancyStore`).

/// The components every test database of this binary has installed.
const SCHEMAS: &[&keel_storage::Schema] = &[&keel_tenancy::SCHEMA];

use chrono::Utc;
use keel_ids::{Email, OrgId};
use keel_tenancy::{Permission, Role, Tenancy, TenancyError};
use keel_testkit::{backend_tests, TestDb};
use std::time::Duration;

mod operators;
mod passwords;
mod rows;

backend_tests!(
    roles_inherit_down_the_org_tree,
    users_are_unique_and_authenticate,
    sessions_slide_and_expire,
    tokens_resolve_until_revoked,
    resets_are_single_use_and_end_sessions,
);

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

async fn roles_inherit_down_the_org_tree(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let parent = tn.create_org("Franchise HQ", None).await.unwrap();
    let child = tn.create_org("North", Some(parent.id)).await.unwrap();
    let grandchild = tn.create_org("North-East", Some(child.id)).await.unwrap();
    let other = tn.create_org("Unrelated", None).await.unwrap();
    assert_eq!(tn.ancestors(grandchild.id).await.unwrap(), vec![grandchild.id, child.id, parent.id]);
    let u = tn.create_user(&email("a@example.com"), None).await.unwrap();
    tn.add_membership(u, child.id, Role::Manager).await.unwrap();
    assert_eq!(tn.role_in(u, child.id).await.unwrap(), Some(Role::Manager));
    assert_eq!(tn.role_in(u, grandchild.id).await.unwrap(), Some(Role::Manager), "inherited downwards");
    assert_eq!(tn.role_in(u, parent.id).await.unwrap(), None, "never upwards");
    assert_eq!(tn.role_in(u, other.id).await.unwrap(), None);
    tn.add_membership(u, parent.id, Role::Owner).await.unwrap();
    assert_eq!(tn.role_in(u, grandchild.id).await.unwrap(), Some(Role::Owner), "strongest applicable role wins");
    assert!(matches!(tn.add_membership(u, OrgId::generate(), Role::Viewer).await, Err(TenancyError::UnknownOrg(_))));
    assert!(matches!(tn.create_org("  ", None).await, Err(TenancyError::Invalid { field: "name", .. })));
}

async fn users_are_unique_and_authenticate(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let e = email("Jane@Example.com");
    let id = tn.create_user(&e, Some("correct horse battery staple")).await.unwrap();
    assert!(matches!(tn.create_user(&email("jane@example.com"), None).await, Err(TenancyError::EmailTaken)));
    assert_eq!(tn.authenticate(&e, "correct horse battery staple").await.unwrap(), Some(id));
    assert_eq!(tn.authenticate(&e, "wrong horse battery staple").await.unwrap(), None);
    assert_eq!(tn.authenticate(&email("nobody@example.com"), "correct horse battery staple").await.unwrap(), None);
    assert!(matches!(tn.create_user(&email("b@example.com"), Some("short")).await, Err(TenancyError::Invalid { .. })));
}

async fn sessions_slide_and_expire(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let u = tn.create_user(&email("s@example.com"), None).await.unwrap();
    let ttl = Duration::from_secs(3600);
    let slide = Duration::from_secs(300);
    let t0 = Utc::now();
    let s = tn.create_session(u, None, ttl, t0).await.unwrap();
    let info = tn.resolve_session(&s.token, t0, ttl, slide).await.unwrap().unwrap();
    assert_eq!(info.user_id, u);
    assert!(!info.refreshed, "fresh session is not rewritten");
    let t1 = t0 + chrono::Duration::minutes(30);
    let info = tn.resolve_session(&s.token, t1, ttl, slide).await.unwrap().unwrap();
    assert!(info.refreshed);
    assert!(info.expires_at > s.expires_at, "expiry slid forward");
    let again = tn.resolve_session(&s.token, t1, ttl, slide).await.unwrap().unwrap();
    assert!(!again.refreshed, "slid once, then only read until the next slide is due");
    assert_eq!(again.expires_at, info.expires_at);
    let late = info.expires_at + chrono::Duration::seconds(1);
    assert!(tn.resolve_session(&s.token, late, ttl, slide).await.unwrap().is_none(), "expired");
    assert!(tn.resolve_session("not-a-token", t0, ttl, slide).await.unwrap().is_none());
    tn.end_session(&s.token).await.unwrap();
    assert!(tn.resolve_session(&s.token, t1, ttl, slide).await.unwrap().is_none());
}

async fn tokens_resolve_until_revoked(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let u = tn.create_user(&email("t@example.com"), None).await.unwrap();
    let tok = tn.issue_token(u).await.unwrap();
    assert_eq!(tn.resolve_token(&tok.token).await.unwrap(), Some(u));
    let mut tampered = tok.token.clone();
    tampered.pop();
    tampered.push('0');
    if tampered == tok.token {
        tampered.pop();
        tampered.push('1');
    }
    assert_eq!(tn.resolve_token(&tampered).await.unwrap(), None);
    assert_eq!(tn.resolve_token("keel_garbage").await.unwrap(), None);
    assert!(tn.revoke_token(tok.id, Utc::now()).await.unwrap());
    assert_eq!(tn.resolve_token(&tok.token).await.unwrap(), None);
    assert!(!tn.revoke_token(uuid_v4(), Utc::now()).await.unwrap());
}

fn uuid_v4() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}

async fn resets_are_single_use_and_end_sessions(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let e = email("r@example.com");
    let u = tn.create_user(&e, Some("old violet kettle astronaut")).await.unwrap();
    let now = Utc::now();
    let s = tn.create_session(u, None, Duration::from_secs(3600), now).await.unwrap();
    let tok = tn.create_reset(u, Duration::from_secs(3600), now).await.unwrap();
    // A weak password is refused without spending the token.
    assert!(tn.complete_reset(&tok, "short", now).await.is_err());
    assert_eq!(tn.complete_reset(&tok, "new quarry oboe trampoline", now).await.unwrap(), Some(u));
    assert_eq!(tn.complete_reset(&tok, "another walrus sextant lantern", now).await.unwrap(), None, "single use");
    assert_eq!(tn.authenticate(&e, "new quarry oboe trampoline").await.unwrap(), Some(u));
    assert!(tn
        .resolve_session(&s.token, now, Duration::from_secs(3600), Duration::from_secs(300))
        .await
        .unwrap()
        .is_none());
    let expired = tn.create_reset(u, Duration::from_secs(60), now).await.unwrap();
    let later = now + chrono::Duration::minutes(2);
    assert_eq!(tn.complete_reset(&expired, "late umbrella fjord cinnamon", later).await.unwrap(), None);
}

#[test]
fn permissions_keep_reads_and_destruction_apart() {
    assert!(Role::Viewer.permits(Permission::InvoicesView));
    assert!(!Role::Viewer.permits(Permission::InvoicesManage));
    assert!(Role::Manager.permits(Permission::InvoicesManage));
    assert!(!Role::Manager.permits(Permission::InvoicesVoid));
    assert!(Role::Owner.permits(Permission::InvoicesVoid));
    assert_eq!("OWNER".parse::<Role>().unwrap(), Role::Owner);
    assert!("admin".parse::<Role>().is_err());
}
