//! The `Check` trait a dependency implements, and what one run of a check says.

use futures::future::BoxFuture;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// What a check's failure means for the whole service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Criticality {
    /// Failure or timeout makes the service `degraded` (HTTP 503).
    Required,
    /// Failure or timeout is reported under `services` but the service stays `ok`.
    Informational,
}

/// The future a check returns; boxed so checks can live behind `dyn Check` in one registry.
pub type CheckFuture<'a> = BoxFuture<'a, Result<(), CheckError>>;

/// One dependency the service needs (or would like) to be healthy.
///
/// Checks run concurrently, each on its own task, and are dropped (cancelled) when their
/// budget runs out, so a check should hold no state that a cancellation at any `.await` would
/// corrupt. A check that can push its deadline to the far side (e.g. Postgres
/// `statement_timeout`) should, so nothing keeps running after the endpoint has answered.
pub trait Check: Send + Sync + 'static {
    /// The key under `services` in the report, e.g. `database`.
    fn name(&self) -> &str;

    /// Whether failing degrades the service (the default) or is only reported.
    fn criticality(&self) -> Criticality {
        Criticality::Required
    }

    /// This check's own cap. The run uses the smaller of it and the overall deadline.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Runs the check once. `budget` is how long it has before it is cancelled.
    fn check(&self, budget: Duration) -> CheckFuture<'_>;
}

/// A check's verdict as shown in the public body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The dependency answered in time.
    Ok,
    /// The dependency answered wrongly or not at all.
    Error,
    /// The dependency did not answer within the check's budget.
    Timeout,
}

impl CheckStatus {
    /// `ok`, `error` or `timeout`, as in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a check did not pass.
///
/// Two audiences, two fields: `detail` may be shown to callers and is a `&'static str`, so a
/// driver message, SQL text or connection string cannot end up there by accident; `cause` is
/// for the operator's log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {cause}")]
pub struct CheckError {
    status: CheckStatus,
    detail: Option<&'static str>,
    cause: String,
}

impl CheckError {
    /// The dependency answered wrongly or not at all (refused, bad credentials, query error).
    pub fn error(cause: impl fmt::Display) -> Self {
        Self { status: CheckStatus::Error, detail: None, cause: cause.to_string() }
    }

    /// The dependency gave up on time itself (e.g. the server cancelled the probe at
    /// `statement_timeout`); reported the same as the runner cutting the check off.
    pub fn timeout(cause: impl fmt::Display) -> Self {
        Self { status: CheckStatus::Timeout, detail: None, cause: cause.to_string() }
    }

    /// A short, fixed description safe to show to callers, like `"no database connection in time"`.
    pub fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// `Error` or `Timeout`, never `Ok`.
    pub fn status(&self) -> CheckStatus {
        self.status
    }

    /// The public description, if one was given.
    pub fn detail(&self) -> Option<&'static str> {
        self.detail
    }

    /// For logs only.
    pub fn cause(&self) -> &str {
        &self.cause
    }
}

/// What one check said in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The check's name.
    pub name: String,
    /// Whether it could degrade the service.
    pub criticality: Criticality,
    /// Its verdict.
    pub status: CheckStatus,
    /// Safe to show to callers (see [`CheckError::with_detail`]).
    pub detail: Option<&'static str>,
    /// For logs only; never serialized into the public body.
    pub cause: Option<String>,
    /// Time from the check's start to its verdict (cut off at its budget).
    pub elapsed: Duration,
}

impl CheckOutcome {
    /// Whether this outcome makes the service degraded.
    pub fn degrades(&self) -> bool {
        self.criticality == Criticality::Required && self.status != CheckStatus::Ok
    }
}
