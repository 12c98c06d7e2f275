//! Criterion weights: fixed, equal, entropy and CRITIC. Entropy and CRITIC follow
//! pymcdm's `entropy_weights` and `critic_weights`; `tests/pymcdm_oracle.rs` checks them.

use rayon::prelude::*;

use super::Weighting;
use super::normalize::min_max;
use super::scale::{divide_by_sum, max_magnitude, scale_for};

/// Why weights could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightingError {
    /// There are no criteria to weight.
    #[error("no criteria to weight")]
    NoCriteria,
    /// A fixed weight is negative or not finite.
    #[error("weight {value} of criterion {criterion} is negative or not finite")]
    InvalidWeight {
        /// The criterion's position.
        criterion: usize,
        /// The weight given.
        value: f64,
    },
    /// Every fixed weight is zero.
    #[error("all weights are zero")]
    AllZero,
    /// Entropy takes values as proportions, so they must be finite and ≥ 0.
    #[error(
        "entropy weighting needs values ≥ 0: criterion {criterion}, entity {entity} has {value}"
    )]
    InvalidEntropyValue {
        /// The criterion's position.
        criterion: usize,
        /// The entity's position in the column.
        entity: usize,
        /// The value found.
        value: f64,
    },
    /// A computed weight is not a finite number (a guard: the sums are scaled so that finite
    /// inputs give finite weights).
    #[error("weighting gave criterion {criterion} a weight that is not a finite number")]
    NonFinite {
        /// The criterion's position.
        criterion: usize,
    },
}

/// Criterion weights summing to 1. `fixed` are the scheme's weights (used by Fixed; ignored otherwise); `raw` and `normalized` are the columns.
///
/// Equal counts the columns given (`normalized`, or `raw` if that is longer); Entropy reads `raw`
/// and CRITIC reads `normalized`, so its correlations measure conflict between "goodness" values
/// (a lower-is-better column is already mirrored) as in Diakoulaki's CRITIC.
pub fn weights(
    method: Weighting,
    fixed: &[f64],
    raw: &[Vec<f64>],
    normalized: &[Vec<f64>],
) -> Result<Vec<f64>, WeightingError> {
    let computed = match method {
        Weighting::Fixed => fixed_weights(fixed),
        Weighting::Equal => {
            let k = normalized.len().max(raw.len());
            if k == 0 {
                return Err(WeightingError::NoCriteria);
            }
            Ok(vec![1.0 / k as f64; k])
        }
        Weighting::Entropy => entropy_weights(raw),
        Weighting::Critic => {
            if normalized.is_empty() {
                return Err(WeightingError::NoCriteria);
            }
            Ok(critic_weights(normalized))
        }
    }?;
    match computed.iter().position(|w| !w.is_finite()) {
        Some(criterion) => Err(WeightingError::NonFinite { criterion }),
        None => Ok(computed),
    }
}

/// The weights a run uses when they do not depend on the data: the fixed weights divided by
/// their sum, or the equal share; None for entropy and CRITIC, which derive them per run.
pub fn planned_weights(
    method: Weighting,
    fixed: &[f64],
) -> Option<Result<Vec<f64>, WeightingError>> {
    match method {
        Weighting::Fixed | Weighting::Equal => {
            Some(weights(method, fixed, &[], &vec![Vec::new(); fixed.len()]))
        }
        Weighting::Entropy | Weighting::Critic => None,
    }
}

/// A weight as it is shown: rounded to 15 significant digits, the most an f64 always holds, so
/// 0.2 ÷ 1.0 shows as 0.2 and not 0.19999999999999996 (the digits beyond are float noise).
pub fn shown(weight: f64) -> f64 {
    if !weight.is_finite() || weight == 0.0 {
        return weight;
    }
    shown_fast(weight).unwrap_or_else(|| shown_by_text(weight))
}

/// The reference: `{:.14e}` rounds to 15 significant digits exactly, and parsing reads the
/// nearest f64. Slow (a decimal conversion and an allocation), so only the rare cases the fast
/// path cannot decide exactly come here.
fn shown_by_text(weight: f64) -> f64 {
    format!("{weight:.14e}").parse().unwrap_or(weight)
}

