//! Terminal niceties shared by the audit, backup and smoke commands: a one-line progress
//! indicator on stderr and coloured labels, both only when a person is watching (a terminal,
//! and for colour no `NO_COLOR`). Piped output stays plain and progress-free.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(crate) struct Progress {
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

const REDRAW_EVERY: Duration = Duration::from_millis(100);

impl Progress {
    /// Draws on stderr only when stderr is a terminal.
    pub(crate) fn stderr() -> Self {
        Self { enabled: std::io::stderr().is_terminal(), last: None, drawn: false }
    }

    /// Replaces the progress line; throttled so tight loops cost nothing.
    pub(crate) fn set(&mut self, msg: &str) {
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        self.drawn = true;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{msg}");
        let _ = err.flush();
    }

    /// Like `set`, but always drawn (a new phase).
    pub(crate) fn phase(&mut self, msg: &str) {
        self.last = None;
        self.set(msg);
    }

    /// Erases the line so the command's own output starts clean.
    pub(crate) fn finish(&mut self) {
        if self.enabled && self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Colours for stdout, decided once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint(bool);

impl Paint {
    pub(crate) fn stdout() -> Self {
        Self(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
    }
    fn wrap(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    pub(crate) fn red(self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    pub(crate) fn yellow(self, s: &str) -> String {
        self.wrap("33", s)
    }
    pub(crate) fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub(crate) fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
}
