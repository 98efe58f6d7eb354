//! Paged aggregation: every page is read (no row cap), totals are exact per currency, and a failing
//! page fails the whole aggregation with no partial total.

use keel_money::{fold_pages, sum_pages, sum_pages_by, Currency, Money, MoneyError, Page, PagedError};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

/// A source-side failure, standing in for a database error.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SourceDown(&'static str);

impl fmt::Display for SourceDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source down: {}", self.0)
    }
}

impl std::error::Error for SourceDown {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Paid,
    Open,
    Void,
}

#[derive(Debug, Clone, Copy)]
struct Invoice {
    id: u64,
    status: Status,
    amount: Money,
}

/// Deterministic invoices in three currencies with positive, negative (credit notes) and large amounts.
fn invoices(n: u64) -> Vec<Invoice> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (1..=n)
        .map(|id| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let currency = [Currency::USD, Currency::EUR, Currency::JPY, Currency::KWD][(x % 4) as usize];
            let minor = (x >> 8) as i64 % 50_000_000_000 - 5_000_000_000;
            let status = [Status::Paid, Status::Open, Status::Void][(x % 3) as usize];
            Invoice { id, status, amount: Money::from_minor(minor, currency) }
        })
        .collect()
}

/// An independent exact sum: i128 per currency, computed without keel-money's Totals.
fn reference(rows: &[Invoice]) -> BTreeMap<Currency, (i128, u64)> {
    let mut out: BTreeMap<Currency, (i128, u64)> = BTreeMap::new();
    for r in rows {
        let e = out.entry(r.amount.currency()).or_default();
        e.0 += i128::from(r.amount.minor());
        e.1 += 1;
    }
    out
}

/// The keyset query `WHERE id > $cursor ORDER BY id LIMIT $limit`, over a vector.
fn query(rows: &[Invoice], after: Option<u64>, limit: usize) -> Vec<Invoice> {
    rows.iter().filter(|r| after.is_none_or(|a| r.id > a)).take(limit).copied().collect()
}

fn assert_matches_reference(got: &keel_money::ExactTotals, rows: &[Invoice]) {
    let want = reference(rows);
    assert_eq!(got.rows, rows.len() as u64);
    assert_eq!(got.per_currency.len(), want.len());
    for ct in &got.per_currency {
        let (sum, count) = want[&ct.total.currency()];
        assert_eq!(i128::from(ct.total.minor()), sum, "{}", ct.total.currency());
        assert_eq!(ct.count, count, "{}", ct.total.currency());
    }
}

#[tokio::test]
async fn more_rows_than_the_page_size_are_all_summed_exactly() {
    let rows = invoices(10_007);
    let page_size = 100;
    let fetches = Cell::new(0u32);
    let totals = sum_pages(|cursor: Option<u64>| {
        fetches.set(fetches.get() + 1);
        let page = query(&rows, cursor, page_size);
        async move { Ok::<_, SourceDown>(amounts(Page::keyset(page, page_size, |r| r.id))) }
    })
    .await
    .unwrap();
    assert_matches_reference(&totals, &rows);
    assert_eq!(fetches.get(), 101, "100 full pages and one short one");
}

/// Maps a page of invoices to a page of amounts, keeping the cursor.
fn amounts(p: Page<u64, Invoice>) -> Page<u64, Money> {
    p.map(|r| r.amount)
}

#[tokio::test]
async fn a_row_count_that_is_a_multiple_of_the_page_size_ends_with_one_empty_fetch() {
    let rows = invoices(500);
    let fetches = Cell::new(0u32);
    let totals = sum_pages(|cursor: Option<u64>| {
        fetches.set(fetches.get() + 1);
        let page = amounts(Page::keyset(query(&rows, cursor, 100), 100, |r| r.id));
        async move { Ok::<_, SourceDown>(page) }
    })
    .await
    .unwrap();
    assert_matches_reference(&totals, &rows);
    assert_eq!(fetches.get(), 6);
}

