//! The ten fastest (十快): entities ordered by how far they moved up since the previous period.

use super::engine::RankingOutcome;

/// The ten fastest (十快): up to `limit` input indices, by rank change (or score change) descending.
///
/// Only included entities with a previous rank count. Ties go to the better current rank,
/// then the lower index. Every such entity is listed up to `limit`, even one that moved down.
pub fn most_improved(outcome: &RankingOutcome, limit: usize, by_score: bool) -> Vec<usize> {
    // (index, change, current rank); changes compare exactly so the sort order stays total.
    let mut candidates: Vec<(usize, f64, u32)> = outcome
        .entries()
        .enumerate()
        .filter(|(_, e)| e.included)
        .filter_map(|(i, e)| {
            let change = if by_score {
                e.score - e.previous_score?
            } else {
                e.rank_change? as f64
            };
            // A NaN change (NaN previous score) sorts last rather than poisoning the order.
            let change = if change.is_nan() {
                f64::NEG_INFINITY
            } else {
                change
            };
            Some((i, change, e.rank))
        })
        .collect();
    let order = |a: &(usize, f64, u32), b: &(usize, f64, u32)| {
        b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0))
    };
    // Only the first `limit` are wanted: select them, then sort just those.
    if limit == 0 {
        return Vec::new();
    }
    if limit < candidates.len() {
        candidates.select_nth_unstable_by(limit - 1, order);
        candidates.truncate(limit);
    }
    candidates.sort_unstable_by(order);
    candidates.into_iter().map(|(i, _, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::engine::rank;
    use crate::ranking::engine::tests::{zone_input, zone_scheme};

    #[test]
    fn by_rank_change() {
        let scheme = zone_scheme();
        let outcome = rank(&zone_input(&scheme)).unwrap();
        // Changes: Z0 0, Z1 +1 (rank 4), Z2 0, Z3 none, Z4 +1 (rank 5), Z5 −3.
        // +1 ties go to the better current rank: Z1 before Z4; 0 ties: Z0 (1) before Z2 (2).
        assert_eq!(most_improved(&outcome, 10, false), [1, 4, 0, 2, 5]);
        assert_eq!(most_improved(&outcome, 3, false), [1, 4, 0]);
        assert!(most_improved(&outcome, 0, false).is_empty());
    }

    #[test]
    fn by_score_change() {
        let scheme = zone_scheme();
        let outcome = rank(&zone_input(&scheme)).unwrap();
        // Score − previous: Z0 1 − .9 = .1, Z1 .68 − .3 = .38, Z2 .76 − .7 = .06,
        // Z4 .12 − .05 = .07, Z5 0 − .5 = −.5; Z3 has no previous.
        assert_eq!(most_improved(&outcome, 10, true), [1, 0, 4, 2, 5]);
        assert_eq!(most_improved(&outcome, 2, true), [1, 0]);
    }

    #[test]
    fn excluded_entities_are_skipped() {
        let scheme = zone_scheme();
        let mut input = zone_input(&scheme);
        input.criteria[0][1] = None;
        let outcome = rank(&input).unwrap();
        assert!(!most_improved(&outcome, 10, false).contains(&1));
    }
}
