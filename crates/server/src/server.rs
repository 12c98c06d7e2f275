//! Runs a set of services on one listener: health, reflection, readiness and graceful shutdown.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};
use zonerank_api::page_server::ranking_service_server::RankingServiceServer;
use zonerank_api::v1::{
    assessment_service_server::AssessmentServiceServer, audit_service_server::AuditServiceServer,
    ingestion_service_server::IngestionServiceServer, metrics_service_server::MetricsServiceServer,
};
use zonerank_cache::Cache;
use zonerank_storage::Store;

use crate::{
    ServerArgs,
    assessment::Assessment,
    auth::{Guarded, Verifier},
    ingestion::Ingestion,
    limits,
    metrics::Metrics,
    ranking::{MetricsSource, Ranking, ensure_builtin_schemes},
    refusals::{RefusalBudget, RefusalLog},
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
            names.push("zonerank.v1.AuditService");
        }
        if self.metrics {
            names.push("zonerank.v1.MetricsService");
        }
        if self.ranking {
            names.push("zonerank.v1.RankingService");
            names.push("zonerank.v1.AssessmentService");
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
    #[error("{0}")]
    QualityRules(String),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot listen on {0} (--health-listen): {1}")]
    HealthListen(std::net::SocketAddr, std::io::Error),
}

/// How often readiness re-checks the database (and, for a ranking service calling a remote
/// metrics service, that service): with each check bounded by
/// [`limits::READINESS_CHECK_TIMEOUT`], an outage shows within 4 s.
const READINESS_INTERVAL: Duration = Duration::from_secs(2);

/// Serves `services` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish for up to the configured grace period.
pub async fn run(
    args: &ServerArgs,
    services: Services,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    crate::budget::set_max_call(Duration::from_secs(args.max_call_secs));
    crate::budget::set_sizes(args.max_ranking_entities, args.max_metric_cells);
    let request_timeout = Duration::from_secs(args.max_request_secs);
    let tls = crate::tls::acceptor(&args.tls)?;
    let verifier = open_or_guarded(args, &listener)?;
    let quality = crate::ingestion::quality::load_rules(args.quality_rules.as_deref())
        .map_err(RunError::QualityRules)?;
    let health_listener = match args.health_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|e| RunError::HealthListen(address, e))?,
        ),
        None => None,
    };
    let store = Store::connect(&args.database.database_url).await?;
    if services.migrate_on_start {
        store.migrate().await?;
    } else {
        store.require_current_schema().await?;
    }
    // The cache is optional: a Redis that is down at start is connected in the background.
    let cache = Cache::for_service(args.redis_url.as_deref(), &args.redis_prefix).await?;

    let (health, health_service) = tonic_health::server::health_reporter();
    let names = services.names();
    set_status(&health, &names, ServingStatus::NotServing).await;

    // One budget for the process: a flood of refusals is bounded across its services.
    let refusals = RefusalLog::new(
        store.clone(),
        Arc::new(RefusalBudget::new(
            args.audit_refusal_rate,
            crate::refusals::WINDOW,
        )),
    );
    let sweeper = tokio::spawn(sweep_refusals(refusals.clone()));

    let reflection_v1 = reflection(&names).build_v1()?;
    let reflection_v1alpha = reflection(&names).build_v1alpha()?;

    let ingestion = services.ingestion.then(|| {
        let service = IngestionServiceServer::new(Ingestion::with_quality(store.clone(), quality))
            .max_decoding_message_size(limits::INGESTION_REQUEST_BYTES)
            .max_encoding_message_size(limits::RESPONSE_BYTES);
        Guarded::new(service, verifier.clone()).audited(refusals.clone())
    });
    // The audit log is served where writes arrive: the ingestion process and the all-in-one.
    let audit = services.ingestion.then(|| {
        let service = AuditServiceServer::new(crate::audit::Audit::new(store.clone()))
            .max_decoding_message_size(limits::REQUEST_BYTES)
            .max_encoding_message_size(limits::RESPONSE_BYTES);
        Guarded::new(service, verifier.clone()).audited(refusals.clone())
    });
    let metrics = services.metrics.then(|| {
        let service = MetricsServiceServer::new(Metrics::new(store.clone(), cache.clone()))
            .max_decoding_message_size(limits::REQUEST_BYTES)
            .max_encoding_message_size(limits::RESPONSE_BYTES);
        Guarded::new(service, verifier.clone()).audited(refusals.clone())
    });
    let mut peer = None;
    let ranking = if services.ranking {
        ensure_builtin_schemes(&store).await?;
        let source = match &args.metrics_addr {
            Some(address) => {
                MetricsSource::remote(address, crate::tls::client_config(&args.metrics_tls)?)?
            }
            None => MetricsSource::InProcess(Metrics::new(store.clone(), cache.clone())),
        };
        peer = Some(source.clone());
        let ranking = Ranking::new(store.clone(), cache.clone(), source);
        let assessment = AssessmentServiceServer::new(Assessment::new(ranking.clone()))
            .max_decoding_message_size(limits::REQUEST_BYTES)
            .max_encoding_message_size(limits::RESPONSE_BYTES);
        let service = RankingServiceServer::new(ranking)
            .max_decoding_message_size(limits::REQUEST_BYTES)
            .max_encoding_message_size(limits::RESPONSE_BYTES);
        Some((
            Guarded::new(service, verifier.clone()).audited(refusals.clone()),
            Guarded::new(assessment, verifier.clone()).audited(refusals.clone()),
        ))
    } else {
        None
    };
    let (ranking, assessment) = ranking.unzip();
    let readiness = tokio::spawn(watch_readiness(
        health.clone(),
        names.clone(),
        store.clone(),
        peer,
    ));

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
    // The plaintext health port stops with the main one.
    let (health_stop_tx, health_stop_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new requests, finishing in-flight ones");
        // Readiness goes false first so load balancers stop sending while we drain.
        readiness.abort();
        set_status(&drain_health, &drain_names, ServingStatus::NotServing).await;
        let _ = draining_tx.send(());
    };
    let health_port = health_listener.map(|listener| {
        tracing::info!(address = ?listener.local_addr().ok(), "health (plaintext, no auth) serving");
        let mut stop = health_stop_rx;
        // The same reporter as the main port: both answer the same statuses.
        let service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        tokio::spawn(
            Server::builder()
                .timeout(request_timeout)
                .add_service(service)
                .serve_with_incoming_shutdown(accepted_connections(listener), async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                }),
        )
    });
    observe_cache(&cache);
    let router = Server::builder()
        .max_concurrent_streams(limits::MAX_CONCURRENT_STREAMS)
        .http2_max_header_list_size(limits::MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(limits::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(limits::KEEPALIVE_TIMEOUT))
        .timeout(request_timeout)
        .layer(zonerank_telemetry::GrpcTelemetryLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_optional_service(ingestion)
        .add_optional_service(audit)
        .add_optional_service(metrics)
        .add_optional_service(ranking)
        .add_optional_service(assessment);
    let incoming = accepted_connections(listener);
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
    let served = tokio::select! {
        result = &mut serve => result,
        _ = async {
            if draining_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; dropping unfinished requests");
            Ok(())
        }
    };
    let _ = health_stop_tx.send(true);
    if let Some(port) = health_port {
        match port.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "health port"),
            Err(e) => tracing::warn!(error = %e, "health port task"),
            Ok(Ok(())) => {}
        }
    }
    sweeper.abort();
    // Refusals still counted in an open window are summarised before the process ends.
    refusals.sweep(true).await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Writes the summaries of the refusal windows that ended, every few seconds.