#[tokio::test]
async fn fetching_limit_plus_one_drops_the_probe_row_and_loses_nothing() {
    let rows = invoices(1_000);
    let fetches = Cell::new(0u32);
    let totals = sum_pages(|cursor: Option<u64>| {
        fetches.set(fetches.get() + 1);
        // LIMIT page_size + 1: the extra row only says "there is more".
        let page = amounts(Page::keyset_probed(query(&rows, cursor, 101), 100, |r| r.id));
        async move { Ok::<_, SourceDown>(page) }
    })
    .await
    .unwrap();
    assert_matches_reference(&totals, &rows);
    assert_eq!(fetches.get(), 10, "no trailing empty fetch");
}

#[tokio::test]
async fn an_empty_source_is_an_explicit_zero_rows_result() {
    let totals = sum_pages(|_cursor: Option<u64>| async { Ok::<_, SourceDown>(Page::last(vec![])) }).await.unwrap();
    assert_eq!(totals.rows, 0);
    assert!(totals.per_currency.is_empty());
}

#[tokio::test]
async fn a_failing_page_mid_way_fails_the_whole_sum_with_no_partial_total() {
    let rows = invoices(1_000);
    let fetches = Cell::new(0u32);
    let result = sum_pages(|cursor: Option<u64>| {
        fetches.set(fetches.get() + 1);
        let n = fetches.get();
        let page = amounts(Page::keyset(query(&rows, cursor, 100), 100, |r| r.id));
        async move {
            if n == 3 {
                Err(SourceDown("connection reset"))
            } else {
                Ok(page)
            }
        }
    })
    .await;
    // The Result type has no room for a partial total: only the error comes back.
    let err = result.unwrap_err();
    match &err {
        PagedError::Page { page, rows_before, source } => {
            assert_eq!((*page, *rows_before), (3, 200));
            assert_eq!(source, &SourceDown("connection reset"));
        }
        other => panic!("expected a page error, got {other:?}"),
    }
    assert_eq!(fetches.get(), 3, "no page is fetched after the failure");
    let msg = err.to_string();
    assert!(msg.contains("page 3") && msg.contains("no partial total"), "{msg}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(source, "source down: connection reset");
}

#[tokio::test]
async fn a_failing_first_or_last_page_also_fails() {
    for fail_at in [1u32, 10] {
        let rows = invoices(950);
        let fetches = Cell::new(0u32);
        let result = sum_pages(|cursor: Option<u64>| {
            fetches.set(fetches.get() + 1);
            let n = fetches.get();
            let page = amounts(Page::keyset(query(&rows, cursor, 100), 100, |r| r.id));
            async move {
                if n == fail_at {
                    Err(SourceDown("timeout"))
                } else {
                    Ok(page)
                }
            }
        })
        .await;
        assert!(matches!(result, Err(PagedError::Page { page, .. }) if page == u64::from(fail_at)), "{fail_at}");
    }
}

#[tokio::test]
async fn a_cursor_that_does_not_advance_is_an_error_not_an_endless_loop() {
    let result = sum_pages(|_cursor: Option<u64>| async {
        Ok::<_, SourceDown>(Page::new(vec![Money::from_minor(1, Currency::USD)], Some(7u64)))
    })
    .await;
    assert!(matches!(result, Err(PagedError::CursorDidNotAdvance { page: 2 })), "{result:?}");
}

#[tokio::test]
async fn a_total_beyond_i64_fails_instead_of_wrapping() {
    let big = Money::from_minor(i64::MAX, Currency::USD);
    let result = sum_pages(|cursor: Option<u8>| async move {
        Ok::<_, SourceDown>(match cursor {
            None => Page::new(vec![big], Some(1)),
            Some(_) => Page::last(vec![big]),
        })
    })
    .await;
    match result {
        Err(PagedError::Money { source, .. }) => assert_eq!(source, MoneyError::Overflow { op: "total" }),
        other => panic!("expected overflow, got {other:?}"),
    }
}

#[tokio::test]
async fn grouped_totals_are_exact_per_group_and_currency_and_overall() {
    let rows = invoices(3_333);
    let source = &rows;
    // The future borrows the source, as a query future borrows its pool.
    let grouped = sum_pages_by(|cursor: Option<u64>| async move {
        let p = Page::keyset(query(source, cursor, 250), 250, |r| r.id);
        p.try_map(|r| Ok::<_, SourceDown>((r.status, r.amount)))
    })
    .await
    .unwrap();
    assert_matches_reference(&grouped.overall, &rows);
    assert_eq!(grouped.groups.len(), 3);
    for (status, totals) in &grouped.groups {
        let in_group: Vec<Invoice> = rows.iter().filter(|r| r.status == *status).copied().collect();
        assert_matches_reference(totals, &in_group);
    }
    let json = serde_json::to_value(
        sum_pages_by(|_c: Option<u8>| async {
            Ok::<_, SourceDown>(Page::last(vec![("paid", Money::from_minor(150, Currency::USD))]))
        })
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["groups"]["paid"]["per_currency"][0]["formatted"], "$1.50");
    assert_eq!(json["overall"]["rows"], 1);
}

#[tokio::test]
async fn fold_pages_drives_any_fold_and_reports_rows_and_pages() {
    let rows = invoices(1_234);
    let drained = fold_pages(
        |cursor: Option<u64>| {
            let page = Page::keyset(query(&rows, cursor, 100), 100, |r| r.id);
            async move { Ok::<_, SourceDown>(page) }
        },
        0u64,
        |voids, r: Invoice| {
            *voids += u64::from(r.status == Status::Void);
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(drained.rows, 1_234);
    assert_eq!(drained.pages, 13);
    assert_eq!(drained.value, rows.iter().filter(|r| r.status == Status::Void).count() as u64);
}

#[tokio::test]
async fn a_row_that_fails_to_convert_fails_the_whole_report() {
    // A stored currency code the table does not know: the report fails, it does not skip the row.
    let raw = [(1u64, "USD", 100i64), (2, "USD", 200), (3, "XXX", 300), (4, "USD", 400)];
    let result = sum_pages(|after: Option<u64>| async move {
        let rows: Vec<_> = raw.iter().filter(|r| after.is_none_or(|a| r.0 > a)).take(2).copied().collect();
        Page::keyset(rows, 2, |r| r.0).try_map(|(_, code, minor)| Ok(Money::from_minor(minor, code.parse()?)))
    })
    .await;
    match result {
        Err(PagedError::Page { page: 2, rows_before: 2, source: MoneyError::UnknownCurrency { code } }) => {
            assert_eq!(code, "XXX")
        }
        other => panic!("expected the page-2 conversion error, got {other:?}"),
    }
}

#[test]
fn page_map_keeps_the_cursor() {
    let p = Page::new(vec![1u32, 2], Some(9u64));
    assert_eq!(p.clone().map(|x| x * 10), Page::new(vec![10, 20], Some(9)));
    assert_eq!(p.clone().try_map(|x| if x < 5 { Ok(x) } else { Err(x) }), Ok(p.clone()));
    assert_eq!(p.try_map(|x| if x < 2 { Ok(x) } else { Err(x) }), Err(2));
}

#[test]
fn keyset_pages_decide_the_next_cursor_from_the_row_count() {
    let key = |x: &u32| *x;
    assert_eq!(Page::keyset(vec![1, 2], 3, key), Page::new(vec![1, 2], None));
    assert_eq!(Page::keyset(vec![1, 2, 3], 3, key), Page::new(vec![1, 2, 3], Some(3)));
    assert_eq!(Page::keyset(vec![1, 2, 3, 4], 3, key), Page::new(vec![1, 2, 3], Some(3)));
    assert_eq!(Page::keyset(vec![1, 2], 0, key), Page::new(vec![1], Some(1)));
    assert_eq!(Page::<u32, u32>::keyset(vec![], 0, key), Page::new(vec![], None));
    // LIMIT page_size + 1: page_size rows or fewer is the end; more means continue.
    assert_eq!(Page::keyset_probed(vec![1, 2, 3], 3, key), Page::new(vec![1, 2, 3], None));
    assert_eq!(Page::keyset_probed(vec![1, 2, 3, 4], 3, key), Page::new(vec![1, 2, 3], Some(3)));
    assert_eq!(Page::keyset_probed(vec![1, 2], 0, key), Page::new(vec![1], Some(1)));
}

#[test]
fn the_aggregation_future_is_send_when_the_source_is() {
    fn assert_send<T: Send>(_: &T) {}
    let fut = sum_pages(|_c: Option<u64>| async { Ok::<_, SourceDown>(Page::last(vec![Money::zero(Currency::USD)])) });
    assert_send(&fut);
}
