//! Trivial-route latency: a sequential probe through idle and loaded phases (sinks, real ingest,
//! buffer-only load, flat-out ingest).

use super::*;

/// A sequential prober on its own OS thread and current-thread runtime, so its timings are not
/// queued behind the load tasks on the main runtime (the OS still shares the two cores).
pub(super) struct Probe {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Result<Vec<Duration>, String>>,
}

impl Probe {
    /// Starts probing `url` and returns once the probe is warmed up and measuring. With
    /// `limit`, it stops by itself after that many samples.
    async fn start(url: String, limit: Option<usize>) -> Result<Probe, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("telemetry-probe".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("probe runtime: {e}"))?;
                rt.block_on(probe_loop(url, limit, flag, ready_tx))
            })
            .map_err(|e| format!("probe thread: {e}"))?;
        match tokio::time::timeout(PHASE_LIMIT, ready_rx).await {
            Ok(Ok(())) => Ok(Probe { stop, handle }),
            // The thread ended before it was ready: its error says why.
            _ => Err(Probe { stop, handle }.finish().await.err().unwrap_or_else(|| "probe did not start".into())),
        }
    }

    /// Stops probing (if not stopped already) and returns the samples.
    async fn finish(self) -> Result<Vec<Duration>, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.join().await
    }

    /// Waits for a probe started with a limit to take all its samples.
    async fn join(self) -> Result<Vec<Duration>, String> {
        let handle = self.handle;
        tokio::task::spawn_blocking(move || handle.join())
            .await
            .map_err(|e| format!("probe join: {e}"))?
            .map_err(|_| "probe thread panicked".to_string())?
    }
}

pub(super) async fn probe_loop(
    url: String,
    limit: Option<usize>,
    stop: Arc<AtomicBool>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<Vec<Duration>, String> {
    let client = server::client()?;
    let get = |client: &reqwest::Client| {
        let req = client.get(&url);
        async move {
            let res = req.send().await.map_err(|e| format!("probe request: {e}"))?;
            let status = res.status();
            res.bytes().await.map_err(|e| format!("probe response: {e}"))?;
            if !status.is_success() {
                return Err(format!("{PROBE_PATH} answered {status}"));
            }
            Ok(())
        }
    };
    for _ in 0..100 {
        get(&client).await?;
    }
    let _ = ready.send(());
    let mut samples = Vec::with_capacity(limit.unwrap_or(20_000));
    while !stop.load(Ordering::Relaxed) && limit.is_none_or(|n| samples.len() < n) {
        let t = Instant::now();
        get(&client).await?;
        samples.push(t.elapsed());
        tokio::time::sleep(PROBE_GAP).await;
    }
    Ok(samples)
}

/// The phases of one latency round, in the order they run.
#[derive(Clone, Copy, Debug)]
pub(super) enum Phase {
    Idle,
    /// The HTTP load at [`TARGET_RATE`], sent to a [`Sink`] that discards it instead of
    /// keel-api: the load generator's and the transport's CPU, without keel's work.
    Sink,
    /// The same, to a [`Sink`] that runs the ingest handler's own work (`parse_ingest`, then
    /// `record_all` into the server's recorder, so its writer inserts them): keel's work
    /// without axum and the middleware stack.
    ParseSink,
    /// HTTP ingest into keel-api at [`TARGET_RATE`].
    Http,
    /// The same rate pushed straight into the server's recorder: only the writer works.
    Buffer,
    /// HTTP ingest as fast as the pipeline takes it ([`Pace::Backpressure`]).
    Max,
}

pub(super) const PHASES: [Phase; 6] =
    [Phase::Idle, Phase::Sink, Phase::ParseSink, Phase::Http, Phase::Buffer, Phase::Max];

/// Probe samples per phase, in [`PHASES`] order.
pub(super) struct Round([Vec<Duration>; PHASES.len()]);

/// A bare HTTP/1.1 endpoint on loopback that reads each request whole and answers 202; with a
/// recorder it also parses the body and records the samples, as keel-api's handler does.
pub(super) struct Sink {
    url: String,
    stop: CancellationToken,
}

impl Sink {
    async fn start(recorder: Option<RouteRecorder>) -> Result<Sink, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("sink bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("sink address: {e}"))?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((conn, _)) => {
                            let (token, recorder) = (token.clone(), recorder.clone());
                            tokio::spawn(async move {
                                tokio::select! {
                                    () = token.cancelled() => {}
                                    _ = sink_connection(conn, recorder) => {}
                                }
                            });
                        }
                        Err(_) => return,
                    },
                }
            }
        });
        Ok(Sink { url: format!("http://{addr}{INGEST_PATH}"), stop })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves keep-alive requests on one connection until the client closes it.
