//! Rank robustness: Monte-Carlo perturbation of the weights (as the JRC's composite-indicator
//! audits do), giving each entity's 5th, 50th and 95th percentile rank.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use rayon::prelude::*;

use super::aggregate::aggregate;
use super::engine::{RankingInput, RankingOutcome, competition_ranks};
use super::scale::divide_by_sum;
use crate::cancel::{Cancel, Cancelled, NEVER};

/// An entity's rank in the run and the spread of its rank under perturbed weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankInterval {
    /// The rank in the unperturbed run.
    pub rank: u32,
    /// The 5th percentile rank (the better end).
    pub p5: u32,
    /// The median rank.
    pub p50: u32,
    /// The 95th percentile rank (the worse end).
    pub p95: u32,
}

/// A uniform draw in [0, 1) from the top 53 bits, so the numbers depend only on the ChaCha8
/// stream (stable across crate versions) and not on a library's sampling algorithm.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The nearest-rank percentile of sorted values: the value at position ceil(q × len ÷ 100),
/// counting from 1 — always an observed rank, never an interpolation.
fn nearest_rank(sorted: &[u32], q: usize) -> u32 {
    let position = (q * sorted.len()).div_ceil(100).max(1);
    sorted[position - 1]
}

/// Per entity (None when excluded), the 5th/50th/95th percentile rank under perturbed weights.
///
/// In each of `samples` runs every weight w is replaced by w × U(1 − spread, 1 + spread) and
/// the weights are renormalised to sum 1. Each run re-aggregates the outcome's normalised (filled) columns with
/// the scheme's aggregation, adds the same bonuses and ranks with ties as `rank` does.
/// The draws come from `ChaCha8Rng::seed_from_u64(seed)`, one per criterion per sample in
/// order, so a seed reproduces the answer. `spread` is clamped to [0, 1] so weights stay
/// non-negative; with 0 samples each interval is the run's own rank. Memory: one u32 per entity
/// per sample.
pub fn rank_robustness(
    input: &RankingInput<'_>,
    outcome: &RankingOutcome,
    samples: usize,
    spread: f64,
    seed: u64,
) -> Vec<Option<RankInterval>> {
    match rank_robustness_cancellable(input, outcome, samples, spread, seed, &NEVER) {
        Ok(intervals) => intervals,
        Err(Cancelled) => unreachable!("NEVER is never set"),
    }
}

/// Samples between two looks at the cancellation flag: a few milliseconds of work over a
/// large cohort, a fraction of one over a small one.
const SAMPLES_PER_CHECK: usize = 16;

