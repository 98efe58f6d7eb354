//! `HealthService`: the registry of checks and sections, run single-flight under one deadline.

use crate::check::{Check, CheckOutcome, CheckStatus};
use crate::config::HealthConfig;
use crate::flight::{FlightError, SingleFlight};
use crate::report::{HealthReport, APP_SERVICE};
use crate::runner::{budget, run_checks, run_sections};
use crate::section::{Section, SectionOutput};
use crate::state::StateTracker;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Why a registry could not be built; each message names the offending name and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is empty, too long, or holds other characters than `a-z 0-9 _ -`.
    #[error("{kind} name {name:?} is invalid: use 1 to 64 characters of a-z, 0-9, '_' or '-'")]
    InvalidName {
        /// `check` or `section`.
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// The name is taken by the report itself (`app` for checks; `status`, `checked_at` and
    /// `services` for sections).
    #[error("{kind} name {name:?} is reserved: pick another name")]
    ReservedName {
        /// `check` or `section`.
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// Two checks (or two sections) share the name.
    #[error("{kind} name {name:?} is registered twice: each name must be unique")]
    DuplicateName {
        /// `check` or `section`.
        kind: &'static str,
        /// The name given.
        name: String,
    },
}

const SECTION_RESERVED: [&str; 3] = ["status", "checked_at", "services"];

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Collects checks and sections, then [`HealthServiceBuilder::build`] validates their names.
pub struct HealthServiceBuilder {
    config: HealthConfig,
    checks: Vec<Arc<dyn Check>>,
    sections: Vec<Arc<dyn Section>>,
    clock: Clock,
}

impl HealthServiceBuilder {
    /// Adds a check.
    pub fn check(mut self, check: impl Check) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// Adds a check already shared elsewhere.
    pub fn check_arc(mut self, check: Arc<dyn Check>) -> Self {
        self.checks.push(check);
        self
    }

    /// A section added to the body only by [`HealthService::check_with_sections`].
    pub fn section(mut self, section: impl Section) -> Self {
        self.sections.push(Arc::new(section));
        self
    }

    /// Adds a section already shared elsewhere.
    pub fn section_arc(mut self, section: Arc<dyn Section>) -> Self {
        self.sections.push(section);
        self
    }

    /// Where `checked_at` comes from; tests pin it.
    pub fn clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The service, or the first name that is invalid, reserved or taken twice.
    pub fn build(self) -> Result<HealthService, RegistryError> {
        let mut seen: Vec<&str> = Vec::new();
        for c in &self.checks {
            let name = c.name();
            check_name("check", name, &[APP_SERVICE], &seen)?;
            seen.push(name);
        }
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.sections {
            let name = s.name();
            check_name("section", name, &SECTION_RESERVED, &seen)?;
            seen.push(name);
        }
        Ok(HealthService {
            inner: Arc::new(Inner {
                config: self.config,
                checks: self.checks.into(),
                sections: self.sections.into(),
                clock: self.clock,
                tracker: StateTracker::new(),
                core: SingleFlight::new(),
                extra: SingleFlight::new(),
            }),
        })
    }
}

fn check_name(kind: &'static str, name: &str, reserved: &[&str], seen: &[&str]) -> Result<(), RegistryError> {
    if !valid_name(name) {
        return Err(RegistryError::InvalidName { kind, name: name.to_owned() });
    }
    if reserved.contains(&name) {
        return Err(RegistryError::ReservedName { kind, name: name.to_owned() });
    }
    if seen.contains(&name) {
        return Err(RegistryError::DuplicateName { kind, name: name.to_owned() });
    }
    Ok(())
}

struct Inner {
    config: HealthConfig,
    checks: Arc<[Arc<dyn Check>]>,
    sections: Arc<[Arc<dyn Section>]>,
    clock: Clock,
    tracker: StateTracker,
    core: SingleFlight<Arc<HealthReport>>,
    extra: SingleFlight<Arc<Vec<SectionOutput>>>,
}

/// Runs every registered check concurrently, each cut off at its budget, and answers within
/// the overall deadline however slow a dependency is. Concurrent callers share the run in
/// flight; a caller arriving after it finished starts a new one. Cheap to clone.
#[derive(Clone)]
pub struct HealthService {
    inner: Arc<Inner>,
}

impl HealthService {
    /// Starts a registry whose runs answer within `config`'s deadline.
    pub fn builder(config: HealthConfig) -> HealthServiceBuilder {
        HealthServiceBuilder { config, checks: Vec::new(), sections: Vec::new(), clock: Arc::new(Utc::now) }
    }

    /// The settings this service runs with.
    pub fn config(&self) -> HealthConfig {
        self.inner.config
    }

    /// The public report: `app` plus every check. State changes are logged once per change.
    pub async fn check(&self) -> HealthReport {
        let inner = Arc::clone(&self.inner);
        // The shared run is its own task; its check spans belong to the caller that started it.
        let caller = tracing::Span::current();
        match self.inner.core.run(move || tracing::Instrument::instrument(run_core(inner), caller)).await {
            Ok(report) => HealthReport::clone(&report),
            Err(e) => self.aborted_report(&e),
        }
    }

    /// The public report plus every section (for callers holding the internal credential).
    /// Sections run alongside the checks under the same deadline and never change the status.
    pub async fn check_with_sections(&self) -> HealthReport {
        let inner = Arc::clone(&self.inner);
        let extra = self
            .inner
            .extra
            .run(move || async move { Arc::new(run_sections(&inner.sections, inner.config.deadline).await) });
        let (report, sections) = futures::future::join(self.check(), extra).await;
        let sections = match sections {
            Ok(s) => Vec::clone(&s),
            Err(e) => self.aborted_sections(&e),
        };
        report.with_sections(sections)
    }

    /// Only reached if the shared run itself died (runtime shutting down): every check counts
    /// as failed, so the answer is an honest 503 rather than a hang or a false 200.
    fn aborted_report(&self, e: &FlightError) -> HealthReport {
        let outcomes = self
            .inner
            .checks
            .iter()
            .map(|c| CheckOutcome {
                name: c.name().to_owned(),
                criticality: c.criticality(),
                status: CheckStatus::Error,
                detail: None,
                cause: Some(e.to_string()),
                elapsed: Duration::ZERO,
            })
            .collect();
        HealthReport::new((self.inner.clock)(), outcomes)
    }

    fn aborted_sections(&self, e: &FlightError) -> Vec<SectionOutput> {
        let error = crate::check::CheckError::error(e);
        self.inner
            .sections
            .iter()
            .map(|s| SectionOutput::from_result(s.name().to_owned(), Err(error.clone()), Duration::ZERO))
            .collect()
    }

    /// The longest one run can take: the largest check or section budget, never above the
    /// deadline. Handlers can use it to size their own outer timeout.
    pub fn max_run_time(&self) -> Duration {
        let d = self.inner.config.deadline;
        let checks = self.inner.checks.iter().map(|c| budget(c.timeout(), d));
        let sections = self.inner.sections.iter().map(|s| budget(s.timeout(), d));
        checks.chain(sections).max().unwrap_or(Duration::ZERO)
    }
}

async fn run_core(inner: Arc<Inner>) -> Arc<HealthReport> {
    let checked_at = (inner.clock)();
    let outcomes = run_checks(&inner.checks, inner.config.deadline).await;
    let report = HealthReport::new(checked_at, outcomes);
    inner.tracker.observe(&report);
    Arc::new(report)
}
