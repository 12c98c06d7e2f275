//! IngestionService end to end: the three services as separate servers over PostgreSQL and
//! Redis, called through real gRPC clients.

use tonic::Code;
use tonic_types::StatusExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_integration_tests::{
    Deployment, RunningServer, fixtures_dir, seed_regions, server_args,
};
use zonerank_server::Services;
use zonerank_storage::test_support::TestDatabase;

type Client = IngestionServiceClient<tonic::transport::Channel>;

fn zone_ref(id: &str) -> Option<v1::EntityRef> {
    Some(v1::EntityRef {
        kind: v1::EntityKind::Zone as i32,
        id: id.to_string(),
    })
}

/// Henan, Zhumadian and Queshan county, Luoyang and Xin'an county, and two zones.
async fn reference_data(client: &mut Client) {
    client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions");
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![
                v1::Zone {
                    id: "411725-CJQ".into(),
                    name: "确山县产业集聚区".into(),
                    region_code: "411725".into(),
                    kind: v1::ZoneKind::AgglomerationZone as i32,
                    tags: vec![],
                    leading_industries: vec!["装备制造".into()],
                },
                v1::Zone {
                    id: "410323-XA".into(),
                    name: "新安县产业集聚区".into(),
                    region_code: "410323".into(),
                    kind: v1::ZoneKind::AgglomerationZone as i32,
                    tags: vec!["四支撑".into()],
                    leading_industries: vec![],
                },
            ],
            ..Default::default()
        })
        .await
        .expect("zones");
}

