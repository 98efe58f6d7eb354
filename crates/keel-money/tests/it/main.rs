//! keel-money integration tests through the public API: property tests and paged aggregation.

mod paged;
mod props;
