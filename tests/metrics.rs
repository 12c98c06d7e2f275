//! MetricsService end to end: seed figures through the all-in-one server, Luoyang-style target
//! progress, and cache freshness against PostgreSQL and Redis with separate servers.

use tonic::Code;
use tonic_types::StatusExt;
use zonerank_api::v1::{
    self, ingestion_service_client::IngestionServiceClient, metric_value::Result as Value,
    metrics_service_client::MetricsServiceClient,
};
use zonerank_integration_tests::{Deployment, RunningServer, seed_regions, server_args};
use zonerank_server::Services;
use zonerank_storage::test_support::TestDatabase;

type Ingestion = IngestionServiceClient<tonic::transport::Channel>;
type Metrics = MetricsServiceClient<tonic::transport::Channel>;

fn zone(id: &str, region_code: &str, tags: &[&str]) -> v1::Zone {
    v1::Zone {
        id: id.into(),
        name: format!("{id} 产业集聚区"),
        region_code: region_code.into(),
        kind: v1::ZoneKind::AgglomerationZone as i32,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        leading_industries: vec![],
    }
}

async fn setup(client: &mut Ingestion, zones: Vec<v1::Zone>) {
    client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions");
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones,
            ..Default::default()
        })
        .await
        .expect("zones");
}

async fn import(client: &mut Ingestion, rows: &[&str]) -> v1::IngestReport {
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    client
        .import_csv(v1::ImportCsvRequest {
            content: csv.into_bytes(),
            ..Default::default()
        })
        .await
        .expect("import")
        .into_inner()
}

