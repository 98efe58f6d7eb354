//! `Forecast<T>` and `Estimated<T>`: figures that are not actuals, kept apart from actuals by type.
//!
//! Neither lends out the inner amount by reference, and neither has arithmetic with `Money`: adding a forecast to an actual needs an explicit, greppable conversion, either
//! `Forecast::new(actual)` (the sum is then a forecast) or `forecast.into_unlabelled()` (the label
//! is dropped on purpose). Both render with their label: `$1,234.50 (forecast)`.
//!
//! The explicit conversions compile:
//!
//! ```
//! use keel_money::{Currency, Estimated, Forecast, Money};
//! let actual = Money::from_minor(10_000, Currency::USD);
//! let forecast = Forecast::new(Money::from_minor(2_500, Currency::USD));
//! let estimate = Estimated::new(Money::from_minor(700, Currency::USD));
//! assert_eq!(actual.checked_add(forecast.into_unlabelled()).unwrap().minor(), 12_500);
//! assert_eq!(Forecast::new(actual).checked_add(forecast).unwrap().to_string(), "$125.00 (forecast)");
//! assert_eq!(estimate.to_string(), "$7.00 (estimated)");
//! ```
//!
//! Mixing without them does not (these doctests fail the build if it ever does):
//!
//! ```compile_fail
//! use keel_money::{Currency, Forecast, Money};
//! let actual = Money::from_minor(10_000, Currency::USD);
//! let forecast = Forecast::new(Money::from_minor(2_500, Currency::USD));
//! let _ = actual.checked_add(forecast);
//! ```
//!
//! ```compile_fail
//! use keel_money::{Currency, Estimated, Forecast, Money};
//! let forecast = Forecast::new(Money::from_minor(2_500, Currency::USD));
//! let estimate = Estimated::new(Money::from_minor(700, Currency::USD));
//! let _ = forecast.checked_add(estimate);
//! ```
//!
//! ```compile_fail
//! use keel_money::{Currency, Forecast, Money};
//! let forecast = Forecast::new(Money::from_minor(2_500, Currency::USD));
//! let _: Money = forecast;
//! ```
//!
//! Serde form: the money fields plus a `basis` tag, `{"basis":"forecast","minor":123450,"currency":"USD"}`;
//! deserializing checks the tag, so an estimate cannot be read back as a forecast.

use crate::{Currency, Money, MoneyError, PlainAmount};
use std::fmt;

macro_rules! labelled {
    ($name:ident, $label:literal, $what:literal) => {
        #[doc = concat!("A ", $what, ", distinct from actual amounts: see the module docs.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name<T>(T);

        impl<T> $name<T> {
            #[doc = concat!("Labels `value` as a ", $label, ".")]
            pub const fn new(value: T) -> Self {
                $name(value)
            }

            /// Drops the label. Call this only where the figure is deliberately treated as actual.
            pub fn into_unlabelled(self) -> T {
                self.0
            }

            /// The label rendered next to the figure.
            pub const LABEL: &'static str = $label;
        }

        impl $name<Money> {
            /// The amount in minor units (cents for USD).
            pub const fn minor(self) -> i64 {
                self.0.minor()
            }

            /// The amount's currency.
            pub const fn currency(self) -> Currency {
                self.0.currency()
            }

            #[doc = concat!("Adds two ", $label, "s; the result is still a ", $label, ".")]
            pub fn checked_add(self, other: $name<Money>) -> Result<$name<Money>, MoneyError> {
                self.0.checked_add(other.0).map($name)
            }

            #[doc = concat!("Subtracts two ", $label, "s; the result is still a ", $label, ".")]
            pub fn checked_sub(self, other: $name<Money>) -> Result<$name<Money>, MoneyError> {
                self.0.checked_sub(other.0).map($name)
            }

            /// The plain export form, without the label (CSV carries the label in its own column).
            pub fn plain(self) -> PlainAmount {
                self.0.plain()
            }
        }

        impl<T: fmt::Display> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&format!("{} ({})", self.0, $label))
            }
        }

        impl serde::Serialize for $name<Money> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                Tagged { basis: $label.to_string(), minor: self.0.minor(), currency: self.0.currency() }.serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name<Money> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let t = Tagged::deserialize(d)?;
                if t.basis != $label {
                    return Err(serde::de::Error::custom(format_args!(
                        "basis is {:?} but a {} was expected",
                        t.basis, $label
                    )));
                }
                Ok($name(Money::from_minor(t.minor, t.currency)))
            }
        }
    };
}

/// The wire form shared by both labels.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Tagged {
    basis: String,
    minor: i64,
    currency: Currency,
}

labelled!(Forecast, "forecast", "projected figure (a forecast)");
labelled!(Estimated, "estimated", "figure computed from incomplete data (an estimate)");
