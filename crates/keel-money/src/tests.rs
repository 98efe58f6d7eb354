//! Unit tests, one file per module under src/tests/.

mod allocate;
mod currency;
mod format;
mod labelled;
mod money;
mod parse;
mod rate;
mod rounding;
mod totals;
