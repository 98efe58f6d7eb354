//! Incident switches: environment flags that stop scheduled work without a deploy, checked on
//! every tick before any database connection is opened.
//!
//! - `DISABLE_CRON_JOBS=true`, `DISABLE_SCHEDULED_WORK=true`: pause every scheduled task,
//!   including the job-processing loops (`background_job`, `webhook_delivery`, …).
//! - `DISABLE_<TASK>_CRON=true`: pause one task (`DISABLE_BACKGROUND_JOB_CRON`).
//! - `<KIND>_QUEUE_DISABLED=true`: run that job kind synchronously in the enqueuing process
//!   instead of queueing it (`EMAIL_SEND_QUEUE_DISABLED`), see [`crate::Dispatcher`].
//!
//! A process's environment cannot change while it runs, so switches can also live in a file
//! named by `KEEL_SWITCHES_FILE` (see [`crate::switches_file`]): a switch the file names takes
//! the file's value, one it does not name keeps the environment's. The binaries re-read the
//! file on SIGHUP and when it changes ([`SwitchBoard::reload_file`]).

use crate::names::env_name;
use crate::switches_file::{self, FileSwitches};
use keel_config::{Problem, Problems, Reader, Source};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

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
            if is_switch_name(&key) && r.bool(&key, false) {
                on.insert(key);
            }
        }
        r.finish()?;
        Ok(Self { on })
    }

    /// This reading with `file`'s values laid over it: a switch the file names takes the
    /// file's value (so `NAME=false` there clears an environment switch), the rest stay.
    pub fn overlaid(&self, file: &FileSwitches) -> Self {
        let mut on = self.on.clone();
        for (name, value) in file.values() {
            if *value {
                on.insert(name.to_owned());
            } else {
                on.remove(name);
            }
        }
        Self { on }
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

/// Whether `name` has the form of a switch: a global one, `DISABLE_<TASK>_CRON` or
/// `<KIND>_QUEUE_DISABLED`.
pub fn is_switch_name(name: &str) -> bool {
    GLOBAL_SWITCHES.contains(&name)
        || (name.starts_with("DISABLE_") && name.ends_with("_CRON") && name.len() > "DISABLE__CRON".len())
        || (name.ends_with("_QUEUE_DISABLED") && name.len() > "_QUEUE_DISABLED".len())
}

/// `DISABLE_<TASK>_CRON` for a task name.
pub fn task_switch(task: &str) -> String {
    format!("DISABLE_{}_CRON", env_name(task))
}

/// `<KIND>_QUEUE_DISABLED` for a job kind.
pub fn kind_switch(kind: &str) -> String {
    format!("{}_QUEUE_DISABLED", env_name(kind))
}

/// The variable naming the switches file.
pub const SWITCHES_FILE_VAR: &str = "KEEL_SWITCHES_FILE";

/// The live switches, shared by every loop of a process. [`SwitchBoard::reload`] and
/// [`SwitchBoard::reload_file`] swap in a new reading without a restart.
#[derive(Debug, Clone, Default)]
pub struct SwitchBoard(Arc<Board>);

#[derive(Debug, Default)]
struct Board {
    current: RwLock<Arc<Switches>>,
    /// The environment's reading, under the file's values.
    env: RwLock<Switches>,
    /// `KEEL_SWITCHES_FILE`, if set.
    file: Option<PathBuf>,
    /// The file's text at the last read (applied or refused), so a poll that finds it
    /// unchanged does nothing and a bad edit is reported once, not every poll.
    last_text: Mutex<Option<String>>,
}

impl SwitchBoard {
    /// A board with a fixed reading and no file.
    pub fn new(s: Switches) -> Self {
        Self(Arc::new(Board {
            current: RwLock::new(Arc::new(s.clone())),
            env: RwLock::new(s),
            file: None,
            last_text: Mutex::new(None),
        }))
    }

    /// Reads the switches from `source` and, when `KEEL_SWITCHES_FILE` is set, from that file
    /// (which must exist: a mistyped path would otherwise never apply).
    pub fn from_source(source: &dyn Source) -> Result<Self, Problems> {
        let env = Switches::from_source(source);
        let file = source.get(SWITCHES_FILE_VAR).filter(|v| !v.trim().is_empty()).map(PathBuf::from);
        let read = file.as_deref().map(read_file);
        let mut problems = Vec::new();
        if let Err(p) = &env {
            problems.extend(p.0.clone());
        }
        if let Some(Err(p)) = &read {
            problems.extend(p.0.clone());
        }
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        let env = env.unwrap_or_default();
        let (current, last_text) = match read {
            Some(Ok((text, f))) => (env.overlaid(&f), Some(text)),
            _ => (env.clone(), None),
        };
        Ok(Self(Arc::new(Board {
            current: RwLock::new(Arc::new(current)),
            env: RwLock::new(env),
            file,
            last_text: Mutex::new(last_text),
        })))
    }

    /// Re-reads the environment switches from `source`, then the file. On a problem the
    /// previous reading stays in force.
    pub fn reload(&self, source: &dyn Source) -> Result<(), Problems> {
        let env = Switches::from_source(source)?;
        let overlay = match &self.0.file {
            Some(path) => Some(read_file(path)?),
            None => None,
        };
        *self.0.env.write().unwrap_or_else(|p| p.into_inner()) = env.clone();
        match overlay {
            Some((text, f)) => {
                *self.0.last_text.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
                self.set(env.overlaid(&f));
            }
            None => self.set(env),
        }
        Ok(())
    }

    /// Re-reads the switches file over the environment's reading (SIGHUP). `Ok(false)` when no
    /// file is configured. On a problem (unreadable file, bad line) the previous reading stays
    /// in force.
    pub fn reload_file(&self) -> Result<bool, Problems> {
        let Some(path) = &self.0.file else { return Ok(false) };
        let read = read_file(path);
        self.apply(read).map(|()| true)
    }

    /// Re-reads the file only if its text changed since the last read (the file watch).
    /// `Ok(true)` when a new reading was applied; an unchanged bad file is not reported again.
    pub fn reload_file_if_changed(&self) -> Result<bool, Problems> {
        let Some(path) = &self.0.file else { return Ok(false) };
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e));
        let seen = self.0.last_text.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match text {
            Ok(text) if seen.as_deref() == Some(text.as_str()) => Ok(false),
            Ok(text) => {
                let parsed = switches_file::parse(&text, path).map(|f| (text.clone(), f));
                if parsed.is_err() {
                    *self.0.last_text.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
                }
                self.apply(parsed).map(|()| true)
            }
            // A missing or unreadable file is reported once, until it reads again.
            Err(e) => {
                let mut last = self.0.last_text.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none() {
                    return Ok(false);
                }
                *last = None;
                Err(e)
            }
        }
    }

    fn apply(&self, read: Result<(String, FileSwitches), Problems>) -> Result<(), Problems> {
        let (text, f) = read?;
        *self.0.last_text.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
        let env = self.0.env.read().unwrap_or_else(|p| p.into_inner()).clone();
        self.set(env.overlaid(&f));
        Ok(())
    }

    /// The switches file, if one is configured.
    pub fn file(&self) -> Option<&Path> {
        self.0.file.as_deref()
    }

    /// Replaces the current reading with `s` (the file and environment readings are kept).
    pub fn set(&self, s: Switches) {
        *self.0.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
    }

    /// The current reading: a clone of an `Arc`, no I/O.
    pub fn current(&self) -> Arc<Switches> {
        self.0.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn unreadable(path: &Path, e: &std::io::Error) -> Problems {
    Problems(vec![Problem {
        var: SWITCHES_FILE_VAR.to_owned(),
        message: format!("cannot read {}: {e}", path.display()),
    }])
}

fn read_file(path: &Path) -> Result<(String, FileSwitches), Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))?;
    let f = switches_file::parse(&text, path)?;
    Ok((text, f))
}
