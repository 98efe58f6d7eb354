//! Every log line of this test binary, captured as JSON by one global subscriber, for the tests
//! that check what the server logs. Installed by [`lines`] on first use (a thread-scoped
//! subscriber can miss events whose callsite another test thread registered first).

use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let sink = logs.clone();
        // sqlx's statement log too (debug), for the tests that compare the statements a
        // request ran; each line carries its spans, so a request's statements are found by id.
        let filter = tracing_subscriber::EnvFilter::new("info,sqlx::query=debug");
        let subscriber =
            tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(move || sink.clone()).finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this test binary");
        logs
    })
}

/// The SQL statements run while serving the request with this `x-request-id`, in order (the
/// text, not the bound values).
pub(crate) fn statements_of_request(request_id: &str) -> Vec<String> {
    lines()
        .into_iter()
        .filter(|v| v["target"] == "sqlx::query")
        .filter(|v| v["spans"].as_array().is_some_and(|spans| spans.iter().any(|s| s["request_id"] == request_id)))
        .map(|v| {
            let f = &v["fields"];
            let full = f["db.statement"].as_str().unwrap_or_default().trim();
            if full.is_empty() { f["summary"].as_str().unwrap_or_default() } else { full }.to_owned()
        })
        .collect()
}

/// Installs the capture (call before the code under test runs) and returns what it holds.
pub(crate) fn lines() -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(&captured().0.lock().unwrap()).into_owned();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}
