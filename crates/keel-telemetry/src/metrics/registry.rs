//! [`MetricsRegistry`]: the families rendered at `/metrics`, validated when registered.

use super::http::{HttpServerMetrics, HTTP_DURATION_METRIC};
use super::lint::{check_label_name, check_metric_name};
use super::{text, MetricKind};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

/// A family or sample refused by the registry; the message names the metric and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// The name breaks a Prometheus naming rule (characters, `_total` on counters only, units).
    #[error("metric {name}: {reason}")]
    InvalidName {
        /// The metric.
        name: String,
        /// The rule broken.
        reason: String,
    },
    /// A label name is invalid, reserved or listed twice.
    #[error("metric {name}: label {reason}")]
    InvalidLabel {
        /// The metric.
        name: String,
        /// The label and the rule broken.
        reason: String,
    },
    /// The HELP text is empty.
    #[error("metric {name}: HELP text is required (say what is counted and in which unit)")]
    MissingHelp {
        /// The metric.
        name: String,
    },
    /// A family of that name exists already.
    #[error("metric {name} is already registered (or collides with a histogram series)")]
    Duplicate {
        /// The metric.
        name: String,
    },
    /// A sample's label values do not match the family's label names.
    #[error("metric {name}: {got} label values given for {want} label names")]
    LabelCount {
        /// The metric.
        name: String,
        /// Label names of the family.
        want: usize,
        /// Label values given.
        got: usize,
    },
}

/// A counter or gauge family: its name, HELP text and label names, checked against the
/// `promtool check metrics` rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyDesc {
    name: String,
    help: String,
    kind: MetricKind,
    labels: Vec<String>,
}

impl FamilyDesc {
    /// A counter: the name must end in `_total` and use base units (`_seconds_total`).
    pub fn counter(name: &str, help: &str, labels: &[&str]) -> Result<FamilyDesc, MetricsError> {
        Self::build(name, help, MetricKind::Counter, labels)
    }

    /// A gauge: no `_total` suffix.
    pub fn gauge(name: &str, help: &str, labels: &[&str]) -> Result<FamilyDesc, MetricsError> {
        Self::build(name, help, MetricKind::Gauge, labels)
    }

    fn build(name: &str, help: &str, kind: MetricKind, labels: &[&str]) -> Result<FamilyDesc, MetricsError> {
        check_metric_name(name, kind).map_err(|reason| MetricsError::InvalidName { name: name.into(), reason })?;
        if help.trim().is_empty() {
            return Err(MetricsError::MissingHelp { name: name.into() });
        }
        for (i, l) in labels.iter().enumerate() {
            check_label_name(l, kind).map_err(|reason| MetricsError::InvalidLabel { name: name.into(), reason })?;
            if labels[..i].contains(l) {
                return Err(MetricsError::InvalidLabel { name: name.into(), reason: format!("{l:?} is listed twice") });
            }
        }
        Ok(FamilyDesc {
            name: name.into(),
            help: help.into(),
            kind,
            labels: labels.iter().map(|l| l.to_string()).collect(),
        })
    }

    /// The family's metric name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One sample: label values in the family's label order, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label values, one per label name of the family, in order.
    pub labels: Vec<String>,
    /// The sample's value.
    pub value: f64,
}

impl Sample {
    /// A sample with these label values.
    pub fn new<I, S>(labels: I, value: f64) -> Sample
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Sample { labels: labels.into_iter().map(Into::into).collect(), value }
    }
}

type Collector = Box<dyn Fn() -> Vec<Sample> + Send + Sync>;
type Snapshot = Arc<Mutex<BTreeMap<Vec<String>, f64>>>;

enum Source {
    Collector(Collector),
    Pushed(Snapshot),
}

struct Registered {
    desc: FamilyDesc,
    source: Source,
}

/// A family whose samples are pushed by their owner (e.g. after each queue snapshot).
#[derive(Clone)]
pub struct PushedFamily {
    name: String,
    width: usize,
    samples: Snapshot,
}

impl PushedFamily {
    /// Sets the value of one label set.
    pub fn set(&self, labels: &[&str], value: f64) -> Result<(), MetricsError> {
        self.check(labels.len())?;
        let key = labels.iter().map(|l| l.to_string()).collect();
        lock(&self.samples).insert(key, value);
        Ok(())
    }

