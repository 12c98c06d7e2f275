//! Starting zonerank services for tests: each as its own gRPC server on an ephemeral port, over
//! a fresh database and its own Redis key prefix, all removed again by `Deployment::stop`.

pub mod proxy;

use std::time::Duration;

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, ClientTlsConfig};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use zonerank_api::v1::{
    ingestion_service_client::IngestionServiceClient, metrics_service_client::MetricsServiceClient,
    ranking_service_client::RankingServiceClient,
};
use zonerank_server::LogFormat;
use zonerank_server::{DatabaseArgs, ServerArgs, Services};
use zonerank_storage::test_support::TestDatabase;

/// The Redis the tests use (env `REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// One running server process (as a task).
pub struct RunningServer {
    /// `http://127.0.0.1:port`
    pub url: String,
    /// How clients reach it: `None` for plaintext.
    pub tls: Option<ClientTlsConfig>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), zonerank_server::RunError>>,
}

impl RunningServer {
    /// Starts `services` on an ephemeral port.
    pub async fn start(args: ServerArgs, services: Services) -> RunningServer {
        RunningServer::start_with_tls(args, services, None).await
    }

    /// Starts `services` on an ephemeral port; readiness is asked over `tls`.
    pub async fn start_with_tls(
        args: ServerArgs,
        services: Services,
        tls: Option<ClientTlsConfig>,
    ) -> RunningServer {
        let server = RunningServer::start_unready(args, services, tls).await;
        server.wait_until_serving(services.names()[0]).await;
        server
    }

    /// Starts `services` on an ephemeral port without waiting for readiness (a server whose
    /// dependency is meant to be out of reach).
    pub async fn start_unready(
        args: ServerArgs,
        services: Services,
        tls: Option<ClientTlsConfig>,
    ) -> RunningServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            zonerank_server::run(&args, services, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        RunningServer {
            url,
            tls,
            stop: Some(stop),
            task,
        }
    }

    /// A channel to this server.
    pub async fn channel(&self) -> Channel {
        zonerank_server::client::connect(self.url.clone(), self.tls.as_ref())
            .await
            .expect("connect")
    }

    async fn wait_until_serving(&self, service: &str) {
        let stopped = || self.task.is_finished();
        if let Err(why) = wait_until_serving(&self.url, self.tls.as_ref(), service, stopped).await {
            panic!("server {}: {why}", self.url);
        }
    }

    /// Stops the server as SIGTERM would and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .expect("server task")
            .expect("server stopped cleanly");
    }
}

/// A channel to the server at `url`.
pub async fn channel_to(url: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

/// Waits until the server at `url` reports `service` SERVING, or fails when `stopped` says it
/// is gone or after 10 s.
async fn wait_until_serving(
    url: &str,
    tls: Option<&ClientTlsConfig>,
    service: &str,
    mut stopped: impl FnMut() -> bool,
) -> Result<(), &'static str> {
    for _ in 0..400 {
        if let Ok(channel) = zonerank_server::client::connect(url.to_string(), tls).await {
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: service.to_string(),
                })
                .await;
            if let Ok(status) = status
                && status.into_inner().status == ServingStatus::Serving as i32
            {
                return Ok(());
            }
        }
        if stopped() {
            return Err("stopped while starting");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err("never became ready")
}

/// What the server at `url` reports for `service` (grpc.health.v1 Check), or None when it
/// cannot be asked.
pub async fn serving_status(url: &str, service: &str) -> Option<ServingStatus> {
    let channel = Channel::from_shared(url.to_string())
        .expect("url")
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .ok()?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(answer.into_inner().status).ok()
}