fn cohort(kind: v1::EntityKind, ids: &[&str]) -> Option<v1::CohortSelector> {
    Some(v1::CohortSelector {
        entity_kind: kind as i32,
        ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

async fn compute(
    client: &mut Metrics,
    metrics: &[&str],
    period: &str,
    cohort: Option<v1::CohortSelector>,
    as_of: Option<prost_types::Timestamp>,
) -> v1::ComputeMetricsResponse {
    client
        .compute_metrics(v1::ComputeMetricsRequest {
            metrics: metrics.iter().map(|s| s.to_string()).collect(),
            period: period.into(),
            cohort,
            as_of,
        })
        .await
        .expect("compute")
        .into_inner()
}

fn number(value: &v1::MetricValue) -> f64 {
    match &value.result {
        Some(Value::Value(v)) => *v,
        other => panic!("expected a number, got {other:?}"),
    }
}

#[tokio::test]
async fn queshan_seed_figures_give_the_reported_growth_and_shares() {
    let database = TestDatabase::sqlite();
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    let mut metrics = MetricsServiceClient::new(server.channel().await);
    setup(&mut ingestion, vec![zone("411725-CJQ", "411725", &[])]).await;

    // The seed's figures (002), with the prior-year and county figures they imply.
    let output_2013 = format!("ZONE,411725-CJQ,output_value,2013-H1,{},亿元", 53.2 / 1.225);
    let county_fai = format!(
        "REGION,411725,fixed_asset_investment,2014-06-YTD,{},亿元",
        40.1 / 0.66
    );
    let county_tax = format!("REGION,411725,tax,2014-H1,{},亿元", 1.14 / 0.49);
    import(
        &mut ingestion,
        &[
            "ZONE,411725-CJQ,output_value,2014-H1,53.2,亿元",
            &output_2013,
            "ZONE,411725-CJQ,fixed_asset_investment,2014-H1,40.1,亿元",
            "ZONE,411725-CJQ,tax,2014-H1,1.14,亿元",
            "ZONE,411725-CJQ,leading_industry_output,2014-H1,35.7,亿元",
            &county_fai,
            &county_tax,
        ],
    )
    .await;

    let answer = compute(
        &mut metrics,
        &[
            "yoy(output_value)",
            "share(fixed_asset_investment)",
            "share(tax)",
            "leading_industry_share",
            "yoy(tax)",
        ],
        "2014-06-YTD",
        cohort(v1::EntityKind::Zone, &["411725-CJQ"]),
        None,
    )
    .await;
    let table = answer.table.expect("table");
    assert_eq!(table.period, "2014-H1");
    assert_eq!(table.metrics[0].unit, "%");
    let row = &table.rows[0];
    assert_eq!(row.entity.as_ref().unwrap().id, "411725-CJQ");
    assert!(
        (number(&row.values[0]) - 22.5).abs() < 1e-9,
        "yoy(output_value)"
    );
    assert!(
        (number(&row.values[1]) - 66.0).abs() < 1e-9,
        "share(fixed_asset_investment)"
    );
    assert!((number(&row.values[2]) - 49.0).abs() < 1e-9, "share(tax)");
    assert!(
        (number(&row.values[3]) - 67.1).abs() < 0.05,
        "leading_industry_share"
    );
    // No 2013 tax was given: a reason, not a number.
    match &row.values[4].result {
        Some(Value::MissingReason(reason)) => assert!(reason.contains("2013-H1"), "{reason}"),
        other => panic!("yoy(tax) without a base must say why, got {other:?}"),
    }

    // A misspelt metric is refused with its position.
    let status = metrics
        .compute_metrics(v1::ComputeMetricsRequest {
            metrics: vec!["yoy(output_value)".into(), "share(reveune)".into()],
            period: "2014-H1".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown name");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violation = &status.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "metrics[1]");
    assert!(
        violation.description.contains("position 6"),
        "{}",
        violation.description
    );
    server.stop().await;
}

fn target(metric: &str, value: f64, unit: &str) -> v1::Target {
    v1::Target {
        entity: Some(v1::EntityRef {
            kind: v1::EntityKind::Region as i32,
            id: "410300".into(),
        }),
        metric: metric.into(),
        period: "2012".into(),
        comparator: v1::Comparator::AtLeast as i32,
        value,
        unit: unit.into(),
        note: String::new(),
    }
}

#[tokio::test]
async fn luoyang_zone_totals_against_targets_at_mid_year_and_year_end() {
    let database = TestDatabase::sqlite();
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    let mut metrics = MetricsServiceClient::new(server.channel().await);
    // Zone A lies in Xin'an county, zone B directly in the city; C is in another city.
    setup(
        &mut ingestion,
        vec![
            zone("LY-A", "410323", &["四支撑"]),
            zone("LY-B", "410300", &["一中心五组团"]),
            zone("ZMD-C", "411725", &[]),
        ],
    )
    .await;
    // In 亿元. Zones' totals: 2011-H1 300, 2011 650, 2012-H1 480, 2012 880.
    import(
        &mut ingestion,
        &[
            "ZONE,LY-A,fixed_asset_investment,2011-H1,150,亿元",
            "ZONE,LY-B,fixed_asset_investment,2011-H1,150,亿元",
            "ZONE,LY-A,fixed_asset_investment,2011,320,亿元",
            "ZONE,LY-B,fixed_asset_investment,2011,330,亿元",
            "ZONE,LY-A,fixed_asset_investment,2012-06-YTD,250,亿元",
            "ZONE,LY-B,fixed_asset_investment,2012-H1,230,亿元",
            "ZONE,LY-A,fixed_asset_investment,2012,450,亿元",
            "ZONE,LY-B,fixed_asset_investment,2012,430,亿元",
            "ZONE,ZMD-C,fixed_asset_investment,2012,999,亿元",
            "REGION,410300,fixed_asset_investment,2012-H1,1100,亿元",
            "REGION,410300,fixed_asset_investment,2012,2000,亿元",
            "ZONE,LY-A,revenue,2012,620,亿元",
            "ZONE,LY-B,revenue,2012,150,亿元",
            "ZONE,ZMD-C,revenue,2012,90,亿元",
        ],
    )
    .await;
    ingestion
        .upsert_targets(v1::UpsertTargetsRequest {
            targets: vec![
                target("zones_total(fixed_asset_investment)", 900.0, "亿元"),
                target("yoy(zones_total(fixed_asset_investment))", 40.0, "%"),
                target("share(zones_total(fixed_asset_investment))", 40.0, "%"),
            ],
            ..Default::default()
        })
        .await
        .expect("targets");

    let progress = |through: &'static str| {
        let mut metrics = metrics.clone();
        async move {
            let mut answer = metrics
                .get_target_progress(v1::GetTargetProgressRequest {
                    entity: Some(v1::EntityRef {
                        kind: v1::EntityKind::Region as i32,
                        id: "410300".into(),
                    }),
                    through_period: through.into(),
                    as_of: None,
                })
                .await
                .expect("progress")
                .into_inner()
                .progress;
            answer.sort_by_key(|p| p.target.as_ref().unwrap().metric.clone());
            answer
        }
    };
    // Sorted by metric: share(…), yoy(…), zones_total(…).
    // Mid-year: 480亿 of 900亿 (53% with half the year gone), +60% on 300亿, 480/1100 = 43.6%.
    let mid = progress("2012-H1").await;
    let statuses: Vec<i32> = mid.iter().map(|p| p.status).collect();
    let on_track = v1::TargetStatus::OnTrack as i32;
    assert_eq!(statuses, [on_track, on_track, on_track], "{mid:#?}");
    assert!((mid[2].elapsed_share - 0.5).abs() < 1e-12);
    assert!((number(mid[2].actual.as_ref().unwrap()) - 4_800_000.0).abs() < 1e-6);
    assert!((mid[2].attainment - 480.0 / 900.0).abs() < 1e-9);
    assert!((number(mid[1].actual.as_ref().unwrap()) - 60.0).abs() < 1e-9);
    assert!((number(mid[0].actual.as_ref().unwrap()) - 480.0 / 1100.0 * 100.0).abs() < 1e-9);
    // Year-end: 880亿 < 900亿 and +35.4% < 40% fall short; 880/2000 = 44% is achieved.
    let end = progress("2012").await;
    let statuses: Vec<i32> = end.iter().map(|p| p.status).collect();
    let (achieved, behind) = (
        v1::TargetStatus::Achieved as i32,
        v1::TargetStatus::Behind as i32,
    );
    assert_eq!(statuses, [achieved, behind, behind], "{end:#?}");
    assert!((number(end[1].actual.as_ref().unwrap()) - (880.0 / 650.0 - 1.0) * 100.0).abs() < 1e-9);

    // Tier counts: zones with revenue ≥ 100亿 / 500亿 / 1000亿, per region up the tree.
    let tiers = metrics
        .get_tier_counts(v1::GetTierCountsRequest {
            entity_kind: v1::EntityKind::Zone as i32,
            period: "2012".into(),
            ..Default::default()
        })
        .await
        .expect("tiers")
        .into_inner();
    let counts = |code: &str| -> Vec<i64> {
        tiers
            .regions
            .iter()
            .find(|r| r.region_code == code)
            .map(|r| r.tiers.iter().map(|t| t.count).collect())
            .unwrap_or_default()
    };
    assert_eq!(counts("410300"), [2, 1, 0]);
    assert_eq!(counts("410323"), [1, 1, 0]);
    assert_eq!(
        counts("410000"),
        [2, 1, 0],
        "Henan: ZMD-C's 90亿 is under every tier"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_new_ingestion_changes_the_next_answer_and_as_of_keeps_the_old_one() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut metrics = deployment.metrics_client().await;
    setup(
        &mut ingestion,
        vec![zone("LY-A", "410323", &[]), zone("LY-B", "410300", &[])],
    )
    .await;
    import(
        &mut ingestion,
        &[
            "ZONE,LY-A,revenue,2011,100,亿元",
            "ZONE,LY-A,revenue,2012,150,亿元",
            "ZONE,LY-B,revenue,2011,200,亿元",
            "ZONE,LY-B,revenue,2012,210,亿元",
        ],
    )
    .await;
    let selector = Some(v1::CohortSelector {
        entity_kind: v1::EntityKind::Zone as i32,
        region_code: "410300".into(),
        ..Default::default()
    });
    let first = compute(
        &mut metrics,
        &["yoy(revenue)"],
        "2012",
        selector.clone(),
        None,
    )
    .await;
    assert!(!first.cached);
    let again = compute(
        &mut metrics,
        &["yoy(revenue)"],
        "2012",
        selector.clone(),
        None,
    )
    .await;
    assert!(
        again.cached,
        "the same question at the same data version is served from Redis"
    );
    assert_eq!(first.table, again.table);
    let table = first.table.unwrap();
    assert_eq!(table.rows.len(), 2);
    assert!((number(&table.rows[0].values[0]) - 50.0).abs() < 1e-9);

    let before = prost_types::Timestamp::from(std::time::SystemTime::now());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let report = import(&mut ingestion, &["ZONE,LY-A,revenue,2012,180,亿元"]).await;
    assert_eq!(report.updated, 1);

    let after = compute(
        &mut metrics,
        &["yoy(revenue)"],
        "2012",
        selector.clone(),
        None,
    )
    .await;
    assert!(!after.cached, "a new data version misses the cache");
    let after = after.table.unwrap();
    assert!(after.data_version > table.data_version);
    assert!(
        (number(&after.rows[0].values[0]) - 80.0).abs() < 1e-9,
        "no stale answer"
    );
    let then = compute(
        &mut metrics,
        &["yoy(revenue)"],
        "2012",
        selector.clone(),
        Some(before),
    )
    .await;
    assert!(
        (number(&then.table.unwrap().rows[0].values[0]) - 50.0).abs() < 1e-9,
        "as of before"
    );

    // The streaming form answers the same rows in chunks, the header once.
    let mut stream = metrics
        .stream_metrics(v1::StreamMetricsRequest {
            metrics: vec!["yoy(revenue)".into()],
            period: "2012".into(),
            cohort: selector,
            as_of: None,
            chunk_size: 1,
        })
        .await
        .expect("stream")
        .into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await.expect("message") {
        messages.push(message);
    }
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].metrics.len(), 1);
    assert!(messages[1].metrics.is_empty());
    let streamed: Vec<v1::MetricRow> = messages.into_iter().flat_map(|m| m.rows).collect();
    assert_eq!(streamed, after.rows);

    // A series over years, with the reason where the base year is missing.
    let series = metrics
        .get_metric_series(v1::GetMetricSeriesRequest {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "LY-A".into(),
            }),
            metric: "yoy(revenue)".into(),
            from_period: "2011".into(),
            to_period: "2012".into(),
            as_of: None,
        })
        .await
        .expect("series")
        .into_inner();
    assert_eq!(series.points.len(), 2);
    assert!(matches!(
        series.points[0].value.as_ref().unwrap().result,
        Some(Value::MissingReason(_))
    ));
    assert!((number(series.points[1].value.as_ref().unwrap()) - 80.0).abs() < 1e-9);
    deployment.stop().await;
}

#[tokio::test]
async fn a_target_on_an_unknown_metric_is_refused_at_once() {
    let database = TestDatabase::sqlite();
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    setup(&mut ingestion, vec![]).await;
    let status = ingestion
        .upsert_targets(v1::UpsertTargetsRequest {
            targets: vec![
                target("yoy( zones_total(fixed_asset_investment) )", 40.0, "%"),
                target("yoy(fixed_asset_investmnet)", 40.0, "%"),
            ],
            ..Default::default()
        })
        .await
        .expect_err("misspelt indicator");
    let violations = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "targets[1].metric");
    assert!(
        violations[0].description.contains("position 4"),
        "{}",
        violations[0].description
    );

    ingestion
        .upsert_targets(v1::UpsertTargetsRequest {
            targets: vec![target(
                "yoy( zones_total(fixed_asset_investment) )",
                40.0,
                "%",
            )],
            ..Default::default()
        })
        .await
        .expect("a good target");
    let stored = ingestion
        .list_targets(v1::ListTargetsRequest {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Region as i32,
                id: "410300".into(),
            }),
            period: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(
        stored[0].metric, "yoy(zones_total(fixed_asset_investment))",
        "normalized"
    );
    server.stop().await;
}

