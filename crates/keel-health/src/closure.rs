//! Checks and sections made from closures, for dependencies that need no type of their own.

use crate::check::{Check, CheckError, CheckFuture, Criticality};
use crate::section::{Section, SectionFuture};
use futures::FutureExt;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// A check built by [`check_fn`].
pub struct FnCheck<F> {
    name: String,
    criticality: Criticality,
    timeout: Option<Duration>,
    f: F,
}

/// A required check named `name` that calls `f(budget)` on each run.
pub fn check_fn<F, Fut>(name: impl Into<String>, f: F) -> FnCheck<F>
where
    F: Fn(Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), CheckError>> + Send + 'static,
{
    FnCheck { name: name.into(), criticality: Criticality::Required, timeout: None, f }
}

impl<F> FnCheck<F> {
    /// Failure is reported but does not degrade the service.
    pub fn informational(mut self) -> Self {
        self.criticality = Criticality::Informational;
        self
    }

    /// This check's own cap (the overall deadline still applies).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<F, Fut> Check for FnCheck<F>
where
    F: Fn(Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), CheckError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn criticality(&self) -> Criticality {
        self.criticality
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        (self.f)(budget).boxed()
    }
}

/// A section built by [`section_fn`].
pub struct FnSection<F> {
    name: String,
    timeout: Option<Duration>,
    f: F,
}

/// A section named `name` that calls `f(budget)` on each run.
pub fn section_fn<F, Fut>(name: impl Into<String>, f: F) -> FnSection<F>
where
    F: Fn(Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, CheckError>> + Send + 'static,
{
    FnSection { name: name.into(), timeout: None, f }
}

impl<F> FnSection<F> {
    /// This section's own cap (the overall deadline still applies).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<F, Fut> Section for FnSection<F>
where
    F: Fn(Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, CheckError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn collect(&self, budget: Duration) -> SectionFuture<'_> {
        (self.f)(budget).boxed()
    }
}
