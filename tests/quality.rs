//! Data-quality rules at ingestion, end to end: warnings in the ingest report, quiet on clean
//! data, and `strict` turning them into an all-or-nothing rejection; on SQLite and PostgreSQL.

use std::collections::BTreeSet;

use tonic::Code;
use tonic_types::StatusExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_integration_tests::{RunningServer, seed_regions, server_args};
use zonerank_server::Services;
use zonerank_storage::test_support::TestDatabase;

type Ingestion = IngestionServiceClient<tonic::transport::Channel>;

fn zone(id: &str, region_code: &str) -> v1::Zone {
    v1::Zone {
        id: id.into(),
        name: format!("{id} 产业集聚区"),
        region_code: region_code.into(),
        kind: v1::ZoneKind::AgglomerationZone as i32,
        ..Default::default()
    }
}

async fn setup(client: &mut Ingestion) {
    client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions");
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: ["z1", "z2", "z3", "z4", "z5"]
                .into_iter()
                .map(|id| zone(id, "410300"))
                .collect(),
            ..Default::default()
        })
        .await
        .expect("zones");
}

fn csv(rows: &[&str]) -> Vec<u8> {
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    csv.into_bytes()
}

async fn import(
    client: &mut Ingestion,
    rows: &[&str],
    strict: bool,
    dry_run: bool,
) -> Result<v1::IngestReport, tonic::Status> {
    client
        .import_csv(v1::ImportCsvRequest {
            content: csv(rows),
            strict,
            dry_run,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn rules(report: &v1::IngestReport) -> Vec<(i64, String)> {
    report
        .warnings
        .iter()
        .map(|w| (w.row, w.rule.clone()))
        .collect()
}

/// Row numbers are CSV lines: the header is line 1.
const DIRTY: &[&str] = &[
    "REGION,410300,tax,2024,100,万元", // line 2: zones sum to 105
    "ZONE,z1,tax,2024,60,万元",        // line 3
    "ZONE,z2,tax,2024,45,万元",        // line 4
    "ZONE,z3,tax,2024-Q1,10,万元",     // line 5
    "ZONE,z3,tax,2024-Q2,10,万元",     // line 6
    "ZONE,z3,tax,2024-H1,30,万元",     // line 7: Q1 + Q2 = 20
    "ZONE,z3,tax,2024-09-YTD,25,万元", // line 8: below the H1 figure
];

const CLEAN: &[&str] = &[
    "REGION,410300,tax,2024,110,万元",
    "ZONE,z1,tax,2024,60,万元",
    "ZONE,z2,tax,2024,45,万元",
    "ZONE,z3,tax,2024-Q1,10,万元",
    "ZONE,z3,tax,2024-Q2,10,万元",
    "ZONE,z3,tax,2024-H1,20,万元",
    "ZONE,z3,tax,2024-09-YTD,25,万元",
];

async fn rules_fire_and_stay_quiet(client: &mut Ingestion) {
    setup(client).await;
    let clean = import(client, CLEAN, true, true)
        .await
        .expect("clean, strict");
    assert!(clean.warnings.is_empty(), "{:?}", clean.warnings);
    assert_eq!(clean.accepted, 7);

    // strict: rejected, naming the rows, and nothing written
    let status = import(client, DIRTY, true, false).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: BTreeSet<String> = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        ["rows[2].value", "rows[7].value", "rows[8].value"]
            .map(String::from)
            .into()
    );
    let nothing = import(client, DIRTY, false, true).await.expect("dry run");
    assert_eq!(nothing.accepted, 7, "the strict import wrote something");

    // not strict: written, with the warnings in the report
    let report = import(client, DIRTY, false, false).await.expect("import");
    assert_eq!(report.accepted, 7);
    assert_eq!(report.rejected, 0);
    assert_eq!(
        rules(&report),
        vec![
            (2, "region_sum".to_string()),
            (7, "period_parts".to_string()),
            (8, "ytd_falls".to_string()),
        ]
    );
    let sum = &report.warnings[0];
    assert_eq!(sum.severity, "warning");
    assert_eq!(sum.tolerance, 0.01);
    assert_eq!(sum.figures[0].value, 105.0);
    assert_eq!(sum.figures[1].label, "REGION 410300");
    assert_eq!(sum.figures[1].value, 100.0);
    let parts = &report.warnings[1];
    assert_eq!(parts.figures[0].value, 20.0);
    assert_eq!(parts.figures[1].label, "2024-H1");

    // a revision a hundred times the stored value
    let jump = import(client, &["ZONE,z1,tax,2024,6000,万元"], false, false)
        .await
        .expect("revision");
    assert_eq!(jump.updated, 1);
    assert_eq!(rules(&jump), vec![(2, "revision_jump".to_string())]);
    assert_eq!(jump.warnings[0].figures[1].value, 60.0);
    let modest = import(client, &["ZONE,z1,tax,2024,6100,万元"], false, false)
        .await
        .expect("revision");
    assert!(modest.warnings.is_empty(), "{:?}", modest.warnings);

    // growth: one zone of five triples while the others grow by up to 10%
    // (Hidiroglou–Berthelot with the default U = 0.5, A = 0.05, C = 20)
    let growth: Vec<String> = [110.0, 105.0, 100.0, 108.0, 300.0]
        .iter()
        .enumerate()
        .flat_map(|(i, now)| {
            [
                format!("ZONE,z{},output_value,2022,100,万元", i + 1),
                format!("ZONE,z{},output_value,2023,{now},万元", i + 1),
            ]
        })
        .collect();
    let growth: Vec<&str> = growth.iter().map(String::as_str).collect();
    let report = import(client, &growth, false, false).await.expect("growth");
    assert_eq!(rules(&report), vec![(11, "growth_outlier".to_string())]);
    assert_eq!(report.warnings[0].tolerance, 20.0);
    assert_eq!(report.warnings[0].figures[0].value, 300.0);
}

#[tokio::test]
async fn quality_rules_sqlite() {
    let database = TestDatabase::sqlite();
    database.migrated_store().await.expect("migrate");
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut client = IngestionServiceClient::new(server.channel().await);
    rules_fire_and_stay_quiet(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn quality_rules_postgres() {
    let database = TestDatabase::postgres().await.expect("test database");
    database.migrated_store().await.expect("migrate");
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut client = IngestionServiceClient::new(server.channel().await);
    rules_fire_and_stay_quiet(&mut client).await;
    server.stop().await;
    database.drop().await.expect("drop");
}
