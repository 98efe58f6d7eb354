//! The per-account sign-in throttle (`sign_in_failures`): keyed by the address signed in to,
//! whatever the client address; unknown addresses throttled exactly like known ones (the same
//! statements run); a success, a password reset and `keel-ops user unlock` clear it; and two
//! instances on one database share the count. Also the password rule through reset.

use crate::fixture::{world, PASSWORD};
use crate::{start_state, Server};
use keel_api::{AppState, Config, Limits};
use keel_ids::{Email, OrgId, UserId};
use keel_tenancy::{
    Membership, OperatorAction, OperatorGrant, Org, OrgMember, Role, StoreFuture, StoredSession, StoredToken, Tenancy,
    TenancyStore, TokenScope, UserRecord,
};
use keel_testkit::{backend_tests, TestDb};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

backend_tests!(
    failures_from_any_address_throttle_the_account,
    unknown_addresses_are_throttled_identically,
    a_success_clears_the_count,
    reset_works_while_throttled_and_clears_it,
    two_instances_share_the_count,
);

/// The default quota: 10 failures at once.
const ALLOWED_FAILURES: usize = 10;

/// Forwarding headers are believed from loopback, so each request can come "from" anywhere.
const ENV: &[(&str, &str)] = &[("KEEL_TRUSTED_PROXIES", "127.0.0.1/32,::1/128"), ("KEEL_EMBEDDED_WORKER", "false")];

async fn sign_in(base: &str, email: &str, password: &str, from: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/auth/sign-in"))
        .header("x-forwarded-for", from)
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn base(s: &Server) -> String {
    s.url("")
}

/// `n` wrong passwords for `email`, each from another client address; each answers 401.
async fn fail(base: &str, email: &str, n: usize, first_addr: usize) {
    for i in 0..n {
        let r = sign_in(base, email, "wrong horse battery staple", &format!("203.0.113.{}", first_addr + i)).await;
        assert_eq!(r.status(), 401, "failure {i} of {email}");
    }
}

/// A 429 problem+json with `Retry-After` of at most the default quota's 90 s per attempt.
async fn assert_throttled(r: reqwest::Response) -> String {
    assert_throttled_within(r, 90).await
}

/// A 429 problem+json with `Retry-After` of 1 to `interval_s` seconds; returns its detail.
async fn assert_throttled_within(r: reqwest::Response, interval_s: u64) -> String {
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().get("set-cookie").is_none(), "no session");
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=interval_s).contains(&retry), "one more attempt every {interval_s} s: Retry-After {retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "https://keel.dev/problems/rate-limited");
    body["detail"].as_str().unwrap().to_owned()
}

async fn start_keeping_limits(t: TestDb) -> (Server, Arc<Limits>) {
    let mut limits = None;
    let s = start_state(t, ENV, |st| limits = Some(st.limits.clone())).await;
    (s, limits.unwrap())
}

async fn failures_from_any_address_throttle_the_account(t: TestDb) {
    let w = world(&t).await;
    let url = t.url.clone();
    let (s, limits) = start_keeping_limits(t).await;
    let b = base(&s);
    fail(&b, w.owner_email, ALLOWED_FAILURES, 1).await;
    assert_eq!(limits.sign_in_failures.lockouts(), 1, "the failure that used the last attempt is one lockout");
    // The right password, from an address never seen before: refused all the same.
    let detail = assert_throttled(sign_in(&b, "Owner@Example.com", PASSWORD, "198.51.100.7").await).await;
    assert!(detail.contains("reset the password"), "{detail}");
    assert_throttled(sign_in(&b, w.owner_email, PASSWORD, "2001:db8::1").await).await;
    assert_eq!(limits.sign_in_failures.lockouts(), 1, "refused attempts are not new lockouts");

    // An operator clears it by hand.
    let cli = <keel_ops::Cli as clap::Parser>::parse_from(["keel-ops", "user", "unlock", w.owner_email]);
    let src = keel_config::MapSource::new([("DATABASE_URL", url.as_str())]);
    assert_eq!(keel_ops::run_code(cli, &src).await, 0);
    assert_eq!(sign_in(&b, w.owner_email, PASSWORD, "198.51.100.7").await.status(), 200);
}

