//! Prometheus text exposition (format 0.0.4) primitives: escaping and number formatting.

use std::fmt::Write;

/// `Content-Type` of the `/metrics` response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label values escape backslash, double quote and newline.
pub(crate) fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes backslash and newline (quotes stay as they are).
pub(crate) fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub(crate) fn format_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = write!(out, "# HELP {name} ");
    escape_help(help, out);
    let _ = writeln!(out, "\n# TYPE {name} {kind}");
}

/// Writes one sample line: `name{l1="v1",l2="v2"} value`.
pub(crate) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(v, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    format_value(value, out);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_exactly_what_the_format_requires() {
        let mut s = String::new();
        sample(&mut s, "m", &[("route", "a\\b\"c\nd")], 1.5);
        assert_eq!(s, "m{route=\"a\\\\b\\\"c\\nd\"} 1.5\n");
        let mut h = String::new();
        header(&mut h, "m", "say \"hi\"\\\nbye", "gauge");
        assert_eq!(h, "# HELP m say \"hi\"\\\\\\nbye\n# TYPE m gauge\n");
        for (v, t) in
            [(f64::NAN, "NaN"), (f64::INFINITY, "+Inf"), (f64::NEG_INFINITY, "-Inf"), (3.0, "3"), (0.005, "0.005")]
        {
            let mut o = String::new();
            format_value(v, &mut o);
            assert_eq!(o, t);
        }
    }
}
