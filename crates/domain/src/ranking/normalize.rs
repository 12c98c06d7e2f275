//! Normalization of one criterion column. After normalizing, higher is better for
//! every criterion. Conventions follow pymcdm where it fixes one (min-max, vector); the rest are
//! documented on [`normalize`] and checked against pymcdm / scipy in `tests/pymcdm_oracle.rs`.

use super::Normalization;
use super::scale::{max_magnitude, scale_for, scaled_mean};
use crate::catalog::Direction;

/// Normalizes one criterion column so that higher is better afterwards.
///
/// Per method (`n` values, lower-is-better mirrors in brackets):
/// - `MinMax`: (x − min) ÷ (max − min) [(max − x) ÷ (max − min)]; a constant column is all 1 (pymcdm).
/// - `Efficacy` (功效系数): 60 + 40 × min-max, so a constant column is all 100.
/// - `ZScore`: (x − mean) ÷ σ [(mean − x) ÷ σ] with the *population* standard deviation
///   (divisor n, as `scipy.stats.zscore`); a constant column is all 0.
/// - `Vector`: x ÷ ‖x‖₂ [1 − x ÷ ‖x‖₂] (pymcdm); an all-zero column is all 1, like a constant
///   min-max column, because 0 ÷ 0 has no better answer and 1 leaves a geometric mean untouched.
/// - `BenchmarkRatio`: x ÷ b [b ÷ x], b the benchmark, or the cohort mean when it is `None` or 0.
///   For lower-is-better a value of 0 (infinitely good) gets the column's best finite ratio, so one
///   zero cannot swamp a weighted sum; if no value is non-zero, or b is 0 (a zero cohort mean), every
///   ratio is 1. Meant for positive quantities (亩均税收 and the like).
/// - `PercentileRank`: (number of values ≤ x) ÷ n [(number of values ≥ x) ÷ n], so ties share the
///   highest share and the best value scores 1 (`scipy.stats.percentileofscore(kind="weak")`).
///
/// Sums and squares run on the column scaled by a power of two (see [`super::scale`]), so values
/// near `f64::MAX` or `f64::MIN_POSITIVE` normalize as the same values divided by 1e300 would.
/// A ratio that itself exceeds `f64::MAX` (a value far above a fixed benchmark) is infinite; the
/// engine refuses it. An empty column gives an empty vector.
pub fn normalize(
    values: &[f64],
    direction: Direction,
    method: Normalization,
    benchmark: Option<f64>,
) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    let lower = direction == Direction::LowerIsBetter;
    match method {
        Normalization::MinMax => min_max(values, lower, 0.0, 1.0),
        Normalization::Efficacy => min_max(values, lower, 60.0, 40.0),
        Normalization::ZScore => {
            let (mean, sd, s) = scaled_mean_and_population_sd(values);
            if sd == 0.0 {
                return vec![0.0; values.len()];
            }
            let sign = if lower { -1.0 } else { 1.0 };
            values.iter().map(|&x| sign * (x * s - mean) / sd).collect()
        }
        Normalization::Vector => {
            let (norm, s) = scaled_euclidean_norm(values);
            if norm == 0.0 {
                return vec![1.0; values.len()];
            }
            if lower {
                values.iter().map(|&x| 1.0 - x * s / norm).collect()
            } else {
                values.iter().map(|&x| x * s / norm).collect()
            }
        }
        Normalization::BenchmarkRatio => benchmark_ratio(values, lower, benchmark),
        Normalization::PercentileRank => percentile_rank(values, lower),
    }
}

/// `offset + scale × min-max`, the shared body of min-max, efficacy and CRITIC's first step.
pub(crate) fn min_max(values: &[f64], lower: bool, offset: f64, scale: f64) -> Vec<f64> {
    let (min, max, s) = scaled_min_and_max(values);
    if min == max {
        return vec![offset + scale; values.len()];
    }
    // Scaled, max − min cannot overflow even for values of ±1e308.
    let range = max - min;
    if lower {
        values
            .iter()
            .map(|&x| offset + scale * ((max - x * s) / range))
            .collect()
    } else {
        values
            .iter()
            .map(|&x| offset + scale * ((x * s - min) / range))
            .collect()
    }
}

