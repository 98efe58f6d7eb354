//! `webhook.deliver`: an HTTP POST signed with `Keel-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, 30 s per delivery; 2xx completes, 429/5xx and network errors retry, other
//! 4xx are permanent.

use hmac::{Hmac, Mac};
use keel_queue::JobError;
use serde::Deserialize;
use sha2::Sha256;
use std::time::Duration;

pub(crate) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
pub const SIGNATURE_HEADER: &str = "Keel-Signature";

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

pub(crate) async fn deliver(
    client: &reqwest::Client,
    secret: Option<&keel_config::Secret>,
    payload: serde_json::Value,
) -> Result<(), JobError> {
    let d: Delivery = serde_json::from_value(payload)
        .map_err(|e| JobError::unprocessable(format!("webhook.deliver payload: {e}")))?;
    if !(d.url.starts_with("http://") || d.url.starts_with("https://")) {
        return Err(JobError::unprocessable("webhook.deliver url must be http:// or https://"));
    }
    let secret = secret
        .ok_or_else(|| JobError::permanent("no signing secret: set KEEL_WEBHOOK_SECRET or INTERNAL_API_SECRET"))?;
    let body = serde_json::to_vec(&d.body).map_err(|e| JobError::unprocessable(e.to_string()))?;
    let t = chrono::Utc::now().timestamp();
    let res = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature(secret.expose().as_bytes(), t, &body))
        .body(body)
        .send()
        .await;
    let host = d.url.split('/').nth(2).unwrap_or("");
    match res {
        Ok(r) if r.status().is_success() => {
            tracing::info!(event = "webhook_delivered", host, status = r.status().as_u16(), "webhook delivered");
            Ok(())
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let msg = format!("endpoint {host} answered {status}");
            if status == 429 || status >= 500 || status == 408 {
                let after =
                    r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                let e = JobError::retryable(msg);
                Err(match after {
                    Some(s) => e.retry_after(Duration::from_secs(s.min(3600))),
                    None => e,
                })
            } else {
                Err(JobError::permanent(msg))
            }
        }
        Err(e) => Err(JobError::retryable(format!(
            "delivery to {host} failed: {}",
            if e.is_timeout() { "timed out after 30 s".to_owned() } else { e.to_string() }
        ))),
    }
}

#[cfg(test)]
mod tests {
    //! Deliveries to a real local endpoint: a TCP listener that reads one request and answers
    //! with a canned response, so each outcome of the status mapping is exercised end to end.

    use super::*;
    use keel_queue::JobErrorKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Accepts one connection, returns what the client sent (headers and body) after answering
    /// `response`.
    async fn endpoint(response: &'static str) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the headers and the announced body are in.
            loop {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
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
            s.write_all(response.as_bytes()).await.unwrap();
            got
        });
        (format!("http://{addr}/hook"), task)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
    }

    fn secret() -> keel_config::Secret {
        keel_config::Secret::new("whsec-test".to_owned())
    }

    #[tokio::test]
    async fn a_2xx_delivery_is_signed_over_the_exact_body() {
        let (url, server) = endpoint("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
        let body = serde_json::json!({"event": "invoice.paid", "amount_minor": 1250});
        deliver(&client(), Some(&secret()), serde_json::json!({"url": url, "body": body})).await.unwrap();
        let raw = String::from_utf8(server.await.unwrap()).unwrap();
        let (head, sent) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
        let sig = head
            .lines()
            .find_map(|l| l.strip_prefix("keel-signature: ").or_else(|| l.strip_prefix("Keel-Signature: ")))
            .unwrap_or_else(|| panic!("no signature header in {head}"));
        let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        assert_eq!(sig, signature(b"whsec-test", t, sent.as_bytes()), "the receiver can verify it");
        assert_eq!(serde_json::from_str::<serde_json::Value>(sent).unwrap(), body);
    }

    #[tokio::test]
    async fn busy_endpoints_are_retried_after_their_retry_after_and_4xx_is_permanent() {
        let (url, _s) =
            endpoint("HTTP/1.1 503 Service Unavailable\r\nretry-after: 120\r\ncontent-length: 0\r\n\r\n").await;
        let e = deliver(&client(), Some(&secret()), serde_json::json!({"url": url, "body": {}})).await.unwrap_err();
        assert_eq!(e.kind, JobErrorKind::Retryable, "{}", e.message);
        assert_eq!(e.retry_after, Some(Duration::from_secs(120)));
        let (url, _s) = endpoint("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
        let e = deliver(&client(), Some(&secret()), serde_json::json!({"url": url, "body": {}})).await.unwrap_err();
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
        let e = deliver(&client(), Some(&secret()), serde_json::json!({"url": url, "body": {}})).await.unwrap_err();
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
            serde_json::json!({"url": "http://127.0.0.1:1/x"}),
            serde_json::json!({"url": "http://127.0.0.1:1/x", "body": {}, "extra": 1}),
        ] {
            let e = deliver(&client(), Some(&secret()), payload.clone()).await.unwrap_err();
            assert_eq!(e.kind, JobErrorKind::Unprocessable, "{payload}: {}", e.message);
        }
    }
}
