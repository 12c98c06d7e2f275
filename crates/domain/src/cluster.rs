//! Cluster strength as the US Cluster Mapping Project and the European Cluster Observatory
//! compute it: location quotients, strong-cluster flags, the three ECO stars and shift-share.
//!
//! Everything here is arithmetic over figures the caller has already read; a missing or
//! meaningless figure gives `None`, never a silent 0.

/// Location quotient (区位熵): the local share of a part against the reference share.
///
/// `(part / local_total) / (reference_part / reference_total)`: a cluster's employment over
/// its region's employment, against the industry's employment over the nation's. `None` when
/// a total or the reference share is not positive.
pub fn location_quotient(
    part: f64,
    local_total: f64,
    reference_part: f64,
    reference_total: f64,
) -> Option<f64> {
    if local_total <= 0.0 || reference_total <= 0.0 || reference_part <= 0.0 {
        return None;
    }
    let value = (part / local_total) / (reference_part / reference_total);
    value.is_finite().then_some(value)
}

/// The `p`-th percentile (0–100) of `values`, interpolated linearly between order statistics
/// (Hyndman and Fan's type 7, the default of R's `quantile` and of NumPy). `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let h = (sorted.len() - 1) as f64 * p / 100.0;
    let below = h.floor() as usize;
    let above = h.ceil() as usize;
    Some(sorted[below] + (h - below as f64) * (sorted[above] - sorted[below]))
}

/// One cluster of a cohort, as the strength rules read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClusterFigures {
    /// Its location quotient of employment.
    pub lq: f64,
    /// Its employment.
    pub employment: f64,
    /// Its number of establishments (enterprises).
    pub establishments: f64,
    /// The employment of the region it lies in.
    pub region_employment: f64,
}

/// What the strength rules say of one cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Strength {
    /// LQ at or above the cohort's 75th percentile and at least 1, employment and
    /// establishments above the cohort's 25th percentile.
    pub strong: bool,
    /// The same with the 90th percentile of LQ.
    pub strong10: bool,
    /// ECO size star: employment in the cohort's top 10%.
    pub size_star: bool,
    /// ECO specialisation star: LQ at least 2.
    pub specialisation_star: bool,
    /// ECO focus star: its share of the region's employment in the cohort's top 10%.
    pub focus_star: bool,
}

impl Strength {
    /// Number of ECO stars, 0–3.
    pub fn stars(&self) -> u8 {
        u8::from(self.size_star) + u8::from(self.specialisation_star) + u8::from(self.focus_star)
    }
}

/// The LQ an ECO specialisation star needs.
pub const SPECIALISATION_LQ: f64 = 2.0;

/// The strength flags and stars of every cluster of a cohort, in the order given.
///
/// Percentiles are taken over the cohort itself; a cluster's region share is employment over
/// region employment (no focus star when the region's employment is not positive).
pub fn strength(cohort: &[ClusterFigures]) -> Vec<Strength> {
    let column = |f: fn(&ClusterFigures) -> f64| cohort.iter().map(f).collect::<Vec<f64>>();
    let lqs = column(|c| c.lq);
    let employment = column(|c| c.employment);
    let establishments = column(|c| c.establishments);
    let focus: Vec<f64> = cohort.iter().filter_map(region_share).collect();
    let (Some(lq75), Some(lq90), Some(emp25), Some(est25), Some(emp90)) = (
        percentile(&lqs, 75.0),
        percentile(&lqs, 90.0),
        percentile(&employment, 25.0),
        percentile(&establishments, 25.0),
        percentile(&employment, 90.0),
    ) else {
        return vec![Strength::default(); cohort.len()];
    };
    let focus90 = percentile(&focus, 90.0);
    cohort
        .iter()
        .map(|c| {
            let sizeable = c.employment > emp25 && c.establishments > est25;
            Strength {
                strong: sizeable && c.lq >= lq75 && c.lq >= 1.0,
                strong10: sizeable && c.lq >= lq90 && c.lq >= 1.0,
                size_star: c.employment >= emp90,
                specialisation_star: c.lq >= SPECIALISATION_LQ,
                focus_star: matches!((region_share(c), focus90), (Some(s), Some(t)) if s >= t),
            }
        })
        .collect()
}

fn region_share(c: &ClusterFigures) -> Option<f64> {
    (c.region_employment > 0.0).then(|| c.employment / c.region_employment)
}

/// A shift-share split of one entity's change against a reference (its region or the nation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShiftShare {
    /// The reference's growth rate over the span, as a fraction (0.1 = 10%).
    pub reference_growth: f64,
    /// The change the entity would have had growing at the reference's rate:
    /// start × reference growth.
    pub expected_change: f64,
    /// The entity's actual change: end − start.
    pub actual_change: f64,
    /// actual − expected: the entity's own (competitive) component.
    pub differential: f64,
}

