//! Telemetry: structured logs (text or JSON) that carry trace ids; OpenTelemetry traces and
//! metrics exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (nothing is exported
//! otherwise); W3C trace context carried in gRPC metadata; a span and request metrics per RPC.

mod grpc;
mod instruments;

use opentelemetry::{KeyValue, global, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

pub use grpc::{GrpcTelemetryLayer, client_span, inject_context, record_status, request_id};
pub use instruments::{Instruments, instruments};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The installed providers; dropping it flushes and shuts them down, so the last spans of a
/// stopping process are exported.
#[derive(Default)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Exports everything recorded so far (tests call it before reading their receiver).
    pub fn force_flush(&self) {
        if let Some(t) = &self.tracer {
            let _ = t.force_flush();
        }
        if let Some(m) = &self.meter {
            let _ = m.force_flush();
        }
    }

    /// The tracer provider, to flush from a blocking thread (tests).
    pub fn tracer_handle(&self) -> Flusher {
        Flusher::Tracer(self.tracer.clone())
    }

    /// The meter provider, to flush from a blocking thread (tests).
    pub fn meter_handle(&self) -> Flusher {
        Flusher::Meter(self.meter.clone())
    }

    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.tracer.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

/// A provider handle that can be flushed from another thread.
pub enum Flusher {
    Tracer(Option<SdkTracerProvider>),
    Meter(Option<SdkMeterProvider>),
}

impl Flusher {
    /// Exports what the provider holds and waits for it.
    pub fn force_flush(&self) {
        match self {
            Flusher::Tracer(Some(t)) => {
                let _ = t.force_flush();
            }
            Flusher::Meter(Some(m)) => {
                let _ = m.force_flush();
            }
            _ => {}
        }
    }
}

/// Why OTLP export could not be set up.
#[derive(Debug)]
pub struct TelemetryError(String);

impl std::fmt::Display for TelemetryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenTelemetry: {}", self.0)
    }
}

impl std::error::Error for TelemetryError {}

/// The OTLP endpoint from the environment, when set and not blank.
pub fn otlp_endpoint() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
}

/// Installs logging (`RUST_LOG` filters, default `info`) and, when an OTLP endpoint is set,
/// trace and metric export for `service`. Must be called inside a Tokio runtime. A second
/// call only returns an empty guard: tests that start several servers in one process rely on it.
pub fn init(format: LogFormat, service: &str) -> Telemetry {
    init_with_endpoint(format, service, otlp_endpoint().as_deref())
}

/// [`init`] with the OTLP endpoint given rather than read from the environment.
pub fn init_with_endpoint(format: LogFormat, service: &str, endpoint: Option<&str>) -> Telemetry {
    // W3C trace context goes across every hop, exported or not.
    global::set_text_map_propagator(TraceContextPropagator::new());
    let mut telemetry = Telemetry::default();
    let otel_layer = match endpoint.map(|e| providers(e, service)) {
        Some(Ok((tracer, meter))) => {
            // Only our own spans: the transport's (h2, hyper, tonic, tower) and the database
            // driver's would flood the exporter, and the exporter's own calls would trace
            // themselves without end.
            let ours = tracing_subscriber::filter::Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("h2", tracing::Level::WARN)
                .with_target("hyper", tracing::Level::WARN)
                .with_target("hyper_util", tracing::Level::WARN)
                .with_target("tonic", tracing::Level::WARN)
                .with_target("tower", tracing::Level::WARN)
                .with_target("sqlx", tracing::Level::WARN)
                .with_target("sea_orm", tracing::Level::WARN)
                .with_target("opentelemetry", tracing::Level::WARN)
                .with_target("opentelemetry_sdk", tracing::Level::WARN)
                .with_target("opentelemetry_otlp", tracing::Level::WARN);
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer.tracer("zonerank"))
                .with_filter(ours);
            global::set_tracer_provider(tracer.clone());
            global::set_meter_provider(meter.clone());
            telemetry.tracer = Some(tracer);
            telemetry.meter = Some(meter);
            Some(layer)
        }
        Some(Err(e)) => {
            eprintln!("{e}; traces and metrics are not exported");
            None
        }
        None => None,
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr: stdout is for what a command prints (reports, rankings). Span fields,
    // the server span's trace_id among them, appear on every line logged inside an RPC.
    let logs = match format {
        LogFormat::Text => fmt::layer()
            .with_target(true)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(otel_layer)
        .with(logs.with_filter(filter))
        .try_init();
    if installed.is_err() {
        return Telemetry::default();
    }
    telemetry
}

fn providers(
    endpoint: &str,
    service: &str,
) -> Result<(SdkTracerProvider, SdkMeterProvider), TelemetryError> {
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_string());
    let resource = Resource::builder()
        .with_service_name(name)
        .with_attribute(KeyValue::new("service.namespace", "zonerank"))
        .build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError(e.to_string()))?;
    let tracer = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(spans)
        .build();
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError(e.to_string()))?;
    let meter = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(metrics)
        .build();
    Ok((tracer, meter))
}