/// Records which store calls a sign-in makes, in order.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn TenancyStore>,
    calls: Mutex<Vec<&'static str>>,
}

impl Recorder {
    fn log(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

type Ts = chrono::DateTime<chrono::Utc>;

impl TenancyStore for Recorder {
    fn backend(&self) -> keel_storage::Backend {
        self.inner.backend()
    }
    fn insert_org<'a>(&'a self, org: &'a Org) -> StoreFuture<'a, ()> {
        self.log("insert_org");
        self.inner.insert_org(org)
    }
    fn org(&self, id: OrgId) -> StoreFuture<'_, Option<Org>> {
        self.log("org");
        self.inner.org(id)
    }
    fn ancestors(&self, id: OrgId, max_depth: i64) -> StoreFuture<'_, Vec<OrgId>> {
        self.log("ancestors");
        self.inner.ancestors(id, max_depth)
    }
    fn insert_user<'a>(&'a self, id: UserId, email: &'a Email, hash: Option<&'a str>) -> StoreFuture<'a, ()> {
        self.log("insert_user");
        self.inner.insert_user(id, email, hash)
    }
    fn user_by_email<'a>(&'a self, email: &'a Email) -> StoreFuture<'a, Option<UserRecord>> {
        self.log("user_by_email");
        self.inner.user_by_email(email)
    }
    fn user_by_id(&self, id: UserId) -> StoreFuture<'_, Option<UserRecord>> {
        self.log("user_by_id");
        self.inner.user_by_id(id)
    }
    fn set_password_hash<'a>(&'a self, user: UserId, hash: &'a str) -> StoreFuture<'a, bool> {
        self.log("set_password_hash");
        self.inner.set_password_hash(user, hash)
    }
    fn upsert_membership(&self, user: UserId, org: OrgId, role: Role) -> StoreFuture<'_, ()> {
        self.log("upsert_membership");
        self.inner.upsert_membership(user, org, role)
    }
    fn memberships(&self, user: UserId) -> StoreFuture<'_, Vec<Membership>> {
        self.log("memberships");
        self.inner.memberships(user)
    }
    fn insert_session<'a>(&'a self, h: &'a str, s: &'a StoredSession) -> StoreFuture<'a, ()> {
        self.log("insert_session");
        self.inner.insert_session(h, s)
    }
    fn read_session<'a>(&'a self, h: &'a str, now: Ts) -> StoreFuture<'a, Option<StoredSession>> {
        self.log("read_session");
        self.inner.read_session(h, now)
    }
    fn slide_session<'a>(&'a self, h: &'a str, e: Ts, n: Ts, t: Ts) -> StoreFuture<'a, Option<StoredSession>> {
        self.log("slide_session");
        self.inner.slide_session(h, e, n, t)
    }
    fn set_active_org<'a>(&'a self, h: &'a str, org: OrgId) -> StoreFuture<'a, ()> {
        self.log("set_active_org");
        self.inner.set_active_org(h, org)
    }
    fn delete_session<'a>(&'a self, h: &'a str) -> StoreFuture<'a, ()> {
        self.log("delete_session");
        self.inner.delete_session(h)
    }
    fn insert_token<'a>(&'a self, id: uuid::Uuid, user: UserId, h: &'a str, s: TokenScope) -> StoreFuture<'a, ()> {
        self.log("insert_token");
        self.inner.insert_token(id, user, h, s)
    }
    fn token(&self, id: uuid::Uuid) -> StoreFuture<'_, Option<StoredToken>> {
        self.log("token");
        self.inner.token(id)
    }
    fn revoke_token(&self, id: uuid::Uuid, now: Ts) -> StoreFuture<'_, bool> {
        self.log("revoke_token");
        self.inner.revoke_token(id, now)
    }
    fn insert_reset<'a>(&'a self, h: &'a str, user: UserId, exp: Ts) -> StoreFuture<'a, ()> {
        self.log("insert_reset");
        self.inner.insert_reset(h, user, exp)
    }
    fn reset_owner<'a>(&'a self, h: &'a str, now: Ts) -> StoreFuture<'a, Option<UserRecord>> {
        self.log("reset_owner");
        self.inner.reset_owner(h, now)
    }
    fn use_reset<'a>(&'a self, h: &'a str, pw: &'a str, now: Ts) -> StoreFuture<'a, Option<UserId>> {
        self.log("use_reset");
        self.inner.use_reset(h, pw, now)
    }
    fn delete_unused_reset<'a>(&'a self, h: &'a str) -> StoreFuture<'a, ()> {
        self.log("delete_unused_reset");
        self.inner.delete_unused_reset(h)
    }
    fn grant_operator(&self, user: UserId, by: Option<UserId>, at: Ts) -> StoreFuture<'_, bool> {
        self.log("grant_operator");
        self.inner.grant_operator(user, by, at)
    }
    fn revoke_operator(&self, user: UserId) -> StoreFuture<'_, bool> {
        self.log("revoke_operator");
        self.inner.revoke_operator(user)
    }
    fn is_operator(&self, user: UserId) -> StoreFuture<'_, bool> {
        self.log("is_operator");
        self.inner.is_operator(user)
    }
    fn operators(&self) -> StoreFuture<'_, Vec<OperatorGrant>> {
        self.log("operators");
        self.inner.operators()
    }
    fn insert_operator_action<'a>(&'a self, a: &'a OperatorAction) -> StoreFuture<'a, ()> {
        self.log("insert_operator_action");
        self.inner.insert_operator_action(a)
    }
    fn operator_actions(&self, before: Option<uuid::Uuid>, limit: i64) -> StoreFuture<'_, Vec<OperatorAction>> {
        self.log("operator_actions");
        self.inner.operator_actions(before, limit)
    }
    fn all_orgs(&self, limit: i64) -> StoreFuture<'_, Vec<Org>> {
        self.log("all_orgs");
        self.inner.all_orgs(limit)
    }
    fn org_members(&self, org: OrgId) -> StoreFuture<'_, Vec<OrgMember>> {
        self.log("org_members");
        self.inner.org_members(org)
    }
}

