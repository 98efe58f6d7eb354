//! Property tests: allocation conserves the total, add/sub round-trip, parse/format round-trip for
//! every supported currency, and rounding against an independent reference.

use keel_money::{Currency, Money, MoneyError, Rounding};
use proptest::prelude::*;

fn any_currency() -> impl Strategy<Value = Currency> {
    proptest::sample::select(Currency::all().collect::<Vec<_>>())
}

fn any_money() -> impl Strategy<Value = Money> {
    (any::<i64>(), any_currency()).prop_map(|(minor, c)| Money::from_minor(minor, c))
}

/// Ratios with at least one positive entry, zeros allowed, sizes from tiny to u64::MAX.
fn ratios() -> impl Strategy<Value = Vec<u64>> {
    let ratio = prop_oneof![Just(0u64), 1u64..10, 1u64..1_000_000, any::<u64>()];
    proptest::collection::vec(ratio, 1..12).prop_filter("at least one positive ratio", |r| r.iter().any(|&x| x > 0))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn allocation_sums_to_the_total_and_each_share_is_within_one_unit(m in any_money(), ratios in ratios()) {
        let parts = m.allocate(&ratios).unwrap();
        prop_assert_eq!(parts.len(), ratios.len());
        let sum: i128 = parts.iter().map(|p| i128::from(p.minor())).sum();
        prop_assert_eq!(sum, i128::from(m.minor()));
        let weight: i128 = ratios.iter().map(|&r| i128::from(r)).sum();
        for (part, &r) in parts.iter().zip(&ratios) {
            prop_assert_eq!(part.currency(), m.currency());
            if r == 0 {
                prop_assert_eq!(part.minor(), 0);
            }
            // The share is the exact proportion |amount| × r / W, floored, plus at most the one leftover unit.
            let mag = u128::from(m.minor().unsigned_abs());
            let floor = mag * u128::from(r) / weight as u128;
            let got = u128::from(part.minor().unsigned_abs());
            prop_assert!(got == floor || got == floor + 1, "share {} vs floor {}", got, floor);
            prop_assert!(part.minor() == 0 || (part.minor() < 0) == (m.minor() < 0));
        }
    }

    #[test]
    fn allocation_of_a_negated_amount_is_the_negated_allocation(minor in -i64::MAX..=i64::MAX, ratios in ratios()) {
        let pos = Money::from_minor(minor, Currency::USD).allocate(&ratios).unwrap();
        let neg = Money::from_minor(-minor, Currency::USD).allocate(&ratios).unwrap();
        for (p, n) in pos.iter().zip(&neg) {
            prop_assert_eq!(p.minor(), -n.minor());
        }
    }

    #[test]
    fn split_sums_to_the_total_and_parts_differ_by_at_most_one(m in any_money(), parts in 1usize..50) {
        let split = m.split(parts).unwrap();
        prop_assert_eq!(split.len(), parts);
        prop_assert_eq!(split.iter().map(|p| i128::from(p.minor())).sum::<i128>(), i128::from(m.minor()));
        let max = split.iter().map(|p| p.minor()).max().unwrap();
        let min = split.iter().map(|p| p.minor()).min().unwrap();
        prop_assert!(i128::from(max) - i128::from(min) <= 1);
    }

    #[test]
    fn add_then_sub_round_trips_and_overflow_is_reported_exactly(a in any::<i64>(), b in any::<i64>(), c in any_currency()) {
        let (ma, mb) = (Money::from_minor(a, c), Money::from_minor(b, c));
        let exact = i128::from(a) + i128::from(b);
        match ma.checked_add(mb) {
            Ok(sum) => {
                prop_assert_eq!(i128::from(sum.minor()), exact);
                prop_assert_eq!(sum.checked_sub(mb), Ok(ma));
            }
            Err(e) => {
                prop_assert_eq!(e, MoneyError::Overflow { op: "add" });
                prop_assert!(i64::try_from(exact).is_err());
            }
        }
        match ma.checked_sub(mb) {
            Ok(diff) => prop_assert_eq!(diff.checked_add(mb), Ok(ma)),
            Err(e) => {
                prop_assert_eq!(e, MoneyError::Overflow { op: "subtract" });
                prop_assert!(i64::try_from(i128::from(a) - i128::from(b)).is_err());
            }
        }
    }

    #[test]
    fn plain_form_parses_back_to_the_same_amount_in_every_currency(m in any_money()) {
        let plain = m.plain().to_string();
        prop_assert_eq!(Money::parse(&plain, m.currency()), Ok(m));
        // Display is the plain form with a sign, a symbol or code, and grouping commas.
        let shown = m.to_string();
        let unsigned = shown.strip_prefix('-').unwrap_or(&shown);
        let prefix = m.currency().symbol().map_or_else(|| format!("{} ", m.currency().code()), str::to_string);
        let digits = unsigned.strip_prefix(prefix.as_str()).unwrap().replace(',', "");
        let sign = if m.is_negative() { "-" } else { "" };
        prop_assert_eq!(format!("{sign}{digits}"), plain);
    }

    #[test]
    fn every_supported_currency_round_trips_plain_and_json(minor in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), any::<i64>()]) {
        // Every currency on every case, not a sample of them.
        for c in Currency::all() {
            let m = Money::from_minor(minor, c);
            prop_assert_eq!(Money::parse(&m.plain().to_string(), c), Ok(m));
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        }
    }

    #[test]
    fn parse_rounded_matches_an_independent_reference(
        value in -1_000_000_000_000_000i64..1_000_000_000_000_000,
        extra_places in 1u32..6,
        c in any_currency(),
    ) {
        // `value` is in units of 10^-(exponent + extra_places); render it as decimal text.
        let places = u32::from(c.exponent()) + extra_places;
        let scale = 10i128.pow(places);
        let mag = i128::from(value).abs();
        let text = format!("{}{}.{:0width$}", if value < 0 { "-" } else { "" }, mag / scale, mag % scale, width = places as usize);
        let drop = 10i128.pow(extra_places);
        for mode in Rounding::ALL {
            let got = Money::parse_rounded(&text, c, mode).unwrap().minor();
            prop_assert_eq!(i128::from(got), reference_round(i128::from(value), drop, mode), "{} {:?}", text, mode);
        }
        let exact = Money::parse(&text, c);
        if i128::from(value) % drop == 0 {
            prop_assert_eq!(exact.map(|m| i128::from(m.minor())), Ok(i128::from(value) / drop));
        } else {
            let is_excess = matches!(exact, Err(MoneyError::ExcessPrecision { .. }));
            prop_assert!(is_excess);
        }
    }

    #[test]
    fn floor_and_ceiling_bracket_every_ratio(minor in any::<i64>(), numer in any::<i64>(), denom in 1i64..=i64::MAX) {
        let m = Money::from_minor(minor, Currency::USD);
        let exact_num = i128::from(minor) * i128::from(numer);
        let d = i128::from(denom);
        match (m.mul_ratio(numer, denom, Rounding::Floor), m.mul_ratio(numer, denom, Rounding::Ceiling)) {
            (Ok(lo), Ok(hi)) => {
                prop_assert!(i128::from(lo.minor()) * d <= exact_num && exact_num <= i128::from(hi.minor()) * d);
                prop_assert!(i128::from(hi.minor()) - i128::from(lo.minor()) <= 1);
            }
            (lo, hi) => {
                // Only a result outside i64 may fail, and only with Overflow.
                prop_assert!(exact_num.div_euclid(d) >= i128::from(i64::MAX) || exact_num.div_euclid(d) < i128::from(i64::MIN));
                for r in [lo, hi] {
                    if let Err(e) = r {
                        prop_assert_eq!(e, MoneyError::Overflow { op: "multiply by rate" });
                    }
                }
            }
        }
    }
}

/// Rounds `n / d` (d a power of ten > 1) the slow, obvious way, independent of the crate's code.
fn reference_round(n: i128, d: i128, mode: Rounding) -> i128 {
    let floor = n.div_euclid(d);
    let rem = n.rem_euclid(d); // 0 <= rem < d, measured up from floor
    if rem == 0 {
        return floor;
    }
    let ceil = floor + 1;
    let toward_zero = if n < 0 { ceil } else { floor };
    let away = if n < 0 { floor } else { ceil };
    let nearest_or = |tie: i128| match (2 * rem).cmp(&d) {
        std::cmp::Ordering::Less => floor,
        std::cmp::Ordering::Greater => ceil,
        std::cmp::Ordering::Equal => tie,
    };
    match mode {
        Rounding::Floor => floor,
        Rounding::Ceiling => ceil,
        Rounding::TowardZero => toward_zero,
        Rounding::AwayFromZero => away,
        Rounding::HalfAwayFromZero => nearest_or(away),
        Rounding::HalfTowardZero => nearest_or(toward_zero),
        Rounding::HalfEven => nearest_or(if floor % 2 == 0 { floor } else { ceil }),
    }
}