pub(super) async fn sink_connection(
    conn: tokio::net::TcpStream,
    recorder: Option<RouteRecorder>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut conn = BufReader::new(conn);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut length = 0usize;
        loop {
            line.clear();
            if conn.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| std::io::ErrorKind::InvalidData)?;
                }
            }
        }
        body.resize(length, 0);
        conn.read_exact(&mut body).await?;
        if let Some(rec) = &recorder {
            let samples = keel_telemetry::parse_ingest(&body, Utc::now())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            if !rec.record_all(samples) {
                return Err(std::io::Error::other("the buffer refused a batch"));
            }
        }
        conn.get_mut().write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").await?;
    }
}

pub(super) async fn latency_round(pg: &ScratchPg) -> Result<Round, String> {
    truncate(&pg.db).await?;
    let server = start_server(pg).await?;
    let result = latency_phases(&server).await;
    let stopped = stop_server(server).await;
    let round = result?;
    stopped?;
    // Every load event (the probe's and the POSTs' own samples are `server` rows).
    let expected = (3 * PACED_EVENTS + MAX_PHASE_EVENTS) as u64;
    let stored = browser_events(&pg.db).await?;
    if stored != expected {
        return Err(format!("latency round stored {stored} of {expected} events"));
    }
    Ok(round)
}

pub(super) async fn latency_phases(server: &BenchServer) -> Result<Round, String> {
    let url = server.url(PROBE_PATH);
    let rec = &server.state.recorder;
    let sink = Sink::start(None).await?;
    let parse_sink = Sink::start(Some(rec.clone())).await?;
    let mut out: [Vec<Duration>; PHASES.len()] = Default::default();
    let mut line = Vec::new();
    for (slot, phase) in PHASES.into_iter().enumerate() {
        let limit = matches!(phase, Phase::Idle).then_some(PROBE_IDLE_SAMPLES);
        let probe = Probe::start(url.clone(), limit).await?;
        let paced = Pace::Rate(TARGET_RATE);
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let (events, load) = match phase {
            Phase::Idle => {
                out[slot] = probe.join().await?;
                continue;
            }
            Phase::Sink => (PACED_EVENTS, post_events_to(sink.url.clone(), rec, PACED_EVENTS, paced).await),
            Phase::ParseSink => (PACED_EVENTS, post_events_to(parse_sink.url.clone(), rec, PACED_EVENTS, paced).await),
            Phase::Http => (PACED_EVENTS, post_events(server, PACED_EVENTS, paced).await),
            Phase::Buffer => (PACED_EVENTS, push_events(rec, PACED_EVENTS, paced).await),
            Phase::Max => (MAX_PHASE_EVENTS, post_events(server, MAX_PHASE_EVENTS, Pace::Backpressure).await),
        };
        let sent = Instant::now();
        let cpu = match (cpu0, cpu_seconds()) {
            (Some(a), Some(b)) => format!("{:.2}", (b - a) / sent.duration_since(t0).as_secs_f64()),
            _ => "?".into(),
        };
        out[slot] = probe.finish().await?;
        let offered = events as f64 / load?.as_secs_f64();
        // A paced load that fell behind its schedule did not test the target rate.
        if !matches!(phase, Phase::Max) && offered < 0.95 * TARGET_RATE {
            return Err(format!("{phase:?}: the load fell behind, {offered:.0} events/s offered of {TARGET_RATE}"));
        }
        let behind = wait_written(rec, sent).await?;
        line.push(format!(
            "{phase:?}: {offered:.0}/s offered, bench process CPU {cpu} cores, all written {behind:.0?} after the last batch"
        ));
    }
    let stats = rec.stats();
    if stats.dropped > 0 || stats.lost > 0 {
        return Err(format!("the buffer dropped or lost samples during the latency round: {stats:?}"));
    }
    let counts: Vec<usize> = out.iter().map(Vec::len).collect();
    eprintln!("  probe samples {counts:?}\n    {}", line.join("\n    "));
    Ok(Round(out))
}

