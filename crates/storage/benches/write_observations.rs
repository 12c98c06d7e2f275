//! Bulk observation writes: rows per second for a first import, a re-import (all unchanged) and
//! a revision of every row, on SQLite and, when it answers, PostgreSQL.
//!
//! `cargo bench -p zonerank-storage --bench write_observations` (env `BENCH_ROWS`, default 100000)

use std::time::Instant;

use zonerank_domain::{entity::EntityKind, period::Period};
use zonerank_storage::{ObservationInput, Store, test_support::TestDatabase};

fn rows(count: usize, bump: f64) -> Vec<ObservationInput> {
    let indicators = [
        "output_value",
        "revenue",
        "tax",
        "fixed_asset_investment",
        "energy_consumption",
    ];
    let periods: Vec<Period> = (2015..2025)
        .flat_map(|y| (1..=12).map(move |m| Period::new(y, 1, m).expect("period")))
        .collect();
    (0..count)
        .map(|i| {
            let indicator = indicators[i % indicators.len()];
            let period = periods[(i / indicators.len()) % periods.len()];
            let zone = i / (indicators.len() * periods.len());
            ObservationInput {
                kind: EntityKind::Zone,
                entity_id: format!("Z{zone:05}"),
                indicator: indicator.to_string(),
                period,
                value: (i % 9973) as f64 * 1.5 + bump,
                source: "bench".to_string(),
            }
        })
        .collect()
}

async fn bench(name: &str, store: &Store, count: usize) {
    let first = rows(count, 0.0);
    let revised = rows(count, 1.0);
    for (label, batch, expect) in [
        ("first import", &first, "accepted"),
        ("re-import", &first, "unchanged"),
        ("revision", &revised, "updated"),
    ] {
        let start = Instant::now();
        let (summary, _) = store.write_observations(batch, false).await.expect("write");
        let seconds = start.elapsed().as_secs_f64();
        let done = match expect {
            "accepted" => summary.accepted,
            "unchanged" => summary.unchanged,
            _ => summary.updated,
        };
        assert_eq!(done as usize, count, "{label}");
        println!(
            "{name:<10} {label:<13} {count:>8} rows  {seconds:>7.2} s  {:>9.0} rows/s",
            count as f64 / seconds
        );
    }
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sqlite = TestDatabase::sqlite();
    bench(
        "sqlite",
        &sqlite.migrated_store().await.expect("sqlite"),
        count,
    )
    .await;
    match TestDatabase::postgres().await {
        Ok(pg) => {
            bench(
                "postgres",
                &pg.migrated_store().await.expect("postgres"),
                count,
            )
            .await;
            pg.drop().await.expect("drop");
        }
        Err(e) => println!("postgres   skipped: {e}"),
    }
}
