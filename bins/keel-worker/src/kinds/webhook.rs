//! `webhook.deliver`: an HTTP POST signed with `Keel-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">` and carrying `Keel-Delivery-Id: <job id>` (the same on every attempt, so a
//! receiver can drop the duplicates at-least-once delivery allows). 2xx completes, 408/429/5xx
//! and network errors retry, other answers (redirects included: none is followed, so a
//! redirect cannot lead to a refused destination) are permanent. Destinations are checked
//! by [`super::destination`]; a refused one is unprocessable.

use super::destination::{CheckedResolver, Destinations, Refused};
use hmac::{Hmac, Mac};
use keel_queue::JobError;
use serde::Deserialize;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// The per-delivery default (`KEEL_WEBHOOK_TIMEOUT`): the field reports' 30 s.
pub(crate) const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
pub const SIGNATURE_HEADER: &str = "Keel-Signature";
pub const DELIVERY_ID_HEADER: &str = "Keel-Delivery-Id";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Delivery {
    url: String,
    /// The JSON body to send, exactly as given.
    body: serde_json::Value,
}

/// `t=<unix seconds>,v1=<hex>`; the receiver recomputes the HMAC over `"<t>.<body>"`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Everything a delivery needs, built once per worker.
pub(crate) struct Webhooks {
    client: reqwest::Client,
    secret: Option<keel_config::Secret>,
    destinations: Arc<Destinations>,
    timeout: Duration,
}

impl Webhooks {
    pub(crate) fn new(
        secret: Option<keel_config::Secret>,
        destinations: Destinations,
        timeout: Duration,
    ) -> Result<Webhooks, String> {
        let destinations = Arc::new(destinations);
        // One endpoint's failure never blocks the others: each delivery is its own job, on its
        // own queue, bounded by the per-delivery timeout. No proxy: the checked address must be
        // the one connected to.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(destinations.clone())))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Webhooks { client, secret, destinations, timeout })
    }

    /// Delivers one job's payload; `id` is the job id, sent as `Keel-Delivery-Id`.
    pub(crate) async fn deliver(&self, id: &str, payload: serde_json::Value) -> Result<(), JobError> {
        let d: Delivery = serde_json::from_value(payload)
            .map_err(|e| JobError::unprocessable(format!("webhook.deliver payload: {e}")))?;
        let url = reqwest::Url::parse(&d.url)
            .map_err(|e| JobError::unprocessable(format!("webhook.deliver url is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(JobError::unprocessable("webhook.deliver url must be http:// or https://"));
        }
        let host = url.host_str().unwrap_or("").to_owned();
        // An IP literal is connected to as written, without a resolver: check it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            self.destinations.check(&host, ip).map_err(|r| refused(&r))?;
        }
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| JobError::permanent("no signing secret: set KEEL_WEBHOOK_SECRET or INTERNAL_API_SECRET"))?;
        let body = serde_json::to_vec(&d.body).map_err(|e| JobError::unprocessable(e.to_string()))?;
        let t = chrono::Utc::now().timestamp();
        let res = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature(secret.expose().as_bytes(), t, &body))
            .header(DELIVERY_ID_HEADER, id)
            .body(body)
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {
                tracing::info!(event = "webhook_delivered", host, status = r.status().as_u16(), "webhook delivered");
                Ok(())
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let msg = format!("endpoint {host} answered {status}");
                if status == 429 || status >= 500 || status == 408 {
                    let after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let e = JobError::retryable(msg);
                    Err(match after {
                        Some(s) => e.retry_after(Duration::from_secs(s.min(3600))),
                        None => e,
                    })
                } else if r.status().is_redirection() {
                    Err(JobError::permanent(format!("{msg}; redirects are not followed, register the final URL")))
                } else {
                    Err(JobError::permanent(msg))
                }
            }
            Err(e) => match refusal_in(&e) {
                Some(r) => Err(refused(r)),
                None if e.is_timeout() => {
                    Err(JobError::retryable(format!("delivery to {host} failed: no answer within {:?}", self.timeout)))
                }
                None => Err(JobError::retryable(format!("delivery to {host} failed: {e}"))),
            },
        }
    }
}

