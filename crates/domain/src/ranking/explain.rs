//! "Why am I ranked here?": the gap to the nearest entity above and, per criterion, how much
//! that criterion alone would have to improve to close it.

use super::Aggregation;
use super::Normalization;
use super::aggregate::aggregate;
use super::engine::{RankingInput, RankingOutcome, present_raw};
use super::normalize::denormalize;
use super::scheme::nearly_equal;

/// What one criterion alone would take to reach the entity above.
#[derive(Clone, Debug, PartialEq)]
pub struct CriterionGap {
    /// The criterion's index in the scheme.
    pub criterion: usize,
    /// The above entity's contribution minus this one's (negative where this one is ahead).
    pub score_gap: f64,
    /// The normalised increase that alone closes the gap (infinite when no increase can).
    pub normalized_gap: f64,
    /// The raw value giving the needed normalised value (None: not invertible or out of reach).
    pub raw_target: Option<f64>,
    /// `raw_target` minus the current raw value (negative when lower is better).
    pub raw_gap: Option<f64>,
}

/// The gap from one entity to the nearest entity ranked above it.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The entity explained (input index).
    pub entity: usize,
    /// The entity with the smallest score strictly above (None for the top).
    pub above: Option<usize>,
    /// The score difference to `above` (0 for the top).
    pub score_gap: f64,
    /// Per criterion, what alone would close the gap (empty for the top).
    pub gaps: Vec<CriterionGap>,
}

/// The highest normalised value a criterion can take while the column's scale stays put.
fn attainable_max(method: Normalization, column: &[f64]) -> f64 {
    match method {
        Normalization::MinMax | Normalization::Vector => 1.0,
        Normalization::Efficacy => 100.0,
        // Being the cohort's best is the most a percentile rank can give.
        Normalization::PercentileRank => column.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Normalization::ZScore | Normalization::BenchmarkRatio => f64::INFINITY,
    }
}

/// Recomputes one entity's aggregate with one normalised value replaced.
struct Probe<'w> {
    method: Aggregation,
    weights: &'w [f64],
    /// `[criterion][row]`, either the whole cohort or [entity, best of others, worst of others].
    columns: Vec<Vec<f64>>,
    /// The entity's row.
    at: usize,
}

