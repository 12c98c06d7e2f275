//! Runs a set of services on one listener: health, reflection, readiness and graceful shutdown.

use std::{future::Future, pin::Pin, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};
use zonerank_api::v1::{
    ingestion_service_server::IngestionServiceServer, metrics_service_server::MetricsServiceServer,
    ranking_service_server::RankingServiceServer,
};
use zonerank_cache::Cache;
use zonerank_storage::Store;

use crate::{
    ServerArgs,
    auth::{Guarded, Verifier},
    ingestion::Ingestion,
    metrics::Metrics,
    ranking::{MetricsSource, Ranking, ensure_builtin_schemes},
};

/// Which services a process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Services {
    pub ingestion: bool,
    pub metrics: bool,
    pub ranking: bool,
    /// Apply migrations on start (the embedded default) instead of refusing an old schema.
    pub migrate_on_start: bool,
}

impl Services {
    /// All three, migrating on start: `zonerank serve`.
    pub const ALL_IN_ONE: Services = Services {
        ingestion: true,
        metrics: true,
        ranking: true,
        migrate_on_start: true,
    };
    /// The ingestion service alone.
    pub const INGESTION: Services = Services {
        ingestion: true,
        metrics: false,
        ranking: false,
        migrate_on_start: false,
    };
    /// The metrics service alone.
    pub const METRICS: Services = Services {
        ingestion: false,
        metrics: true,
        ranking: false,
        migrate_on_start: false,
    };
    /// The ranking service alone.
    pub const RANKING: Services = Services {
        ingestion: false,
        metrics: false,
        ranking: true,
        migrate_on_start: false,
    };