/// [`rank_robustness`] that stops with `Err(Cancelled)` soon after `cancel` is set (it is
/// polled every [`SAMPLES_PER_CHECK`] samples).
pub fn rank_robustness_cancellable(
    input: &RankingInput<'_>,
    outcome: &RankingOutcome,
    samples: usize,
    spread: f64,
    seed: u64,
    cancel: &Cancel,
) -> Result<Vec<Option<RankInterval>>, Cancelled> {
    let cohort = &outcome.cohort;
    let mut out: Vec<Option<RankInterval>> = vec![None; outcome.len()];
    if cohort.is_empty() {
        return Ok(out);
    }
    let k = cohort.len();
    let m = outcome.weights.len();
    // The outcome's columns are already over the cohort.
    let columns = &outcome.normalized;
    let bonus: Vec<f64> = cohort.iter().map(|&e| outcome.bonus[e]).collect();
    let spread = if spread.is_nan() {
        0.0
    } else {
        spread.clamp(0.0, 1.0)
    };
    let method = input.scheme.aggregation;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // [cohort position][sample], so each entity's ranks are one contiguous slice to sort.
    let mut drawn = vec![0u32; k * samples];
    // Samples run in parallel batches; the weights of a batch are drawn first, in sample order,
    // so the numbers do not depend on the number of threads.
    let mut s0 = 0;
    while s0 < samples {
        cancel.check()?;
        let batch = SAMPLES_PER_CHECK.min(samples - s0);
        let drawn_weights: Vec<Vec<f64>> = (0..batch)
            .map(|_| {
                let mut weights: Vec<f64> = outcome
                    .weights
                    .iter()
                    .map(|&base| base * (1.0 - spread + 2.0 * spread * unit(&mut rng)))
                    .collect();
                if !divide_by_sum(&mut weights) {
                    weights.copy_from_slice(&outcome.weights);
                }
                debug_assert_eq!(weights.len(), m);
                weights
            })
            .collect();
        let batch_ranks: Vec<Vec<u32>> = drawn_weights
            .par_iter()
            .map(|weights| {
                let mut scores = aggregate(method, columns, weights);
                for (score, b) in scores.iter_mut().zip(&bonus) {
                    *score += b;
                }
                let mut order = Vec::with_capacity(k);
                let mut ranks = Vec::with_capacity(k);
                competition_ranks(&scores, &mut order, &mut ranks);
                ranks
            })
            .collect();
        drawn
            .par_chunks_mut(samples)
            .enumerate()
            .for_each(|(p, own)| {
                for (i, ranks) in batch_ranks.iter().enumerate() {
                    own[s0 + i] = ranks[p];
                }
            });
        s0 += batch;
    }

    if samples == 0 {
        for &e in cohort {
            let rank = outcome.rank[e];
            out[e] = Some(RankInterval {
                rank,
                p5: rank,
                p50: rank,
                p95: rank,
            });
        }
        return Ok(out);
    }
    let intervals: Vec<RankInterval> = cohort
        .par_iter()
        .zip(drawn.par_chunks_mut(samples))
        .map(|(&e, own)| {
            let rank = outcome.rank[e];
            own.sort_unstable();
            RankInterval {
                rank,
                p5: nearest_rank(own, 5),
                p50: nearest_rank(own, 50),
                p95: nearest_rank(own, 95),
            }
        })
        .collect();
    for (&e, interval) in cohort.iter().zip(intervals) {
        out[e] = Some(interval);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::engine::rank;
    use crate::ranking::engine::tests::{zone_input, zone_scheme};

    fn interval(rank: u32, p5: u32, p50: u32, p95: u32) -> Option<RankInterval> {
        Some(RankInterval { rank, p5, p50, p95 })
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u32> = (1..=20).collect();
        // ceil(.05 × 20) = 1st, ceil(.5 × 20) = 10th, ceil(.95 × 20) = 19th.
        assert_eq!(nearest_rank(&sorted, 5), 1);
        assert_eq!(nearest_rank(&sorted, 50), 10);
        assert_eq!(nearest_rank(&sorted, 95), 19);
        assert_eq!(nearest_rank(&[7], 5), 7);
        assert_eq!(nearest_rank(&[7], 95), 7);
    }

    #[test]
    fn spread_zero_gives_the_exact_ranks() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        let got = rank_robustness(&input, &outcome, 50, 0.0, 7);
        let want: Vec<Option<RankInterval>> = [1, 4, 2, 2, 5, 6]
            .into_iter()
            .map(|r| interval(r, r, r, r))
            .collect();
        assert_eq!(got, want);
        assert_eq!(rank_robustness(&input, &outcome, 0, 0.5, 7), want);
    }

    #[test]
    fn perturbed_ranks_by_hand_and_reproducible() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        let got = rank_robustness(&input, &outcome, 1000, 0.5, 2024);
        assert_eq!(got, rank_robustness(&input, &outcome, 1000, 0.5, 2024));
        // Normalised rows: Z0 (1, 1) dominates and Z5 (0, 0) is dominated, Z4 (.2, 0) beats only
        // Z5, Z2 = Z3 = (.6, 1) always tie. Z1 (.8, .5) beats them when .2a > .5b, i.e. with
        // a = .6 f1, b = .4 f2, f ~ U(.5, 1.5): f1 > f2 ÷ .6, probability ∫ (1.5 − f2 ÷ .6) df2
        // over f2 in [.5, .9] = 2/15 ≈ 13%: Z1 is 2nd that often, else 4th; Z2/Z3 3rd that often.
        assert_eq!(
            got,
            [
                interval(1, 1, 1, 1),
                interval(4, 2, 4, 4),
                interval(2, 2, 2, 3),
                interval(2, 2, 2, 3),
                interval(5, 5, 5, 5),
                interval(6, 6, 6, 6),
            ]
        );
        for i in got.iter().flatten() {
            assert!(i.p5 <= i.p50 && i.p50 <= i.p95);
        }
    }

    #[test]
    fn a_set_flag_stops_the_sampling() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        // Two million samples take seconds; the flag, set from another thread after 20 ms,
        // stops them within a few samples.
        let cancel = Cancel::new();
        let started = std::time::Instant::now();
        let stopped = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                cancel.cancel();
            });
            rank_robustness_cancellable(&input, &outcome, 2_000_000, 0.5, 7, &cancel)
        });
        assert_eq!(stopped, Err(Cancelled));
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        // Unset, the cancellable form answers what the plain one does.
        assert_eq!(
            rank_robustness_cancellable(&input, &outcome, 200, 0.5, 7, &Cancel::new()),
            Ok(rank_robustness(&input, &outcome, 200, 0.5, 7))
        );
    }

    #[test]
    fn excluded_entities_have_no_interval() {
        let scheme = zone_scheme();
        let mut input = zone_input(&scheme);
        input.criteria[1][4] = None;
        let outcome = rank(&input).unwrap();
        let got = rank_robustness(&input, &outcome, 200, 0.3, 1);
        assert_eq!(got[4], None);
        assert_eq!(got.iter().flatten().count(), 5);
        for i in got.iter().flatten() {
            assert!(i.p5 <= i.p50 && i.p50 <= i.p95);
        }
    }
}
