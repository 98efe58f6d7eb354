//! Bench family `api`: keel-api's request path, on SQLite and on PostgreSQL.
//!
//! - **Admin list through the full stack vs. a bare router.** `GET /api/admin/invoices` (the
//!   default page of 50 out of 200 seeded invoices) served by the real `keel_api::serve`
//!   (request id + access log, internal-header stripping, body limit, route timing, CORS, the
//!   `admin_api` rate-limit floor, the root session middleware, the `Principal` extractor) and,
//!   as the peer, by `keel_api::bench::bare_invoice_list`: the same handler body
//!   (`list_for`) on a plain axum router with the caller already known. Both servers share one
//!   database pool. The full-stack case signs in once and sends the session cookie, so the
//!   session middleware does its database lookup; a second case sends the API token instead.
//!   The `admin_api` floor is raised with `KEEL_RATE_LIMIT_ADMIN_API` so every request is
//!   admitted (it is still consulted on each one); any response other than 200, a 429
//!   included, fails the bench.
//! - **200 concurrent invoice creates in one org**: 200 tasks released together by a barrier,
//!   each POSTing one invoice with the API token through the full server; time from release to
//!   the last response. Before the time is reported: every answer is 201, the 200 numbers are
//!   distinct and never seen in an earlier round, and the database holds exactly 200 more
//!   invoices for the org, all with distinct numbers. One untimed round first, so every timed
//!   round runs on warm keep-alive connections and an existing day counter.
//!
//! - **Scrape storm** (`api_storm.rs`): admin list latency p50/p99 with 0 vs 8 concurrent
//!   `/metrics` scrapers against 100,000 pending jobs.
//!
//! Method: `CLIENTS` client tasks issue requests back to back for `ROUND` each, after a
//! warm-up of every side. Rounds alternate the order of the sides (full, bare, bearer, then
//! the reverse) and each side's figure is the median of `ROUNDS`, so load from other work on
//! this shared machine lands on all sides. The HTTP client (reqwest, keep-alive) runs in this
//! process, on the same two cores and the same tokio runtime as the servers, with the same
//! concurrency, path and headers for every side (the bare router receives the cookie too and
//! ignores it): its cost is in every figure, so the ratio understates the gap a remote client
//! would see rather than overstating it. No tracing subscriber is installed in keel-bench, so
//! the access-log line is built but not written; a production JSON log would add its cost to
//! the full stack.

use crate::report::{median, Row};
use crate::scratch::{ScratchPg, ScratchSqlite};
use crate::server::{self, BenchServer, Tenant};
use keel_ids::OrgId;
use keel_storage::Db;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const SEED: usize = 200;
const PAGE: usize = 50;
const CLIENTS: usize = 16;
const ROUND: Duration = Duration::from_secs(2);
const WARMUP: Duration = Duration::from_millis(500);
const ROUNDS: usize = 5;
const CREATES: usize = 200;
const CREATE_ROUNDS: usize = 5;
/// About a million a second per user: far above anything this machine can send, so the floor
/// admits every request while still doing its bookkeeping on each one.
const ADMIN_LIMIT: &str = "1000000/1s,burst=1000000";
const LIST: &str = "/api/admin/invoices";
const PEER: &str = "same handler on a bare axum router";
const LIST_TARGET: &str = "≥ 50% of bare (ratio ≥ 0.5)";

pub(crate) fn run() -> Result<Vec<Row>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut rows = Vec::new();
        let lite = ScratchSqlite::create("api", keel_api::SCHEMAS).await?;
        let result = backend("sqlite", &lite.db).await;
        lite.db.close().await;
        drop(lite);
        rows.extend(result?);
        let pg = ScratchPg::create("api", keel_api::SCHEMAS).await?;
        let result = backend("postgres", &pg.db).await;
        pg.drop_db().await;
        rows.extend(result?);
        Ok(rows)
    })
}