fn benchmark_ratio(values: &[f64], lower: bool, benchmark: Option<f64>) -> Vec<f64> {
    let (b, s) = scaled_benchmark(values, benchmark);
    if b == 0.0 {
        return vec![1.0; values.len()];
    }
    if !lower {
        return values.iter().map(|&x| x * s / b).collect();
    }
    let best_finite = values
        .iter()
        .filter(|&&x| x != 0.0)
        .map(|&x| b / (x * s))
        .fold(f64::NEG_INFINITY, f64::max);
    let at_zero = if best_finite.is_finite() {
        best_finite
    } else {
        1.0
    };
    values
        .iter()
        .map(|&x| if x == 0.0 { at_zero } else { b / (x * s) })
        .collect()
}

/// The benchmark in use as (b·s, s), values to be divided as x·s: the given one with s = 1
/// unless it is missing or 0, else the cohort mean at its scale (see [`scaled_mean`]).
fn scaled_benchmark(values: &[f64], benchmark: Option<f64>) -> (f64, f64) {
    match benchmark {
        Some(b) if b != 0.0 => (b, 1.0),
        _ => scaled_mean(values),
    }
}

fn percentile_rank(values: &[f64], lower: bool) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    values
        .iter()
        .map(|&x| {
            let count = if lower {
                sorted.len() - sorted.partition_point(|&v| v < x)
            } else {
                sorted.partition_point(|&v| v <= x)
            };
            count as f64 / n
        })
        .collect()
}

/// (min·s, max·s, s) with s = [`scale_for`] the larger magnitude of the two.
fn scaled_min_and_max(values: &[f64]) -> (f64, f64, f64) {
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let s = scale_for(min.abs().max(max.abs()));
    (min * s, max * s, s)
}

/// (mean·s, σ·s, s), σ the population standard deviation, both computed on the values times s
/// = [`scale_for`] their largest magnitude, so neither the sum nor the squares overflow or vanish.
fn scaled_mean_and_population_sd(values: &[f64]) -> (f64, f64, f64) {
    let (m, s) = scaled_mean(values);
    let n = values.len() as f64;
    let var = values
        .iter()
        .map(|&x| (x * s - m) * (x * s - m))
        .sum::<f64>()
        / n;
    (m, var.sqrt(), s)
}