/// Powers of ten that are exact in an f64 (10^22 is the largest).
const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// [`shown`] by arithmetic, exact whenever it answers: the value times 10^k is computed exactly
/// as a double-double (the error term by a fused multiply-add, 10^k being exact), rounded to
/// the 15-digit integer M, and M ÷ 10^k (or M × 10^−k) is one correctly rounded operation on
/// exact operands — what parsing "M e −k" gives. None for ties, and outside |k| ≤ 22.
fn shown_fast(x: f64) -> Option<f64> {
    let a = x.abs();
    // The decimal exponent, corrected below if log10 is off by one near a power of ten.
    let mut e = a.log10().floor() as i32;
    for _ in 0..2 {
        let k = 14 - e;
        if !(-22..=22).contains(&k) {
            return None;
        }
        let (y, err) = if k >= 0 {
            let p = EXACT_POW10[k as usize];
            let y = a * p;
            (y, a.mul_add(p, -y))
        } else {
            let p = EXACT_POW10[(-k) as usize];
            let y = a / p;
            // Division: the remainder a − y × p is exact by a fused multiply-add.
            (y, -(y.mul_add(p, -a)) / p)
        };
        if y < 1e14 {
            e -= 1;
            continue;
        }
        if y >= 1e15 && !(y == 1e15 && err < 0.0) {
            e += 1;
            continue;
        }
        if k < 0 && err != 0.0 {
            // The remainder divided by p is not exact: leave the rare close calls to the text.
            let frac = y - y.floor();
            if (frac - 0.5).abs() < 1e-3 || !(1e-3..=1.0 - 1e-3).contains(&frac) {
                return None;
            }
        }
        let r = y.round();
        // The exact distance of the value from r: (y − r) is exact (|y − r| ≤ 0.5 and y < 2^53).
        let d = (y - r) + err;
        let m = if d > 0.5 {
            r + 1.0
        } else if d < -0.5 {
            r - 1.0
        } else if (d.abs() - 0.5).abs() < 1e-9 {
            // A tie or too close to call.
            return None;
        } else {
            r
        };
        let shown = if k >= 0 {
            m / EXACT_POW10[k as usize]
        } else {
            m * EXACT_POW10[(-k) as usize]
        };
        return Some(shown.copysign(x));
    }
    None
}

/// The scheme's weights divided by their sum; negative, non-finite or all-zero weights are errors.
/// The sum is taken at the scale of the largest weight, so 1e308, 1e308 are 1, 1.
fn fixed_weights(fixed: &[f64]) -> Result<Vec<f64>, WeightingError> {
    if fixed.is_empty() {
        return Err(WeightingError::NoCriteria);
    }
    if let Some((criterion, &value)) = fixed
        .iter()
        .enumerate()
        .find(|&(_, &w)| !(w.is_finite() && w >= 0.0))
    {
        return Err(WeightingError::InvalidWeight { criterion, value });
    }
    let mut shares = fixed.to_vec();
    if !divide_by_sum(&mut shares) {
        return Err(WeightingError::AllZero);
    }
    Ok(shares)
}

/// Shannon-entropy weights of the raw columns (pymcdm `entropy_weights`).
///
/// Per column p = x ÷ Σx, E = −Σ p ln p ÷ ln n (n entities, 0 · ln 0 counted as 0), d = 1 − E,
/// w = d ÷ Σd. A column summing to 0 or without spread carries no information (d = 0 exactly;
/// rounding could otherwise leave ±1e-16 and a sign), d is clamped at 0, and when every d is 0
/// (or there is at most one entity, where ln n = 0) the weights are equal.
/// pymcdm rejects zeros outright (its sum normalization needs values > 0); zonerank allows them.
pub fn entropy_weights(raw: &[Vec<f64>]) -> Result<Vec<f64>, WeightingError> {
    if raw.is_empty() {
        return Err(WeightingError::NoCriteria);
    }
    // The first bad value of each column, looked for in parallel; the first column's is reported.
    let bad: Vec<Option<(usize, f64)>> = raw
        .par_iter()
        .map(|column| {
            column
                .iter()
                .position(|&x| !(x.is_finite() && x >= 0.0))
                .map(|entity| (entity, column[entity]))
        })
        .collect();
    if let Some((criterion, (entity, value))) = bad
        .into_iter()
        .enumerate()
        .find_map(|(criterion, first)| first.map(|f| (criterion, f)))
    {
        return Err(WeightingError::InvalidEntropyValue {
            criterion,
            entity,
            value,
        });
    }
    let divergence: Vec<f64> = raw
        .par_iter()
        .map(|column| entropy_divergence(column))
        .collect();
    Ok(normalize_or_equal(divergence))
}

