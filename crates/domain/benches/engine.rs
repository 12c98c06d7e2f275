//! The columnar engine at national scale, with criterion: a full `rank()` over 500,000
//! entities × 10 criteria (no missing values, 18 region groups, one star rule), and rank
//! robustness. The same matrix is written to CSV for `bench/engine_pymcdm.py`, which times
//! pymcdm on it in the same run.
//!
//! `cargo bench -p zonerank-domain --bench engine`
//! env: `BENCH_ENTITIES` (default 500000), `BENCH_CRITERIA` (10), `BENCH_ROBUSTNESS_ENTITIES`
//! (default 100000), `BENCH_ROBUSTNESS_SAMPLES` (1000), `BENCH_MATRIX_CSV` (a path: write the
//! matrix there).

use std::{collections::HashMap, hint::black_box, io::Write, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zonerank_domain::{
    catalog::Direction,
    ranking::{
        Aggregation, MissingPolicy, Normalization, Weighting,
        engine::{Groups, RankingInput, rank},
        robustness::rank_robustness,
        scheme::{Criterion as Crit, Gate, Scheme, StarRule, default_class_cuts},
    },
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn scheme(
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
fn matrix(n: usize, m: usize) -> Vec<Vec<Option<f64>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    (0..m)
        .map(|_| {
            (0..n)
                .map(|_| Some(rng.random::<f64>() * 100.0 + 0.1))
                .collect()
        })
        .collect()
}

fn write_csv(path: &str, criteria: &[Vec<Option<f64>>]) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("csv"));
    let m = criteria.len();
    let header: Vec<String> = (0..m).map(|j| format!("c{j}")).collect();
    writeln!(out, "{}", header.join(",")).expect("write");
    for e in 0..criteria[0].len() {
        let row: Vec<String> = criteria
            .iter()
            .map(|c| format!("{:?}", c[e].unwrap_or(f64::NAN)))
            .collect();
        writeln!(out, "{}", row.join(",")).expect("write");
    }
}

fn engine(c: &mut Criterion) {
    let n = env("BENCH_ENTITIES", 500_000);
    let m = env("BENCH_CRITERIA", 10);
    let criteria = matrix(n, m);
    if let Ok(path) = std::env::var("BENCH_MATRIX_CSV") {
        write_csv(&path, &criteria);
    }
    let groups = Groups::from_keys((0..n).map(|i| [format!("region:41{:02}00", i % 18)]));
    let mut group = c.benchmark_group(format!("rank {n} x {m}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for (label, normalization, weighting, aggregation) in [
        (
            "min-max + fixed + weighted sum",
            Normalization::MinMax,
            Weighting::Fixed,
            Aggregation::WeightedSum,
        ),
        (
            "vector + entropy + TOPSIS",
            Normalization::Vector,
            Weighting::Entropy,
            Aggregation::Topsis,
        ),
    ] {
        let scheme = scheme(m, normalization, weighting, aggregation);
        let input = RankingInput {
            scheme: &scheme,
            criteria: criteria.clone(),
            extras: HashMap::new(),
            groups: groups.clone(),
            previous: vec![],
        };
        group.bench_function(label, |b| b.iter(|| black_box(rank(&input).expect("rank"))));
    }
    group.finish();

    let k = env("BENCH_ROBUSTNESS_ENTITIES", 100_000).min(n);
    let samples = env("BENCH_ROBUSTNESS_SAMPLES", 1000);
    let scheme = scheme(
        m,
        Normalization::MinMax,
        Weighting::Fixed,
        Aggregation::WeightedSum,
    );
    let input = RankingInput {
        scheme: &scheme,
        criteria: criteria.iter().map(|c| c[..k].to_vec()).collect(),
        extras: HashMap::new(),
        groups: Groups::new(),
        previous: vec![],
    };
    let outcome = rank(&input).expect("rank");
    let mut group = c.benchmark_group(format!("robustness {k} x {m}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(1));
    group.bench_function(format!("{samples} samples"), |b| {
        b.iter(|| black_box(rank_robustness(&input, &outcome, samples, 0.2, 7)))
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
