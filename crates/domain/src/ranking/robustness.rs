//! Rank robustness: Monte-Carlo perturbation of the weights (as the JRC's composite-indicator
//! audits do), giving each entity's 5th, 50th and 95th percentile rank.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use rayon::prelude::*;

use super::aggregate::aggregate_into;
use super::engine::{RankingInput, RankingOutcome, ScoreSorter, competition_ranks_of};
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
/// counting from 1 — always an observed rank, never an interpolation. [`percentiles`] finds
/// the same three by selection; this is its reference.
#[cfg(test)]
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
/// non-negative; with 0 samples each interval is the run's own rank. Memory: the ranks drawn
/// are kept bit-packed and at most [`STORED_RANK_BYTES`] of them at once (see [`Passes`]).
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

/// The most bytes of drawn ranks held at once: 640 MiB, so 1,000 samples of 500,000 entities
/// (19 bits a rank, 1.2 GB in all) take two passes and the whole computation stays within
/// 1 GiB with the input and the outcome.
pub const STORED_RANK_BYTES: usize = 640 << 20;

/// How the cohort is covered: every pass draws all the samples again (the same weights, from
/// the same seed) and keeps the ranks of one slice of the cohort, `entities` at a time, each
/// as `bits` bits. One pass when everything fits in [`STORED_RANK_BYTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Passes {
    /// Bits of one rank: enough for the cohort's size (ranks run 1..=k).
    bits: u32,
    /// 64-bit words of one entity's ranks over all samples.
    words: usize,
    /// Entities kept per pass.
    entities: usize,
}

impl Passes {
    fn new(k: usize, samples: usize, budget: usize) -> Passes {
        let bits = u32::BITS - (k as u32).leading_zeros();
        let words = (samples * bits as usize).div_ceil(64);
        let entities = (budget / (words * 8).max(1)).clamp(1, k.max(1));
        Passes {
            bits,
            words,
            entities,
        }
    }
}

/// Writes `rank` as sample `s` of one entity's packed ranks.
fn pack(row: &mut [u64], bits: u32, s: usize, rank: u32) {
    let at = s * bits as usize;
    let (word, shift) = (at / 64, (at % 64) as u32);
    row[word] |= u64::from(rank) << shift;
    if shift + bits > 64 {
        row[word + 1] |= u64::from(rank) >> (64 - shift);
    }
}

/// Reads one entity's `samples` packed ranks into `out`.
fn unpack(row: &[u64], bits: u32, samples: usize, out: &mut Vec<u32>) {
    let mask = (1u64 << bits) - 1;
    out.clear();
    out.extend((0..samples).map(|s| {
        let at = s * bits as usize;
        let (word, shift) = (at / 64, (at % 64) as u32);
        let mut value = row[word] >> shift;
        if shift + bits > 64 {
            value |= row[word + 1] << (64 - shift);
        }
        (value & mask) as u32
    }));
}

/// The nearest-rank 5th, 50th and 95th percentiles of `ranks`, by selection (the three
/// positions are found in one slice, each selection confined to the part the previous left).
fn percentiles(ranks: &mut [u32]) -> (u32, u32, u32) {
    let len = ranks.len();
    let at = |q: usize| (q * len).div_ceil(100).max(1) - 1;
    let (p5, p50, p95) = (at(5), at(50), at(95));
    let (below, &mut median, above) = ranks.select_nth_unstable(p50);
    let low = if p5 < p50 {
        *below.select_nth_unstable(p5).1
    } else {
        median
    };
    let high = if p95 > p50 {
        *above.select_nth_unstable(p95 - p50 - 1).1
    } else {
        median
    };
    (low, median, high)
}

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
    robustness_within(
        input,
        outcome,
        samples,
        spread,
        seed,
        cancel,
        STORED_RANK_BYTES,
    )
}

