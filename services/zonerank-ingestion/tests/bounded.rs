//! A long import streamed to the real ingestion binary over PostgreSQL is checked and staged a
//! chunk at a time: the process's peak resident set (read from /proc) stays under the bound
//! whatever the stream's length, and a bad row in the last chunk still leaves nothing written.

use tonic_types::StatusExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_integration_tests::{
    ServiceProcess, numbered_zone_id, store_numbered_zones, stored_observations_and_version,
};
use zonerank_storage::test_support::TestDatabase;

const EXE: &str = env!("CARGO_BIN_EXE_zonerank-ingestion");
const SERVICE: &str = "zonerank.v1.IngestionService";

const ZONES: usize = 10_000;
const INDICATORS: [&str; 3] = ["revenue", "tax", "output_value"];
const YEARS: std::ops::Range<i32> = 1925..2025;
/// Observations per streamed message, as `zonerank import` sends them.
const BATCH: usize = 5_000;
const ROWS: usize = ZONES * INDICATORS.len() * (YEARS.end - YEARS.start) as usize;
/// The ingestion process's peak resident set may not pass this, however long the import.
const BOUND_KIB: u64 = 300 * 1024;

type Client = IngestionServiceClient<tonic::transport::Channel>;

/// A client without a deadline: a debug build takes minutes over the long import.
async fn client(process: &ServiceProcess) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(process.url.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    IngestionServiceClient::new(channel)
        .max_encoding_message_size(zonerank_server::limits::INGESTION_REQUEST_BYTES)
}

/// A fresh database with the zones, the service over it and a client.
async fn deployment() -> (TestDatabase, ServiceProcess, Client) {
    let database = TestDatabase::postgres().await.expect("test database");
    database.migrated_store().await.expect("migrate");
    let process = ServiceProcess::start_over(EXE, SERVICE, &database.url).await;
    let mut client = client(&process).await;
    store_numbered_zones(&mut client, ZONES).await;
    (database, process, client)
}

/// Row `n` (0-based) of the import: every zone, indicator and year once.
fn observation(n: usize) -> v1::Observation {
    let years = (YEARS.end - YEARS.start) as usize;
    let zone = n / (INDICATORS.len() * years);
    let indicator = INDICATORS[(n / years) % INDICATORS.len()];
    let year = YEARS.start + (n % years) as i32;
    v1::Observation {
        entity: Some(v1::EntityRef {
            kind: v1::EntityKind::Zone as i32,
            id: numbered_zone_id(zone),
        }),
        indicator: indicator.into(),
        period: year.to_string(),
        value: 100.0 + zone as f64 + f64::from(year - YEARS.start) / 10.0,
        unit: "亿元".into(),
        ..Default::default()
    }
}

/// The first `rows` rows as a stream of messages, made as they are sent (the client holds one
/// message), the last row replaced by `last` when given.
fn stream(
    rows: usize,
    last: Option<v1::Observation>,
) -> impl tokio_stream::Stream<Item = v1::IngestObservationsRequest> {
    tokio_stream::iter((0..rows.div_ceil(BATCH)).map(move |b| {
        let observations = (b * BATCH..((b + 1) * BATCH).min(rows))
            .map(|n| match (&last, n + 1 == rows) {
                (Some(last), true) => last.clone(),
                _ => observation(n),
            })
            .collect();
        v1::IngestObservationsRequest {
            observations,
            ..Default::default()
        }
    }))
}

#[tokio::test]
async fn a_bad_row_in_the_last_chunk_and_a_repeat_across_chunks_refuse_the_stream_whole() {
    let (database, process, mut client) = deployment().await;
    let (_, before) = stored_observations_and_version(&database.url).await;

    // A bad row last, in the last chunk, and a repeat of row 1 just before it: refused whole,
    // naming both rows, with nothing written.
    let bad_rows = 200_000;
    let mut repeat = observation(0);
    repeat.value = 1.0;
    let bad = v1::Observation {
        indicator: "no_such_indicator".into(),
        ..observation(bad_rows - 1)
    };
    let refused = client
        .ingest_observations(tokio_stream::StreamExt::chain(
            stream(bad_rows - 1, Some(repeat)),
            tokio_stream::iter([v1::IngestObservationsRequest {
                observations: vec![bad],
                ..Default::default()
            }]),
        ))
        .await
        .expect_err("a bad row refuses the import");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with(&format!("2 of {bad_rows} rows rejected, nothing written")),
        "{}",
        refused.message()
    );
    let fields: Vec<String> = refused
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations
        .into_iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    assert_eq!(fields.len(), 2, "{fields:?}");
    assert!(
        fields[0].starts_with(&format!(
            "rows[{}].period: duplicate of row 1",
            bad_rows - 1
        )),
        "{fields:?}"
    );
    assert!(
        fields[1].starts_with(&format!("rows[{bad_rows}].indicator")),
        "{fields:?}"
    );
    assert_eq!(
        stored_observations_and_version(&database.url).await,
        (0, before),
        "nothing written"
    );

    // A dry run of the same rows without the bad one counts them all and writes nothing.
    let report = client
        .ingest_observations(tokio_stream::StreamExt::map(
            stream(bad_rows - 1, None),
            |mut batch| {
                batch.dry_run = true;
                batch
            },
        ))
        .await
        .expect("dry run")
        .into_inner();
    assert!(report.dry_run);
    assert_eq!(report.accepted, bad_rows as i64 - 1);
    assert_eq!(
        stored_observations_and_version(&database.url).await,
        (0, before),
        "nothing written"
    );

    drop(process);
    database.drop().await.expect("drop test database");
}

/// Over five minutes in a debug build (2 cores): run it with `--ignored`, best in release.
#[tokio::test]
#[ignore]
async fn a_three_million_row_stream_stays_under_the_memory_bound() {
    let (database, process, mut client) = deployment().await;
    let (_, before) = stored_observations_and_version(&database.url).await;
    let report = client
        .ingest_observations(stream(ROWS, None))
        .await
        .expect("the import")
        .into_inner();
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    assert_eq!(report.accepted, ROWS as i64);
    assert_eq!(report.data_version, before + 1);
    assert_eq!(
        stored_observations_and_version(&database.url).await,
        (ROWS as u64, before + 1)
    );
    let peak = process.peak_rss_kib();
    println!(
        "{ROWS} rows streamed: ingestion peak RSS {} MiB",
        peak / 1024
    );
    assert!(
        peak < BOUND_KIB,
        "peak RSS {} MiB over the {} MiB bound",
        peak / 1024,
        BOUND_KIB / 1024
    );

    drop(process);
    database.drop().await.expect("drop test database");
}
