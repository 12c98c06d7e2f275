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
                strict: false,
            },
            v1::IngestObservationsRequest {
                observations: batch[4..].to_vec(),
                allow_partial: false,
                dry_run: false,
                strict: false,
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
    for (server, services) in [
        (
            &deployment.ingestion,
            &["zonerank.v1.IngestionService", "zonerank.v1.AuditService"][..],
        ),
        (&deployment.metrics, &["zonerank.v1.MetricsService"][..]),
        (
            &deployment.ranking,
            &[
                "zonerank.v1.RankingService",
                "zonerank.v1.AssessmentService",
            ][..],
        ),
    ] {
        let service = services[0];
        let health = HealthClient::new(server.channel().await)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(health.status, 1, "{service} SERVING");

        // Each server lists what it serves, to clients of either reflection version.
        let expected = expected_listing(services);
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
    assert_eq!(expected.len(), 8, "{expected:?}");
    assert_eq!(
        reflection_v1alpha_services(server.channel().await).await,
        expected
    );
    assert_eq!(
        reflection_v1_services(server.channel().await).await,
        expected
    );

    // The error details are described too, so grpcurl prints a BadRequest instead of "not
    // recognized" (it asks reflection v1alpha for the file of the detail's type).
    use prost::Message;
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    for symbol in [
        "google.rpc.BadRequest",
        "google.rpc.ErrorInfo",
        "google.rpc.ResourceInfo",
    ] {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
        };
        let answer = ServerReflectionClient::new(server.channel().await)
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("reflection")
            .into_inner()
            .message()
            .await
            .expect("answer")
            .expect("one answer");
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("{symbol}: {:?}", answer.message_response);
        };
        let short = symbol.trim_start_matches("google.rpc.");
        let described = files.file_descriptor_proto.iter().any(|bytes| {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .expect("a file descriptor");
            file.package() == "google.rpc" && file.message_type.iter().any(|m| m.name() == short)
        });
        assert!(described, "{symbol} is not described");
    }
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

// ---------------------------------------------------------------------------------------------
// dry runs, partial updates, listings, removals, exact units

fn counts(created: i64, updated: i64, unchanged: i64) -> Option<v1::UpsertCounts> {
    Some(v1::UpsertCounts {
        created,
        updated,
        unchanged,
    })
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

/// A valid unified social credit code registered in Luoyang, numbered `n`.
fn credit_code(n: u32) -> String {
    let first17 = format!("91410300MA{n:07}");
    let check = zonerank_domain::entity::credit_code_check_char(&first17).expect("17 characters");
    format!("{first17}{check}")
}

fn enterprise(n: u32, zone: &str, industry: &str) -> v1::Enterprise {
    v1::Enterprise {
        credit_code: credit_code(n),
        name: format!("企业{n}"),
        zone_id: zone.into(),
        industry_code: industry.into(),
        above_scale: true,
    }
}

async fn data_version(client: &mut Client) -> i64 {
    client
        .get_observations(v1::GetObservationsRequest {
            entity: zone_ref("410323-XA"),
            ..Default::default()
        })
        .await
        .expect("observations")
        .into_inner()
        .data_version
}

async fn regions(client: &mut Client) -> Vec<v1::Region> {
    client
        .list_regions(v1::ListRegionsRequest::default())
        .await
        .expect("regions")
        .into_inner()
        .regions
}

async fn zones(client: &mut Client) -> Vec<v1::Zone> {
    client
        .list_zones(v1::ListZonesRequest::default())
        .await
        .expect("zones")
        .into_inner()
        .zones
}

/// Every enterprise a listing returns, page after page of `page_size`.
async fn all_enterprises(
    client: &mut Client,
    request: v1::ListEnterprisesRequest,
    page_size: i32,
) -> Vec<v1::Enterprise> {
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_enterprises(v1::ListEnterprisesRequest {
                page_size,
                page_token: token,
                ..request.clone()
            })
            .await
            .expect("list enterprises")
            .into_inner();
        assert!(page.enterprises.len() <= page_size as usize);
        seen.extend(page.enterprises);
        if page.next_page_token.is_empty() {
            return seen;
        }
        token = page.next_page_token;
    }
}

async fn targets(client: &mut Client, zone: &str) -> Vec<v1::Target> {
    client
        .list_targets(v1::ListTargetsRequest {
            entity: zone_ref(zone),
            ..Default::default()
        })
        .await
        .expect("targets")
        .into_inner()
        .targets
}

fn target(zone: &str, metric: &str, period: &str, value: f64) -> v1::Target {
    v1::Target {
        entity: zone_ref(zone),
        metric: metric.into(),
        period: period.into(),
        comparator: v1::Comparator::AtLeast as i32,
        value,
        ..Default::default()
    }
}