/// [`rank_robustness_cancellable`] holding at most `budget` bytes of drawn ranks at once.
fn robustness_within(
    input: &RankingInput<'_>,
    outcome: &RankingOutcome,
    samples: usize,
    spread: f64,
    seed: u64,
    cancel: &Cancel,
    budget: usize,
) -> Result<Vec<Option<RankInterval>>, Cancelled> {
    let cohort = &outcome.cohort;
    let mut out: Vec<Option<RankInterval>> = vec![None; outcome.len()];
    if cohort.is_empty() {
        return Ok(out);
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
    let k = cohort.len();
    // The outcome's columns are already over the cohort.
    let columns = &outcome.normalized;
    let bonus: Vec<f64> = cohort.iter().map(|&e| outcome.bonus[e]).collect();
    let spread = if spread.is_nan() {
        0.0
    } else {
        spread.clamp(0.0, 1.0)
    };
    let method = input.scheme.aggregation;
    let passes = Passes::new(k, samples, budget);
    let Passes { bits, words, .. } = passes;

    // [entity of the pass][its packed ranks], one row per entity so each is read alone.
    let mut drawn = vec![0u64; passes.entities * words];
    // One set of buffers per thread, each taking an equal share of a batch's samples.
    let mut workers: Vec<(Vec<f64>, ScoreSorter)> = (0..rayon::current_num_threads())
        .map(|_| Default::default())
        .collect();
    let mut batch_ranks: Vec<Vec<u32>> = vec![Vec::new(); SAMPLES_PER_CHECK];
    for first in (0..k).step_by(passes.entities) {
        let slice = first..(first + passes.entities).min(k);
        let kept = slice.len();
        let drawn = &mut drawn[..kept * words];
        drawn.fill(0);
        // Every pass draws the same weights: the stream starts again from the seed.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Samples run in parallel batches; the weights of a batch are drawn first, in sample
        // order, so the numbers do not depend on the number of threads.
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
                    weights
                })
                .collect();
            let share = batch.div_ceil(workers.len());
            workers
                .par_iter_mut()
                .zip(
                    drawn_weights
                        .par_chunks(share)
                        .zip(batch_ranks[..batch].par_chunks_mut(share)),
                )
                .for_each(|((scores, sorter), (weights, ranks))| {
                    for (weights, ranks) in weights.iter().zip(ranks) {
                        aggregate_into(method, columns, weights, scores);
                        for (score, b) in scores.iter_mut().zip(&bonus) {
                            *score += b;
                        }
                        competition_ranks_of(scores, slice.clone(), sorter, ranks);
                    }
                });
            let batch_ranks = &batch_ranks[..batch];
            drawn
                .par_chunks_mut(words)
                .enumerate()
                .for_each(|(p, row)| {
                    for (i, ranks) in batch_ranks.iter().enumerate() {
                        pack(row, bits, s0 + i, ranks[p]);
                    }
                });
            s0 += batch;
        }
        let intervals: Vec<RankInterval> = cohort[slice.clone()]
            .par_iter()
            .zip(drawn.par_chunks(words))
            .map_init(
                || Vec::with_capacity(samples),
                |own, (&e, row)| {
                    unpack(row, bits, samples, own);
                    let (p5, p50, p95) = percentiles(own);
                    RankInterval {
                        rank: outcome.rank[e],
                        p5,
                        p50,
                        p95,
                    }
                },
            )
            .collect();
        for (&e, interval) in cohort[slice].iter().zip(intervals) {
            out[e] = Some(interval);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::engine::rank;
    use crate::ranking::engine::tests::{zone_input, zone_scheme};
    use std::collections::HashMap;

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
    fn selection_finds_the_sorted_percentiles() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for len in [1, 2, 3, 19, 20, 21, 99, 100, 1000, 1001] {
            for range in [1, 5, 1_000_000] {
                let mut ranks: Vec<u32> = (0..len).map(|_| (rng.next_u32() % range) + 1).collect();
                let mut sorted = ranks.clone();
                sorted.sort_unstable();
                let want = (
                    nearest_rank(&sorted, 5),
                    nearest_rank(&sorted, 50),
                    nearest_rank(&sorted, 95),
                );
                assert_eq!(percentiles(&mut ranks), want, "{len} ranks below {range}");
            }
        }
    }

    #[test]
    fn packed_ranks_read_back_at_every_width() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for k in [1usize, 2, 3, 7, 8, 500_000, 1 << 20, u32::MAX as usize] {
            let passes = Passes::new(k, 77, usize::MAX);
            assert!(u64::from(k as u32) < 1u64 << passes.bits, "k = {k}");
            let ranks: Vec<u32> = (0..77)
                .map(|_| ((u64::from(rng.next_u32()) % k as u64) + 1) as u32)
                .collect();
            let mut row = vec![0u64; passes.words];
            for (s, &r) in ranks.iter().enumerate() {
                pack(&mut row, passes.bits, s, r);
            }
            let mut back = Vec::new();
            unpack(&row, passes.bits, 77, &mut back);
            assert_eq!(back, ranks, "k = {k}, {} bits", passes.bits);
        }
        // 1,000 samples of 500,000 entities: 19 bits, two passes in the default budget.
        let national = Passes::new(500_000, 1000, STORED_RANK_BYTES);
        assert_eq!(national.bits, 19);
        assert_eq!(500_000usize.div_ceil(national.entities), 2);
        assert!(national.entities * national.words * 8 <= STORED_RANK_BYTES);
    }

    #[test]
    fn passes_over_slices_of_the_cohort_answer_what_one_pass_does() {
        let mut scheme = zone_scheme();
        scheme.star_rules.clear();
        let n = 160;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut column = |ties: u32| -> Vec<Option<f64>> {
            (0..n)
                .map(|i| match i % 50 {
                    // Some missing (excluded) and some tied values.
                    7 => None,
                    _ => Some(f64::from(rng.next_u32() % ties)),
                })
                .collect()
        };
        let criteria = vec![column(1000), column(40)];
        let mut extras = HashMap::new();
        extras.insert("accidents".to_owned(), vec![None; n]);
        extras.insert("pollution".to_owned(), vec![None; n]);
        let input = RankingInput {
            scheme: &scheme,
            criteria,
            extras,
            groups: crate::ranking::engine::Groups::new(),
            previous: vec![],
        };
        let outcome = rank(&input).unwrap();
        let one = robustness_within(&input, &outcome, 300, 0.4, 11, &NEVER, usize::MAX).unwrap();
        assert_eq!(one.iter().flatten().count(), n - n.div_ceil(50));
        assert!(one.iter().flatten().any(|i| i.p5 < i.p95), "the ranks move");
        // 8 bytes of ranks per pass: one entity a pass; then 11 and 65 a pass.
        for budget in [8, 3 * 8 * 150, 20_000] {
            let sliced = robustness_within(&input, &outcome, 300, 0.4, 11, &NEVER, budget).unwrap();
            assert_eq!(sliced, one, "budget {budget}");
        }
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
