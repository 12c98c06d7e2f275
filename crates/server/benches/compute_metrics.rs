//! One metrics computation over a large enterprise cohort: the cohort query, the bulk value
//! reads and the evaluation, on SQLite and (when it answers) PostgreSQL.
//!
//! `cargo bench -p zonerank-server --bench compute_metrics` (env `BENCH_ENTERPRISES`, default 100000)

use std::time::Instant;

use zonerank_domain::{
    entity::{EntityKind, credit_code_check_char},
    period::Period,
};
use zonerank_server::metrics::{Catalog, compute};
use zonerank_storage::{
    CohortQuery, EnterpriseRecord, ObservationInput, RegionRecord, Store, ZoneRecord,
    test_support::TestDatabase,
};

fn credit_code(i: usize) -> String {
    let first17 = format!("91410100MA{:07}", i);
    let check = credit_code_check_char(&first17).expect("check character");
    format!("{first17}{check}")
}

async fn load(store: &Store, n: usize) {
    store
        .upsert_regions(&[RegionRecord {
            code: "410100".into(),
            name: "郑州市".into(),
            name_en: "Zhengzhou".into(),
            level: zonerank_domain::entity::RegionLevel::City,
            parent_code: None,
        }])
        .await
        .expect("region");
    let zones: Vec<ZoneRecord> = (0..50)
        .map(|z| ZoneRecord {
            id: format!("Z{z:02}"),
            name: format!("zone {z}"),
            region_code: "410100".into(),
            kind: zonerank_domain::entity::ZoneKind::IndustrialPark,
            tags: vec![],
            leading_industries: vec![],
        })
        .collect();
    store.upsert_zones(&zones).await.expect("zones");
    let firms: Vec<EnterpriseRecord> = (0..n)
        .map(|i| EnterpriseRecord {
            credit_code: credit_code(i),
            name: format!("firm {i}"),
            zone_id: Some(format!("Z{:02}", i % 50)),
            industry_code: "C34".into(),
            above_scale: true,
        })
        .collect();
    store.upsert_enterprises(&firms).await.expect("enterprises");
    let mut rows = Vec::with_capacity(n * 4);
    for (i, firm) in firms.iter().enumerate() {
        for (indicator, year, value) in [
            ("tax", 2023, 100.0 + (i % 997) as f64),
            ("tax", 2022, 90.0 + (i % 991) as f64),
            ("land_area", 2023, 50.0 + (i % 89) as f64),
            ("value_added", 2023, 1000.0 + (i % 1009) as f64),
        ] {
            rows.push(ObservationInput {
                kind: EntityKind::Enterprise,
                entity_id: firm.credit_code.clone(),
                indicator: indicator.into(),
                period: Period::full_year(year).expect("year"),
                value,
                source: "bench".into(),
            });
        }
    }
    store
        .write_observations(&rows, false)
        .await
        .expect("observations");
}

async fn bench(name: &str, store: &Store, n: usize) {
    let load_start = Instant::now();
    load(store, n).await;
    println!(
        "{name:<10} load {n} enterprises, {} observations: {:.1} s",
        n * 4,
        load_start.elapsed().as_secs_f64()
    );
    let catalog = Catalog::load(store).await.expect("catalog");
    let metrics = catalog
        .parse_all(
            "metrics",
            &[
                "per_mu(tax)".into(),
                "yoy(tax)".into(),
                "share(value_added)".into(),
            ],
        )
        .expect("metrics");
    let cohort = CohortQuery {
        kind: Some(EntityKind::Enterprise),
        ..Default::default()
    };
    for label in ["first", "second"] {
        let start = Instant::now();
        let computed = compute(
            store,
            &catalog,
            &metrics,
            &[Period::full_year(2023).expect("year")],
            &cohort,
            None,
        )
        .await
        .expect("compute");
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(computed.members.len(), n);
        println!(
            "{name:<10} compute 3 metrics × {n} enterprises ({label}): {seconds:.2} s, {:.0} entities/s",
            n as f64 / seconds
        );
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_ENTERPRISES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sqlite = TestDatabase::sqlite();
    bench("sqlite", &sqlite.migrated_store().await.expect("sqlite"), n).await;
    match TestDatabase::postgres().await {
        Ok(pg) => {
            bench("postgres", &pg.migrated_store().await.expect("postgres"), n).await;
            pg.drop().await.expect("drop");
        }
        Err(e) => println!("postgres   skipped: {e}"),
    }
}