    /// Replaces every sample at once, so label sets that disappeared stop being rendered.
    pub fn replace(&self, samples: Vec<Sample>) -> Result<(), MetricsError> {
        for s in &samples {
            self.check(s.labels.len())?;
        }
        *lock(&self.samples) = samples.into_iter().map(|s| (s.labels, s.value)).collect();
        Ok(())
    }

    fn check(&self, got: usize) -> Result<(), MetricsError> {
        if got == self.width {
            Ok(())
        } else {
            Err(MetricsError::LabelCount { name: self.name.clone(), want: self.width, got })
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything `/metrics` renders: the HTTP histogram first, then the registered families in
/// registration order.
pub struct MetricsRegistry {
    http: Arc<HttpServerMetrics>,
    families: RwLock<Vec<Registered>>,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRegistry {
    /// A registry holding only the (empty) HTTP histogram.
    pub fn new() -> Self {
        Self { http: Arc::new(HttpServerMetrics::new()), families: RwLock::new(Vec::new()) }
    }

    /// The HTTP duration histogram, for the timing layer.
    pub fn http(&self) -> Arc<HttpServerMetrics> {
        Arc::clone(&self.http)
    }

    /// Registers a family whose samples `collect` returns at each scrape (read the owner's
    /// counters there: `limiter.metrics()`, `cache.stats()`…). `collect` runs while
    /// `/metrics` renders, so it must be cheap and must not block.
    pub fn register<F>(&self, desc: FamilyDesc, collect: F) -> Result<(), MetricsError>
    where
        F: Fn() -> Vec<Sample> + Send + Sync + 'static,
    {
        self.add(desc, Source::Collector(Box::new(collect)))
    }

    /// Registers a family whose owner pushes values into the returned handle.
    pub fn pushed(&self, desc: FamilyDesc) -> Result<PushedFamily, MetricsError> {
        let samples: Snapshot = Arc::default();
        let handle = PushedFamily { name: desc.name.clone(), width: desc.labels.len(), samples: Arc::clone(&samples) };
        self.add(desc, Source::Pushed(samples))?;
        Ok(handle)
    }

    fn add(&self, desc: FamilyDesc, source: Source) -> Result<(), MetricsError> {
        let mut families = self.families.write().unwrap_or_else(|e| e.into_inner());
        let reserved = [
            HTTP_DURATION_METRIC.to_owned(),
            format!("{HTTP_DURATION_METRIC}_bucket"),
            format!("{HTTP_DURATION_METRIC}_sum"),
            format!("{HTTP_DURATION_METRIC}_count"),
        ];
        if reserved.contains(&desc.name) || families.iter().any(|f| f.desc.name == desc.name) {
            return Err(MetricsError::Duplicate { name: desc.name });
        }
        families.push(Registered { desc, source });
        Ok(())
    }

    /// The whole exposition. Samples with the wrong number of label values or a repeated label
    /// set (collector bugs) are left out and logged, never rendered as invalid text; counters
    /// with a negative or NaN value likewise.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.http.render(&mut out);
        let families = self.families.read().unwrap_or_else(|e| e.into_inner());
        for f in families.iter() {
            let d = &f.desc;
            let samples: Vec<(Vec<String>, f64)> = match &f.source {
                Source::Collector(c) => c().into_iter().map(|s| (s.labels, s.value)).collect(),
                Source::Pushed(s) => lock(s).iter().map(|(k, v)| (k.clone(), *v)).collect(),
            };
            let mut seen = BTreeMap::new();
            for (labels, value) in samples {
                let bad_counter = d.kind == MetricKind::Counter && (value.is_nan() || value < 0.0);
                if labels.len() != d.labels.len() || bad_counter || seen.contains_key(&labels) {
                    tracing::warn!(metric = %d.name, ?labels, value, "metric sample left out: wrong label count, repeated label set or invalid counter value");
                    continue;
                }
                seen.insert(labels, value);
            }
            text::header(&mut out, &d.name, &d.help, d.kind.as_str());
            for (labels, value) in seen {
                let pairs: Vec<(&str, &str)> =
                    d.labels.iter().map(String::as_str).zip(labels.iter().map(String::as_str)).collect();
                text::sample(&mut out, &d.name, &pairs, value);
            }
        }
        out
    }
}