impl Probe<'_> {
    fn score(&mut self, criterion: usize, value: f64) -> f64 {
        let kept = std::mem::replace(&mut self.columns[criterion][self.at], value);
        let score = aggregate(self.method, &self.columns, self.weights)[self.at];
        self.columns[criterion][self.at] = kept;
        score
    }

    /// The smallest value of `criterion` whose aggregate reaches `target`, found by widening an
    /// upper bracket and then bisecting (the aggregations are non-decreasing in each value);
    /// infinite when 64 doublings do not reach it (e.g. a zero weight).
    fn solve(&mut self, criterion: usize, current: f64, start: f64, target: f64) -> f64 {
        let mut lo = current;
        let mut hi = start;
        let mut reached = false;
        for _ in 0..64 {
            if self.score(criterion, hi) >= target {
                reached = true;
                break;
            }
            lo = hi;
            hi = current + 2.0 * (hi - current);
        }
        if !reached {
            return f64::INFINITY;
        }
        for _ in 0..200 {
            if hi - lo <= 1e-13 * hi.abs().max(1.0) {
                break;
            }
            let mid = lo + (hi - lo) / 2.0;
            if self.score(criterion, mid) >= target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

/// Explains an included entity's position; None when it is unknown or excluded.
///
/// For a weighted sum the needed normalised increase is exactly score gap ÷ weight. For the
/// other aggregations it is found by bisection on that one normalised value, the others held
/// fixed, recomputing the score with `aggregate`. Because a geometric mean depends only on the
/// entity's own values and TOPSIS on the cohort only through each column's best and worst, the
/// cohort is condensed to three rows (the entity, the others' best, the others' worst); if that
/// does not reproduce the entity's score the whole included cohort is used instead.
/// The raw target inverts the normalisation with the column's scale (min, max, mean …) held as
/// it is, which is exact unless the entity's own value would move that scale.
pub fn explain(
    input: &RankingInput<'_>,
    outcome: &RankingOutcome,
    entity: usize,
) -> Option<Explanation> {
    let entry = outcome.entries.get(entity).filter(|e| e.included)?;
    let above = outcome
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.included && e.score > entry.score && !nearly_equal(e.score, entry.score))
        .min_by(|(i, a), (j, b)| a.score.total_cmp(&b.score).then(i.cmp(j)))
        .map(|(i, _)| i);
    let Some(above) = above else {
        return Some(Explanation {
            entity,
            above: None,
            score_gap: 0.0,
            gaps: Vec::new(),
        });
    };
    let scheme = input.scheme;
    let above_entry = &outcome.entries[above];
    let score_gap = above_entry.score - entry.score;
    let weights = &outcome.weights;
    let cohort: Vec<usize> = (0..outcome.entries.len())
        .filter(|&e| outcome.entries[e].included)
        .collect();
    let m = scheme.criteria.len();
    // Whole normalised columns of the cohort, rebuilt once.
    let columns: Vec<Vec<f64>> = (0..m)
        .map(|j| {
            cohort
                .iter()
                .map(|&e| outcome.entries[e].normalized[j])
                .collect()
        })
        .collect();

    let mut probe = (scheme.aggregation != Aggregation::WeightedSum).then(|| {
        probe_for(
            scheme.aggregation,
            weights,
            &columns,
            &cohort,
            entity,
            entry.score - entry.bonus,
        )
    });
    // Bonuses stay as they are, so the aggregate alone has to reach the above score minus them.
    let target = above_entry.score - entry.bonus;

    let gaps = (0..m)
        .map(|j| {
            let criterion = &scheme.criteria[j];
            let current = entry.normalized[j];
            let column = &columns[j];
            let ceiling = attainable_max(scheme.normalization, column);
            let normalized_gap = match probe.as_mut() {
                None if weights[j] > 0.0 => score_gap / weights[j],
                None => f64::INFINITY,
                Some(probe) => {
                    let (lo, hi) = column
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                            (lo.min(v), hi.max(v))
                        });
                    let step = (hi - lo).max(1.0);
                    let start = if ceiling.is_finite() && ceiling > current {
                        ceiling
                    } else {
                        current + step
                    };
                    probe.solve(j, current, start, target) - current
                }
            };
            let needed = current + normalized_gap;
            let raw_target = (needed.is_finite()
                && needed <= ceiling + 1e-12 * ceiling.abs().max(1.0))
            .then(|| {
                denormalize(
                    needed,
                    &present_raw(input, &cohort, j),
                    criterion.direction,
                    scheme.normalization,
                    criterion.benchmark,
                )
            })
            .flatten()
            .filter(|v| v.is_finite());
            CriterionGap {
                criterion: j,
                score_gap: above_entry.contributions[j] - entry.contributions[j],
                normalized_gap,
                raw_target,
                raw_gap: raw_target.zip(entry.raw[j]).map(|(t, r)| t - r),
            }
        })
        .collect();

    Some(Explanation {
        entity,
        above: Some(above),
        score_gap,
        gaps,
    })
}

