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
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    let sum = violations
        .iter()
        .find(|v| v.field == "rows[2].value")
        .expect("row 2 named");
    assert!(sum.description.contains("region_sum"), "{sum:?}");
    let fields: BTreeSet<String> = violations.into_iter().map(|v| v.field).collect();
    assert_eq!(
        fields,
        ["rows[2].value", "rows[7].value", "rows[8].value"]
            .map(String::from)
            .into()
    );
    let nothing = import(client, DIRTY, false, true).await.expect("dry run");
    assert_eq!(nothing.accepted, 7, "the strict import wrote something");
    assert_eq!(nothing.warnings.len(), 3);
    // neither the strict rejection nor the dry run stored an issue
    assert!(issues(client, list()).await.is_empty());

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

    // the committed import stored its three issues, about the figures they concern
    let stored = issues(client, list()).await;
    assert_eq!(
        subjects(&stored),
        vec![
            subject("region_sum", "REGION 410300", "2024"),
            subject("period_parts", "ZONE z3", "2024-H1"),
            subject("ytd_falls", "ZONE z3", "2024-09-YTD"),
        ]
    );
    for (issue, warning) in stored.iter().zip(&report.warnings) {
        assert_eq!(issue.status, "open");
        assert_eq!(issue.data_version, report.data_version);
        assert_eq!(issue.indicator, "tax");
        assert_eq!(issue.issue.as_ref(), Some(warning));
    }

    // a revision a hundred times the stored value
    import(client, &["ZONE,z1,tax,2021,60,万元"], false, false)
        .await
        .expect("first value");
    let jump = import(client, &["ZONE,z1,tax,2021,6000,万元"], false, false)
        .await
        .expect("revision");
    assert_eq!(jump.updated, 1);
    assert_eq!(rules(&jump), vec![(2, "revision_jump".to_string())]);
    assert_eq!(jump.warnings[0].figures[1].value, 60.0);

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

    listing_filters_and_pages(client).await;

    // a sound revision resolves the jump it follows
    let modest = import(client, &["ZONE,z1,tax,2021,6100,万元"], false, false)
        .await
        .expect("revision");
    assert!(modest.warnings.is_empty(), "{:?}", modest.warnings);
    let open = subjects(&issues(client, list()).await);
    assert!(
        !open.contains(&subject("revision_jump", "ZONE z1", "2021")),
        "{open:?}"
    );
    assert_eq!(open.len(), 4);
    let all = issues(
        client,
        v1::ListDataIssuesRequest {
            rule: "revision_jump".into(),
            include_resolved: true,
            ..list()
        },
    )
    .await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, "resolved");
    assert_eq!(all[0].resolved_data_version, modest.data_version);

    against_stored_figures(client).await;
}

fn list() -> v1::ListDataIssuesRequest {
    v1::ListDataIssuesRequest::default()
}

/// Every issue the request lists, following the page tokens.
async fn issues(
    client: &mut Ingestion,
    request: v1::ListDataIssuesRequest,
) -> Vec<v1::StoredDataIssue> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_data_issues(v1::ListDataIssuesRequest {
                page_token: token,
                ..request.clone()
            })
            .await
            .expect("list data issues")
            .into_inner();
        all.extend(page.issues);
        if page.next_page_token.is_empty() {
            return all;
        }
        token = page.next_page_token;
    }
}

/// (rule, entity, period) of an issue.
fn subject(rule: &str, entity: &str, period: &str) -> (String, String, String) {
    (rule.into(), entity.into(), period.into())
}

fn subjects(issues: &[v1::StoredDataIssue]) -> Vec<(String, String, String)> {
    issues
        .iter()
        .map(|i| {
            let entity = i.entity.as_ref().expect("entity");
            let kind = v1::EntityKind::try_from(entity.kind).expect("kind");
            let kind = kind.as_str_name().trim_start_matches("ENTITY_KIND_");
            (
                i.issue.as_ref().expect("issue").rule.clone(),
                format!("{kind} {}", entity.id),
                i.period.clone(),
            )
        })
        .collect()
}

