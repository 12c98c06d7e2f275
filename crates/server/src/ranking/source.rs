//! Where the ranking service gets its metric tables: the metrics service over gRPC (its own
//! pod in production) or in the same process (the embedded default). Both use StreamMetrics,
//! so a cohort of half a million enterprises arrives in chunks.

use tonic::{Request, transport::Channel};
use zonerank_api::v1::{
    self, metrics_service_client::MetricsServiceClient, metrics_service_server::MetricsService,
};

use crate::{error::ServiceError, metrics::Metrics};

/// A metrics service to ask.
#[derive(Clone, Debug)]
pub enum MetricsSource {
    /// The metrics service of this process.
    InProcess(Metrics),
    /// A metrics service elsewhere.
    Remote(MetricsServiceClient<Channel>),
}

impl MetricsSource {
    /// A client of the metrics service at `address` (connects lazily, so start order is free).
    pub fn remote(address: &str) -> Result<MetricsSource, ServiceError> {
        let address = if address.contains("://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        let channel = Channel::from_shared(address.clone())
            .map_err(|e| ServiceError::invalid("metrics_addr", format!("{address}: {e}")))?
            .connect_lazy();
        Ok(MetricsSource::Remote(
            MetricsServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
        ))
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
            MetricsSource::Remote(client) => {
                use tracing::Instrument;
                let span =
                    zonerank_telemetry::client_span("zonerank.v1.MetricsService", "StreamMetrics");
                let start = std::time::Instant::now();
                let result = async {
                    let mut request = Request::new(request);
                    zonerank_telemetry::inject_context(request.metadata_mut());
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
                result?;
            }
        }
        Ok(table)
    }
}