/// A probe on the condensed three-row cohort when it reproduces the entity's aggregate, else on
/// the whole cohort.
fn probe_for<'w>(
    method: Aggregation,
    weights: &'w [f64],
    columns: &[Vec<f64>],
    cohort: &[usize],
    entity: usize,
    aggregate_score: f64,
) -> Probe<'w> {
    let at = cohort.iter().position(|&e| e == entity).unwrap_or(0);
    let condensed: Vec<Vec<f64>> = columns
        .iter()
        .map(|column| {
            let others = column
                .iter()
                .enumerate()
                .filter(|&(p, _)| p != at)
                .map(|(_, &v)| v);
            let (lo, hi) = others.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
            vec![column[at], hi, lo]
        })
        .collect();
    let mut probe = Probe {
        method,
        weights,
        columns: condensed,
        at: 0,
    };
    let check = aggregate(method, &probe.columns, weights)[0];
    if (check - aggregate_score).abs() > 1e-9 * aggregate_score.abs().max(1.0) {
        probe.columns = columns.to_vec();
        probe.at = at;
    }
    probe
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::engine::rank;
    use crate::ranking::engine::tests::{zone_input, zone_scheme};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn weighted_sum_gap_is_score_gap_over_weight() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        // Z1 (.68, rank 4): nearest above is .76, shared by Z2 and Z3 → the lower index, Z2.
        let x = explain(&input, &outcome, 1).unwrap();
        assert_eq!(x.above, Some(2));
        assert!(close(x.score_gap, 0.08));
        // per_mu(tax): .08 ÷ .6 = .1333…; target .8 + .1333… = .9333… → 0 + .9333… × 100.
        let g = &x.gaps[0];
        assert_eq!(g.criterion, 0);
        assert!(close(g.normalized_gap, 0.08 / 0.6));
        assert!(close(g.raw_target.unwrap(), 280.0 / 3.0));
        assert!(close(g.raw_gap.unwrap(), 280.0 / 3.0 - 80.0));
        // Contributions: Z2 .36 vs Z1 .48 → −.12.
        assert!(close(g.score_gap, -0.12));
        // energy_intensity (lower better): .08 ÷ .4 = .2; target .7 → 5 − .7 × 4 = 2.2, i.e. −.8.
        let g = &x.gaps[1];
        assert!(close(g.normalized_gap, 0.2));
        assert!(close(g.raw_target.unwrap(), 2.2));
        assert!(close(g.raw_gap.unwrap(), -0.8));
        assert!(close(g.score_gap, 0.2));
    }

    #[test]
    fn gaps_beyond_the_range_have_no_raw_target() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        // Z4 (.12) → Z1 (.68): .56 ÷ .6 = .9333 on top of .2 exceeds 1; .56 ÷ .4 = 1.4 too.
        let x = explain(&input, &outcome, 4).unwrap();
        assert_eq!(x.above, Some(1));
        assert!(close(x.gaps[0].normalized_gap, 0.56 / 0.6));
        assert_eq!(x.gaps[0].raw_target, None);
        assert_eq!(x.gaps[0].raw_gap, None);
        assert!(close(x.gaps[1].normalized_gap, 1.4));
        assert_eq!(x.gaps[1].raw_target, None);
    }

    #[test]
    fn top_excluded_and_unknown_entities() {
        let scheme = zone_scheme();
        let mut input = zone_input(&scheme);
        input.criteria[0][5] = None;
        let outcome = rank(&input).unwrap();
        let top = explain(&input, &outcome, 0).unwrap();
        assert_eq!((top.above, top.score_gap), (None, 0.0));
        assert!(top.gaps.is_empty());
        assert_eq!(explain(&input, &outcome, 5), None);
        assert_eq!(explain(&input, &outcome, 99), None);
    }

    #[test]
    fn topsis_gap_reaches_the_above_score_on_the_whole_cohort() {
        let mut scheme = zone_scheme();
        scheme.aggregation = Aggregation::Topsis;
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        let x = explain(&input, &outcome, 1).unwrap();
        let above = x.above.unwrap();
        // Re-aggregate the full six-zone cohort with Z1's one value raised by the gap: the
        // condensed three-row probe must agree with it.
        for g in &x.gaps {
            assert!(g.normalized_gap.is_finite() && g.normalized_gap > 0.0);
            let mut columns: Vec<Vec<f64>> = (0..2)
                .map(|j| outcome.entries.iter().map(|e| e.normalized[j]).collect())
                .collect();
            columns[g.criterion][1] += g.normalized_gap;
            let scores = aggregate(Aggregation::Topsis, &columns, &outcome.weights);
            assert!(
                (scores[1] - outcome.entries[above].score).abs() < 1e-9,
                "{} vs {}",
                scores[1],
                outcome.entries[above].score
            );
        }
    }

    #[test]
    fn geometric_mean_gap_is_found_by_bisection() {
        let mut scheme = zone_scheme();
        scheme.normalization = Normalization::Efficacy;
        scheme.aggregation = Aggregation::GeometricMean;
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        // Efficacy: per_mu(tax) 100, 92, 84, 84, 68, 60; energy 100, 80, 100, 100, 60, 60.
        // Z1 = 92^.6 × 80^.4 is below Z2 = 84^.6 × 100^.4.
        let z2 = 84f64.powf(0.6) * 100f64.powf(0.4);
        assert!(close(outcome.entries[2].score, z2));
        let x = explain(&input, &outcome, 1).unwrap();
        assert_eq!(x.above, Some(2));
        // Alone, per_mu(tax) needs n^.6 × 80^.4 = Z2 → n = (Z2 ÷ 80^.4)^(1/.6).
        let n0 = (z2 / 80f64.powf(0.4)).powf(1.0 / 0.6);
        let g = &x.gaps[0];
        assert!(
            (g.normalized_gap - (n0 - 92.0)).abs() < 1e-7,
            "{}",
            g.normalized_gap
        );
        // Efficacy inverse: raw = (n − 60) ÷ 40 × 100.
        assert!((g.raw_target.unwrap() - (n0 - 60.0) / 40.0 * 100.0).abs() < 1e-6);
        // energy: 92^.6 × n^.4 = Z2 → n = (Z2 ÷ 92^.6)^(1/.4).
        let n1 = (z2 / 92f64.powf(0.6)).powf(1.0 / 0.4);
        assert!((x.gaps[1].normalized_gap - (n1 - 80.0)).abs() < 1e-7);
    }
}
