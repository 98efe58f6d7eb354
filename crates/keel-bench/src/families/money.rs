//! Bench family `money`: keel-money's exact sums and parsing against rust_decimal on the same values.
//!
//! Both sides get the same pre-built inputs (one `Vec` of their own value type), so the loops
//! measure the arithmetic, not construction. Each sum is checked against the other before any
//! figure is reported. The paged report over 1,000,000 invoices on Postgres is in
//! `money_report.rs`.

use crate::report::{median, Row};
use keel_money::{sum_pages, Currency, Money, Page, Totals};
use rust_decimal::Decimal;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

const SUM_N: usize = 10_000_000;
const PARSE_N: usize = 1_000_000;
const PAGED_N: usize = 1_000_000;
const PAGE_SIZE: usize = 1_000;
const ITERATIONS: usize = 9;
const PEER: &str = "rust_decimal 1.43";

/// Deterministic cents in [-$10,000, $990,000): no overflow at 10M rows, and a mix of signs.
fn amounts(n: usize) -> Vec<i64> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 100_000_000) as i64 - 1_000_000
        })
        .collect()
}

/// Median nanoseconds per element of `keel` and of `peer` over `n` elements each. The two run
/// alternately, after one warm-up each, so load from other work on this shared machine lands on
/// both sides rather than on whichever happened to run during it.
fn paired_ns_per_op(n: usize, mut keel: impl FnMut(), mut peer: impl FnMut()) -> (f64, f64) {
    keel();
    peer();
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / n as f64
    };
    let (mut ks, mut ps) = (Vec::new(), Vec::new());
    for _ in 0..ITERATIONS {
        ks.push(time(&mut keel));
        ps.push(time(&mut peer));
    }
    (median(ks), median(ps))
}

fn keel_sum(xs: &[Money]) -> Result<Money, String> {
    let mut acc = Money::zero(Currency::USD);
    for &m in xs {
        acc = acc.checked_add(m).map_err(|e| e.to_string())?;
    }
    Ok(acc)
}

fn decimal_checked_sum(xs: &[Decimal]) -> Result<Decimal, String> {
    let mut acc = Decimal::ZERO;
    for &d in xs {
        acc = acc.checked_add(d).ok_or("rust_decimal overflow")?;
    }
    Ok(acc)
}

fn decimal_operator_sum(xs: &[Decimal]) -> Decimal {
    xs.iter().fold(Decimal::ZERO, |acc, &d| acc + d)
}

fn sum_cases(rows: &mut Vec<Row>) -> Result<(), String> {
    let raw = amounts(SUM_N);
    let money: Vec<Money> = raw.iter().map(|&m| Money::from_minor(m, Currency::USD)).collect();
    let decimals: Vec<Decimal> = raw.iter().map(|&m| Decimal::new(m, 2)).collect();
    drop(raw);

    let keel_total = keel_sum(&money)?;
    let peer_total = decimal_checked_sum(&decimals)?;
    if Decimal::new(keel_total.minor(), 2) != peer_total {
        return Err(format!("sums disagree: keel {keel_total} vs rust_decimal {peer_total}"));
    }

    let keel_run = || {
        black_box(keel_sum(black_box(&money)).ok());
    };
    let (keel, peer_checked) = paired_ns_per_op(SUM_N, keel_run, || {
        black_box(decimal_checked_sum(black_box(&decimals)).ok());
    });
    let (keel_again, peer_operator) = paired_ns_per_op(SUM_N, keel_run, || {
        black_box(decimal_operator_sum(black_box(&decimals)));
    });
    rows.push(
        Row::new("sum_10m/checked_add", "ns_per_op", keel, "lower")
            .vs(format!("{PEER} checked_add"), peer_checked)
            .target("faster than rust_decimal (ratio < 1)"),
    );
    rows.push(
        Row::new("sum_10m/vs_panicking_operator", "ns_per_op", keel_again, "lower")
            .vs(format!("{PEER} + (panics on overflow)"), peer_operator)
            .target("faster than rust_decimal (ratio < 1)"),
    );
    Ok(())
}

