//! Markdown rendering of the report: the verdict first, then the evidence.

use super::{ConnectionsSection, RouteRow, StatementsSection, TelemetryReport};
use std::fmt::Write;

/// Microseconds as milliseconds with three decimals, exactly (no float rounding).
fn ms(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let a = us.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// Text safe inside a table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Text safe inside an inline code span.
fn code(s: &str) -> String {
    let s = cell(s).replace('`', "'");
    format!("`{s}`")
}

pub(crate) fn render(r: &TelemetryReport) -> String {
    let mut o = String::new();
    let w = &r.window;
    let _ = writeln!(o, "# Production telemetry report\n");
    let version = match r.backend {
        "postgres" => format!("PostgreSQL {}", r.server_version),
        _ => r.server_version.clone(),
    };
    let _ = writeln!(
        o,
        "Generated {} · window: the last {} days ({} to {}) · database: {}\n",
        r.generated_at.format("%Y-%m-%d %H:%M UTC"),
        w.days,
        w.from.format("%Y-%m-%d %H:%M"),
        w.to.format("%Y-%m-%d %H:%M"),
        version
    );

    let _ = writeln!(o, "## Verdict\n");
    let v = &r.verdict;
    let _ = writeln!(o, "- **SLOs:** {}", v.slo.text);
    for b in &v.slo.breaches {
        let _ = writeln!(
            o,
            "  - {} {} {}: {} ms > {} ms ({} samples)",
            b.kind.as_str(),
            code(&b.route),
            b.percentile,
            ms(b.measured_us),
            b.slo_ms,
            b.samples
        );
    }
    let _ = writeln!(o, "- **Business-load target:** {}", v.load_target.text);
    let _ = writeln!(o, "- **Cost gate:** {}\n", v.cost.text);

    let rt = &r.routes;
    let _ = writeln!(o, "## Top {} slow routes by p95\n", super::TOP_ROUTES);
    let _ = writeln!(
        o,
        "{} samples standing for about {:.0} requests, {} routes. Percentiles are exact weighted nearest-rank values over the stored samples (each weighted by 1 / its sample rate), computed in the {}.\n",
        rt.total_samples,
        rt.estimated_requests,
        rt.routes_seen,
        if rt.computed_in == "database" { "database" } else { "report (Rust)" }
    );
    route_table(&mut o, &rt.top_by_p95, rt.min_p99_samples);
    let _ = writeln!(o, "## Top {} slow routes by p99\n", super::TOP_ROUTES);
    if rt.p99_withheld > 0 {
        let _ = writeln!(
            o,
            "{} route(s) have fewer than {} samples: not enough samples for a meaningful p99, so they are not ranked here.\n",
            rt.p99_withheld, rt.min_p99_samples
        );
    }
    route_table(&mut o, &rt.top_by_p99, rt.min_p99_samples);

    let _ = writeln!(o, "## Top {} slow SQL statements (pg_stat_statements)\n", super::TOP_STATEMENTS);
    match &r.statements {
        StatementsSection::Available {
            extension_version,
            time_columns,
            stats_reset,
            deallocations,
            statements,
            warning,
        } => {
            let since = stats_reset
                .map(|t| format!(", collected since {}", t.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            let evicted = deallocations.map(|d| format!(", {d} entries evicted")).unwrap_or_default();
            let _ = writeln!(
                o,
                "pg_stat_statements {extension_version} (columns {time_columns}{since}{evicted}); this database only, ordered by total execution time. Statistics are never reset by this report.\n"
            );
            if let Some(w) = warning {
                let _ = writeln!(o, "> **Warning:** {w}\n");
            }
            if statements.is_empty() {
                let _ = writeln!(o, "No statements recorded yet.\n");
            } else {
                let _ =
                    writeln!(o, "| # | calls | total ms | mean ms | rows | statement |\n|---|---:|---:|---:|---:|---|");
                for (i, s) in statements.iter().enumerate() {
                    let text: String = s.query.chars().take(300).collect();
                    let more = if text.len() < s.query.len() { "…" } else { "" };
                    let _ = writeln!(
                        o,
                        "| {} | {} | {:.1} | {:.3} | {} | {}{more} |",
                        i + 1,
                        s.calls,
                        s.total_ms,
                        s.mean_ms,
                        s.rows,
                        code(&text)
                    );
                }
                o.push('\n');
            }
        }
        StatementsSection::Unavailable { reason, how_to_enable } => {
            let _ = writeln!(o, "**Not available:** {reason}\n\n**How to enable:** {how_to_enable}\n");
        }
        StatementsSection::PostgresOnly { note } => {
            let _ = writeln!(o, "{note}\n");
        }
    }

    let _ = writeln!(o, "## Connection snapshot\n");
    match &r.connections {
        ConnectionsSection::Snapshot(c) => {
            if let Some(w) = &c.warning {
                let _ = writeln!(o, "> **Warning:** {w}\n");
            }
            let reserved = match c.reserved_connections {
                Some(n) => format!("{} superuser + {n} reserved_connections", c.superuser_reserved_connections),
                None => format!("{} superuser", c.superuser_reserved_connections),
            };
            let _ =
                writeln!(o, "Client backends only, one consistent snapshot (the report's own connection included).\n");
            let _ = writeln!(o, "| measure | value |\n|---|---:|");
            for (k, val) in [
                ("total", c.total.to_string()),
                ("active", c.active.to_string()),
                ("idle", c.idle.to_string()),
                ("idle in transaction", c.idle_in_transaction.to_string()),
                ("waiting on locks", c.waiting_on_locks.to_string()),
                ("state not visible", c.state_hidden.to_string()),
                ("max_connections", c.max_connections.to_string()),
                ("reserved slots", reserved),
                ("usable", c.usable.to_string()),
                ("headroom", format!("{} ({:.1} %)", c.headroom, c.headroom_pct)),
            ] {
                let _ = writeln!(o, "| {k} | {val} |");
            }
        }
        ConnectionsSection::PostgresOnly { note } => {
            let _ = writeln!(o, "{note}");
        }
    }
    o
}

fn route_table(o: &mut String, rows: &[RouteRow], min: u64) {
    if rows.is_empty() {
        let _ = writeln!(o, "No routes to show.\n");
        return;
    }
    let _ = writeln!(
        o,
        "| # | kind | route | samples | est. requests | p50 ms | p95 ms | p99 ms |\n|---|---|---|---:|---:|---:|---:|---:|"
    );
    for (i, r) in rows.iter().enumerate() {
        let p99 = match r.p99_us {
            Some(v) => ms(v),
            None => format!("not enough samples (< {min})"),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            i + 1,
            r.kind.as_str(),
            code(&r.route),
            r.samples,
            r.estimated_requests,
            ms(r.p50_us),
            ms(r.p95_us),
            p99
        );
    }
    o.push('\n');
}

#[cfg(test)]
mod tests {
    use super::{cell, ms};

    #[test]
    fn exact_milliseconds_and_safe_cells() {
        assert_eq!(ms(1_234_567), "1234.567");
        assert_eq!(ms(5), "0.005");
        assert_eq!(ms(-1500), "-1.500");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
