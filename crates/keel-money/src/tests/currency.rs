//! Tests for `Currency`: the table, lookups, errors and serde.

use crate::currency_table::TABLE;
use crate::{Currency, MoneyError};

#[test]
fn table_is_sorted_unique_and_well_formed() {
    for pair in TABLE.windows(2) {
        assert!(pair[0].code < pair[1].code, "{} must sort before {}", pair[0].code, pair[1].code);
    }
    let mut numerics: Vec<u16> = TABLE.iter().map(|i| i.numeric).collect();
    numerics.sort_unstable();
    numerics.dedup();
    assert_eq!(numerics.len(), TABLE.len(), "numeric codes are unique");
    for info in &TABLE {
        assert!(info.code.len() == 3 && info.code.bytes().all(|b| b.is_ascii_uppercase()), "{}", info.code);
        assert!(info.exponent <= 4, "{}", info.code);
    }
}

#[test]
fn exponents_of_the_anchor_currencies() {
    let expected = [
        (Currency::USD, "USD", 2, 840),
        (Currency::EUR, "EUR", 2, 978),
        (Currency::GBP, "GBP", 2, 826),
        (Currency::JPY, "JPY", 0, 392),
        (Currency::KWD, "KWD", 3, 414),
        (Currency::BHD, "BHD", 3, 48),
        (Currency::CHF, "CHF", 2, 756),
        (Currency::CAD, "CAD", 2, 124),
        (Currency::AUD, "AUD", 2, 36),
        (Currency::KRW, "KRW", 0, 410),
        (Currency::CLF, "CLF", 4, 990),
    ];
    for (currency, code, exponent, numeric) in expected {
        assert_eq!(currency.code(), code);
        assert_eq!(currency.exponent(), exponent, "{code}");
        assert_eq!(currency.numeric(), numeric, "{code}");
        assert_eq!(currency.minor_per_major(), 10i64.pow(u32::from(exponent)), "{code}");
    }
}

#[test]
fn every_code_round_trips_through_lookup() {
    assert_eq!(Currency::all().len(), TABLE.len());
    for c in Currency::all() {
        assert_eq!(Currency::from_code(c.code()), Ok(c));
        assert_eq!(Currency::from_code(&c.code().to_ascii_lowercase()), Ok(c));
        assert_eq!(Currency::from_numeric(c.numeric()), Ok(c));
        assert_eq!(c.code().parse::<Currency>(), Ok(c));
    }
}

#[test]
fn unknown_codes_are_named_in_the_error() {
    for bad in ["XYZ", "", "US", "USDX", "U$D", "€UR"] {
        let err = Currency::from_code(bad).unwrap_err();
        assert_eq!(err, MoneyError::UnknownCurrency { code: bad.to_string() });
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    assert_eq!(Currency::from_numeric(999), Err(MoneyError::UnknownCurrency { code: "999".into() }));
}

#[test]
fn orders_alphabetically_and_displays_its_code() {
    assert!(Currency::EUR < Currency::JPY && Currency::JPY < Currency::USD);
    assert_eq!(Currency::USD.to_string(), "USD");
    assert_eq!(format!("{:>5}|{:?}", Currency::EUR, Currency::EUR), "  EUR|EUR");
    assert_eq!(Currency::USD.symbol(), Some("$"));
    assert_eq!(Currency::CAD.symbol(), Some("CA$"));
    assert_eq!(Currency::CHF.symbol(), None);
    assert_eq!(Currency::USD.name(), "US Dollar");
}

#[test]
fn serde_is_the_code_string() {
    assert_eq!(serde_json::to_string(&Currency::JPY).unwrap(), "\"JPY\"");
    assert_eq!(serde_json::from_str::<Currency>("\"kwd\"").unwrap(), Currency::KWD);
    let err = serde_json::from_str::<Currency>("\"XYZ\"").unwrap_err().to_string();
    assert!(err.contains("unknown currency code \"XYZ\""), "{err}");
    assert!(serde_json::from_str::<Currency>("840").is_err());
}
