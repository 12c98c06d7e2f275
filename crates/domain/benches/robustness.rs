//! Rank robustness at national scale, once, with the process's peak memory: 1,000 weight
//! perturbations of a min-max + fixed + weighted-sum run over 500,000 entities × 10 criteria.
//! One run of this size takes seconds, so it is timed directly rather than by criterion; the
//! peak resident set (`VmHWM` of /proc/self/status) covers the matrix, the run and the
//! sampling, as a service holding them would.
//!
//! `cargo bench -p zonerank-domain --bench robustness`
//! env: `BENCH_ROBUSTNESS_ENTITIES` (default 500000), `BENCH_ROBUSTNESS_SAMPLES` (1000),
//! `BENCH_CRITERIA` (10), `BENCH_RUNS` (3).

/// The allocator every zonerank binary runs the engine under (their `main.rs`), so the bench
/// sees what a service does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{collections::HashMap, hint::black_box, time::Instant};

use zonerank_domain::ranking::{
    Aggregation, Normalization, Weighting,
    engine::{Groups, RankingInput, rank},
    robustness::rank_robustness,
};

mod support;
use support::{env, matrix, scheme};

/// A `VmRSS`/`VmHWM` line of /proc/self/status, in MiB (0 where there is none).
fn status_mib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names something else skips this target.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"robustness".contains(a.as_str()))
    {
        return;
    }
    let n = env("BENCH_ROBUSTNESS_ENTITIES", 500_000);
    let samples = env("BENCH_ROBUSTNESS_SAMPLES", 1000);
    let m = env("BENCH_CRITERIA", 10);
    let runs = env("BENCH_RUNS", 3).max(1);
    let scheme = scheme(
        m,
        Normalization::MinMax,
        Weighting::Fixed,
        Aggregation::WeightedSum,
    );
    let input = RankingInput {
        scheme: &scheme,
        criteria: matrix(n, m),
        extras: HashMap::new(),
        groups: Groups::new(),
        previous: vec![],
    };
    let outcome = rank(&input).expect("rank");
    let before = status_mib("VmHWM:");
    println!(
        "robustness {n} x {m}, {samples} samples, {} threads; peak RSS before sampling {before} MiB",
        rayon::current_num_threads()
    );
    for run in 1..=runs {
        let started = Instant::now();
        let intervals = black_box(rank_robustness(&input, &outcome, samples, 0.2, 7));
        let took = started.elapsed();
        let moved = intervals.iter().flatten().filter(|i| i.p5 < i.p95).count();
        println!(
            "run {run}: {:.2} s; {moved} of {n} entities move; peak RSS {} MiB",
            took.as_secs_f64(),
            status_mib("VmHWM:")
        );
    }
}
