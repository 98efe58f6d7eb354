//! `keel-ops telemetry export` (the production telemetry report) and `keel-ops scale gate`
//! (its verdict in a few lines). A failing section fails the command: never a report with a
//! silently missing section. Both take the same inputs ([`ReportArgs`]), so the gate and the
//! report always judge against the same SLOs.

use crate::exit;
use crate::output::OpsError;
use crate::progress::Progress;
use clap::{Args, Subcommand, ValueEnum};
use keel_config::Settings;
use keel_money::{Currency, Money};
use keel_storage::{connect, ConnectMode};
use keel_telemetry::report::{CostInputs, LoadTarget, Slo};
use keel_telemetry::{build_report, ReportOptions, ReportStep, TelemetryReport};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Md,
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The window: the last N days (1 to 366).
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// p95 objective in milliseconds for every route; overrides p95_ms from --slo-file.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    slo_p95_ms: Option<u64>,
    /// p99 objective in milliseconds for every route; overrides p99_ms from --slo-file.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    slo_p99_ms: Option<u64>,
    /// A TOML file with the SLOs: `p95_ms = 800` and/or `p99_ms = 2000`, no other keys.
    /// --slo-p95-ms / --slo-p99-ms, when given, override the file's value for that percentile.
    #[arg(long, value_name = "PATH")]
    slo_file: Option<PathBuf>,
    /// "N sessions by YYYY-MM-DD: reason" — the business-load target scale work aims at.
    #[arg(long)]
    load_target: Option<String>,
    /// Current monthly infrastructure spend in USD, e.g. 180 or 180.50.
    #[arg(long)]
    monthly_spend: Option<String>,
    /// Monthly recurring revenue in USD (raises the cost ceiling at $10k and $25k).
    #[arg(long)]
    mrr: Option<String>,
    /// An owner-approved launch-risk exception to the cost ceiling.
    #[arg(long)]
    launch_risk_exception: bool,
}

#[derive(Debug, Subcommand)]
pub enum TelemetryCommand {
    /// Write the production telemetry report (top slow routes, slow SQL, connections, verdict).
    Export {
        /// Where to write it; `-` for standard output.
        #[arg(long, default_value = "reports/production-telemetry.md")]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Md)]
        format: Format,
        #[command(flatten)]
        report: ReportArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScaleCommand {
    /// The Phase 0 decision (stop or keep scaling), the load target and the cost gate.
    Gate {
        #[command(flatten)]
        report: ReportArgs,
        #[arg(long)]
        json: bool,
    },
}

fn usd(flag: &str, v: &Option<String>) -> Result<Option<Money>, OpsError> {
    v.as_deref()
        .map(|s| Money::parse(s.trim().trim_start_matches('$'), Currency::USD))
        .transpose()
        .map_err(|e| OpsError::usage(format!("{flag}: {e}")))
}

/// The keys an SLO file may hold. Anything else is refused: a misspelt key (`p95 = 800`,
/// `p95_msec`) silently dropping an objective would turn a breach into "every route meets".
const SLO_KEYS: [&str; 2] = ["p95_ms", "p99_ms"];

/// Parses an SLO file; every problem names the file (`source`), the key and the fix.
fn parse_slo_file(text: &str, source: &str) -> Result<Slo, String> {
    let example = "e.g. p95_ms = 800 and p99_ms = 2000, one per line";
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        format!("--slo-file {source}: not valid TOML{at}: {}; write the objectives as {example}", e.message().trim())
    })?;
    let mut slo = Slo::default();
    for (key, value) in &table {
        let slot = match key.as_str() {
            "p95_ms" => &mut slo.p95_ms,
            "p99_ms" => &mut slo.p99_ms,
            other => {
                return Err(format!(
                    "--slo-file {source}: unknown key `{other}`; the only keys are {} (milliseconds), {example}",
                    SLO_KEYS.join(" and ")
                ))
            }
        };
        *slot = match value {
            toml::Value::Integer(n) if *n >= 1 => Some(*n as u64),
            _ => {
                return Err(format!(
                    "--slo-file {source}: {key} must be a whole number of milliseconds, at least 1 and unquoted, such as {key} = {}; found {value}",
                    if key == "p95_ms" { 800 } else { 2000 }
                ))
            }
        };
    }
    if slo.p95_ms.is_none() && slo.p99_ms.is_none() {
        return Err(format!("--slo-file {source}: sets no objective; add p95_ms and/or p99_ms, {example}"));
    }
    Ok(slo)
}

fn read_slo_file(path: &Path) -> Result<Slo, OpsError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        OpsError::usage(format!(
            "--slo-file {source}: cannot read it ({e}); give the path of a TOML file such as p95_ms = 800"
        ))
    })?;
    parse_slo_file(&text, &source).map_err(OpsError::usage)
}