/// d = 1 − E for one column of values ≥ 0; 0 where the column carries no information.
/// p = x ÷ Σx is taken on the column scaled by a power of two, so Σx cannot overflow.
fn entropy_divergence(column: &[f64]) -> f64 {
    let n = column.len();
    let s = scale_for(max_magnitude(column));
    let sum: f64 = column.iter().map(|&x| x * s).sum();
    let constant = column.iter().all(|&x| x == column[0]);
    if n < 2 || sum == 0.0 || constant {
        return 0.0;
    }
    let h: f64 = column
        .iter()
        .filter(|&&x| x > 0.0)
        .map(|&x| {
            let p = x * s / sum;
            p * p.ln()
        })
        .sum();
    let e = -h / (n as f64).ln();
    (1.0 - e).max(0.0)
}

/// CRITIC weights (pymcdm `critic_weights`): contrast × conflict.
///
/// As pymcdm does, each column is first min-max normalized (higher-is-better form, a constant
/// column all 1) — so any affine normalization upstream gives the same weights — then
/// C_j = s_j · Σ_k (1 − r_jk), with s_j the *sample* standard deviation (divisor n − 1, numpy
/// `ddof=1`) and r the Pearson correlation; w = C ÷ ΣC.
/// A constant column has s = 0 and an undefined correlation (pymcdm returns NaN for the whole
/// matrix); here it gets weight 0 and is left out of the others' conflict sums, so they are
/// weighted as if it were absent. With fewer than two entities, or when every C is 0 (a single
/// criterion, say), the weights are equal. No criteria gives an empty vector.
pub fn critic_weights(normalized: &[Vec<f64>]) -> Vec<f64> {
    let k = normalized.len();
    if k == 0 {
        return Vec::new();
    }
    let n = normalized[0].len();
    if n < 2 {
        return vec![1.0 / k as f64; k];
    }
    // Min-max (which scales extreme columns, so nothing after it can overflow), then centre: the
    // Pearson correlation and the sample sd need only the centred columns and their sums of
    // squares. A constant column min-maxes to all 1 and so centres to all 0.
    let centred: Vec<Vec<f64>> = normalized
        .iter()
        .map(|column| {
            let scaled = min_max(column, false, 0.0, 1.0);
            let mean = scaled.iter().sum::<f64>() / n as f64;
            scaled.into_iter().map(|x| x - mean).collect()
        })
        .collect();
    let sum_squares: Vec<f64> = centred
        .iter()
        .map(|c| c.iter().map(|&x| x * x).sum())
        .collect();
    let contrast: Vec<f64> = sum_squares
        .iter()
        .map(|&ss| (ss / (n - 1) as f64).sqrt())
        .collect();
    let mut information = vec![0.0; k];
    for j in 0..k {
        if sum_squares[j] == 0.0 {
            continue;
        }
        let mut conflict = 0.0;
        for l in 0..k {
            if l == j || sum_squares[l] == 0.0 {
                continue;
            }
            let cov: f64 = centred[j]
                .iter()
                .zip(&centred[l])
                .map(|(&a, &b)| a * b)
                .sum();
            let r = cov / (sum_squares[j] * sum_squares[l]).sqrt();
            conflict += 1.0 - r;
        }
        information[j] = contrast[j] * conflict;
    }
    normalize_or_equal(information)
}