/// The bare peer: the list handler on a plain axum router, on its own port.
struct BareServer {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BareServer {
    async fn start(db: &Db, env: &[(&str, &str)], tenant: &Tenant) -> Result<BareServer, String> {
        let state = server::state(db.clone(), env)?;
        let principal =
            keel_api::Principal { user_id: tenant.user, org_id: tenant.org, role: keel_tenancy::Role::Owner };
        let router = keel_api::bench::bare_invoice_list(state, principal);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shutdown = CancellationToken::new();
        let serve = axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let task = tokio::spawn(async move { serve.await });
        Ok(BareServer { addr, shutdown, task })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn stop(self) -> Result<(), String> {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(r)) => r.map_err(|e| format!("bare server: {e}")),
            Ok(Err(e)) => Err(format!("bare server task: {e}")),
            Err(_) => Err("bare server did not stop within 10 s".into()),
        }
    }
}

async fn backend(name: &'static str, db: &Db) -> Result<Vec<Row>, String> {
    let tenant = server::tenant(db).await?;
    let env = [("KEEL_RATE_LIMIT_ADMIN_API", ADMIN_LIMIT)];
    let full = server::start(db.clone(), &env).await?;
    let bare = match BareServer::start(db, &env, &tenant).await {
        Ok(b) => b,
        Err(e) => {
            let _ = full.stop().await;
            return Err(e);
        }
    };
    let client = server::client()?;
    let result = measure(name, db, &client, &full, &bare, &tenant).await;
    // Closing the client's idle connections first lets both servers drain at once.
    drop(client);
    let stopped_full = full.stop().await;
    let stopped_bare = bare.stop().await;
    let rows = result?;
    stopped_full?;
    stopped_bare?;
    Ok(rows)
}

async fn measure(
    name: &'static str,
    db: &Db,
    client: &reqwest::Client,
    full: &BenchServer,
    bare: &BareServer,
    tenant: &Tenant,
) -> Result<Vec<Row>, String> {
    let bearer = bearer_headers(&tenant.token)?;
    seed(client, full, &bearer).await?;
    let cookie = sign_in(client, full).await?;

    // The bare router gets the cookie as well, so the client does the same work for each side.
    let sides = [
        Target { label: "full stack, session cookie", url: full.url(LIST), headers: cookie.clone() },
        Target { label: "bare router", url: bare.url(LIST), headers: cookie },
        Target { label: "full stack, API token", url: full.url(LIST), headers: bearer.clone() },
    ];
    check_pages(client, &sides).await?;

    eprintln!("api/{name}: admin list, {CLIENTS} clients, {ROUNDS} rounds of {ROUND:?} per side");
    for s in &sides {
        load(client, s, WARMUP).await?;
    }
    let mut rates: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        let order: [usize; 3] = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for i in order {
            rates[i].push(load(client, &sides[i], ROUND).await?);
        }
    }
    for (s, r) in sides.iter().zip(&rates) {
        eprintln!("  {:<28} {r:.0?}", s.label);
    }
    // Each round's own ratio shows how much of the spread above is the machine, not the stack.
    let per_round: Vec<f64> = rates[0].iter().zip(&rates[1]).map(|(f, b)| f / b).collect();
    eprintln!("  {:<28} {per_round:.2?}", "session / bare, per round");
    let [session, bare_rate, token] = rates.map(median);

    eprintln!("api/{name}: {CREATES} concurrent invoice creates, {CREATE_ROUNDS} rounds");
    let create_s = creates(db, client, full, tenant, &bearer).await?;
    let storm = super::api_storm::scrape_storm(name, db, client, full, &bearer).await?;

    Ok([
        vec![
            Row::new(format!("{name}/admin_list_full_stack"), "ops_per_s", session, "higher")
                .vs(PEER, bare_rate)
                .target(LIST_TARGET),
            Row::new(format!("{name}/admin_list_full_stack_bearer"), "ops_per_s", token, "higher")
                .vs(PEER, bare_rate)
                .target(LIST_TARGET),
            Row::new(format!("{name}/invoice_create_{CREATES}_concurrent"), "s_total", create_s, "lower")
                .target("all numbers unique; time reported"),
        ],
        storm,
    ]
    .concat())
}