/// Polls the server at `url` every 100 ms until it reports `status` for `service`; returns how
/// long that took, or panics after `within`.
pub async fn wait_for_status(
    url: &str,
    service: &str,
    status: ServingStatus,
    within: Duration,
) -> Duration {
    let start = std::time::Instant::now();
    loop {
        if serving_status(url, service).await == Some(status) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{service} at {url} did not report {status:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Settings for a server over `database_url`.
pub fn server_args(database_url: &str, redis_prefix: Option<&str>) -> ServerArgs {
    ServerArgs {
        listen: "127.0.0.1:0".parse().expect("address"),
        database: DatabaseArgs {
            database_url: database_url.to_string(),
        },
        redis_url: redis_prefix.map(|_| redis_url()),
        redis_prefix: redis_prefix.unwrap_or("zonerank:").to_string(),
        metrics_addr: None,
        log_format: LogFormat::Text,
        shutdown_grace_secs: 5,
        max_call_secs: 60,
        max_request_secs: zonerank_server::limits::REQUEST_TIMEOUT.as_secs(),
        max_ranking_entities: zonerank_server::budget::MAX_RANKING_ENTITIES,
        max_metric_cells: zonerank_server::budget::MAX_METRIC_CELLS,
        quality_rules: None,
        tls: Default::default(),
        auth: Default::default(),
        metrics_tls: Default::default(),
        health_listen: None,
        audit_refusal_rate: zonerank_server::refusals::DEFAULT_PER_WINDOW,
    }
}

/// The three services as separate servers over one fresh PostgreSQL database and one Redis
/// prefix, as they run in production.
pub struct Deployment {
    pub ingestion: RunningServer,
    pub metrics: RunningServer,
    pub ranking: RunningServer,
    pub database: TestDatabase,
    pub redis: RedisPrefix,
}

/// A Redis key prefix of one test; its keys are deleted when it goes, even after a panic.
pub struct RedisPrefix {
    pub prefix: String,
}

impl RedisPrefix {
    /// A new random prefix.
    pub fn new() -> RedisPrefix {
        RedisPrefix {
            prefix: format!("zonerank-test-{:016x}:", rand::random::<u64>()),
        }
    }
}

impl Default for RedisPrefix {
    fn default() -> Self {
        RedisPrefix::new()
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        // The test's runtime may be unwinding: clear on a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(cache) = zonerank_cache::Cache::redis(&redis_url(), &prefix).await {
                    let _ = cache.clear().await;
                }
            });
        })
        .join();
    }
}

impl Deployment {
    /// Migrates a fresh PostgreSQL database (as the migration Job does) and starts the services.
    pub async fn postgres_and_redis() -> Deployment {
        let database = TestDatabase::postgres().await.expect("test database");
        database.migrated_store().await.expect("migrate");
        let redis = RedisPrefix::new();
        let args = server_args(&database.url, Some(&redis.prefix));
        let (ingestion, metrics) = tokio::join!(
            RunningServer::start(args.clone(), Services::INGESTION),
            RunningServer::start(args.clone(), Services::METRICS),
        );
        // The ranking service asks the metrics server over gRPC, as between pods.
        let mut ranking_args = args.clone();
        ranking_args.metrics_addr = Some(metrics.url.clone());
        let ranking = RunningServer::start(ranking_args, Services::RANKING).await;
        Deployment {
            ingestion,
            metrics,
            ranking,
            database,
            redis,
        }
    }

    /// A client of the ingestion service.
    pub async fn ingestion_client(&self) -> IngestionServiceClient<Channel> {
        IngestionServiceClient::new(self.ingestion.channel().await)
    }

    /// A client of the metrics service.
    pub async fn metrics_client(&self) -> MetricsServiceClient<Channel> {
        MetricsServiceClient::new(self.metrics.channel().await)
    }

    /// A client of the ranking service.
    pub async fn ranking_client(&self) -> RankingServiceClient<Channel> {
        RankingServiceClient::new(self.ranking.channel().await)
    }

    /// Stops the services, drops the database and deletes the Redis keys.
    pub async fn stop(self) {
        tokio::join!(
            self.ingestion.stop(),
            self.metrics.stop(),
            self.ranking.stop()
        );
        self.database.drop().await.expect("drop test database");
        drop(self.redis);
    }
}

/// The fixtures directory, `tests/data`: the users' seed figures (`seed-facts.csv`) and the
/// example files of the README.
pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A region of the wire API.
pub fn region(
    code: &str,
    name: &str,
    level: zonerank_api::v1::RegionLevel,
    parent: &str,
) -> zonerank_api::v1::Region {
    zonerank_api::v1::Region {
        code: code.into(),
        name: name.into(),
        level: level as i32,
        parent_code: parent.into(),
        name_en: String::new(),
    }
}

