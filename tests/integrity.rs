//! Bad input through the API never reaches the database and never becomes an outage: each case
//! answers INVALID_ARGUMENT naming the field, and a read-back shows nothing was written. The
//! three services run as separate servers over PostgreSQL and Redis.

use tonic::Code;
use tonic_types::StatusExt;
use zonerank_api::v1;
use zonerank_integration_tests::{Deployment, seed_regions};

fn violations(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn zone(id: &str, name: &str) -> v1::Zone {
    v1::Zone {
        id: id.into(),
        name: name.into(),
        region_code: "410300".into(),
        kind: v1::ZoneKind::IndustrialPark as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_text_unknown_enums_and_ambiguous_numbers_are_refused_naming_the_field() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut ranking = deployment.ranking_client().await;
    ingestion
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions");
    let zones_stored =
        |mut client: zonerank_api::v1::ingestion_service_client::IngestionServiceClient<
            tonic::transport::Channel,
        >| async move {
            client
                .list_zones(v1::ListZonesRequest::default())
                .await
                .expect("list zones")
                .into_inner()
                .zones
                .len()
        };

    // A NUL byte in a name: PostgreSQL would refuse it as "invalid byte sequence"; the boundary
    // names the field first, and the good zone of the same request is not written either.
    let status = ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![zone("LY-OK", "洛阳好园区"), zone("LY-NUL", "洛阳\0园区")],
            ..Default::default()
        })
        .await
        .expect_err("a NUL byte");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violations(&status), ["zones[1].name"]);
    assert!(!status.message().contains("UTF8"), "{}", status.message());
    assert_eq!(zones_stored(ingestion.clone()).await, 0, "nothing written");

    // A control character in a page token or a filter.
    let status = ingestion
        .list_zones(v1::ListZonesRequest {
            tags: vec!["四支撑\u{1b}[2J".into()],
            ..Default::default()
        })
        .await
        .expect_err("an escape sequence");
    assert_eq!(violations(&status), ["tags[0]"]);

    // 70,000 tags on one zone: refused whole, not split into a database error.
    let mut many = zone("LY-TAGS", "标签园区");
    many.tags = (0..70_000).map(|i| format!("t{i}")).collect();
    let status = ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![many],
            ..Default::default()
        })
        .await
        .expect_err("too many tags");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status), ["zones[0].tags"]);
    assert_eq!(zones_stored(ingestion.clone()).await, 0);

    // An enum number the contract does not define is refused, not run as a default.
    let status = ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(v1::Scheme {
                id: "odd-scheme".into(),
                name: "odd".into(),
                entity_kind: v1::EntityKind::Zone as i32,
                criteria: vec![v1::Criterion {
                    metric: "revenue".into(),
                    weight: 1.0,
                    ..Default::default()
                }],
                normalization: 99,
                weighting: v1::Weighting::Fixed as i32,
                aggregation: v1::Aggregation::WeightedSum as i32,
                ..Default::default()
            }),
        })
        .await
        .expect_err("normalization 99");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status), ["scheme.normalization"]);
    let status = ranking
        .get_scheme(v1::GetSchemeRequest {
            scheme_id: "odd-scheme".into(),
            version: 0,
        })
        .await
        .expect_err("not stored");
    assert_eq!(status.code(), Code::NotFound);
    let status = ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![v1::Zone {
                kind: 42,
                ..zone("LY-K", "园区")
            }],
            ..Default::default()
        })
        .await
        .expect_err("zone kind 42");
    assert_eq!(violations(&status), ["zones[0].kind"]);

    // A non-finite number in a stream batch names the batch and the observation.
    ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![zone("LY-1", "洛阳一号园区")],
            ..Default::default()
        })
        .await
        .expect("a good zone");
    let observation = |value: f64, source: &str| v1::Observation {
        entity: Some(v1::EntityRef {
            kind: v1::EntityKind::Zone as i32,
            id: "LY-1".into(),
        }),
        indicator: "revenue".into(),
        period: "2023".into(),
        value,
        unit: "万元".into(),
        source: source.into(),
        ..Default::default()
    };
    let batches = vec![
        v1::IngestObservationsRequest {
            observations: vec![observation(1.0, "统计局")],
            ..Default::default()
        },
        v1::IngestObservationsRequest {
            observations: vec![observation(2.0, "统计局"), observation(3.0, "统计\u{7}局")],
            ..Default::default()
        },
    ];
    let status = ingestion
        .ingest_observations(tokio_stream::iter(batches))
        .await
        .expect_err("a bell in a source");
    assert_eq!(violations(&status), ["batches[1].observations[1].source"]);

    // Numbers in a CSV are read exactly or refused with the row: a decimal comma, European
    // grouping, inner spaces and a quoted line break are never reinterpreted.
    let csv = "entity_kind,entity_id,indicator,period,value,unit\n\
               ZONE,LY-1,revenue,2021,\"1,5\",万元\n\
               ZONE,LY-1,revenue,2022,\"1.234,5\",万元\n\
               ZONE,LY-1,tax,2021,1 234,万元\n\
               ZONE,LY-1,tax,2022,\"1\n2\",万元\n\
               ZONE,LY-1,tax,2023,\"3,500\",万元\n\
               ZONE,LY-1,output_value,2023,5,亿元,extra\n";
    let with_source = "entity_kind,entity_id,indicator,period,value,unit,source\n\
                       ZONE,LY-1,revenue,2023,5,万元,统计\u{0}局\n";
    let status = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: with_source.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("a NUL byte inside the file");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violations(&status), ["rows[2].source"]);
    let status = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: csv.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("ambiguous numbers");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields = violations(&status);
    for expected in [
        "rows[2].value",
        "rows[3].value",
        "rows[4].value",
        "rows[5].value",
    ] {
        assert!(
            fields.contains(&expected.to_string()),
            "{expected} in {fields:?}"
        );
    }
    // The quoted line break spans lines 5 and 6: "3,500" is on line 7, the extra field on 8.
    assert!(
        fields.iter().any(|f| f.starts_with("rows[8]")),
        "the line with an extra field: {fields:?}"
    );
    assert!(
        !fields.iter().any(|f| f.starts_with("rows[7]")),
        "3,500 is a number: {fields:?}"
    );
    let stored = ingestion
        .get_observations(v1::GetObservationsRequest {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "LY-1".into(),
            }),
            ..Default::default()
        })
        .await
        .expect("read back")
        .into_inner()
        .observations;
    assert!(stored.is_empty(), "nothing written: {stored:?}");

    // 150 bad rows: the rejection fits a default client's 8 KiB metadata limit, and a dry run
    // answers OK with every row's fault.
    let mut many = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for year in 1901..2051 {
        many.push_str(&format!("ZONE,LY-1,revenue,{year},\"1,5\",万元\n"));
    }
    let status = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: many.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("150 bad rows");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut headers = http::HeaderMap::new();
    status.add_header(&mut headers).unwrap();
    let metadata: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    assert!(metadata < 7 * 1024, "{metadata} bytes of error metadata");
    assert!(violations(&status).len() < 150);
    let report = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: many.as_bytes().to_vec(),
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("a dry run answers OK")
        .into_inner();
    assert!(report.dry_run);
    assert_eq!(report.rejected, 150);
    assert_eq!(report.errors.len(), 150);
    assert_eq!(report.accepted, 0);

    // The services keep serving after all of it.
    let health = ingestion
        .list_regions(v1::ListRegionsRequest::default())
        .await
        .expect("still serving");
    assert!(!health.into_inner().regions.is_empty());
    deployment.stop().await;
}
