//! Remembers the last health state so changes are logged once, not on every probe.

use crate::check::CheckStatus;
use crate::report::{HealthReport, OverallStatus};
use std::fmt;
use std::sync::{Mutex, PoisonError};

/// The part of a report whose change is worth a log line: the overall status and which
/// services are not ok, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    /// The overall verdict.
    pub status: OverallStatus,
    /// Non-ok services in registration order, required and informational alike.
    pub failing: Vec<(String, CheckStatus)>,
}

impl HealthState {
    /// Everything ok.
    pub fn healthy() -> Self {
        Self { status: OverallStatus::Ok, failing: Vec::new() }
    }

    /// The state a report shows.
    pub fn of(report: &HealthReport) -> Self {
        let failing = report
            .outcomes()
            .iter()
            .filter(|o| o.status != CheckStatus::Ok)
            .map(|o| (o.name.clone(), o.status))
            .collect();
        Self { status: report.status(), failing }
    }
}

struct Failing<'a>(&'a [(String, CheckStatus)]);

impl fmt::Display for Failing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, status)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={status}")?;
        }
        Ok(())
    }
}

/// A change from one state to another, with each failing service's internal cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: HealthState,
    /// The state now.
    pub to: HealthState,
    /// `(service, cause)` for every non-ok service in the new state.
    pub causes: Vec<(String, String)>,
}

impl Transition {
    fn log(&self) {
        let failing = Failing(&self.to.failing);
        let causes = self.causes.iter().map(|(name, cause)| format!("{name}: {cause}")).collect::<Vec<_>>().join("; ");
        match (self.from.status, self.to.status) {
            (_, OverallStatus::Degraded) => {
                tracing::warn!(%failing, %causes, was = self.from.status.as_str(), "health degraded")
            }
            (OverallStatus::Degraded, OverallStatus::Ok) if self.to.failing.is_empty() => {
                tracing::info!("health recovered")
            }
            (OverallStatus::Degraded, OverallStatus::Ok) => {
                tracing::info!(%failing, %causes, "health recovered; informational checks still failing")
            }
            (OverallStatus::Ok, OverallStatus::Ok) => {
                tracing::info!(%failing, %causes, "informational health checks changed")
            }
        }
    }
}

/// Tracks the last observed state; [`StateTracker::observe`] logs and returns a transition
/// only when the state differs from the previous one. It starts healthy, so a first healthy
/// run is silent and a first degraded one is logged.
pub struct StateTracker {
    last: Mutex<HealthState>,
}

impl Default for StateTracker {
    fn default() -> Self {
        Self { last: Mutex::new(HealthState::healthy()) }
    }
}

impl StateTracker {
    /// A tracker that starts healthy.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last observed state.
    pub fn current(&self) -> HealthState {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records `report`'s state; logs and returns the transition if it changed.
    pub fn observe(&self, report: &HealthReport) -> Option<Transition> {
        let next = HealthState::of(report);
        let from = {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if *last == next {
                return None;
            }
            std::mem::replace(&mut *last, next.clone())
        };
        let causes = report
            .outcomes()
            .iter()
            .filter(|o| o.status != CheckStatus::Ok)
            .map(|o| (o.name.clone(), o.cause.clone().unwrap_or_else(|| o.status.to_string())))
            .collect();
        let transition = Transition { from, to: next, causes };
        transition.log();
        Some(transition)
    }
}
