//! Invoices end to end: numbering, idempotency, validation, pagination, literal search.

use crate::fixture::{invoice, world};
use crate::start;
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    numbers_are_sequential_per_org_and_day,
    numbering_seeds_from_existing_numbers,
    concurrent_creates_never_collide,
    idempotency_key_replays_the_first_answer,
    bulk_idempotency_key_replays_the_first_answer,
    idempotency_keys_expire_after_24_hours,
    concurrent_requests_with_one_idempotency_key_create_once,
    amounts_past_the_maximum_are_422_naming_the_field,
    bad_input_is_rejected_and_writes_nothing,
    malformed_amounts_are_400_naming_the_field_and_write_nothing,
    control_characters_are_422_naming_the_field_and_write_nothing,
    list_pages_filters_and_searches_literally,
    payments_mark_invoices_paid,
    openapi_lists_every_served_route,
);

fn today() -> String {
    chrono::Utc::now().format("%Y%m%d").to_string()
}

async fn create(c: &reqwest::Client, url: &str, tok: &str, body: serde_json::Value) -> reqwest::Response {
    c.post(url).bearer_auth(tok).json(&body).send().await.unwrap()
}

async fn total(c: &reqwest::Client, s: &crate::Server, tok: &str) -> i64 {
    let r = c.get(s.url("/api/admin/invoices")).bearer_auth(tok).send().await.unwrap();
    r.json::<serde_json::Value>().await.unwrap()["total"].as_i64().unwrap()
}

async fn numbers_are_sequential_per_org_and_day(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/admin/invoices");
    let r = create(&c, &url, &w.owner_token, invoice("Acme")).await;
    assert_eq!(r.status(), 201);
    let inv: serde_json::Value = r.json().await.unwrap();
    assert_eq!(inv["number"], format!("INV-{}-0001", today()));
    assert_eq!(inv["total_minor"], 25100);
    assert_eq!(inv["status"], "draft");
    let bulk = serde_json::json!({"invoices": [invoice("B"), invoice("C"), invoice("D")]});
    let r = create(&c, &s.url("/api/admin/invoices/bulk"), &w.owner_token, bulk).await;
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    let numbers: Vec<&str> = body["items"].as_array().unwrap().iter().map(|i| i["number"].as_str().unwrap()).collect();
    let d = today();
    assert_eq!(numbers, [format!("INV-{d}-0002"), format!("INV-{d}-0003"), format!("INV-{d}-0004")]);
    // Another org has its own counter.
    let r = create(&c, &url, &w.other_token, invoice("Theirs")).await;
    let inv: serde_json::Value = r.json().await.unwrap();
    assert_eq!(inv["number"], format!("INV-{d}-0001"));
}

async fn numbering_seeds_from_existing_numbers(t: TestDb) {
    let w = world(&t).await;
    let d = today();
    // An invoice created before the counter existed (e.g. imported), straight into the table.
    insert_raw(&t, w.parent, &format!("INV-{d}-0041")).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let r = create(&c, &s.url("/api/admin/invoices"), &w.owner_token, invoice("Next")).await;
    let inv: serde_json::Value = r.json().await.unwrap();
    assert_eq!(inv["number"], format!("INV-{d}-0042"));
}

async fn insert_raw(t: &TestDb, org: keel_ids::OrgId, number: &str) {
    use keel_storage::{sqlx, Db};
    match &t.db {
        Db::Postgres(p) => {
            sqlx::query("INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items) VALUES ($1, $2, $3, 'open', 'Old', 'USD', 100, '[]')")
                .bind(uuid::Uuid::new_v4()).bind(org.as_uuid()).bind(number).execute(p).await.unwrap();
        }
        Db::Sqlite(p) => {
            sqlx::query("INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items) VALUES (?, ?, ?, 'open', 'Old', 'USD', 100, '[]')")
                .bind(uuid::Uuid::new_v4().to_string()).bind(org.to_string()).bind(number).execute(p).await.unwrap();
        }
    }
}