/// Divides by the sum, or gives equal weights when the sum is 0.
fn normalize_or_equal(mut values: Vec<f64>) -> Vec<f64> {
    if !divide_by_sum(&mut values) {
        let equal = 1.0 / values.len() as f64;
        values.iter_mut().for_each(|v| *v = equal);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_weights_lose_float_noise_only() {
        let scaled = fixed_weights(&[0.2, 0.2, 0.2, 0.15, 0.15, 0.1]).unwrap();
        assert_eq!(scaled[0], 0.19999999999999996, "the noise this removes");
        assert_eq!(shown(scaled[0]), 0.2);
        assert_eq!(shown(1.0 / 3.0), 0.333333333333333);
        assert_eq!(shown(0.0), 0.0);
        assert_eq!(shown(1.2e-20), 1.2e-20);
        assert_eq!(shown(123_456_789.123_456_78), 123_456_789.123_457);
    }

    #[test]
    fn the_fast_shown_is_the_text_rounding_exactly() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut fast = 0;
        for i in 0..400_000 {
            let x: f64 = match i % 4 {
                // Any bit pattern: every exponent, subnormals and the specials.
                0 => f64::from_bits(rng.random()),
                // Ordinary scores and weights.
                1 => rng.random::<f64>(),
                2 => rng.random::<f64>() * 10f64.powi(rng.random_range(-12..20)),
                // Decimals with few digits, and values just beside them.
                _ => {
                    let d = f64::from(rng.random_range(0..100_000)) / 1000.0;
                    f64::from_bits(d.to_bits().wrapping_add(rng.random_range(0..3)) - 1)
                }
            };
            let want = shown_by_text(x);
            if !x.is_finite() || x == 0.0 {
                continue;
            }
            assert_eq!(shown(x).to_bits(), want.to_bits(), "{x:e}");
            fast += usize::from(shown_fast(x).is_some());
        }
        // The fast path answers nearly every ordinary value.
        assert!(fast > 250_000, "{fast}");
    }

    #[test]
    fn planned_weights_are_what_a_run_uses() {
        assert_eq!(
            planned_weights(Weighting::Fixed, &[0.6, 0.6]),
            Some(Ok(vec![0.5, 0.5]))
        );
        assert_eq!(
            planned_weights(Weighting::Equal, &[0.0, 0.0, 0.0, 0.0]),
            Some(Ok(vec![0.25; 4]))
        );
        assert_eq!(planned_weights(Weighting::Entropy, &[1.0]), None);
        assert_eq!(planned_weights(Weighting::Critic, &[1.0]), None);
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn fixed_weights_are_divided_by_their_sum() {
        close(
            &weights(Weighting::Fixed, &[2.0, 6.0, 0.0], &[], &[]).unwrap(),
            &[0.25, 0.75, 0.0],
        );
    }

    #[test]
    fn fixed_weights_errors() {
        assert_eq!(
            weights(Weighting::Fixed, &[1.0, -0.5], &[], &[]),
            Err(WeightingError::InvalidWeight {
                criterion: 1,
                value: -0.5
            })
        );
        assert!(matches!(
            weights(Weighting::Fixed, &[f64::NAN], &[], &[]),
            Err(WeightingError::InvalidWeight { criterion: 0, .. })
        ));
        assert_eq!(
            weights(Weighting::Fixed, &[0.0, 0.0], &[], &[]),
            Err(WeightingError::AllZero)
        );
        assert_eq!(
            weights(Weighting::Fixed, &[], &[], &[]),
            Err(WeightingError::NoCriteria)
        );
    }

    #[test]
    fn equal_weights() {
        let cols = vec![vec![1.0, 2.0]; 4];
        close(
            &weights(Weighting::Equal, &[9.0], &cols, &cols).unwrap(),
            &[0.25; 4],
        );
        assert_eq!(
            weights(Weighting::Equal, &[], &[], &[]),
            Err(WeightingError::NoCriteria)
        );
    }

    #[test]
    fn entropy_by_hand() {
        // Column 0: p = (1/4, 3/4); E = −(¼ ln ¼ + ¾ ln ¾) / ln 2. Column 1 is constant: d = 0.
        let e0 = -(0.25 * 0.25_f64.ln() + 0.75 * 0.75_f64.ln()) / 2.0_f64.ln();
        let raw = vec![vec![1.0, 3.0], vec![5.0, 5.0], vec![0.0, 2.0]];
        // Column 2: p = (0, 1), 0 ln 0 = 0, so E = 0 and d = 1.
        let d = [1.0 - e0, 0.0, 1.0];
        let sum: f64 = d.iter().sum();
        close(
            &entropy_weights(&raw).unwrap(),
            &[d[0] / sum, 0.0, 1.0 / sum],
        );
    }

    #[test]
    fn entropy_with_a_zero_sum_column() {
        let raw = vec![vec![0.0, 0.0, 0.0], vec![1.0, 2.0, 3.0]];
        close(&entropy_weights(&raw).unwrap(), &[0.0, 1.0]);
        // Nothing informative at all: equal weights.
        let flat = vec![vec![0.0, 0.0], vec![4.0, 4.0]];
        close(&entropy_weights(&flat).unwrap(), &[0.5, 0.5]);
        close(
            &entropy_weights(&[vec![3.0], vec![1.0]]).unwrap(),
            &[0.5, 0.5],
        );
    }

    #[test]
    fn entropy_rejects_negative_values_and_no_criteria() {
        assert_eq!(
            entropy_weights(&[vec![1.0, 2.0], vec![3.0, -1.0]]),
            Err(WeightingError::InvalidEntropyValue {
                criterion: 1,
                entity: 1,
                value: -1.0
            })
        );
        assert_eq!(entropy_weights(&[]), Err(WeightingError::NoCriteria));
    }

    #[test]
    fn critic_by_hand() {
        // Two perfectly opposed columns with equal spread: r = −1, conflict 2 each, equal weights.
        close(
            &critic_weights(&[vec![0.0, 0.5, 1.0], vec![1.0, 0.5, 0.0]]),
            &[0.5, 0.5],
        );
        // Identical columns: no conflict anywhere, equal weights.
        close(
            &critic_weights(&[vec![1.0, 2.0, 4.0], vec![1.0, 2.0, 4.0]]),
            &[0.5, 0.5],
        );
        // A single criterion.
        close(&critic_weights(&[vec![1.0, 2.0, 4.0]]), &[1.0]);
    }

    #[test]
    fn critic_constant_column_gets_zero_and_is_otherwise_ignored() {
        let a = vec![0.1, 0.9, 0.4, 0.7];
        let b = vec![0.3, 0.2, 0.8, 0.6];
        let without = critic_weights(&[a.clone(), b.clone()]);
        let with = critic_weights(&[a, vec![2.0; 4], b]);
        close(&with, &[without[0], 0.0, without[1]]);
    }

    #[test]
    fn critic_is_invariant_to_affine_rescaling() {
        let a = vec![1.0, 5.0, 2.0, 8.0, 3.0];
        let b = vec![4.0, 1.0, 6.0, 2.0, 2.5];
        let c = vec![7.0, 7.5, 1.0, 3.0, 9.0];
        let scaled: Vec<Vec<f64>> = [&a, &b, &c]
            .iter()
            .map(|col| col.iter().map(|x| 3.0 * x + 10.0).collect())
            .collect();
        close(&critic_weights(&[a, b, c]), &critic_weights(&scaled));
    }

    #[test]
    fn fixed_weights_of_1e308_sum_without_overflow() {
        close(
            &weights(Weighting::Fixed, &[1e308, 1e308, 5e307], &[], &[]).unwrap(),
            &[0.4, 0.4, 0.2],
        );
        close(
            &weights(Weighting::Fixed, &[f64::MAX, f64::MAX], &[], &[]).unwrap(),
            &[0.5, 0.5],
        );
    }

    /// Power-of-two factors are exact, so extreme columns must give the very same weights.
    #[test]
    fn entropy_and_critic_of_extreme_columns_match_ordinary_ones() {
        let raw = vec![
            vec![1.0, 5.0, 2.0, 8.0, 3.0],
            vec![4.0, 1.0, 6.0, 2.0, 2.5],
            vec![0.0, 7.5, 1.0, 3.0, 9.0],
        ];
        let signed = vec![vec![-15.0, 5.0, 10.0, 15.5], vec![3.0, -2.0, 1.0, 0.0]];
        for factor in [2f64.powi(1020), 2f64.powi(-600), f64::from_bits(1 << 14)] {
            let scale = |columns: &[Vec<f64>]| -> Vec<Vec<f64>> {
                columns
                    .iter()
                    .map(|c| c.iter().map(|x| x * factor).collect())
                    .collect()
            };
            assert_eq!(
                entropy_weights(&scale(&raw)),
                entropy_weights(&raw),
                "× {factor:e}"
            );
            assert_eq!(
                critic_weights(&scale(&signed)),
                critic_weights(&signed),
                "× {factor:e}"
            );
        }
    }
}
