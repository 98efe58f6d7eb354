//! `keel-ops telemetry export` (the production telemetry report) and `keel-ops scale gate`
//! (its verdict in a few lines). A failing section fails the command: never a report with a
//! silently missing section.

use crate::exit;
use crate::output::OpsError;
use clap::{Args, Subcommand, ValueEnum};
use keel_config::Settings;
use keel_money::{Currency, Money};
use keel_storage::{connect, ConnectMode};
use keel_telemetry::report::{CostInputs, LoadTarget, Slo};
use keel_telemetry::{build_report, ReportOptions, ReportStep, TelemetryReport};
use std::io::IsTerminal;
use std::path::PathBuf;

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
    /// p95 objective in milliseconds for every route.
    #[arg(long)]
    slo_p95_ms: Option<u64>,
    /// p99 objective in milliseconds for every route.
    #[arg(long)]
    slo_p99_ms: Option<u64>,
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
    Ok(ReportOptions {
        days: a.days,
        slo: Slo { p95_ms: a.slo_p95_ms, p99_ms: a.slo_p99_ms },
        load_target,
        cost,
        ..ReportOptions::default()
    })
}

async fn report(s: &Settings, a: &ReportArgs) -> Result<TelemetryReport, OpsError> {
    let opts = options(a)?;
    let db = connect(&s.database, ConnectMode::Eager).await?;
    // Progress on a terminal only: piped output carries nothing but the report.
    let tty = std::io::stderr().is_terminal();
    let mut progress = |step: ReportStep| {
        if tty {
            eprint!("\r\x1b[2K… {}", step.label());
        }
    };
    let r = build_report(&db, &opts, chrono::Utc::now(), &mut progress).await;
    if tty {
        eprint!("\r\x1b[2K");
    }
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