/// The code is NOT_FOUND and ResourceInfo names the missing thing: (type, name).
fn missing(status: &tonic::Status) -> (String, String) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let info = status.get_details_resource_info().expect("ResourceInfo");
    (info.resource_type, info.resource_name)
}

#[tokio::test]
async fn a_cohort_naming_an_unknown_region_kind_or_id_is_not_found_not_an_empty_table() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut metrics = deployment.metrics_client().await;
    setup(
        &mut ingestion,
        vec![zone("LY-A", "410323", &[]), zone("ZM-A", "411725", &[])],
    )
    .await;
    import(
        &mut ingestion,
        &[
            "ZONE,LY-A,revenue,2012,150,亿元",
            "ZONE,ZM-A,revenue,2012,90,亿元",
        ],
    )
    .await;
    let ask = |cohort: v1::CohortSelector| v1::ComputeMetricsRequest {
        metrics: vec!["revenue".into()],
        period: "2012".into(),
        cohort: Some(cohort),
        as_of: None,
    };
    let in_region = |code: &str| v1::CohortSelector {
        entity_kind: v1::EntityKind::Zone as i32,
        region_code: code.into(),
        ..Default::default()
    };
    // Asked twice: an error is never cached as an empty table.
    for _ in 0..2 {
        let status = metrics
            .compute_metrics(ask(in_region("419900")))
            .await
            .expect_err("unknown region");
        assert_eq!(
            missing(&status),
            ("zonerank.v1.Region".into(), "419900".into())
        );
        assert!(status.message().contains("419900"), "{}", status.message());
    }
    let status = metrics
        .compute_metrics(ask(v1::CohortSelector {
            zone_kind: 99,
            ..in_region("410000")
        }))
        .await
        .expect_err("unknown zone kind");
    assert_eq!(
        missing(&status),
        ("zonerank.v1.ZoneKind".into(), "99".into())
    );
    let status = metrics
        .stream_metrics(v1::StreamMetricsRequest {
            metrics: vec!["revenue".into()],
            period: "2012".into(),
            cohort: cohort(v1::EntityKind::Zone, &["LY-A", "LY-Z"]),
            ..Default::default()
        })
        .await
        .expect_err("unknown id");
    assert_eq!(missing(&status), ("zonerank.v1.Zone".into(), "LY-Z".into()));

    // A known id outside the region is simply not a member; a known region gives its zones.
    let table = metrics
        .compute_metrics(ask(v1::CohortSelector {
            ids: vec!["LY-A".into(), "ZM-A".into()],
            ..in_region("410300")
        }))
        .await
        .expect("known names")
        .into_inner()
        .table
        .unwrap();
    let ids: Vec<String> = table
        .rows
        .iter()
        .map(|r| r.entity.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(ids, ["LY-A"]);
    deployment.stop().await;
}
