//! Labelled families recorded in process ([`HistogramFamily`], [`CounterFamily`]), with a cap
//! on distinct label sets: past it, new label sets are folded into one overflow series, so a
//! misbehaving label source (a route function, job kinds read from the database) cannot grow
//! the exposition without bound.

use super::desc::{FamilyDesc, MetricsError};
use super::MetricKind;
use dashmap::DashMap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The value the folded label takes once a family's series cap is reached.
pub const OVERFLOW_LABEL: &str = "_other";

struct Entry<M> {
    metric: M,
    /// Observations so far (prometheus-client exposes a histogram's count only to tests).
    count: AtomicU64,
}

pub(crate) struct Capped<M> {
    pub(crate) desc: FamilyDesc,
    series: DashMap<Vec<String>, Entry<M>>,
    make: Box<dyn Fn() -> M + Send + Sync>,
    max_series: usize,
    /// Index of the label replaced by [`OVERFLOW_LABEL`] past the cap.
    fold: usize,
}

impl<M> Capped<M> {
    pub(crate) fn new(
        desc: FamilyDesc,
        max_series: usize,
        fold_label: &str,
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Result<Self, MetricsError> {
        let fold = desc.labels.iter().position(|l| l == fold_label).ok_or_else(|| MetricsError::InvalidLabel {
            name: desc.name.clone(),
            reason: format!("{fold_label:?} (the label folded past the series cap) is not one of its labels"),
        })?;
        Ok(Self { desc, series: DashMap::new(), make: Box::new(make), max_series, fold })
    }

    /// Runs `f` on the series of `labels`, created if new (or the overflow series past the cap).
    fn with(&self, labels: &[&str], f: impl FnOnce(&M)) -> Result<(), MetricsError> {
        self.desc.check_width(labels.len())?;
        let mut key: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        if let Some(e) = self.series.get(&key) {
            f(&e.metric);
            e.count.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if self.series.len() >= self.max_series {
            key[self.fold] = OVERFLOW_LABEL.to_owned();
        }
        let e = self.series.entry(key).or_insert_with(|| Entry { metric: (self.make)(), count: AtomicU64::new(0) });
        f(&e.metric);
        e.count.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn count(&self, labels: &[&str]) -> u64 {
        let key: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        self.series.get(&key).map(|e| e.count.load(Ordering::Relaxed)).unwrap_or(0)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }
}

impl<M> std::fmt::Debug for Capped<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capped").field("name", &self.desc.name).field("series", &self.series.len()).finish()
    }
}

impl<M: EncodeMetric + Clone + Send + Sync + 'static> Collector for Capped<M> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let d = &self.desc;
        // Copied out first (clones share the series' state), so no map shard stays locked
        // while the text is written; sorted for a stable exposition.
        let mut rows: Vec<(Vec<String>, M)> =
            self.series.iter().map(|e| (e.key().clone(), e.value().metric.clone())).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        // Nothing observed yet: left out, like an empty pull family.
        if rows.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(d.base_name(), &d.help, None, d.kind.prometheus())?;
        for (values, metric) in &rows {
            let pairs = d.pairs(values);
            metric.encode(family.encode_family(&pairs)?)?;
        }
        Ok(())
    }
}

/// A labelled histogram family with a series cap. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct HistogramFamily(pub(crate) Arc<Capped<Histogram>>);

impl HistogramFamily {
    pub(crate) fn build(
        desc: FamilyDesc,
        buckets: &[f64],
        max_series: usize,
        fold_label: &str,
    ) -> Result<Self, MetricsError> {
        if desc.kind != MetricKind::Histogram {
            return Err(MetricsError::WrongKind { name: desc.name.clone(), kind: desc.kind.as_str() });
        }
        if buckets.is_empty() || buckets.iter().any(|b| !b.is_finite()) || buckets.windows(2).any(|w| w[0] >= w[1]) {
            return Err(MetricsError::InvalidBuckets { name: desc.name.clone() });
        }
        let buckets = buckets.to_vec();
        Ok(Self(Arc::new(Capped::new(desc, max_series, fold_label, move || Histogram::new(buckets.iter().copied()))?)))
    }

    /// Records one observation (in the family's base unit, seconds for durations) for the
    /// label values given in the family's label order.
    pub fn observe(&self, labels: &[&str], value: f64) -> Result<(), MetricsError> {
        self.0.with(labels, |h| h.observe(value))
    }

    /// Observations recorded so far for one label set (tests and diagnostics).
    pub fn count(&self, labels: &[&str]) -> u64 {
        self.0.count(labels)
    }
}

/// A labelled counter family recorded in process, with a series cap. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CounterFamily(pub(crate) Arc<Capped<Counter>>);

impl CounterFamily {
    pub(crate) fn build(desc: FamilyDesc, max_series: usize, fold_label: &str) -> Result<Self, MetricsError> {
        if desc.kind != MetricKind::Counter {
            return Err(MetricsError::WrongKind { name: desc.name.clone(), kind: desc.kind.as_str() });
        }
        Ok(Self(Arc::new(Capped::new(desc, max_series, fold_label, Counter::default)?)))
    }

    /// Adds one for the label values given in the family's label order.
    pub fn inc(&self, labels: &[&str]) -> Result<(), MetricsError> {
        self.0.with(labels, |c| {
            c.inc();
        })
    }

    /// The count so far for one label set (tests and diagnostics).
    pub fn get(&self, labels: &[&str]) -> u64 {
        self.0.count(labels)
    }
}