/// (‖x‖₂·s, s), the norm of the values times s = [`scale_for`] their largest magnitude.
fn scaled_euclidean_norm(values: &[f64]) -> (f64, f64) {
    let s = scale_for(max_magnitude(values));
    let norm = values
        .iter()
        .map(|&x| (x * s) * (x * s))
        .sum::<f64>()
        .sqrt();
    (norm, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn min_max_and_its_mirror() {
        let v = [2.0, 4.0, 10.0];
        close(
            &normalize(&v, Higher, Normalization::MinMax, None),
            &[0.0, 0.25, 1.0],
        );
        close(
            &normalize(&v, Lower, Normalization::MinMax, None),
            &[1.0, 0.75, 0.0],
        );
        close(
            &normalize(&[3.0, 3.0], Lower, Normalization::MinMax, None),
            &[1.0, 1.0],
        );
    }

    #[test]
    fn efficacy_is_60_plus_40_min_max() {
        let v = [2.0, 4.0, 10.0];
        close(
            &normalize(&v, Higher, Normalization::Efficacy, None),
            &[60.0, 70.0, 100.0],
        );
        close(
            &normalize(&v, Lower, Normalization::Efficacy, None),
            &[100.0, 90.0, 60.0],
        );
        close(
            &normalize(&[5.0, 5.0, 5.0], Higher, Normalization::Efficacy, None),
            &[100.0; 3],
        );
    }

    #[test]
    fn z_score_uses_the_population_sd() {
        // mean 5, population variance (9 + 1 + 1 + 9) / 4 = 5.
        let v = [2.0, 4.0, 6.0, 8.0];
        let sd = 5.0_f64.sqrt();
        close(
            &normalize(&v, Higher, Normalization::ZScore, None),
            &[-3.0 / sd, -1.0 / sd, 1.0 / sd, 3.0 / sd],
        );
        close(
            &normalize(&v, Lower, Normalization::ZScore, None),
            &[3.0 / sd, 1.0 / sd, -1.0 / sd, -3.0 / sd],
        );
        close(
            &normalize(&[7.0, 7.0], Higher, Normalization::ZScore, None),
            &[0.0, 0.0],
        );
    }

    #[test]
    fn vector_and_its_mirror() {
        let v = [3.0, 4.0];
        close(
            &normalize(&v, Higher, Normalization::Vector, None),
            &[0.6, 0.8],
        );
        close(
            &normalize(&v, Lower, Normalization::Vector, None),
            &[0.4, 0.2],
        );
        close(
            &normalize(&[0.0, 0.0], Higher, Normalization::Vector, None),
            &[1.0, 1.0],
        );
    }

    #[test]
    fn benchmark_ratio_with_a_fixed_benchmark_and_the_cohort_mean() {
        let v = [50.0, 100.0, 150.0];
        close(
            &normalize(&v, Higher, Normalization::BenchmarkRatio, Some(200.0)),
            &[0.25, 0.5, 0.75],
        );
        close(
            &normalize(&v, Lower, Normalization::BenchmarkRatio, Some(200.0)),
            &[4.0, 2.0, 200.0 / 150.0],
        );
        // None and 0 both mean the cohort mean, 100.
        for b in [None, Some(0.0)] {
            close(
                &normalize(&v, Higher, Normalization::BenchmarkRatio, b),
                &[0.5, 1.0, 1.5],
            );
        }
        close(
            &normalize(&v, Lower, Normalization::BenchmarkRatio, None),
            &[2.0, 1.0, 100.0 / 150.0],
        );
    }

    #[test]
    fn lower_is_better_benchmark_ratio_gives_zero_the_best_finite_ratio() {
        let v = [0.0, 10.0, 40.0];
        close(
            &normalize(&v, Lower, Normalization::BenchmarkRatio, Some(20.0)),
            &[2.0, 2.0, 0.5],
        );
        close(
            &normalize(&[0.0, 0.0], Lower, Normalization::BenchmarkRatio, Some(5.0)),
            &[1.0, 1.0],
        );
        close(
            &normalize(&[0.0, 0.0], Higher, Normalization::BenchmarkRatio, None),
            &[1.0, 1.0],
        );
    }

    #[test]
    fn percentile_rank_ties_share_the_highest() {
        let v = [10.0, 20.0, 20.0, 30.0, 5.0];
        close(
            &normalize(&v, Higher, Normalization::PercentileRank, None),
            &[0.4, 0.8, 0.8, 1.0, 0.2],
        );
        close(
            &normalize(&v, Lower, Normalization::PercentileRank, None),
            &[0.8, 0.6, 0.6, 0.2, 1.0],
        );
        close(
            &normalize(&[1.0, 1.0], Lower, Normalization::PercentileRank, None),
            &[1.0, 1.0],
        );
    }

    #[test]
    fn empty_column() {
        assert!(normalize(&[], Higher, Normalization::MinMax, None).is_empty());
    }

    /// A power-of-two factor is exact, so a column near f64::MAX (mixed signs: max − min alone
    /// would overflow), one of subnormals or one near 2^-600 must normalize to the very same bits.
    #[test]
    fn extreme_magnitudes_normalize_exactly_like_ordinary_ones() {
        let ordinary = [-15.0, 5.0, 10.0, 15.5, 0.0];
        let factors = [
            2f64.powi(1020),
            2f64.powi(-600),
            f64::from_bits(1 << 14), // 2^-1060: every value is subnormal
        ];
        let methods = [
            Normalization::MinMax,
            Normalization::Efficacy,
            Normalization::ZScore,
            Normalization::Vector,
            Normalization::BenchmarkRatio,
            Normalization::PercentileRank,
        ];
        for factor in factors {
            let extreme: Vec<f64> = ordinary.iter().map(|x| x * factor).collect();
            for method in methods {
                for direction in [Higher, Lower] {
                    let want = normalize(&ordinary, direction, method, None);
                    let got = normalize(&extreme, direction, method, None);
                    assert_eq!(got, want, "{method:?} {direction:?} × {factor:e}");
                }
            }
        }
    }
}
