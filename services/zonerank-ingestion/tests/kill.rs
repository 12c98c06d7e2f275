//! A SIGKILL of the ingestion service in the middle of a large import leaves all of it or none
//! of it: the real binary over PostgreSQL, 200,000 observations streamed over
//! IngestObservations, the process killed, restarted over the same database, and the stored
//! rows and data version read back.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_integration_tests::{
    ServiceProcess, numbered_zone_id, store_numbered_zones, stored_observations_and_version,
};
use zonerank_storage::test_support::TestDatabase;

const EXE: &str = env!("CARGO_BIN_EXE_zonerank-ingestion");
const SERVICE: &str = "zonerank.v1.IngestionService";

const ZONES: usize = 2_000;
const YEARS: std::ops::Range<i32> = 1925..2025;
/// Observations per streamed message, as `zonerank import` sends them.
const BATCH: usize = 5_000;
const ROWS: usize = ZONES * (YEARS.end - YEARS.start) as usize;

type Client = IngestionServiceClient<tonic::transport::Channel>;

async fn client(process: &ServiceProcess) -> Client {
    IngestionServiceClient::new(process.channel().await)
        .max_encoding_message_size(zonerank_server::limits::INGESTION_REQUEST_BYTES)
}

async fn zones(client: &mut Client) {
    store_numbered_zones(client, ZONES).await;
}

/// The import's batches: every zone's revenue for every year.
fn batches() -> Vec<v1::IngestObservationsRequest> {
    let observations: Vec<v1::Observation> = (0..ZONES)
        .flat_map(|i| {
            YEARS.map(move |year| v1::Observation {
                entity: Some(v1::EntityRef {
                    kind: v1::EntityKind::Zone as i32,
                    id: numbered_zone_id(i),
                }),
                indicator: "revenue".into(),
                period: year.to_string(),
                value: 100.0 + i as f64 + f64::from(year - YEARS.start) / 10.0,
                unit: "亿元".into(),
                ..Default::default()
            })
        })
        .collect();
    assert_eq!(observations.len(), ROWS);
    observations
        .chunks(BATCH)
        .map(|chunk| v1::IngestObservationsRequest {
            observations: chunk.to_vec(),
            ..Default::default()
        })
        .collect()
}

async fn stored(url: &str) -> (u64, i64) {
    stored_observations_and_version(url).await
}

/// Streams the first `send` batches (all of them and the end of the stream when `send` is
/// every batch), waits `then`, and kills the process while the call is still open.
async fn kill_during_import(
    process: &mut ServiceProcess,
    send: usize,
    then: Duration,
) -> Result<v1::IngestReport, tonic::Status> {
    let all = batches();
    let finish = send >= all.len();
    let (tx, rx) = mpsc::channel(4);
    let mut client = client(process).await;
    let call = tokio::spawn(async move {
        client
            .ingest_observations(ReceiverStream::new(rx))
            .await
            .map(tonic::Response::into_inner)
    });
    for batch in all.into_iter().take(send) {
        tx.send(batch).await.expect("stream open");
    }
    // The stream ends only when every batch was sent; otherwise it stays open past the kill.
    let open = if finish {
        drop(tx);
        None
    } else {
        Some(tx)
    };
    tokio::time::sleep(then).await;
    process.kill();
    let answer = call.await.expect("call task");
    drop(open);
    answer
}

#[tokio::test]
async fn a_sigkill_mid_import_leaves_all_or_nothing_and_the_restarted_service_imports_it_whole() {
    let database = TestDatabase::postgres().await.expect("test database");
    database.migrated_store().await.expect("migrate");
    let mut process = ServiceProcess::start_over(EXE, SERVICE, &database.url).await;
    zones(&mut client(&process).await).await;
    let (rows, before) = stored(&database.url).await;
    assert_eq!(rows, 0);

    // Killed with half of the stream sent: the stream never ended, so nothing may be stored.
    let half = ROWS / BATCH / 2;
    let answer = kill_during_import(&mut process, half, Duration::from_millis(300)).await;
    assert!(answer.is_err(), "the call cannot succeed: {answer:?}");
    assert_eq!(
        stored(&database.url).await,
        (0, before),
        "nothing of a half-sent import"
    );

    // Killed after the whole stream was sent, while the service checks and writes it: either
    // every row and one new version, or no row and the old version.
    let mut process = ServiceProcess::start_over(EXE, SERVICE, &database.url).await;
    let answer = kill_during_import(&mut process, usize::MAX, Duration::from_millis(400)).await;
    let (rows, version) = stored(&database.url).await;
    match rows {
        0 => assert_eq!(version, before, "no rows, no new version"),
        n if n == ROWS as u64 => assert_eq!(version, before + 1, "all rows in one version"),
        n => panic!("{n} of {ROWS} rows stored after the kill ({answer:?})"),
    }
    println!(
        "killed after the whole stream: {rows} rows stored, version {before} → {version}, the call answered {:?}",
        answer.as_ref().map(|r| r.accepted).map_err(|s| s.code())
    );

    // Restarted over the same database, the service takes the whole import.
    let process = ServiceProcess::start_over(EXE, SERVICE, &database.url).await;
    let report = client(&process)
        .await
        .ingest_observations(tokio_stream::iter(batches()))
        .await
        .expect("import after the restart")
        .into_inner();
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    assert_eq!(
        report.accepted + report.unchanged,
        ROWS as i64,
        "{report:?}"
    );
    let (rows, after) = stored(&database.url).await;
    assert_eq!(rows, ROWS as u64);
    assert_eq!(after, report.data_version);
    assert!(after > before);

    drop(process);
    database.drop().await.expect("drop test database");
}