#[tokio::test]
async fn dry_runs_of_every_upsert_and_import_write_nothing_and_count_what_a_real_run_does() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    let v0 = data_version(&mut client).await;

    // Regions: a dry run says what would happen, twice alike, and leaves nothing behind.
    for _ in 0..2 {
        let dry = client
            .upsert_regions(v1::UpsertRegionsRequest {
                regions: seed_regions(),
                dry_run: true,
                ..Default::default()
            })
            .await
            .expect("dry regions")
            .into_inner();
        assert!(dry.dry_run);
        assert_eq!((dry.counts, dry.upserted), (counts(5, 0, 0), 5));
    }
    assert!(regions(&mut client).await.is_empty());
    assert_eq!(data_version(&mut client).await, v0);
    // The real run reports exactly what the dry run did.
    let real = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions")
        .into_inner();
    assert!(!real.dry_run);
    assert_eq!(real.counts, counts(5, 0, 0));
    assert_eq!(regions(&mut client).await.len(), 5);

    // A dry run runs every check a real run does, against what is stored.
    let status = client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![v1::Zone {
                id: "X1".into(),
                name: "x".into(),
                region_code: "419999".into(),
                kind: v1::ZoneKind::IndustrialPark as i32,
                ..Default::default()
            }],
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect_err("unknown region in a dry run");
    assert_eq!(
        status.get_details_bad_request().unwrap().field_violations[0].field,
        "zones[0].region_code"
    );

    reference_data(&mut client).await;
    let v1 = data_version(&mut client).await;
    assert!(v1 > v0);
    let mut renamed = zones(&mut client).await;
    renamed[0].name = "改名".into();
    let dry = client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: renamed.clone(),
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("dry zones")
        .into_inner();
    assert_eq!((dry.dry_run, dry.counts), (true, counts(0, 1, 1)));
    assert_ne!(zones(&mut client).await[0].name, "改名");

    // Enterprises.
    let firms = vec![
        enterprise(1, "411725-CJQ", "C3511"),
        enterprise(2, "", "C2614"),
    ];
    let dry = client
        .upsert_enterprises(v1::UpsertEnterprisesRequest {
            enterprises: firms.clone(),
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("dry enterprises")
        .into_inner();
    assert_eq!((dry.dry_run, dry.counts), (true, counts(2, 0, 0)));
    assert!(
        all_enterprises(&mut client, Default::default(), 10)
            .await
            .is_empty()
    );

    // Clusters and projects have no listing: a second dry run still counts them new, the
    // real run then agrees, and a dry run after it finds them unchanged.
    let cluster = v1::Cluster {
        id: "qs-equipment".into(),
        name: "确山装备制造集群".into(),
        region_code: "411725".into(),
        zone_id: "411725-CJQ".into(),
        industry: "装备制造".into(),
    };
    let project = v1::Project {
        id: "qs-p1".into(),
        name: "智能装备产业园".into(),
        zone_id: "411725-CJQ".into(),
        status: v1::ProjectStatus::Signed as i32,
        planned_investment: 8.2,
        unit: "亿元".into(),
        ..Default::default()
    };
    for dry_run in [true, true, false] {
        let c = client
            .upsert_clusters(v1::UpsertClustersRequest {
                clusters: vec![cluster.clone()],
                dry_run,
            })
            .await
            .expect("clusters")
            .into_inner();
        assert_eq!((c.dry_run, c.counts), (dry_run, counts(1, 0, 0)));
        let p = client
            .upsert_projects(v1::UpsertProjectsRequest {
                projects: vec![project.clone()],
                dry_run,
            })
            .await
            .expect("projects")
            .into_inner();
        assert_eq!((p.dry_run, p.counts), (dry_run, counts(1, 0, 0)));
    }
    let again = client
        .upsert_projects(v1::UpsertProjectsRequest {
            projects: vec![project.clone()],
            dry_run: true,
        })
        .await
        .expect("projects")
        .into_inner();
    assert_eq!(again.counts, counts(0, 0, 1));

    // Indicators.
    let patents = v1::Indicator {
        code: "patents".into(),
        name_zh: "园区专利数".into(),
        name_en: "Patents".into(),
        unit: "个".into(),
        kind: v1::IndicatorKind::Flow as i32,
        direction: v1::Direction::HigherIsBetter as i32,
        builtin: false,
    };
    let dry = client
        .upsert_indicators(v1::UpsertIndicatorsRequest {
            indicators: vec![patents],
            dry_run: true,
        })
        .await
        .expect("dry indicators")
        .into_inner();
    assert_eq!((dry.dry_run, dry.counts), (true, counts(1, 0, 0)));
    let catalog = client
        .list_indicators(v1::ListIndicatorsRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .indicators;
    assert!(catalog.iter().all(|i| i.code != "patents"));

    // Targets.
    let dry = client
        .upsert_targets(v1::UpsertTargetsRequest {
            targets: vec![target("411725-CJQ", "tax", "2015", 12_000.0)],
            dry_run: true,
        })
        .await
        .expect("dry targets")
        .into_inner();
    assert_eq!((dry.dry_run, dry.counts), (true, counts(1, 0, 0)));
    assert!(targets(&mut client, "411725-CJQ").await.is_empty());

    // Observations, as a CSV file and as a stream: the report says dry run, counts what would
    // be accepted and names the data version that stays.
    let version = data_version(&mut client).await;
    let report = client
        .import_csv(v1::ImportCsvRequest {
            content: FIGURES.as_bytes().to_vec(),
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("dry import")
        .into_inner();
    assert!(report.dry_run);
    assert_eq!((report.accepted, report.rejected), (5, 0));
    assert_eq!(report.data_version, version);
    let stream = tokio_stream::iter(vec![v1::IngestObservationsRequest {
        observations: vec![observation("411725-CJQ", "tax", "2014", 1.0, "亿元")],
        allow_partial: false,
        dry_run: true,
        strict: false,
    }]);
    let report = client
        .ingest_observations(stream)
        .await
        .expect("dry stream")
        .into_inner();
    assert_eq!((report.dry_run, report.accepted), (true, 1));
    // A dry run asked for after the first batch is refused rather than written.
    let late = tokio_stream::iter(vec![
        v1::IngestObservationsRequest {
            observations: vec![observation("411725-CJQ", "tax", "2014", 1.0, "亿元")],
            allow_partial: false,
            dry_run: false,
            strict: false,
        },
        v1::IngestObservationsRequest {
            observations: vec![],
            allow_partial: false,
            dry_run: true,
            strict: false,
        },
    ]);
    let status = client
        .ingest_observations(late)
        .await
        .expect_err("a late dry run");
    assert!(
        status.message().starts_with("dry_run"),
        "{}",
        status.message()
    );
    for indicator in ["tax", "output_value", "land_area"] {
        assert!(
            read(&mut client, "411725-CJQ", indicator, None)
                .await
                .is_empty()
        );
    }
    assert_eq!(
        data_version(&mut client).await,
        version,
        "no dry run committed"
    );

    // A real run that changes nothing keeps the data version: caches stay valid.
    let same = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("same regions")
        .into_inner();
    assert_eq!(same.counts, counts(0, 0, 5));
    assert_eq!(data_version(&mut client).await, version);
    deployment.stop().await;
}

#[tokio::test]
async fn partial_updates_keep_the_fields_they_do_not_change() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    let mut named = seed_regions();
    named[0].name_en = "Henan".into();
    named[1].name_en = "Zhumadian".into();
    client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: named,
            ..Default::default()
        })
        .await
        .expect("regions");
    let region = async |client: &mut Client, code: &str| {
        regions(client)
            .await
            .into_iter()
            .find(|r| r.code == code)
            .expect(code)
    };

    // Without a mask, fields left empty keep their stored value: the README's example sends
    // no English names (and here no level either) and leaves them as they are.
    let sparse = |code: &str, name: &str| v1::Region {
        code: code.into(),
        name: name.into(),
        ..Default::default()
    };
    let answer = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![sparse("410000", "河南省"), sparse("411700", "驻马店")],
            ..Default::default()
        })
        .await
        .expect("sparse regions")
        .into_inner();
    assert_eq!(answer.counts, counts(0, 1, 1));
    let henan = region(&mut client, "410000").await;
    assert_eq!(
        (henan.name_en.as_str(), henan.level),
        ("Henan", v1::RegionLevel::Province as i32)
    );
    let zhumadian = region(&mut client, "411700").await;
    assert_eq!(
        (
            zhumadian.name.as_str(),
            zhumadian.name_en.as_str(),
            zhumadian.parent_code.as_str()
        ),
        ("驻马店", "Zhumadian", "410000")
    );

    // With a mask only the named fields change, to what was sent, empty included.
    let answer = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![sparse("411700", "不会写入")],
            update_mask: mask(&["name_en"]),
            ..Default::default()
        })
        .await
        .expect("masked region")
        .into_inner();
    assert_eq!(answer.counts, counts(0, 1, 0));
    let zhumadian = region(&mut client, "411700").await;
    assert_eq!(
        (zhumadian.name.as_str(), zhumadian.name_en.as_str()),
        ("驻马店", "")
    );

    // An unknown path is named; nothing is written.
    let status = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![sparse("411700", "x")],
            update_mask: mask(&["name", "english_name"]),
            ..Default::default()
        })
        .await
        .expect_err("unknown path");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations[0].field, "update_mask.paths[1]");
    assert_eq!(region(&mut client, "411700").await.name, "驻马店");

    // "*" replaces whole records, and the checks run on what would be stored: no level.
    let status = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![sparse("411700", "驻马店市")],
            update_mask: mask(&["*"]),
            ..Default::default()
        })
        .await
        .expect_err("a whole record without a level");
    assert_eq!(
        status.get_details_bad_request().unwrap().field_violations[0].field,
        "regions[0].level"
    );
    // A new record takes empty fields as empty, and so must carry what it requires.
    let status = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![sparse("411702", "驿城区")],
            ..Default::default()
        })
        .await
        .expect_err("a new region without a level");
    assert_eq!(
        status.get_details_bad_request().unwrap().field_violations[0].field,
        "regions[0].level"
    );
    // The merged parent is checked for cycles: a mask moving Henan under its own city.
    let status = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![v1::Region {
                parent_code: "411700".into(),
                ..sparse("410000", "")
            }],
            update_mask: mask(&["parent_code"]),
            ..Default::default()
        })
        .await
        .expect_err("a cycle");
    assert!(
        status.get_details_bad_request().unwrap().field_violations[0]
            .description
            .contains("cycle")
    );

    // Zones: tags stay without a mask and are cleared with one.
    reference_data(&mut client).await;
    let sparse_zone = v1::Zone {
        id: "410323-XA".into(),
        name: "新安县产业集聚区（更名）".into(),
        ..Default::default()
    };
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![sparse_zone.clone()],
            ..Default::default()
        })
        .await
        .expect("sparse zone");
    let xa = zones(&mut client)
        .await
        .into_iter()
        .find(|z| z.id == "410323-XA")
        .unwrap();
    assert_eq!(xa.name, "新安县产业集聚区（更名）");
    assert_eq!(
        (xa.tags, xa.region_code),
        (vec!["四支撑".to_string()], "410323".to_string())
    );
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![sparse_zone],
            update_mask: mask(&["tags"]),
            ..Default::default()
        })
        .await
        .expect("tags cleared");
    let xa = zones(&mut client)
        .await
        .into_iter()
        .find(|z| z.id == "410323-XA")
        .unwrap();
    assert!(xa.tags.is_empty());
    assert_eq!(xa.kind, v1::ZoneKind::AgglomerationZone as i32);

    // Enterprises: false is "not sent" without a mask, so above_scale=false needs the mask.
    client
        .upsert_enterprises(v1::UpsertEnterprisesRequest {
            enterprises: vec![enterprise(7, "411725-CJQ", "C3511")],
            ..Default::default()
        })
        .await
        .expect("enterprise");
    let below = v1::Enterprise {
        credit_code: credit_code(7),
        above_scale: false,
        ..Default::default()
    };
    let answer = client
        .upsert_enterprises(v1::UpsertEnterprisesRequest {
            enterprises: vec![below.clone()],
            ..Default::default()
        })
        .await
        .expect("no change")
        .into_inner();
    assert_eq!(answer.counts, counts(0, 0, 1));
    client
        .upsert_enterprises(v1::UpsertEnterprisesRequest {
            enterprises: vec![below],
            update_mask: mask(&["above_scale", "zone_id"]),
            ..Default::default()
        })
        .await
        .expect("below scale, no zone");
    let stored = all_enterprises(&mut client, Default::default(), 10).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].name.as_str(), stored[0].industry_code.as_str()),
        ("企业7", "C3511")
    );
    assert!(!stored[0].above_scale);
    assert_eq!(stored[0].zone_id, "");
    deployment.stop().await;
}