struct Target {
    label: &'static str,
    url: String,
    headers: HeaderMap,
}

fn bearer_headers(token: &str) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    let v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| format!("token header: {e}"))?;
    h.insert(AUTHORIZATION, v);
    Ok(h)
}

fn invoice(i: usize) -> serde_json::Value {
    serde_json::json!({
        "customer_name": format!("Customer {i:04}"),
        "currency": "USD",
        "line_items": [{"description": "x", "quantity": 1 + i % 5, "unit_amount_minor": 1000 + i}],
    })
}

/// `SEED` invoices in one bulk create, so the list route returns a full page of real rows.
async fn seed(client: &reqwest::Client, full: &BenchServer, bearer: &HeaderMap) -> Result<(), String> {
    let body = serde_json::json!({ "invoices": (0..SEED).map(invoice).collect::<Vec<_>>() });
    let res = client
        .post(full.url("/api/admin/invoices/bulk"))
        .headers(bearer.clone())
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("seed: {e}"))?;
    let status = res.status();
    if status != StatusCode::CREATED {
        let text = res.text().await.unwrap_or_default();
        return Err(format!("seed: bulk create answered {status}: {text}"));
    }
    Ok(())
}

/// Signs in with the tenant's password; the `Cookie` header carrying the session it returns.
async fn sign_in(client: &reqwest::Client, full: &BenchServer) -> Result<HeaderMap, String> {
    let res = client
        .post(full.url("/api/auth/sign-in"))
        .json(&serde_json::json!({ "email": server::EMAIL, "password": server::PASSWORD }))
        .send()
        .await
        .map_err(|e| format!("sign-in: {e}"))?;
    let status = res.status();
    if status != StatusCode::OK {
        let text = res.text().await.unwrap_or_default();
        return Err(format!("sign-in answered {status}: {text}"));
    }
    let pair = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with("keel_session=") && kv.len() > "keel_session=".len())
        .ok_or("sign-in set no keel_session cookie")?
        .to_owned();
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_str(&pair).map_err(|e| format!("cookie header: {e}"))?);
    Ok(h)
}

/// Before timing anything: every side answers 200 with a full page of the seeded org, and the
/// same page, so the sides do the same work.
async fn check_pages(client: &reqwest::Client, sides: &[Target]) -> Result<(), String> {
    let mut pages = Vec::new();
    for s in sides {
        let res =
            client.get(&s.url).headers(s.headers.clone()).send().await.map_err(|e| format!("{}: {e}", s.label))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| format!("{}: {e}", s.label))?;
        if status != StatusCode::OK {
            return Err(format!("{}: list answered {status}: {text}", s.label));
        }
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: list body: {e}", s.label))?;
        let items = v["items"].as_array().map_or(0, Vec::len);
        if items != PAGE || v["total"].as_u64() != Some(SEED as u64) {
            return Err(format!("{}: expected {PAGE} of {SEED} invoices, got {items} of {}", s.label, v["total"]));
        }
        pages.push(v);
    }
    if pages.windows(2).any(|w| w[0] != w[1]) {
        return Err("the full stack and the bare router returned different pages".into());
    }
    Ok(())
}

