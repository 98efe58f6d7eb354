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