/// Henan with Zhumadian and Queshan county, Luoyang and Xin'an county: the regions of the seeds.
/// `count` agglomeration zones `Z-0000`, `Z-0001`, … in `region_code`, named `zone N`.
pub fn numbered_zones(count: usize, region_code: &str) -> Vec<zonerank_api::v1::Zone> {
    (0..count)
        .map(|i| zonerank_api::v1::Zone {
            id: numbered_zone_id(i),
            name: format!("zone {i}"),
            region_code: region_code.into(),
            kind: zonerank_api::v1::ZoneKind::AgglomerationZone as i32,
            ..Default::default()
        })
        .collect()
}

/// Stores the regions of [`henan_two_cities`] and `count` [`numbered_zones`] in Luoyang.
pub async fn store_numbered_zones(
    client: &mut zonerank_api::v1::ingestion_service_client::IngestionServiceClient<Channel>,
    count: usize,
) {
    client
        .upsert_regions(zonerank_api::v1::UpsertRegionsRequest {
            regions: henan_two_cities(),
            ..Default::default()
        })
        .await
        .expect("regions");
    client
        .upsert_zones(zonerank_api::v1::UpsertZonesRequest {
            zones: numbered_zones(count, "410300"),
            ..Default::default()
        })
        .await
        .expect("zones");
}

/// What the store at `url` holds: (observations, data version).
pub async fn stored_observations_and_version(url: &str) -> (u64, i64) {
    use sea_orm::{EntityTrait, PaginatorTrait};
    let store = zonerank_storage::Store::connect(url).await.expect("store");
    let rows = zonerank_storage::entity::observation::Entity::find()
        .count(store.connection())
        .await
        .expect("count");
    (rows, store.data_version().await.expect("version"))
}

/// The id of the `i`th of [`numbered_zones`].
pub fn numbered_zone_id(i: usize) -> String {
    format!("Z-{i:04}")
}

pub fn seed_regions() -> Vec<zonerank_api::v1::Region> {
    use zonerank_api::v1::RegionLevel::{City, County, Province};
    vec![
        region("410000", "河南省", Province, ""),
        region("411700", "驻马店市", City, "410000"),
        region("411725", "确山县", County, "411700"),
        region("410300", "洛阳市", City, "410000"),
        region("410323", "新安县", County, "410300"),
    ]
}

/// Henan with two cities, Zhengzhou and Luoyang: enough regions for zones in two groups.
pub fn henan_two_cities() -> Vec<zonerank_api::v1::Region> {
    use zonerank_api::v1::RegionLevel::{City, Province};
    vec![
        region("410000", "河南省", Province, ""),
        region("410100", "郑州市", City, "410000"),
        region("410300", "洛阳市", City, "410000"),
    ]
}