#[tokio::test]
async fn enterprises_list_by_zone_region_subtree_and_industry_in_pages() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    reference_data(&mut client).await;
    let zones = ["411725-CJQ", "410323-XA", ""];
    let industries = ["C3511", "C2614", "D4411", "C2619"];
    let firms: Vec<v1::Enterprise> = (0..23)
        .map(|n| enterprise(n, zones[n as usize % 3], industries[n as usize % 4]))
        .collect();
    client
        .upsert_enterprises(v1::UpsertEnterprisesRequest {
            enterprises: firms.clone(),
            ..Default::default()
        })
        .await
        .expect("enterprises");
    let expect = |keep: &dyn Fn(&v1::Enterprise) -> bool| {
        let mut codes: Vec<String> = firms
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.credit_code.clone())
            .collect();
        codes.sort();
        codes
    };
    let codes =
        |list: Vec<v1::Enterprise>| list.into_iter().map(|e| e.credit_code).collect::<Vec<_>>();

    let every = all_enterprises(&mut client, Default::default(), 4).await;
    assert_eq!(
        codes(every),
        expect(&|_| true),
        "every enterprise once, in order"
    );
    let by_zone = v1::ListEnterprisesRequest {
        zone_id: "411725-CJQ".into(),
        ..Default::default()
    };
    assert_eq!(
        codes(all_enterprises(&mut client, by_zone, 3).await),
        expect(&|e| e.zone_id == "411725-CJQ")
    );
    // A region's subtree: Luoyang holds Xin'an county and its zone; Henan holds both zones.
    let luoyang = v1::ListEnterprisesRequest {
        region_code: "410300".into(),
        ..Default::default()
    };
    assert_eq!(
        codes(all_enterprises(&mut client, luoyang, 2).await),
        expect(&|e| e.zone_id == "410323-XA")
    );
    let henan_manufacturing = v1::ListEnterprisesRequest {
        region_code: "410000".into(),
        industry_code: "C".into(),
        ..Default::default()
    };
    assert_eq!(
        codes(all_enterprises(&mut client, henan_manufacturing, 5).await),
        expect(&|e| !e.zone_id.is_empty() && e.industry_code.starts_with('C'))
    );
    let chemicals = v1::ListEnterprisesRequest {
        industry_code: "C26".into(),
        ..Default::default()
    };
    assert_eq!(
        codes(all_enterprises(&mut client, chemicals, 100).await),
        expect(&|e| e.industry_code.starts_with("C26"))
    );

    for (request, field) in [
        (
            v1::ListEnterprisesRequest {
                industry_code: "C%".into(),
                ..Default::default()
            },
            "industry_code",
        ),
        (
            v1::ListEnterprisesRequest {
                region_code: "41".into(),
                ..Default::default()
            },
            "region_code",
        ),
        (
            v1::ListEnterprisesRequest {
                page_token: "zz".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        let status = client
            .list_enterprises(request)
            .await
            .expect_err("a bad listing");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    deployment.stop().await;
}

#[tokio::test]
async fn a_referenced_zone_is_removed_only_with_force_and_then_with_its_figures_at_once() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    let mut metrics = deployment.metrics_client().await;
    reference_data(&mut client).await;
    import(&mut client, FIGURES).await.expect("figures");
    client
        .upsert_enterprises(v1::UpsertEnterprisesRequest {
            enterprises: vec![
                enterprise(1, "411725-CJQ", "C3511"),
                enterprise(2, "411725-CJQ", "C2614"),
            ],
            ..Default::default()
        })
        .await
        .expect("enterprises");
    client
        .upsert_projects(v1::UpsertProjectsRequest {
            projects: vec![v1::Project {
                id: "qs-p1".into(),
                name: "智能装备产业园".into(),
                zone_id: "411725-CJQ".into(),
                status: v1::ProjectStatus::Signed as i32,
                planned_investment: 5.0,
                unit: "亿元".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("project");
    import(
        &mut client,
        "entity_kind,entity_id,indicator,period,value,unit\nPROJECT,qs-p1,fixed_asset_investment,2014,2,亿元\n",
    )
    .await
    .expect("project figure");
    client
        .upsert_targets(v1::UpsertTargetsRequest {
            targets: vec![target("411725-CJQ", "tax", "2015", 12_000.0)],
            ..Default::default()
        })
        .await
        .expect("target");
    let output =
        async |metrics: &mut zonerank_api::v1::metrics_service_client::MetricsServiceClient<
            tonic::transport::Channel,
        >| {
            let table = metrics
                .compute_metrics(v1::ComputeMetricsRequest {
                    metrics: vec!["output_value".into()],
                    period: "2014-H1".into(),
                    cohort: Some(v1::CohortSelector {
                        entity_kind: v1::EntityKind::Zone as i32,
                        region_code: "410000".into(),
                        ..Default::default()
                    }),
                    as_of: None,
                })
                .await
                .expect("metrics")
                .into_inner()
                .table
                .expect("table");
            table
                .rows
                .into_iter()
                .map(|r| r.entity.unwrap().id)
                .collect::<Vec<_>>()
        };
    assert_eq!(
        output(&mut metrics).await.len(),
        2,
        "both zones, now cached"
    );

    // Refused while figures and dependents refer to it, saying what and how.
    let status = client
        .delete_zone(v1::DeleteZoneRequest {
            zone_id: "411725-CJQ".into(),
            force: false,
        })
        .await
        .expect_err("referenced");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let violation = &status
        .get_details_precondition_failure()
        .expect("PreconditionFailure")
        .violations[0];
    assert_eq!(violation.r#type, "REFERENCED");
    assert_eq!(violation.subject, "zone 411725-CJQ");
    assert!(
        violation.description.contains(
            "4 observations, 1 target, 2 enterprises and 1 project refer to it; pass force"
        ),
        "{}",
        violation.description
    );
    assert_eq!(read(&mut client, "411725-CJQ", "tax", None).await.len(), 1);

    // Absent: NOT_FOUND naming the zone.
    let status = client
        .delete_zone(v1::DeleteZoneRequest {
            zone_id: "411725-NONE".into(),
            force: true,
        })
        .await
        .expect_err("absent");
    assert_eq!(status.code(), Code::NotFound);
    let info = status.get_details_resource_info().expect("ResourceInfo");
    assert_eq!(
        (info.resource_type.as_str(), info.resource_name.as_str()),
        ("zonerank.v1.Zone", "411725-NONE")
    );

    // Forced: the zone's figures, revisions, target and project go in one commit; its
    // enterprises stay, without a zone; caches miss.
    let version = data_version(&mut client).await;
    let removed = client
        .delete_zone(v1::DeleteZoneRequest {
            zone_id: "411725-CJQ".into(),
            force: true,
        })
        .await
        .expect("forced")
        .into_inner();
    assert_eq!(
        removed.observations_removed, 5,
        "4 of the zone, 1 of its project"
    );
    assert!(data_version(&mut client).await > version);
    assert!(
        zones(&mut client)
            .await
            .iter()
            .all(|z| z.id != "411725-CJQ")
    );
    let revisions = client
        .get_observations(v1::GetObservationsRequest {
            entity: zone_ref("411725-CJQ"),
            include_revisions: true,
            ..Default::default()
        })
        .await
        .expect("revisions")
        .into_inner();
    assert!(revisions.observations.is_empty());
    assert!(targets(&mut client, "411725-CJQ").await.is_empty());
    let firms = all_enterprises(&mut client, Default::default(), 10).await;
    assert_eq!(firms.len(), 2);
    assert!(firms.iter().all(|e| e.zone_id.is_empty()));
    let project_row = import(
        &mut client,
        "entity_kind,entity_id,indicator,period,value,unit\nPROJECT,qs-p1,fixed_asset_investment,2015,2,亿元\n",
    )
    .await
    .expect_err("the project went with its zone");
    assert!(
        project_row.message().contains("unknown project"),
        "{}",
        project_row.message()
    );
    assert_eq!(
        output(&mut metrics).await,
        ["410323-XA"],
        "the cache missed"
    );

    // A zone nothing refers to goes without force; a second delete finds nothing.
    let removed = client
        .delete_zone(v1::DeleteZoneRequest {
            zone_id: "410323-XA".into(),
            force: false,
        })
        .await;
    assert_eq!(
        removed.expect_err("one observation refers to it").code(),
        Code::FailedPrecondition
    );
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![v1::Zone {
                id: "410323-NEW".into(),
                name: "新园区".into(),
                region_code: "410323".into(),
                kind: v1::ZoneKind::IndustrialPark as i32,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("empty zone");
    for expected in [Ok(0), Err(Code::NotFound)] {
        let answer = client
            .delete_zone(v1::DeleteZoneRequest {
                zone_id: "410323-NEW".into(),
                force: false,
            })
            .await
            .map(|r| r.into_inner().observations_removed)
            .map_err(|s| s.code());
        assert_eq!(answer, expected);
    }
    deployment.stop().await;
}

#[tokio::test]
async fn enterprises_and_targets_are_removed_by_key() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    reference_data(&mut client).await;
    client
        .upsert_enterprises(v1::UpsertEnterprisesRequest {
            enterprises: vec![
                enterprise(1, "411725-CJQ", "C3511"),
                enterprise(2, "", "C2614"),
            ],
            ..Default::default()
        })
        .await
        .expect("enterprises");
    import(
        &mut client,
        &format!(
            "entity_kind,entity_id,indicator,period,value,unit\nENTERPRISE,{},revenue,2014,3,亿元\n",
            credit_code(1)
        ),
    )
    .await
    .expect("figure");
    let delete = |code: String, force: bool| v1::DeleteEnterpriseRequest {
        credit_code: code,
        force,
    };
    let status = client
        .delete_enterprise(delete(credit_code(1), false))
        .await
        .expect_err("referenced");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("1 observation refers to it"),
        "{}",
        status.message()
    );
    let removed = client
        .delete_enterprise(delete(credit_code(1), true))
        .await
        .expect("forced")
        .into_inner();
    assert_eq!(removed.observations_removed, 1);
    let removed = client
        .delete_enterprise(delete(credit_code(2), false))
        .await
        .expect("unreferenced")
        .into_inner();
    assert_eq!(removed.observations_removed, 0);
    assert!(
        all_enterprises(&mut client, Default::default(), 10)
            .await
            .is_empty()
    );
    let status = client
        .delete_enterprise(delete(credit_code(2), false))
        .await
        .expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.get_details_resource_info().unwrap().resource_type,
        "zonerank.v1.Enterprise"
    );

    client
        .upsert_targets(v1::UpsertTargetsRequest {
            targets: vec![
                target("411725-CJQ", "tax", "2015", 12_000.0),
                target("411725-CJQ", "tax", "2016", 13_000.0),
            ],
            ..Default::default()
        })
        .await
        .expect("targets");
    let version = data_version(&mut client).await;
    let delete_target = |period: &str| v1::DeleteTargetRequest {
        entity: zone_ref("411725-CJQ"),
        metric: "tax".into(),
        period: period.into(),
    };
    client
        .delete_target(delete_target("2015"))
        .await
        .expect("delete target");
    assert!(data_version(&mut client).await > version);
    let left: Vec<String> = targets(&mut client, "411725-CJQ")
        .await
        .into_iter()
        .map(|t| t.period)
        .collect();
    assert_eq!(left, ["2016"]);
    let status = client
        .delete_target(delete_target("2015"))
        .await
        .expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.get_details_resource_info().unwrap().resource_name,
        "ZONE 411725-CJQ tax 2015"
    );
    deployment.stop().await;
}

#[tokio::test]
async fn observations_and_targets_page_over_their_sort_keys() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    reference_data(&mut client).await;
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for year in 2010..2020 {
        for indicator in ["output_value", "tax", "revenue"] {
            csv.push_str(&format!("ZONE,411725-CJQ,{indicator},{year},{year},万元\n"));
        }
    }
    import(&mut client, &csv).await.expect("figures");
    import(&mut client, &csv.replace(",2013,2013,", ",2013,2013.5,"))
        .await
        .expect("revisions");
    let whole = |include_revisions: bool| v1::GetObservationsRequest {
        entity: zone_ref("411725-CJQ"),
        include_revisions,
        ..Default::default()
    };
    for include_revisions in [false, true] {
        let all = client
            .get_observations(whole(include_revisions))
            .await
            .expect("one page")
            .into_inner();
        assert!(all.next_page_token.is_empty());
        assert_eq!(
            all.observations.len(),
            if include_revisions { 33 } else { 30 }
        );
        let mut paged = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .get_observations(v1::GetObservationsRequest {
                    page_size: 7,
                    page_token: token,
                    ..whole(include_revisions)
                })
                .await
                .expect("page")
                .into_inner();
            assert!(page.observations.len() <= 7);
            paged.extend(page.observations);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(paged, all.observations, "revisions: {include_revisions}");
    }
    let status = client
        .get_observations(v1::GetObservationsRequest {
            page_token: "00ff".into(),
            ..whole(false)
        })
        .await
        .expect_err("a forged token");
    assert_eq!(status.code(), Code::InvalidArgument);

    let all_targets: Vec<v1::Target> = (2010..2023)
        .map(|year| target("411725-CJQ", "tax", &year.to_string(), year as f64))
        .collect();
    client
        .upsert_targets(v1::UpsertTargetsRequest {
            targets: all_targets,
            ..Default::default()
        })
        .await
        .expect("targets");
    let mut periods = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_targets(v1::ListTargetsRequest {
                entity: zone_ref("411725-CJQ"),
                page_size: 5,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("targets page")
            .into_inner();
        pages += 1;
        periods.extend(page.targets.into_iter().map(|t| t.period));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        periods,
        (2010..2023).map(|y| y.to_string()).collect::<Vec<_>>()
    );
    deployment.stop().await;
}

#[tokio::test]
async fn units_convert_decimal_exactly_on_the_way_in() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    reference_data(&mut client).await;
    let csv = "entity_kind,entity_id,indicator,period,value,unit
ZONE,411725-CJQ,land_area,2014,8.2,平方公里
ZONE,411725-CJQ,land_area,2015,3.3,公顷
ZONE,411725-CJQ,output_value,2014,0.1,亿元
ZONE,411725-CJQ,tax,2014,1.14,亿元
ZONE,411725-CJQ,revenue,2014,12345,元
";
    import(&mut client, csv).await.expect("import");
    let value = async |client: &mut Client, indicator: &str, period: &str| {
        read(client, "411725-CJQ", indicator, None)
            .await
            .into_iter()
            .find(|o| o.period == period)
            .map(|o| o.value)
    };
    assert_eq!(
        value(&mut client, "land_area", "2014").await,
        Some(12_300.0)
    );
    assert_eq!(value(&mut client, "land_area", "2015").await, Some(49.5));
    assert_eq!(
        value(&mut client, "output_value", "2014").await,
        Some(1_000.0)
    );
    assert_eq!(value(&mut client, "tax", "2014").await, Some(11_400.0));
    assert_eq!(value(&mut client, "revenue", "2014").await, Some(1.2345));
    // The wire double converts the same way as the CSV text.
    let stream = tokio_stream::iter(vec![v1::IngestObservationsRequest {
        observations: vec![observation("410323-XA", "land_area", "2014", 8.2, "km2")],
        allow_partial: false,
        dry_run: false,
        strict: false,
    }]);
    client.ingest_observations(stream).await.expect("stream");
    assert_eq!(
        read(&mut client, "410323-XA", "land_area", None).await[0].value,
        12_300.0
    );
    // Targets convert to the indicator's unit alike.
    client
        .upsert_targets(v1::UpsertTargetsRequest {
            targets: vec![v1::Target {
                unit: "平方公里".into(),
                ..target("411725-CJQ", "land_area", "2016", 8.2)
            }],
            ..Default::default()
        })
        .await
        .expect("target");
    assert_eq!(targets(&mut client, "411725-CJQ").await[0].value, 12_300.0);
    deployment.stop().await;
}

#[tokio::test]
async fn regions_must_nest_by_level_and_code_and_stocks_cannot_be_negative() {
    use v1::RegionLevel::{City, County, Province};
    use zonerank_integration_tests::region;
    let deployment = Deployment::postgres_and_redis().await;
    let mut client = deployment.ingestion_client().await;
    reference_data(&mut client).await;
    let before = regions(&mut client).await;
    let refused = async |client: &mut Client,
                         sent: Vec<v1::Region>,
                         update_mask: Option<prost_types::FieldMask>| {
        let status = client
            .upsert_regions(v1::UpsertRegionsRequest {
                regions: sent,
                update_mask,
                ..Default::default()
            })
            .await
            .expect_err("a region that does not nest");
        assert_eq!(status.code(), Code::InvalidArgument);
        status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect::<Vec<_>>()
    };

    // A province under a city, a city under a county, a county under another city's code.
    let faults = refused(
        &mut client,
        vec![
            region("410324", "新县", County, "410300"),
            region("420000", "湖北省", Province, "410300"),
            region("410400", "平顶山市", City, "410323"),
            region("410325", "嵩县", County, "411700"),
        ],
        None,
    )
    .await;
    let fields: Vec<&str> = faults.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "regions[1].parent_code",
            "regions[2].parent_code",
            "regions[3].parent_code"
        ],
        "{faults:?}"
    );
    assert!(faults[0].1.contains("province"), "{faults:?}");
    assert!(faults[1].1.contains("county 410323"), "{faults:?}");
    assert!(faults[2].1.contains("start with 4117"), "{faults:?}");
    // A city whose code is not its province's.
    let faults = refused(
        &mut client,
        vec![region("420100", "武汉市", City, "410000")],
        None,
    )
    .await;
    assert_eq!(faults[0].0, "regions[0].parent_code", "{faults:?}");

    // The merged record is checked: Luoyang made a county would sit at Xin'an county's level.
    let faults = refused(
        &mut client,
        vec![v1::Region {
            code: "410300".into(),
            level: County as i32,
            ..Default::default()
        }],
        mask(&["level"]),
    )
    .await;
    assert_eq!(faults[0].0, "regions[0].level", "{faults:?}");
    assert!(faults[0].1.contains("410323"), "{faults:?}");
    // And a masked move of Xin'an county under Zhumadian.
    let faults = refused(
        &mut client,
        vec![v1::Region {
            code: "410323".into(),
            parent_code: "411700".into(),
            ..Default::default()
        }],
        mask(&["parent_code"]),
    )
    .await;
    assert_eq!(faults[0].0, "regions[0].parent_code", "{faults:?}");
    // Nothing was written, not even the request's good county.
    assert_eq!(regions(&mut client).await, before);

    // A negative land area is refused with its row and field; nothing of the batch is written.
    let batch = v1::IngestObservationsRequest {
        observations: vec![
            observation("411725-CJQ", "output_value", "2014", 53.2, "亿元"),
            observation("411725-CJQ", "land_area", "2014", -2.0, "平方公里"),
            observation("411725-CJQ", "profit", "2014", -300.0, "万元"),
        ],
        allow_partial: false,
        dry_run: false,
        strict: false,
    };
    let status = client
        .ingest_observations(tokio_stream::iter(vec![batch]))
        .await
        .expect_err("a negative land area");
    assert_eq!(status.code(), Code::InvalidArgument);
    let faults = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].field, "rows[2].value");
    assert!(
        faults[0]
            .description
            .contains("land_area cannot be negative"),
        "{}",
        faults[0].description
    );
    for indicator in ["output_value", "land_area", "profit"] {
        assert!(
            read(&mut client, "411725-CJQ", indicator, None)
                .await
                .is_empty(),
            "{indicator}"
        );
    }

    deployment.stop().await;
}
