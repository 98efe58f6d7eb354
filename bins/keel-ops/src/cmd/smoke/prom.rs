//! A strict reader for the Prometheus text exposition format (0.0.4), so `smoke` can tell a
//! real metrics page from an error page served with 200: every line must parse, `TYPE` comes
//! before its samples, series are unique, and histograms are internally consistent.

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

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn valid_label(s: &str) -> bool {
    valid_name(s) && !s.contains(':')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

/// `{a="x",b="y\"z"}` → pairs; returns the rest of the line after `}`.
type Labels = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = rest[..eq].trim();
        if !valid_label(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = rest[eq + 1..].trim_start().char_indices();
        let after_eq = rest[eq + 1..].trim_start();
        if !matches!(chars.next(), Some((_, '"'))) {
            return Err(format!("label {name} value is not quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            match (escaped, c) {
                (true, 'n') => {
                    value.push('\n');
                    escaped = false;
                }
                (true, '\\' | '"') => {
                    value.push(c);
                    escaped = false;
                }
                (true, other) => return Err(format!("bad escape \\{other} in label {name}")),
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                (false, c) => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("unterminated value of label {name}"))?;
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} repeated"));
        }
        labels.push((name.to_owned(), value));
        rest = after_eq[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The family a sample belongs to, given the families declared so far.
fn family_of<'a>(name: &'a str, declared: &BTreeMap<String, Family>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            let kind = declared.get(base).and_then(|f| f.kind.as_deref());
            let fits = match suffix {
                "_bucket" => kind == Some("histogram"),
                _ => matches!(kind, Some("histogram" | "summary")),
            };
            if fits {
                return base;
            }
        }
    }
    name
}

pub(crate) fn parse(text: &str) -> Result<Exposition, String> {
    let mut exp = Exposition::default();
    let mut seen_series: BTreeSet<String> = BTreeSet::new();
    for (no, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = |m: String| format!("line {}: {m}", no + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !valid_name(name) {
                        return Err(at(format!("bad metric name {name:?}")));
                    }
                    let kind = kind.trim();
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown metric type {kind:?}")));
                    }
                    let f = exp.families.entry(name.to_owned()).or_default();
                    if f.kind.is_some() {
                        return Err(at(format!("second TYPE line for {name}")));
                    }
                    if !f.samples.is_empty() {
                        return Err(at(format!("TYPE for {name} after its samples")));
                    }
                    f.kind = Some(kind.to_owned());
                }
                (Some("HELP"), Some(name), _) if !valid_name(name) => {
                    return Err(at(format!("bad metric name {name:?}")));
                }
                _ => {}
            }
            continue;
        }
        let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let value =
            fields.next().and_then(parse_value).ok_or_else(|| at(format!("sample {name} has no valid value")))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| at(format!("bad timestamp {ts:?}")))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing text after the sample".into()));
        }
        let mut sorted = labels.clone();
        sorted.sort();
        if !seen_series.insert(format!("{name}{sorted:?}")) {
            return Err(at(format!("series {name}{sorted:?} appears twice")));
        }
        let family = family_of(name, &exp.families).to_owned();
        exp.families.entry(family).or_default().samples.push(Sample { name: name.to_owned(), labels, value });
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
                .and_then(|(_, v)| parse_value(v))
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