fn refused(r: &Refused) -> JobError {
    JobError::unprocessable(r.to_string())
}

/// The resolver's refusal, somewhere in the client error's chain of causes.
fn refusal_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(r);
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    //! Deliveries to a real local endpoint: a TCP listener that reads one request and answers
    //! with a canned response, so each outcome of the status mapping is exercised end to end.
    //! The endpoint is on loopback, so these webhooks allow 127.0.0.0/8 as development does.

    use super::*;
    use crate::kinds::destination::parse_allowed;
    use keel_queue::JobErrorKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const ID: &str = "0197a5c8-0000-7000-8000-0000000000aa";

    /// Reads one request (headers and the announced body) from `s`.
    async fn read_request(s: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        got
    }

    /// Accepts one connection, returns what the client sent (headers and body) after answering
    /// `response`.
    async fn endpoint(response: &'static str) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let got = read_request(&mut s).await;
            s.write_all(response.as_bytes()).await.unwrap();
            got
        });
        (format!("http://{addr}/hook"), task)
    }

    fn secret() -> Option<keel_config::Secret> {
        Some(keel_config::Secret::new("whsec-test".to_owned()))
    }

    /// Webhooks allowing `allowed` (the `KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS` syntax).
    fn webhooks_allowing(allowed: &str, timeout: Duration) -> Webhooks {
        Webhooks::new(secret(), Destinations::new(parse_allowed(allowed).unwrap()), timeout).unwrap()
    }

    fn webhooks() -> Webhooks {
        webhooks_allowing("127.0.0.0/8", Duration::from_secs(10))
    }

    fn head_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[tokio::test]
    async fn a_2xx_delivery_is_signed_over_the_exact_body_and_names_its_delivery() {
        let (url, server) = endpoint("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
        let body = serde_json::json!({"event": "invoice.paid", "amount_minor": 1250});
        webhooks().deliver(ID, serde_json::json!({"url": url, "body": body})).await.unwrap();
        let raw = String::from_utf8(server.await.unwrap()).unwrap();
        let (head, sent) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
        let sig = head_value(head, SIGNATURE_HEADER).unwrap_or_else(|| panic!("no signature header in {head}"));
        let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        assert_eq!(sig, signature(b"whsec-test", t, sent.as_bytes()), "the receiver can verify it");
        assert_eq!(serde_json::from_str::<serde_json::Value>(sent).unwrap(), body);
        assert_eq!(head_value(head, "Keel-Delivery-Id"), Some(ID), "the job id, the same on every attempt");
    }

    #[tokio::test]
    async fn busy_endpoints_are_retried_after_their_retry_after_and_4xx_is_permanent() {
        let (url, _s) =
            endpoint("HTTP/1.1 503 Service Unavailable\r\nretry-after: 120\r\ncontent-length: 0\r\n\r\n").await;
        let e = webhooks().deliver(ID, serde_json::json!({"url": url, "body": {}})).await.unwrap_err();
        assert_eq!(e.kind, JobErrorKind::Retryable, "{}", e.message);
        assert_eq!(e.retry_after, Some(Duration::from_secs(120)));
        let (url, _s) = endpoint("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
        let e = webhooks().deliver(ID, serde_json::json!({"url": url, "body": {}})).await.unwrap_err();
        assert_eq!(e.kind, JobErrorKind::Permanent, "{}", e.message);
        assert!(e.message.contains("404"), "{}", e.message);
    }

    #[tokio::test]
    async fn https_endpoints_get_a_tls_handshake() {
        // A plain listener sees what the client opens with: a TLS record (0x16, version 3.x)
        // carrying a ClientHello, not an HTTP request line and not a refusal to try.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut head = [0u8; 6];
            s.read_exact(&mut head).await.unwrap();
            head
        });
        let url = format!("https://localhost:{}/hook", addr.port());
        let e = webhooks().deliver(ID, serde_json::json!({"url": url, "body": {}})).await.unwrap_err();
        assert_eq!(e.kind, JobErrorKind::Retryable, "a failed handshake is a network error: {}", e.message);
        // Bounded: a client that never connected (no TLS support) fails here instead of hanging.
        let head = tokio::time::timeout(Duration::from_secs(10), seen)
            .await
            .expect("the client never opened a connection to the https endpoint")
            .unwrap();
        assert_eq!(head[0], 0x16, "TLS handshake record");
        assert_eq!(head[1], 0x03, "TLS major version");
        assert_eq!(head[5], 0x01, "ClientHello");
    }

    #[tokio::test]
    async fn bad_payloads_are_unprocessable_and_nothing_is_sent() {
        for payload in [
            serde_json::json!({"url": "ftp://example.com/x", "body": {}}),
            serde_json::json!({"url": "not a url", "body": {}}),
            serde_json::json!({"url": "http://127.0.0.1:1/x"}),
            serde_json::json!({"url": "http://127.0.0.1:1/x", "body": {}, "extra": 1}),
        ] {
            let e = webhooks().deliver(ID, payload.clone()).await.unwrap_err();
            assert_eq!(e.kind, JobErrorKind::Unprocessable, "{payload}: {}", e.message);
        }
    }

    /// Whether a connection is waiting on `l` now (the client would have connected before
    /// returning, so a refused delivery leaves nothing in the backlog).
    async fn connected(l: &TcpListener) -> bool {
        tokio::time::timeout(Duration::ZERO, l.accept()).await.is_ok()
    }

    #[tokio::test]
    async fn private_destinations_are_refused_by_literal_and_by_name_before_connecting() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let strict = webhooks_allowing("", Duration::from_secs(10));
        // By literal, and by a name that resolves there (the resolver's check, as for a name
        // rebound to a private address after it was registered).
        for url in [format!("http://127.0.0.1:{port}/hook"), format!("http://localhost:{port}/hook")] {
            let e = strict.deliver(ID, serde_json::json!({"url": url, "body": {}})).await.unwrap_err();
            assert_eq!(e.kind, JobErrorKind::Unprocessable, "{url}: {}", e.message);
            assert!(
                e.message.contains("loopback") && e.message.contains("KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS"),
                "{}",
                e.message
            );
            assert!(!connected(&l).await, "{url}: nothing reached the endpoint");
        }
        for url in ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/", "http://[fd00::1]:8080/"] {
            let e = strict.deliver(ID, serde_json::json!({"url": url, "body": {}})).await.unwrap_err();
            assert_eq!(e.kind, JobErrorKind::Unprocessable, "{url}: {}", e.message);
        }
    }

    #[tokio::test]
    async fn the_allow_list_lets_a_private_destination_through() {
        let (url, server) = endpoint("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let by_name = url.replace("127.0.0.1", "localhost");
        // Only 127.0.0.1 itself, as KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS=127.0.0.1 would allow.
        webhooks_allowing("127.0.0.1", Duration::from_secs(10))
            .deliver(ID, serde_json::json!({"url": by_name, "body": {}}))
            .await
            .unwrap();
        assert!(server.await.unwrap().starts_with(b"POST /hook"));
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (url, server) = endpoint(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        // Even an allow-list that would admit the target does not make the client follow.
        let e = webhooks_allowing("127.0.0.0/8,169.254.0.0/16", Duration::from_secs(10))
            .deliver(ID, serde_json::json!({"url": url, "body": {}}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, JobErrorKind::Permanent, "{}", e.message);
        assert!(e.message.contains("307") && e.message.contains("redirects are not followed"), "{}", e.message);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_endpoint_that_never_answers_times_out_and_is_retried() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        // Reads the request, then holds the connection open without a word until the client
        // leaves (read returns 0 once the client gives up and closes).
        let silent = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            read_request(&mut s).await;
            let mut buf = [0u8; 64];
            while s.read(&mut buf).await.unwrap_or(0) > 0 {}
        });
        let e = webhooks_allowing("127.0.0.1", Duration::from_millis(300))
            .deliver(ID, serde_json::json!({"url": url, "body": {}}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, JobErrorKind::Retryable, "{}", e.message);
        assert!(e.message.contains("no answer within 300ms"), "{}", e.message);
        silent.await.unwrap();
    }
}
