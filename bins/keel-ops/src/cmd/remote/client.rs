//! The HTTP side of remote mode: a keel-api base URL and the operator token from `KEEL_TOKEN`,
//! sent as a bearer on every request to `/api/ops/*` and never printed, logged or put in an
//! error. Answers become the exit statuses and messages of local mode: 401 and 403 say what to
//! fix about the token, an unreachable server names the URL, a problem+json answer its detail.

use crate::output::OpsError;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::time::Duration;

/// A whole request, connect to last byte: the operator API answers within keel-api's own time
/// budget, so this only bounds a server that stopped answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The variable holding the operator token.
pub(crate) const TOKEN_VAR: &str = "KEEL_TOKEN";

/// A keel-api to send operator requests to.
pub(crate) struct Remote {
    base: Url,
    token: String,
    client: reqwest::Client,
}

// Never derive Debug: the token must not reach a debug print.
impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("base", &self.base.as_str()).field("token", &"[redacted]").finish()
    }
}

impl Remote {
    /// `url` from `--remote`/`KEEL_REMOTE_URL`, `token` from `KEEL_TOKEN`.
    pub(crate) fn new(url: &str, token: Option<String>) -> Result<Remote, OpsError> {
        let base = Url::parse(url.trim()).map_err(|e| {
            OpsError::usage(format!(
                "--remote (KEEL_REMOTE_URL) {url:?} is not a URL ({e}); write https://keel.example.com"
            ))
        })?;
        let loopback = base.host_str().is_some_and(|h| {
            h.eq_ignore_ascii_case("localhost")
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match base.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(OpsError::usage(format!(
                    "--remote {}: plain http would send the operator token in clear; use https:// (http is accepted only for a loopback address)",
                    base.as_str()
                )))
            }
            other => {
                return Err(OpsError::usage(format!("--remote: scheme {other:?} is not http or https")));
            }
        }
        if base.host().is_none() || !base.username().is_empty() || base.password().is_some() {
            return Err(OpsError::usage(
                "--remote must be a plain base URL such as https://keel.example.com (no credentials in it; the token goes in KEEL_TOKEN)",
            ));
        }
        let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).ok_or_else(|| {
            OpsError::usage(format!(
                "remote mode needs an operator token in {TOKEN_VAR}: `keel-ops token issue --user EMAIL --operator` (run where the database is), then export {TOKEN_VAR}=…"
            ))
        })?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // A redirect could carry the bearer elsewhere; the operator API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OpsError::failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Remote { base, token, client })
    }

    fn url(&self, path: &str) -> Result<Url, OpsError> {
        let root = self.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{root}{path}")).map_err(|e| OpsError::usage(format!("--remote {root}: {e}")))
    }

    /// `GET path?query` → the JSON document.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, OpsError> {
        let mut url = self.url(path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        self.send(self.client.get(url.clone()), &url).await
    }

    /// `POST path` with a JSON body → the JSON document.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value, OpsError> {
        let url = self.url(path)?;
        self.send(self.client.post(url.clone()).json(body), &url).await
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &Url) -> Result<Value, OpsError> {
        let shown = shown(url);
        let r = req
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(&shown, &e))?;
        let status = r.status();
        let retry_after =
            r.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let location = r.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = r.text().await.map_err(|e| unreachable(&shown, &e))?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return body.ok_or_else(|| {
                OpsError::failed(format!("{shown} answered {status} without a JSON document; is --remote a keel-api?"))
            });
        }
        Err(refusal(&shown, status, body.as_ref(), retry_after, location))
    }
}

/// A URL for messages: the path and query only matter, and none of it is secret.
fn shown(url: &Url) -> String {
    url.as_str().to_owned()
}

fn unreachable(shown: &str, e: &reqwest::Error) -> OpsError {
    // The error's own chain says "connection refused", a DNS failure, a TLS failure…
    let mut cause = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let what = if e.is_timeout() {
        format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
    } else if cause.is_empty() {
        e.to_string()
    } else {
        cause
    };
    OpsError::unavailable(format!(
        "cannot reach keel-api at {shown}: {what}. Check --remote (KEEL_REMOTE_URL) and that keel-api is running there"
    ))
}

