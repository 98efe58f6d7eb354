//! The switches file (`KEEL_SWITCHES_FILE`): `NAME=true` / `NAME=false` lines, `#` comments
//! and blank lines, for switches an operator (or a mounted ConfigMap) changes while the
//! processes run. Every bad line is reported with its number, none silently ignored.

use crate::switches::{is_switch_name, SWITCHES_FILE_VAR};
use keel_config::{Problem, Problems};
use std::collections::BTreeMap;
use std::path::Path;

/// One reading of the switches file: each switch it names, with its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSwitches(BTreeMap<String, bool>);

impl FileSwitches {
    /// Every switch the file names and its value, in name order.
    pub fn values(&self) -> impl Iterator<Item = (&str, &bool)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Parses the file's text; `path` only names the file in problems.
pub(crate) fn parse(text: &str, path: &Path) -> Result<FileSwitches, Problems> {
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    let mut bad = |n: usize, message: String| {
        problems.push(Problem {
            var: SWITCHES_FILE_VAR.to_owned(),
            message: format!("{} line {n}: {message}", path.display()),
        })
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            bad(n, format!("expected NAME=true or NAME=false, got {line:?}"));
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if !is_switch_name(name) {
            bad(
                n,
                format!(
                    "{name:?} is not a switch (DISABLE_CRON_JOBS, DISABLE_SCHEDULED_WORK, DISABLE_<TASK>_CRON or \
                     <KIND>_QUEUE_DISABLED)"
                ),
            );
            continue;
        }
        let value = match value.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                bad(n, format!("{name} must be true or false, got {value:?}"));
                continue;
            }
        };
        if values.insert(name.to_owned(), value).is_some() {
            bad(n, format!("{name} is set twice"));
        }
    }
    if problems.is_empty() {
        Ok(FileSwitches(values))
    } else {
        Err(Problems(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_values_comments_and_blank_lines() {
        let f = parse(
            "# incident 42\n\nDISABLE_SCHEDULED_WORK = true\r\nEMAIL_SEND_QUEUE_DISABLED=FALSE\n  # done\n",
            Path::new("s.env"),
        )
        .unwrap();
        let got: Vec<_> = f.values().map(|(k, v)| (k.to_owned(), *v)).collect();
        assert_eq!(got, [("DISABLE_SCHEDULED_WORK".to_owned(), true), ("EMAIL_SEND_QUEUE_DISABLED".to_owned(), false)]);
        assert_eq!(parse("", Path::new("s.env")).unwrap(), FileSwitches::default());
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = "DISABLE_CRON_JOBS=maybe\nDISABLE_CRON=true\nNOT_A_SWITCH=true\njust words\n\
                    DISABLE_X_CRON=true\nDISABLE_X_CRON=false\nDISABLE_Y_CRON=1\n";
        let err = parse(text, Path::new("/etc/keel/switches")).unwrap_err();
        let lines: Vec<String> = err.0.iter().map(|p| format!("{}: {}", p.var, p.message)).collect();
        assert_eq!(lines.len(), 6, "{lines:#?}");
        for (i, l) in lines.iter().enumerate() {
            assert!(l.starts_with("KEEL_SWITCHES_FILE: /etc/keel/switches line "), "{l}");
            let expected_line = [1, 2, 3, 4, 6, 7][i];
            assert!(l.contains(&format!("line {expected_line}:")), "{l}");
        }
        assert!(lines[0].contains("must be true or false") && lines[0].contains("maybe"), "{}", lines[0]);
        assert!(lines[1].contains("\"DISABLE_CRON\" is not a switch"), "{}", lines[1]);
        assert!(lines[2].contains("NOT_A_SWITCH"), "{}", lines[2]);
        assert!(lines[3].contains("expected NAME=true"), "{}", lines[3]);
        assert!(lines[4].contains("set twice"), "{}", lines[4]);
        assert!(lines[5].contains("\"1\""), "only true and false, spelled out: {}", lines[5]);
    }
}
