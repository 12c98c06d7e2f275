//! The columnar engine at national scale, with criterion: a full `rank()` over 500,000
//! entities × 10 criteria (no missing values, 18 region groups, one star rule); rank robustness
//! has its own bench (`--bench robustness`). The same matrix is written to CSV for `bench/engine_pymcdm.py`, which times
//! pymcdm on it in the same run.
//!
//! `cargo bench -p zonerank-domain --bench engine`
//! env: `BENCH_ENTITIES` (default 500000), `BENCH_CRITERIA` (10), `BENCH_MATRIX_CSV` (a path:
//! write the matrix there).

/// The allocator every zonerank binary runs the engine under (their `main.rs`), so the bench
/// sees what a service does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{collections::HashMap, hint::black_box, io::Write, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use zonerank_domain::ranking::{
    Aggregation, Normalization, Weighting,
    engine::{Groups, RankingInput, rank},
};

mod support;
use support::{env, matrix, scheme};

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
}

criterion_group!(benches, engine);
criterion_main!(benches);
