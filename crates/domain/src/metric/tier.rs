//! Scale tiers: how many clusters or zones reach 100亿, 500亿, 1000亿 (seeds 000, 004).

/// The default revenue tiers in 万元: 100亿, 500亿 and 1000亿.
pub const DEFAULT_TIERS_WAN_YUAN: [f64; 3] = [1_000_000.0, 5_000_000.0, 10_000_000.0];

/// For each threshold, how many values reach it (≥); NaN reaches none.
pub fn tier_counts(values: &[f64], thresholds: &[f64]) -> Vec<usize> {
    thresholds
        .iter()
        .map(|&threshold| values.iter().filter(|&&value| value >= threshold).count())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_values_at_or_above_each_threshold() {
        // 12 zones over 100亿 and 3 over 500亿 (seed 000), plus one below and one 1000亿 zone.
        let mut revenues = vec![500_000.0];
        revenues.extend([1_200_000.0; 9]);
        revenues.extend([5_000_000.0, 6_000_000.0]);
        revenues.push(10_000_000.0);
        assert_eq!(
            tier_counts(&revenues, &DEFAULT_TIERS_WAN_YUAN),
            vec![12, 3, 1]
        );
    }

    #[test]
    fn edge_cases() {
        assert_eq!(tier_counts(&[], &DEFAULT_TIERS_WAN_YUAN), vec![0, 0, 0]);
        assert_eq!(tier_counts(&[1.0, 2.0], &[]), Vec::<usize>::new());
        assert_eq!(
            tier_counts(&[f64::NAN, 2.0], &[1.0, 2.0, 3.0]),
            vec![1, 1, 0]
        );
    }
}
