//! [`FamilyDesc`] (a family's name, HELP, type and label names, checked when built),
//! [`Sample`] and [`MetricsError`].

use super::lint::{check_label_name, check_metric_name};
use super::MetricKind;

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
    /// Histogram bucket boundaries must be finite and strictly increasing.
    #[error("metric {name}: bucket boundaries must be finite and strictly increasing")]
    InvalidBuckets {
        /// The metric.
        name: String,
    },
    /// The family was registered with the wrong type for this use.
    #[error("metric {name}: registered as a {kind}, used as another type")]
    WrongKind {
        /// The metric.
        name: String,
        /// The type it was described with.
        kind: &'static str,
    },
}

/// A family's name, HELP text, type and label names, checked against the
/// `promtool check metrics` rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyDesc {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) kind: MetricKind,
    pub(crate) labels: Vec<String>,
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

    /// A histogram: a base unit in the name (`_seconds`), no `le` label of its own.
    pub fn histogram(name: &str, help: &str, labels: &[&str]) -> Result<FamilyDesc, MetricsError> {
        Self::build(name, help, MetricKind::Histogram, labels)
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

    /// The family's type.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// The name prometheus-client is given: counters without `_total`, which its encoders add
    /// back to every sample (and, in the text format, to HELP and TYPE).
    pub(crate) fn base_name(&self) -> &str {
        match self.kind {
            MetricKind::Counter => self.name.strip_suffix("_total").unwrap_or(&self.name),
            _ => &self.name,
        }
    }

    /// The series names this family writes, for collision checks.
    pub(crate) fn series_names(&self) -> Vec<String> {
        match self.kind {
            MetricKind::Histogram => {
                ["", "_bucket", "_sum", "_count"].iter().map(|s| format!("{}{s}", self.name)).collect()
            }
            _ => vec![self.name.clone()],
        }
    }

    pub(crate) fn check_width(&self, got: usize) -> Result<(), MetricsError> {
        if got == self.labels.len() {
            Ok(())
        } else {
            Err(MetricsError::LabelCount { name: self.name.clone(), want: self.labels.len(), got })
        }
    }

    /// `(name, value)` pairs for prometheus-client's label encoder.
    pub(crate) fn pairs<'a>(&'a self, values: &'a [String]) -> Vec<(&'a str, &'a str)> {
        self.labels.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect()
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
