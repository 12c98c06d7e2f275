//! What the engine's benches share: the national matrix and the scheme over it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zonerank_domain::{
    catalog::Direction,
    ranking::{
        Aggregation, MissingPolicy, Normalization, Weighting,
        scheme::{Criterion as Crit, Gate, Scheme, StarRule, default_class_cuts},
    },
};

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn scheme(
    m: usize,
    normalization: Normalization,
    weighting: Weighting,
    aggregation: Aggregation,
) -> Scheme {
    Scheme {
        criteria: (0..m)
            .map(|j| Crit {
                metric: format!("c{j}"),
                weight: 1.0 + j as f64,
                // Every fourth criterion is a cost, as energy intensity is.
                direction: if j % 4 == 3 {
                    Direction::LowerIsBetter
                } else {
                    Direction::HigherIsBetter
                },
                benchmark: None,
            })
            .collect(),
        normalization,
        weighting,
        aggregation,
        missing_policy: MissingPolicy::CohortMean,
        star_rules: vec![StarRule {
            level: 1,
            min_score: 0.6,
            gates: vec![Gate::parse("c0 >= 10").expect("gate")],
        }],
        class_cuts: default_class_cuts(),
        adjustments: vec![],
        vetoes: vec![],
    }
}

/// The matrix: positive values (entropy takes proportions), seeded.
pub fn matrix(n: usize, m: usize) -> Vec<Vec<Option<f64>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    (0..m)
        .map(|_| {
            (0..n)
                .map(|_| Some(rng.random::<f64>() * 100.0 + 0.1))
                .collect()
        })
        .collect()
}
