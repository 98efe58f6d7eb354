//! The operator console over real HTTP: redirects, security headers, assets, the shared sign-in
//! and the CSRF/origin rules. (The browser tests under `bins/keel-api/tests/browser/` drive the
//! same pages in Chromium.)

use crate::fixture::{world, PASSWORD};
use crate::start;
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    signed_out_pages_redirect_to_sign_in_with_security_headers,
    assets_are_embedded_cached_and_outside_the_page_limit,
    console_sign_in_gives_the_api_session_and_non_operators_get_403,
    cross_site_sign_in_is_refused,
    operators_see_every_page_and_actions_need_both_csrf_proofs,
    hostile_job_arguments_are_escaped_in_the_html,
    telemetry_page_shows_the_report_and_charts_the_slowest_routes,
    job_list_pages_by_keyset_and_searches_by_id,
);

/// The tenant world with its owner granted the operator role.
async fn operator_world(t: &TestDb) -> crate::fixture::World {
    let w = world(t).await;
    keel_tenancy::Tenancy::new(t.db.clone()).grant_operator(w.owner, None, chrono::Utc::now()).await.unwrap();
    w
}

/// Signs in through the console; returns the cookie and the CSRF token of the session's forms.
async fn operator_session(s: &crate::Server, email: &str) -> (String, String) {
    let c = client();
    let base = format!("http://{}", s.addr);
    let cookie = console_sign_in(&c, &base, email).await;
    let html = c.get(s.url("/console")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no csrf field: {html}"))
        .to_owned();
    (cookie, csrf)
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub(crate) fn assert_secure_headers(r: &reqwest::Response) {
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
}

async fn signed_out_pages_redirect_to_sign_in_with_security_headers(t: TestDb) {
    let s = start(t).await;
    let c = client();
    for path in ["/console", "/console/jobs", "/console/queues", "/console/activity", "/console/jobs/not-an-id"] {
        let r = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/console/sign-in", "{path}");
        assert_secure_headers(&r);
    }
    let r = c.get(s.url("/console/sign-in")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_secure_headers(&r);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("action=\"/console/sign-in\""), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");
    // A signed-out POST to an action is sent to sign in too, never performed.
    let r = c.post(s.url("/console/queues/default/pause")).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
}

async fn assets_are_embedded_cached_and_outside_the_page_limit(t: TestDb) {
    // A page limit of 2 requests: assets must not spend it.
    let s = crate::start_with(t, &[("KEEL_RATE_LIMIT_OPERATOR_CONSOLE", "2/1m,burst=2")]).await;
    let c = client();
    for _ in 0..5 {
        let r = c.get(s.url("/console/assets/console.css?v=1")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
        assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age="));
        assert_secure_headers(&r);
        let r = c.get(s.url("/console/assets/console.js")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
        assert!(r.text().await.unwrap().contains("data-confirm"));
    }
    assert_eq!(c.get(s.url("/console/assets/nope.js")).send().await.unwrap().status(), 404);
    // Pages do spend it.
    let statuses: Vec<u16> = futures_statuses(&c, &s.url("/console/sign-in"), 4).await;
    assert!(statuses.contains(&429), "pages go through the console's limit: {statuses:?}");
}

async fn futures_statuses(c: &reqwest::Client, url: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.get(url).send().await.unwrap().status().as_u16());
    }
    out
}

/// Signs in through the console's form; returns the `keel_session=…` cookie pair.
pub(crate) async fn console_sign_in(c: &reqwest::Client, base: &str, email: &str) -> String {
    let r = c
        .post(format!("{base}/console/sign-in"))
        .header("origin", base)
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    assert_eq!(r.headers()["location"], "/console");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

async fn console_sign_in_gives_the_api_session_and_non_operators_get_403(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = client();
    let base = format!("http://{}", s.addr);
    let r = c
        .post(s.url("/console/sign-in"))
        .form(&[("email", w.owner_email), ("password", "wrong password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("email or password is wrong"));
    let cookie = console_sign_in(&c, &base, w.owner_email).await;
    // The same session as the API's sign-in.
    let r = c.get(s.url("/api/admin/invoices")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // An org owner without the operator grant sees nothing of the console.
    let mut csrf = String::new();
    for path in ["/console", "/console/jobs", "/console/orgs"] {
        let r = c.get(s.url(path)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert_secure_headers(&r);
        let html = r.text().await.unwrap();
        assert!(html.contains("operator grant"), "{html}");
        csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    }
    let r = c
        .post(s.url("/console/queues/default/pause"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .form(&[("csrf", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // It can sign out from the 403 page (with its token only), which ends the API session too.
    let out =
        |token: String| c.post(s.url("/console/sign-out")).header("cookie", &cookie).form(&[("csrf", token)]).send();
    assert_eq!(out("0".repeat(64)).await.unwrap().status(), 403);
    let r = out(csrf).await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let r = c.get(s.url("/api/admin/invoices")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 401, "the session is over");
}

async fn cross_site_sign_in_is_refused(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = client();
    for (name, value) in [("origin", "http://evil.example"), ("origin", "null"), ("sec-fetch-site", "cross-site")] {
        let r = c
            .post(s.url("/console/sign-in"))
            .header(name, value)
            .form(&[("email", w.owner_email), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
        assert!(r.headers().get("set-cookie").is_none_or(|v| !v.to_str().unwrap().contains("keel_session=")));
    }
}

async fn operators_see_every_page_and_actions_need_both_csrf_proofs(t: TestDb) {
    let w = operator_world(&t).await;
    let db = t.db.clone();
    let s = start(t).await;
    let (cookie, csrf) = operator_session(&s, w.owner_email).await;
    let c = client();
    let base = format!("http://{}", s.addr);
    for path in [
        "/console",
        "/console/jobs",
        "/console/jobs?state=dead_letter",
        "/console/queues",
        "/console/limits",
        "/console/telemetry",
        "/console/orgs",
        "/console/activity",
    ] {
        let r = c.get(s.url(path)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_secure_headers(&r);
        let html = r.text().await.unwrap();
        assert!(html.contains("/console/assets/console.js"), "{path}");
    }
    let orgs = c.get(s.url("/console/orgs")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(orgs.contains("HQ") && orgs.contains("Branch") && orgs.contains("Elsewhere"), "{orgs}");
    assert!(!orgs.contains("owner@example.com"), "addresses are masked: {orgs}");
    let pause = |origin: Option<&'static str>, token: String| {
        let mut req = c.post(s.url("/console/queues/default/pause")).header("cookie", &cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move { req.form(&[("csrf", token)]).send().await.unwrap().status() }
    };
    let own: &'static str = Box::leak(base.clone().into_boxed_str());
    assert_eq!(pause(Some(own), String::new()).await, 403, "no token");
    assert_eq!(pause(Some(own), "0".repeat(64)).await, 403, "a wrong token");
    assert_eq!(pause(Some("http://evil.example"), csrf.clone()).await, 403, "a foreign origin, even with the token");
    let queue = keel_queue::open(db.clone());
    assert!(queue.paused_queues().await.unwrap().is_empty(), "nothing refused was done");
    assert_eq!(pause(None, csrf.clone()).await, 303, "no Origin: the token decides");
    assert_eq!(pause(Some(own), csrf.clone()).await, 303);
    assert_eq!(queue.paused_queues().await.unwrap(), vec!["default".to_owned()]);
    // Recorded in the activity log, and shown there.
    let log = keel_tenancy::Tenancy::new(db.clone()).operator_actions(None, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|e| e.action == "queue.pause" && e.target == "default" && e.operator_id == w.owner));
    assert_eq!(log[0].remote_addr.as_deref(), Some("127.0.0.1"));
    let page = c.get(s.url("/console/activity")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("queue.pause"), "{page}");
    // A token is bound to its session: another session's token is refused.
    let (cookie2, csrf2) = operator_session(&s, w.owner_email).await;
    assert_ne!(csrf, csrf2);
    let r = c
        .post(s.url("/console/queues/default/resume"))
        .header("cookie", &cookie2)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(s.url("/console/queues/default/resume"))
        .header("cookie", &cookie2)
        .form(&[("csrf", csrf2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(queue.paused_queues().await.unwrap().is_empty());
}

async fn hostile_job_arguments_are_escaped_in_the_html(t: TestDb) {
    let w = operator_world(&t).await;
    let queue = keel_queue::open(t.db.clone());
    let payload = serde_json::json!({"a": "<script>alert(1)</script>", "b": "\"><img src=x onerror=alert(1)>"});
    let job = queue.enqueue(keel_queue::NewJob::new("console.hostile", &payload).unwrap()).await.unwrap().id();
    let s = start(t).await;
    let (cookie, _) = operator_session(&s, w.owner_email).await;
    let c = client();
    for path in [format!("/console/jobs/{job}"), "/console/jobs?kind=console.hostile".to_owned()] {
        let html = c.get(s.url(&path)).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }
    let html = c
        .get(s.url(&format!("/console/jobs/{job}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
}

/// The escaping invariant, checked on the source: no console template lets data through
/// unescaped, and no page carries inline script (the CSP would block it anyway).
#[test]
fn console_templates_never_bypass_escaping_or_inline_script() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console"), &mut files);
    assert!(files.len() >= 10, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        assert!(!code.contains("PreEscaped"), "{} uses PreEscaped", f.display());
        assert!(
            !code.contains("script {") && !code.contains("onclick") && !code.contains("style="),
            "{}: inline script or style",
            f.display()
        );
    }
}

async fn telemetry_page_shows_the_report_and_charts_the_slowest_routes(t: TestDb) {
    use keel_telemetry::{insert_samples, RouteSample, RouteTemplate};
    let w = operator_world(&t).await;
    // Two days of one route (a hostile-looking template, escaped like everything else).
    let route = RouteTemplate::parse("/api/clients/:id").unwrap();
    let mut samples = Vec::new();
    for (hours_ago, ms) in [(30, 120), (2, 480)] {
        let at = chrono::Utc::now() - chrono::Duration::hours(hours_ago);
        samples.extend(
            (0..keel_telemetry::report::MIN_P99_SAMPLES)
                .map(|_| RouteSample::server(route.clone(), "GET", 200, std::time::Duration::from_millis(ms), at)),
        );
    }
    insert_samples(&t.db, &samples).await.unwrap();
    let s = start(t).await;
    let (cookie, _) = operator_session(&s, w.owner_email).await;
    let r = client().get(s.url("/console/telemetry")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("/api/clients/:id"), "{html}");
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 2, "p95 and p99 charts: {html}");
    assert!(html.matches("<path class=\"s0\" d=\"M").count() == 2, "one line per chart: {html}");
    assert!(html.contains("480.0"), "the slow day's p95 in ms: {html}");
}

async fn job_list_pages_by_keyset_and_searches_by_id(t: TestDb) {
    let w = operator_world(&t).await;
    let queue = keel_queue::open(t.db.clone());
    let jobs: Vec<keel_queue::NewJob> =
        (0..51).map(|i| keel_queue::NewJob::new("console.page", &serde_json::json!({"i": i})).unwrap()).collect();
    let ids: Vec<_> = queue.enqueue_many(jobs).await.unwrap().into_iter().map(|e| e.id()).collect();
    let s = start(t).await;
    let (cookie, _) = operator_session(&s, w.owner_email).await;
    let c = client();
    let get = |path: String| {
        let req = c.get(s.url(&path)).header("cookie", &cookie);
        async move { req.send().await.unwrap() }
    };
    let first = get("/console/jobs?kind=console.page".into()).await.text().await.unwrap();
    let rows = |html: &str| html.matches("data-job=\"").count();
    assert_eq!(rows(&first), 50, "{first}");
    let older =
        first.split("rel=\"next\"").next().unwrap().rsplit("href=\"").next().unwrap().split('"').next().unwrap();
    assert!(older.contains("before=") && older.contains("kind=console.page"), "{older}");
    let second = get(older.replace("&amp;", "&")).await.text().await.unwrap();
    assert_eq!(rows(&second), 1, "{second}");
    assert!(!second.contains("rel=\"next\""), "the last page has no Older link");
    // Search by id opens the job.
    let r = get(format!("/console/jobs?id={}", ids[7])).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/console/jobs/{}", ids[7]).as_str());
    let r = get("/console/jobs?id=nope".into()).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("id: not a job id"));
    let r = get("/console/jobs?state=bogus".into()).await.text().await.unwrap();
    assert!(r.contains("state: must be"), "{r}");
}
