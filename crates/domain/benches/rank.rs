//! The ranking engine at the scale of a national enterprise evaluation: 500,000 entities.
//!
//! `cargo bench -p zonerank-domain --bench rank` (env `BENCH_ENTITIES`, default 500000; the
//! explanations run on the first `BENCH_EXPLAIN` entities, default 200 and 5000)

/// The allocator every zonerank binary runs the engine under (their `main.rs`), so the bench
/// sees what a service does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{collections::HashMap, time::Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zonerank_domain::{
    catalog::Direction,
    ranking::{
        Aggregation, MissingPolicy, Normalization, Weighting,
        engine::{Groups, RankingInput, rank},
        explain::explain,
        robustness::rank_robustness,
        scheme::{Criterion, Gate, Scheme, StarRule, default_class_cuts},
    },
};

/// The schemes timed: label, normalization, weighting, aggregation.
const SCHEMES: [(&str, Normalization, Weighting, Aggregation); 3] = [
    (
        "min-max, fixed, weighted sum",
        Normalization::MinMax,
        Weighting::Fixed,
        Aggregation::WeightedSum,
    ),
    (
        "vector, entropy, TOPSIS",
        Normalization::Vector,
        Weighting::Entropy,
        Aggregation::Topsis,
    ),
    (
        "efficacy, CRITIC, geometric",
        Normalization::Efficacy,
        Weighting::Critic,
        Aggregation::GeometricMean,
    ),
];

fn scheme(normalization: Normalization, weighting: Weighting, aggregation: Aggregation) -> Scheme {
    let criterion = |metric: &str, weight: f64, direction| Criterion {
        metric: metric.into(),
        weight,
        direction,
        benchmark: None,
    };
    Scheme {
        criteria: vec![
            criterion("per_mu(tax)", 0.3, Direction::HigherIsBetter),
            criterion("per_mu(value_added)", 0.2, Direction::HigherIsBetter),
            criterion("labor_productivity", 0.2, Direction::HigherIsBetter),
            criterion("rd_intensity", 0.1, Direction::HigherIsBetter),
            criterion("energy_intensity", 0.2, Direction::LowerIsBetter),
        ],
        normalization,
        weighting,
        aggregation,
        missing_policy: MissingPolicy::CohortMean,
        star_rules: vec![StarRule {
            level: 1,
            min_score: 0.6,
            gates: vec![Gate::parse("revenue >= 10000").expect("gate")],
        }],
        class_cuts: default_class_cuts(),
        adjustments: vec![],
        vetoes: vec![],
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let criteria: Vec<Vec<Option<f64>>> = (0..5)
        .map(|_| {
            (0..n)
                .map(|_| (rng.random::<f64>() > 0.02).then(|| rng.random::<f64>() * 100.0 + 0.1))
                .collect()
        })
        .collect();
    let revenue: Vec<Option<f64>> = (0..n)
        .map(|_| Some(rng.random::<f64>() * 50_000.0))
        .collect();
    let groups = Groups::from_keys((0..n).map(|i| [format!("region:41{:02}00", i % 18)]));
    for (label, normalization, weighting, aggregation) in SCHEMES {
        let scheme = scheme(normalization, weighting, aggregation);
        let input = RankingInput {
            scheme: &scheme,
            criteria: criteria.clone(),
            extras: HashMap::from([("revenue".to_string(), revenue.clone())]),
            groups: groups.clone(),
            previous: vec![],
        };
        let start = Instant::now();
        let outcome = rank(&input).expect("rank");
        let seconds = start.elapsed().as_secs_f64();
        let included = outcome.included_count();
        println!(
            "rank {n:>7} entities × 5 criteria, {label:<30} {seconds:>6.2} s ({included} ranked)"
        );
        if label.starts_with("min-max") {
            let start = Instant::now();
            let intervals = rank_robustness(&input, &outcome, 100, 0.2, 7);
            println!(
                "robustness {n:>7} entities, 100 samples                    {:>6.2} s ({} intervals)",
                start.elapsed().as_secs_f64(),
                intervals.iter().flatten().count()
            );
        }
    }
    let sizes: Vec<usize> = std::env::var("BENCH_EXPLAIN")
        .ok()
        .and_then(|v| v.split(',').map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![200, 5000]);
    for size in sizes.into_iter().filter(|&k| k <= n) {
        for &(label, normalization, weighting, aggregation) in &SCHEMES[..2] {
            let scheme = scheme(normalization, weighting, aggregation);
            let input = RankingInput {
                scheme: &scheme,
                criteria: criteria.iter().map(|c| c[..size].to_vec()).collect(),
                extras: HashMap::from([("revenue".to_string(), revenue[..size].to_vec())]),
                groups: groups.prefix(size),
                previous: vec![],
            };
            let outcome = rank(&input).expect("rank");
            // The entity ranked in the middle: a typical question.
            let median = outcome
                .entries()
                .filter(|e| e.included)
                .map(|e| e.rank)
                .max()
                .unwrap_or(1)
                / 2;
            let entity = outcome
                .entries()
                .position(|e| e.included && e.rank >= median)
                .expect("an entity");
            let start = Instant::now();
            let explanation = explain(&input, &outcome, entity).expect("explained");
            println!(
                "explain {size:>7} entities × 5 criteria, {label:<30} {:>8.1} ms ({} targets)",
                start.elapsed().as_secs_f64() * 1e3,
                explanation
                    .gaps
                    .iter()
                    .filter(|g| g.raw_target.is_some())
                    .count()
            );
        }
    }
}
