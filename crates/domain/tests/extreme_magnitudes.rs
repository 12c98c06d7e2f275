//! Ranking at the edges of f64: raw values near `f64::MAX` or `f64::MIN_POSITIVE` and weights of
//! 1e308 rank exactly as ordinary ones do, and a value that cannot be represented is refused with
//! the entity and the criterion rather than turned into a NaN score, a tie at rank 1 or all zeros.

use std::collections::HashMap;

use zonerank_domain::catalog::Direction;
use zonerank_domain::ranking::engine::{Groups, RankingError, RankingInput, RankingOutcome, rank};
use zonerank_domain::ranking::scheme::{
    Adjustment, Criterion, Scheme, default_class_cuts, validate,
};
use zonerank_domain::ranking::{Aggregation, MissingPolicy, Normalization, Weighting};

const NORMALIZATIONS: [Normalization; 6] = [
    Normalization::MinMax,
    Normalization::ZScore,
    Normalization::Efficacy,
    Normalization::Vector,
    Normalization::BenchmarkRatio,
    Normalization::PercentileRank,
];
const WEIGHTINGS: [Weighting; 4] = [
    Weighting::Fixed,
    Weighting::Equal,
    Weighting::Entropy,
    Weighting::Critic,
];
const AGGREGATIONS: [Aggregation; 3] = [
    Aggregation::WeightedSum,
    Aggregation::GeometricMean,
    Aggregation::Topsis,
];

fn scheme(
    normalization: Normalization,
    weighting: Weighting,
    aggregation: Aggregation,
    weights: [f64; 3],
) -> Scheme {
    let directions = [
        Direction::HigherIsBetter,
        Direction::HigherIsBetter,
        Direction::LowerIsBetter,
    ];
    Scheme {
        criteria: (0..3)
            .map(|j| Criterion {
                metric: format!("c{j}"),
                weight: weights[j],
                direction: directions[j],
                benchmark: None,
            })
            .collect(),
        normalization,
        weighting,
        aggregation,
        missing_policy: MissingPolicy::CohortMean,
        star_rules: vec![],
        class_cuts: default_class_cuts(),
        adjustments: vec![],
        vetoes: vec![],
    }
}

/// Six entities, three criteria; entity 3 misses criterion 1, so the cohort-mean fill (raw and
/// normalised) is exercised too.
fn cohort(factor: f64) -> Vec<Vec<Option<f64>>> {
    let base: [[Option<f64>; 6]; 3] = [
        [100.0, 10.0, 50.0, 30.0, 75.0, 20.0].map(Some),
        [
            Some(20.0),
            Some(90.0),
            Some(40.0),
            None,
            Some(10.0),
            Some(100.0),
        ],
        [5.0, 50.0, 20.0, 80.0, 35.0, 100.0].map(Some),
    ];
    base.iter()
        .map(|column| column.iter().map(|v| v.map(|x| x * factor)).collect())
        .collect()
}

fn run(scheme: &Scheme, criteria: Vec<Vec<Option<f64>>>) -> Result<RankingOutcome, RankingError> {
    rank(&RankingInput {
        scheme,
        criteria,
        extras: HashMap::new(),
        groups: Groups::new(),
        previous: vec![],
    })
}

fn ranks(outcome: &RankingOutcome) -> Vec<u32> {
    outcome.rank.clone()
}

fn scores(outcome: &RankingOutcome) -> Vec<f64> {
    outcome.score.clone()
}

/// Every valid method combination.
fn combinations() -> impl Iterator<Item = (Normalization, Weighting, Aggregation)> {
    NORMALIZATIONS.into_iter().flat_map(|n| {
        WEIGHTINGS
            .into_iter()
            .flat_map(move |w| AGGREGATIONS.into_iter().map(move |a| (n, w, a)))
    })
}

