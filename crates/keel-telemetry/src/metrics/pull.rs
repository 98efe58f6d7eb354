//! Counter and gauge families read at scrape time: a closure registered by the binary (which
//! reads a domain crate's own counters) or a snapshot its owner pushes. Each is a
//! prometheus-client [`Collector`], so the registry asks for the samples while it encodes.

use super::desc::{FamilyDesc, MetricsError, Sample};
use super::MetricKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub(crate) type Read = Box<dyn Fn() -> Vec<Sample> + Send + Sync>;
type Snapshot = Arc<Mutex<BTreeMap<Vec<String>, f64>>>;

pub(crate) enum Source {
    Closure(Read),
    Pushed(Snapshot),
}

/// A counter or gauge family whose samples come from its [`Source`] at each scrape.
pub(crate) struct PullFamily {
    pub(crate) desc: FamilyDesc,
    pub(crate) source: Source,
}

impl std::fmt::Debug for PullFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullFamily").field("name", &self.desc.name).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PullFamily {
    /// The samples to write, sorted by label values. Samples with the wrong number of label
    /// values or a repeated label set (collector bugs) are left out and logged, never written
    /// as invalid text; counters with a negative or NaN value likewise.
    fn samples(&self) -> BTreeMap<Vec<String>, f64> {
        let d = &self.desc;
        let raw: Vec<(Vec<String>, f64)> = match &self.source {
            Source::Closure(c) => c().into_iter().map(|s| (s.labels, s.value)).collect(),
            Source::Pushed(s) => lock(s).iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        let mut seen = BTreeMap::new();
        for (labels, value) in raw {
            let bad_counter = d.kind == MetricKind::Counter && (value.is_nan() || value < 0.0);
            if labels.len() != d.labels.len() || bad_counter || seen.contains_key(&labels) {
                tracing::warn!(metric = %d.name, ?labels, value, "metric sample left out: wrong label count, repeated label set or invalid counter value");
                continue;
            }
            seen.insert(labels, value);
        }
        seen
    }
}

impl Collector for PullFamily {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let d = &self.desc;
        let samples = self.samples();
        // A family with nothing to report is left out (as client_golang does): a HELP/TYPE
        // pair without samples is legal but trips stricter readers.
        if samples.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(d.base_name(), &d.help, None, d.kind.prometheus())?;
        for (values, value) in &samples {
            let pairs = d.pairs(values);
            let sample = family.encode_family(&pairs)?;
            // Whole numbers (most counts) are written as integers: `3`, not `3.0`.
            let whole = value.fract() == 0.0 && value.abs() < 9.0e15;
            match (d.kind, whole) {
                (MetricKind::Counter, true) => ConstCounter::new(*value as u64).encode(sample)?,
                (MetricKind::Counter, false) => ConstCounter::new(*value).encode(sample)?,
                (_, true) => ConstGauge::new(*value as i64).encode(sample)?,
                (_, false) => ConstGauge::new(*value).encode(sample)?,
            }
        }
        Ok(())
    }
}

/// A family whose samples are pushed by their owner (e.g. after each queue snapshot).
#[derive(Clone)]
pub struct PushedFamily {
    pub(crate) desc: FamilyDesc,
    pub(crate) samples: Snapshot,
}

impl PushedFamily {
    pub(crate) fn new(desc: FamilyDesc) -> (PushedFamily, Snapshot) {
        let samples: Snapshot = Arc::default();
        (PushedFamily { desc, samples: samples.clone() }, samples)
    }

    /// Sets the value of one label set.
    pub fn set(&self, labels: &[&str], value: f64) -> Result<(), MetricsError> {
        self.desc.check_width(labels.len())?;
        let key = labels.iter().map(|l| l.to_string()).collect();
        lock(&self.samples).insert(key, value);
        Ok(())
    }

    /// Replaces every sample at once, so label sets that disappeared stop being written.
    pub fn replace(&self, samples: Vec<Sample>) -> Result<(), MetricsError> {
        for s in &samples {
            self.desc.check_width(s.labels.len())?;
        }
        *lock(&self.samples) = samples.into_iter().map(|s| (s.labels, s.value)).collect();
        Ok(())
    }
}
