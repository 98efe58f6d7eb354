//! The OTLP exporter's HTTP client: the workspace's reqwest (rustls, already in the tree), not
//! the reqwest major opentelemetry-otlp would bring along.
//!
//! The SDK's batch processor exports from its own thread with a plain executor, where no tokio
//! reactor is running; so each request runs as a task on the runtime that set tracing up, and
//! the export thread only waits for its result.

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError};
use std::time::Duration;
use tokio::runtime::Handle;

/// The exporter's responses are a few bytes (an `ExportTraceServiceResponse`); a collector
/// answering more is misbehaving and is not read into memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct TokioReqwest {
    client: reqwest::Client,
    runtime: Handle,
}

impl TokioReqwest {
    pub(crate) fn new(runtime: Handle, timeout: Duration) -> Result<Self, reqwest::Error> {
        // No redirects: an exporter following one would send spans somewhere not configured.
        let client = reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { client, runtime })
    }
}

#[async_trait]
impl HttpClient for TokioReqwest {
    async fn send_bytes(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let mut res = client.execute(request).await?;
            let mut out = http::Response::builder().status(res.status());
            if let Some(h) = out.headers_mut() {
                *h = std::mem::take(res.headers_mut());
            }
            let mut body = Vec::new();
            while let Some(chunk) = res.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(format!("the collector's response is over {MAX_RESPONSE_BYTES} bytes").into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, HttpError>(out.body(Bytes::from(body))?)
        });
        task.await?
    }
}
