//! Line charts as inline SVG, drawn on the server: no chart library, no script, nothing from
//! another host, and they render (and print) with JavaScript off. Labels are text nodes that
//! maud escapes like everything else.

use maud::{html, Markup};
use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 220.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 28.0;
/// Series beyond this many are not drawn (the stylesheet has a colour for each of these).
pub(super) const MAX_SERIES: usize = 3;

/// One line: its legend label and its points (x, y), x in any increasing unit.
pub(super) struct Series {
    pub(super) label: String,
    pub(super) points: Vec<(f64, f64)>,
}

/// A chart of up to [`MAX_SERIES`] lines sharing one y axis from 0; `x_from`/`x_to` label the
/// ends of the x axis. With no points at all it says so instead of drawing empty axes.
pub(super) fn line_chart(aria: &str, unit: &str, series: &[Series], x_from: &str, x_to: &str) -> Markup {
    let series = &series[..series.len().min(MAX_SERIES)];
    let all = || series.iter().flat_map(|s| s.points.iter());
    if all().next().is_none() {
        return html! { p.muted { "No data in this window yet." } };
    }
    let (x0, x1) = all().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| (a.min(*x), b.max(*x)));
    let y1 = all().fold(0.0_f64, |m, (_, y)| m.max(*y)).max(1.0);
    let sx = |x: f64| PAD_L + if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.5 } * (W - PAD_L - PAD_R);
    let sy = |y: f64| PAD_T + (1.0 - y / y1) * (H - PAD_T - PAD_B);
    let path = |s: &Series| {
        let mut d = String::new();
        for (i, (x, y)) in s.points.iter().enumerate() {
            let _ = write!(d, "{}{:.1} {:.1} ", if i == 0 { "M" } else { "L" }, sx(*x), sy(*y));
        }
        d
    };
    let view = format!("0 0 {W} {H}");
    html! {
        svg.chart viewBox=(view) role="img" aria-label=(aria) xmlns="http://www.w3.org/2000/svg" {
            line.axis x1=(PAD_L) y1=(H - PAD_B) x2=(W - PAD_R) y2=(H - PAD_B) {}
            line.axis x1=(PAD_L) y1=(PAD_T) x2=(PAD_L) y2=(H - PAD_B) {}
            text x="4" y=(PAD_T + 10.0) { (fmt_num(y1)) " " (unit) }
            text x="4" y=(H - PAD_B) { "0" }
            text x=(PAD_L) y=(H - 8.0) { (x_from) }
            text x=(W - PAD_R) y=(H - 8.0) text-anchor="end" { (x_to) }
            @for (i, s) in series.iter().enumerate() {
                path class={ "s" (i) } d=(path(s)) {}
            }
        }
        p.legend {
            @for (i, s) in series.iter().enumerate() {
                span class={ "k" (i) } { "━ " (s.label) }
            }
        }
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_paths_drawn() {
        let s = [Series { label: "<script>x</script>".into(), points: vec![(0.0, 1.0), (1.0, 3.0)] }];
        let svg = line_chart("a\"b", "ms", &s, "<from>", "to").into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("&lt;from&gt;"));
        assert!(svg.contains("aria-label=\"a&quot;b\""));
        assert!(svg.contains("d=\"M56.0 "), "{svg}");
        assert!(line_chart("x", "ms", &[], "", "").into_string().contains("No data"));
    }
}
