//! Where the ranking service gets its metric tables: the metrics service over gRPC (its own
//! pod in production) or in the same process (the embedded default). Both use StreamMetrics,
//! so a cohort of half a million enterprises arrives in chunks.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use tokio::sync::mpsc::Sender;
use tonic::{
    Code, Request,
    transport::{Channel, ClientTlsConfig, Endpoint, channel::Change},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use zonerank_api::v1::{
    self, metrics_service_client::MetricsServiceClient, metrics_service_server::MetricsService,
};

use crate::{error::ServiceError, limits, metrics::Metrics};

/// A metrics service to ask.
#[derive(Clone, Debug)]
pub enum MetricsSource {
    /// The metrics service of this process.
    InProcess(Metrics),
    /// A metrics service elsewhere; the channel also carries its health checks.
    Remote {
        client: MetricsServiceClient<Channel>,
        channel: Channel,
    },
}

impl MetricsSource {
    /// A client of the metrics service at `address`, balanced over every address its host name
    /// resolves to. One HTTP/2 connection would pin every call to one pod; behind a headless
    /// Kubernetes Service the name resolves to each pod, and the set is re-resolved so pods
    /// that come and go are followed. Connections are made lazily, so start order is free.
    /// With `tls`, the server's certificate is checked against the host name of `address`.
    pub fn remote(
        address: &str,
        tls: Option<ClientTlsConfig>,
    ) -> Result<MetricsSource, ServiceError> {
        let url = if address.contains("://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| ServiceError::invalid("metrics_addr", format!("{url}: {e}")))?;
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(50051);
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let (channel, changes) = Channel::balance_channel::<std::net::SocketAddr>(64);
        let tls = tls.map(|tls| tls.domain_name(host.clone()));
        tokio::spawn(follow_addresses(host, port, scheme, tls, changes));
        Ok(MetricsSource::Remote {
            client: MetricsServiceClient::new(channel.clone())
                .max_decoding_message_size(limits::RESPONSE_BYTES)
                .max_encoding_message_size(limits::REQUEST_BYTES),
            channel,
        })
    }

    /// Whether the metrics service is ready (grpc.health.v1 Check on its name, bounded by
    /// [`limits::READINESS_CHECK_TIMEOUT`]); the one in this process always is.
    pub async fn check(&self) -> Result<(), String> {
        let MetricsSource::Remote { channel, .. } = self else {
            return Ok(());
        };
        let mut health = HealthClient::new(channel.clone());
        let check = health.check(HealthCheckRequest {
            service: METRICS_SERVICE.to_string(),
        });
        match tokio::time::timeout(limits::READINESS_CHECK_TIMEOUT, check).await {
            Ok(Ok(answer)) if answer.get_ref().status == ServingStatus::Serving as i32 => Ok(()),
            Ok(Ok(answer)) => Err(format!(
                "the metrics service reports {:?}",
                answer.get_ref().status()
            )),
            Ok(Err(status)) => Err(format!(
                "the metrics service did not answer: {}",
                status.message()
            )),
            Err(_) => Err(format!(
                "the metrics service did not answer within {:?}",
                limits::READINESS_CHECK_TIMEOUT
            )),
        }
    }

    /// The whole table for `request`, assembled from the stream.
    pub async fn table(
        &self,
        request: v1::StreamMetricsRequest,
    ) -> Result<v1::MetricTable, tonic::Status> {
        let period = request.period.clone();
        let mut table = v1::MetricTable {
            period,
            ..Default::default()
        };
        let absorb = |message: v1::StreamMetricsResponse, table: &mut v1::MetricTable| {
            if !message.metrics.is_empty() {
                table.metrics = message.metrics;
            }
            table.data_version = message.data_version;
            table.rows.extend(message.rows);
        };
        match self {
            MetricsSource::InProcess(metrics) => {
                use tokio_stream::StreamExt;
                let mut stream = metrics
                    .stream_metrics(Request::new(request))
                    .await?
                    .into_inner();
                while let Some(message) = stream.next().await {
                    absorb(message?, &mut table);
                }
            }
            MetricsSource::Remote { client, .. } => {
                use tracing::Instrument;
                let span =
                    zonerank_telemetry::client_span("zonerank.v1.MetricsService", "StreamMetrics");
                let start = std::time::Instant::now();
                let result = async {
                    let mut request = Request::new(request);
                    zonerank_telemetry::inject_context(request.metadata_mut());
                    // The caller's token: the metrics service checks it as its own.
                    if let Some(authorization) = crate::auth::caller_authorization()
                        .and_then(|value| value.to_str().ok()?.parse().ok())
                    {
                        request
                            .metadata_mut()
                            .insert("authorization", authorization);
                    }
                    let mut stream = client.clone().stream_metrics(request).await?.into_inner();
                    while let Some(message) = stream.message().await? {
                        absorb(message, &mut table);
                    }
                    Ok::<_, tonic::Status>(())
                }
                .instrument(span.clone())
                .await;
                let code = result.as_ref().map_or_else(|s| s.code() as i32, |_| 0);
                zonerank_telemetry::record_status(&span, code);
                zonerank_telemetry::instruments()
                    .rpc_client_duration
                    .record(
                        start.elapsed().as_secs_f64() * 1000.0,
                        &[
                            opentelemetry::KeyValue::new("rpc.system", "grpc"),
                            opentelemetry::KeyValue::new(
                                "rpc.service",
                                "zonerank.v1.MetricsService",
                            ),
                            opentelemetry::KeyValue::new("rpc.method", "StreamMetrics"),
                            opentelemetry::KeyValue::new("rpc.grpc.status_code", i64::from(code)),
                        ],
                    );
                result.map_err(unreachable_as_unavailable)?;
            }
        }
        Ok(table)
    }
}

/// The metrics service's gRPC name, as its readiness is reported.
const METRICS_SERVICE: &str = "zonerank.v1.MetricsService";

/// A failure of the call itself (no connection, a connection lost, no endpoint) rather than an
/// answer of the metrics service: UNAVAILABLE, so the caller knows a retry may succeed. tonic
/// reports these as UNKNOWN "transport error", or CANCELLED when the connection closes under a
/// call; a status the metrics service sent carries no source and passes through as it is.
fn unreachable_as_unavailable(status: tonic::Status) -> tonic::Status {
    use std::error::Error;
    let local = status.source().is_some();
    if local
        && matches!(
            status.code(),
            Code::Unknown | Code::Unavailable | Code::Cancelled | Code::Internal
        )
    {
        tracing::warn!(error = %status, "the metrics service cannot be reached");
        ServiceError::Unavailable("the metrics service cannot be reached; retry later".into())
            .into()
    } else {
        status
    }
}

/// How often the metrics service's name is resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(15);

/// Keeps the balanced channel's endpoints equal to what `host` resolves to; ends when the
/// channel is dropped.
async fn follow_addresses(
    host: String,
    port: u16,
    scheme: String,
    tls: Option<ClientTlsConfig>,
    changes: Sender<Change<SocketAddr, Endpoint>>,
) {
    let mut current: BTreeSet<SocketAddr> = BTreeSet::new();
    loop {
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(found) => {
                let found: BTreeSet<SocketAddr> = found.collect();
                for gone in current.difference(&found) {
                    if changes.send(Change::Remove(*gone)).await.is_err() {
                        return;
                    }
                }
                for new in found.difference(&current) {
                    let Ok(endpoint) =
                        crate::client::endpoint(format!("{scheme}://{new}"), tls.as_ref())
                    else {
                        continue;
                    };
                    if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                        return;
                    }
                }
                if found != current {
                    tracing::info!(metrics = %host, endpoints = found.len(), "metrics service endpoints");
                }
                current = found;
            }
            // Keep what we had: a DNS hiccup is no reason to drop working connections.
            Err(e) => {
                tracing::warn!(metrics = %host, error = %e, "cannot resolve the metrics service")
            }
        }
        tokio::time::sleep(RESOLVE_EVERY).await;
        if changes.is_closed() {
            return;
        }
    }
}
