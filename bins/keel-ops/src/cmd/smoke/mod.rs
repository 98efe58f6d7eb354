//! `keel-ops smoke --base-url URL`: semantic checks of a running deployment. A 2xx whose body
//! says something is wrong is a failure; every failed check is named; exit 1 on any failure.

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
sample_rate, admin_sample_rate), metrics (GET /metrics: valid Prometheus text with the
http_server_request_duration_seconds histogram), ratelimit_headers (the admin route without
credentials: 401 with RateLimit-Policy, RateLimit and X-RateLimit-* headers).
Exit status: 0 all passed, 1 a check failed, 2 bad command line.")]
pub struct SmokeArgs {
    /// The deployment's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
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

const CHECKS: [(&str, &str, Check); 5] = [
    ("health", "/api/health", checks::health),
    ("health_live", "/api/health/live", checks::live),
    ("telemetry_config", "/api/telemetry/config", checks::telemetry_config),
    ("metrics", "/metrics", checks::metrics),
    ("ratelimit_headers", "", checks::ratelimit_headers),
];

fn base(url: &str) -> Result<String, OpsError> {
    let u = url.trim().trim_end_matches('/');
    if u.starts_with("https://") {
        return Err(OpsError::usage(format!(
            "--base-url {u}: this keel-ops is built without TLS; smoke the deployment's plain-HTTP listener (e.g. http://127.0.0.1:8080) from inside its network"
        )));
    }
    let host = u.strip_prefix("http://").unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(OpsError::usage(format!("--base-url {url:?} is not a URL; use e.g. http://127.0.0.1:8080")));
    }
    Ok(u.to_owned())
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

pub(crate) async fn run(args: SmokeArgs) -> Result<u8, OpsError> {
    let base = base(&args.base_url)?;
    if !args.admin_path.starts_with('/') {
        return Err(OpsError::usage(format!("--admin-path {:?} must start with /", args.admin_path)));
    }
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        // A redirect (to a login page, say) is an answer to judge, not to follow.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| OpsError::failed(format!("cannot build the HTTP client: {e}")))?;
    let runs = CHECKS.iter().map(|(name, path, check)| {
        let path = if path.is_empty() { args.admin_path.as_str() } else { path };
        let url = format!("{base}{path}");
        let client = &client;
        async move {
            let outcome = match fetch(client, &url).await {
                Ok(a) => check(&a),
                Err(e) => Err(e),
            };
            (*name, url, outcome)
        }
    });
    let results = futures::future::join_all(runs).await;
    let failed: Vec<&str> = results.iter().filter(|(_, _, o)| o.is_err()).map(|(n, _, _)| *n).collect();
    if args.json {
        let list: Vec<_> = results
            .iter()
            .map(|(name, url, o)| match o {
                Ok(d) => json!({"check": name, "url": url, "ok": true, "detail": d}),
                Err(e) => json!({"check": name, "url": url, "ok": false, "detail": e}),
            })
            .collect();
        print_json(&json!({"base_url": base, "ok": failed.is_empty(), "failed": failed, "checks": list}));
    } else {
        let p = Paint::stdout();
        for (name, url, o) in &results {
            match o {
                Ok(d) => println!("{}  {name:<18} {d}", p.green("PASS")),
                Err(e) => println!("{}  {name:<18} {e}  [{url}]", p.red("FAIL")),
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