async fn sweep_refusals(refusals: RefusalLog) {
    let mut interval = tokio::time::interval(Duration::from_secs(5));
    loop {
        interval.tick().await;
        refusals.sweep(false).await;
    }
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
/// (both versions: grpcurl before 1.8.8 and many other clients speak only v1alpha). The
/// google.rpc error-detail messages are served too, so that a client resolving the details of
/// an error by reflection (grpcurl) prints them instead of "not recognized".
fn reflection(names: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(zonerank_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
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

/// Accepted connections with TCP_NODELAY (a unary answer is one small write, and Nagle's
/// algorithm would hold it back until the client's delayed ACK, tens of milliseconds) that
/// sent their first byte within [`limits::FIRST_BYTE_TIMEOUT`]: a connection that stays
/// silent is closed instead of held open. Up to [`limits::PENDING_CONNECTIONS`] wait for their
/// first byte at once, each on its own, so a silent one delays no other.
fn accepted_connections(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| async move {
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => return Some(Err(e)),
            };
            let mut first = [0u8; 1];
            match tokio::time::timeout(limits::FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await
            {
                Ok(Ok(n)) if n > 0 => Some(Ok(stream)),
                Ok(Ok(_)) | Ok(Err(_)) => None,
                Err(_) => {
                    tracing::debug!(peer = ?stream.peer_addr().ok(), "closing a connection that sent nothing");
                    None
                }
            }
        })
        .buffer_unordered(limits::PENDING_CONNECTIONS)
        .filter_map(std::future::ready)
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

/// Serving while the database answers and, for a ranking service calling a remote metrics
/// service, while that service reports SERVING; each check bounded by
/// [`limits::READINESS_CHECK_TIMEOUT`]. The cache is optional and never makes a service
/// unready (a Redis outage is logged by the cache itself).
async fn watch_readiness(
    health: HealthReporter,
    names: Vec<&'static str>,
    store: Store,
    peer: Option<MetricsSource>,
) {
    let mut interval = tokio::time::interval(READINESS_INTERVAL);
    let mut last = None;
    loop {
        interval.tick().await;
        let db = match tokio::time::timeout(limits::READINESS_CHECK_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {:?}",
                limits::READINESS_CHECK_TIMEOUT
            )),
        };
        let metrics = match &peer {
            Some(source) => source.check().await,
            None => Ok(()),
        };
        let status = if db.is_ok() && metrics.is_ok() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if let Err(e) = &db {
                tracing::warn!(error = %e, "database not answering: not ready");
            }
            if let Err(e) = &metrics {
                tracing::warn!(error = %e, "metrics service not serving: not ready");
            }
            if status == ServingStatus::Serving && last.is_some() {
                tracing::info!("dependencies answer again: ready");
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