    /// The process's name in traces and metrics (`service.name`).
    pub fn process_name(&self) -> &'static str {
        match (self.ingestion, self.metrics, self.ranking) {
            (true, false, false) => "zonerank-ingestion",
            (false, true, false) => "zonerank-metrics",
            (false, false, true) => "zonerank-ranking",
            _ => "zonerank",
        }
    }

    /// The gRPC service names this process serves (the readiness probes' names).
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.ingestion {
            names.push("zonerank.v1.IngestionService");
        }
        if self.metrics {
            names.push("zonerank.v1.MetricsService");
        }
        if self.ranking {
            names.push("zonerank.v1.RankingService");
        }
        names
    }
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Storage(#[from] zonerank_storage::StorageError),
    #[error(transparent)]
    Cache(#[from] zonerank_cache::CacheError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Service(#[from] crate::ServiceError),
    #[error(
        "auth is not configured: serving {0} without --auth-jwks would let anyone who reaches \
         it read and write everything; configure --auth-jwks, --auth-issuer and \
         --auth-audience, or pass --insecure-no-auth to run open"
    )]
    AuthNotConfigured(std::net::SocketAddr),
    #[error("JWKS: {0}")]
    Jwks(#[from] crate::auth::JwksError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// CSV files up to this size travel in one ImportCsv message.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How often readiness re-checks the database and the cache.
const READINESS_INTERVAL: Duration = Duration::from_secs(5);

/// Serves `services` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish for up to the configured grace period.
pub async fn run(
    args: &ServerArgs,
    services: Services,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let tls = crate::tls::acceptor(&args.tls)?;
    let verifier = open_or_guarded(args, &listener)?;
    let store = Store::connect(&args.database.database_url).await?;
    if services.migrate_on_start {
        store.migrate().await?;
    } else {
        store.require_current_schema().await?;
    }
    let cache = Cache::from_config(args.redis_url.as_deref(), &args.redis_prefix).await?;

    let (health, health_service) = tonic_health::server::health_reporter();
    let names = services.names();
    set_status(&health, &names, ServingStatus::NotServing).await;
    let readiness = tokio::spawn(watch_readiness(
        health.clone(),
        names.clone(),
        store.clone(),
        cache.clone(),
    ));

    let reflection_v1 = reflection(&names).build_v1()?;
    let reflection_v1alpha = reflection(&names).build_v1alpha()?;

    let ingestion = services.ingestion.then(|| {
        let service = IngestionServiceServer::new(Ingestion::new(store.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        Guarded::new(service, verifier.clone())
    });
    let metrics = services.metrics.then(|| {
        let service = MetricsServiceServer::new(Metrics::new(store.clone(), cache.clone()));
        Guarded::new(service, verifier.clone())
    });
    let ranking = if services.ranking {
        ensure_builtin_schemes(&store).await?;
        let source = match &args.metrics_addr {
            Some(address) => {
                MetricsSource::remote(address, crate::tls::client_config(&args.metrics_tls)?)?
            }
            None => MetricsSource::InProcess(Metrics::new(store.clone(), cache.clone())),
        };
        let service = RankingServiceServer::new(Ranking::new(store.clone(), cache.clone(), source))
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Some(Guarded::new(service, verifier.clone()))
    } else {
        None
    };

    let local = listener.local_addr().ok();
    tracing::info!(
        address = ?local,
        services = ?names,
        database = %redact(&args.database.database_url),
        tls = args.tls.tls_cert.is_some(),
        mtls = args.tls.tls_client_ca.is_some(),
        auth = verifier.is_some(),
        cache = cache.kind(),
        "zonerank serving"
    );

    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_health = health.clone();
    let drain_names = names.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new requests, finishing in-flight ones");
        // Readiness goes false first so load balancers stop sending while we drain.
        readiness.abort();
        set_status(&drain_health, &drain_names, ServingStatus::NotServing).await;
        let _ = draining_tx.send(());
    };
    observe_cache(&cache);
    let router = Server::builder()
        .layer(zonerank_telemetry::GrpcTelemetryLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_optional_service(ingestion)
        .add_optional_service(metrics)
        .add_optional_service(ranking);
    let incoming = accepted_without_delay(listener);
    let serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> = match tls
    {
        Some(tls) => Box::pin(
            router
                .serve_with_incoming_shutdown(crate::tls::TlsIncoming::new(incoming, tls), signal),
        ),
        None => Box::pin(router.serve_with_incoming_shutdown(incoming, signal)),
    };
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    tokio::pin!(serve);
    tokio::select! {
        result = &mut serve => result?,
        _ = async {
            if draining_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; dropping unfinished requests");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The token verifier, or `None` to run open: allowed on loopback (with a warning), and
/// elsewhere only with `--insecure-no-auth`.
fn open_or_guarded(
    args: &ServerArgs,
    listener: &TcpListener,
) -> Result<Option<std::sync::Arc<Verifier>>, RunError> {
    if let Some(verifier) = Verifier::from_args(&args.auth)? {
        return Ok(Some(std::sync::Arc::new(verifier)));
    }
    let address = listener.local_addr().unwrap_or(args.listen);
    if address.ip().is_loopback() {
        tracing::warn!(%address, "auth is not configured: serving open on loopback");
    } else if args.auth.insecure_no_auth {
        tracing::warn!(%address, "--insecure-no-auth: serving open; anyone who reaches it may write");
    } else {
        return Err(RunError::AuthNotConfigured(address));
    }
    Ok(None)
}

/// The services reflection lists: the ones this process serves, health and reflection itself
/// (both versions: grpcurl before 1.8.8 and many other clients speak only v1alpha).
fn reflection(names: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(zonerank_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        // Registered above; the builder's own registration would add only one version.
        .include_reflection_service(false);
    for name in names.iter().copied().chain(ALWAYS_LISTED) {
        builder = builder.with_service_name(name);
    }
    builder
}

/// Listed by reflection on every process.
const ALWAYS_LISTED: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Accepted connections with TCP_NODELAY: a unary answer is one small write, and Nagle's
/// algorithm would hold it back until the client's delayed ACK (tens of milliseconds).
fn accepted_without_delay(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Cache hits and misses as OpenTelemetry counters, read from the cache's own tallies.
fn observe_cache(cache: &Cache) {
    let meter = opentelemetry::global::meter("zonerank");
    let hits = cache.clone();
    let _ = meter
        .u64_observable_counter("zonerank.cache.hits")
        .with_description("Result cache hits")
        .with_callback(move |o| o.observe(hits.stats().hits, &[]))
        .build();
    let misses = cache.clone();
    let _ = meter
        .u64_observable_counter("zonerank.cache.misses")
        .with_description("Result cache misses")
        .with_callback(move |o| o.observe(misses.stats().misses, &[]))
        .build();
}

/// Readiness is per service name; the whole server ("") stays SERVING while the process lives,
/// so a liveness probe on "" does not restart pods through a database outage or a drain.
async fn set_status(health: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    for name in names {
        health.set_service_status(*name, status).await;
    }
}

/// Serving only while the database and the cache answer.
async fn watch_readiness(
    health: HealthReporter,
    names: Vec<&'static str>,
    store: Store,
    cache: Cache,
) {
    let mut interval = tokio::time::interval(READINESS_INTERVAL);
    let mut last = None;
    loop {
        interval.tick().await;
        let db = store.ping().await;
        let redis = cache.ping().await;
        let status = if db.is_ok() && redis.is_ok() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if let Err(e) = &db {
                tracing::warn!(error = %e, "database not answering: not ready");
            }
            if let Err(e) = &redis {
                tracing::warn!(error = %e, "cache not answering: not ready");
            }
            set_status(&health, &names, status).await;
            last = Some(status);
        }
    }
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/zr"),
            "postgres://app:***@db:5432/zr"
        );
        assert_eq!(redact("postgres://app@db/zr"), "postgres://app@db/zr");
        assert_eq!(redact("sqlite://zonerank.db"), "sqlite://zonerank.db");
    }
}
