//! Aggregation of normalized columns into one score per entity: weighted sum,
//! weighted geometric mean and TOPSIS (as pymcdm's `WSM`, `WPM` and `TOPSIS` once the columns are
//! normalized). Columnar: the outer loop runs over criteria, the inner over one column's slice, and
//! the only allocations are the per-call accumulators.

use rayon::prelude::*;

use super::Aggregation;
use super::scale::scale_for;

/// One score per entity from normalized columns (higher is better) and weights summing to 1.
///
/// - `WeightedSum`: Σ_j w_j n_j. The weights sum to 1 (and are ≥ 0), so no partial sum exceeds
///   the largest |n| and nothing needs scaling.
/// - `GeometricMean`: Π_j n_j^w_j, computed as exp(Σ w_j ln n_j) so that it is exactly the
///   exponential of the sum of [`contributions`]; callers guarantee n > 0 (a 0 gives score 0), and a
///   criterion with weight 0 is skipped (0^0 = 1).
/// - `Topsis`: v = w·n; the ideal best and worst are the column-wise max and min of v (columns are
///   already higher-is-better); D+ and D− are Euclidean distances to them and the score is
///   D− ÷ (D+ + D−). When both are 0 (every entity identical) the score is 1, where pymcdm gives NaN.
///   The distances are taken on v scaled by a power of two near the largest column spread, so
///   spreads of 1e300 or 1e-300 neither overflow nor vanish when squared; the closeness, a
///   ratio of distances, is unchanged by the scale.
///
/// The number of entities is the length of the first column; with no columns the result is empty.
pub fn aggregate(method: Aggregation, normalized: &[Vec<f64>], weights: &[f64]) -> Vec<f64> {
    let mut scores = Vec::new();
    aggregate_into(method, normalized, weights, &mut scores);
    scores
}

/// [`aggregate`] into `scores`, a buffer reused from one call to the next.
pub(crate) fn aggregate_into(
    method: Aggregation,
    normalized: &[Vec<f64>],
    weights: &[f64],
    scores: &mut Vec<f64>,
) {
    debug_assert_eq!(normalized.len(), weights.len(), "one weight per criterion");
    let entities = normalized.first().map_or(0, Vec::len);
    match method {
        Aggregation::WeightedSum => by_chunks(entities, scores, |from, out| {
            for (column, &w) in normalized.iter().zip(weights) {
                for (s, &n) in out.iter_mut().zip(&column[from..]) {
                    *s += w * n;
                }
            }
        }),
        Aggregation::GeometricMean => by_chunks(entities, scores, |from, out| {
            for (column, &w) in normalized.iter().zip(weights) {
                if w == 0.0 {
                    continue;
                }
                for (s, &n) in out.iter_mut().zip(&column[from..]) {
                    *s += w * n.ln();
                }
            }
            out.iter_mut().for_each(|s| *s = s.exp());
        }),
        Aggregation::Topsis => topsis(normalized, weights, entities, scores),
    }
}

/// TOPSIS closeness D− ÷ (D+ + D−); see [`aggregate`].
fn topsis(normalized: &[Vec<f64>], weights: &[f64], entities: usize, closeness: &mut Vec<f64>) {
    // Weight first, then take max/min of v, exactly as pymcdm does (w ≥ 0 makes it the same as
    // weighting the max/min, but the rounding then matches too).
    let ideals: Vec<(f64, f64)> = normalized
        .par_iter()
        .zip(weights)
        .map(|(column, &w)| {
            column
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &n| {
                    let v = w * n;
                    (lo.min(v), hi.max(v))
                })
        })
        .collect();
    // Half the spread: best − worst itself overflows for v of ±1e308.
    let half_spread = ideals.iter().fold(0.0, |m: f64, &(worst, best)| {
        m.max(best * 0.5 - worst * 0.5)
    });
    let s = scale_for(half_spread);
    by_chunks(entities, closeness, |from, closeness| {
        // Squared distances to the best (D+²) and to the worst (D−²), accumulated column by
        // column over this chunk of entities.
        let to_best = closeness;
        let mut to_worst = vec![0.0; to_best.len()];
        for ((column, &w), &(worst, best)) in normalized.iter().zip(weights).zip(&ideals) {
            // A column without spread adds exactly 0 to both distances; skipping it also keeps a
            // huge constant column from overflowing when a tiny spread elsewhere sets a large scale.
            if worst == best {
                continue;
            }
            let (worst, best) = (worst * s, best * s);
            for ((plus, minus), &n) in to_best
                .iter_mut()
                .zip(to_worst.iter_mut())
                .zip(&column[from..])
            {
                let v = w * n * s;
                *plus += (v - best) * (v - best);
                *minus += (v - worst) * (v - worst);
            }
        }
        for (plus, &minus_squared) in to_best.iter_mut().zip(&to_worst) {
            let (d_plus, d_minus) = (plus.sqrt(), minus_squared.sqrt());
            let total = d_plus + d_minus;
            *plus = if total == 0.0 { 1.0 } else { d_minus / total };
        }
    })
}

/// Entities per task of [`by_chunks`]: a chunk's accumulators and its slice of each column stay
/// in cache, and a national cohort still splits into dozens of tasks.
const CHUNK: usize = 8 * 1024;

/// A zeroed vector of `entities` scores filled chunk by chunk in parallel: `fill(from, out)`
/// writes the scores of entities `from..from + out.len()`. Each entity's arithmetic is the same
/// as a serial loop's, in the same order, so the scores do not depend on the number of threads.
fn by_chunks(entities: usize, scores: &mut Vec<f64>, fill: impl Fn(usize, &mut [f64]) + Sync) {
    scores.clear();
    scores.resize(entities, 0.0);
    scores
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, out)| fill(c * CHUNK, out));
}