/// Whether the extreme run has finite, not all-zero scores equal to the ordinary run's (to 1e-9
/// relative), the very same ranks (so no tie the ordinary cohort does not have) and weights.
fn differences(extreme: &RankingOutcome, ordinary: &RankingOutcome) -> Result<(), String> {
    let (got, want) = (scores(extreme), scores(ordinary));
    let same_scores = got
        .iter()
        .zip(&want)
        .all(|(a, b)| (a - b).abs() <= 1e-9 * b.abs().max(1.0));
    if !got.iter().all(|s| s.is_finite()) || got.iter().all(|&s| s == 0.0) || !same_scores {
        return Err(format!("scores {got:?}, want {want:?}"));
    }
    if ranks(extreme) != ranks(ordinary) {
        return Err(format!(
            "ranks {:?}, want {:?}",
            ranks(extreme),
            ranks(ordinary)
        ));
    }
    let same_weights = extreme
        .weights
        .iter()
        .zip(&ordinary.weights)
        .all(|(a, b)| (a - b).abs() <= 1e-9);
    if !same_weights {
        return Err(format!(
            "weights {:?}, want {:?}",
            extreme.weights, ordinary.weights
        ));
    }
    Ok(())
}

#[test]
fn huge_and_tiny_cohorts_rank_as_the_ordinary_cohort_under_every_method() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (normalization, weighting, aggregation) in combinations() {
        let scheme = scheme(normalization, weighting, aggregation, [0.5, 0.3, 0.2]);
        if validate(&scheme).is_err() {
            continue; // a geometric mean of values that can be 0 or negative
        }
        let ordinary = run(&scheme, cohort(1.0)).unwrap();
        let distinct: std::collections::BTreeSet<u32> = ranks(&ordinary).into_iter().collect();
        assert!(distinct.len() >= 4, "{:?}", ranks(&ordinary));
        // 1e306 turns 100, 10, 50 into 1e308, 1e307, 5e307; 1e-306 puts 5 at 5e-306, within
        // 23 times f64::MIN_POSITIVE.
        for factor in [1e306, 1e300, 1e-300, 1e-306] {
            let label = format!("{normalization:?} {weighting:?} {aggregation:?} × {factor:e}");
            let outcome = run(&scheme, cohort(factor)).map_err(|e| e.to_string());
            if let Err(why) = outcome.and_then(|extreme| differences(&extreme, &ordinary)) {
                failures.push(format!("{label}: {why}"));
            }
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs differ:\n{}",
        failures.len(),
        checked * 4,
        failures.join("\n")
    );
    // 6 normalisations × 4 weightings × 3 aggregations, less the 4 × 4 geometric means the
    // scheme refuses.
    assert_eq!(checked, 6 * 4 * 3 - 4 * 4);
}

#[test]
fn fixed_weights_of_1e308_are_equal_weights() {
    for (normalization, _, aggregation) in combinations().filter(|c| c.1 == Weighting::Fixed) {
        let huge = scheme(normalization, Weighting::Fixed, aggregation, [1e308; 3]);
        if validate(&huge).is_err() {
            continue;
        }
        let equal = scheme(normalization, Weighting::Equal, aggregation, [1.0; 3]);
        let label = format!("{normalization:?} {aggregation:?}");
        let got = run(&huge, cohort(1.0)).unwrap();
        let want = run(&equal, cohort(1.0)).unwrap();
        assert_eq!(got.weights, want.weights, "{label}");
        assert_eq!(differences(&got, &want), Ok(()), "{label}");
    }
}

#[test]
fn non_finite_raw_values_never_reach_a_score() {
    for policy in [
        MissingPolicy::Exclude,
        MissingPolicy::Worst,
        MissingPolicy::CohortMean,
    ] {
        let mut scheme = scheme(
            Normalization::ZScore,
            Weighting::Entropy,
            Aggregation::Topsis,
            [1.0; 3],
        );
        scheme.missing_policy = policy;
        let mut criteria = cohort(1.0);
        criteria[0][1] = Some(f64::NAN);
        criteria[1][2] = Some(f64::INFINITY);
        criteria[2][4] = Some(f64::NEG_INFINITY);
        let out = run(&scheme, criteria).unwrap();
        for e in [1, 2, 4] {
            let entry = out.entry(e);
            if policy == MissingPolicy::Exclude {
                assert!(!entry.included, "{policy:?} {e}");
                assert!(entry.excluded_because.is_some());
            } else {
                assert!(
                    entry.included && entry.filled_values().any(|f| f),
                    "{policy:?} {e}"
                );
            }
        }
        for entry in out.entries() {
            assert!(entry.score.is_finite(), "{policy:?}: {}", entry.score);
            assert!(entry.normalized_values().all(|n| n.is_finite()));
        }
    }
}

