//! The HTTP edge seen from outside: out-of-range report dates, trailing JSON, authorization
//! before body validation, problem+json for oversized heads and framework rejections,
//! compression. (Panics, sensitive headers and header stripping are tested on the `edge` stack
//! itself, in `routes/mod.rs`.)

use crate::fixture::{invoice, world};
use crate::start;
use keel_testkit::{backend_tests, TestDb};
use std::io::Read;

backend_tests!(
    out_of_range_report_dates_are_422_naming_the_field,
    trailing_bytes_after_the_json_are_400_naming_body,
    a_caller_without_the_permission_gets_403_before_its_body_is_judged,
    json_lists_are_gzipped_for_clients_that_accept_it,
);

async fn problem(r: reqwest::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    assert_eq!(r.headers()["content-type"], "application/problem+json", "HTTP {status}");
    (status, r.json().await.unwrap())
}

async fn out_of_range_report_dates_are_422_naming_the_field(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let get = |q: &str| c.get(s.url(&format!("/api/admin/{q}"))).bearer_auth(&w.owner_token).send();
    for (q, field) in [
        // DateTime + TimeDelta overflowed here: a panic and an empty reply.
        ("reports/revenue?from=%2B262142-12-31&to=%2B262142-12-31", "from"),
        // PostgreSQL: "timestamp out of range", a 500.
        ("reports/revenue?from=-4714-01-01&to=-4714-01-02", "from"),
        ("reports/revenue?from=1969-12-31&to=1970-01-01", "from"),
        ("reports/revenue?from=2026-01-01&to=%2B10000-01-01", "to"),
        ("dashboard?month=-262143-01", "month"),
        ("dashboard?month=%2B262142-12", "month"),
        ("dashboard?month=1969-12", "month"),
    ] {
        let (status, body) = problem(get(q).await.unwrap()).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{q}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("9999-12-31"), "{q}: {body}");
    }
    // The edges of the supported range work on both backends.
    for q in [
        "reports/revenue?from=1970-01-01&to=1970-01-31",
        "reports/revenue?from=9999-12-01&to=9999-12-31&format=csv",
        "reports/revenue?from=9999-12-01&to=9999-12-31&group_by=status",
        "dashboard?month=1970-01",
        "dashboard?month=9999-12",
    ] {
        let r = get(q).await.unwrap();
        assert_eq!(r.status(), 200, "{q}: {}", r.text().await.unwrap());
    }
}

async fn trailing_bytes_after_the_json_are_400_naming_body(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/admin/invoices");
    let send = |body: String| {
        c.post(&url).bearer_auth(&w.owner_token).header("content-type", "application/json").body(body).send()
    };
    for tail in ["xyz", "{}", " 1", "\0"] {
        let (status, body) = problem(send(format!("{}{tail}", invoice("Acme"))).await.unwrap()).await;
        assert_eq!(status, 400, "{tail:?}: {body}");
        assert_eq!(body["errors"][0]["field"], "body", "{tail:?}: {body}");
    }
    let r = c.get(&url).bearer_auth(&w.owner_token).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["total"], 0, "nothing was written");
    assert_eq!(send(format!("{}\r\n ", invoice("Acme"))).await.unwrap().status(), 201, "trailing whitespace is fine");
    // Every JSON route reads bodies the same way.
    let r = c
        .post(s.url("/api/auth/sign-in"))
        .header("content-type", "application/json")
        .body(r#"{"email": "owner@example.com", "password": "correct horse battery"}xyz"#)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (400, Some("body")), "{body}");
}

async fn a_caller_without_the_permission_gets_403_before_its_body_is_judged(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let bad_invoice = serde_json::json!({"customer_name": "", "currency": "XXX", "line_items": []});
    let pay = s.url(&format!("/api/admin/invoices/{}/payments", uuid::Uuid::new_v4()));
    for (url, body) in [
        (s.url("/api/admin/invoices"), bad_invoice.to_string()),
        (s.url("/api/admin/invoices"), "not json".to_owned()),
        (s.url("/api/admin/invoices"), format!("{bad_invoice}xyz")),
        (s.url("/api/admin/invoices/bulk"), serde_json::json!({"invoices": [bad_invoice]}).to_string()),
        (pay.clone(), serde_json::json!({"amount_minor": -5}).to_string()),
        (pay, "{".to_owned()),
    ] {
        let r = c
            .post(&url)
            .bearer_auth(&w.viewer_token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, p) = problem(r).await;
        assert_eq!(status, 403, "{url} {body}: {p}");
        assert_eq!(p["type"], "https://keel.dev/problems/forbidden");
    }
    // With the permission, the same body is judged.
    let r = c.post(s.url("/api/admin/invoices")).bearer_auth(&w.owner_token).json(&bad_invoice).send().await.unwrap();
    assert_eq!(r.status(), 422);
}

async fn json_lists_are_gzipped_for_clients_that_accept_it(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    // reqwest is built without decompression here, so it shows the bytes as sent.
    let c = reqwest::Client::new();
    for i in 0..10 {
        let r =
            c.post(s.url("/api/admin/invoices")).bearer_auth(&w.owner_token).json(&invoice(&format!("C{i}"))).send();
        assert_eq!(r.await.unwrap().status(), 201);
    }
    let list = || c.get(s.url("/api/admin/invoices")).bearer_auth(&w.owner_token);
    let plain = list().send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none(), "not asked for");
    let plain: serde_json::Value = plain.json().await.unwrap();
    let r = list().header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers().get_all("vary").iter().any(|v| v
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("accept-encoding")));
    let zipped = r.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&zipped[..]).read_to_string(&mut text).unwrap();
    let unzipped: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(unzipped["total"], plain["total"]);
    assert!(zipped.len() < text.len());
    // Small answers and problem details are sent as they are.
    let r = c.get(s.url("/api/health/live")).header("accept-encoding", "gzip").send().await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    let r = c.get(s.url("/api/admin/invoices?limit=0")).bearer_auth(&w.owner_token).header("accept-encoding", "gzip");
    let r = r.send().await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(problem(r).await.0, 400);
}

/// Heads that break our bounds are answered with problem+json, not hyper's bare 431 or an
/// accepted 40 KiB header.
#[tokio::test]
async fn oversized_heads_and_framework_rejections_are_problem_json() {
    let t = TestDb::sqlite(crate::SCHEMAS).await;
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let mut many = c.get(s.url("/api/health/live"));
    for i in 0..150 {
        many = many.header(format!("x-filler-{i}"), "1");
    }
    let (status, body) = problem(many.send().await.unwrap()).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["type"], "https://keel.dev/problems/headers-too-large");
    let r = c.get(s.url("/api/health/live")).header("x-big", "a".repeat(40 * 1024)).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"), "inside the request-id layer");
    let (status, body) = problem(r).await;
    assert_eq!(status, 431, "{body}");
    let (status, body) =
        problem(c.get(s.url(&format!("/api/health/live?{}", "q".repeat(10 * 1024)))).send().await.unwrap()).await;
    assert_eq!(status, 414, "{body}");
    // An axum extractor's plain-text rejection (a path segment that is not UTF-8).
    let r = c.get(s.url("/api/admin/invoices/%FF%FE")).bearer_auth(&w.owner_token).send().await.unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["type"], "https://keel.dev/problems/bad-request");
    // A request within the bounds is served.
    let r = c.get(s.url("/api/health/live")).header("x-big", "a".repeat(8 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
