//! When a task is due: every fixed interval, or at the times of a cron expression (UTC).

use crate::clock::{plus, truncate_ms};
use crate::QueueError;
use chrono::{DateTime, Utc};
use std::str::FromStr;
use std::time::Duration;

/// When a scheduled task is due.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Due at once when first seen, then `interval` after each slot is taken.
    Every(Duration),
    /// Due at each time the expression matches (5 fields, or 6 with seconds; `@hourly`…).
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// Every `interval` (at least one second, the scheduler's resolution).
    pub fn every(interval: Duration) -> Self {
        Self::Every(interval.max(Duration::from_secs(1)))
    }

    /// Parses a cron expression; the error names the expression and the expected form.
    pub fn cron(expr: &str) -> Result<Self, QueueError> {
        croner::Cron::from_str(expr).map(|c| Self::Cron(Box::new(c))).map_err(|e| {
            QueueError::invalid(
                "cron expression",
                format!("{expr:?} does not parse ({e}); use five fields like \"*/5 * * * *\""),
            )
        })
    }

    /// When a task never scheduled before is first due.
    pub(crate) fn first_due(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Every(_) => now,
            Self::Cron(_) => self.next_after(now),
        }
    }

    /// The first slot strictly after `now`.
    pub(crate) fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Every(d) => plus(now, *d),
            // An expression with no future match (Feb 30) never comes due again.
            Self::Cron(c) => truncate_ms(c.find_next_occurrence(&now, false).unwrap_or(DateTime::<Utc>::MAX_UTC)),
        }
    }
}