#[test]
fn a_ratio_past_f64_max_is_refused_naming_the_entity_and_the_criterion() {
    let mut scheme = scheme(
        Normalization::BenchmarkRatio,
        Weighting::Fixed,
        Aggregation::WeightedSum,
        [1.0; 3],
    );
    scheme.missing_policy = MissingPolicy::Exclude;
    scheme.criteria[2].direction = Direction::HigherIsBetter;
    scheme.criteria[2].benchmark = Some(1e-300);
    let mut criteria = cohort(1.0);
    // Entity 3 (no criterion 1) is excluded, so entity 4 sits at cohort position 3: the error
    // names the input index. 35 ÷ 1e-300 is finite; 1e10 ÷ 1e-300 is not.
    criteria[2][4] = Some(1e10);
    let err = run(&scheme, criteria).unwrap_err();
    assert_eq!(
        err,
        RankingError::NonFinite {
            entity: 4,
            criterion: 2,
            stage: "normalization"
        }
    );
    let text = err.to_string();
    for part in ["normalization", "entity 4", "criterion 2"] {
        assert!(text.contains(part), "{text}");
    }
}

#[test]
fn a_score_past_f64_max_is_refused_at_aggregation() {
    let mut scheme = scheme(
        Normalization::BenchmarkRatio,
        Weighting::Fixed,
        Aggregation::WeightedSum,
        [0.0, 0.0, 1.0],
    );
    scheme.criteria[2].direction = Direction::HigherIsBetter;
    scheme.criteria[2].benchmark = Some(1.0);
    scheme.adjustments = vec![Adjustment {
        metric: "awards".to_owned(),
        points_per_event: 1e308,
        label: "award".to_owned(),
    }];
    let mut criteria = cohort(1.0);
    criteria[2][5] = Some(1.5e308);
    let mut awards = vec![None; 6];
    awards[5] = Some(1.0);
    let err = rank(&RankingInput {
        scheme: &scheme,
        criteria,
        extras: HashMap::from([("awards".to_owned(), awards)]),
        groups: Groups::new(),
        previous: vec![],
    })
    .unwrap_err();
    assert_eq!(
        err,
        RankingError::NonFinite {
            entity: 5,
            criterion: 2,
            stage: "aggregation"
        }
    );
    assert!(err.to_string().contains("aggregation"), "{err}");
}

#[test]
fn bonus_points_past_f64_max_are_refused() {
    let mut scheme = scheme(
        Normalization::MinMax,
        Weighting::Fixed,
        Aggregation::WeightedSum,
        [1.0; 3],
    );
    scheme.adjustments = vec![
        Adjustment {
            metric: "awards".to_owned(),
            points_per_event: 1.0,
            label: "award".to_owned(),
        },
        Adjustment {
            metric: "patents".to_owned(),
            points_per_event: 1e308,
            label: "patent".to_owned(),
        },
    ];
    let patents = vec![Some(0.0), Some(1.0), Some(10.0), None, None, None];
    let err = rank(&RankingInput {
        scheme: &scheme,
        criteria: cohort(1.0),
        extras: HashMap::from([
            ("awards".to_owned(), vec![Some(1.0); 6]),
            ("patents".to_owned(), patents),
        ]),
        groups: Groups::new(),
        previous: vec![],
    })
    .unwrap_err();
    assert_eq!(
        err,
        RankingError::NonFiniteBonus {
            entity: 2,
            adjustment: 1
        }
    );
    assert!(err.to_string().contains("adjustments[1]"), "{err}");
}
