//! Exact aggregation over paged sources: drive keyset pagination to the end, then answer in full or
//! not at all.
//!
//! The source is any `FnMut(Option<K>) -> impl Future<Output = Result<Page<K, T>, E>>`: `None` asks
//! for the first page, `Some(k)` for the page after key `k`. The API plugs a SQL query in
//! (`WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3`, built into a page with [`Page::keyset`] or
//! [`Page::keyset_probed`]);
//! tests plug in a vector. There is no row cap: the loop ends only when a page says there is no
//! next one. If any page fails, the whole aggregation fails and the partial tally is dropped, so a
//! caller can never show a total that silently covers only the first pages.

use crate::{ExactTotals, Money, MoneyError, Totals, WideTotals};
use std::collections::BTreeMap;
use std::future::Future;

/// One page of a keyset-paginated source. `next: None` means the source is exhausted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<K, T> {
    /// The page's rows, in key order.
    pub items: Vec<T>,
    /// The key to continue after, or `None` on the last page.
    pub next: Option<K>,
}

impl<K, T> Page<K, T> {
    /// A page with an explicit cursor; prefer [`Page::keyset`] when rows come from `LIMIT n`.
    pub fn new(items: Vec<T>, next: Option<K>) -> Self {
        Page { items, next }
    }

    /// The final page.
    pub fn last(items: Vec<T>) -> Self {
        Page { items, next: None }
    }

    /// Builds a page from rows fetched in key order with `LIMIT limit`.
    ///
    /// Fewer than `limit` rows: this is the last page. `limit` rows: there may be more, so continue
    /// after the last row's key (if there are none, that costs one more, empty, fetch). Rows beyond
    /// `limit` are dropped here and fetched again with the next page. A `limit` of 0 is treated as
    /// 1 so the scan always advances.
    pub fn keyset(mut items: Vec<T>, limit: usize, key_of: impl FnOnce(&T) -> K) -> Self {
        let limit = limit.max(1);
        if items.len() < limit {
            return Page { items, next: None };
        }
        items.truncate(limit);
        let next = items.last().map(key_of);
        Page { items, next }
    }

    /// Builds a page from rows fetched in key order with `LIMIT page_size + 1`: the extra row only
    /// proves there is more (and is fetched again next page), so the final page never needs an
    /// empty fetch. A `page_size` of 0 is treated as 1.
    pub fn keyset_probed(mut items: Vec<T>, page_size: usize, key_of: impl FnOnce(&T) -> K) -> Self {
        let page_size = page_size.max(1);
        if items.len() <= page_size {
            return Page { items, next: None };
        }
        items.truncate(page_size);
        let next = items.last().map(key_of);
        Page { items, next }
    }
}

impl<K, T> Page<K, T> {
    /// Converts every row, keeping the cursor (e.g. rows to `(group, Money)` after the cursor was
    /// taken from the raw rows).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<K, U> {
        Page { items: self.items.into_iter().map(f).collect(), next: self.next }
    }

    /// Converts every row fallibly; the first error is returned and the page is dropped.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<K, U>, E> {
        Ok(Page { items: self.items.into_iter().map(f).collect::<Result<_, E>>()?, next: self.next })
    }
}

/// Why a paged aggregation produced no result. There is never a partial total alongside.
#[derive(Debug, thiserror::Error)]
pub enum PagedError<E> {
    /// Fetching a page failed (the caller's error, such as a failed query).
    #[error("page {page} of the source failed after {rows_before} rows had been read; no partial total is returned: {source}")]
    Page {
        /// The failed page, counting from 1.
        page: u64,
        /// Rows read before it.
        rows_before: u64,
        /// The fetch's error.
        #[source]
        source: E,
    },

    /// A page's cursor equals the one it was fetched with, so the scan would never end.
    #[error("page {page} returned the same next cursor it was asked for; the source would repeat forever (is the query ordered by its key?)")]
    CursorDidNotAdvance {
        /// The page that did not advance, counting from 1.
        page: u64,
    },

    /// Adding a row failed (an overflow, or the caller's conversion of a row).
    #[error("aggregating page {page} failed: {source}")]
    Money {
        /// The page being added, counting from 1.
        page: u64,
        /// Why.
        #[source]
        source: MoneyError,
    },
}