async fn unknown_addresses_are_throttled_identically(t: TestDb) {
    let w = world(&t).await;
    let rec = Arc::new(Recorder { inner: keel_tenancy::open_store(&t.db), calls: Mutex::new(Vec::new()) });
    let mut limits = None;
    let s = start_state(t, ENV, |st| {
        st.tenancy = Tenancy::with_store(st.db.clone(), rec.clone());
        limits = Some(st.limits.clone());
    })
    .await;
    let (b, limits) = (base(&s), limits.unwrap());
    let mut answers = Vec::new();
    for email in [w.owner_email, "nobody@example.com"] {
        let spent_before = limits.sign_in_failures.metrics();
        fail(&b, email, 1, 1).await;
        let spent = limits.sign_in_failures.metrics();
        assert_eq!(spent.allowed, spent_before.allowed + 1, "one throttle statement per attempt");
        // The same store statements, known account or not: nothing tells them apart.
        assert_eq!(rec.take(), ["user_by_email"], "{email}");
        fail(&b, email, ALLOWED_FAILURES - 1, 2).await;
        rec.take();
        // Retry-After is checked by `assert_throttled` (a second may tick between the two).
        answers.push(assert_throttled(sign_in(&b, email, PASSWORD, "198.51.100.7").await).await);
        assert!(rec.take().is_empty(), "a throttled attempt reads no account");
    }
    assert_eq!(answers[0], answers[1], "the same 429 for a known and an unknown address");
    assert_eq!(limits.sign_in_failures.lockouts(), 2);
}

