//! Power-of-two scaling for sums and squares over raw values of any magnitude.
//!
//! Raw values can sit near `f64::MAX` (their sum or square overflows to infinity) or near
//! `f64::MIN_POSITIVE` (their squares vanish into 0). Every sum or square of raw values therefore
//! runs on the values multiplied by [`scale_for`] their largest magnitude: a power of two, so the
//! multiplication is exact, every rounding afterwards is the same rounding scaled, and a scale-free
//! result (a ratio, a z-score, a weight share) comes out bit for bit as without scaling. For
//! ordinary magnitudes the scale is exactly 1.

/// 2^-400 and 2^400: inside this band the squares of `n` values, summed, neither overflow nor lose
/// the smaller values to underflow, so no scaling is needed.
const SAFE_LOW: f64 = f64::from_bits((1023 - 400) << 52);
const SAFE_HIGH: f64 = f64::from_bits((1023 + 400) << 52);

/// The largest |x| of `values` (0 for an empty slice).
pub(crate) fn max_magnitude(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |m: f64, &x| m.max(x.abs()))
}

/// 1 when `magnitude` lies in [2^-400, 2^400] (or is 0 or not finite); otherwise the power of two
/// that brings it into [2, 4) (for subnormal magnitudes at most 2^1000, which still lifts them
/// past 2^-75).
pub(crate) fn scale_for(magnitude: f64) -> f64 {
    if !magnitude.is_finite() || magnitude == 0.0 || (SAFE_LOW..=SAFE_HIGH).contains(&magnitude) {
        return 1.0;
    }
    // std has no frexp/ldexp: the exponent field of a positive finite f64 is floor(log2 x), read
    // exactly; a subnormal is first lifted by 2^64 so that it has one.
    let (lifted, lift) = if magnitude < f64::MIN_POSITIVE {
        (magnitude * f64::from_bits((1023 + 64) << 52), 64)
    } else {
        (magnitude, 0)
    };
    // The sign bit is 0, so the top 12 bits are the biased exponent (≤ 2046 for a finite value).
    let exponent = (lifted.to_bits() >> 52) as i64 - 1023 - lift;
    let k = (1 - exponent).clamp(-1022, 1000);
    // k + 1023 is in [1, 2023]: a normal exponent field, so this is exactly 2^k.
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// (mean·s, s): the mean of the values times s = [`scale_for`] their largest magnitude, so that
/// the sum cannot overflow and a mean of subnormal values keeps its digits; NaN for an empty slice.
pub(crate) fn scaled_mean(values: &[f64]) -> (f64, f64) {
    let s = scale_for(max_magnitude(values));
    (
        values.iter().map(|&x| x * s).sum::<f64>() / values.len() as f64,
        s,
    )
}

/// The mean of `values` without overflow (see [`scaled_mean`]); NaN for an empty slice.
pub(crate) fn mean(values: &[f64]) -> f64 {
    let (m, s) = scaled_mean(values);
    m / s
}

/// Divides `values` (finite, ≥ 0) by their sum so that they sum to 1, summing at [`scale_for`]
/// their largest so that weights of 1e308 add up like weights of 1. Returns false, leaving the
/// values as they are, when the sum is 0.
pub(crate) fn divide_by_sum(values: &mut [f64]) -> bool {
    let s = scale_for(max_magnitude(values));
    let sum: f64 = values.iter().map(|&v| v * s).sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return false;
    }
    values.iter_mut().for_each(|v| *v = *v * s / sum);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_magnitudes_are_not_scaled() {
        for m in [1.0, 1e-100, 1e100, SAFE_LOW, SAFE_HIGH, 0.0, f64::NAN] {
            assert_eq!(scale_for(m), 1.0, "{m}");
        }
    }

    #[test]
    fn extreme_magnitudes_land_in_two_to_four() {
        for m in [
            f64::MAX,
            1e308,
            1e200,
            1e-200,
            f64::MIN_POSITIVE,
            1e-310,
            f64::from_bits(1),
        ] {
            let s = scale_for(m);
            assert_eq!(s.log2().fract(), 0.0, "{m}: {s} is not a power of two");
            let scaled = m * s;
            if m >= 2f64.powi(-1000) {
                assert!((2.0..4.0).contains(&scaled), "{m} × {s} = {scaled}");
            } else {
                assert!(scaled > 2f64.powi(-75), "{m} × {s} = {scaled}");
            }
        }
    }

    #[test]
    fn mean_and_shares_do_not_overflow() {
        assert_eq!(mean(&[1e308, 1e308, 1e308]), 1e308);
        assert_eq!(mean(&[2.0, 4.0]), 3.0);
        let mut w = [1e308, 1e308];
        assert!(divide_by_sum(&mut w));
        assert_eq!(w, [0.5, 0.5]);
        let mut w = [0.6, 0.4];
        assert!(divide_by_sum(&mut w));
        assert_eq!(w, [0.6 / 1.0, 0.4 / 1.0]);
        let mut zero = [0.0, 0.0];
        assert!(!divide_by_sum(&mut zero));
    }
}