/// The message and exit status for a refusal, from the problem+json `detail` when there is one.
fn refusal(
    shown: &str,
    status: StatusCode,
    body: Option<&Value>,
    retry_after: Option<String>,
    location: Option<String>,
) -> OpsError {
    let detail = body
        .and_then(|b| b.get("detail").or_else(|| b.get("title")))
        .and_then(Value::as_str)
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    match status {
        StatusCode::UNAUTHORIZED => OpsError::failed(format!(
            "{shown} refused the token in {TOKEN_VAR} (401{detail}): it is unknown, revoked or expired. Issue a new one with `keel-ops token issue --user EMAIL --operator`"
        )),
        StatusCode::FORBIDDEN => OpsError::failed(format!(
            "{shown} refused the request (403{detail}): the token in {TOKEN_VAR} carries no operator grant. Grant the user with `keel-ops operator grant EMAIL`, then issue a token with `keel-ops token issue --user EMAIL --operator`"
        )),
        StatusCode::NOT_FOUND if body.is_none() => OpsError::failed(format!(
            "{shown} answered 404: this keel-api has no operator API there (an older release, or --remote is not a keel-api)"
        )),
        s if s.is_redirection() => OpsError::failed(format!(
            "{shown} answered {s} redirecting to {}: put the final URL in --remote (redirects are not followed, so the token goes nowhere else)",
            location.unwrap_or_default()
        )),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => OpsError::unavailable(format!(
            "{shown} answered {status}{detail}{}",
            retry_after.map(|s| format!(" (retry after {s}s)")).unwrap_or_default()
        )),
        s if s.is_client_error() => OpsError::failed(format!("{shown} answered {s}{detail}")),
        s => OpsError::unavailable(format!("{shown} answered {s}{detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str, token: Option<&str>) -> OpsError {
        Remote::new(url, token.map(str::to_owned)).unwrap_err()
    }

    #[test]
    fn the_url_and_token_are_checked_before_anything_is_sent() {
        assert!(Remote::new("https://keel.example.com", Some("t".into())).is_ok());
        assert!(Remote::new("http://127.0.0.1:8080/", Some("t".into())).is_ok());
        assert!(Remote::new("http://[::1]:8080", Some("t".into())).is_ok());
        assert!(Remote::new("http://localhost:8080", Some("t".into())).is_ok());
        let e = refused("http://10.0.0.5:8080", Some("t"));
        assert!(e.message.contains("https://") && e.code == crate::exit::USAGE, "{e}");
        assert!(refused("ftp://keel.example.com", Some("t")).message.contains("\"ftp\""));
        assert!(refused("https://user:pw@keel.example.com", Some("t")).message.contains("no credentials"));
        assert!(refused("keel.example.com", Some("t")).message.contains("not a URL"));
        for missing in [None, Some(""), Some("  ")] {
            let e = refused("https://keel.example.com", missing);
            assert!(e.message.contains("KEEL_TOKEN") && e.message.contains("--operator"), "{e}");
        }
        let r = Remote::new("https://keel.example.com", Some("s3cret-token".into())).unwrap();
        assert!(!format!("{r:?}").contains("s3cret"), "Debug never shows the token");
    }

    #[test]
    fn refusals_say_what_to_fix() {
        let u = "https://k.example/api/ops/queue/stats";
        let e = refusal(u, StatusCode::UNAUTHORIZED, None, None, None);
        assert!(e.message.contains("KEEL_TOKEN") && e.message.contains("401"), "{e}");
        let e = refusal(u, StatusCode::FORBIDDEN, None, None, None);
        assert!(e.message.contains("operator grant") && e.message.contains("--operator"), "{e}");
        let body = serde_json::json!({"title": "Too Many Requests", "detail": "operator_console quota"});
        let e = refusal(u, StatusCode::TOO_MANY_REQUESTS, Some(&body), Some("3".into()), None);
        assert!(e.message.contains("operator_console quota") && e.message.contains("retry after 3s"), "{e}");
        assert_eq!(e.code, crate::exit::UNAVAILABLE);
        let e = refusal(u, StatusCode::FOUND, None, None, Some("https://other.example/".into()));
        assert!(e.message.contains("https://other.example/") && e.message.contains("not followed"), "{e}");
        let e = refusal(u, StatusCode::NOT_FOUND, Some(&serde_json::json!({"detail": "no job x"})), None, None);
        assert!(e.message.ends_with("no job x"), "{e}");
    }
}
