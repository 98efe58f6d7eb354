//! [`MetricsRegistry`]: the families written at `/metrics`, validated when registered, held in
//! a prometheus-client registry that writes the text format or OpenMetrics.

use super::desc::{FamilyDesc, MetricsError, Sample};
use super::http::HttpServerMetrics;
use super::pull::{PullFamily, PushedFamily, Source};
use super::series::{CounterFamily, HistogramFamily};
use super::{CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE};
use prometheus_client::collector::Collector;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// Which exposition format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// The Prometheus text format, version 0.0.4 (`text/plain`): the default.
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`), ending in `# EOF`.
    OpenMetrics,
}

impl Exposition {
    /// OpenMetrics when `accept` lists `application/openmetrics-text` with a non-zero weight
    /// (as Prometheus does by default), the text format otherwise.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        let wants_om = accept.unwrap_or("").split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let zero = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f64>().ok()) == Some(0.0));
            media.eq_ignore_ascii_case("application/openmetrics-text") && !zero
        });
        if wants_om {
            Exposition::OpenMetrics
        } else {
            Exposition::Text
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Text => CONTENT_TYPE,
            Exposition::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

struct Inner {
    registry: Registry,
    /// Every series name written so far, so no two families collide.
    taken: BTreeSet<String>,
}

/// Everything `/metrics` writes: the HTTP histogram first, then the registered families in
/// registration order.
pub struct MetricsRegistry {
    http: Arc<HttpServerMetrics>,
    inner: RwLock<Inner>,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.inner.read().map(|i| i.taken.len()).unwrap_or(0);
        f.debug_struct("MetricsRegistry").field("series_names", &names).finish_non_exhaustive()
    }
}

impl MetricsRegistry {
    /// A registry holding only the (empty) HTTP histogram.
    pub fn new() -> Self {
        let http = Arc::new(HttpServerMetrics::new());
        let me = Self {
            http: http.clone(),
            inner: RwLock::new(Inner { registry: Registry::default(), taken: BTreeSet::new() }),
        };
        let desc = http.family.0.desc.clone();
        // The first family of an empty registry: cannot collide.
        let _ = me.add(&desc, Box::new(http.family.0.clone()));
        me
    }

    /// The HTTP duration histogram, for the timing layer.
    pub fn http(&self) -> Arc<HttpServerMetrics> {
        Arc::clone(&self.http)
    }

    /// Registers a counter or gauge family whose samples `collect` returns at each scrape (read
    /// the owner's counters there: `limiter.metrics()`, `cache.stats()`…). `collect` runs
    /// while `/metrics` is written, so it must be cheap and must not block.
    pub fn register<F>(&self, desc: FamilyDesc, collect: F) -> Result<(), MetricsError>
    where
        F: Fn() -> Vec<Sample> + Send + Sync + 'static,
    {
        self.pull(desc, Source::Closure(Box::new(collect)))
    }

    /// Registers a counter or gauge family whose owner pushes values into the returned handle.
    pub fn pushed(&self, desc: FamilyDesc) -> Result<PushedFamily, MetricsError> {
        let (handle, samples) = PushedFamily::new(desc.clone());
        self.pull(desc, Source::Pushed(samples))?;
        Ok(handle)
    }

    /// Registers a labelled histogram recorded in process, with `buckets` (finite, strictly
    /// increasing; `+Inf` is implied). Past `max_series` label sets, new ones are recorded
    /// with `fold_label` set to `_other`.
    pub fn histogram(
        &self,
        desc: FamilyDesc,
        buckets: &[f64],
        max_series: usize,
        fold_label: &str,
    ) -> Result<HistogramFamily, MetricsError> {
        let family = HistogramFamily::build(desc, buckets, max_series, fold_label)?;
        self.add(&family.0.desc, Box::new(family.0.clone()))?;
        Ok(family)
    }

    /// Registers a labelled counter recorded in process, capped like [`Self::histogram`].
    pub fn counter(
        &self,
        desc: FamilyDesc,
        max_series: usize,
        fold_label: &str,
    ) -> Result<CounterFamily, MetricsError> {
        let family = CounterFamily::build(desc, max_series, fold_label)?;
        self.add(&family.0.desc, Box::new(family.0.clone()))?;
        Ok(family)
    }

    fn pull(&self, desc: FamilyDesc, source: Source) -> Result<(), MetricsError> {
        if desc.kind == super::MetricKind::Histogram {
            return Err(MetricsError::WrongKind { name: desc.name.clone(), kind: desc.kind.as_str() });
        }
        let d = desc.clone();
        self.add(&d, Box::new(PullFamily { desc, source }))
    }

    fn add(&self, desc: &FamilyDesc, collector: Box<dyn Collector>) -> Result<(), MetricsError> {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let names = desc.series_names();
        if names.iter().any(|n| inner.taken.contains(n)) {
            return Err(MetricsError::Duplicate { name: desc.name.clone() });
        }
        inner.taken.extend(names);
        inner.registry.register_collector(collector);
        Ok(())
    }

    /// The whole exposition in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        self.encode(Exposition::Text)
    }

    /// The whole exposition in `format`.
    pub fn encode(&self, format: Exposition) -> String {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(8192);
        let res = match format {
            Exposition::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &inner.registry),
            Exposition::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &inner.registry),
        };
        // Writing to a String cannot fail; a collector's own error would be a bug of ours.
        if let Err(e) = res {
            tracing::error!(error = %e, "metrics exposition could not be written");
        }
        out
    }
}
