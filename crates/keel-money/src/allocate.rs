//! Allocation: splitting an amount by ratios or into N parts so the parts always sum to the whole.
//!
//! Largest remainder (Hamilton): every share is floored in minor units, then the minor units left
//! over go one each to the shares with the largest discarded remainders (ties to the earlier
//! share). Fowler's 5¢ at 30/70 is 2¢ + 3¢ (remainders .5 and .5, tie to the first: 2¢, 3¢); no
//! input is lost because the input is already exact minor units (parsing refused sub-minor digits).
//! A negative amount is allocated as its magnitude and every share negated, so
//! `allocate(-x) == -allocate(x)`.

use crate::{Money, MoneyError};

impl Money {
    /// Splits `self` in proportion to `ratios` (e.g. `[30, 70]`, or seat counts). A zero ratio gets
    /// exactly zero. Fails if `ratios` is empty or all zero.
    pub fn allocate(self, ratios: &[u64]) -> Result<Vec<Money>, MoneyError> {
        if ratios.is_empty() {
            return Err(MoneyError::InvalidAllocation { reason: "no ratios given: pass at least one" });
        }
        let total_weight = ratios
            .iter()
            .try_fold(0u128, |sum, &r| sum.checked_add(u128::from(r)))
            .ok_or(MoneyError::InvalidAllocation { reason: "the ratios sum beyond u128" })?;
        if total_weight == 0 {
            return Err(MoneyError::InvalidAllocation { reason: "every ratio is zero: at least one must be positive" });
        }
        let magnitude = u128::from(self.minor().unsigned_abs());
        let mut shares = Vec::with_capacity(ratios.len());
        let mut remainders = Vec::with_capacity(ratios.len());
        let mut handed_out: u128 = 0;
        for (i, &r) in ratios.iter().enumerate() {
            // |i64| <= 2^63 and r < 2^64, so the product is below 2^127: exact in u128.
            let product = magnitude * u128::from(r);
            let share = product / total_weight;
            shares.push(share);
            remainders.push((product % total_weight, i));
            handed_out += share;
        }
        let leftover = usize::try_from(magnitude - handed_out)
            .map_err(|_| MoneyError::InvalidAllocation { reason: "leftover beyond usize" })?;
        // Largest remainder first; equal remainders go to the earlier share, deterministically.
        remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in remainders.iter().take(leftover) {
            shares[i] += 1;
        }
        self.signed_parts(shares)
    }

    /// Splits `self` into `parts` near-equal amounts; the first `|minor| % parts` get one extra
    /// minor unit ($10.00 / 3 is $3.34, $3.33, $3.33).
    pub fn split(self, parts: usize) -> Result<Vec<Money>, MoneyError> {
        if parts == 0 {
            return Err(MoneyError::InvalidAllocation {
                reason: "cannot split into 0 parts: parts must be at least 1",
            });
        }
        let magnitude = u128::from(self.minor().unsigned_abs());
        let n = parts as u128;
        let (each, extra) = (magnitude / n, magnitude % n);
        self.signed_parts((0..n).map(|i| if i < extra { each + 1 } else { each }).collect())
    }

    /// Turns share magnitudes back into amounts carrying `self`'s sign and currency.
    fn signed_parts(self, magnitudes: Vec<u128>) -> Result<Vec<Money>, MoneyError> {
        let negative = self.is_negative();
        magnitudes
            .into_iter()
            .map(|m| {
                // Each share is at most |self|, so it fits; the check keeps that a proof, not a hope.
                let signed = if negative { -(m as i128) } else { m as i128 };
                Money::from_minor_i128(signed, self.currency())
            })
            .collect()
    }
}
