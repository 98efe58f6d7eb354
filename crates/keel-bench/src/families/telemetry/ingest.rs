//! Ingest cases: HTTP batches into Postgres through the buffer (paced and unpaced) and the
//! buffer-to-database writer alone.

use super::*;

/// POSTs `events` events from [`HTTP_CLIENTS`] concurrent clients; every answer must be 202.
/// Returns how long sending took.
pub(super) async fn post_events(server: &BenchServer, events: usize, pace: Pace) -> Result<Duration, String> {
    post_events_to(server.url(INGEST_PATH), &server.state.recorder, events, pace).await
}

/// [`post_events`] to any URL; `rec` is the buffer that back-pressure watches.
pub(super) async fn post_events_to(
    url: String,
    rec: &RouteRecorder,
    events: usize,
    pace: Pace,
) -> Result<Duration, String> {
    let now = Utc::now();
    let bodies: Arc<Vec<String>> = Arc::new((0..BODIES).map(|s| ingest_body(s, now)).collect());
    let posts = events.div_ceil(BATCH);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(HTTP_CLIENTS);
    for _ in 0..HTTP_CLIENTS {
        let (bodies, next, url, rec) = (bodies.clone(), next.clone(), url.clone(), rec.clone());
        let client = server::client()?;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= posts {
                    return Ok::<_, String>(());
                }
                pace.wait(i, t0, &rec, HTTP_CLIENTS).await;
                let res = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(bodies[i % bodies.len()].clone())
                    .send()
                    .await
                    .map_err(|e| format!("ingest request: {e}"))?;
                let status = res.status();
                let text = res.text().await.map_err(|e| format!("ingest response: {e}"))?;
                if status.as_u16() != 202 {
                    let text: String = text.chars().take(300).collect();
                    return Err(format!("ingest answered {status}, not 202: {text}"));
                }
            }
        }));
    }
    let all = async {
        for t in tasks {
            t.await.map_err(|e| format!("ingest client: {e}"))??;
        }
        Ok::<_, String>(t0.elapsed())
    };
    tokio::time::timeout(PHASE_LIMIT, all).await.map_err(|_| "ingest clients did not finish in time".to_string())?
}

/// Pushes `events` pre-built samples into `rec` in batches of [`BATCH`] from [`PRODUCERS`]
/// tasks (producer `p` sends batches `p`, `p + PRODUCERS`, …). Returns how long pushing took.
pub(super) async fn push_events(rec: &RouteRecorder, events: usize, pace: Pace) -> Result<Duration, String> {
    let mut per_producer: Vec<Vec<(usize, Vec<RouteSample>)>> = (0..PRODUCERS).map(|_| Vec::new()).collect();
    for (i, b) in sample_batches(events).into_iter().enumerate() {
        per_producer[i % PRODUCERS].push((i, b));
    }
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(PRODUCERS);
    for mine in per_producer {
        let rec = rec.clone();
        tasks.push(tokio::spawn(async move {
            for (i, batch) in mine {
                pace.wait(i, t0, &rec, PRODUCERS).await;
                let n = batch.len();
                if !rec.record_all(batch) {
                    return Err(format!("the buffer refused a batch of {n} ({pace:?}): {:?}", rec.stats()));
                }
            }
            Ok(())
        }));
    }
    let all = async {
        for t in tasks {
            t.await.map_err(|e| format!("producer: {e}"))??;
        }
        Ok::<_, String>(t0.elapsed())
    };
    tokio::time::timeout(PHASE_LIMIT, all).await.map_err(|_| "producers did not finish in time".to_string())?
}

/// `events` samples like the ingest bodies', in batches of [`BATCH`].
pub(super) fn sample_batches(events: usize) -> Vec<Vec<RouteSample>> {
    let now = Utc::now();
    let routes: Vec<RouteTemplate> = INGEST_ROUTES.iter().map(|r| RouteTemplate::from_router(r)).collect();
    let sample = |k: usize| {
        RouteSample::new(
            routes[k % routes.len()].clone(),
            if k % 4 == 0 { SampleKind::Api } else { SampleKind::Navigation },
            None,
            Some(200),
            Duration::from_micros(3_000 + (k * 7_919 % 2_000) as u64 * 137),
            SampleRate::ONE,
            now - ChronoDuration::milliseconds((k % 60_000) as i64),
        )
    };
    (0..events).step_by(BATCH).map(|b| (b..(b + BATCH).min(events)).map(sample).collect()).collect()
}

/// What one ingest run stored, and how fast.
pub(super) struct Ingested {
    /// Events stored per second, from the first request until the writer had flushed.
    rate: f64,
    /// Events sent (answered 202) per second, over the sending alone.
    offered: f64,
    stored: u64,
    stats: RecorderStats,
}