async fn concurrent_creates_never_collide(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/admin/invoices");
    let futs = (0..40).map(|i| {
        let (c, url, tok) = (c.clone(), url.clone(), w.owner_token.clone());
        async move { create(&c, &url, &tok, invoice(&format!("C{i}"))).await.json::<serde_json::Value>().await.unwrap() }
    });
    let all = futures::future::join_all(futs).await;
    let mut numbers: Vec<String> = all.iter().map(|v| v["number"].as_str().expect("created").to_owned()).collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 40, "all numbers unique");
    assert_eq!(numbers.last().unwrap(), &format!("INV-{}-0040", today()), "no gaps");
}

async fn idempotency_key_replays_the_first_answer(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/admin/invoices");
    let send = |body: serde_json::Value| {
        let (c, url, tok) = (c.clone(), url.clone(), w.owner_token.clone());
        async move { c.post(url).bearer_auth(tok).header("idempotency-key", "order-77").json(&body).send().await.unwrap() }
    };
    let first = send(invoice("Acme")).await;
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send(invoice("Acme")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(total(&c, &s, &w.owner_token).await, 1, "no second invoice");
    let other = send(invoice("Different")).await;
    assert_eq!(other.status(), 422);
    // The same key in another org is independent.
    let r = c
        .post(&url)
        .bearer_auth(&w.other_token)
        .header("idempotency-key", "order-77")
        .json(&invoice("X"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn bulk_idempotency_key_replays_the_first_answer(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/admin/invoices/bulk");
    let body = serde_json::json!({"invoices": [invoice("A"), invoice("B"), invoice("C")]});
    let send = || {
        let (c, url, tok, body) = (c.clone(), url.clone(), w.owner_token.clone(), body.clone());
        let r = c.post(url).bearer_auth(tok).header("idempotency-key", "import-9").json(&body);
        async move { r.send().await.unwrap() }
    };
    let first = send().await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotency-replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let again = send().await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again, first, "the retry answers exactly the first result");
    assert_eq!(total(&c, &s, &w.owner_token).await, 3, "the retry created nothing");
    // The same key with another batch is refused, and creates nothing either.
    let r = c
        .post(&url)
        .bearer_auth(&w.owner_token)
        .header("idempotency-key", "import-9")
        .json(&serde_json::json!({"invoices": [invoice("D")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(total(&c, &s, &w.owner_token).await, 3);
}

/// Every amount a write accepts is bounded by `MAX_AMOUNT_MINOR`, on both backends. Two
/// invoices with `unit_amount_minor` i64::MAX used to be accepted, and the org's reports then
/// answered 500 for good; a huge payment was 500 on SQLite and accepted on PostgreSQL.
async fn amounts_past_the_maximum_are_422_naming_the_field(t: TestDb) {
    use keel_billing::MAX_AMOUNT_MINOR as MAX;
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let tok = &w.owner_token;
    let url = s.url("/api/admin/invoices");
    let refused = |r: reqwest::Response, field: &'static str| async move {
        assert_eq!(r.status(), 422, "{field}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(&MAX.to_string()), "names the maximum: {body}");
    };
    let with_line = |quantity: i64, unit: i64| {
        let mut inv = invoice("Big");
        inv["line_items"][0]["quantity"] = serde_json::json!(quantity);
        inv["line_items"][0]["unit_amount_minor"] = serde_json::json!(unit);
        inv
    };
    for _ in 0..2 {
        refused(create(&c, &url, tok, with_line(1, i64::MAX)).await, "line_items[0].unit_amount_minor").await;
    }
    refused(create(&c, &url, tok, with_line(1, MAX + 1)).await, "line_items[0].unit_amount_minor").await;
    // quantity × unit past the maximum (each within it).
    refused(create(&c, &url, tok, with_line(2, MAX / 2 + 1)).await, "line_items[0].unit_amount_minor").await;
    // Two lines, each within it, whose total is not.
    let mut two = with_line(1, MAX);
    two["line_items"] = serde_json::json!([two["line_items"][0].clone(), {"description": "More", "quantity": 1, "unit_amount_minor": 1}]);
    refused(create(&c, &url, tok, two).await, "line_items").await;
    let bulk = serde_json::json!({"invoices": [invoice("Fine"), with_line(1, i64::MAX)]});
    refused(
        create(&c, &s.url("/api/admin/invoices/bulk"), tok, bulk).await,
        "invoices[1].line_items[0].unit_amount_minor",
    )
    .await;
    assert_eq!(total(&c, &s, tok).await, 0, "nothing written");
    // The maximum itself is accepted, and the org's reports keep answering.
    let r = create(&c, &url, tok, with_line(1, MAX)).await;
    assert_eq!(r.status(), 201);
    let inv: serde_json::Value = r.json().await.unwrap();
    assert_eq!(inv["total_minor"], MAX);
    let pay_url = s.url(&format!("/api/admin/invoices/{}/payments", inv["id"].as_str().unwrap()));
    let pay = |amount: i64| {
        let r = c.post(&pay_url).bearer_auth(tok).json(&serde_json::json!({"amount_minor": amount}));
        async move { r.send().await.unwrap() }
    };
    refused(pay(i64::MAX).await, "amount_minor").await;
    refused(pay(MAX + 1).await, "amount_minor").await;
    for _ in 0..3 {
        assert_eq!(pay(MAX).await.status(), 201);
    }
    let d = chrono::Utc::now().format("%Y-%m-%d");
    let r = c.get(s.url(&format!("/api/admin/reports/revenue?from={d}&to={d}"))).bearer_auth(tok).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["invoices"]["overall"]["totals"][0]["minor"], MAX);
    assert_eq!(body["payments"]["overall"]["totals"][0]["minor"], 3 * MAX);
}

/// Sixteen requests racing with one Idempotency-Key (a client retrying on a timeout while the
/// first is still in flight): exactly one invoice, and every answer is its replay (201) or
/// `409` with `Retry-After` while the first runs; never a 5xx (it was a duplicate-key 500).
async fn concurrent_requests_with_one_idempotency_key_create_once(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/admin/invoices");
    let sends = (0..16).map(|_| {
        let r = c.post(&url).bearer_auth(&w.owner_token).header("idempotency-key", "race-1").json(&invoice("Racer"));
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
            (status, retry_after, content_type, r.json::<serde_json::Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(sends).await;
    let mut ids = Vec::new();
    for (status, retry_after, content_type, body) in &answers {
        match status {
            201 => ids.push(body["id"].as_str().expect("an invoice").to_owned()),
            409 => {
                assert_eq!(content_type, "application/problem+json", "{body}");
                assert!(retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok()), "409 carries Retry-After");
            }
            other => panic!("answer {other}: {body}"),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every 201 is the one creation or its replay: {answers:?}");
    assert_eq!(total(&c, &s, &w.owner_token).await, 1, "exactly one invoice");
    // Once it has finished, the key replays.
    let r = c.post(&url).bearer_auth(&w.owner_token).header("idempotency-key", "race-1").json(&invoice("Racer"));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotency-replayed"], "true");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["id"].as_str(), Some(ids[0].as_str()));
}

/// Moves every stored Idempotency-Key of `org` back by `hours`, as if it had been used then.
async fn age_idempotency_keys(db: &keel_storage::Db, org: keel_ids::OrgId, hours: i64) {
    use keel_storage::{sqlx, Db};
    match db {
        Db::Postgres(p) => {
            sqlx::query(
                "UPDATE keel_idempotency_keys SET created_at = created_at - make_interval(hours => $2) WHERE org_id = $1",
            )
            .bind(org.as_uuid())
            .bind(hours as i32)
            .execute(p)
            .await
            .unwrap();
        }
        Db::Sqlite(p) => {
            sqlx::query("UPDATE keel_idempotency_keys SET created_at = created_at - ? * 3600000 WHERE org_id = ?")
                .bind(hours)
                .bind(org.to_string())
                .execute(p)
                .await
                .unwrap();
        }
    }
}

async fn idempotency_keys_expire_after_24_hours(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    let s = start(t).await;
    let c = reqwest::Client::new();
    let send = || {
        let (c, url, tok) = (c.clone(), s.url("/api/admin/invoices"), w.owner_token.clone());
        async move {
            let r = c.post(url).bearer_auth(tok).header("idempotency-key", "daily-1").json(&invoice("Acme")).send();
            let r = r.await.unwrap();
            assert_eq!(r.status(), 201);
            let replayed = r.headers().contains_key("idempotency-replayed");
            (replayed, r.json::<serde_json::Value>().await.unwrap()["id"].clone())
        }
    };
    let (_, first) = send().await;
    // 23 hours on, the key still replays.
    age_idempotency_keys(&db, w.parent, 23).await;
    assert_eq!(send().await, (true, first.clone()));
    // 25 hours on, it is forgotten: the same request creates a second invoice.
    age_idempotency_keys(&db, w.parent, 2).await;
    let (replayed, second) = send().await;
    assert!(!replayed);
    assert_ne!(second, first);
    assert_eq!(total(&c, &s, &w.owner_token).await, 2);
    // ...and the key now remembers the new answer.
    assert_eq!(send().await, (true, second));
}

async fn bad_input_is_rejected_and_writes_nothing(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let tok = &w.owner_token;
    let url = s.url("/api/admin/invoices");
    let problem = |r: &reqwest::Response| r.headers()["content-type"] == "application/problem+json";
    // 1,001 invoices in one bulk request.
    let many: Vec<_> = (0..1001).map(|i| invoice(&format!("N{i}"))).collect();
    let r = create(&c, &s.url("/api/admin/invoices/bulk"), tok, serde_json::json!({"invoices": many})).await;
    assert_eq!(r.status(), 422);
    assert!(problem(&r));
    // Oversize body: announced by Content-Length, refused with 413 before it is read. (Raw
    // TCP, because an HTTP client streaming a body the server has already refused may see the
    // connection close before it reads the answer.)
    let (status, text) = raw_post(s.addr, "/api/admin/invoices", tok, 2 * 1024 * 1024).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    // Unknown field in a closed schema, named.
    let mut bad = invoice("A");
    bad["discount"] = serde_json::json!(5);
    let r = create(&c, &url, tok, bad).await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("discount"), "{body}");
    // A wrong type deep inside names the path.
    let mut bad = invoice("A");
    bad["line_items"][0]["quantity"] = serde_json::json!("two");
    let r = create(&c, &url, tok, bad).await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "line_items[0].quantity");
    // Not JSON at all.
    let r =
        c.post(&url).bearer_auth(tok).header("content-type", "application/json").body("{nope").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(problem(&r));
    // Unknown currency, negative amount.
    let mut bad = invoice("A");
    bad["currency"] = serde_json::json!("XXQ");
    assert_eq!(create(&c, &url, tok, bad).await.status(), 422);
    let mut bad = invoice("A");
    bad["line_items"][0]["unit_amount_minor"] = serde_json::json!(-1);
    assert_eq!(create(&c, &url, tok, bad).await.status(), 422);
    // Invalid UUID in a path.
    let r = c.get(s.url("/api/admin/invoices/not-a-uuid")).bearer_auth(tok).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(problem(&r));
    assert_eq!(total(&c, &s, tok).await, 0, "nothing was written");
}

async fn payments_stored(db: &keel_storage::Db) -> i64 {
    use keel_storage::{sqlx, Db};
    let q = "SELECT count(*) FROM keel_payments";
    match db {
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

/// An amount that is not an integer in minor units is malformed input (400), not a value to
/// judge (422): the problem names the field and says what an amount is; nothing is written.
async fn malformed_amounts_are_400_naming_the_field_and_write_nothing(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    let s = start(t).await;
    let c = reqwest::Client::new();
    let tok = &w.owner_token;
    let expect_400 = |r: reqwest::Response, field: &'static str| async move {
        assert_eq!(r.status(), 400, "{field}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], 400, "{body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("integers in minor units (e.g. cents"), "{body}");
    };
    for bad in [serde_json::json!("12.50"), serde_json::json!(12.5), serde_json::json!(1250.0), serde_json::json!(null)]
    {
        let mut inv = invoice("Malformed");
        inv["line_items"][0]["unit_amount_minor"] = bad.clone();
        let r = create(&c, &s.url("/api/admin/invoices"), tok, inv.clone()).await;
        expect_400(r, "line_items[0].unit_amount_minor").await;
        let bulk = serde_json::json!({"invoices": [invoice("Fine"), inv]});
        let r = create(&c, &s.url("/api/admin/invoices/bulk"), tok, bulk).await;
        expect_400(r, "invoices[1].line_items[0].unit_amount_minor").await;
    }
    // Out of the 64-bit range is malformed too (it cannot be an amount at all).
    let mut inv = invoice("Huge");
    inv["line_items"][0]["unit_amount_minor"] = serde_json::json!(u64::MAX);
    expect_400(create(&c, &s.url("/api/admin/invoices"), tok, inv).await, "line_items[0].unit_amount_minor").await;
    // Other validation keeps its 422: a negative amount, a quantity of the wrong type.
    let mut inv = invoice("Negative");
    inv["line_items"][0]["unit_amount_minor"] = serde_json::json!(-5);
    assert_eq!(create(&c, &s.url("/api/admin/invoices"), tok, inv).await.status(), 422);
    let mut inv = invoice("Quantity");
    inv["line_items"][0]["quantity"] = serde_json::json!(1.5);
    assert_eq!(create(&c, &s.url("/api/admin/invoices"), tok, inv).await.status(), 422);
    assert_eq!(total(&c, &s, tok).await, 0, "no invoice from a malformed request");
    // Payments: the same rule for `amount_minor`.
    let r = create(&c, &s.url("/api/admin/invoices"), tok, invoice("Payable")).await;
    let inv: serde_json::Value = r.json().await.unwrap();
    let url = s.url(&format!("/api/admin/invoices/{}/payments", inv["id"].as_str().unwrap()));
    for bad in [serde_json::json!("12.50"), serde_json::json!(1.5), serde_json::json!(true)] {
        let body = serde_json::json!({"amount_minor": bad, "currency": "USD"});
        expect_400(c.post(&url).bearer_auth(tok).json(&body).send().await.unwrap(), "amount_minor").await;
    }
    assert_eq!(payments_stored(&db).await, 0, "no payment from a malformed request");
    let r = c.get(s.url(&format!("/api/admin/invoices/{}", inv["id"].as_str().unwrap()))).bearer_auth(tok).send();
    let after: serde_json::Value = r.await.unwrap().json().await.unwrap();
    assert_eq!(after["status"], "draft", "the invoice is untouched");
    assert_eq!(total(&c, &s, tok).await, 1);
}

async fn list_pages_filters_and_searches_literally(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let tok = &w.owner_token;
    let names = ["Smith & Sons", "100% Clean", "under_score", "O'Brien (West)", "back\\slash", "Comma, Inc", "Plain"];
    for n in names {
        assert_eq!(create(&c, &s.url("/api/admin/invoices"), tok, invoice(n)).await.status(), 201);
    }
    let get = |q: &str| {
        let c = c.clone();
        let url = format!("{}?{q}", s.url("/api/admin/invoices"));
        let tok = tok.clone();
        async move {
            let r = c.get(url).bearer_auth(tok).send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (st, page) = get("limit=3&offset=0").await;
    assert_eq!(st, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert_eq!((page["total"].as_i64(), page["limit"].as_i64(), page["offset"].as_i64()), (Some(7), Some(3), Some(0)));
    assert_eq!(page["items"][0]["customer_name"], "Plain", "newest first");
    let (st, page) = get("offset=500").await;
    assert_eq!(st, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    assert_eq!(page["total"], 7);
    assert_eq!(get("offset=-1").await.0, 400);
    assert_eq!(get("limit=abc").await.0, 400);
    assert_eq!(get("limit=0").await.0, 400);
    assert_eq!(get("status=bogus").await.0, 422);
    for (term, expect) in [
        ("%25", "100% Clean"),
        ("_", "under_score"),
        ("%2C", "Comma, Inc"),
        ("(", "O'Brien (West)"),
        ("'", "O'Brien (West)"),
        ("%5C", "back\\slash"),
        ("smith", "Smith & Sons"),
    ] {
        let (st, page) = get(&format!("q={term}")).await;
        assert_eq!(st, 200, "{term}");
        let hits: Vec<&str> =
            page["items"].as_array().unwrap().iter().map(|i| i["customer_name"].as_str().unwrap()).collect();
        assert_eq!(hits, [expect], "q={term}");
    }
    let (_, page) = get("status=open").await;
    assert_eq!(page["total"], 0);
    let (_, page) = get("status=draft").await;
    assert_eq!(page["total"], 7);
}

async fn payments_mark_invoices_paid(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let inv: serde_json::Value =
        create(&c, &s.url("/api/admin/invoices"), &w.owner_token, invoice("Pay me")).await.json().await.unwrap();
    let url = s.url(&format!("/api/admin/invoices/{}/payments", inv["id"].as_str().unwrap()));
    let pay = |amount: i64, cur: &str| {
        let (c, url, tok) = (c.clone(), url.clone(), w.owner_token.clone());
        let body = serde_json::json!({"amount_minor": amount, "currency": cur});
        async move { c.post(url).bearer_auth(tok).json(&body).send().await.unwrap() }
    };
    assert_eq!(pay(100, "EUR").await.status(), 422, "currency must match");
    assert_eq!(pay(0, "USD").await.status(), 422);
    let r: serde_json::Value = pay(20000, "USD").await.json().await.unwrap();
    assert_eq!(r["invoice_status"], "draft");
    let r: serde_json::Value = pay(5100, "USD").await.json().await.unwrap();
    assert_eq!(r["invoice_status"], "paid");
    // Another org cannot pay (or see) it.
    let r =
        c.post(&url).bearer_auth(&w.other_token).json(&serde_json::json!({"amount_minor": 1})).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

async fn openapi_lists_every_served_route(t: TestDb) {
    let _w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let doc: serde_json::Value = c.get(s.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let ops = keel_api::operations();
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, ops.len());
    for (method, path) in ops {
        assert!(paths[path.as_str()].get(method.as_str()).is_some(), "{method} {path} missing from the document");
        let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = c.request(m, s.url(&concrete)).send().await.unwrap();
        let is_fallback = r.status() == 404 && r.text().await.unwrap().contains("no route matches");
        assert!(!is_fallback, "{method} {path} is documented but not served");
    }
}

/// The primary list path (one org, newest first, first page) is served by the
/// `(org_id, created_at, id)` index of migration 0008, scanned backwards: no sort, no scan of
/// other orgs' rows. Postgres only: SQLite's planner is not what production runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_list_query_uses_the_org_created_id_index() {
    use keel_storage::{sqlx, Db};
    let Some(t) = TestDb::postgres("invoices::postgres_list_query_uses_the_org_created_id_index", crate::SCHEMAS).await
    else {
        return;
    };
    let w = world(&t).await;
    let Db::Postgres(p) = &t.db else { unreachable!("a Postgres TestDb") };
    // 20,000 invoices over three orgs, so the planner has a real choice, then fresh statistics.
    for (org, n) in [(w.parent, 8000), (w.child, 6000), (w.other, 6000)] {
        sqlx::query(
            "INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at)
             SELECT gen_random_uuid(), $1, 'INV-20260101-' || g, 'open', 'Customer ' || g, 'USD', g, '[]',
                    now() - g * interval '1 minute'
               FROM generate_series(1, $2) g",
        )
        .bind(org.as_uuid())
        .bind(n)
        .execute(p)
        .await
        .unwrap();
    }
    sqlx::query("ANALYZE keel_invoices").execute(p).await.unwrap();
    // The handler's own query text (store::list with no status and no search), first page.
    let plan: serde_json::Value = sqlx::query_scalar(
        "EXPLAIN (FORMAT JSON) SELECT id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at
           FROM keel_invoices
          WHERE org_id = $1 AND ($2::text IS NULL OR status = $2)
            AND ($3::text IS NULL OR customer_name ILIKE $3 ESCAPE '\\' OR number ILIKE $3 ESCAPE '\\')
          ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
    )
    .bind(w.parent.as_uuid())
    .bind(None::<String>)
    .bind(None::<String>)
    .bind(50_i64)
    .bind(0_i64)
    .fetch_one(p)
    .await
    .unwrap();
    let text = plan.to_string();
    let limit = &plan[0]["Plan"];
    assert_eq!(limit["Node Type"], "Limit", "{text}");
    let scan = &limit["Plans"][0];
    assert_eq!(scan["Node Type"], "Index Scan", "the index itself gives the order, no sort: {text}");
    assert_eq!(scan["Index Name"], "keel_invoices_org_created_id_idx", "{text}");
    assert_eq!(scan["Scan Direction"], "Backward", "{text}");
}

/// Sends only the head of a POST announcing `len` body bytes and returns the status and raw answer.
async fn raw_post(addr: std::net::SocketAddr, path: &str, token: &str, len: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), sock.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// A NUL reached the database as a 500 (PostgreSQL refuses it in text; SQLite's `length()` stops
/// at it and failed the CHECK): found by schemathesis. Control characters are refused up front.
async fn control_characters_are_422_naming_the_field_and_write_nothing(t: TestDb) {
    let w = world(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/admin/invoices");
    let mut nul_name = invoice("x");
    nul_name["customer_name"] = serde_json::json!("\u{0}Acme");
    let mut bell_description = invoice("Acme");
    bell_description["line_items"][0]["description"] = serde_json::json!("Windows\u{7}");
    for (body, field) in [(nul_name, "customer_name"), (bell_description, "line_items[0].description")] {
        let r = create(&c, &url, &w.owner_token, body).await;
        assert_eq!(r.status(), 422);
        let p: serde_json::Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    let bulk = serde_json::json!({"invoices": [invoice("Fine"), {
        "customer_name": "Tab\there", "currency": "USD",
        "line_items": [{"description": "ok", "quantity": 1, "unit_amount_minor": 1}]
    }]});
    let r = c.post(s.url("/api/admin/invoices/bulk")).bearer_auth(&w.owner_token).json(&bulk).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "invoices[1].customer_name", "{p}");
    assert_eq!(total(&c, &s, &w.owner_token).await, 0, "nothing written");
    // A multi-line description is fine.
    let mut multiline = invoice("Acme");
    multiline["line_items"][0]["description"] = serde_json::json!("Windows\nand doors");
    assert_eq!(create(&c, &url, &w.owner_token, multiline).await.status(), 201);
    // Search text is checked the same way (a NUL bound into LIKE was a database error too).
    let r = c.get(s.url("/api/admin/invoices?q=%00")).bearer_auth(&w.owner_token).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "q", "{p}");
}
