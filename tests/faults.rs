//! The services while their dependencies really fail: a TCP proxy (`support::proxy`) stands
//! between a service and PostgreSQL, Redis or the metrics service, and is cut and restored
//! while the service runs. What each outage must give:
//!
//! - database cut: a request answers UNAVAILABLE within 5 s, readiness NOT_SERVING within 6 s;
//!   restored: SERVING again and requests succeed, without a restart;
//! - Redis cut: requests answer OK from the database, readiness stays SERVING; restored: the
//!   cache is used again; a process started while Redis is unreachable starts and serves;
//! - metrics service cut: ComputeRanking answers UNAVAILABLE (never UNKNOWN) and the ranking
//!   service's readiness goes NOT_SERVING; restored: both recover.
//!
//! A SIGKILL in the middle of an import is in `services/zonerank-ingestion/tests/`, where the
//! binary is at hand.

use std::time::{Duration, Instant};

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use zonerank_api::v1::{
    self, ingestion_service_client::IngestionServiceClient,
    metrics_service_client::MetricsServiceClient, ranking_service_client::RankingServiceClient,
};
use zonerank_integration_tests::{
    RedisPrefix, RunningServer, henan_two_cities, proxy::Proxy, redis_url, server_args,
    serving_status, wait_for_status,
};
use zonerank_server::Services;
use zonerank_storage::test_support::TestDatabase;

type Ingestion = IngestionServiceClient<tonic::transport::Channel>;
type Metrics = MetricsServiceClient<tonic::transport::Channel>;

const INGESTION: &str = "zonerank.v1.IngestionService";
const METRICS: &str = "zonerank.v1.MetricsService";
const RANKING: &str = "zonerank.v1.RankingService";

/// A request during a database outage fails within this.
const FAILS_WITHIN: Duration = Duration::from_secs(5);
/// Readiness follows an outage, or a recovery, within this.
const READINESS_WITHIN: Duration = Duration::from_secs(6);