/// Five open issues: region_sum, period_parts, ytd_falls, revision_jump, growth_outlier.
async fn listing_filters_and_pages(client: &mut Ingestion) {
    let all = issues(client, list()).await;
    assert_eq!(all.len(), 5, "{:?}", subjects(&all));

    // pages of two: 2 + 2 + 1, in id order, no duplicates, the last without a token
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut sizes = Vec::new();
    loop {
        let page = client
            .list_data_issues(v1::ListDataIssuesRequest {
                page_size: 2,
                page_token: token,
                ..list()
            })
            .await
            .expect("page")
            .into_inner();
        sizes.push(page.issues.len());
        seen.extend(page.issues.iter().map(|i| i.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    let ids: Vec<i64> = all.iter().map(|i| i.id).collect();
    assert_eq!(seen, ids);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let filtered = |request: v1::ListDataIssuesRequest| {
        let mut client = client.clone();
        async move { subjects(&issues(&mut client, request).await) }
    };
    assert_eq!(
        filtered(v1::ListDataIssuesRequest {
            rule: "period_parts".into(),
            ..list()
        })
        .await,
        vec![subject("period_parts", "ZONE z3", "2024-H1")]
    );
    assert_eq!(
        filtered(v1::ListDataIssuesRequest {
            severity: "error".into(),
            ..list()
        })
        .await,
        vec![subject("ytd_falls", "ZONE z3", "2024-09-YTD")]
    );
    assert_eq!(
        filtered(v1::ListDataIssuesRequest {
            period: "2024".into(),
            ..list()
        })
        .await,
        vec![subject("region_sum", "REGION 410300", "2024")]
    );
    let cohort = |selector: v1::CohortSelector| v1::ListDataIssuesRequest {
        cohort: Some(selector),
        ..list()
    };
    assert_eq!(
        filtered(cohort(v1::CohortSelector {
            entity_kind: v1::EntityKind::Region as i32,
            ..Default::default()
        }))
        .await,
        vec![subject("region_sum", "REGION 410300", "2024")]
    );
    assert_eq!(
        filtered(cohort(v1::CohortSelector {
            ids: vec!["z3".into()],
            ..Default::default()
        }))
        .await,
        vec![
            subject("period_parts", "ZONE z3", "2024-H1"),
            subject("ytd_falls", "ZONE z3", "2024-09-YTD"),
        ]
    );
    assert_eq!(
        filtered(cohort(v1::CohortSelector {
            entity_kind: v1::EntityKind::Zone as i32,
            region_code: "410300".into(),
            ..Default::default()
        }))
        .await
        .len(),
        4
    );
    let status = client
        .list_data_issues(v1::ListDataIssuesRequest {
            rule: "region_summ".into(),
            ..list()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations[0]
            .field,
        "rule"
    );
}

/// The rules compare a batch with what is stored: a figure arriving alone is checked against
/// its stored siblings and wholes, and a correction resolves the issue it answers.
async fn against_stored_figures(client: &mut Ingestion) {
    // H1 corrected to Q1 + Q2 (both stored): the sub-period issue and the year-to-date one go
    let fixed = import(client, &["ZONE,z3,tax,2024-H1,20,万元"], false, false)
        .await
        .expect("correction");
    assert!(fixed.warnings.is_empty(), "{:?}", fixed.warnings);
    // the region revised alone: its stored zones (60 + 45) now fit
    let region = import(client, &["REGION,410300,tax,2024,110,万元"], false, false)
        .await
        .expect("region");
    assert!(region.warnings.is_empty(), "{:?}", region.warnings);
    let open = subjects(&issues(client, list()).await);
    assert_eq!(open, vec![subject("growth_outlier", "ZONE z5", "2023")]);
    let resolved: Vec<_> = issues(
        client,
        v1::ListDataIssuesRequest {
            include_resolved: true,
            ..list()
        },
    )
    .await
    .into_iter()
    .filter(|i| i.status == "resolved")
    .map(|i| (i.issue.unwrap().rule, i.resolved_data_version))
    .collect();
    assert!(
        resolved.contains(&("period_parts".to_string(), fixed.data_version)),
        "{resolved:?}"
    );
    assert!(
        resolved.contains(&("ytd_falls".to_string(), fixed.data_version)),
        "{resolved:?}"
    );
    assert!(
        resolved.contains(&("region_sum".to_string(), region.data_version)),
        "{resolved:?}"
    );

    // a zone arriving alone whose stored siblings and it exceed the stored region figure
    let zone = import(client, &["ZONE,z4,tax,2024,20,万元"], false, false)
        .await
        .expect("zone");
    assert_eq!(rules(&zone), vec![(2, "region_sum".to_string())]);
    assert_eq!(zone.warnings[0].figures[0].value, 125.0);
    assert_eq!(zone.warnings[0].figures[1].value, 110.0);
    assert!(subjects(&issues(client, list()).await).contains(&subject(
        "region_sum",
        "REGION 410300",
        "2024"
    )));

    // a half-year arriving that, with the stored other half, contradicts the stored year (45)
    let first = import(client, &["ZONE,z2,tax,2024-H1,20,万元"], false, false)
        .await
        .expect("first half");
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let second = import(client, &["ZONE,z2,tax,2024-H2,30,万元"], false, false)
        .await
        .expect("second half");
    assert_eq!(rules(&second), vec![(2, "period_parts".to_string())]);
    assert_eq!(second.warnings[0].figures[1].label, "2024");
    assert_eq!(second.warnings[0].figures[1].value, 45.0);
    assert!(subjects(&issues(client, list()).await).contains(&subject(
        "period_parts",
        "ZONE z2",
        "2024"
    )));
}

#[tokio::test]
async fn rules_switched_off_by_configuration_stay_quiet() {
    let database = TestDatabase::sqlite();
    database.migrated_store().await.expect("migrate");
    let dir = tempfile::tempdir().expect("temp dir");
    let rules_file = dir.path().join("quality.json");
    std::fs::write(
        &rules_file,
        r#"{"rules": {"region_sum": {"enabled": false}, "period_parts": {"enabled": false},
                      "ytd_falls": {"severity": "warning"}}}"#,
    )
    .expect("rules file");
    let mut args = server_args(&database.url, None);
    args.quality_rules = Some(rules_file);
    let server = RunningServer::start(args, Services::ALL_IN_ONE).await;
    let mut client = IngestionServiceClient::new(server.channel().await);
    setup(&mut client).await;
    let report = import(&mut client, DIRTY, false, false)
        .await
        .expect("import");
    assert_eq!(rules(&report), vec![(8, "ytd_falls".to_string())]);
    assert_eq!(report.warnings[0].severity, "warning");
    assert_eq!(
        subjects(&issues(&mut client, list()).await),
        vec![subject("ytd_falls", "ZONE z3", "2024-09-YTD")]
    );
    server.stop().await;
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
