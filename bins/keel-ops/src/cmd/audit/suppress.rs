//! Suppressions: findings a team has decided to accept, each with a reason and optionally an
//! expiry date, read from TOML. Keel's own decisions (`ops/audit-suppressions.toml`) are built
//! into the binary so a Keel database passes its audit out of the box, and are still listed.

use super::finding::{Finding, LINTS};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Keel's shipped suppressions, compiled in.
pub(crate) const BUILTIN: &str = include_str!("../../../../../ops/audit-suppressions.toml");
pub(crate) const BUILTIN_SOURCE: &str = "built-in (ops/audit-suppressions.toml)";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Suppression {
    pub(crate) lint: String,
    /// The finding's object, exactly or with `*` wildcards.
    pub(crate) object: String,
    pub(crate) reason: String,
    /// From this day on (UTC) the entry no longer suppresses anything.
    pub(crate) expires: Option<NaiveDate>,
    pub(crate) source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suppress: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    lint: String,
    object: String,
    reason: String,
    expires: Option<toml::Value>,
}

fn date(v: &toml::Value) -> Option<NaiveDate> {
    match v {
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            let d = dt.date?;
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        toml::Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
        _ => None,
    }
}

/// Parses and validates a suppressions file; every problem names the entry and the field.
pub(crate) fn parse(text: &str, source: &str) -> Result<Vec<Suppression>, String> {
    let file: File = toml::from_str(text).map_err(|e| format!("{source}: not a valid suppressions file: {e}"))?;
    let mut out = Vec::new();
    for (i, e) in file.suppress.into_iter().enumerate() {
        let at = format!("{source}: [[suppress]] entry {}", i + 1);
        if !LINTS.contains(&e.lint.as_str()) {
            return Err(format!("{at}: lint {:?} is not a lint; use one of {}", e.lint, LINTS.join(", ")));
        }
        if e.object.trim().is_empty() {
            return Err(format!("{at}: object is empty; name the object as the audit prints it (e.g. public.orders)"));
        }
        if e.reason.trim().is_empty() {
            return Err(format!("{at}: reason is empty; say why this finding is acceptable"));
        }
        let expires = match &e.expires {
            None => None,
            Some(v) => Some(date(v).ok_or_else(|| format!("{at}: expires must be a date such as 2026-12-31"))?),
        };
        out.push(Suppression {
            lint: e.lint,
            object: e.object.trim().to_owned(),
            reason: e.reason.trim().to_owned(),
            expires,
            source: source.to_owned(),
        });
    }
    Ok(out)
}

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Suppression {
    pub(crate) fn expired(&self, today: NaiveDate) -> bool {
        self.expires.is_some_and(|d| d <= today)
    }
    fn matches(&self, f: &Finding) -> bool {
        self.lint == f.lint && glob(&self.object, &f.object)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) findings: Vec<Finding>,
    pub(crate) suppressed: Vec<(Finding, Suppression)>,
    /// Entries past their date: they suppressed nothing this run.
    pub(crate) expired: Vec<Suppression>,
    /// Live entries that matched no finding (the problem was fixed, or the entry is wrong).
    pub(crate) unused: Vec<Suppression>,
}

/// Splits findings into kept and suppressed. `today` is passed in so tests can fix the date.
pub(crate) fn apply(findings: Vec<Finding>, rules: &[Suppression], today: NaiveDate) -> Applied {
    let (live, expired): (Vec<&Suppression>, Vec<&Suppression>) = rules.iter().partition(|s| !s.expired(today));
    let mut used = vec![false; live.len()];
    let mut out = Applied { expired: expired.into_iter().cloned().collect(), ..Applied::default() };
    for f in findings {
        match live.iter().position(|s| s.matches(&f)) {
            Some(i) => {
                used[i] = true;
                out.suppressed.push((f, live[i].clone()));
            }
            None => out.findings.push(f),
        }
    }
    out.unused = live.iter().zip(used).filter(|(_, u)| !u).map(|(s, _)| (*s).clone()).collect();
    out
}
