//! `Currency`: an ISO 4217 code from the supported table, with its minor-unit exponent.

use crate::currency_table::{Info, TABLE};
use crate::error::{echo, MoneyError};
use std::fmt;
use std::str::FromStr;

/// A supported ISO 4217 currency. Built only from the table (constants or [`Currency::from_code`]),
/// so a value in hand always has a known exponent.
///
/// It is one byte (a table position), which keeps `Money` at 16 bytes and makes the currency check
/// on every addition a byte compare. Ordering is alphabetical by code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(u8);

/// Resolves a code at compile time; a typo in a constant below is a build error, not a runtime one.
const fn index_of(code: &str) -> u8 {
    let want = code.as_bytes();
    let mut i = 0;
    while i < TABLE.len() {
        let have = TABLE[i].code.as_bytes();
        if have[0] == want[0] && have[1] == want[1] && have[2] == want[2] {
            return i as u8;
        }
        i += 1;
    }
    panic!("currency constant missing from TABLE")
}

macro_rules! constants {
    ($($code:ident),* $(,)?) => {
        impl Currency {
            $(
                #[doc = concat!("ISO 4217 ", stringify!($code), ".")]
                pub const $code: Currency = Currency(index_of(stringify!($code)));
            )*
        }
    };
}

constants!(
    AED, ARS, AUD, BGN, BHD, BRL, CAD, CHF, CLF, CLP, CNY, COP, CZK, DKK, EGP, EUR, GBP, HKD, HUF, IDR, ILS, INR, IQD,
    ISK, JOD, JPY, KES, KRW, KWD, LYD, MAD, MXN, MYR, NGN, NOK, NZD, OMR, PEN, PHP, PKR, PLN, PYG, QAR, RON, RSD, SAR,
    SEK, SGD, THB, TND, TRY, TWD, UAH, UGX, USD, UYU, VND, XAF, XOF, ZAR, ZMW,
);

impl Currency {
    /// Looks up a three-letter code, ASCII case-insensitively ("usd" is USD, as Stripe sends it).
    /// Anything not in the table is [`MoneyError::UnknownCurrency`] naming the code.
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        let unknown = || MoneyError::UnknownCurrency { code: echo(code) };
        let bytes = code.as_bytes();
        if bytes.len() != 3 {
            return Err(unknown());
        }
        let upper = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase(), bytes[2].to_ascii_uppercase()];
        TABLE
            .binary_search_by(|info| info.code.as_bytes().cmp(&upper[..]))
            .map(|i| Currency(i as u8))
            .map_err(|_| unknown())
    }

    /// Looks up an ISO 4217 numeric code (840 is USD).
    pub fn from_numeric(numeric: u16) -> Result<Currency, MoneyError> {
        TABLE
            .iter()
            .position(|info| info.numeric == numeric)
            .map(|i| Currency(i as u8))
            .ok_or_else(|| MoneyError::UnknownCurrency { code: format!("{numeric:03}") })
    }

    /// Every supported currency, alphabetically.
    pub fn all() -> impl ExactSizeIterator<Item = Currency> {
        (0..TABLE.len()).map(|i| Currency(i as u8))
    }

    fn info(self) -> &'static Info {
        // The index is only ever built from a TABLE position.
        &TABLE[self.0 as usize]
    }

    /// The three-letter code, e.g. "USD".
    pub fn code(self) -> &'static str {
        self.info().code
    }

    /// The ISO 4217 numeric code, e.g. 840.
    pub fn numeric(self) -> u16 {
        self.info().numeric
    }

    /// Digits after the decimal point in the minor unit: USD 2, JPY 0, KWD 3.
    pub fn exponent(self) -> u8 {
        self.info().exponent
    }

    /// Minor units per major unit: 10^exponent (USD 100, JPY 1, KWD 1000).
    pub fn minor_per_major(self) -> i64 {
        10i64.pow(u32::from(self.exponent()))
    }

    /// The English display symbol where one is unambiguous ("$", "€", "CA$"); `None` displays the code.
    pub fn symbol(self) -> Option<&'static str> {
        self.info().symbol
    }

    /// The ISO 4217 English name, e.g. "US Dollar".
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Code;
        impl serde::de::Visitor<'_> for Code {
            type Value = Currency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a three-letter ISO 4217 currency code such as \"USD\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Currency, E> {
                Currency::from_code(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Code)
    }
}
