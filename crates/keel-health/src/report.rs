//! The health report and its exact JSON shape.

use crate::check::{CheckOutcome, CheckStatus};
use crate::section::SectionOutput;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The service's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverallStatus {
    /// Every required check passed (HTTP 200).
    Ok,
    /// A required check failed or timed out (HTTP 503).
    Degraded,
}

impl OverallStatus {
    /// `ok` or `degraded`, as in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
        }
    }

    /// The HTTP status an endpoint should answer with: 200 or 503.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::Degraded => 503,
        }
    }
}

impl Serialize for OverallStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The service name that is always present and always `ok`: if this process can answer, it is up.
pub const APP_SERVICE: &str = "app";

/// One health run's answer.
///
/// Serializes as
/// `{"status":"ok","checked_at":"2026-01-02T03:04:05.678Z","services":{"app":"ok","database":"ok"}}`,
/// services in registration order after `app`, then one top-level key per extra section.
/// Internal causes and timings are available from the accessors and never serialized.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    status: OverallStatus,
    checked_at: DateTime<Utc>,
    outcomes: Vec<CheckOutcome>,
    sections: Vec<SectionOutput>,
}

impl HealthReport {
    /// Builds a report; the overall status follows from the outcomes (any required check not
    /// `ok` means degraded).
    pub fn new(checked_at: DateTime<Utc>, outcomes: Vec<CheckOutcome>) -> Self {
        let status =
            if outcomes.iter().any(CheckOutcome::degrades) { OverallStatus::Degraded } else { OverallStatus::Ok };
        Self { status, checked_at, outcomes, sections: Vec::new() }
    }

    /// The overall verdict.
    pub fn status(&self) -> OverallStatus {
        self.status
    }

    /// True when the overall verdict is `ok`.
    pub fn is_ok(&self) -> bool {
        self.status == OverallStatus::Ok
    }

    /// 200 when ok, 503 when degraded.
    pub fn http_status(&self) -> u16 {
        self.status.http_status()
    }

    /// When the run started.
    pub fn checked_at(&self) -> DateTime<Utc> {
        self.checked_at
    }

    /// Every check's outcome, in registration order, with internal causes and timings.
    pub fn outcomes(&self) -> &[CheckOutcome] {
        &self.outcomes
    }

    /// The extra sections, if the run included them.
    pub fn sections(&self) -> &[SectionOutput] {
        &self.sections
    }

    /// The status of one service by name (`app` included).
    pub fn service(&self, name: &str) -> Option<CheckStatus> {
        if name == APP_SERVICE {
            return Some(CheckStatus::Ok);
        }
        self.outcomes.iter().find(|o| o.name == name).map(|o| o.status)
    }

    /// One section by name.
    pub fn section(&self, name: &str) -> Option<&SectionOutput> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The same report with extra sections appended to the body.
    pub fn with_sections(mut self, sections: Vec<SectionOutput>) -> Self {
        self.sections.extend(sections);
        self
    }
}

struct Services<'a>(&'a [CheckOutcome]);

impl Serialize for Services<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len() + 1))?;
        map.serialize_entry(APP_SERVICE, &CheckStatus::Ok)?;
        for o in self.0 {
            map.serialize_entry(&o.name, &o.status)?;
        }
        map.end()
    }
}

impl Serialize for HealthReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3 + self.sections.len()))?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("checked_at", &self.checked_at.to_rfc3339_opts(SecondsFormat::Millis, true))?;
        map.serialize_entry("services", &Services(&self.outcomes))?;
        for section in &self.sections {
            map.serialize_entry(&section.name, &section.value)?;
        }
        map.end()
    }
}
