//! The collecting reader: each accessor returns a default on error and records the problem.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Where variables come from; tests pass a [`MapSource`] instead of mutating the process env.
pub trait Source {
    /// The variable's value, if set.
    fn get(&self, key: &str) -> Option<String>;
    /// Every key, for settings families such as `KEEL_RATE_LIMIT_<POLICY>`.
    fn keys(&self) -> Vec<String>;
}

/// The process environment (`std::env`), what binaries read in production.
pub struct EnvSource;

impl Source for EnvSource {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
    fn keys(&self) -> Vec<String> {
        std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect()
    }
}

/// Variables held in a map: for tests, and for settings that come from somewhere other than
/// the environment.
#[derive(Default, Clone)]
pub struct MapSource(pub HashMap<String, String>);

impl MapSource {
    /// A source holding exactly these `(name, value)` pairs.
    pub fn new<const N: usize>(pairs: [(&str, &str); N]) -> Self {
        Self(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

impl Source for MapSource {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// One thing wrong with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable's name, like `DATABASE_URL`.
    pub var: String,
    /// What is wrong and how to fix it; never the value of a secret.
    pub message: String,
}

/// Every problem found in one load, in the order the variables were read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "configuration has {} problem(s):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {}: {}", p.var, p.message)?;
        }
        Ok(())
    }
}

/// Reads typed values from a [`Source`], collecting every problem instead of stopping at the
/// first. Each accessor returns its default when the variable is unset (or empty) or invalid;
/// [`Reader::finish`] then reports all problems at once.
pub struct Reader<'a> {
    source: &'a dyn Source,
    problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    /// A reader over `source` with no problems yet.
    pub fn new(source: &'a dyn Source) -> Self {
        Self { source, problems: Vec::new() }
    }

    /// The source being read, for settings families a caller lists itself.
    pub fn source(&self) -> &dyn Source {
        self.source
    }

    /// The raw value; empty strings count as unset, which is what operators mean by `FOO=`.
    pub fn raw(&self, var: &str) -> Option<String> {
        self.source.get(var).filter(|v| !v.trim().is_empty())
    }

    /// Records a problem found by the caller's own validation, reported with the others.
    pub fn problem(&mut self, var: &str, message: impl Into<String>) {
        self.problems.push(Problem { var: var.to_owned(), message: message.into() });
    }

    /// The value as text, or `default` when unset.
    pub fn string(&mut self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_owned())
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`, any case), or `default` when unset.
    pub fn bool(&mut self, var: &str, default: bool) -> bool {
        match self.raw(var) {
            None => default,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    self.problem(var, format!("must be true or false, got {v:?}"));
                    default
                }
            },
        }
    }

    /// A value parsed with `FromStr`; `expected` describes the accepted form for the message.
    pub fn parse<T: FromStr>(&mut self, var: &str, default: T, expected: &str) -> T {
        match self.raw(var) {
            None => default,
            Some(v) => match v.trim().parse() {
                Ok(t) => t,
                Err(_) => {
                    self.problem(var, format!("must be {expected}, got {v:?}"));
                    default
                }
            },
        }
    }

    /// An integer within `[min, max]`.
    pub fn int_in(&mut self, var: &str, default: u64, min: u64, max: u64) -> u64 {
        let v = self.parse(var, default, &format!("a whole number from {min} to {max}"));
        if v < min || v > max {
            self.problem(var, format!("must be from {min} to {max}, got {v}"));
            return default;
        }
        v
    }

    /// A fraction within `[0, 1]`.
    pub fn fraction(&mut self, var: &str, default: f64) -> f64 {
        let v: f64 = self.parse(var, default, "a number from 0 to 1, like 0.05");
        if !(0.0..=1.0).contains(&v) {
            self.problem(var, format!("must be from 0 to 1, got {v}"));
            return default;
        }
        v
    }

    /// A duration like `250ms`, `30s`, `5m`, `2h`, `7d`.
    pub fn duration(&mut self, var: &str, default: Duration) -> Duration {
        match self.raw(var) {
            None => default,
            Some(v) => match parse_duration(&v) {
                Some(d) => d,
                None => {
                    self.problem(var, format!("must be a duration like 500ms, 30s, 5m, 2h or 7d, got {v:?}"));
                    default
                }
            },
        }
    }

    /// `Ok` when nothing was wrong, else every problem found, in the order read.
    pub fn finish(self) -> Result<(), Problems> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(self.problems))
        }
    }

    /// The problems found, for a caller that merges them into a larger report.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

/// Parses `<n><unit>` with unit one of ms, s, m, h, d. A bare number is refused: the unit is
/// exactly what gets misread at 3 a.m.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = |k: u64| n.checked_mul(k).map(Duration::from_secs);
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => secs(1),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => None,
    }
}