/// Each criterion's part of each entity's score: `[criterion][entity]`. Weighted sum: w·n; geometric mean: w·ln n (the log-score's parts); TOPSIS: w·n (indicative; TOPSIS is not additive).
///
/// For the geometric mean a criterion with weight 0 contributes 0 (0^0 = 1), so the parts always
/// sum to ln of the score.
pub fn contributions(
    method: Aggregation,
    normalized: &[Vec<f64>],
    weights: &[f64],
) -> Vec<Vec<f64>> {
    debug_assert_eq!(normalized.len(), weights.len(), "one weight per criterion");
    normalized
        .par_iter()
        .zip(weights)
        .map(|(column, &w)| match method {
            Aggregation::WeightedSum | Aggregation::Topsis => {
                column.iter().map(|&n| w * n).collect()
            }
            Aggregation::GeometricMean if w == 0.0 => vec![0.0; column.len()],
            Aggregation::GeometricMean => column.iter().map(|&n| w * n.ln()).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    // Three entities, two criteria.
    fn matrix() -> Vec<Vec<f64>> {
        vec![vec![1.0, 0.5, 0.0], vec![0.2, 0.4, 1.0]]
    }

    #[test]
    fn weighted_sum_by_hand() {
        // 0.6·1 + 0.4·0.2 = 0.68; 0.6·0.5 + 0.4·0.4 = 0.46; 0.6·0 + 0.4·1 = 0.4.
        close(
            &aggregate(Aggregation::WeightedSum, &matrix(), &[0.6, 0.4]),
            &[0.68, 0.46, 0.4],
        );
        let parts = contributions(Aggregation::WeightedSum, &matrix(), &[0.6, 0.4]);
        close(&parts[0], &[0.6, 0.3, 0.0]);
        close(&parts[1], &[0.08, 0.16, 0.4]);
    }

    #[test]
    fn geometric_mean_by_hand() {
        let n = vec![vec![4.0, 1.0], vec![0.25, 1.0]];
        // 4^0.5 · 0.25^0.5 = 1; 1 · 1 = 1. With weights 0.75 / 0.25: 4^0.75 · 0.25^0.25 = 2.
        close(
            &aggregate(Aggregation::GeometricMean, &n, &[0.5, 0.5]),
            &[1.0, 1.0],
        );
        close(
            &aggregate(Aggregation::GeometricMean, &n, &[0.75, 0.25]),
            &[2.0, 1.0],
        );
        let parts = contributions(Aggregation::GeometricMean, &n, &[0.75, 0.25]);
        close(&parts[0], &[0.75 * 4.0_f64.ln(), 0.0]);
        close(&parts[1], &[0.25 * 0.25_f64.ln(), 0.0]);
        // A zero weight ignores the criterion, even at 0.
        close(
            &aggregate(
                Aggregation::GeometricMean,
                &[vec![0.0, 9.0], vec![2.0, 3.0]],
                &[0.0, 1.0],
            ),
            &[2.0, 3.0],
        );
    }

    #[test]
    fn topsis_by_hand() {
        // v = (0.6, 0.08), (0.3, 0.16), (0, 0.4); best (0.6, 0.4), worst (0, 0.08).
        let s = aggregate(Aggregation::Topsis, &matrix(), &[0.6, 0.4]);
        let d = |a: f64, b: f64| (a * a + b * b).sqrt();
        let expect = [
            d(0.6, 0.0) / (d(0.0, 0.32) + d(0.6, 0.0)),
            d(0.3, 0.08) / (d(0.3, 0.24) + d(0.3, 0.08)),
            d(0.0, 0.32) / (d(0.6, 0.0) + d(0.0, 0.32)),
        ];
        close(&s, &expect);
        close(
            &contributions(Aggregation::Topsis, &matrix(), &[0.6, 0.4])[1],
            &[0.08, 0.16, 0.4],
        );
    }

    #[test]
    fn topsis_of_identical_entities_is_one() {
        close(
            &aggregate(
                Aggregation::Topsis,
                &[vec![0.3, 0.3], vec![0.7, 0.7]],
                &[0.5, 0.5],
            ),
            &[1.0, 1.0],
        );
    }

    #[test]
    fn no_criteria() {
        assert!(aggregate(Aggregation::WeightedSum, &[], &[]).is_empty());
        assert!(contributions(Aggregation::Topsis, &[], &[]).is_empty());
    }

    /// Spreads of 2^1000 would overflow when squared and spreads of 2^-1000 vanish; the factor is
    /// a power of two, so the closeness must come out bit for bit as for the ordinary matrix.
    #[test]
    fn topsis_of_extreme_spreads_matches_the_ordinary_matrix() {
        let want = aggregate(Aggregation::Topsis, &matrix(), &[0.6, 0.4]);
        for factor in [2f64.powi(1000), 2f64.powi(-1000)] {
            let scaled: Vec<Vec<f64>> = matrix()
                .iter()
                .map(|c| c.iter().map(|x| x * factor).collect())
                .collect();
            assert_eq!(
                aggregate(Aggregation::Topsis, &scaled, &[0.6, 0.4]),
                want,
                "× {factor:e}"
            );
        }
        // A huge constant column next to a tiny spread neither overflows nor ties everyone.
        let mixed = [vec![1e300; 3], vec![1e-300, 2e-300, 3e-300]];
        close(
            &aggregate(Aggregation::Topsis, &mixed, &[0.5, 0.5]),
            &[0.0, 0.5, 1.0],
        );
    }
}