/// Checks the table against what was sent and the recorder's counters. Drops are returned (the
/// caller reports them); failed inserts or a count that disagrees with the counters are errors.
pub(super) async fn check_ingest(
    db: &Db,
    sent: usize,
    stats: RecorderStats,
    elapsed: Duration,
) -> Result<(u64, f64), String> {
    let stored = browser_events(db).await?;
    if stats.write_errors > 0 || stats.lost > 0 {
        return Err(format!("the writer failed inserts: {stats:?}"));
    }
    if stats.dropped == 0 && stored != sent as u64 {
        return Err(format!("sent {sent} events, no drops counted, but the table holds {stored}: {stats:?}"));
    }
    if stored > sent as u64 {
        return Err(format!("sent {sent} events but the table holds {stored}"));
    }
    Ok((stored, stored as f64 / elapsed.as_secs_f64()))
}

/// One HTTP ingest run on a fresh server; the clock stops once the stopped server's writer has
/// flushed the last sample.
pub(super) async fn ingest_http_once(pg: &ScratchPg, pace: Pace) -> Result<Ingested, String> {
    truncate(&pg.db).await?;
    let server = start_server(pg).await?;
    let state = server.state.clone();
    let t = Instant::now();
    let posted = post_events(&server, HTTP_EVENTS, pace).await;
    let stopped = stop_server(server).await;
    let elapsed = t.elapsed();
    let sending = posted?;
    stopped?;
    let stats = state.recorder.stats();
    let (stored, rate) = check_ingest(&pg.db, HTTP_EVENTS, stats, elapsed).await?;
    let offered = HTTP_EVENTS as f64 / sending.as_secs_f64();
    eprintln!("  stored {rate:.0}/s, offered {offered:.0}/s ({stored} stored in {elapsed:.2?}; {stats:?})");
    Ok(Ingested { rate, offered, stored, stats })
}

pub(super) async fn ingest_http_case(pg: &ScratchPg) -> Result<Vec<Row>, String> {
    note(&format!("postgres: ingest over HTTP, {HTTP_EVENTS} events, {HTTP_CLIENTS} clients, back-pressured"));
    let mut runs = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        runs.push(ingest_http_once(pg, Pace::Backpressure).await?);
    }
    let dropped: u64 = runs.iter().map(|r| r.stats.dropped).sum();
    let case = if dropped == 0 {
        "postgres/ingest_http_to_db".to_string()
    } else {
        let stored: u64 = runs.iter().map(|r| r.stored).sum();
        let sent = (ITERATIONS * HTTP_EVENTS) as u64;
        format!("postgres/ingest_http_to_db (buffer dropped {dropped} samples; {stored} of {sent} events stored)")
    };
    let mut rows =
        vec![Row::new(case, "events_per_s", median(runs.iter().map(|r| r.rate).collect()), "higher")
            .target("≥ 20,000/s")];

    note(&format!("postgres: ingest over HTTP, {HTTP_EVENTS} events, {HTTP_CLIENTS} clients, unpaced (overload)"));
    let mut runs = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        runs.push(ingest_http_once(pg, Pace::Blind).await?);
    }
    let dropped: u64 = runs.iter().map(|r| r.stats.dropped).sum();
    let sent = (ITERATIONS * HTTP_EVENTS) as u64;
    eprintln!("  unpaced: the buffer dropped {dropped} samples over {sent} events sent (every answer 202)");
    rows.push(
        Row::new(
            "postgres/ingest_http_unpaced_stored",
            "events_per_s",
            median(runs.iter().map(|r| r.rate).collect()),
            "higher",
        )
        .vs("offered: events answered 202 per s", median(runs.iter().map(|r| r.offered).collect()))
        .target("no target (overload: the excess is dropped and counted, by design)"),
    );
    Ok(rows)
}

pub(super) async fn ingest_buffer_once(pg: &ScratchPg) -> Result<f64, String> {
    truncate(&pg.db).await?;
    let (rec, writer) = route_pipeline(pg.db.clone(), WriterConfig::default());
    let stop = CancellationToken::new();
    let t = Instant::now();
    let handle = tokio::spawn(writer.run(stop.clone()));
    let pushed = push_events(&rec, BUFFER_EVENTS, Pace::Backpressure).await;
    // Cancelling flushes what is left at once instead of waiting for the next tick.
    stop.cancel();
    let stats = tokio::time::timeout(PHASE_LIMIT, handle)
        .await
        .map_err(|_| "writer did not finish in time".to_string())?
        .map_err(|e| format!("writer: {e}"))?;
    let elapsed = t.elapsed();
    pushed?;
    if stats.written != BUFFER_EVENTS as u64 || stats.dropped != 0 {
        return Err(format!("buffer run wrote {} of {BUFFER_EVENTS}: {stats:?}", stats.written));
    }
    Ok(check_ingest(&pg.db, BUFFER_EVENTS, stats, elapsed).await?.1)
}

pub(super) async fn ingest_buffer_case(pg: &ScratchPg) -> Result<Row, String> {
    note(&format!("postgres: ingest through the buffer alone, {BUFFER_EVENTS} events, {PRODUCERS} producers"));
    let mut rates = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        rates.push(ingest_buffer_once(pg).await?);
    }
    eprintln!("  {rates:.0?}");
    Ok(Row::new("postgres/ingest_buffer_to_db", "events_per_s", median(rates), "higher")
        .target("no target (the writer's ceiling under the HTTP row)"))
}

// ---------------------------------------------------------------------------------------------
// Trivial-route latency