/// Requests per second from `CLIENTS` tasks sending back to back until `dur` has passed. Any
/// answer other than 200 fails the round, with the count of each status seen.
async fn load(client: &reqwest::Client, target: &Target, dur: Duration) -> Result<f64, String> {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url, headers) = (client.clone(), target.url.clone(), target.headers.clone());
        tasks.spawn(async move {
            let mut ok = 0u64;
            let mut other: BTreeMap<u16, u64> = BTreeMap::new();
            while Instant::now() < deadline {
                let res = client.get(&url).headers(headers.clone()).send().await.map_err(|e| e.to_string())?;
                let status = res.status();
                // Reading the whole body keeps the connection reusable and counts the transfer.
                let body = res.bytes().await.map_err(|e| e.to_string())?;
                if status == StatusCode::OK && !body.is_empty() {
                    ok += 1;
                } else {
                    *other.entry(status.as_u16()).or_default() += 1;
                }
            }
            Ok::<_, String>((ok, other))
        });
    }
    let mut ok = 0u64;
    let mut other: BTreeMap<u16, u64> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (n, o) = joined.map_err(|e| format!("{}: client task: {e}", target.label))??;
        ok += n;
        for (s, c) in o {
            *other.entry(s).or_default() += c;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if !other.is_empty() {
        let hint = if other.contains_key(&429) { " (429: the admin_api override did not take)" } else { "" };
        return Err(format!("{}: {ok} answers were 200 but others were not: {other:?}{hint}", target.label));
    }
    Ok(ok as f64 / elapsed)
}

async fn invoice_count(db: &Db, org: OrgId) -> Result<(i64, i64), String> {
    let sql = "SELECT count(*), count(DISTINCT number) FROM keel_invoices WHERE org_id = ";
    match db {
        Db::Postgres(p) => sqlx::query_as(&format!("{sql}$1")).bind(org.as_uuid()).fetch_one(p).await,
        Db::Sqlite(p) => sqlx::query_as(&format!("{sql}?")).bind(org.to_string()).fetch_one(p).await,
    }
    .map_err(|e| format!("count invoices: {e}"))
}

/// Median seconds for `CREATES` creates released together, over `CREATE_ROUNDS` timed rounds
/// after one untimed round; every round is checked before its time counts.
async fn creates(
    db: &Db,
    client: &reqwest::Client,
    full: &BenchServer,
    tenant: &Tenant,
    bearer: &HeaderMap,
) -> Result<f64, String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut times = Vec::new();
    for round in 0..=CREATE_ROUNDS {
        let (before, _) = invoice_count(db, tenant.org).await?;
        let barrier = Arc::new(Barrier::new(CREATES + 1));
        let mut tasks = JoinSet::new();
        for i in 0..CREATES {
            let (client, url, headers, barrier) = (client.clone(), full.url(LIST), bearer.clone(), barrier.clone());
            let body = invoice(round * CREATES + i);
            tasks.spawn(async move {
                barrier.wait().await;
                let res = client.post(&url).headers(headers).json(&body).send().await.map_err(|e| e.to_string())?;
                let status = res.status();
                let text = res.text().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((status, text))
            });
        }
        barrier.wait().await;
        let start = Instant::now();
        let mut answers = Vec::with_capacity(CREATES);
        while let Some(joined) = tasks.join_next().await {
            answers.push(joined.map_err(|e| format!("create task: {e}"))??);
        }
        let elapsed = start.elapsed().as_secs_f64();

        let mut numbers = HashSet::new();
        for (status, text) in &answers {
            if *status != StatusCode::CREATED {
                return Err(format!("round {round}: a create answered {status}: {text}"));
            }
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("create body: {e}"))?;
            let number = v["number"].as_str().ok_or("a create answer has no number")?.to_owned();
            if seen.contains(&number) || !numbers.insert(number.clone()) {
                return Err(format!("round {round}: invoice number {number} was given twice"));
            }
        }
        let (after, distinct) = invoice_count(db, tenant.org).await?;
        if after - before != CREATES as i64 || distinct != after {
            return Err(format!(
                "round {round}: the org went from {before} to {after} invoices ({distinct} distinct numbers); \
                 expected {CREATES} more, all distinct"
            ));
        }
        seen.extend(numbers);
        if round > 0 {
            times.push(elapsed);
        }
    }
    eprintln!("  {times:.3?} s");
    Ok(median(times))
}
