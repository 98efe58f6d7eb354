//! Coloured labels for the audit, backup and smoke commands, only when a person is watching
//! (stdout is a terminal and `NO_COLOR` is unset). Piped output stays plain. Progress lines
//! are indicatif's (`crate::progress`).

use std::io::IsTerminal;

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
