//! Tables for people: columns sized to their widest cell by comfy-table (a long job kind widens
//! its column instead of pushing the rest out of line), wrapped to the terminal's width when
//! stdout is one. Piped output is never wrapped; scripts read `--json` anyway.

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

/// A table with `header`, its `right` columns (counts, by index) aligned right.
pub(crate) fn new(header: &[&str], right: &[usize]) -> Table {
    sized(header, right, console::Term::stdout().size_checked().map(|(_, cols)| cols))
}

/// [`new`] wrapped to `width` columns, or unwrapped.
fn sized(header: &[&str], right: &[usize], width: Option<u16>) -> Table {
    let mut t = Table::new();
    t.load_style(presets::ASCII_MARKDOWN).set_header(header.iter().copied());
    if let Some(width) = width {
        t.set_content_arrangement(ContentArrangement::Dynamic).set_width(width);
    }
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Prints `t` on stdout, or nothing when it has no rows (the caller says why instead).
pub(crate) fn print(t: &Table) {
    if t.row_count() > 0 {
        println!("{t}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The character columns of the `|` separators on one line.
    fn bars(line: &str) -> Vec<usize> {
        line.chars().enumerate().filter(|(_, c)| *c == '|').map(|(i, _)| i).collect()
    }

    #[test]
    fn a_long_cell_widens_its_column_and_every_row_keeps_the_same_boundaries() {
        let long = "reports.quarterly_reconciliation_with_the_external_ledger_and_a_very_long_name";
        let mut t = sized(&["id", "kind", "attempt"], &[2], None);
        t.add_row(["1", "email.send", "1/5"]);
        t.add_row(["2", long, "10/25"]);
        let text = t.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(text.contains(long), "the long kind is printed whole: {text}");
        let first = bars(lines[0]);
        assert_eq!(first.len(), 4, "{text}");
        for l in &lines {
            assert_eq!(bars(l), first, "every row has the same column boundaries:\n{text}");
        }
        assert!(lines[2].contains("|     1/5 |"), "counts align right: {text}");
    }

    #[test]
    fn on_a_narrow_terminal_cells_wrap_inside_their_columns() {
        let mut t = sized(&["id", "last error"], &[], Some(40));
        t.add_row(["1", "connection refused by 127.0.0.1:25 after three attempts at delivery"]);
        let text = t.to_string();
        let first = bars(text.lines().next().unwrap());
        for l in text.lines() {
            assert!(l.chars().count() <= 40, "{text}");
            assert_eq!(bars(l), first, "{text}");
        }
        assert!(text.lines().count() > 3, "the error wrapped onto more lines: {text}");
    }
}
