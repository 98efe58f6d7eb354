//! Result rows in the shared format (`target/bench/<name>.json`) and the table in docs/benchmarks.md.
#![allow(dead_code)] // each family uses a different subset of the helpers

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub case: String,
    /// `ns_per_op`, `ops_per_s`, `jobs_per_s`, `events_per_s`, `ms_p50`, `ms_p99`, `s_total`, `bytes`.
    pub metric: &'static str,
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// `lower` or `higher`.
    pub better: &'static str,
    /// The target from the issue, shown next to the figure in docs (not in the JSON).
    #[serde(skip)]
    pub target: Option<String>,
}

impl Row {
    pub(crate) fn new(case: impl Into<String>, metric: &'static str, value: f64, better: &'static str) -> Self {
        Self { case: case.into(), metric, value, peer: None, peer_value: None, ratio: None, better, target: None }
    }

    pub(crate) fn vs(mut self, peer: impl Into<String>, peer_value: f64) -> Self {
        self.peer = Some(peer.into());
        self.peer_value = Some(peer_value);
        self.ratio = if peer_value != 0.0 { Some(round3(self.value / peer_value)) } else { None };
        self
    }

    pub(crate) fn target(mut self, t: impl Into<String>) -> Self {
        self.target = Some(t.into());
        self
    }
}

#[derive(Serialize)]
struct File<'a> {
    bench: &'a str,
    machine: String,
    results: &'a [Row],
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Median of samples; benches take several iterations and report the middle one.
pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    if xs.is_empty() {
        return f64::NAN;
    }
    xs[xs.len() / 2]
}

/// Nearest-rank percentile of durations, in milliseconds.
pub(crate) fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
    samples[rank.min(samples.len()) - 1].as_secs_f64() * 1000.0
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores, PostgreSQL 15 on 127.0.0.1")
}

pub(crate) fn write(bench: &str, rows: &[Row]) -> std::io::Result<()> {
    let root = workspace_root();
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::to_string_pretty(&File { bench, machine: machine(), results: rows })?;
    std::fs::write(dir.join(format!("{bench}.json")), json + "\n")?;
    update_docs(&root.join("docs/benchmarks.md"), bench, rows)?;
    for r in rows {
        eprintln!(
            "{:<48} {:>14.3} {:<12} ratio {}",
            r.case,
            r.value,
            r.metric,
            r.ratio.map(|x| x.to_string()).unwrap_or("-".into())
        );
    }
    Ok(())
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Replaces the table between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`, appending the
/// section if it is not there yet; prose around it is left alone.
fn update_docs(path: &Path, bench: &str, rows: &[Row]) -> std::io::Result<()> {
    let mut table = String::from(
        "| case | metric | keel | peer | peer value | ratio | better | target |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.case,
            r.metric,
            fmt_num(r.value),
            r.peer.as_deref().unwrap_or("-"),
            r.peer_value.map(fmt_num).unwrap_or("-".into()),
            r.ratio.map(|x| format!("{x:.3}")).unwrap_or("-".into()),
            r.better,
            r.target.as_deref().unwrap_or("-"),
        ));
    }
    let stamp = chrono::Utc::now().format("%Y-%m-%d");
    let block = format!("<!-- bench:{bench} -->\n_Last run {stamp}, {}._\n\n{table}<!-- /bench:{bench} -->", machine());
    let doc = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let open = format!("<!-- bench:{bench} -->");
    let close = format!("<!-- /bench:{bench} -->");
    let new = match (doc.find(&open), doc.find(&close)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &doc[..a], block, &doc[b + close.len()..]),
        _ => format!("{}\n## {bench}\n\n{block}\n", doc.trim_end()),
    };
    std::fs::write(path, new)
}