/// The file's objectives with the flags laid over them, percentile by percentile: a file
/// holds the team's agreed SLOs and a flag tries another value for one run without editing it.
fn slo(a: &ReportArgs) -> Result<Slo, OpsError> {
    let file = a.slo_file.as_deref().map(read_slo_file).transpose()?.unwrap_or_default();
    Ok(Slo { p95_ms: a.slo_p95_ms.or(file.p95_ms), p99_ms: a.slo_p99_ms.or(file.p99_ms) })
}

fn options(a: &ReportArgs) -> Result<ReportOptions, OpsError> {
    let load_target = a
        .load_target
        .as_deref()
        .map(|s| s.parse::<LoadTarget>())
        .transpose()
        .map_err(|e| OpsError::usage(format!("--load-target: {e}")))?;
    let cost =
        CostInputs::new(usd("--monthly-spend", &a.monthly_spend)?, usd("--mrr", &a.mrr)?, a.launch_risk_exception)
            .map_err(OpsError::usage)?;
    Ok(ReportOptions { days: a.days, slo: slo(a)?, load_target, cost, ..ReportOptions::default() })
}

async fn report(s: &Settings, a: &ReportArgs) -> Result<TelemetryReport, OpsError> {
    let opts = options(a)?;
    let db = connect(&s.database, ConnectMode::Eager).await?;
    // Progress on a terminal only: piped output carries nothing but the report.
    let progress = Progress::stderr();
    let r = build_report(&db, &opts, chrono::Utc::now(), &mut |step: ReportStep| progress.phase(step.label())).await;
    progress.finish();
    db.close().await;
    r.map_err(|e| OpsError::failed(e.to_string()))
}

pub(crate) async fn export(s: &Settings, cmd: TelemetryCommand) -> Result<u8, OpsError> {
    let TelemetryCommand::Export { out, format, report: args } = cmd;
    let r = report(s, &args).await?;
    let text = match format {
        Format::Md => r.to_markdown(),
        Format::Json => r.to_json(),
    };
    if out.as_os_str() == "-" {
        print!("{text}");
        return Ok(exit::OK);
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| OpsError::usage(format!("--out: cannot create {}: {e}", dir.display())))?;
    }
    // Written whole through a temporary file, so a failure never leaves half a report.
    let tmp = out.with_extension("partial");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &out))
        .map_err(|e| OpsError::usage(format!("--out: cannot write {}: {e}", out.display())))?;
    eprintln!("wrote {}", out.display());
    Ok(exit::OK)
}

pub(crate) async fn gate(s: &Settings, cmd: ScaleCommand) -> Result<u8, OpsError> {
    let ScaleCommand::Gate { report: args, json } = cmd;
    let r = report(s, &args).await?;
    let v = &r.verdict;
    if json {
        crate::output::print_json(&serde_json::json!({
            "phase0": v.slo.text, "load_target": v.load_target.text, "cost_gate": v.cost.text,
            "window_days": r.window.days,
        }));
    } else {
        println!("Phase 0 decision: {}", v.slo.text);
        println!("Load target:      {}", v.load_target.text);
        println!("Cost gate:        {}", v.cost.text);
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_file_reads_either_objective_or_both() {
        assert_eq!(
            parse_slo_file("p95_ms = 800\np99_ms = 2000\n", "f").unwrap(),
            Slo { p95_ms: Some(800), p99_ms: Some(2000) }
        );
        assert_eq!(
            parse_slo_file("# agreed 2026-05\np99_ms = 1500", "f").unwrap(),
            Slo { p95_ms: None, p99_ms: Some(1500) }
        );
    }

    #[test]
    fn slo_file_problems_name_the_file_the_key_and_the_fix() {
        let cases: [(&str, &[&str]); 7] = [
            ("p95_ms = 800\np90_ms = 500\n", &["slo.toml", "unknown key `p90_ms`", "p95_ms and p99_ms"]),
            ("p95_ms = \"800\"\n", &["slo.toml", "p95_ms must be a whole number", "p95_ms = 800", "found \"800\""]),
            ("p99_ms = 1.5\n", &["slo.toml", "p99_ms must be a whole number", "p99_ms = 2000"]),
            ("p95_ms = 0\n", &["slo.toml", "p95_ms", "at least 1"]),
            ("p95_ms = -5\n", &["slo.toml", "p95_ms", "at least 1"]),
            ("", &["slo.toml", "sets no objective", "p95_ms"]),
            ("p95_ms = 800\np99_ms =\n", &["slo.toml", "not valid TOML (line 2)", "p95_ms = 800"]),
        ];
        for (text, wants) in cases {
            let e = parse_slo_file(text, "slo.toml").unwrap_err();
            for w in wants {
                assert!(e.contains(w), "{text:?}: {w:?} missing from {e}");
            }
        }
        let e = parse_slo_file("[slo]\np95_ms = 800\n", "slo.toml").unwrap_err();
        assert!(e.contains("unknown key `slo`"), "a table is not the flat form: {e}");
    }
}
