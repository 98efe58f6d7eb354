//! `cargo xtask schemathesis`: the real keel-api on SQLite, fuzzed from its own
//! `/api/openapi.json` by schemathesis with every rate limit raised: with an owner's bearer
//! token, again with the seeded org/invoice/currency pinned, the operator API with the owner's
//! operator-scoped token, and anonymously. Any 5xx, any
//! answer that does not match the document ([`CHECKS`]: an undocumented status, content type
//! or required header missing, a body off its schema), and any operation schemathesis cannot
//! test (a schema error), fails.

use crate::run::cargo;
use anyhow::{bail, Context};
use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Test cases per operation and phase: enough to reach the error paths, bounded so the three
/// runs take about a minute and a half on a 2-core machine.
const MAX_EXAMPLES: &str = "200";
/// Every rate-limit policy raised by its override, so the fuzzer meets handlers, not 429s.
const LIMIT_OVERRIDES: &[&str] = &[
    "KEEL_RATE_LIMIT_ADMIN_API",
    "KEEL_RATE_LIMIT_PUBLIC_INGRESS",
    "KEEL_RATE_LIMIT_TELEMETRY_INGEST",
    "KEEL_RATE_LIMIT_PASSWORD_RECOVERY",
    "KEEL_RATE_LIMIT_OPERATOR_CONSOLE",
];
const RAISED_LIMIT: &str = "100000/1m,burst=100000";
/// What each answer is checked for: no 5xx, and conformance to the derived document (status
/// code documented, content type documented, documented required headers present, body valid
/// against the status's schema). Not `all`: its data-acceptance checks judge the API by the
/// schema alone, and a schema cannot say "a currency Keel knows" or "an invoice of your org",
/// so they would fail on correct 404/422 answers.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance";
const LOG_TAIL_LINES: usize = 80;

