//! `keel-ops smoke --base-url URL [--metrics-url URL]`: semantic checks of a running
//! deployment. A 2xx whose body says something is wrong is a failure; every failed check is
//! named; exit 1 on any failure. keel-api serves metrics on their own listener
//! (`KEEL_METRICS_BIND`), so the scrape is checked there and the public port must not serve it.

mod checks;
mod prom;
#[cfg(test)]
mod tests;

use crate::cmd::backup::term::Paint;
use crate::exit;
use crate::output::{print_json, OpsError};
use checks::{Answer, Outcome};
use clap::Args;
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Args)]
#[command(after_help = "\
Checks: health (GET /api/health: 200 and \"ok\" agree, every service ok, no-store),
health_live (GET /api/health/live), telemetry_config (GET /api/telemetry/config: enabled,
sample_rate, admin_sample_rate), metrics (GET <metrics-url>: valid Prometheus text with the
http_server_request_duration_seconds histogram; skipped without --metrics-url),
metrics_not_public (GET <base-url>/metrics: refused, 404, 401 or 403), ratelimit_headers (the
admin route without credentials: 401 with RateLimit-Policy, RateLimit and X-RateLimit-*).
Exit status: 0 all passed (skipped checks do not fail), 1 a check failed, 2 bad command line.")]
pub struct SmokeArgs {
    /// The deployment's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// The metrics listener (keel-api's KEEL_METRICS_BIND), e.g. http://127.0.0.1:9090; the
    /// path defaults to /metrics. Without it the metrics check is skipped.
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,
    /// An admin route that needs credentials, for the rate-limit header check.
    #[arg(long, value_name = "PATH", default_value = "/api/admin/invoices")]
    pub admin_path: String,
    /// Per-request timeout (e.g. 5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    keel_config::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a duration; use e.g. 5s or 500ms"))
}

type Check = fn(&Answer) -> Outcome;

/// Where a check's request goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A path on `--base-url`.
    Public(&'static str),
    /// `--admin-path` on `--base-url`.
    Admin,
    /// `--metrics-url`; the check is skipped without it.
    Metrics,
}

static CHECKS: [(&str, Target, Check); 6] = [
    ("health", Target::Public("/api/health"), checks::health),
    ("health_live", Target::Public("/api/health/live"), checks::live),
    ("telemetry_config", Target::Public("/api/telemetry/config"), checks::telemetry_config),
    ("metrics", Target::Metrics, checks::metrics),
    ("metrics_not_public", Target::Public("/metrics"), checks::metrics_not_public),
    ("ratelimit_headers", Target::Admin, checks::ratelimit_headers),
];

fn base(flag: &str, url: &str, example: &str) -> Result<String, OpsError> {
    let u = url.trim().trim_end_matches('/');
    if u.starts_with("https://") {
        return Err(OpsError::usage(format!(
            "{flag} {u}: this keel-ops is built without TLS; smoke the deployment's plain-HTTP listener (e.g. {example}) from inside its network"
        )));
    }
    let host = u.strip_prefix("http://").unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(OpsError::usage(format!("{flag} {url:?} is not a URL; use e.g. {example}")));
    }
    Ok(u.to_owned())
}

/// `--metrics-url` as given, with `/metrics` when it names only the listener.
fn metrics_url(raw: &str) -> Result<String, OpsError> {
    let u = base("--metrics-url", raw, "http://127.0.0.1:9090")?;
    let host_and_path = u.strip_prefix("http://").unwrap_or_default();
    Ok(if host_and_path.contains('/') { u } else { format!("{u}/metrics") })
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Answer, String> {
    let res = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            "no answer within the timeout".to_owned()
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            format!("request failed: {e}")
        }
    })?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.text().await.map_err(|e| format!("HTTP {status}, but reading the body failed: {e}"))?;
    Ok(Answer { status, headers, body })
}

/// One check's result; a skipped check does not fail the run.
enum Run {
    Passed(String),
    Skipped(String),
    Failed(String),
}

pub(crate) async fn run(args: SmokeArgs) -> Result<u8, OpsError> {
    let base = base("--base-url", &args.base_url, "http://127.0.0.1:8080")?;
    let metrics = args.metrics_url.as_deref().map(metrics_url).transpose()?;
    if !args.admin_path.starts_with('/') {
        return Err(OpsError::usage(format!("--admin-path {:?} must start with /", args.admin_path)));
    }
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        // A redirect (to a login page, say) is an answer to judge, not to follow.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| OpsError::failed(format!("cannot build the HTTP client: {e}")))?;
    let run_one = |(name, target, check): &'static (&'static str, Target, Check)| {
        let url = match target {
            Target::Public(path) => Some(format!("{base}{path}")),
            Target::Admin => Some(format!("{base}{}", args.admin_path)),
            Target::Metrics => metrics.clone(),
        };
        let client = &client;
        async move {
            let outcome = match &url {
                None => Run::Skipped(
                    "skipped: pass --metrics-url (keel-api serves /metrics on KEEL_METRICS_BIND, default 127.0.0.1:9090)"
                        .to_owned(),
                ),
                Some(u) => match fetch(client, u).await.and_then(|a| check(&a)) {
                    Ok(d) => Run::Passed(d),
                    Err(e) => Run::Failed(e),
                },
            };
            (*name, url, outcome)
        }
    };
    // The metrics scrape goes after the other checks have had their answers: the request
    // histogram has a series only once a request has been recorded, and on a fresh server the
    // smoke's own requests are the first. Run side by side, a scrape could beat them all.
    let is_metrics = |c: &&(&str, Target, Check)| matches!(c.1, Target::Metrics);
    let mut results = futures::future::join_all(CHECKS.iter().filter(|c| !is_metrics(c)).map(run_one)).await;
    results.extend(futures::future::join_all(CHECKS.iter().filter(is_metrics).map(run_one)).await);
    let order = |name: &str| CHECKS.iter().position(|c| c.0 == name);
    results.sort_by_key(|(name, _, _)| order(name));
    let failed: Vec<&str> =
        results.iter().filter(|(_, _, o)| matches!(o, Run::Failed(_))).map(|(n, _, _)| *n).collect();
    if args.json {
        let list: Vec<_> = results
            .iter()
            .map(|(name, url, o)| match o {
                Run::Passed(d) => json!({"check": name, "url": url, "ok": true, "detail": d}),
                Run::Skipped(d) => json!({"check": name, "url": url, "ok": true, "skipped": true, "detail": d}),
                Run::Failed(e) => json!({"check": name, "url": url, "ok": false, "detail": e}),
            })
            .collect();
        print_json(
            &json!({"base_url": base, "metrics_url": metrics, "ok": failed.is_empty(), "failed": failed, "checks": list}),
        );
    } else {
        let p = Paint::stdout();
        for (name, url, o) in &results {
            match o {
                Run::Passed(d) => println!("{}  {name:<18} {d}", p.green("PASS")),
                Run::Skipped(d) => println!("SKIP  {name:<18} {d}"),
                Run::Failed(e) => println!("{}  {name:<18} {e}  [{}]", p.red("FAIL"), url.as_deref().unwrap_or("")),
            }
        }
        if failed.is_empty() {
            println!("smoke: all {} checks passed against {base}", results.len());
        } else {
            println!(
                "smoke: {} of {} checks failed against {base}: {}",
                failed.len(),
                results.len(),
                failed.join(", ")
            );
        }
    }
    Ok(if failed.is_empty() { exit::OK } else { exit::FAILED })
}
