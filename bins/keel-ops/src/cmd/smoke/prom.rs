//! Reading a metrics page for `smoke`, so it can tell a real one from an error page served with
//! 200. prom_text_format_parser parses the Prometheus text format (0.0.4) strictly: every line
//! must parse, label values are quoted with the format's escapes, and HELP/TYPE are grouped
//! with their samples (a TYPE after its samples is an error). On top of it, the checks the
//! format leaves to readers: at least one sample, no series twice, no label repeated within a
//! series, histograms consistent.
//!
//! The parser also refuses a HELP/TYPE pair with no samples, which the format allows; Keel's
//! registry never writes one (an empty family is left out).
//!
//! Not prometheus-parse: it reads lines with regular expressions that drop, without an error,
//! any sample whose label values contain `}` (keel-api's route templates do:
//! `/api/admin/invoices/{id}`) and keeps escapes undecoded.

use prom_text_format_parser::{Scrape, ScrapeParseError, Type, ValueType};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Labels,
    pub(crate) value: f64,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Family {
    pub(crate) kind: Option<String>,
    pub(crate) samples: Vec<Sample>,
}

#[derive(Debug, Default)]
pub(crate) struct Exposition {
    pub(crate) families: BTreeMap<String, Family>,
}

impl Exposition {
    pub(crate) fn sample_count(&self) -> usize {
        self.families.values().map(|f| f.samples.len()).sum()
    }
}

type Labels = Vec<(String, String)>;

/// The parser keeps label values as written; decode the format's three escapes.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

fn parse_error(e: ScrapeParseError) -> String {
    match e {
        ScrapeParseError::Parse(m) => m.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "),
        ScrapeParseError::Collect(errs) => {
            errs.iter().map(|e| format!("line {}: {}", e.line_no.start, e.error)).collect::<Vec<_>>().join("; ")
        }
    }
}

fn kind_name(t: Type) -> Option<String> {
    match t {
        Type::Untyped => None,
        t => Some(t.to_string()),
    }
}

pub(crate) fn parse(text: &str) -> Result<Exposition, String> {
    if text.trim().is_empty() {
        return Err("no samples at all".into());
    }
    // The parser reads a TYPE line with an unknown type as a plain comment; a page that
    // declares one is not one Prometheus would accept.
    for (no, line) in text.lines().enumerate() {
        let mut words = line.trim_start().strip_prefix('#').unwrap_or("").split_whitespace();
        if let (Some("TYPE"), Some(name), Some(kind)) = (words.next(), words.next(), words.next()) {
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(format!("line {}: unknown metric type {kind:?} for {name}", no + 1));
            }
        }
    }
    let scrape = Scrape::parse(text).map_err(parse_error)?;
    let mut exp = Exposition::default();
    let mut seen_series: BTreeSet<String> = BTreeSet::new();
    for m in scrape.metrics {
        if exp.families.contains_key(&m.name) {
            return Err(format!("family {} appears in two places (its samples must be together)", m.name));
        }
        let mut family = Family { kind: kind_name(m.kind), samples: Vec::with_capacity(m.samples.len()) };
        for s in m.samples {
            let suffix = match (m.kind, s.value.value_type) {
                (Type::Histogram, ValueType::Sample) => "_bucket",
                (_, ValueType::Sum) => "_sum",
                (_, ValueType::Count) => "_count",
                _ => "",
            };
            let name = format!("{}{suffix}", m.name);
            let labels: Labels = s.labels.iter().map(|l| (l.key.clone(), unescape(&l.value))).collect();
            if let Some(dup) = labels.iter().enumerate().find(|(i, (k, _))| labels[..*i].iter().any(|(k2, _)| k2 == k))
            {
                return Err(format!("label {} repeated in a sample of {name}", dup.1 .0));
            }
            let mut sorted = labels.clone();
            sorted.sort();
            if !seen_series.insert(format!("{name}{sorted:?}")) {
                return Err(format!("series {name}{sorted:?} appears twice"));
            }
            // The parser checked the number's shape; parsed here without its panicking helper.
            let value: f64 = s
                .value
                .value
                .parse()
                .map_err(|_| format!("sample {name} has no valid value {:?}", s.value.value.as_str()))?;
            family.samples.push(Sample { name, labels, value });
        }
        exp.families.insert(m.name, family);
    }
    if exp.sample_count() == 0 {
        return Err("no samples at all".into());
    }
    for (name, f) in &exp.families {
        if f.kind.as_deref() == Some("histogram") {
            check_histogram(name, f)?;
        }
    }
    Ok(exp)
}

fn parse_le(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => v.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

/// Per label set: an `le` on every bucket, a `+Inf` bucket, counts never decreasing, and
/// `_count` equal to the `+Inf` bucket.
fn check_histogram(name: &str, f: &Family) -> Result<(), String> {
    type Key = Labels;
    let mut buckets: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<Key, f64> = BTreeMap::new();
    for s in &f.samples {
        let mut key: Key = s.labels.iter().filter(|(k, _)| k != "le").cloned().collect();
        key.sort();
        if s.name == format!("{name}_bucket") {
            let le = s
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .and_then(|(_, v)| parse_le(v))
                .ok_or_else(|| format!("histogram {name}: a bucket has no valid le label"))?;
            buckets.entry(key).or_default().push((le, s.value));
        } else if s.name == format!("{name}_count") {
            counts.insert(key, s.value);
        }
    }
    for (key, mut bs) in buckets {
        bs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(_, total)) = bs.last().filter(|(le, _)| le.is_infinite()) else {
            return Err(format!("histogram {name}{key:?} has no le=\"+Inf\" bucket"));
        };
        if bs.windows(2).any(|w| w[1].1 < w[0].1) {
            return Err(format!("histogram {name}{key:?}: bucket counts decrease as le grows"));
        }
        if let Some(&c) = counts.get(&key) {
            if c != total {
                return Err(format!("histogram {name}{key:?}: _count is {c} but the +Inf bucket is {total}"));
            }
        }
    }
    Ok(())
}