pub(crate) fn schemathesis() -> anyhow::Result<()> {
    eprintln!("\n== schemathesis against keel-api (no 5xx, every answer as documented)");
    let python = crate::tools::schemathesis()?;
    let python = python.to_string_lossy().into_owned();
    let (api, ops) = build_binaries()?;
    let dir = std::env::temp_dir().join(format!("keel-schemathesis-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = format!("sqlite://{}", dir.join("keel.db").display());

    let (org, token, operator) = seed(&ops, &db)?;
    let mut server = Server::start(&api, &db, &dir)?;
    let invoice = seed_invoice(&server.addr, &token)?;
    // Random ids and currency codes stop nearly every admin request at 403/404/422 before the
    // handler's real work; pinning the seeded org and invoice and a currency the money crate
    // knows takes the fuzzer into creates, lookups and payments. Reports are pinned to a range
    // that holds the seed (within KEEL_REPORT_MAX_DAYS, raised for this) and the dashboard to
    // this month, so their 200 answers, the forecast included, are checked against their
    // schemas too. Run 1 keeps the random values.
    let pinned = dir.join("pinned.toml");
    let (year, month) = current_month();
    let config = format!(
        "[parameters]\n\"path.id\" = \"{invoice}\"\n\"header.X-Org-Id\" = \"{org}\"\n\"body.currency\" = \"USD\"\n\"body.invoices[*].currency\" = \"USD\"\n\"query.from\" = \"{}-01-01\"\n\"query.to\" = \"{}-12-31\"\n\"query.month\" = \"{year:04}-{month:02}\"\n",
        year - 4,
        year + 4,
    );
    fs::write(&pinned, config).context("cannot write pinned.toml")?;
    let auth = format!("Authorization: Bearer {token}");
    let operator_auth = format!("Authorization: Bearer {operator}");
    let runs = [
        Run { name: "authenticated (owner token)", header: Some(&auth), config: None, only_paths: None },
        Run {
            name: "authenticated, seeded org, invoice and currency",
            header: Some(&auth),
            config: Some(&pinned),
            only_paths: Some("^/api/admin/"),
        },
        // The owner's org token meets 403 on /api/ops/*; this one reaches the operator API's
        // handlers, so their 200 answers are checked against their schemas too.
        Run {
            name: "operator (operator-scoped token), operator API",
            header: Some(&operator_auth),
            config: None,
            only_paths: Some("^/api/ops/"),
        },
        Run { name: "anonymous", header: None, config: None, only_paths: None },
    ];
    let schema = format!("http://{}/api/openapi.json", server.addr);
    let mut failed = Vec::new();
    for run in &runs {
        let ok = run.execute(&python, &schema, &dir)?;
        if !server.alive() {
            server.print_tail();
            bail!("keel-api exited during the {} run (log tail above; files kept in {})", run.name, dir.display());
        }
        if !ok {
            failed.push(run.name);
        }
    }
    let errors = server.error_lines();
    server.stop();
    if !failed.is_empty() {
        server.print_tail();
        bail!(
            "schemathesis reported failures or errors in: {} (its report is above, keel-api's log tail after it; files kept in {})",
            failed.join("; "),
            dir.display()
        );
    }
    if errors > 0 {
        eprintln!(
            "schemathesis: keel-api logged {errors} ERROR line(s) without answering 5xx (log kept in {})",
            dir.display()
        );
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    eprintln!("schemathesis: no 5xx and no answer off the document in any run");
    Ok(())
}

/// The UTC (year, month) now, from the system clock (civil-from-days, so xtask needs no date
/// crate).
fn current_month() -> (i64, u32) {
    month_of(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// The UTC (year, month) of a unix time in seconds.
fn month_of(secs: u64) -> (i64, u32) {
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Builds keel-api and keel-ops (debug; a no-op after `cargo test`) and returns their paths as
/// cargo reports them, so `CARGO_TARGET_DIR` and `build.target-dir` are honoured.
pub(crate) fn build_binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut c = cargo();
    c.args(["build", "--locked", "-p", "keel-api", "-p", "keel-ops", "--message-format=json-render-diagnostics"]);
    c.stderr(Stdio::inherit());
    eprintln!("{c:?}");
    let out = c.output().context("cannot run cargo build")?;
    if !out.status.success() {
        bail!("cargo build -p keel-api -p keel-ops failed ({})", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let find = |name: &str| {
        stdout
            .lines()
            .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
            .filter_map(|l| json_str(l, "executable"))
            .map(PathBuf::from)
            .find(|p| p.file_stem().is_some_and(|s| s == name))
            .with_context(|| format!("cargo build did not report the {name} executable"))
    };
    Ok((find("keel-api")?, find("keel-ops")?))
}

/// A migrated SQLite database with one org and one owner who is also a platform operator;
/// returns the org id, the owner's org-scoped API token and their operator-scoped one.
fn seed(ops: &Path, db: &str) -> anyhow::Result<(String, String, String)> {
    ops_json(ops, db, &["migrate"])?;
    let org = ops_json(ops, db, &["org", "create", "Schemathesis Org", "--json"])?;
    let org = json_str(&org, "id").context("keel-ops org create --json printed no id")?;
    let email = "schemathesis@example.com";
    ops_json(ops, db, &["user", "create", "--email", email, "--org", &org, "--role", "owner", "--json"])?;
    let tok = ops_json(ops, db, &["token", "issue", "--user", email, "--json"])?;
    let token = json_str(&tok, "token").context("keel-ops token issue --json printed no token")?;
    ops_json(ops, db, &["operator", "grant", email])?;
    let tok = ops_json(ops, db, &["token", "issue", "--user", email, "--operator", "--json"])?;
    let operator = json_str(&tok, "token").context("keel-ops token issue --operator --json printed no token")?;
    Ok((org, token, operator))
}

/// One open invoice, created through the API the way a client would; returns its id.
fn seed_invoice(addr: &str, token: &str) -> anyhow::Result<String> {
    let body = r#"{"customer_name":"Seed Customer","currency":"USD","status":"open","line_items":[{"description":"Seed","quantity":2,"unit_amount_minor":1250}]}"#;
    let mut s = TcpStream::connect(addr).with_context(|| format!("cannot connect to keel-api at {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "POST /api/admin/invoices HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).context("cannot read keel-api's answer to the seed invoice")?;
    let status = resp.split_whitespace().nth(1).unwrap_or("?");
    let payload = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if status != "201" {
        bail!("creating the seed invoice answered {status}: {payload}");
    }
    json_str(payload, "id").with_context(|| format!("the seed invoice answer has no id: {payload}"))
}

fn ops_json(ops: &Path, db: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut c = Command::new(ops);
    clean_env(&mut c).env("DATABASE_URL", db).args(args);
    let out = c.output().with_context(|| format!("cannot run {}", ops.display()))?;
    if !out.status.success() {
        bail!("keel-ops {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The caller's own Keel settings (a production `KEEL_ENV`, a Postgres URL) must not leak in.
pub(crate) fn clean_env(c: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("KEEL_") || k == "DATABASE_URL" || k == "INTERNAL_API_SECRET" || k == "RUST_LOG" {
            c.env_remove(k.as_ref());
        }
    }
    c
}

/// One schemathesis invocation against the running server.
struct Run<'a> {
    name: &'static str,
    header: Option<&'a str>,
    config: Option<&'a Path>,
    /// Only the operations whose path matches this regex.
    only_paths: Option<&'static str>,
}

impl Run<'_> {
    /// Whether schemathesis passed; an error only when it could not be started.
    fn execute(&self, python: &str, schema: &str, dir: &Path) -> anyhow::Result<bool> {
        let mut c = Command::new(python);
        c.current_dir(dir).args(["-m", "schemathesis.cli"]);
        if let Some(cfg) = self.config {
            c.arg("--config-file").arg(cfg);
        }
        c.args(["run", schema, "--checks", CHECKS, "--max-examples", MAX_EXAMPLES]);
        // One worker: CPython before 3.11.8 can fail `ast.parse` in concurrent threads
        // (gh-106905, "AST constructor recursion depth mismatch"), which hypothesis calls.
        c.args(["--workers", "1", "--request-timeout", "30", "--generation-database", "none", "--no-color"]);
        if let Some(regex) = self.only_paths {
            c.args(["--include-path-regex", regex]);
        }
        if let Some(h) = self.header {
            c.args(["-H", h]);
        }
        let shown: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .map(|a| if a.starts_with("Authorization:") { "Authorization: Bearer <token>".into() } else { a })
            .collect();
        eprintln!("\n== schemathesis, {}: {python} {}", self.name, shown.join(" "));
        let status = c.status().context("cannot start schemathesis")?;
        Ok(status.success())
    }
}

/// keel-api on a random port; killed on drop so an early error never leaves it running.
struct Server {
    child: Child,
    addr: String,
    tail: Arc<Mutex<VecDeque<String>>>,
    errors: Arc<Mutex<usize>>,
}

impl Server {
    fn start(api: &Path, db: &str, dir: &Path) -> anyhow::Result<Server> {
        let mut c = Command::new(api);
        clean_env(&mut c)
            .env("DATABASE_URL", db)
            .env("KEEL_BIND", "127.0.0.1:0")
            // Metrics have their own listener; a fixed port would collide with anything on 9090.
            .env("KEEL_METRICS_BIND", "127.0.0.1:0")
            .env("KEEL_LOG_FORMAT", "json")
            // The pinned run asks for nine years at once (see `schemathesis`).
            .env("KEEL_REPORT_MAX_DAYS", "3660")
            .env("RUST_LOG", "info");
        for var in LIMIT_OVERRIDES {
            c.env(var, RAISED_LIMIT);
        }
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = c.spawn().with_context(|| format!("cannot start {}", api.display()))?;
        let stderr = child.stderr.take().context("keel-api stderr was not piped")?;
        let mut log = fs::File::create(dir.join("keel-api.log")).context("cannot create keel-api.log")?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL_LINES)));
        let errors = Arc::new(Mutex::new(0usize));
        let (tx, rx) = mpsc::channel();
        let (t, e) = (tail.clone(), errors.clone());
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if line.contains(r#""message":"listening""#) {
                    let _ = tx.send(json_str(&line, "addr"));
                }
                if line.contains(r#""level":"ERROR""#) {
                    *e.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                }
                let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == LOG_TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let mut server = Server { child, addr: String::new(), tail, errors };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(addr)) => server.addr = addr,
            Ok(None) => {
                server.print_tail();
                bail!("keel-api logged \"listening\" without an addr field");
            }
            Err(_) => {
                server.stop();
                server.print_tail();
                bail!("keel-api did not log \"listening\" within 60 s (log tail above)");
            }
        }
        eprintln!("keel-api listening on {}", server.addr);
        Ok(server)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn error_lines(&self) -> usize {
        *self.errors.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn print_tail(&self) {
        eprintln!("\n== keel-api log tail");
        for line in self.tail.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            eprintln!("{line}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The string value of `"key": "…"` in a JSON text; enough for keel-ops's and cargo's output
/// without a JSON dependency in xtask.
fn json_str(text: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        rest = &rest[i + needle.len()..];
        let Some(after) = rest.trim_start().strip_prefix(':') else { continue };
        let Some(value) = after.trim_start().strip_prefix('"') else { continue };
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    other => out.push(other),
                },
                other => out.push(other),
            }
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn json_str_reads_compact_and_pretty_fields() {
        assert_eq!(json_str(r#"{"id":"a-1","token":"kt_x"}"#, "token").as_deref(), Some("kt_x"));
        assert_eq!(json_str("{\n  \"id\": \"a-1\",\n  \"token\": \"kt_y\"\n}", "token").as_deref(), Some("kt_y"));
        assert_eq!(
            json_str(r#"{"executable":"C:\\t\\keel-api.exe"}"#, "executable").as_deref(),
            Some(r"C:\t\keel-api.exe")
        );
        assert_eq!(
            json_str(r#"{"fields":{"message":"listening","addr":"127.0.0.1:4100"}}"#, "addr").as_deref(),
            Some("127.0.0.1:4100")
        );
    }

    #[test]
    fn month_of_unix_times() {
        assert_eq!(super::month_of(0), (1970, 1));
        assert_eq!(super::month_of(951_782_400), (2000, 2)); // 2000-02-29T00:00:00Z
        assert_eq!(super::month_of(951_868_799), (2000, 2)); // 2000-02-29T23:59:59Z
        assert_eq!(super::month_of(951_868_800), (2000, 3));
        assert_eq!(super::month_of(1_767_225_599), (2025, 12)); // 2025-12-31T23:59:59Z
        assert_eq!(super::month_of(1_767_225_600), (2026, 1));
    }

    #[test]
    fn json_str_skips_non_string_values_and_missing_keys() {
        assert_eq!(json_str(r#"{"id":null,"x":{"id":"b"}}"#, "id").as_deref(), Some("b"));
        assert_eq!(json_str(r#"{"id":"unterminated"#, "id"), None);
        assert_eq!(json_str(r#"{"other":"v"}"#, "id"), None);
    }
}