async fn import(client: &mut Client, csv: &str) -> Result<v1::IngestReport, tonic::Status> {
    client
        .import_csv(v1::ImportCsvRequest {
            content: csv.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn read(
    client: &mut Client,
    zone: &str,
    indicator: &str,
    as_of: Option<prost_types::Timestamp>,
) -> Vec<v1::Observation> {
    client
        .get_observations(v1::GetObservationsRequest {
            entity: zone_ref(zone),
            indicator: indicator.into(),
            as_of,
            ..Default::default()
        })
        .await
        .expect("get observations")
        .into_inner()
        .observations
}

const FIGURES: &str = "\u{feff}entity_kind,entity_id,indicator,period,value,unit,source
ZONE,411725-CJQ,output_value,2014-H1,53.2,亿元,驻马店日报
ZONE,411725-CJQ,fixed_asset_investment,2014-06-YTD,40.1,亿元,驻马店日报
ZONE,411725-CJQ,tax,2014-H1,11400,万元,驻马店日报
ZONE,411725-CJQ,land_area,2014,2,平方公里,
ZONE,410323-XA,sewage_treatment_rate,2012,100,%,
";

#[tokio::test]
async fn csv_import_round_trip_revisions_and_rejection_over_postgres_and_redis() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    reference_data(&mut client).await;

    // Units are converted to the canonical unit on the way in.
    let report = import(&mut client, FIGURES).await.expect("import");
    assert_eq!(
        (
            report.accepted,
            report.updated,
            report.unchanged,
            report.rejected
        ),
        (5, 0, 0, 0)
    );
    let output = read(&mut client, "411725-CJQ", "output_value", None).await;
    assert_eq!(output.len(), 1);
    assert_eq!(output[0].value, 532_000.0, "53.2亿元 is 532,000万元");
    assert_eq!(output[0].unit, "万元");
    assert_eq!(output[0].source, "驻马店日报");
    let land = read(&mut client, "411725-CJQ", "land_area", None).await;
    assert_eq!(land[0].value, 3000.0, "2 平方公里 is 3000 亩");
    assert_eq!(land[0].unit, "亩");

    // 2014-06-YTD and 2014-H1 are one key, served under the canonical spelling.
    let fai = read(&mut client, "411725-CJQ", "fixed_asset_investment", None).await;
    assert_eq!(fai.len(), 1);
    assert_eq!(fai[0].period, "2014-H1");
    let same_key = "entity_kind,entity_id,indicator,period,value,unit
ZONE,411725-CJQ,fixed_asset_investment,2014-H1,401000,万元
";
    let report = import(&mut client, same_key).await.expect("same key");
    assert_eq!((report.accepted, report.unchanged), (0, 1));

    // A re-import is reported unchanged and does not bump the data version.
    let version = report.data_version;
    let report = import(&mut client, FIGURES).await.expect("re-import");
    assert_eq!(
        (report.accepted, report.updated, report.unchanged),
        (0, 0, 5)
    );
    assert_eq!(report.data_version, version);

    // A changed value is served; the old one stays readable as of before the change.
    let before_change = prost_types::Timestamp::from(std::time::SystemTime::now());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let revised = FIGURES.replace("53.2,亿元", "53.9,亿元");
    let report = import(&mut client, &revised).await.expect("revision");
    assert_eq!(
        (report.accepted, report.updated, report.unchanged),
        (0, 1, 4)
    );
    assert!(report.data_version > version);
    let latest = read(&mut client, "411725-CJQ", "output_value", None).await;
    assert_eq!((latest[0].value, latest[0].revision), (539_000.0, 2));
    let then = read(
        &mut client,
        "411725-CJQ",
        "output_value",
        Some(before_change),
    )
    .await;
    assert_eq!((then[0].value, then[0].revision), (532_000.0, 1));

    // A file with one bad row is rejected whole, the row named, nothing written.
    let version = report.data_version;
    let bad = "entity_kind,entity_id,indicator,period,value,unit
ZONE,411725-CJQ,output_value,2014-H1,60,亿元
ZONE,411725-CJQ,tax,2014-H1,1.5,亩
ZONE,410323-XA,output_value,2012,900,亿元
";
    let status = import(&mut client, bad)
        .await
        .expect_err("a bad row rejects the file");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "rows[3].unit");
    assert!(
        violations[0].description.contains("亩"),
        "{}",
        violations[0].description
    );
    let latest = read(&mut client, "411725-CJQ", "output_value", None).await;
    assert_eq!(latest[0].value, 539_000.0, "nothing written");
    assert!(
        read(&mut client, "410323-XA", "output_value", None)
            .await
            .is_empty()
    );
    let after = client
        .get_observations(v1::GetObservationsRequest {
            entity: zone_ref("410323-XA"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.data_version, version, "no commit happened");

    deployment.stop().await;
}

fn observation(
    zone: &str,
    indicator: &str,
    period: &str,
    value: f64,
    unit: &str,
) -> v1::Observation {
    v1::Observation {
        entity: zone_ref(zone),
        indicator: indicator.into(),
        period: period.into(),
        value,
        unit: unit.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_kind_of_bad_observation_is_named_and_partial_acceptance_writes_only_good_rows() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    reference_data(&mut client).await;

    let batch = [
        observation("411725-CJQ", "tax", "2014-H1", 1.14, "亿元"), // 1 good
        observation("no-such-zone", "tax", "2014-H1", 1.0, "亿元"), // 2 unknown entity
        observation("411725-CJQ", "no_such_indicator", "2014", 1.0, ""), // 3 unknown indicator
        observation("411725-CJQ", "tax", "2014", 1.0, "亩"),       // 4 wrong unit dimension
        observation("411725-CJQ", "tax", "2014-13", 1.0, "万元"),  // 5 malformed period
        observation("411725-CJQ", "profit", "2014", f64::NAN, "万元"), // 6 non-finite
        observation("410323-XA", "sewage_treatment_rate", "2012", 104.0, "%"), // 7 rate > 100
        observation("411725-CJQ", "tax", "2014-06-YTD", 2.0, "亿元"), // 8 duplicate of row 1
    ];
    let send = |allow_partial: bool, dry_run: bool| {
        let batches = vec![
            v1::IngestObservationsRequest {
                observations: batch[..4].to_vec(),
                allow_partial,
                dry_run,
            },
            v1::IngestObservationsRequest {
                observations: batch[4..].to_vec(),
                allow_partial: false,
                dry_run: false,
            },
        ];
        tokio_stream::iter(batches)
    };

    // Without partial acceptance: INVALID_ARGUMENT naming every bad row, nothing written.
    let status = client
        .ingest_observations(send(false, false))
        .await
        .expect_err("bad rows reject the stream");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "rows[2].entity_id",
            "rows[3].indicator",
            "rows[4].unit",
            "rows[5].period",
            "rows[6].value",
            "rows[7].value",
            "rows[8].period",
        ]
    );
    assert!(
        read(&mut client, "411725-CJQ", "tax", None)
            .await
            .is_empty()
    );

    // With partial acceptance: the good row is written and the bad ones listed.
    let report = client
        .ingest_observations(send(true, false))
        .await
        .expect("partial")
        .into_inner();
    assert_eq!((report.accepted, report.rejected), (1, 7));
    let reasons: Vec<(i64, String, String)> = report
        .errors
        .iter()
        .map(|e| (e.row, e.field.clone(), e.reason.clone()))
        .collect();
    assert!(reasons[0].2.contains("unknown zone"), "{reasons:?}");
    assert!(reasons[1].2.contains("unknown indicator"), "{reasons:?}");
    assert!(reasons[5].2.contains("0–100"), "{reasons:?}");
    assert!(reasons[6].2.contains("duplicate of row 1"), "{reasons:?}");
    let tax = read(&mut client, "411725-CJQ", "tax", None).await;
    assert_eq!(tax.len(), 1);
    assert_eq!(tax[0].value, 11_400.0);

    deployment.stop().await;
}

/// The observation rows of seed-facts.csv for one entity, as an import CSV.
fn seed_observations(entity: &str) -> (String, Vec<(String, String, f64, String)>) {
    let mut reader =
        csv::Reader::from_path(fixtures_dir().join("seed-facts.csv")).expect("fixture");
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let mut out = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    let mut rows = Vec::new();
    for record in reader.records() {
        let r = record.expect("record");
        if &r[col("kind")] != "observation" || &r[col("entity_id")] != entity {
            continue;
        }
        let (indicator, period, unit) = (
            &r[col("indicator_or_metric")],
            &r[col("period")],
            &r[col("unit")],
        );
        let value: f64 = r[col("value")].parse().expect("value");
        out.push_str(&format!(
            "{},{entity},{indicator},{period},{value},{unit}\n",
            &r[col("entity_kind")]
        ));
        rows.push((
            indicator.to_string(),
            period.to_string(),
            value,
            unit.to_string(),
        ));
    }
    (out, rows)
}

#[tokio::test]
async fn queshan_seed_facts_round_trip_through_the_all_in_one_server_on_sqlite() {
    // The embedded default: all three services in one process over a SQLite file, in-process cache.
    let database = TestDatabase::sqlite();
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut client = IngestionServiceClient::new(server.channel().await);
    reference_data(&mut client).await;

    let (csv, rows) = seed_observations("411725-CJQ");
    assert!(rows.len() >= 8, "the fixture has Queshan's figures");
    let report = import(&mut client, &csv).await.expect("Queshan import");
    assert_eq!(report.accepted as usize, rows.len(), "{:?}", report.errors);

    for (indicator, period, value, unit) in rows {
        let got = read(&mut client, "411725-CJQ", &indicator, None).await;
        assert_eq!(got.len(), 1, "{indicator}");
        assert_eq!(got[0].period, period);
        let expected = match unit.as_str() {
            "亿元" => value * 10_000.0,
            _ => value,
        };
        assert!(
            (got[0].value - expected).abs() < 1e-9,
            "{indicator}: {} vs {expected}",
            got[0].value
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn listings_page_and_filter_and_bad_references_are_named() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    reference_data(&mut client).await;

    let zones = client
        .list_zones(v1::ListZonesRequest {
            region_code: "410300".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        zones
            .zones
            .iter()
            .map(|z| z.id.as_str())
            .collect::<Vec<_>>(),
        ["410323-XA"]
    );
    let tagged = client
        .list_zones(v1::ListZonesRequest {
            tags: vec!["四支撑".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tagged.zones.len(), 1);

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_indicators(v1::ListIndicatorsRequest {
                page_size: 10,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.indicators.len() <= 10);
        seen.extend(page.indicators.into_iter().map(|i| i.code));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "every indicator once, in order");
    assert!(seen.contains(&"fixed_asset_investment".to_string()));
    let negative = client
        .list_indicators(v1::ListIndicatorsRequest {
            page_size: -1,
            page_token: String::new(),
        })
        .await
        .expect_err("negative page size");
    assert_eq!(negative.code(), Code::InvalidArgument);

    // A zone in an unknown region is refused with the field named.
    let status = client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![v1::Zone {
                id: "X1".into(),
                name: "x".into(),
                region_code: "419999".into(),
                kind: v1::ZoneKind::IndustrialPark as i32,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect_err("unknown region");
    let fields = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(fields[0].field, "zones[0].region_code");

    // Faults name the request's own index, even after an item that made no record.
    let custom = |code: &str| v1::Indicator {
        code: code.into(),
        name_zh: "园区专利数".into(),
        name_en: "Patents".into(),
        unit: "个".into(),
        kind: v1::IndicatorKind::Flow as i32,
        direction: v1::Direction::HigherIsBetter as i32,
        builtin: false,
    };
    let status = client
        .upsert_indicators(v1::UpsertIndicatorsRequest {
            indicators: vec![custom("tax"), custom("patents"), custom("patents")],
            ..Default::default()
        })
        .await
        .expect_err("a built-in and a duplicate");
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["indicators[0].code", "indicators[2].code"]);

    // A region tree with a cycle is refused: Henan under its own city.
    let status = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![v1::Region {
                code: "410000".into(),
                name: "河南省".into(),
                level: v1::RegionLevel::Province as i32,
                parent_code: "410300".into(),
                name_en: String::new(),
            }],
            ..Default::default()
        })
        .await
        .expect_err("a cycle");
    let fields = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(fields[0].field, "regions[0].parent_code");
    assert!(
        fields[0].description.contains("cycle"),
        "{}",
        fields[0].description
    );

    deployment.stop().await;
}

#[tokio::test]
async fn every_service_answers_health_and_reflection() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use zonerank_integration_tests::{
        expected_listing, reflection_v1_services, reflection_v1alpha_services,
    };

    let deployment = Deployment::postgres_and_redis().await;
    for (server, service) in [
        (&deployment.ingestion, "zonerank.v1.IngestionService"),
        (&deployment.metrics, "zonerank.v1.MetricsService"),
        (&deployment.ranking, "zonerank.v1.RankingService"),
    ] {
        let health = HealthClient::new(server.channel().await)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(health.status, 1, "{service} SERVING");

        // Each server lists what it serves, to clients of either reflection version.
        let expected = expected_listing(&[service]);
        assert_eq!(
            reflection_v1alpha_services(server.channel().await).await,
            expected,
            "v1alpha"
        );
        assert_eq!(
            reflection_v1_services(server.channel().await).await,
            expected,
            "v1"
        );
    }
    // The whole server ("") is the liveness probe: SERVING while the process lives.
    let whole = HealthClient::new(deployment.ranking.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(whole.status, 1);
    let unknown = HealthClient::new(deployment.ranking.channel().await)
        .check(HealthCheckRequest {
            service: "zonerank.v1.NoSuchService".into(),
        })
        .await
        .expect_err("an unknown service name");
    assert_eq!(unknown.code(), Code::NotFound);
    deployment.stop().await;
}

#[tokio::test]
async fn the_all_in_one_server_lists_its_three_services_over_both_reflection_versions() {
    use zonerank_integration_tests::{
        RunningServer, expected_listing, reflection_v1_services, reflection_v1alpha_services,
        server_args,
    };

    let database = TestDatabase::sqlite();
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let expected = expected_listing(&Services::ALL_IN_ONE.names());
    assert_eq!(expected.len(), 6, "{expected:?}");
    assert_eq!(
        reflection_v1alpha_services(server.channel().await).await,
        expected
    );
    assert_eq!(
        reflection_v1_services(server.channel().await).await,
        expected
    );
    server.stop().await;
}

#[tokio::test]
async fn a_service_refuses_to_start_on_a_schema_it_does_not_know() {
    let database = TestDatabase::postgres().await.expect("database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = zonerank_server::run(
        &server_args(&database.url, None),
        Services::INGESTION,
        listener,
        std::future::pending(),
    )
    .await;
    let error = result.expect_err("an unmigrated database is refused");
    assert!(error.to_string().contains("zonerank migrate"), "{error}");
    database.drop().await.unwrap();
}
