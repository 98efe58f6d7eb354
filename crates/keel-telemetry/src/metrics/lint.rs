//! Metric and label name rules, mirroring `promtool check metrics` (client_golang's promlint):
//! valid characters, snake_case, no colons, base units, no abbreviated units, no type in the
//! name, `_total` exactly on counters, and the names and labels reserved for histograms.

use super::MetricKind;

const NON_BASE_UNITS: [(&str, &str); 15] = [
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("kelvins", "kelvin"),
    ("fahrenheit", "celsius"),
    ("rankine", "celsius"),
    ("inches", "meters"),
    ("yards", "meters"),
    ("miles", "meters"),
    ("bits", "bytes"),
    ("calories", "joules"),
    ("pounds", "grams"),
    ("ounces", "grams"),
    ("percent", "ratio (0 to 1)"),
];
const BASE_UNITS: [&str; 10] =
    ["amperes", "bytes", "celsius", "grams", "joules", "kelvin", "meters", "metres", "seconds", "volts"];
const UNIT_PREFIXES: [&str; 18] = [
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega", "mibi", "giga", "gibi",
    "tera", "tebi", "peta", "pebi",
];
const UNIT_ABBREVIATIONS: [&str; 14] = ["s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"];
const TYPE_WORDS: [&str; 5] = ["counter", "gauge", "summary", "histogram", "gauge_histogram"];

fn has_word(name: &str, word: &str) -> bool {
    name.contains(&format!("_{word}_")) || name.ends_with(&format!("_{word}"))
}

/// Checks a metric family name for `kind`; the error says what to change.
pub(crate) fn check_metric_name(name: &str, kind: MetricKind) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("{name:?} is not a valid metric name: use [a-z_][a-z0-9_]* (no colons)"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("{name:?}: metric names are snake_case, not camelCase or upper case"));
    }
    for seg in name.split('_') {
        if let Some((unit, base)) = NON_BASE_UNITS.iter().find(|(u, _)| *u == seg) {
            return Err(format!("{name:?}: use the base unit {base} instead of {unit}"));
        }
        for p in UNIT_PREFIXES {
            if let Some(rest) = seg.strip_prefix(p) {
                if BASE_UNITS.contains(&rest) {
                    return Err(format!("{name:?}: use the base unit {rest} instead of {seg}"));
                }
            }
        }
    }
    if let Some(a) = UNIT_ABBREVIATIONS.iter().find(|a| has_word(name, a)) {
        return Err(format!("{name:?}: spell the unit out (seconds, bytes) instead of the abbreviation {a:?}"));
    }
    if let Some(t) = TYPE_WORDS.iter().find(|t| has_word(name, t)) {
        return Err(format!("{name:?}: the metric type {t:?} must not be part of the name"));
    }
    let total = name.ends_with("_total");
    match kind {
        MetricKind::Counter if !total => return Err(format!("{name:?}: counter names end in _total")),
        MetricKind::Gauge | MetricKind::Histogram if total => {
            return Err(format!("{name:?}: only counters end in _total"));
        }
        _ => {}
    }
    if kind != MetricKind::Histogram {
        if let Some(s) = ["_bucket", "_count", "_sum"].iter().find(|s| name.ends_with(**s)) {
            return Err(format!("{name:?}: the suffix {s} is reserved for histograms and summaries"));
        }
    }
    if kind != MetricKind::Gauge && name.ends_with("_timestamp_seconds") {
        return Err(format!("{name:?}: only gauges end in _timestamp_seconds"));
    }
    Ok(())
}

pub(crate) fn check_label_name(label: &str, kind: MetricKind) -> Result<(), String> {
    let mut chars = label.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid || label.starts_with("__") {
        return Err(format!(
            "{label:?} is not a valid label name: use snake_case [a-z_][a-z0-9_]*, not starting with __"
        ));
    }
    if label == "quantile" || (label == "le" && kind != MetricKind::Histogram) {
        return Err(format!("the label {label:?} is reserved for histograms and summaries"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use MetricKind::*;

    #[test]
    fn accepts_conventional_names() {
        for (n, k) in [
            ("keel_ratelimit_decisions_total", Counter),
            ("keel_queue_jobs", Gauge),
            ("keel_queue_oldest_pending_age_seconds", Gauge),
            ("keel_orgcache_load_seconds_total", Counter),
            ("http_server_request_duration_seconds", Histogram),
            ("keel_build_timestamp_seconds", Gauge),
            ("keel_orgcache_weighted_size", Gauge),
        ] {
            assert_eq!(check_metric_name(n, k), Ok(()), "{n}");
        }
    }

    #[test]
    fn refuses_what_promtool_flags() {
        let cases = [
            ("keel_requests", Counter, "_total"),
            ("keel_jobs_total", Gauge, "only counters"),
            ("keel_latency_milliseconds", Gauge, "base unit seconds"),
            ("keel_latency_ms", Gauge, "abbreviation"),
            ("keel_uptime_hours", Gauge, "base unit seconds"),
            ("keel_size_kilobytes", Gauge, "base unit bytes"),
            ("keel_jobs_gauge", Gauge, "metric type"),
            ("keel_jobs_count", Gauge, "reserved"),
            ("keel_requestCount_total", Counter, "snake_case"),
            ("keel:jobs", Gauge, "valid metric name"),
            ("9jobs", Gauge, "valid metric name"),
            ("keel_seen_timestamp_seconds", Histogram, "timestamp"),
        ];
        for (n, k, why) in cases {
            let e = check_metric_name(n, k).unwrap_err();
            assert!(e.contains(why), "{n}: {e}");
        }
        assert!(check_label_name("policy", Counter).is_ok());
        assert!(check_label_name("le", Gauge).is_err());
        assert!(check_label_name("quantile", Gauge).is_err());
        assert!(check_label_name("statusClass", Gauge).is_err());
        assert!(check_label_name("__name", Gauge).is_err());
    }
}
