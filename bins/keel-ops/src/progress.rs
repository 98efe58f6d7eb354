//! Progress on stderr for the long commands (backup export, verify and restore, the audit,
//! telemetry export) through indicatif: drawn only when stderr is a terminal, so piped and
//! redirected output, and `--json`, carry nothing but the result.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

/// How often the spinner moves while a single slow statement runs (a big table's first rows,
/// the final commit): often enough to show the command is alive, rarely enough to cost nothing.
const TICK: Duration = Duration::from_millis(120);

const SPINNER: &str = "{spinner} {msg} ({elapsed})";
const COUNT: &str = "{spinner} {msg}: {human_pos} rows ({elapsed})";
const BAR: &str = "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} rows ({eta} left)";

/// One line of progress; cleared when finished or dropped, so the command's own output (and
/// an error message) starts on a clean line.
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Draws on stderr only when stderr is a terminal.
    pub(crate) fn stderr() -> Self {
        Self::to(ProgressDrawTarget::stderr())
    }

    fn to(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(None, target).with_style(style(SPINNER));
        // A hidden bar needs no ticker thread.
        if !bar.is_hidden() {
            bar.enable_steady_tick(TICK);
        }
        Self { bar }
    }

    /// A new step without a row count: a spinner with `msg`.
    pub(crate) fn phase(&self, msg: &str) {
        self.bar.set_message(msg.to_owned());
        self.bar.set_style(style(SPINNER));
        self.bar.unset_length();
        self.bar.set_position(0);
    }

    /// A new step over rows: a bar when `total` (which may be an estimate) is known, else a
    /// running count.
    pub(crate) fn rows(&self, msg: &str, total: Option<u64>) {
        self.bar.reset();
        self.bar.set_message(msg.to_owned());
        match total.filter(|&n| n > 0) {
            Some(n) => {
                self.bar.set_style(style(BAR));
                self.bar.set_length(n);
            }
            None => {
                self.bar.set_style(style(COUNT));
                self.bar.unset_length();
            }
        }
    }

    /// Rows done so far in the current step.
    pub(crate) fn position(&self, rows: u64) {
        // An estimate can fall short of the real count: the bar stays full rather than lie.
        if self.bar.length().is_some_and(|len| rows > len) {
            self.bar.set_length(rows);
        }
        self.bar.set_position(rows);
    }

    /// Erases the line.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Whether anything is drawn (stderr is a terminal).
    #[cfg(test)]
    fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants checked by the tests below; the fallback is never reached.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_parse() {
        for t in [SPINNER, COUNT, BAR] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn a_hidden_target_draws_nothing_and_still_counts() {
        let p = Progress::to(ProgressDrawTarget::hidden());
        assert!(p.is_hidden());
        p.rows("exporting keel_jobs", Some(10));
        p.position(4);
        assert_eq!(p.bar.position(), 4);
        p.position(12);
        assert_eq!(p.bar.length(), Some(12), "an estimate that fell short grows with the count");
        p.phase("committing…");
        assert_eq!(p.bar.length(), None);
        p.finish();
    }
}