/// Three currencies in one stream: `Totals` keeps them apart; the peer keeps three accumulators.
fn totals_case(rows: &mut Vec<Row>) -> Result<(), String> {
    const CURRENCIES: [Currency; 3] = [Currency::USD, Currency::EUR, Currency::GBP];
    let raw = amounts(SUM_N);
    let money: Vec<Money> = raw.iter().enumerate().map(|(i, &m)| Money::from_minor(m, CURRENCIES[i % 3])).collect();
    let tagged: Vec<(u8, Decimal)> =
        raw.iter().enumerate().map(|(i, &m)| ((i % 3) as u8, Decimal::new(m, 2))).collect();
    drop(raw);

    let keel_totals = |xs: &[Money]| -> Result<Totals, String> {
        let mut t = Totals::new();
        for &m in xs {
            t.add(m).map_err(|e| e.to_string())?;
        }
        Ok(t)
    };
    let peer_totals = |xs: &[(u8, Decimal)]| -> Result<[Decimal; 3], String> {
        let mut acc = [Decimal::ZERO; 3];
        for &(c, d) in xs {
            let slot = &mut acc[usize::from(c)];
            *slot = slot.checked_add(d).ok_or("rust_decimal overflow")?;
        }
        Ok(acc)
    };
    let done = keel_totals(&money)?.finish().map_err(|e| e.to_string())?;
    let peer = peer_totals(&tagged)?;
    for (i, c) in CURRENCIES.iter().enumerate() {
        if Decimal::new(done.total_in(*c).minor(), 2) != peer[i] {
            return Err(format!("{c} totals disagree"));
        }
    }
    let (keel, peer) = paired_ns_per_op(
        SUM_N,
        || {
            black_box(keel_totals(black_box(&money)).ok());
        },
        || {
            black_box(peer_totals(black_box(&tagged)).ok());
        },
    );
    rows.push(
        Row::new("totals_10m_3_currencies/exact", "ns_per_op", keel, "lower")
            .vs(format!("{PEER} checked_add, 3 accumulators"), peer)
            .target("faster than rust_decimal (ratio < 1)"),
    );
    Ok(())
}

fn parse_case(rows: &mut Vec<Row>) -> Result<(), String> {
    let texts: Vec<String> =
        amounts(PARSE_N).iter().map(|&m| Money::from_minor(m, Currency::USD).plain().to_string()).collect();
    for t in texts.iter().take(1_000) {
        let keel = Money::parse(t, Currency::USD).map_err(|e| e.to_string())?;
        let peer = Decimal::from_str(t).map_err(|e| e.to_string())?;
        if Decimal::new(keel.minor(), 2) != peer {
            return Err(format!("parse disagrees on {t}"));
        }
    }
    let (keel, peer) = paired_ns_per_op(
        PARSE_N,
        || {
            for t in &texts {
                black_box(Money::parse(black_box(t), Currency::USD).ok());
            }
        },
        || {
            for t in &texts {
                black_box(Decimal::from_str(black_box(t)).ok());
            }
        },
    );
    rows.push(
        Row::new("parse_1m/decimal_text", "ns_per_op", keel, "lower")
            .vs(format!("{PEER} from_str"), peer)
            .target("no target (reported)"),
    );
    Ok(())
}

/// The paged combinator over an in-memory keyset source: its own overhead, with no database.
fn paged_case(rows: &mut Vec<Row>) -> Result<(), String> {
    let data: Vec<(u64, Money)> = amounts(PAGED_N)
        .into_iter()
        .enumerate()
        .map(|(i, m)| (i as u64, Money::from_minor(m, Currency::USD)))
        .collect();
    let expected: i128 = data.iter().map(|(_, m)| i128::from(m.minor())).sum();
    let run = || {
        block_on_ready(sum_pages(|cursor: Option<u64>| {
            let start = cursor.map_or(0, |c| c as usize + 1);
            let end = (start + PAGE_SIZE).min(data.len());
            let page = Page::keyset(data[start..end].to_vec(), PAGE_SIZE, |(id, _)| *id).map(|(_, m)| m);
            async move { Ok::<_, std::convert::Infallible>(page) }
        }))
    };
    let got = run().map_err(|e| e.to_string())?;
    if i128::from(got.total_in(Currency::USD).minor()) != expected || got.rows != PAGED_N as u64 {
        return Err("paged sum disagrees with the direct sum".into());
    }
    let samples = (0..ITERATIONS)
        .map(|_| {
            let t = Instant::now();
            black_box(run().ok());
            t.elapsed().as_secs_f64()
        })
        .collect();
    rows.push(
        Row::new("paged_sum_1m/in_memory_pages_of_1000", "s_total", median(samples), "lower")
            .target("no target (combinator overhead alone)"),
    );
    Ok(())
}

/// The sources here never wait, so polling once with a no-op waker completes them; this avoids
/// pulling an async runtime into the money bench.
fn block_on_ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

pub(crate) fn run() -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    sum_cases(&mut rows)?;
    totals_case(&mut rows)?;
    parse_case(&mut rows)?;
    paged_case(&mut rows)?;
    super::money_report::run(&mut rows)?;
    Ok(rows)
}