/// Shift-share of an entity going from `start` to `end` while its reference went from
/// `reference_start` to `reference_end`; `None` when the reference's start is not positive.
pub fn shift_share(
    start: f64,
    end: f64,
    reference_start: f64,
    reference_end: f64,
) -> Option<ShiftShare> {
    if reference_start <= 0.0 {
        return None;
    }
    let reference_growth = (reference_end - reference_start) / reference_start;
    let expected_change = start * reference_growth;
    let actual_change = end - start;
    Some(ShiftShare {
        reference_growth,
        expected_change,
        actual_change,
        differential: actual_change - expected_change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} != {expected}"
        );
    }

    #[test]
    fn location_quotient_matches_reat() {
        // REAT::locq(1714, 79006, 879213, 15593224) = 0.3847623
        let lq = location_quotient(1714.0, 79006.0, 879_213.0, 15_593_224.0).unwrap();
        close(lq, 0.384_762_3, 5e-8);
        // 30 of 100 locally against 10 of 100 in the reference: three times as concentrated.
        close(
            location_quotient(30.0, 100.0, 10.0, 100.0).unwrap(),
            3.0,
            1e-12,
        );
        assert_eq!(location_quotient(1.0, 0.0, 1.0, 1.0), None);
        assert_eq!(location_quotient(1.0, 1.0, 0.0, 1.0), None);
    }

    #[test]
    fn percentile_is_type_7() {
        let values = [1.0, 2.0, 3.0, 4.0, 5.0];
        close(percentile(&values, 25.0).unwrap(), 2.0, 1e-12);
        close(percentile(&values, 90.0).unwrap(), 4.6, 1e-12);
        // R: quantile(c(10, 20, 40), 0.75) = 30
        close(percentile(&[40.0, 10.0, 20.0], 75.0).unwrap(), 30.0, 1e-12);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0], 101.0), None);
    }

    #[test]
    fn strong_clusters_and_stars_by_hand() {
        let c = |lq, employment, establishments, region_employment| ClusterFigures {
            lq,
            employment,
            establishments,
            region_employment,
        };
        let cohort = [
            c(0.5, 100.0, 5.0, 1000.0),    // weak everywhere
            c(1.2, 400.0, 20.0, 1000.0),   // LQ below P75
            c(2.5, 900.0, 30.0, 10_000.0), // strong, specialised, large
            c(3.0, 200.0, 2.0, 250.0),     // LQ high but few establishments; focused
            c(1.5, 500.0, 25.0, 5000.0),   // middling
        ];
        // LQs 0.5 1.2 1.5 2.5 3.0: P75 = 2.5, P90 = 2.8.
        // Employment 100 200 400 500 900: P25 = 200, P90 = 740.
        // Establishments 2 5 20 25 30: P25 = 5.
        // Shares 0.1 0.4 0.09 0.8 0.1: P90 = 0.64.
        let s = strength(&cohort);
        assert_eq!(
            s.iter().map(|s| s.strong).collect::<Vec<_>>(),
            [false, false, true, false, false]
        );
        // Cluster 2's LQ 2.5 is below P90 2.8; cluster 3's 3.0 has too few establishments.
        assert!(s.iter().all(|s| !s.strong10));
        assert_eq!(
            s.iter().map(|s| s.size_star).collect::<Vec<_>>(),
            [false, false, true, false, false]
        );
        assert_eq!(
            s.iter().map(|s| s.specialisation_star).collect::<Vec<_>>(),
            [false, false, true, true, false]
        );
        assert_eq!(
            s.iter().map(|s| s.focus_star).collect::<Vec<_>>(),
            [false, false, false, true, false]
        );
        assert_eq!(
            s.iter().map(Strength::stars).collect::<Vec<_>>(),
            [0, 0, 2, 2, 0]
        );
        // With cluster 2 at LQ 3.0 too, the P90 is 3.0 and both of its LQ ≥ 1 strong ones
        // qualify; cluster 3 still lacks establishments.
        let mut top = cohort;
        top[2].lq = 3.0;
        let s = strength(&top);
        assert_eq!(
            s.iter().map(|s| s.strong10).collect::<Vec<_>>(),
            [false, false, true, false, false]
        );
        assert!(strength(&[]).is_empty());
    }

    #[test]
    fn strong_needs_lq_of_at_least_one() {
        let c = |lq, employment| ClusterFigures {
            lq,
            employment,
            establishments: employment,
            region_employment: 0.0,
        };
        // Every LQ is below 1, so nothing is strong however it ranks; no region figures, so no
        // focus star.
        let s = strength(&[c(0.2, 10.0), c(0.4, 20.0), c(0.9, 30.0)]);
        assert!(s.iter().all(|s| !s.strong && !s.focus_star));
    }

    #[test]
    fn shift_share_by_hand() {
        // The region grew 200 → 250 (25%); the zone went 40 → 60. Expected 40 × 0.25 = 10, actual
        // 20, so 10 of its own.
        let s = shift_share(40.0, 60.0, 200.0, 250.0).unwrap();
        close(s.reference_growth, 0.25, 1e-12);
        close(s.expected_change, 10.0, 1e-12);
        close(s.actual_change, 20.0, 1e-12);
        close(s.differential, 10.0, 1e-12);
        // Shrinking with a shrinking region: 100 → 90 while the region fell 10%; nothing of its own.
        close(
            shift_share(100.0, 90.0, 50.0, 45.0).unwrap().differential,
            0.0,
            1e-12,
        );
        assert_eq!(shift_share(1.0, 2.0, 0.0, 3.0), None);
    }
}
