//! Tests for `Forecast` and `Estimated`: labels in display and serde, arithmetic within a kind.

use crate::{Currency, Estimated, Forecast, Money, MoneyError};

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

#[test]
fn they_render_with_their_label() {
    assert_eq!(Forecast::new(usd(123_450)).to_string(), "$1,234.50 (forecast)");
    assert_eq!(Estimated::new(usd(-1)).to_string(), "-$0.01 (estimated)");
    assert_eq!(Forecast::new(usd(5)).plain().to_string(), "0.05");
    assert_eq!((Forecast::<Money>::LABEL, Estimated::<Money>::LABEL), ("forecast", "estimated"));
}

#[test]
fn arithmetic_stays_within_the_kind_and_actuals_need_an_explicit_conversion() {
    let month_so_far = usd(10_000);
    let rest_of_month = Forecast::new(usd(2_500));
    // The only ways across: label the actual, or drop the forecast's label on purpose.
    let projected = rest_of_month.checked_add(Forecast::new(month_so_far)).unwrap();
    assert_eq!(projected, Forecast::new(usd(12_500)));
    assert_eq!(projected.into_unlabelled(), usd(12_500));
    assert_eq!(projected.minor(), 12_500);
    assert_eq!(projected.currency(), Currency::USD);
    assert_eq!(Estimated::new(usd(3)).checked_sub(Estimated::new(usd(5))), Ok(Estimated::new(usd(-2))));
    assert!(matches!(
        Forecast::new(usd(1)).checked_add(Forecast::new(Money::from_minor(1, Currency::EUR))),
        Err(MoneyError::CurrencyMismatch { .. })
    ));
}

#[test]
fn serde_carries_the_basis_and_checks_it() {
    let json = serde_json::to_string(&Forecast::new(usd(123_450))).unwrap();
    assert_eq!(json, r#"{"basis":"forecast","minor":123450,"currency":"USD"}"#);
    assert_eq!(serde_json::from_str::<Forecast<Money>>(&json).unwrap(), Forecast::new(usd(123_450)));
    let est = serde_json::to_string(&Estimated::new(usd(1))).unwrap();
    assert_eq!(est, r#"{"basis":"estimated","minor":1,"currency":"USD"}"#);
    let err = serde_json::from_str::<Forecast<Money>>(&est).unwrap_err().to_string();
    assert!(err.contains("basis is \"estimated\" but a forecast was expected"), "{err}");
    assert!(serde_json::from_str::<Forecast<Money>>(r#"{"minor":1,"currency":"USD"}"#).is_err());
}