/// Four zones in two cities with revenue for 2022 and 2023, tax and land area for 2023.
async fn seed(client: &mut Ingestion) {
    client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: henan_two_cities(),
            ..Default::default()
        })
        .await
        .expect("regions");
    let zones = [
        ("LY-1", "410300"),
        ("LY-2", "410300"),
        ("ZZ-1", "410100"),
        ("ZZ-2", "410100"),
    ];
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: zones
                .iter()
                .map(|(id, city)| v1::Zone {
                    id: id.to_string(),
                    name: format!("{id} zone"),
                    region_code: city.to_string(),
                    kind: v1::ZoneKind::AgglomerationZone as i32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .await
        .expect("zones");
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for (i, (id, _)) in zones.iter().enumerate() {
        let revenue = 100.0 + 10.0 * i as f64;
        csv.push_str(&format!(
            "ZONE,{id},revenue,2022,{revenue},亿元\nZONE,{id},revenue,2023,{},亿元\n",
            revenue * (1.1 + 0.05 * i as f64)
        ));
        csv.push_str(&format!(
            "ZONE,{id},tax,2023,{},万元\nZONE,{id},land_area,2023,{},亩\n",
            20_000 + 1_000 * i,
            10_000 - 1_000 * i
        ));
    }
    let report = client
        .import_csv(v1::ImportCsvRequest {
            content: csv.into_bytes(),
            ..Default::default()
        })
        .await
        .expect("import")
        .into_inner();
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
}

fn compute_request(metric: &str) -> v1::ComputeMetricsRequest {
    v1::ComputeMetricsRequest {
        metrics: vec![metric.to_string()],
        period: "2023".into(),
        cohort: Some(v1::CohortSelector {
            entity_kind: v1::EntityKind::Zone as i32,
            region_code: "410000".into(),
            ..Default::default()
        }),
        as_of: None,
    }
}

async fn compute(metrics: &mut Metrics, metric: &str) -> v1::ComputeMetricsResponse {
    metrics
        .compute_metrics(compute_request(metric))
        .await
        .unwrap_or_else(|s| panic!("compute {metric}: {s:?}"))
        .into_inner()
}

/// Asks for `service`'s status every 250 ms for `during` and fails on anything but SERVING.
async fn stays_serving(url: &str, service: &str, during: Duration) {
    let start = Instant::now();
    while start.elapsed() < during {
        assert_eq!(
            serving_status(url, service).await,
            Some(ServingStatus::Serving),
            "{service} after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn database_cut_answers_unavailable_fast_goes_unready_and_recovers_without_a_restart() {
    let database = TestDatabase::postgres().await.expect("test database");
    database.migrated_store().await.expect("migrate");
    let (proxy, url) = Proxy::in_front_of(&database.url).await;
    let server = RunningServer::start(server_args(&url, None), Services::INGESTION).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    seed(&mut ingestion).await;

    proxy.cut();
    let start = Instant::now();
    let status = ingestion
        .list_regions(v1::ListRegionsRequest::default())
        .await
        .expect_err("no database");
    let elapsed = start.elapsed();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(elapsed < FAILS_WITHIN, "answered after {elapsed:?}");
    assert!(
        !status.message().contains("sqlx") && !status.message().contains("pool"),
        "driver text reached the client: {}",
        status.message()
    );
    let unready = wait_for_status(
        &server.url,
        INGESTION,
        ServingStatus::NotServing,
        READINESS_WITHIN,
    )
    .await;
    // The whole server stays alive: a liveness probe must not restart it for an outage.
    assert_eq!(
        serving_status(&server.url, "").await,
        Some(ServingStatus::Serving)
    );

    proxy.restore();
    let ready = wait_for_status(
        &server.url,
        INGESTION,
        ServingStatus::Serving,
        READINESS_WITHIN,
    )
    .await;
    let regions = ingestion
        .list_regions(v1::ListRegionsRequest::default())
        .await
        .expect("regions after the outage")
        .into_inner()
        .regions;
    assert_eq!(regions.len(), 3, "{regions:?}");
    println!(
        "database cut: UNAVAILABLE after {elapsed:?}, NOT_SERVING after {unready:?}, SERVING {ready:?} after restore"
    );

    server.stop().await;
    drop(proxy);
    database.drop().await.expect("drop test database");
}

#[tokio::test]
async fn redis_cut_serves_from_the_database_stays_ready_and_uses_the_cache_once_back() {
    let database = TestDatabase::postgres().await.expect("test database");
    database.migrated_store().await.expect("migrate");
    let prefix = RedisPrefix::new();
    let (proxy, redis) = Proxy::in_front_of(&redis_url()).await;
    let mut args = server_args(&database.url, Some(&prefix.prefix));
    args.redis_url = Some(redis);
    let server = RunningServer::start(args, Services::ALL_IN_ONE).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    let mut metrics = MetricsServiceClient::new(server.channel().await);
    seed(&mut ingestion).await;
    assert!(!compute(&mut metrics, "yoy(revenue)").await.cached);
    assert!(
        compute(&mut metrics, "yoy(revenue)").await.cached,
        "Redis in use"
    );

    proxy.cut();
    let start = Instant::now();
    let answer = compute(&mut metrics, "per_mu(tax)").await;
    assert!(!answer.cached);
    assert_eq!(
        answer.table.as_ref().expect("table").rows.len(),
        4,
        "every zone, from the database"
    );
    // The first failure marks Redis down; later requests do not wait on it at all.
    let first = start.elapsed();
    let start = Instant::now();
    for _ in 0..20 {
        let again = compute(&mut metrics, "per_mu(tax)").await;
        assert!(!again.cached);
    }
    let twenty = start.elapsed();
    assert!(
        first < Duration::from_secs(2),
        "first request during the outage took {first:?}"
    );
    assert!(
        twenty < Duration::from_secs(2),
        "20 requests during the outage took {twenty:?}"
    );
    for service in [INGESTION, METRICS, RANKING] {
        assert_eq!(
            serving_status(&server.url, service).await,
            Some(ServingStatus::Serving)
        );
    }
    stays_serving(&server.url, METRICS, Duration::from_secs(5)).await;

    proxy.restore();
    let start = Instant::now();
    loop {
        // A miss stores the table once Redis is back; the next identical call is a hit.
        compute(&mut metrics, "per_mu(tax)").await;
        if compute(&mut metrics, "per_mu(tax)").await.cached {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the cache was not used again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "Redis cut: first request {first:?}, 20 more {twenty:?}, cache used again {:?} after restore",
        start.elapsed()
    );

    server.stop().await;
    drop(proxy);
    database.drop().await.expect("drop test database");
}

#[tokio::test]
async fn a_process_started_while_redis_is_unreachable_starts_serves_and_then_uses_it() {
    let database = TestDatabase::postgres().await.expect("test database");
    database.migrated_store().await.expect("migrate");
    let prefix = RedisPrefix::new();
    let (proxy, redis) = Proxy::in_front_of(&redis_url()).await;
    proxy.cut();
    let mut args = server_args(&database.url, Some(&prefix.prefix));
    args.redis_url = Some(redis);
    let start = Instant::now();
    let server = RunningServer::start(args, Services::ALL_IN_ONE).await;
    let started = start.elapsed();
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    let mut metrics = MetricsServiceClient::new(server.channel().await);
    seed(&mut ingestion).await;
    let answer = compute(&mut metrics, "yoy(revenue)").await;
    assert_eq!(answer.table.as_ref().expect("table").rows.len(), 4);
    assert!(
        !compute(&mut metrics, "yoy(revenue)").await.cached,
        "no cache yet"
    );

    proxy.restore();
    let start = Instant::now();
    while !compute(&mut metrics, "yoy(revenue)").await.cached {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "Redis not connected in the background"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "started without Redis in {started:?}; cache in use {:?} after Redis came",
        start.elapsed()
    );

    server.stop().await;
    drop(proxy);
    database.drop().await.expect("drop test database");
}

fn scheme() -> v1::Scheme {
    zonerank_integration_tests::zone_scheme(
        "faults",
        "faults",
        "410000",
        &[("yoy(revenue)", 0.5), ("per_mu(tax)", 0.5)],
    )
}

/// Ingestion, metrics and ranking as separate servers on one PostgreSQL database, the ranking
/// service calling the metrics service through a proxy, the data seeded and the `faults`
/// scheme created.
struct SplitRanking {
    database: TestDatabase,
    proxy: Proxy,
    metrics: RunningServer,
    ingestion: RunningServer,
    ranking: RunningServer,
}

impl SplitRanking {
    async fn start() -> SplitRanking {
        let database = TestDatabase::postgres().await.expect("test database");
        database.migrated_store().await.expect("migrate");
        let args = server_args(&database.url, None);
        let metrics = RunningServer::start(args.clone(), Services::METRICS).await;
        let (proxy, metrics_url) = Proxy::in_front_of(&metrics.url).await;
        let mut ranking_args = args.clone();
        ranking_args.metrics_addr = Some(metrics_url);
        let (ingestion, ranking) = tokio::join!(
            RunningServer::start(args, Services::INGESTION),
            RunningServer::start(ranking_args, Services::RANKING),
        );
        seed(&mut IngestionServiceClient::new(ingestion.channel().await)).await;
        RankingServiceClient::new(ranking.channel().await)
            .create_scheme(v1::CreateSchemeRequest {
                scheme: Some(scheme()),
            })
            .await
            .expect("scheme");
        SplitRanking {
            database,
            proxy,
            metrics,
            ingestion,
            ranking,
        }
    }

    async fn stop(self) {
        tokio::join!(
            self.ranking.stop(),
            self.ingestion.stop(),
            self.metrics.stop()
        );
        drop(self.proxy);
        self.database.drop().await.expect("drop test database");
    }
}

#[tokio::test]
async fn metrics_cut_answers_unavailable_makes_ranking_unready_and_both_recover() {
    let split = SplitRanking::start().await;
    let (proxy, ranking) = (&split.proxy, &split.ranking);
    let mut client = RankingServiceClient::new(ranking.channel().await);
    let request = |period: &str| v1::ComputeRankingRequest {
        scheme_id: "faults".into(),
        period: period.into(),
        ..Default::default()
    };

    proxy.cut();
    let start = Instant::now();
    let status = client
        .compute_ranking(request("2023"))
        .await
        .expect_err("no metrics service");
    let elapsed = start.elapsed();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(elapsed < FAILS_WITHIN, "answered after {elapsed:?}");
    let unready = wait_for_status(
        &ranking.url,
        RANKING,
        ServingStatus::NotServing,
        READINESS_WITHIN,
    )
    .await;

    proxy.restore();
    let ready = wait_for_status(
        &ranking.url,
        RANKING,
        ServingStatus::Serving,
        Duration::from_secs(20),
    )
    .await;
    let run = client
        .compute_ranking(request("2023"))
        .await
        .expect("ranking after the outage")
        .into_inner()
        .run
        .expect("a run");
    assert_eq!(run.entity_count, 4, "{run:?}");
    println!(
        "metrics cut: UNAVAILABLE after {elapsed:?}, NOT_SERVING after {unready:?}, SERVING {ready:?} after restore"
    );

    split.stop().await;
}

/// A metrics service that stops answering without closing its connections (a frozen
/// process): the ranking's own keepalive pings go unanswered, so ComputeRanking fails
/// UNAVAILABLE well inside the caller's deadline instead of running into it.
#[tokio::test]
async fn a_frozen_metrics_service_fails_a_ranking_unavailable_before_the_deadline() {
    let split = SplitRanking::start().await;
    let (proxy, ranking) = (&split.proxy, &split.ranking);
    let mut client = RankingServiceClient::new(ranking.channel().await);
    let compute = |client: &mut RankingServiceClient<tonic::transport::Channel>| {
        let mut request = tonic::Request::new(v1::ComputeRankingRequest {
            scheme_id: "faults".into(),
            period: "2023".into(),
            ..Default::default()
        });
        // Past the servers' own keepalive (a ping after 20 s, 10 s for the answer).
        request.set_timeout(Duration::from_secs(25));
        let mut client = client.clone();
        async move { client.compute_ranking(request).await }
    };
    // The connection to the metrics service is open and working before it freezes.
    compute(&mut client)
        .await
        .expect("ranking before the freeze");

    proxy.freeze();
    let start = Instant::now();
    let status = compute(&mut client)
        .await
        .expect_err("a frozen metrics service");
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "{status:?} after {:?}",
        start.elapsed()
    );

    proxy.restore();
    wait_for_status(
        &ranking.url,
        RANKING,
        ServingStatus::Serving,
        Duration::from_secs(30),
    )
    .await;
    compute(&mut client)
        .await
        .expect("ranking after the freeze");

    split.stop().await;
}

#[tokio::test]
async fn message_limits_are_the_documented_ones_and_silent_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    use zonerank_server::limits;

    let database = TestDatabase::sqlite();
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut ingestion =
        IngestionServiceClient::new(server.channel().await).max_encoding_message_size(usize::MAX);
    let mut metrics = MetricsServiceClient::new(server.channel().await);

    // A CSV over the ingestion limit is refused before it is read; one under it is read (and
    // its rows judged).
    let over = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: vec![b'x'; limits::INGESTION_REQUEST_BYTES + 1],
            ..Default::default()
        })
        .await
        .expect_err("over the limit");
    assert_eq!(over.code(), Code::OutOfRange, "{over:?}");
    let under = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: vec![b'x'; limits::REQUEST_BYTES + 1],
            ..Default::default()
        })
        .await;
    assert_ne!(under.map_err(|s| s.code()).err(), Some(Code::OutOfRange));
    // The other services decode at most 4 MiB.
    let mut big = compute_request("yoy(revenue)");
    big.period = "9".repeat(limits::REQUEST_BYTES);
    let refused = metrics.compute_metrics(big).await.expect_err("over 4 MiB");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");

    // A connection that never sends a byte is closed after the first-byte timeout.
    let address = server.url.trim_start_matches("http://");
    let mut silent = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let start = Instant::now();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(
        limits::FIRST_BYTE_TIMEOUT + Duration::from_secs(3),
        silent.read(&mut buffer),
    )
    .await
    .expect("closed by the server");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let closed = start.elapsed();
    assert!(
        closed >= limits::FIRST_BYTE_TIMEOUT - Duration::from_millis(500),
        "{closed:?}"
    );
    // A client that speaks at once is served meanwhile, and after.
    assert_eq!(
        serving_status(&server.url, METRICS).await,
        Some(ServingStatus::Serving)
    );

    server.stop().await;
}