/// `list_services` over one version of reflection; the two versions' generated types have the
/// same shape but are distinct, hence a macro.
macro_rules! reflection_listing {
    ($(#[$doc:meta])* $name:ident, $version:ident) => {
        $(#[$doc])*
        pub async fn $name(channel: Channel) -> Vec<String> {
            use tonic_reflection::pb::$version::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let answer = ServerReflectionClient::new(channel)
                .server_reflection_info(tokio_stream::iter(vec![request]))
                .await
                .expect(concat!("reflection ", stringify!($version)))
                .into_inner()
                .message()
                .await
                .expect("answer")
                .expect("one answer");
            let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response
            else {
                panic!("not a service list: {:?}", answer.message_response);
            };
            sorted(list.service.into_iter().map(|s| s.name))
        }
    };
}

reflection_listing!(
    /// The services `channel`'s server lists over reflection v1, sorted.
    reflection_v1_services,
    v1
);
reflection_listing!(
    /// The services `channel`'s server lists over reflection v1alpha (what grpcurl before 1.8.8
    /// speaks), sorted.
    reflection_v1alpha_services,
    v1alpha
);

fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.collect();
    names.sort();
    names
}

/// What a process serving `services` must list over reflection, sorted: its own services,
/// health and both versions of reflection.
pub fn expected_listing(services: &[&str]) -> Vec<String> {
    sorted(
        services
            .iter()
            .chain(&[
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ])
            .map(|s| s.to_string()),
    )
}

/// A service binary running as a child process; killed on drop.
pub struct ServiceProcess {
    /// `http://127.0.0.1:port`
    pub url: String,
    child: std::process::Child,
    _database: Option<TestDatabase>,
}

impl ServiceProcess {
    /// Starts the binary `exe` (a `CARGO_BIN_EXE_…` path) over a fresh migrated SQLite file on
    /// a free port and waits until it reports `service` SERVING.
    pub async fn start(exe: &str, service: &str) -> ServiceProcess {
        let database = TestDatabase::sqlite();
        database.migrated_store().await.expect("migrate");
        let mut process = ServiceProcess::start_over(exe, service, &database.url).await;
        process._database = Some(database);
        process
    }

    /// Starts the binary `exe` over the (migrated) database `database_url`, without Redis, on
    /// a free port and waits until it reports `service` SERVING.
    pub async fn start_over(exe: &str, service: &str, database_url: &str) -> ServiceProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = std::process::Command::new(exe)
            .env("ZONERANK_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env_remove("REDIS_URL")
            .env_remove("ZONERANK_METRICS_ADDR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the service binary");
        let mut process = ServiceProcess {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _database: None,
        };
        let url = process.url.clone();
        let exited = || matches!(process.child.try_wait(), Ok(Some(_)));
        if let Err(why) = wait_until_serving(&url, None, service, exited).await {
            panic!("{exe}: {why}");
        }
        process
    }

    /// A channel to this process.
    pub async fn channel(&self) -> Channel {
        channel_to(&self.url).await
    }

    /// The process's peak resident set so far, in KiB: `VmHWM` of `/proc/<pid>/status`.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in the status")
    }

    /// Ends the process with SIGKILL, as the kernel's OOM killer or a node failure would:
    /// no shutdown hook runs.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the single-service binary `exe` and checks that reflection, in both versions, lists
/// `services` (the first is the one it waits for) and none of the zonerank services it does
/// not serve.
pub async fn binary_lists_only_its_service(exe: &str, services: &[&str]) {
    let process = ServiceProcess::start(exe, services[0]).await;
    let expected = expected_listing(services);
    assert_eq!(
        reflection_v1_services(process.channel().await).await,
        expected
    );
    assert_eq!(
        reflection_v1alpha_services(process.channel().await).await,
        expected
    );
}

/// Upserts the seeds' regions ([`seed_regions`]) and then `zones`.
pub async fn seed_regions_and_zones(
    client: &mut IngestionServiceClient<Channel>,
    zones: Vec<zonerank_api::v1::Zone>,
) {
    client
        .upsert_regions(zonerank_api::v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions");
    client
        .upsert_zones(zonerank_api::v1::UpsertZonesRequest {
            zones,
            ..Default::default()
        })
        .await
        .expect("zones");
}

/// Imports `rows` of the long CSV format (`entity_kind,entity_id,indicator,period,value,unit`)
/// and answers the report.
pub async fn import_csv_rows(
    client: &mut IngestionServiceClient<Channel>,
    rows: &[String],
) -> zonerank_api::v1::IngestReport {
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    client
        .import_csv(zonerank_api::v1::ImportCsvRequest {
            content: csv.into_bytes(),
            ..Default::default()
        })
        .await
        .expect("import")
        .into_inner()
}

/// A scheme ranking the zones of `region_code`'s subtree by `criteria` (metric, weight): min-max,
/// fixed weights, weighted sum, a missing figure scored worst. Tests add stars and the rest
/// with `..zone_scheme(…)`.
pub fn zone_scheme(
    id: &str,
    name: &str,
    region_code: &str,
    criteria: &[(&str, f64)],
) -> zonerank_api::v1::Scheme {
    use zonerank_api::v1;
    v1::Scheme {
        id: id.into(),
        name: name.into(),
        entity_kind: v1::EntityKind::Zone as i32,
        cohort: Some(v1::CohortSelector {
            entity_kind: v1::EntityKind::Zone as i32,
            region_code: region_code.into(),
            ..Default::default()
        }),
        criteria: criteria
            .iter()
            .map(|&(metric, weight)| v1::Criterion {
                metric: metric.into(),
                weight,
                ..Default::default()
            })
            .collect(),
        normalization: v1::Normalization::MinMax as i32,
        weighting: v1::Weighting::Fixed as i32,
        aggregation: v1::Aggregation::WeightedSum as i32,
        missing_policy: v1::MissingPolicy::Worst as i32,
        ..Default::default()
    }
}
