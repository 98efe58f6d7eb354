//! Connection limits (`KEEL_HTTP_HEADER_TIMEOUT`, `KEEL_HTTP_IDLE_TIMEOUT`,
//! `KEEL_HTTP_MAX_CONNECTIONS`): slow-header and idle sockets are closed, a request in flight
//! is not, the cap holds new connections back (and says so), and healthy clients are served
//! while a thousand bad sockets are held. Closes are observed as EOF on the client's socket.

use crate::start_with;
use keel_api::HttpLimits;
use keel_testkit::TestDb;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A head that never ends: the request line and one header, no blank line.
const PARTIAL_HEAD: &[u8] = b"GET /api/health/live HTTP/1.1\r\nhost: x\r\n";
const FULL_REQUEST: &[u8] = b"GET /api/health/live HTTP/1.1\r\nhost: x\r\n\r\n";

/// Reads until the server closes the socket; `false` if it is still open after `within` (a
/// bound for failing, not a measurement).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Reads one complete HTTP/1.1 response with a Content-Length body; returns its status.
async fn read_response(s: &mut TcpStream) -> u16 {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a whole response: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= len {
                return head[9..12].parse().unwrap();
            }
        }
    }
}

fn probe_app(entered: Arc<Notify>, release: Arc<Notify>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new().route("/api/health/live", get(|| async { "ok" })).route(
        "/slow",
        get(move || {
            let (e, r) = (entered.clone(), release.clone());
            async move {
                e.notify_one();
                r.notified().await;
                "done"
            }
        }),
    )
}

async fn serve_probe(limits: HttpLimits) -> (SocketAddr, Arc<Notify>, Arc<Notify>, CancellationToken) {
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let app = probe_app(entered.clone(), release.clone());
    tokio::spawn(keel_api::serve_router(listener, app, shutdown.clone(), Duration::from_secs(5), limits));
    (addr, entered, release, shutdown)
}

/// In virtual time (the clock is paused and jumps to the next timer when nothing else can run),
/// so each close is seen at exactly the deadline that caused it. hyper's own header timeout
/// would close the idle socket at the header timeout too; ours keeps the two apart.
#[tokio::test(start_paused = true)]
async fn slow_headers_close_at_the_header_timeout_idle_at_the_idle_timeout_and_busy_never() {
    let limits = HttpLimits {
        header_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(30),
        max_connections: 100,
    };
    let (addr, entered, release, shutdown) = serve_probe(limits).await;
    let bound = Duration::from_secs(3600);

    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = tokio::time::Instant::now();
    slow.write_all(PARTIAL_HEAD).await.unwrap();
    assert!(closed_within(&mut slow, bound).await);
    let took = started.elapsed();
    assert!(took >= limits.header_timeout && took < limits.idle_timeout, "slow headers closed after {took:?}");

    let mut idle = TcpStream::connect(addr).await.unwrap();
    let started = tokio::time::Instant::now();
    assert!(closed_within(&mut idle, bound).await);
    let took = started.elapsed();
    assert!(took >= limits.idle_timeout && took < limits.idle_timeout * 2, "idle closed after {took:?}");

    // Keep-alive: idle time counts from the end of the last response.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(FULL_REQUEST).await.unwrap();
    assert_eq!(read_response(&mut kept).await, 200);
    let answered = tokio::time::Instant::now();
    assert!(closed_within(&mut kept, bound).await);
    let took = answered.elapsed();
    assert!(took >= limits.idle_timeout && took < limits.idle_timeout * 2, "kept-alive closed after {took:?}");

    // A handler running far past both timeouts keeps its connection.
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    entered.notified().await;
    tokio::time::sleep(limits.idle_timeout * 4).await;
    release.notify_one();
    assert_eq!(read_response(&mut busy).await, 200, "the request in flight was answered");
    shutdown.cancel();
}

/// The real keel-api with short timeouts: 500 idle and 500 slow-header sockets on the public
/// listener (and idle ones on the metrics listener) do not keep a canary from being served,
/// and every one of them is closed by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_and_slow_sockets_are_closed_while_a_canary_is_served() {
    let s = start_with(
        TestDb::sqlite(crate::SCHEMAS).await,
        &[("KEEL_HTTP_HEADER_TIMEOUT", "1s"), ("KEEL_HTTP_IDLE_TIMEOUT", "2s"), ("KEEL_HTTP_MAX_CONNECTIONS", "1100")],
    )
    .await;
    let mut held = Vec::new();
    for i in 0..1000 {
        let mut sock = TcpStream::connect(s.addr).await.unwrap();
        if i % 2 == 1 {
            sock.write_all(PARTIAL_HEAD).await.unwrap();
        }
        held.push(sock);
    }
    for _ in 0..20 {
        held.push(TcpStream::connect(s.metrics_addr).await.unwrap());
    }
    let r = reqwest::get(s.url("/api/health")).await.unwrap();
    assert_eq!(r.status(), 200, "the canary is served while the sockets are held");
    let r = reqwest::get(s.metrics_url("/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    let closes = held.iter_mut().map(|sock| closed_within(sock, Duration::from_secs(60)));
    let closed = futures::future::join_all(closes).await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "{open} of {} held sockets were never closed by the server", closed.len());
}

/// At the cap, a new connection waits (in the listen backlog) until a held one closes, and the
/// server logs that the cap was reached.
#[tokio::test]
async fn at_the_connection_cap_new_connections_wait_for_a_slot_and_it_is_logged() {
    crate::logs::lines();
    let limits = HttpLimits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_millis(500),
        max_connections: 20,
    };
    let (addr, _, _, shutdown) = serve_probe(limits).await;
    // Twenty kept-alive connections, each proven accepted by a served request, fill the cap.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(FULL_REQUEST).await.unwrap();
        assert_eq!(read_response(&mut sock).await, 200);
        held.push(sock);
    }
    let mut canary = TcpStream::connect(addr).await.unwrap();
    canary.write_all(FULL_REQUEST).await.unwrap();
    let served = tokio::time::timeout(Duration::from_secs(60), read_response(&mut canary)).await;
    assert_eq!(served.ok(), Some(200), "the canary is served once an idle connection is closed");
    let closed = futures::future::join_all(held.iter_mut().map(|s| closed_within(s, Duration::from_secs(60)))).await;
    assert!(closed.iter().all(|c| *c), "idle connections are closed: {closed:?}");
    let port = format!(":{}", addr.port());
    let line = crate::logs::lines()
        .into_iter()
        .find(|v| {
            v["fields"]["message"]
                == "connection limit reached (KEEL_HTTP_MAX_CONNECTIONS); new connections wait until one closes"
                && v["fields"]["addr"].as_str().is_some_and(|a| a.ends_with(&port))
        })
        .expect("the cap is logged");
    assert_eq!(line["fields"]["max_connections"], 20, "{line}");
    shutdown.cancel();
}