async fn a_success_clears_the_count(t: TestDb) {
    let w = world(&t).await;
    let (s, _) = start_keeping_limits(t).await;
    let b = base(&s);
    fail(&b, w.owner_email, ALLOWED_FAILURES - 1, 1).await;
    assert_eq!(sign_in(&b, w.owner_email, PASSWORD, "198.51.100.7").await.status(), 200);
    // Only failures count, and the success cleared those before it: a full allowance again.
    fail(&b, w.owner_email, ALLOWED_FAILURES, 20).await;
    assert_throttled(sign_in(&b, w.owner_email, PASSWORD, "198.51.100.7").await).await;
}

async fn reset_works_while_throttled_and_clears_it(t: TestDb) {
    let w = world(&t).await;
    let tenancy = Tenancy::new(t.db.clone());
    let (s, _) = start_keeping_limits(t).await;
    let b = base(&s);
    fail(&b, w.owner_email, ALLOWED_FAILURES, 1).await;
    assert_throttled(sign_in(&b, w.owner_email, PASSWORD, "198.51.100.7").await).await;
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/api/auth/forgot-password"))
        .json(&serde_json::json!({"email": w.owner_email}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "recovery is not throttled by failed sign-ins");
    // The worker mints the token as it mails the link (the link is stored nowhere); mint one the
    // same way rather than run a worker here.
    let token = tenancy.create_reset(w.owner, std::time::Duration::from_secs(3_600), chrono::Utc::now()).await.unwrap();
    let reset = |pw: &str| {
        c.post(s.url("/api/auth/reset-password")).json(&serde_json::json!({"token": token, "password": pw})).send()
    };
    for weak in ["aaaaaaaaaa", "password123", w.owner_email] {
        let r = reset(weak).await.unwrap();
        assert_eq!(r.status(), 422, "{weak}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], "password", "{body}");
        assert!(!body.to_string().contains(weak), "the password is not echoed: {body}");
    }
    let new = "violet kettle astronaut 42";
    assert_eq!(reset(new).await.unwrap().status(), 204, "the refusals left the token usable");
    assert_eq!(sign_in(&b, w.owner_email, new, "198.51.100.7").await.status(), 200, "the reset cleared it");
}

async fn two_instances_share_the_count(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    // The override applies on both instances: 4 failures, not the default 10.
    let env: Vec<(&str, &str)> = ENV.iter().copied().chain([("KEEL_RATE_LIMIT_SIGN_IN_FAILURES", "4/15m")]).collect();
    let a = crate::start_with(t, &env).await;
    // A second instance: its own state, limiters and listener, on the same database.
    let src = keel_config::MapSource(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(keel_api::serve(listener, AppState::new(db, Config::load(&src).unwrap()), stop.clone()));
    let _stop = stop.drop_guard();
    fail(&base(&a), w.owner_email, 2, 1).await;
    fail(&b, w.owner_email, 2, 50).await;
    // 4 per 15 minutes: one attempt back every 225 s.
    assert_throttled_within(sign_in(&base(&a), w.owner_email, PASSWORD, "198.51.100.7").await, 225).await;
    assert_throttled_within(sign_in(&b, w.owner_email, PASSWORD, "198.51.100.8").await, 225).await;
}

#[test]
fn the_quota_is_overridable_and_a_bad_one_names_its_variable() {
    let var = "KEEL_RATE_LIMIT_SIGN_IN_FAILURES";
    let c = Config::load(&keel_config::MapSource::new([])).unwrap();
    assert_eq!(c.rate_limits.sign_in_failures.quota.to_string(), "10/15m,burst=10", "the documented default");
    let c = Config::load(&keel_config::MapSource::new([(var, "5/1h,burst=3")])).unwrap();
    assert_eq!(c.rate_limits.sign_in_failures.quota.to_string(), "5/1h,burst=3");
    let e = Config::load(&keel_config::MapSource::new([(var, "ten per minute")])).unwrap_err();
    assert!(e.to_string().contains(var), "{e}");
}