/// CPU time (user + system) this process has used, from /proc; printed per phase so a reader
/// can see how busy the server and its load generator were. `None` off Linux.
pub(super) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

/// Waits (bounded) until every sample the buffer accepted so far is written, and returns how
/// long after `sent` (the last batch) that was: up to one flush interval when the writer keeps
/// up, more when it had a backlog. Only printed.
pub(super) async fn wait_written(rec: &RouteRecorder, sent: Instant) -> Result<Duration, String> {
    loop {
        let s = rec.stats();
        if s.written + s.lost >= s.recorded {
            return Ok(sent.elapsed());
        }
        if sent.elapsed() > PHASE_LIMIT {
            return Err(format!("the writer did not catch up: {s:?}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Server-side CPU of one ingest request's validation (`parse_ingest` of a 100-event body),
/// printed beside the latency rows: it runs on a runtime worker the probe may be queued behind.
pub(super) fn parse_cost() -> Result<Duration, String> {
    let body = ingest_body(0, Utc::now());
    let n = 2_000u32;
    let t = Instant::now();
    for _ in 0..n {
        let parsed = keel_telemetry::parse_ingest(std::hint::black_box(body.as_bytes()), Utc::now());
        if parsed.map_err(|e| format!("the bench's own body is invalid: {e}"))?.len() != BATCH {
            return Err("the bench's own body parsed short".into());
        }
    }
    Ok(t.elapsed() / n)
}

pub(super) async fn latency_case(pg: &ScratchPg) -> Result<Vec<Row>, String> {
    note(&format!("postgres: {PROBE_PATH} latency, phases {PHASES:?}, paced loads at {TARGET_RATE} events/s"));
    eprintln!("  parse_ingest of one 100-event body: {:.0?}", parse_cost()?);
    let mut rounds = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        rounds.push(latency_round(pg).await?);
    }
    let mut pct = |p: f64| -> [f64; PHASES.len()] {
        let mut per_phase = [0.0; PHASES.len()];
        for (slot, value) in per_phase.iter_mut().enumerate() {
            let each: Vec<f64> = rounds.iter_mut().map(|r| percentile_ms(&mut r.0[slot], p)).collect();
            eprintln!("  p{p} ms per round, {:?}: {each:.3?}", PHASES[slot]);
            *value = median(each);
        }
        per_phase
    };
    let [idle99, sink99, parse99, http99, buffer99, max99] = pct(99.0);
    let [idle50, _, _, http50, _, _] = pct(50.0);
    let peer = "same route, no ingest";
    let row = |case: &str, metric, value, idle, target: &str| {
        Row::new(format!("postgres/trivial_route_{case}"), metric, value, "lower").vs(peer, idle).target(target)
    };
    Ok(vec![
        row("p99_during_ingest", "ms_p99", http99, idle99, "unchanged within noise (HTTP ingest at 20,000 events/s)"),
        row("p50_during_ingest", "ms_p50", http50, idle50, "unchanged within noise (HTTP ingest at 20,000 events/s)"),
        row(
            "p99_during_sink_load",
            "ms_p99",
            sink99,
            idle99,
            "no target (the same load to a do-nothing HTTP sink: load generator and transport only)",
        ),
        row(
            "p99_during_parse_sink_load",
            "ms_p99",
            parse99,
            idle99,
            "no target (the same load to a bare HTTP sink running parse_ingest + record_all: keel's work without axum)",
        ),
        row(
            "p99_during_buffer_ingest",
            "ms_p99",
            buffer99,
            idle99,
            "no target (20,000 events/s into the recorder: DB writer only)",
        ),
        row("p99_during_max_ingest", "ms_p99", max99, idle99, "no target (HTTP ingest as fast as it is stored)"),
    ])
}

// ---------------------------------------------------------------------------------------------
// Report export