#[tokio::test]
async fn with_redis_cut_the_official_ranking_is_resolved_from_the_database_and_follows_new_runs() {
    let database = TestDatabase::postgres().await.expect("test database");
    database.migrated_store().await.expect("migrate");
    let prefix = RedisPrefix::new();
    let (proxy, redis) = Proxy::in_front_of(&redis_url()).await;
    let mut args = server_args(&database.url, Some(&prefix.prefix));
    args.redis_url = Some(redis);
    let server = RunningServer::start(args, Services::ALL_IN_ONE).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    let mut ranking = RankingServiceClient::new(server.channel().await);
    seed(&mut ingestion).await;
    ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(zonerank_integration_tests::zone_scheme(
                "cut",
                "cut test",
                "410000",
                &[("per_mu(tax)", 1.0)],
            )),
        })
        .await
        .expect("scheme");
    let client = ranking.clone();
    let compute = move || {
        let mut ranking = client.clone();
        async move {
            ranking
                .compute_ranking(v1::ComputeRankingRequest {
                    scheme_id: "cut".into(),
                    period: "2023".into(),
                    ..Default::default()
                })
                .await
                .expect("compute")
                .into_inner()
                .run
                .unwrap()
                .run_id
        }
    };
    let client = ranking.clone();
    let official = move || {
        let mut ranking = client.clone();
        async move {
            let page = ranking
                .get_ranking(v1::GetRankingRequest {
                    scheme_id: "cut".into(),
                    period: "2023".into(),
                    page_size: 10,
                    ..Default::default()
                })
                .await
                .expect("the official ranking")
                .into_inner();
            assert_eq!(page.entries.len(), 4, "every zone");
            page.run.unwrap().run_id
        }
    };
    let first = compute().await;
    assert_eq!(official().await, first);
    assert_eq!(official().await, first, "served from the cache");

    // Redis cut: a newer run is computed and stored, but its generation cannot be written.
    // The official ranking is then resolved from the database, never from the page cached
    // before the cut.
    proxy.cut();
    let second = compute().await;
    assert_eq!(official().await, second);
    let third = compute().await;
    assert_eq!(official().await, third);
    ranking
        .delete_run(v1::DeleteRunRequest {
            run_id: third.clone(),
        })
        .await
        .expect("delete");
    assert_eq!(official().await, second);

    // Back: the generation written before the cut is still in Redis, and the page filed
    // under it names the first run; the writes made during the cut could not replace it. The
    // cache drops the generation when Redis answers its probe again, before it is used, so
    // with no write after the restore the answer stays the newest run through the recovery
    // (the probe runs every 0.5 s; two seconds cover it and reads from the cache after it).
    proxy.restore();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        assert_eq!(
            official().await,
            second,
            "a page cached before the cut was served after the restore"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And from then it follows new runs again.
    let fourth = compute().await;
    assert_eq!(official().await, fourth);

    server.stop().await;
    drop(proxy);
    database.drop().await.expect("drop test database");
}
