//! How audit results are shown: a table for people, JSON for scripts.

use super::catalog::Catalog;
use super::finding::{Finding, Level};
use super::suppress::{Applied, Suppression};
use crate::cmd::backup::term::Paint;
use serde_json::json;
use std::fmt::Write;

pub(crate) struct Outcome<'a> {
    pub(crate) cat: &'a Catalog,
    pub(crate) applied: &'a Applied,
    pub(crate) fail_on: Level,
    pub(crate) failed: bool,
    pub(crate) notes: &'a [String],
}

fn counts(findings: &[Finding]) -> [usize; 3] {
    let n = |l| findings.iter().filter(|f| f.level == l).count();
    [n(Level::Error), n(Level::Warn), n(Level::Info)]
}

fn suppression_json(s: &Suppression) -> serde_json::Value {
    json!({"lint": s.lint, "object": s.object, "reason": s.reason, "expires": s.expires, "source": s.source})
}

pub(crate) fn to_json(o: &Outcome<'_>) -> serde_json::Value {
    let [e, w, i] = counts(&o.applied.findings);
    json!({
        "database": o.cat.database,
        "server_version": o.cat.server_version,
        "fail_on": o.fail_on,
        "failed": o.failed,
        "summary": {"error": e, "warn": w, "info": i, "suppressed": o.applied.suppressed.len()},
        "findings": o.applied.findings,
        "suppressed": o.applied.suppressed.iter().map(|(f, s)| json!({
            "lint": f.lint, "level": f.level, "object": f.object, "detail": f.detail,
            "reason": s.reason, "expires": s.expires, "source": s.source,
        })).collect::<Vec<_>>(),
        "expired_suppressions": o.applied.expired.iter().map(suppression_json).collect::<Vec<_>>(),
        "unused_suppressions": o.applied.unused.iter().map(suppression_json).collect::<Vec<_>>(),
        "notes": o.notes,
    })
}

fn label(p: Paint, l: Level) -> String {
    let s = format!("{:<5}", l.as_str().to_uppercase());
    match l {
        Level::Error => p.red(&s),
        Level::Warn => p.yellow(&s),
        Level::Info => p.dim(&s),
    }
}

fn until(s: &Suppression) -> String {
    s.expires.map(|d| format!(" (until {d})")).unwrap_or_default()
}

pub(crate) fn to_text(o: &Outcome<'_>, p: Paint) -> String {
    let mut out = String::new();
    let fs = &o.applied.findings;
    let [e, w, i] = counts(fs);
    let _ = writeln!(
        out,
        "audit of {} (PostgreSQL {}): {e} error, {w} warn, {i} info; {} suppressed",
        o.cat.database,
        o.cat.server_version,
        o.applied.suppressed.len()
    );
    let lint_w = fs.iter().map(|f| f.lint.len()).max().unwrap_or(0);
    for f in fs {
        let _ = writeln!(out, "\n{}  {:<lint_w$}  {}", label(p, f.level), f.lint, f.object);
        let _ = writeln!(out, "       {}", f.detail);
        let _ = writeln!(out, "       why: {}", f.why);
        let _ = writeln!(out, "       fix: {}", f.fix);
    }
    if !o.applied.suppressed.is_empty() {
        let _ = writeln!(out, "\nsuppressed:");
        for (f, s) in &o.applied.suppressed {
            let _ = writeln!(out, "  {} {} {}{}: {}", f.level.as_str(), f.lint, f.object, until(s), s.reason);
        }
    }
    if !o.applied.expired.is_empty() {
        let _ = writeln!(out, "\nexpired suppressions (no longer applied; renew or remove them):");
        for s in &o.applied.expired {
            let _ = writeln!(
                out,
                "  {} {} expired {} [{}]",
                s.lint,
                s.object,
                s.expires.map(|d| d.to_string()).unwrap_or_default(),
                s.source
            );
        }
    }
    if !o.applied.unused.is_empty() {
        let _ = writeln!(out, "\nsuppressions that matched nothing (remove them?):");
        for s in &o.applied.unused {
            let _ = writeln!(out, "  {} {} [{}]", s.lint, s.object, s.source);
        }
    }
    for n in o.notes {
        let _ = writeln!(out, "\nnote: {n}");
    }
    let verdict = if o.failed { p.red("FAIL") } else { p.green("PASS") };
    let _ = writeln!(out, "\n{verdict} (--fail-on {})", o.fail_on.as_str());
    out
}
