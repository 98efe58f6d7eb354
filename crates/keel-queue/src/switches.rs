//! Incident switches: environment flags that stop scheduled work without a deploy, checked on
//! every tick before any database connection is opened.
//!
//! - `DISABLE_CRON_JOBS=true`, `DISABLE_SCHEDULED_WORK=true`: pause every scheduled task,
//!   including the job-processing loops (`background_job`, `webhook_delivery`, …).
//! - `DISABLE_<TASK>_CRON=true`: pause one task (`DISABLE_BACKGROUND_JOB_CRON`).
//! - `<KIND>_QUEUE_DISABLED=true`: run that job kind synchronously in the enqueuing process
//!   instead of queueing it (`EMAIL_SEND_QUEUE_DISABLED`), see [`crate::Dispatcher`].
//!
//! A process's environment cannot change while it runs, so the binaries re-read their
//! configuration source on SIGHUP and hand it to [`SwitchBoard::reload`].

use crate::names::env_name;
use keel_config::{Problems, Reader, Source};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// The global switches, in the order they are reported.
pub const GLOBAL_SWITCHES: [&str; 2] = ["DISABLE_CRON_JOBS", "DISABLE_SCHEDULED_WORK"];

/// One reading of the switches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switches {
    /// Every switch variable set to true.
    on: BTreeSet<String>,
}

impl Switches {
    /// Reads every switch from `source`; a value that is not a boolean is a problem naming the
    /// variable, never silently "off".
    pub fn from_source(source: &dyn Source) -> Result<Self, Problems> {
        let mut r = Reader::new(source);
        let mut on = BTreeSet::new();
        let mut keys = source.keys();
        keys.sort();
        for key in keys {
            let is_switch = GLOBAL_SWITCHES.contains(&key.as_str())
                || (key.starts_with("DISABLE_") && key.ends_with("_CRON") && key.len() > "DISABLE__CRON".len())
                || (key.ends_with("_QUEUE_DISABLED") && key.len() > "_QUEUE_DISABLED".len());
            if is_switch && r.bool(&key, false) {
                on.insert(key);
            }
        }
        r.finish()?;
        Ok(Self { on })
    }

    /// Switches from explicit variable names (tests, or an ops override).
    pub fn with(vars: &[&str]) -> Self {
        Self { on: vars.iter().map(|v| (*v).to_owned()).collect() }
    }

    /// The variable that stops `task`, if any: a global switch or `DISABLE_<TASK>_CRON`.
    pub fn task_disabled_by(&self, task: &str) -> Option<String> {
        GLOBAL_SWITCHES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(std::iter::once(task_switch(task)))
            .find(|v| self.on.contains(v))
    }

    /// Whether `<KIND>_QUEUE_DISABLED` asks for `kind` to run inline instead of queued.
    pub fn kind_runs_inline(&self, kind: &str) -> bool {
        self.on.contains(&kind_switch(kind))
    }

    /// Every switch variable that is on, sorted.
    pub fn active(&self) -> impl Iterator<Item = &str> {
        self.on.iter().map(String::as_str)
    }
}

/// `DISABLE_<TASK>_CRON` for a task name.
pub fn task_switch(task: &str) -> String {
    format!("DISABLE_{}_CRON", env_name(task))
}

/// `<KIND>_QUEUE_DISABLED` for a job kind.
pub fn kind_switch(kind: &str) -> String {
    format!("{}_QUEUE_DISABLED", env_name(kind))
}

/// The live switches, shared by every loop of a process; [`SwitchBoard::reload`] swaps in a
/// new reading (on SIGHUP) without a restart.
#[derive(Debug, Clone, Default)]
pub struct SwitchBoard(Arc<RwLock<Arc<Switches>>>);

impl SwitchBoard {
    /// A board holding `s`.
    pub fn new(s: Switches) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(s))))
    }

    /// A board holding the switches read from `source`.
    pub fn from_source(source: &dyn Source) -> Result<Self, Problems> {
        Ok(Self::new(Switches::from_source(source)?))
    }

    /// Re-reads the switches. On a problem the previous reading stays in force.
    pub fn reload(&self, source: &dyn Source) -> Result<(), Problems> {
        let s = Switches::from_source(source)?;
        self.set(s);
        Ok(())
    }

    /// Swaps in a reading; every loop sees it at its next tick.
    pub fn set(&self, s: Switches) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
    }

    /// The current reading: a clone of an `Arc`, no I/O.
    pub fn current(&self) -> Arc<Switches> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