/// A fold that ran over every row of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained<A> {
    /// The accumulator after the last row.
    pub value: A,
    /// Rows folded.
    pub rows: u64,
    /// Pages fetched (including a final empty one, if the source needed it).
    pub pages: u64,
}

/// Folds every row of a paged source into `init` with `step`, fetching pages until one has no
/// next cursor. Any page error, step error, or a cursor that fails to advance ends the fold with an
/// error and the accumulator is dropped.
pub async fn fold_pages<K, T, E, A, F, Fut, S>(mut fetch: F, init: A, mut step: S) -> Result<Drained<A>, PagedError<E>>
where
    K: Clone + PartialEq,
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<Page<K, T>, E>>,
    S: FnMut(&mut A, T) -> Result<(), MoneyError>,
{
    let mut acc = init;
    let mut cursor: Option<K> = None;
    let (mut rows, mut pages) = (0u64, 0u64);
    loop {
        pages += 1;
        let page = fetch(cursor.clone()).await.map_err(|source| PagedError::Page {
            page: pages,
            rows_before: rows,
            source,
        })?;
        for item in page.items {
            step(&mut acc, item).map_err(|source| PagedError::Money { page: pages, source })?;
            rows += 1;
        }
        match page.next {
            None => return Ok(Drained { value: acc, rows, pages }),
            Some(next) if cursor.as_ref() == Some(&next) => {
                return Err(PagedError::CursorDidNotAdvance { page: pages })
            }
            Some(next) => cursor = Some(next),
        }
    }
}

/// Sums every amount of a paged source exactly, per currency, with exact counts.
pub async fn sum_pages<K, E, F, Fut>(fetch: F) -> Result<ExactTotals, PagedError<E>>
where
    K: Clone + PartialEq,
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<Page<K, Money>, E>>,
{
    let drained = fold_pages(fetch, Totals::new(), |totals, amount| totals.add(amount)).await?;
    drained.value.finish().map_err(|source| PagedError::Money { page: drained.pages, source })
}

/// Exact totals per group (month, status, ...) and overall, each split by currency.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupedTotals<G: Ord> {
    /// Totals per group, in the group's order; a group appears once it has a row.
    pub groups: BTreeMap<G, ExactTotals>,
    /// Totals over every row.
    pub overall: ExactTotals,
}

/// Sums a paged source of `(group, amount)` rows exactly per group and per currency.
pub async fn sum_pages_by<K, G, E, F, Fut>(fetch: F) -> Result<GroupedTotals<G>, PagedError<E>>
where
    K: Clone + PartialEq,
    G: Ord,
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<Page<K, (G, Money)>, E>>,
{
    let mut overall = Totals::new();
    let drained = fold_pages(fetch, BTreeMap::<G, Totals>::new(), |groups, (group, amount)| {
        overall.add(amount)?;
        groups.entry(group).or_default().add(amount)
    })
    .await?;
    let page = drained.pages;
    let finish = |t: &Totals| t.finish().map_err(|source| PagedError::Money { page, source });
    let groups = drained
        .value
        .into_iter()
        .map(|(group, totals)| Ok((group, finish(&totals)?)))
        .collect::<Result<BTreeMap<_, _>, PagedError<E>>>()?;
    Ok(GroupedTotals { groups, overall: finish(&overall)? })
}

/// Wide exact totals per group and overall, each split by currency ([`sum_pages_by_wide`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupedWideTotals<G: Ord> {
    /// The totals of each group.
    pub groups: BTreeMap<G, WideTotals>,
    /// The totals of all rows together.
    pub overall: WideTotals,
}

/// As [`sum_pages_by`], but the totals are i128 ([`WideTotals`]), so no data can overflow
/// them: only a page failing (or a cursor that does not advance) fails the sum.
pub async fn sum_pages_by_wide<K, G, E, F, Fut>(fetch: F) -> Result<GroupedWideTotals<G>, PagedError<E>>
where
    K: Clone + PartialEq,
    G: Ord,
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<Page<K, (G, Money)>, E>>,
{
    let mut overall = Totals::new();
    let drained = fold_pages(fetch, BTreeMap::<G, Totals>::new(), |groups, (group, amount)| {
        overall.add(amount)?;
        groups.entry(group).or_default().add(amount)
    })
    .await?;
    let groups = drained.value.into_iter().map(|(group, totals)| (group, totals.finish_wide())).collect();
    Ok(GroupedWideTotals { groups, overall: overall.finish_wide() })
}
